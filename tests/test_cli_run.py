"""``convbench run``, ``list`` and ``env``: tiny sweeps on scipy and torch-cpu, records written and
read back, exit codes, bad usage."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from convbench.cli import env_cmd, main
from convbench.cli.list_cmd import detail
from convbench.cli.run_cmd import exit_code
from convbench.registry import BackendStatus, get_backend
from convbench.sweep import read_records

FIXTURE = Path(__file__).parent / "data" / "results"
QUICK = ["--min-run-time", "0.01"]
TINY = ["--size", "16", "--size", "24", "--kernel-size", "3"]


def invoke(*args: str):
    return CliRunner().invoke(main, list(args))


@pytest.fixture(scope="module")
def sweep_file(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("run") / "records.csv"
    result = invoke(
        "run", "-b", "scipy-correlate2d", "-b", "torch-cpu", *TINY, *QUICK,
        "--dtype", "float32", "--dtype", "float16", "--output", str(out),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "unsupported [1]" in result.output  # scipy has no float16; a reason, not a failure
    assert "float16 would be silently upcast" in result.output
    return out


def test_run_records_every_case(sweep_file):
    records = pd.read_csv(sweep_file)
    assert len(records) == 2 * 2 * 2  # backends x sizes x dtypes
    assert set(records.status) == {"ok", "unsupported"}
    unsupported = records[records.status == "unsupported"]
    assert set(unsupported.backend) == {"scipy-correlate2d"}
    assert set(unsupported.dtype) == {"float16"}
    ran = records[records.status == "ok"]
    assert (ran.median_s > 0).all() and (ran.q25_s <= ran.q75_s).all()
    assert (ran.max_rel <= ran.tolerance).all()
    assert ran.ok.all()
    # GB/s is bytes read and written over the median time.
    row = ran[(ran.backend == "torch-cpu") & (ran["size"] == 24) & (ran.dtype == "float32")].iloc[0]
    assert row.gb_per_s == pytest.approx(4 * (24 * 24 * 2 + 9) / row.median_s / 1e9)
    assert set(ran.precision) == {"float32", "float16"}


@pytest.mark.parametrize("suffix", [".json", ".parquet"])
def test_run_writes_json_and_parquet(tmp_path, suffix):
    out = tmp_path / f"records{suffix}"
    spec = ["--op", "convolve", "--mode", "full", "--boundary", "wrap"]
    result = invoke("run", "-b", "scipy-correlate2d", "--size", "16", "-k", "3", *QUICK, *spec,
                    "-o", str(out))  # fmt: skip
    assert result.exit_code == 0, result.output
    records = read_records(out)
    columns = ["backend", "size", "kernel", "op", "mode", "boundary", "status"]
    assert records[columns].values.tolist() == [
        ["scipy-correlate2d", 16, 3, "convolve", "full", "wrap", "ok"]
    ]


def test_run_failing_case_is_recorded_and_exits_1(tmp_path):
    out = tmp_path / "r.csv"
    # A 5x5 kernel on a 2x2 image has no 'valid' output: that case fails, the next one runs.
    result = invoke("run", "-b", "scipy-correlate2d", "--size", "2", "--size", "8", "-k", "5",
                    "--mode", "valid", *QUICK, "-o", str(out))  # fmt: skip
    assert result.exit_code == 1, result.output
    records = pd.read_csv(out)
    assert records.status.tolist() == ["error", "ok"]
    assert "ValueError" in records.reason[0]


def test_run_with_nothing_runnable_exits_1():
    result = invoke("run", "-b", "scipy-correlate2d", "--dtype", "float16", "--size", "8", *QUICK)
    assert result.exit_code == 1
    assert "2 unsupported" in result.output  # default kernels 3 and 7


@pytest.mark.parametrize(
    "args",
    [
        ["run", "-b", "no-such-backend"],
        ["run", "--size", "0"],
        ["run", "--dtype", "int8"],
        ["run", "--mode", "middle"],
        ["run", "-b", "torch-cpu", "-o", "out.xlsx"],
    ],
)
def test_bad_usage_exits_2(args):
    result = invoke(*args)
    assert result.exit_code == 2, result.output


def test_exit_code_policy():
    assert exit_code([{"status": "ok"}, {"status": "unsupported"}]) == 0
    assert exit_code([{"status": "ok"}, {"status": "mismatch"}]) == 1
    assert exit_code([{"status": "ok"}, {"status": "error"}]) == 1
    assert exit_code([{"status": "unsupported"}]) == 1


@pytest.mark.parametrize("command", ["run", "compare", "report", "list"])
def test_every_command_has_help(command):
    result = invoke(command, "--help")
    assert result.exit_code == 0
    assert "Usage:" in result.output


def said(result) -> str:
    """The command's output with line wrapping undone."""
    return " ".join(result.output.split())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--min-run-time", "inf"], "'inf' is not a finite number of seconds >= 0"),
        (["--min-run-time", "nan"], "'nan' is not a finite number of seconds >= 0"),
        (["--min-run-time", "-1"], "'-1' is not a finite number of seconds >= 0"),
        (["--min-run-time", "soon"], "'soon' is not a number of seconds"),
        (["--case-timeout", "0"], "'0' is not a finite number of seconds > 0"),
        (["--case-timeout", "inf"], "'inf' is not a finite number of seconds > 0"),
        (["--seed", "-1"], "-1 is not in the range x>=0"),
    ],
)
@pytest.mark.parametrize("command", ["run", "compare scipy-correlate2d torch-cpu"])
def test_bad_numbers_are_refused_with_the_accepted_range(command, args, message):
    result = invoke(*command.split(), *args)
    assert result.exit_code == 2
    assert message in said(result)
    assert "Traceback" not in result.output


