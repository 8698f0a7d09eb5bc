"""The asv suites run in this process: the records their ``setup`` and metrics write (ready,
skipped by the grid, by this machine or by the metric, failed), and how they time a block."""

from __future__ import annotations

import json
import time

import pytest
from asv_runner.benchmarks.mark import SkipNotImplemented

import convbench
from benchmarks import common, conv
from convbench import memory, records, suite
from convbench.agreement import tolerance
from convbench.backends.scipy_signal import ScipySignalBackend
from convbench.threads import default_threads

CONV_METRICS = ["Conv.peakmem_op", "Conv.time_op", "Conv.track_max_rel"]


@pytest.fixture
def records_file(tmp_path, monkeypatch):
    """Where the suites write their records in this test."""
    path = tmp_path / records.FILE
    monkeypatch.setenv(records.ENV, str(path))
    monkeypatch.setenv("CONVBENCH_COMMIT", "abc123")
    return path


@pytest.fixture
def written(records_file):
    """The records written so far, in order."""

    def read() -> list[dict]:
        if not records_file.exists():
            return []
        return [json.loads(line) for line in records_file.read_text().splitlines()]

    return read


def scipy_facts(dtype: str, kernel: int) -> dict:
    return {
        "library": "scipy",
        "device": "cpu",
        "cpu_twin": None,
        "precision": dtype,
        "arithmetic": "direct",
        "tolerance": tolerance(dtype, kernel**2),
    }


def test_a_case_set_up_is_ready_for_every_metric(written):
    params = ("scipy-correlate2d", 1024, 3, "float32")
    case = conv.Conv()
    case.setup(*params)
    assert written() == [
        {
            "benchmark": name,
            "params": {
                "backend": "scipy-correlate2d",
                "size": 1024,
                "kernel": 3,
                "dtype": "float32",
            },
            "backend": "scipy-correlate2d",
            "setting": "",
            "default_setting": True,
            "status": "ready",
            "reason": None,
            **scipy_facts("float32", 3),
            "commit": "abc123",
            # scipy runs one thread whatever it is asked; every CPU backend is asked all cores.
            "threads_asked": default_threads(),
            "threads": 1,
        }
        for name in CONV_METRICS
    ]
    case.setup(*params)  # asv's setup before the next sample finds the case ready
    assert len(written()) == 3
    assert case.track_max_rel(*params) < 1e-6
    assert case.peakmem_op(*params) is None
    assert len(written()) == 3


def test_a_case_the_grid_skips_is_recorded_with_the_grids_reason(written):
    reason = suite.skip_reason("scipy-correlate2d", 4096, 15, "float64")
    with pytest.raises(SkipNotImplemented, match=r"scipy\.signal's direct loop"):
        conv.Conv().setup("scipy-correlate2d", 4096, 15, "float64")
    found = written()
    assert [(r["benchmark"], r["status"], r["reason"]) for r in found] == [
        (name, "skipped", reason) for name in CONV_METRICS
    ]
    assert all(r["library"] == "scipy" and r["precision"] == "float64" for r in found)


def test_an_unavailable_backend_is_skipped_with_its_reason_and_facts(written):
    name = next((n for n in suite.BACKENDS if convbench.get_backend(n).unavailable_reason), None)
    if name is None:
        pytest.skip("every built-in backend runs on this machine")
    backend = convbench.get_backend(name)
    with pytest.raises(SkipNotImplemented):
        conv.Transfer().setup(name, 256, 3, "float32")
    (record,) = written()
    assert record["benchmark"] == "Transfer.time_end_to_end"
    assert (record["status"], record["reason"]) == ("skipped", backend.unavailable_reason)
    assert (record["backend"], record["library"]) == (name, backend.library)
    assert (record["device"], record["cpu_twin"]) == (backend.device_kind, backend.cpu_twin)


def test_a_metric_the_grid_leaves_out_is_skipped_with_its_own_reason(written):
    conv.Conv().setup("scipy-correlate2d", 64, 4, "float32")
    statuses = {r["benchmark"]: (r["status"], r["reason"]) for r in written()}
    assert statuses == {
        "Conv.peakmem_op": ("skipped", suite.metric_skip_reason("peakmem", 64, 4)),
        "Conv.time_op": ("skipped", suite.metric_skip_reason("time", 64, 4)),
        "Conv.track_max_rel": ("ready", None),
    }
    # asv never runs those metrics there: their parameters leave the kernel (and size) out.
    assert conv.Conv.peakmem_op.params[1:3] == [[1024, 4096, 8192], [3, 31]]
    assert conv.Conv.time_op.params[2] == [3, 7, 15, 31]


