"""Fault injection: what a sweep keeps when a backend or the sweep itself is brought down.

Backends from ``tests/fault_backends.py`` are installed as third-party plugins (an entry point
of group ``convbench.backends`` in a temporary ``.dist-info`` folder on the path) and misbehave
on the 13x13 image only: each test asserts which cases were kept, where, and with what reason.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from convbench.cli import main
from convbench.sweep import STREAM_SUFFIX, Output, load_stream, run_sweep
from tests.fault_backends import ENTRY_POINTS, FAULT_SIZE

ROOT = Path(__file__).resolve().parent.parent
SIZES = ["--size", "8", "--size", str(FAULT_SIZE), "--size", "16"]
QUICK = ["-k", "3", "--min-run-time", "0.01", "--no-wait"]
CRASHES = {
    "fault-segv": "worker process died with signal SIGSEGV",
    "fault-exit": "the backend called sys.exit(0)",
    "fault-hard-exit": "worker process exited with status 0 while running the case",
    "fault-interrupt": "the backend raised KeyboardInterrupt",
    "fault-memory": "out of memory: MemoryError: Unable to allocate 64.0 GiB for an array",
    "fault-oom-kill": "worker process died with signal SIGKILL "
    "(the system's out-of-memory killer sends it)",
}


@pytest.fixture(scope="module")
def plugins(tmp_path_factory) -> Path:
    """The fault backends installed as entry points, for this process and its children."""
    folder = tmp_path_factory.mktemp("site")
    info = folder / "convbench_faults-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: convbench-faults\nVersion: 1.0\n")
    lines = [f"{name} = {target}" for name, target in ENTRY_POINTS.items()]
    (info / "entry_points.txt").write_text("[convbench.backends]\n" + "\n".join(lines) + "\n")
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(folder))
        yield folder


def invoke(*args: str):
    return CliRunner().invoke(main, list(args))


def said(result) -> str:
    """The command's output with line wrapping undone."""
    return " ".join(result.output.split())


@pytest.fixture(scope="module")
def crash_sweep(plugins, tmp_path_factory):
    """One sweep over every crashing backend: its result, records and output path."""
    out = tmp_path_factory.mktemp("crash") / "out.csv"
    backends = [arg for name in CRASHES for arg in ("-b", name)]
    result = invoke("run", *backends, *SIZES, *QUICK, "-o", str(out))
    return result, pd.read_csv(out), out


@pytest.mark.parametrize("backend", sorted(CRASHES))
def test_a_crash_loses_its_case_only(crash_sweep, backend):
    _, records, _ = crash_sweep
    mine = records[records.backend == backend].set_index("size")
    assert mine.status.to_dict() == {8: "ok", FAULT_SIZE: "error", 16: "ok"}
    assert mine.reason[FAULT_SIZE] == CRASHES[backend]
    assert mine.ok[8] and mine.ok[16]


def test_a_crashed_case_keeps_the_backend_facts(crash_sweep):
    _, records, _ = crash_sweep
    crashed = records[records.status == "error"]
    assert len(crashed) == len(CRASHES)
    assert set(crashed.library) == {"numpy"} and set(crashed.device) == {"cpu"}
    assert set(crashed.precision) == {"float32"}
    assert crashed.tolerance.notna().all()


def test_a_sweep_with_crashes_writes_everything_and_exits_1(crash_sweep):
    result, records, out = crash_sweep
    assert result.exit_code == 1, result.output
    assert len(records) == 3 * len(CRASHES)
    assert not Path(str(out) + STREAM_SUFFIX).exists()  # the output holds what it streamed
    assert f"wrote {len(records)} records" in said(result)


def test_a_hang_is_cut_at_the_case_timeout(plugins, tmp_path):
    out = tmp_path / "out.json"
    started = time.monotonic()
    # Long enough for a new worker's start on a busy machine (the case after the hang needs one).
    result = invoke("run", "-b", "fault-hang", *SIZES, *QUICK, "--case-timeout", "5",
                    "-o", str(out))  # fmt: skip
    assert time.monotonic() - started < 60
    assert result.exit_code == 1, result.output
    records = pd.read_json(out).set_index("size")
    assert records.status.to_dict() == {8: "ok", FAULT_SIZE: "error", 16: "ok"}
    assert records.reason[FAULT_SIZE] == "exceeded the per-case time limit of 5 s"


def test_a_broken_plugin_is_named_with_why(plugins):
    result = invoke("run", "-b", "fault-broken", "--size", "8")
    assert result.exit_code == 2
    assert "backend plugin 'fault-broken'" in said(result)
    assert "ModuleNotFoundError: No module named 'tests.no_such_plugin'" in said(result)
    assert "Traceback" not in result.output


def test_each_case_is_streamed_as_it_finishes(plugins, tmp_path):
    """When a case starts, every case before it is already in the stream, and the step says
    how many have finished."""
    from convbench.spec import ConvSpec
    from convbench.sweep import SweepOptions, build_cases

    output = Output(tmp_path / "out.parquet")
    cases = build_cases(["fault-none"], [8, 9, 10], [3], ["float32"], 1, ConvSpec())
    seen = []
    run = run_sweep(
        cases,
        SweepOptions(min_run_time=0.0),
        output,
        announce=lambda step: seen.append(
            (step.done, step.planned, [r["size"] for r in load_stream(output.stream)])
        ),
    )
    assert seen == [(0, 3, []), (1, 3, [8]), (2, 3, [8, 9])]
    assert [r["status"] for r in run.records] == ["ok"] * 3
    assert pd.read_parquet(output.path)["size"].tolist() == [8, 9, 10]
    assert not output.stream.exists()


