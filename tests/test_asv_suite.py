"""asv itself on the suites in benchmarks/: ``asv check``, and a filtered quick run whose results
must be numbers for every CPU backend (skips only where no device is).

Runs against a copy of asv.conf.json pointing into a temporary directory, with HOME there too
(``asv machine`` writes ~/.asv-machine.json): the committed results/ are never touched.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from ast import literal_eval
from itertools import product
from pathlib import Path

import pytest

from convbench import get_backend, records, suite
from convbench.registry import BUILTIN

ROOT = Path(__file__).resolve().parents[1]
CPU_BACKENDS = tuple(d.name for d in BUILTIN if get_backend(d.name).device_kind == "cpu")
MACHINE = "smoke"

pytestmark = pytest.mark.asv


def asv(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HOME": str(tmp_path), records.ENV: str(tmp_path / records.FILE)}
    return subprocess.run(
        [sys.executable, "-m", "asv", *args, "--config", str(tmp_path / "asv.conf.json")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp_path = tmp_path_factory.mktemp("asv")
    conf = json.loads((ROOT / "asv.conf.json").read_text())
    conf.update(
        repo=str(ROOT),
        benchmark_dir=str(ROOT / "benchmarks"),
        results_dir=str(tmp_path / "results"),
        html_dir=str(tmp_path / "html"),
        env_dir=str(tmp_path / "env"),
    )
    (tmp_path / "asv.conf.json").write_text(json.dumps(conf))
    done = asv(tmp_path, "machine", "--machine", MACHINE, "--yes")
    assert done.returncode == 0, done.stdout + done.stderr
    return tmp_path


def test_committed_config_is_what_the_readme_says():
    conf = json.loads((ROOT / "asv.conf.json").read_text())
    assert conf["benchmark_dir"] == "benchmarks"
    assert conf["results_dir"] == "results"
    assert conf["html_dir"] == "html"
    assert conf["environment_type"] == "existing"
    assert conf["launch_method"] == "forkserver"


def test_matrix_config_differs_only_in_its_environments():
    default = json.loads((ROOT / "asv.conf.json").read_text())
    matrix = json.loads((ROOT / "asv-matrix.conf.json").read_text())
    assert "matrix" not in default  # asv would expand it even for --python=same
    assert matrix["environment_type"] == "virtualenv" and matrix["matrix"]["req"]["torch"]
    assert "--no-deps" in matrix["build_command"][0]
    own = {"environment_type", "pythons", "matrix", "build_command"}
    assert {k: v for k, v in matrix.items() if k not in own} == {
        k: v for k, v in default.items() if k not in own
    }


def test_asv_check_passes(workdir):
    done = asv(workdir, "check", "--python=same")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "No problems found" in done.stdout


def test_quick_run_gives_numbers_for_every_cpu_backend(workdir):
    done = asv(
        workdir,
        "run",
        "--python=same",
        "--quick",
        "--set-commit-hash",
        "HEAD",
        "--machine",
        MACHINE,
        "--bench",
        r"Conv\.\w+\('[\w-]+', 64, 3, 'float(32|64)'\)",
        "--bench",
        r"Conv\.peakmem_op\('[\w-]+', 1024, 3, 'float(32|64)'\)",
        "--bench",
        r"Transfer\.time_end_to_end\('[\w-]+', 256, 3, 'float32'\)",
        "--bench",
        r"ConvSettings\.\w+\('jax-cpu precision=\w+', 1024, 3\)",
    )
    assert done.returncode == 0, done.stdout + done.stderr
    [result_file] = [
        p for p in (workdir / "results" / MACHINE).glob("*.json") if p.name != "machine.json"
    ]
    saved = json.loads(result_file.read_text())
    columns = saved["result_columns"]
    measured = {}  # (benchmark, *parameter reprs) -> value
    for name, row in saved["results"].items():
        values = dict(zip(columns, row, strict=False))  # asv drops trailing empty columns
        for combo, value in zip(product(*values["params"]), values["result"], strict=True):
            measured[(name, *combo)] = value
    names = ("time_op", "peakmem_op", "track_max_rel")
    for backend in map(repr, CPU_BACKENDS):
        for dtype in ("'float32'", "'float64'"):
            for name in names:
                # Peak memory is measured from 1024x1024 up: below, it is the frameworks' own;
                # there, a case the grid rules out (a known crash) is skipped, nan.
                size = 1024 if name == "peakmem_op" else 64
                value = measured[f"conv.Conv.{name}", backend, str(size), "3", dtype]
                ruled_out = suite.skip_reason(literal_eval(backend), size, 3, literal_eval(dtype))
                assert _is_number(value) != bool(ruled_out), (name, backend, dtype, value)
            assert 0 < measured["conv.Conv.time_op", backend, "64", "3", dtype] < 1
        assert measured["conv.Conv.track_max_rel", backend, "64", "3", "'float32'"] < 1e-5
        assert measured["conv.Conv.track_max_rel", backend, "64", "3", "'float64'"] < 1e-13
        transfer = measured["conv.Transfer.time_end_to_end", backend, "256", "3", "'float32'"]
        assert _is_number(transfer) and transfer > 0
    for precision in ("default", "highest"):
        variant = f"'jax-cpu precision={precision}'"
        assert 0 < measured["conv.ConvSettings.time_op", variant, "1024", "3"] < 1
        assert measured["conv.ConvSettings.track_max_rel", variant, "1024", "3"] < 1e-5
    # Every case asv measured has its record, written from the benchmark's own process.
    written = records.load(workdir / records.FILE)
    for backend in CPU_BACKENDS:
        for name in names:
            size = 1024 if name == "peakmem_op" else 64
            params = {"backend": backend, "size": size, "kernel": 3, "dtype": "float64"}
            record = written[records.case_key(f"Conv.{name}", params)]
            status = "skipped" if suite.skip_reason(backend, size, 3, "float64") else "ready"
            assert (record["status"], record["device"], record["precision"]) == (
                status,
                "cpu",
                "float64",
            )
    default = written[
        records.case_key(
            "ConvSettings.time_op",
            {"variant": "jax-cpu precision=default", "size": 1024, "kernel": 3},
        )
    ]
    assert (default["backend"], default["setting"], default["default_setting"]) == (
        "jax-cpu",
        "precision=default",
        True,
    )


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not math.isnan(value)