def test_each_metric_runs_over_the_values_some_combination_measures():
    backends, dtypes = list(suite.grid_backends()), list(suite.DTYPES)
    assert conv.Conv.peakmem_op.params == [backends, [1024, 4096, 8192], [3, 31], dtypes]
    assert conv.Conv.time_op.params == [backends, list(suite.SIZES), [3, 7, 15, 31], dtypes]
    assert conv.Conv.track_max_rel.params == [
        backends,
        [64, 256, 1024],
        list(suite.KERNELS),
        dtypes,
    ]
    assert conv.ConvBatch.peakmem_op.params == [backends, [16], [256], [3, 15], dtypes]
    assert conv.ConvSettings.track_max_rel.params[1:] == [[1024], [3]]
    # Within them, asv skips those the grid rules out without a setup.
    assert ("scipy-correlate2d", 1024, 15, "float32") in conv.Conv.track_max_rel.skip_params
    assert ("scipy-correlate2d", 1024, 7, "float32") not in conv.Conv.track_max_rel.skip_params
    assert conv.ConvBatch.track_max_rel.params[3] == [3, 4, 7]
    assert conv.ConvBatch.time_op.params[3] == [3, 7, 15]
    assert not hasattr(conv.Conv.peakmem_op, "skip_params")
    assert conv.ConvSettings.metrics() == ["time_op", "track_max_rel"]
    assert conv.Transfer.metrics() == ["time_end_to_end"]


def test_a_failing_setup_is_recorded_and_raised_for_asv(written, monkeypatch):
    def out_of_memory(self, image, kernel, spec):
        raise MemoryError("Unable to allocate 256. TiB")

    monkeypatch.setattr(ScipySignalBackend, "_plan", out_of_memory)
    with pytest.raises(MemoryError):
        conv.ConvBatch().setup("scipy-correlate2d", 16, 64, 4, "float32")
    statuses = {r["benchmark"]: (r["status"], r["reason"]) for r in written()}
    assert statuses == {
        "ConvBatch.peakmem_op": ("skipped", suite.metric_skip_reason("peakmem", 64, 4, 16)),
        "ConvBatch.time_op": ("skipped", suite.metric_skip_reason("time", 64, 4, 16)),
        "ConvBatch.track_max_rel": (
            "failed",
            "out of memory: MemoryError: Unable to allocate 256. TiB",
        ),
    }


def test_a_failing_metric_is_recorded_alone_and_raised(written, records_file, monkeypatch):
    case = conv.Conv()
    case.setup("scipy-convolve2d", 1024, 3, "float64")

    def broken(*args, **kwargs):
        raise ValueError("reference broke\nlong traceback")

    monkeypatch.setattr(convbench, "reference", broken)
    with pytest.raises(ValueError, match="reference broke"):
        case.track_max_rel("scipy-convolve2d", 1024, 3, "float64")
    *ready, failed = written()
    assert [r["status"] for r in ready] == ["ready"] * 3
    assert failed == {
        **ready[2],
        "status": "failed",
        "reason": "ValueError: reference broke",
    }
    key = records.case_key("Conv.track_max_rel", failed["params"])
    assert records.load(records_file)[key]["status"] == "failed"


def test_a_settings_variant_records_its_backend_and_setting(written):
    pytest.importorskip("jax")
    case = conv.ConvSettings()
    for variant in ("jax-cpu precision=highest", "jax-cpu precision=default"):
        case.setup(variant, 1024, 3)
    found = written()
    assert [(r["benchmark"], r["setting"], r["default_setting"]) for r in found] == [
        ("ConvSettings.time_op", "precision=highest", False),
        ("ConvSettings.track_max_rel", "precision=highest", False),
        ("ConvSettings.time_op", "precision=default", True),
        ("ConvSettings.track_max_rel", "precision=default", True),
    ]
    assert {r["backend"] for r in found} == {"jax-cpu"}
    assert found[0]["params"] == {"variant": "jax-cpu precision=highest", "size": 1024, "kernel": 3}
    assert all(r["status"] == "ready" and r["precision"] == "float32" for r in found)


def test_a_case_this_machine_cannot_hold_is_skipped_with_the_memory_it_needs(written, monkeypatch):
    monkeypatch.setattr(memory, "available_memory", lambda: 2**20)
    params = ("scipy-correlate2d", 1024, 3, "float32")
    reason = memory.memory_refusal(
        (1024, 1024), (3, 3), "float32", suite.SPEC, convbench.get_backend(params[0])
    )
    assert reason.endswith("GiB), 0.0 GiB available")
    with pytest.raises(SkipNotImplemented, match=r"needs about \d"):
        conv.Conv().setup(*params)
    assert [(r["status"], r["reason"]) for r in written()] == [("skipped", reason)] * 3


