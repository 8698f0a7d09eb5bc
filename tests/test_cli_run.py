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
from rich.console import Console

from convbench.cli import env_cmd, main
from convbench.cli.common import (
    ThreadCounts,
    print_notes,
    thread_counts,
    threads_cell,
    time_cell,
    warning_kind,
)
from convbench.cli.list_cmd import detail
from convbench.cli.run_cmd import exit_code
from convbench.registry import BackendStatus, get_backend
from convbench.sweep import read_records
from convbench.threads import default_threads

FIXTURE = Path(__file__).parent / "data" / "results"
QUICK = ["--min-run-time", "0.01", "--no-wait"]
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


TRUST = ["spread", "ci_low_s", "ci_high_s", "samples", "threads", "threads_asked", "busy_threads",
         "other_cores", "noisy", "noisy_reasons", "passes"]  # fmt: skip


def test_every_timing_carries_its_trust(sweep_file):
    records = pd.read_csv(sweep_file)
    ran = records[records.status == "ok"]
    assert set(TRUST) <= set(records.columns)
    assert set(ran.noisy) <= {True, False}
    assert (ran.noisy == ran.noisy_reasons.notna()).all()  # an empty reason reads back as NaN
    assert (ran.threads_asked == default_threads()).all()  # every core this process may use
    assert ran.passes.isin([1, 2]).all()
    twice = ran[ran.passes == 2]
    # On a quiet machine no timing is noisy: nothing is taken again and no pass1_* column exists.
    if not twice.empty:
        assert twice.pass1_noisy.all()  # only noisy timings are taken again
        assert twice.reported_pass.isin([1, 2]).all()


def test_run_sweeps_thread_counts(tmp_path):
    out = tmp_path / "threads.csv"
    result = invoke("run", "-b", "torch-cpu", "--size", "16", "-k", "3", *QUICK, "--threads",
                    "1-2", "--no-remeasure", "-o", str(out))  # fmt: skip
    assert result.exit_code == 0, result.output
    records = pd.read_csv(out)
    assert records.threads_asked.tolist() == [1, 2]
    assert records.threads.tolist() == [1, 2]  # torch read back what it was given
    assert "passes" in records and (records.passes == 1).all()


@pytest.mark.parametrize(
    ("values", "counts"),
    [([(1,), (2,)], [1, 2]), ([(1, 2, 3), (2,)], [1, 2, 3]), ([(4,), (1,)], [1, 4])],
)
def test_thread_counts_are_each_once_fewest_first(values, counts):
    assert thread_counts(values) == counts


def test_no_thread_count_means_every_core():
    assert thread_counts([]) == [default_threads()]


@pytest.mark.parametrize(("text", "counts"), [("3", (3,)), ("1-4", (1, 2, 3, 4)), ("2-2", (2,))])
def test_a_thread_option_is_a_count_or_a_range(text, counts):
    assert ThreadCounts().convert(text, None, None) == counts


@pytest.mark.parametrize("text", ["0", "-1", "2-1", "x", "1-", "1.5", "0-2"])
def test_a_bad_thread_option_is_refused_with_what_is_accepted(text):
    result = invoke("run", "-b", "scipy-correlate2d", "--threads", text)
    assert result.exit_code == 2
    assert f"{text!r} is not a thread count: give N or a range A-B, with 1 <= A <= B" in said(
        result
    )


@pytest.mark.parametrize(
    ("record", "cell"),
    [
        ({"threads": 2, "threads_asked": 2}, "2"),
        ({"threads": 1, "threads_asked": 4}, "1 (4 asked)"),  # scipy: one thread, whatever asked
        ({"threads": None, "threads_asked": 2, "median_s": 1.0}, "-"),  # a plugin's library
        ({"threads": None, "threads_asked": 2, "status": "unsupported"}, "2"),  # did not run
        ({"threads": None, "threads_asked": None}, "-"),  # a GPU backend
        ({"threads": float("nan"), "threads_asked": float("nan")}, "-"),
        ({}, "-"),
    ],
)
def test_threads_cell(record, cell):
    assert threads_cell(record) == cell


@pytest.mark.parametrize(
    ("record", "cell"),
    [
        ({"median_s": 1e-3, "noisy": False, "warning": ""}, "1 ms"),
        ({"median_s": 1e-3, "noisy": True, "warning": "wide spread: ..."}, "1 ms !"),
        ({"median_s": 1e-3, "noisy": False, "warning": "3 threads were busy while..."}, "1 ms !"),
        ({"median_s": float("nan")}, "-"),
        ({}, "-"),
    ],
)
def test_time_cell_marks_a_timing_with_a_warning(record, cell):
    assert time_cell(record) == cell


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("wide spread: IQR is 30% of the median (> 10%)", "wide spread"),
        ("busy machine: other processes used 1.20 of 2 cores while measured", "busy machine"),
        ("only 3 samples: too few for a 95% confidence interval", "too few samples"),
        ("4 threads were busy while the op was given 2", "more threads busy than given"),
    ],
)
def test_warning_kind_drops_the_numbers(text, kind):
    assert warning_kind(text) == kind


def test_notes_count_the_noisy_timings_and_say_which_were_taken_again():
    records = [
        {"status": "ok", "median_s": 1.0, "noisy": True, "passes": 2, "reported_pass": 2,
         "warning": "wide spread: IQR is 30%; busy machine: other processes used 1.2"},
        {"status": "ok", "median_s": 1.0, "noisy": False, "passes": 2, "reported_pass": 2,
         "warning": ""},
        {"status": "ok", "median_s": 1.0, "noisy": False, "passes": 1, "warning": ""},
        {"status": "error", "reason": "boom", "median_s": None},
    ]  # fmt: skip
    console = Console(width=400, record=True)
    print_notes(console, records)
    lines = console.export_text().splitlines()
    assert lines[0] == "[1] boom"
    assert lines[1].startswith("! noisy: the spread (IQR) is over 10% of the median")
    assert lines[2] == (
        "1 of 3 timings marked ! (busy machine 1, wide spread 1): a difference between them may "
        "be the machine's, not the backends'"
    )
    assert lines[3].startswith(
        "2 noisy timings were taken again after the others (1 still noisy); the table shows the "
        "second pass for 2 of them"
    )


def test_a_quiet_run_has_no_noisy_notes():
    console = Console(width=400, record=True)
    print_notes(console, [{"status": "ok", "median_s": 1.0, "noisy": False, "warning": ""}])
    assert console.export_text() == ""


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
                    "--min-run-time", "0", "--no-wait")  # fmt: skip
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
