"""The asv suites set the thread count and record it, and record the load their samples were taken
under: run in this process as asv_runner calls them (setup, then teardown and setup between two
samples, teardown after the last)."""

from __future__ import annotations

import json

import pytest

from benchmarks import common, conv
from convbench import records
from convbench.load import Load
from convbench.threads import default_threads

PARAMS = ("torch-cpu", 64, 3, "float32")
SCIPY = ("scipy-correlate2d", 64, 3, "float32")
LOAD = ["other_cores", "cores", "busy_threads", "load_average_start", "load_average_end"]


@pytest.fixture
def path(tmp_path, monkeypatch):
    """Where the suites write their records in this test."""
    found = tmp_path / records.FILE
    monkeypatch.setenv(records.ENV, str(found))
    return found


@pytest.fixture
def written(path):
    """The records the suites write in this test, in order."""

    def read() -> list[dict]:
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines()]

    return read


def asv_samples(
    suite: common.ConvSuite, metric: str, samples: int, warm_up: bool = True, params=PARAMS
) -> None:
    """What asv_runner does in one benchmark's process: setup, a warm-up call, then before each
    sample teardown and setup, and teardown after the last."""
    run = getattr(suite, metric)
    suite.setup(*params)
    if warm_up:
        run(*params)
    for index in range(samples):
        if warm_up or index:
            suite.teardown(*params)
            suite.setup(*params)
        run(*params)
    suite.teardown(*params)


def test_a_cpu_backend_is_given_every_core_and_the_records_say_so(written):
    conv.Conv().setup(*PARAMS)
    ready = [record for record in written() if record["status"] == "ready"]
    # Peak memory is not measured at 64x64: that record says why, with no threads.
    assert [record["benchmark"] for record in ready] == ["Conv.time_op", "Conv.track_max_rel"]
    for record in ready:
        assert (record["threads_asked"], record["threads"]) == (default_threads(),) * 2


def test_the_load_of_the_samples_is_recorded_after_the_last(path, written):
    suite = conv.Conv()
    # Sampling ends at the most samples only: how long they take on a busy machine is no matter.
    suite.repeat = (3, 20, 1e9)
    asv_samples(suite, "time_op", samples=20, params=SCIPY)
    timed = [r for r in written() if r["benchmark"] == "Conv.time_op"]
    # The ready record of setup, one after the warm-up, one after the last of the 20 samples.
    assert len(timed) == 3
    params = dict(zip(conv.Conv.param_names, SCIPY, strict=True))
    final = records.load(path)[records.case_key("Conv.time_op", params)]
    assert final == timed[-1] and set(LOAD) <= set(final)
    assert final["cores"] >= 1 and final["other_cores"] >= 0
    assert final["busy_threads"] >= 1
    assert (final["threads_asked"], final["threads"]) == (default_threads(), 1)


def test_a_quick_run_records_the_load_of_its_one_sample(written):
    asv_samples(conv.Conv(), "time_op", samples=1, warm_up=False, params=SCIPY)
    timed = [r for r in written() if r["benchmark"] == "Conv.time_op"]
    assert len(timed) == 2 and set(LOAD) <= set(timed[-1])


def test_other_metrics_record_no_load(written):
    asv_samples(conv.Conv(), "peakmem_op", samples=1)
    assert all(not set(LOAD) & set(r) for r in written())


@pytest.mark.parametrize(
    ("blocks", "elapsed", "over"),
    [
        (1, 0.0, True),  # a quick run's only sample, or asv's warm-up
        (2, 0.1, False),
        (4, 0.5, False),  # 3 samples, before the seconds of sampling have passed
        (4, 1.96, True),  # 3 samples, and asv's clock, started a moment earlier, passed 2 s
        (3, 5.0, False),  # the seconds passed, but fewer than the fewest samples
        (20, 0.2, False),
        (21, 0.2, True),  # the most samples: 20 after the warm-up
    ],
)
def test_the_sampling_may_be_over(monkeypatch, blocks, elapsed, over):
    clock = common.BlockClock(lambda: None)
    clock.blocks, clock.started = blocks, 100.0
    monkeypatch.setattr(common.time, "perf_counter", lambda: 100.0 + elapsed)
    assert clock.sampling_may_be_over((3, 20, 2.0)) is over


def test_load_facts_use_the_names_of_a_measurement():
    load = Load(0.5, 2, 0.75, 1.5, 2.5, 2)
    assert common.load_facts(load) == {
        "other_cores": 0.75,
        "cores": 2,
        "busy_threads": 2,
        "load_average_start": 1.5,
        "load_average_end": 2.5,
    }
    assert common.load_facts(None) == {}
