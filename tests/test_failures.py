"""A failing benchmark case is recorded with its reason and raised; the suites' block timing."""

from __future__ import annotations

import time

import numpy as np
import pytest
from asv_runner.benchmarks.mark import SkipNotImplemented

import convbench
from benchmarks import conv
from convbench import failures, suite


class FakeOutOfMemoryError(RuntimeError):
    """Named like torch's and CuPy's errors."""


@pytest.mark.parametrize(
    ("error", "oom"),
    [
        (FakeOutOfMemoryError("CUDA out of memory. Tried to allocate 64.00 GiB"), True),
        (RuntimeError("RESOURCE_EXHAUSTED: Out of memory while trying to allocate"), True),
        (RuntimeError("OOM when allocating tensor with shape[16,1,8192,8192]"), True),
        (MemoryError(), True),
        (ValueError("kernel must be 2-D"), False),
    ],
)
def test_out_of_memory_is_recognised_whichever_framework_raised_it(error, oom):
    assert failures.is_out_of_memory(error) is oom
    assert failures.describe(error).startswith("out of memory: ") is oom
    assert type(error).__name__ in failures.describe(error)


def test_describe_keeps_the_first_line():
    error = RuntimeError("first line\nthe traceback of a C++ library\nmore")
    assert failures.describe(error) == "RuntimeError: first line"


def test_record_appends_one_line_per_failure(tmp_path, monkeypatch):
    path = tmp_path / failures.FILE
    monkeypatch.setenv(failures.ENV, str(path))
    monkeypatch.delenv("CONVBENCH_COMMIT", raising=False)
    monkeypatch.setenv("ASV_COMMIT", "abc")
    failures.record("Conv.setup", {"backend": "torch-cuda", "size": 8192}, MemoryError("x"))
    failures.record("Conv.time_op", {"backend": "jax-gpu", "size": 64}, ValueError("y"))
    with open(path, "a") as file:
        file.write('{"torn": ')  # a process killed while writing
    records = failures.load(path)
    assert [r["benchmark"] for r in records] == ["Conv.setup", "Conv.time_op"]
    assert records[0] == {
        "benchmark": "Conv.setup",
        "backend": "torch-cuda",
        "size": 8192,
        "reason": "out of memory: MemoryError: x",
        "commit": "abc",
    }


def test_record_writes_nothing_without_a_path(tmp_path, monkeypatch):
    monkeypatch.delenv(failures.ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    failures.record("Conv.setup", {}, MemoryError())
    assert list(tmp_path.iterdir()) == []
    assert failures.load(tmp_path / "absent.jsonl") == []


class HugeBackend:
    """Asks numpy for an array no machine has: a real MemoryError, raised in ``prepare``."""

    def configure(self, **options):
        return self

    def prepare(self, image, kernel, spec):
        return np.empty(2**45, dtype=np.float64)  # 256 TiB


def test_a_failing_setup_is_recorded_and_raised_for_asv(tmp_path, monkeypatch):
    path = tmp_path / failures.FILE
    monkeypatch.setenv(failures.ENV, str(path))
    monkeypatch.setattr(convbench, "get_backend", lambda name: HugeBackend())
    case = conv.ConvBatch()
    with pytest.raises(MemoryError):
        case.setup("torch-cpu", 16, 64, 3, "float32")
    (record,) = failures.load(path)
    assert record["benchmark"] == "ConvBatch.setup"
    assert (record["backend"], record["batch"], record["size"]) == ("torch-cpu", 16, 64)
    assert record["reason"].startswith("out of memory: ")


def test_a_skipped_case_is_not_a_failure(tmp_path, monkeypatch):
    path = tmp_path / failures.FILE
    monkeypatch.setenv(failures.ENV, str(path))
    with pytest.raises(SkipNotImplemented, match="budget"):
        conv.Conv().setup("scipy-correlate2d", 4096, 15, "float64")
    assert not path.exists()


def test_settings_variant_failures_name_backend_and_setting(tmp_path, monkeypatch):
    path = tmp_path / failures.FILE
    monkeypatch.setenv(failures.ENV, str(path))
    monkeypatch.setattr(convbench, "get_backend", lambda name: HugeBackend())
    with pytest.raises(MemoryError):
        conv.ConvSettings().setup("jax-cpu precision=highest", 1024, 3)
    (record,) = failures.load(path)
    assert (record["backend"], record["setting"]) == ("jax-cpu", "precision=highest")


def test_calibrate_fills_a_block_and_times_a_second_call():
    calls = []

    def op():
        calls.append(1)
        if len(calls) == 1:
            time.sleep(0.05)  # the first call autotunes
        else:
            time.sleep(2e-4)

    inner = conv.calibrate(op, lambda: None)
    assert len(calls) == 2
    # BLOCK_TIME / ~0.2 ms, less when sleeping overshoots; never from the slow first call.
    assert 2 <= inner <= suite.BLOCK_TIME / 2e-4


def test_calibrate_times_one_call_of_a_slow_op(monkeypatch):
    monkeypatch.setattr(conv, "CALIBRATE_ONCE", 0.01)
    calls = []
    assert conv.calibrate(lambda: calls.append(time.sleep(0.02)), lambda: None) == 1
    assert len(calls) == 1


def test_block_timer_waits_and_counts_in_ops(monkeypatch):
    waits = []
    monkeypatch.setattr(conv._Block, "inner", 4)
    monkeypatch.setattr(conv._Block, "wait", staticmethod(lambda: waits.append(1)))
    start = conv.block_timer()
    time.sleep(0.02)
    elapsed = conv.block_timer() - start
    assert waits == [1, 1]
    assert 0.02 / 4 <= elapsed < 0.2 / 4


def test_time_op_is_a_block_of_launches_of_the_prepared_case():
    case = conv.Conv()
    case.setup("scipy-correlate2d", 64, 3, "float32")
    assert case.inner >= 1 and conv._Block.inner == case.inner
    launched = []
    case.prepared = type("P", (), {"launch": lambda self: launched.append(1)})()
    case.time_op("scipy-correlate2d", 64, 3, "float32")
    assert len(launched) == case.inner