def test_nothing_is_written_without_a_records_file(tmp_path, monkeypatch):
    monkeypatch.delenv(records.ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    conv.Conv().setup("scipy-correlate2d", 64, 3, "float32")
    assert list(tmp_path.iterdir()) == []


def test_calibrate_warms_up_and_fills_a_block_from_the_later_calls():
    calls = []

    def op():
        calls.append(time.perf_counter())
        if len(calls) == 1:
            time.sleep(0.05)  # the first call autotunes
        else:
            time.sleep(2e-4)

    start = time.perf_counter()
    inner = common.calibrate(op, lambda: None)
    # Warm-up: called again and again until WARMUP_TIME has passed since the first call, and
    # no longer (every call but the last began within it).
    assert len(calls) > 2 and time.perf_counter() - start >= common.WARMUP_TIME
    assert calls[-2] - calls[0] < common.WARMUP_TIME
    # BLOCK_TIME / ~0.2 ms, less when sleeping overshoots; never from the slow first call.
    assert 2 <= inner <= suite.BLOCK_TIME / 2e-4


def test_calibrate_calls_a_cold_op_slower_than_the_warm_up_twice_and_a_warm_one_once(
    monkeypatch,
):
    monkeypatch.setattr(common, "WARMUP_TIME", 0.05)
    calls = []
    assert common.calibrate(lambda: calls.append(time.sleep(0.06)), lambda: None) == 1
    assert len(calls) == 2
    assert common.calibrate(lambda: calls.append(time.sleep(0.06)), lambda: None, cold=False) == 1
    assert len(calls) == 3


def test_calibrate_times_one_call_of_a_slow_op(monkeypatch):
    monkeypatch.setattr(common, "CALIBRATE_ONCE", 0.01)
    calls = []
    assert common.calibrate(lambda: calls.append(time.sleep(0.02)), lambda: None) == 1
    assert len(calls) == 1


def test_asvs_warm_up_is_one_call_and_sampling_stops_after_two_seconds():
    assert 0 < common.ConvSuite.warmup_time < 1e-3
    assert common.ConvSuite.repeat == (3, 20, 2.0)


class Ops:
    """An op that takes ``seconds`` (``first`` for its first call) and counts its calls; the
    device waits are counted too."""

    def __init__(self, seconds: float, first: float | None = None) -> None:
        self.seconds, self.first = seconds, seconds if first is None else first
        self.calls = 0
        self.waits = 0

    def __call__(self) -> None:
        self.calls += 1
        time.sleep(self.first if self.calls == 1 else self.seconds)

    def wait(self) -> None:
        self.waits += 1


def test_the_block_clocks_first_block_is_one_cold_op():
    op = Ops(2e-4, first=0.03)
    clock = common.BlockClock(op, op.wait)
    start = clock()
    clock.block()
    assert (op.calls, op.waits, clock.inner) == (1, 2, None)  # a wait before and after
    assert 0.03 <= clock() - start < 2.0


def test_the_block_clock_calibrates_uncounted_then_reads_seconds_per_op_of_the_block(
    monkeypatch,
):
    monkeypatch.setattr(common, "WARMUP_TIME", 0.3)  # far longer than a block of 10 ms
    op = Ops(2e-4, first=0.03)
    clock = common.BlockClock(op, op.wait)
    clock.block()
    start, began = clock(), time.perf_counter()
    clock.block()
    took = time.perf_counter() - began
    inner = clock.inner
    assert 2 <= inner <= suite.BLOCK_TIME / 2e-4
    # The calibration's calls (its warm-up of WARMUP_TIME) are not in the reading: one block is.
    assert took >= common.WARMUP_TIME
    per_op = clock() - start
    assert per_op >= 2e-4 and per_op * inner < common.WARMUP_TIME
    calls = op.calls
    clock.block()
    assert op.calls == calls + inner and clock.inner == inner


def test_a_slow_first_op_sets_blocks_of_one_without_calibrating(monkeypatch):
    monkeypatch.setattr(common, "CALIBRATE_ONCE", 0.02)
    op = Ops(0.03)
    clock = common.BlockClock(op, op.wait)
    clock.block()
    clock.block()
    assert (op.calls, op.waits, clock.inner) == (2, 4, 1)


def test_setup_gives_asv_a_block_clock_of_the_timed_op_and_time_op_runs_a_block():
    case = conv.Conv()
    case.setup("scipy-correlate2d", 64, 3, "float32")
    assert isinstance(case.timer, common.BlockClock)
    assert case.timer.fn == case.ready.prepared.launch and case.timer.inner is None
    assert "timer" not in vars(conv.Conv) and "timer" not in vars(common.ConvSuite)
    op = Ops(0.0)
    case.timer = common.BlockClock(op, op.wait)
    case.timer.inner = 7
    case.time_op("scipy-correlate2d", 64, 3, "float32")
    assert (op.calls, op.waits) == (7, 2)


def test_the_ready_case_calibrates_only_when_asked():
    case = conv.Conv()
    case.setup("scipy-correlate2d", 64, 3, "float32")
    assert "inner" not in vars(case.ready)
    assert case.ready.inner >= 1 and "inner" in vars(case.ready)


def test_transfer_times_end_to_end_calls():
    case = conv.Transfer()
    case.setup("scipy-correlate2d", 256, 3, "float32")
    assert case.timer.fn == case.ready.prepared.end_to_end == case.ready.timed
