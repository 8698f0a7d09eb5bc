"""Timings taken beside a CPU-burning process are marked noisy, and the same case on a quiet
machine is not: the sweep's records judged against the load the test itself makes."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from convbench.load import BUSY_CORES, machine_state
from convbench.spec import ConvSpec
from convbench.sweep import Case, SweepOptions, run_sweep
from convbench.threads import available_cores

CASE = Case("scipy-correlate2d", 32, 3, "float32", 1, ConvSpec(), threads=1)
OPTIONS = SweepOptions(min_run_time=0.3)


@pytest.fixture
def burners() -> Iterator[list[subprocess.Popen]]:
    """One busy-looping process per core this process may use, ended after the test."""
    started = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"])
        for _ in range(available_cores())
    ]
    try:
        time.sleep(0.3)  # their interpreters start and begin to spin
        yield started
    finally:
        for process in started:
            process.kill()
            process.wait()


def test_a_timing_beside_a_cpu_burner_is_marked_noisy(burners):
    assert all(process.poll() is None for process in burners)
    (record,) = run_sweep([CASE], OPTIONS).records
    assert record["status"] == "ok", record["reason"]
    assert record["other_cores"] > BUSY_CORES
    assert record["noisy"] is True
    assert "busy machine: other processes used" in record["noisy_reasons"]
    assert "busy machine" in record["warning"]


def test_the_same_case_on_a_quiet_machine_is_not_noisy():
    before = machine_state()
    if not before.quiet:
        pytest.skip(f"needs a quiet machine: {before.warning()}")
    (record,) = run_sweep([CASE], OPTIONS, remeasure=True).records
    if record["other_cores"] > BUSY_CORES:
        pytest.skip(f"the machine turned busy while measuring: {record['noisy_reasons']}")
    assert record["status"] == "ok", record["reason"]
    assert record["noisy"] is False, record["noisy_reasons"]
    assert record["noisy_reasons"] == ""