def test_an_unwritable_output_is_refused_before_any_case(plugins, tmp_path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("a file, not a folder")
    # The hanging backend would take the whole time limit if its case ran first.
    result = invoke("run", "-b", "fault-hang", "--size", str(FAULT_SIZE), *QUICK,
                    "--case-timeout", "20", "-o", str(blocker / "out.csv"))  # fmt: skip
    assert result.exit_code == 2, result.output
    assert f"cannot write in folder '{blocker}'" in said(result)


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_a_full_disk_stops_the_sweep_and_keeps_what_finished(plugins, tmp_path):
    out = tmp_path / "out.csv"
    Path(str(out) + STREAM_SUFFIX).symlink_to("/dev/full")  # every write: ENOSPC
    result = invoke("run", "-b", "fault-none", "--size", "8", "--size", "16", *QUICK,
                    "-o", str(out))  # fmt: skip
    assert result.exit_code == 1, result.output
    assert "No space left on device; the sweep stopped after 1 cases" in said(result)
    assert pd.read_csv(out)["size"].tolist() == [8]  # the output, on another disk, has it


def test_an_earlier_runs_stream_is_never_overwritten(plugins, tmp_path):
    out = tmp_path / "out.csv"
    stream = Path(str(out) + STREAM_SUFFIX)
    kept = json.dumps({"backend": "fault-none", "size": 8, "status": "ok"}) + "\n"
    stream.write_text(kept + '{"backend": "fault-none", "si')  # a torn last line
    result = invoke("run", "-b", "fault-none", "--size", "8", *QUICK, "-o", str(out))
    assert result.exit_code == 2
    assert "holds 1 finished cases of an earlier run that did not end" in said(result)
    assert stream.read_text().startswith(kept)


def test_an_empty_stream_is_replaced(plugins, tmp_path):
    out = tmp_path / "out.csv"
    Path(str(out) + STREAM_SUFFIX).write_text("")
    result = invoke("run", "-b", "fault-none", "--size", "8", *QUICK, "-o", str(out))
    assert result.exit_code == 0, result.output
    assert pd.read_csv(out).status.tolist() == ["ok"]


# The driver as a user runs it: a separate process, signalled while it sweeps.


def children(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (Linux /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def start_sweep(plugins: Path, out: Path) -> subprocess.Popen:
    """``convbench run`` over 40 cases of about 0.1 s each, in its own process group."""
    sizes = [arg for size in range(20, 60) for arg in ("--size", str(size))]
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(plugins), str(ROOT)])}
    return subprocess.Popen(
        [sys.executable, "-m", "convbench", "run", "-b", "fault-none", *sizes, "-k", "3",
         "--min-run-time", "0.05", "--no-wait", "-o", str(out)],
        cwd=out.parent, env=environment, start_new_session=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def wait_for_lines(stream: Path, count: int, process: subprocess.Popen) -> int:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        if stream.exists() and len(load_stream(stream)) >= count:
            return len(load_stream(stream))
        time.sleep(0.05)
    raise AssertionError(f"the sweep streamed fewer than {count} cases: {process.poll()}")


def streamed_sizes(path: Path) -> list[int]:
    return [record["size"] for record in load_stream(path)]


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc; the worker's parent death signal")
def test_kill_9_keeps_the_finished_cases_in_the_stream(plugins, tmp_path):
    out = tmp_path / "out.csv"
    stream = Path(str(out) + STREAM_SUFFIX)
    process = start_sweep(plugins, out)
    wait_for_lines(stream, 2, process)
    workers = children(process.pid)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    sizes = streamed_sizes(stream)
    assert len(sizes) >= 2 and sizes == list(range(20, 20 + len(sizes)))
    assert {r["status"] for r in load_stream(stream)} == {"ok"}
    assert not out.exists()
    # The worker does not outlive its driver.
    deadline = time.monotonic() + 10
    while any(Path(f"/proc/{pid}").exists() for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(workers) == 1 and not Path(f"/proc/{workers[0]}").exists()


@pytest.mark.parametrize(
    ("signal_number", "status"),
    [
        pytest.param(signal.SIGINT, 130, id="SIGINT"),
        pytest.param(signal.SIGTERM, 143, id="SIGTERM"),
    ],
)
def test_a_signal_stops_the_sweep_and_writes_what_finished(
    plugins, tmp_path, signal_number, status
):
    out = tmp_path / "out.csv"
    stream = Path(str(out) + STREAM_SUFFIX)
    process = start_sweep(plugins, out)
    before = wait_for_lines(stream, 2, process)
    # Ctrl-C in a terminal signals the whole foreground process group, worker included.
    os.killpg(process.pid, signal_number)
    stdout, _ = process.communicate(timeout=60)
    assert process.returncode == status, stdout
    name = signal.Signals(signal_number).name
    assert f"interrupted by {name} after" in stdout
    sizes = pd.read_csv(out)["size"].tolist()
    assert before <= len(sizes) < 40 and sizes == list(range(20, 20 + len(sizes)))
    assert not stream.exists()
