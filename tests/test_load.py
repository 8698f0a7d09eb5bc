"""convbench.load: exact parsing and arithmetic on fixed /proc text, then the live probe against
a CPU-burning process outside this process tree (seen) and this process's own work (not)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from convbench import load
from convbench.load import (
    BUSY_CORES,
    TICK,
    BusyProcess,
    Load,
    LoadProbe,
    MachineState,
    PidStat,
    busiest,
    busy_thread_count,
    descendants,
    machine_state,
    parse_cpu_lines,
    parse_pid_stat,
)

linux_only = pytest.mark.skipif(not Path("/proc/stat").exists(), reason="needs Linux /proc")

# proc(5): pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt
# utime stime cutime cstime priority nice threads itrealvalue starttime ...
STAT = "4242 (odd) name (x)) S 17 4242 4242 0 -1 4194560 10 0 0 0 120 30 7 3 20 0 5 0 98765 0"
PROC_STAT = """cpu  100 2 50 1000 40 0 6 3 0 0
cpu0 50 1 25 600 30 0 3 2 0 0
cpu1 50 1 25 400 10 0 3 1 0 0
intr 12345
ctxt 678
"""


def test_parse_pid_stat_counts_fields_after_the_last_parenthesis():
    assert parse_pid_stat(STAT) == PidStat(4242, "odd) name (x)", 17, 150, 10, 98765)


def test_parse_cpu_lines_gives_cores_and_idle_plus_iowait_ticks():
    assert parse_cpu_lines(PROC_STAT) == (2, 1040)
    assert parse_cpu_lines(PROC_STAT, allowed={0, 1, 7}) == (2, 1040)  # all: the total line
    assert parse_cpu_lines(PROC_STAT, allowed={1}) == (1, 410)


def test_descendants_are_children_grandchildren_and_so_on():
    parents = {1: 0, 10: 1, 11: 10, 12: 10, 13: 12, 20: 1, 21: 20}
    assert descendants(parents, 10) == {11, 12, 13}
    assert descendants(parents, 13) == set()
    assert descendants(parents, 99) == set()


def test_busy_threads_are_those_near_the_busiest():
    start = {1: 100, 2: 100, 3: 100}
    # Thread 4 was born in between: its ticks count from zero.
    end = {1: 200, 2: 180, 3: 110, 4: 40}
    assert busy_thread_count(start, end) == 3  # 100, 80 and 40 ticks; 10 < 25% of 100
    assert busy_thread_count(start, start) == 0
    assert busy_thread_count({1: 0}, {1: 1}) == 0  # one tick is rounding


def _stat(pid, ppid, ticks, name="p", started=5):
    return PidStat(pid, name, ppid, ticks, 0, started)


def test_busiest_leaves_out_my_tree_and_counts_new_processes_from_zero():
    me = 100
    before = {
        me: _stat(me, 1, 0),
        101: _stat(101, me, 0),  # my child
        200: _stat(200, 1, 10, "busy"),
        300: _stat(300, 1, 50, "reused", started=5),
        400: _stat(400, 1, 0, "idle"),
    }
    after = {
        me: _stat(me, 1, TICK),
        101: _stat(101, me, TICK),
        200: _stat(200, 1, 10 + TICK // 2, "kworker renamed"),
        300: _stat(300, 1, TICK // 4, "reused", started=9),  # a new process on an old pid
        400: _stat(400, 1, 1, "idle"),
        500: _stat(500, 1, TICK // 10, "newborn"),
    }
    found = busiest(before, after, seconds=1.0, top=5, min_cores=0.05, me=me)
    assert found == (
        BusyProcess(200, "kworker renamed", 0.5),
        BusyProcess(300, "reused", 0.25),
        BusyProcess(500, "newborn", 0.1),
    )
    assert busiest(before, after, 1.0, top=1, min_cores=0.05, me=me) == found[:1]


def _reading(wall, idle, own, threads=None, cores=2):
    return load._Reading(wall, cores, idle, own, threads, 0.5)


def test_other_load_is_time_not_idle_less_my_own():
    # 2 cores for 2 s = 4 core-seconds; 1 s idle, 1.5 s mine: others took 1.5 s, 0.75 cores.
    measured = load._load_between(_reading(10.0, 100.0, 3.0), _reading(12.0, 101.0, 4.5))
    assert measured.seconds == pytest.approx(2.0)
    assert measured.other_cores == pytest.approx(0.75)
    assert measured.other_share == pytest.approx(0.375)
    assert measured.busy
    assert str(measured) == "other processes used 0.75 of 2 cores"


def test_other_load_rounded_below_zero_reads_zero_and_unknown_stays_unknown():
    quiet = load._load_between(_reading(0.0, 0.0, 0.0), _reading(1.0, 1.02, 1.0))
    assert quiet.other_cores == 0.0
    assert not quiet.busy
    unknown = load._load_between(_reading(0.0, None, 0.0), _reading(1.0, None, 1.0))
    assert unknown.other_cores is None
    assert unknown.other_share is None
    assert not unknown.busy
    assert str(unknown) == "other load unknown"


def test_probe_counts_busy_threads_between_readings():
    start = _reading(0.0, 0.0, 0.0, threads={1: 0, 2: 0})
    end = _reading(1.0, 1.0, 1.0, threads={1: TICK, 2: 1})
    assert load._load_between(start, end).busy_threads == 1


def test_machine_state_warns_only_when_busy_and_names_the_processes():
    quiet = MachineState(Load(0.5, 2, 0.1, 0.2, 0.2, 0), ())
    assert quiet.quiet
    assert quiet.warning() is None
    busy = MachineState(Load(0.5, 2, 1.2, 1.5, 1.6, 0), (BusyProcess(77, "make -j2", 1.1),))
    assert not busy.quiet
    text = busy.warning()
    assert "1.20 of 2 cores" in text
    assert "make -j2 (pid 77) 1.10 cores" in text
    assert f"threshold {BUSY_CORES} cores" in text


BURN = "import time\nend = time.perf_counter() + {seconds}\nwhile time.perf_counter() < end: pass"
# Starts a burner and exits at once: the burner is then nobody's child here (init adopts it),
# which is what a process of another user or job looks like. It prints its pid once running.
DETACH = (
    "import subprocess, sys\n"
    "code = 'import os; print(os.getpid(), flush=True)\\n' + sys.argv[1]\n"
    "subprocess.Popen([sys.executable, '-c', code], start_new_session=True)\n"
)


@pytest.fixture
def foreign_burner():
    """A process outside this tree that burns one core for about 2 s; yields its pid."""
    launcher = subprocess.Popen(
        [sys.executable, "-c", DETACH, BURN.format(seconds=2.0)],
        stdout=subprocess.PIPE,
        text=True,
    )
    pid = int(launcher.stdout.readline())
    launcher.wait()
    launcher.stdout.close()
    yield pid
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)


@linux_only
def test_probe_sees_a_foreign_process_burning_a_core(foreign_burner):
    assert foreign_burner not in descendants(
        {pid: s.ppid for pid, s in load._all_processes().items()}, os.getpid()
    )
    state = machine_state(window=0.8)
    assert state.load.other_cores >= 0.5
    assert not state.quiet
    # A core to itself on a quiet machine; its share of two on a machine already busy.
    burner = [p for p in state.busy if p.pid == foreign_burner]
    assert burner and burner[0].cores >= 0.2
    assert f"(pid {foreign_burner})" in state.warning()


@linux_only
def test_probe_does_not_count_this_process_or_its_children():
    before = machine_state(window=0.3)
    if not before.quiet:
        pytest.skip(f"the machine is busy, so 'quiet' cannot be checked: {before.warning()}")
    child = subprocess.Popen([sys.executable, "-c", BURN.format(seconds=1.5)])
    done = threading.Event()

    def burn_then_wait() -> None:
        exec(BURN.format(seconds=0.8))
        done.wait()  # alive until the probe has read it: a thread that has ended has no stat

    burning = threading.Thread(target=burn_then_wait)
    time.sleep(0.2)  # the child's interpreter starting
    with LoadProbe() as probe:
        burning.start()
        time.sleep(0.9)
    done.set()
    burning.join()
    child.wait()
    measured = probe.result
    assert measured.seconds >= 0.8
    assert measured.other_cores < 0.2
    assert measured.busy_threads == 1  # the burning thread; the main one slept in join()


@linux_only
def test_probe_reads_cores_and_load_average_on_linux():
    before = os.getloadavg()[0]
    with LoadProbe() as probe:
        time.sleep(0.05)
    after = os.getloadavg()[0]
    measured = probe.result
    assert measured.cores == len(os.sched_getaffinity(0))
    assert measured.load_average_start in (before, after)
    assert measured.load_average_end in (before, after)
    assert measured.busy_threads == 0  # asleep