def test_min_run_time_zero_is_accepted():
    result = invoke("run", "-b", "scipy-correlate2d", "--size", "8", "-k", "3",
                    "--min-run-time", "0")  # fmt: skip
    assert result.exit_code == 0, result.output


def test_list_is_cheap_by_default_and_says_so():
    result = invoke("list")
    assert result.exit_code == 0, result.output
    assert "cheap check: installed packages and GPU device nodes" in said(result)
    assert "scipy-correlate2d" in result.output


@pytest.mark.skipif(importlib.util.find_spec("cupy") is not None, reason="cupy is installed")
def test_list_prints_the_install_hint_with_its_brackets():
    # rich would read [cupy] as markup and drop it, leaving 'convbench'.
    assert "'convbench[cupy]'" in invoke("list").output


def test_list_imports_no_framework_by_default():
    code = (
        "import sys; from convbench.cli import main\n"
        "try: main(['list'])\n"
        "except SystemExit: pass\n"
        "print(sorted({'torch', 'tensorflow', 'jax'} & set(sys.modules)))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.splitlines()[-1] == "[]"


def test_list_deep_shows_settings_of_an_available_backend():
    status = BackendStatus("scipy-correlate2d", "scipy", "cpu", available=True)
    assert detail(status, deep=True) == ", ".join(
        f"{k}={v}" for k, v in get_backend("scipy-correlate2d").settings().items()
    )
    assert detail(status, deep=False).startswith("scipy ")


def test_env_output_that_cannot_be_written_is_refused_before_collecting(tmp_path, monkeypatch):
    monkeypatch.setattr(env_cmd, "collect_environment", lambda machine: pytest.fail("collected"))
    blocker = tmp_path / "file.txt"
    blocker.write_text("a file, not a folder")
    result = invoke("env", "--machine", "m", "--output", str(blocker / "env.json"))
    assert result.exit_code == 2
    assert f"cannot write in folder '{blocker}'" in said(result)


def test_env_writes_its_record_atomically(tmp_path, monkeypatch):
    record = {"machine": "m", "cpu": "a cpu", "gpu": None, "backends": {"x": {"available": True}}}
    monkeypatch.setattr(env_cmd, "collect_environment", lambda machine: record)
    out = tmp_path / "env.json"
    out.write_text("the previous record")
    result = invoke("env", "--machine", "m", "--output", str(out))
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text()) == record
    assert os.listdir(tmp_path) == ["env.json"]  # no temporary left beside it
