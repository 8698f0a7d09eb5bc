"""convbench.threads: the count set is the count in force, read back from each library and seen
in the threads the op keeps busy. TensorFlow and XLA fix their count when they start, so they
are checked in fresh processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import convbench
from convbench.backends import threads as controls
from convbench.threads import (
    ThreadsLocked,
    available_cores,
    check_count,
    default_threads,
    env_count,
    set_threads,
    thread_env,
    threads_in_use,
)
from convbench.timing import Task, Timer

ROOT = Path(__file__).resolve().parents[1]
linux_only = pytest.mark.skipif(not Path("/proc/stat").exists(), reason="needs Linux /proc")
START_VARIABLES = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "TF_NUM_INTRAOP_THREADS",
    "PJRT_NPROC",
)


def test_default_is_every_core_this_process_may_use():
    assert available_cores() == len(os.sched_getaffinity(0))
    assert default_threads() == available_cores()


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2", None])
def test_a_count_must_be_a_positive_integer(bad):
    with pytest.raises(ValueError, match=f"threads={bad!r} must be a positive integer"):
        check_count(bad)
    with pytest.raises(ValueError, match="must be a positive integer"):
        set_threads("scipy", bad)


def test_thread_env_sets_every_start_up_variable_and_keeps_the_rest():
    env = thread_env(3, {"PATH": "/bin", "OMP_NUM_THREADS": "8"})
    assert env == {"PATH": "/bin", **dict.fromkeys(START_VARIABLES, "3")}
    before = dict(os.environ)
    assert thread_env(2) == {**before, **dict.fromkeys(START_VARIABLES, "2")}
    assert dict(os.environ) == before


@pytest.mark.parametrize(("value", "count"), [("3", 3), ("0", None), ("-2", None), ("x", None)])
def test_env_count_reads_positive_counts_only(monkeypatch, value, count):
    monkeypatch.setenv("CONVBENCH_TEST_THREADS", value)
    assert env_count("CONVBENCH_TEST_THREADS") == count
    monkeypatch.delenv("CONVBENCH_TEST_THREADS")
    assert env_count("CONVBENCH_TEST_THREADS") is None


def test_an_unknown_library_is_named_with_the_known_ones():
    with pytest.raises(ValueError, match=r"library 'numpy'; known: \['jax', 'keras', 'opencv'"):
        set_threads("numpy", 1)
    with pytest.raises(ValueError, match="no thread control for library 'numpy'"):
        threads_in_use("numpy")


def test_every_cpu_backend_library_has_a_thread_control():
    from convbench.registry import BUILTIN

    cpu_libraries = {
        convbench.get_backend(decl.name).library
        for decl in BUILTIN
        if convbench.get_backend(decl.name).device_kind == "cpu"
    }
    assert cpu_libraries <= set(controls.CONTROLS)


def test_scipy_runs_on_one_thread_whatever_is_asked():
    assert set_threads("scipy", 4) == 1
    assert threads_in_use("scipy") == 1


def test_jax_before_start_takes_its_count_from_pjrt_nproc(monkeypatch):
    monkeypatch.setattr(controls, "_jax_started", lambda: False)
    monkeypatch.setenv("PJRT_NPROC", "5")
    assert threads_in_use("jax") == 5
    assert set_threads("jax", 3) == 3
    assert os.environ["PJRT_NPROC"] == "3"


def test_jax_after_start_keeps_its_count(monkeypatch):
    monkeypatch.setattr(controls, "_jax_started", lambda: True)
    monkeypatch.setenv("PJRT_NPROC", "2")
    assert set_threads("jax", 2) == 2
    with pytest.raises(ThreadsLocked, match=r"jax has started with a thread count of 2 .* to 3"):
        set_threads("jax", 3)
    assert os.environ["PJRT_NPROC"] == "2"


def _busy_threads(backend: str, threads: int) -> int:
    rng = np.random.default_rng(0)
    image = rng.standard_normal((512, 512), dtype=np.float32)
    kernel = rng.standard_normal((7, 7), dtype=np.float32)
    prepared = convbench.get_backend(backend).prepare(image, kernel)
    task = Task(backend, threads=threads)
    return Timer.of(prepared, task).blocked_autorange(min_run_time=0.3).load.busy_threads


@pytest.fixture
def torch_threads():
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    yield torch
    torch.set_num_threads(before)


def test_torch_reads_back_the_count_set(torch_threads):
    assert set_threads("torch", 1) == 1
    assert threads_in_use("torch") == torch_threads.get_num_threads() == 1
    assert set_threads("torch", available_cores()) == available_cores()


@linux_only
def test_torch_keeps_as_many_threads_busy_as_it_was_given(torch_threads):
    set_threads("torch", 1)
    assert _busy_threads("torch-cpu", 1) == 1
    if available_cores() < 2:
        pytest.skip("one core: a second thread cannot be seen")
    set_threads("torch", 2)
    assert _busy_threads("torch-cpu", 2) == 2


@linux_only
def test_scipy_keeps_one_thread_busy():
    assert _busy_threads("scipy-correlate2d", 1) == 1


# Runs in a fresh process: set (or take from the environment) one thread, run the backend's op,
# then ask for two. Prints what it saw as JSON.
FRESH = """
import json, sys
import numpy as np
import convbench
from convbench.threads import ThreadsLocked, set_threads, threads_in_use
from convbench.timing import Timer

library, backend, call_set = sys.argv[1], sys.argv[2], sys.argv[3] == "set"
seen = {"set": set_threads(library, 1) if call_set else None}
rng = np.random.default_rng(0)
image = rng.standard_normal((512, 512), dtype=np.float32)
kernel = rng.standard_normal((7, 7), dtype=np.float32)
prepared = convbench.get_backend(backend).prepare(image, kernel)
seen["busy"] = Timer.of(prepared).blocked_autorange(min_run_time=0.3).load.busy_threads
seen["in_use"] = threads_in_use(library)
seen["again"] = set_threads(library, 1)
try:
    set_threads(library, 2)
except ThreadsLocked as error:
    seen["locked"] = str(error)
print(json.dumps(seen))
"""


def _fresh(library: str, backend: str, how: str, env: dict[str, str]) -> dict:
    pytest.importorskip(library)
    done = subprocess.run(
        [sys.executable, "-c", FRESH, library, backend, how],
        env={**env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(done.stdout.splitlines()[-1])


@pytest.mark.slow  # TensorFlow (and torch before it) starts in a fresh process: 6 s and more
@linux_only
def test_tensorflow_takes_its_count_before_its_first_op_and_keeps_it():
    seen = _fresh("tensorflow", "tensorflow-cpu", "set", dict(os.environ))
    assert seen["set"] == seen["in_use"] == seen["again"] == 1
    assert seen["busy"] == 1
    assert "TensorFlow has started with a thread count of 1" in seen["locked"]
    assert "thread_env(2)" in seen["locked"]


@linux_only
def test_jax_takes_its_count_from_thread_env_when_it_starts():
    seen = _fresh("jax", "jax-cpu", "env", thread_env(1))
    assert seen["set"] is None
    assert seen["in_use"] == seen["again"] == 1
    assert seen["busy"] == 1
    assert "jax has started with a thread count of 1" in seen["locked"]
