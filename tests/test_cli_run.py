"""``convbench run`` and ``convbench compare``: tiny sweeps on scipy and torch-cpu, records written
and read back, exit codes, bad usage."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from convbench.cli import main
from convbench.cli.run_cmd import exit_code
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
        ["compare", "torch-cpu"],
        ["compare", "torch-cpu", "not-a-backend-or-path"],
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


def test_compare_two_backends_reports_speedup_and_agreement():
    result = invoke("compare", "scipy-correlate2d", "torch-cpu", "--size", "16", "-k", "3",
                    "-k", "4", *QUICK)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "A = scipy-correlate2d" in result.output
    lines = [line for line in result.output.splitlines() if "float32" in line]
    assert len(lines) == 2
    assert all(line.count(" ok ") >= 3 for line in lines)  # A, B and A-vs-B agreement


def test_compare_two_result_files(sweep_file, tmp_path):
    other = tmp_path / "other.json"
    assert invoke("run", "-b", "torch-cpu", *TINY, *QUICK, "-o", str(other)).exit_code == 0
    result = invoke("compare", str(sweep_file), str(other))
    assert result.exit_code == 0, result.output
    rows = [line for line in result.output.splitlines() if "torch-cpu" in line]
    assert len(rows) == 2  # the float32 cases both files hold


def test_compare_two_machine_folders():
    result = invoke("compare", str(FIXTURE / "fixture-cpu"), str(FIXTURE / "fixture-gpu"))
    assert result.exit_code == 0, result.output
    rows = [line for line in result.output.splitlines() if "torch-cpu" in line]
    assert len(rows) == 12  # torch-cpu is on both machines: 3 sizes x 2 kernels x 2 dtypes


def test_compare_a_results_root_with_two_machines_is_bad_usage():
    result = invoke("compare", str(FIXTURE), str(FIXTURE / "fixture-gpu"))
    assert result.exit_code == 2
    assert "point at one machine's folder" in result.output


def test_compare_exits_1_when_one_backend_cannot_run_the_case():
    # scipy has no float16: nothing to compare torch-cpu with.
    result = invoke("compare", "torch-cpu", "scipy-correlate2d", "--size", "16", "-k", "3",
                    "--dtype", "float16", *QUICK)  # fmt: skip
    assert result.exit_code == 1, result.output
    assert "unsupported" in result.output
