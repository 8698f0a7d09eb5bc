"""A device-aware timer: what is measured (``Task``) kept apart from the measurement.

How a number is taken, and why:

- GPU work is queued: a call returns at launch. A sample is a block of ``number`` back-to-back
  launches (``Prepared.launch``) between two waits for the device (``Prepared.wait``), read on
  the host clock after each wait. The host queues the next launch while the device works, so for
  ops longer than a launch (tens of microseconds) the block measures device time, and the one
  wait per block is part of the clock's measured overhead. Waiting after every call instead
  would add the launch and wait latency (10-30 us) to every op.
- Warm-up first: the first calls pay cuDNN autotuning, XLA compilation, lazy allocation.
- Autorange: each sample loops ``number`` calls between two clock reads, with ``number`` grown
  until one sample lasts ``min_sample_time`` (10 ms) and at least 100x the clock's own cost, so
  that cost stays below 1% (``Measurement.overhead`` reports the measured share). 10 ms is also
  about the block torch.utils.benchmark picks for millisecond ops; on a busy machine the length
  of a sample decides how many preemptions its median absorbs (1 ms samples read ~15% faster
  than 10 ms ones there), so the two timers agree only when their samples are alike.
- Samples are collected until ``min_run_time`` has passed and there are at least ``MIN_SAMPLES``;
  the result is the median per call, with the interquartile range as the spread and a 95%
  confidence interval of the median.
- Every measurement carries its trust: the machine's load while the samples were taken
  (``convbench.load``: CPU time other processes took, load average, the threads this process
  kept busy), the threads the op was given (``Task.threads``), and ``noisy`` with the reasons
  when the spread, the sample count (thresholds below) or the background load
  (``convbench.load.BUSY_CORES``) pass their thresholds.

A ``Clock`` decides how one sample is read. ``WallClock`` (``time.perf_counter`` after the device
wait it is given; none for CPU work) is the default and needs nothing from the framework.
"""

from __future__ import annotations

import functools
import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from convbench.backends.base import Prepared, no_wait
from convbench.load import BUSY_CORES, Load, LoadProbe

# torch.utils.benchmark also calls a measurement unreliable above this IQR / median; a run
# repeated on a quiet machine differs by a few percent, so a wider spread means interference.
WIDE_SPREAD = 0.10
# The confidence of the interval given for the median.
CONFIDENCE = 0.95
# The fewest samples whose order statistics hold the median with ``CONFIDENCE``: with n samples
# the interval from the smallest to the largest covers it with probability 1 - 2 / 2**n, which
# passes 95% at n = 6 (96.9%); fewer samples leave the median's uncertainty unknown.
MIN_SAMPLES = 6
# Timer overhead must stay below 1% of a sample: a sample lasts at least 100x the clock's cost.
OVERHEAD_FACTOR = 100


class Clock(Protocol):
    """Reads one sample: the seconds that ``number`` calls of ``fn`` take."""

    def sample(self, fn: Callable[[], object], number: int) -> float: ...


class WallClock:
    """``time.perf_counter`` around a loop of calls, each read taken after ``wait()`` returns.

    ``wait``: blocks until the device has finished all work launched so far (e.g.
    ``Prepared.wait``, ``torch.cuda.synchronize``); the default suits synchronous callables."""

    def __init__(self, wait: Callable[[], object] = no_wait) -> None:
        self.wait = wait

    def sample(self, fn: Callable[[], object], number: int) -> float:
        self.wait()
        start = time.perf_counter()
        for _ in range(number):
            fn()
        self.wait()
        return time.perf_counter() - start


def _nothing() -> None:
    """The empty op whose timing is the timer's own overhead."""


@dataclass(frozen=True)
class Task:
    """What is measured: a stable label (e.g. the backend) and the case in words."""

    label: str
    case: str = ""
    # The threads the op was given, as read back from its library (``convbench.threads``);
    # None when not set or not known.
    threads: int | None = None

    def __str__(self) -> str:
        return f"{self.label}[{self.case}]" if self.case else self.label


@dataclass(frozen=True)
class Measurement:
    """Samples of one ``Task``: ``raw_times[i]`` is the seconds of ``number`` calls; ``load`` is
    the machine's load while they were taken (None when not measured)."""

    task: Task
    number: int
    raw_times: tuple[float, ...]
    overhead: float = 0.0  # the clock's own cost as a fraction of one sample
    load: Load | None = None

    @property
    def times(self) -> np.ndarray:
        """Seconds per call, one value per sample."""
        return np.asarray(self.raw_times, dtype=float) / self.number

    @property
    def samples(self) -> int:
        return len(self.raw_times)

    @property
    def median(self) -> float:
        return float(np.median(self.times))

    @property
    def mean(self) -> float:
        return float(np.mean(self.times))

    @property
    def q25(self) -> float:
        return float(np.percentile(self.times, 25))

    @property
    def q75(self) -> float:
        return float(np.percentile(self.times, 75))

    @property
    def iqr(self) -> float:
        return self.q75 - self.q25

    @property
    def spread(self) -> float:
        """IQR relative to the median."""
        return self.iqr / self.median if self.median > 0 else 0.0

    @functools.cached_property
    def confidence_interval(self) -> tuple[float, float] | None:
        """A ``CONFIDENCE`` interval of the median per call, or None with fewer than
        ``MIN_SAMPLES`` samples. Distribution-free: two order statistics of the samples chosen
        from the binomial distribution (Conover, *Practical Nonparametric Statistics*, 3rd ed.,
        section 3.2; ``scipy.stats.quantile_test``). It assumes independent samples, which a
        drifting machine breaks: the interval is then too narrow, and the load says why."""
        from scipy.stats import quantile_test

        if self.samples < MIN_SAMPLES:
            return None
        times = self.times
        interval = quantile_test(times, q=self.median, p=0.5).confidence_interval(CONFIDENCE)
        if math.isnan(interval.low) or math.isnan(interval.high):
            return None
        return float(interval.low), float(interval.high)

    @property
    def threads(self) -> int | None:
        """The threads the op was given (``Task.threads``)."""
        return self.task.threads

    @property
    def noisy_reasons(self) -> tuple[str, ...]:
        """Why this number should not be trusted as the op's speed; empty when it can be."""
        found = []
        if self.samples < MIN_SAMPLES:
            found.append(
                f"only {self.samples} samples: too few for a {CONFIDENCE:.0%} confidence "
                f"interval of the median (at least {MIN_SAMPLES})"
            )
        if self.spread > WIDE_SPREAD:
            found.append(
                f"wide spread: IQR is {self.spread:.0%} of the median (> {WIDE_SPREAD:.0%})"
            )
        if self.load is not None and self.load.busy:
            found.append(f"busy machine: {self.load} while measured (> {BUSY_CORES} cores)")
        return tuple(found)

    @property
    def noisy(self) -> bool:
        return bool(self.noisy_reasons)

    @property
    def warnings(self) -> tuple[str, ...]:
        """``noisy_reasons``, and a thread count the op exceeded: more busy threads than it was
        given means it did not run with the stated count, so a comparison is unfair."""
        found = list(self.noisy_reasons)
        busy = None if self.load is None else self.load.busy_threads
        if busy is not None and self.threads is not None and busy > self.threads:
            found.append(f"{busy} threads were busy while the op was given {self.threads}")
        return tuple(found)

    def facts(self) -> dict[str, Any]:
        """The measurement as flat, JSON-ready facts for a run record (seconds per call)."""
        interval = self.confidence_interval
        load = self.load
        return {
            "median_s": self.median,
            "q25_s": self.q25,
            "q75_s": self.q75,
            "spread": self.spread,
            "ci_low_s": None if interval is None else interval[0],
            "ci_high_s": None if interval is None else interval[1],
            "samples": self.samples,
            "number": self.number,
            "overhead": self.overhead,
            "threads": self.threads,
            "busy_threads": None if load is None else load.busy_threads,
            "other_cores": None if load is None else load.other_cores,
            "cores": None if load is None else load.cores,
            "load_average_start": None if load is None else load.load_average_start,
            "load_average_end": None if load is None else load.load_average_end,
            "noisy": self.noisy,
            "noisy_reasons": list(self.noisy_reasons),
        }

    def __str__(self) -> str:
        interval = self.confidence_interval
        text = (
            f"{self.task}: median {format_seconds(self.median)}, "
            f"IQR {format_seconds(self.iqr)} ({self.spread:.1%}), "
            f"{self.samples} samples x {self.number} calls"
        )
        if interval is not None:
            low, high = (format_seconds(t) for t in interval)
            text += f", {CONFIDENCE:.0%} CI [{low}, {high}]"
        if self.threads is not None:
            text += f", {self.threads} thread{'' if self.threads == 1 else 's'}"
        if self.load is not None:
            text += f"; {self.load}"
        return "\n  ".join((text, *self.warnings))


def format_seconds(seconds: float) -> str:
    """A time with a unit a person reads at once: 12.3 us, 4.56 ms, 1.2 s."""
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if abs(seconds) >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


class Timer:
    """Times ``fn`` as described in the module doc; give a ``clock`` that waits for the device
    when ``fn`` only launches work (``Timer.of(prepared)`` does both)."""

    def __init__(
        self,
        fn: Callable[[], object],
        task: Task | str = "",
        *,
        clock: Clock | None = None,
        warmup: float = 0.05,
        min_sample_time: float = 1e-2,
    ) -> None:
        self.fn = fn
        self.task = task if isinstance(task, Task) else Task(task)
        self.clock = clock or WallClock()
        self.warmup = warmup
        self.min_sample_time = min_sample_time

    @classmethod
    def of(cls, prepared: Prepared, task: Task | str = "", **kwargs: float) -> Timer:
        """A timer of ``prepared``'s op: blocks of launches, a device wait around each block."""
        return cls(prepared.launch, task, clock=WallClock(prepared.wait), **kwargs)

    def clock_overhead(self) -> float:
        """Seconds one sample spends outside ``fn``: the clock around an empty op, median of 9."""
        return statistics.median(self.clock.sample(_nothing, 1) for _ in range(9))

    def warm_up(self) -> None:
        """Call ``fn`` at least once and until ``warmup`` seconds have passed."""
        deadline = time.perf_counter() + self.warmup
        self.clock.sample(self.fn, 1)
        while time.perf_counter() < deadline:
            self.clock.sample(self.fn, 1)

    def autorange(self, overhead: float | None = None) -> int:
        """The calls per sample: 1, 2, 5, 10, 20, ... until a sample lasts long enough.

        ``overhead``: the clock's cost per sample, if already measured (``clock_overhead``)."""
        if overhead is None:
            overhead = self.clock_overhead()
        floor = max(self.min_sample_time, OVERHEAD_FACTOR * overhead)
        number = 1
        for step in _one_two_five():
            number = step
            if self.clock.sample(self.fn, number) >= floor:
                break
        return number

    def blocked_autorange(
        self, min_run_time: float = 0.2, min_samples: int = MIN_SAMPLES
    ) -> Measurement:
        """Warm up, autorange, then sample for at least ``min_run_time`` seconds and
        ``min_samples`` samples, with the machine's load read over the sampling."""
        self.warm_up()
        clock_cost = self.clock_overhead()
        number = self.autorange(clock_cost)
        samples: list[float] = []
        with LoadProbe() as probe:
            deadline = time.perf_counter() + min_run_time
            while len(samples) < min_samples or time.perf_counter() < deadline:
                samples.append(self.clock.sample(self.fn, number))
        return Measurement(
            self.task,
            number,
            tuple(samples),
            clock_cost / statistics.median(samples),
            probe.result,
        )


def _one_two_five():
    """1, 2, 5, 10, 20, 50, ... (bounded: 10^9 calls is more than any sample needs)."""
    for exponent in range(10):
        for mantissa in (1, 2, 5):
            yield mantissa * 10**exponent


def copy_bandwidth(nbytes: int = 256 * 2**20, repeats: int = 5) -> float:
    """This machine's memory-bandwidth floor in GB/s: the best of ``repeats`` numpy copies of
    ``nbytes`` (read + write counted), large enough to miss every cache."""
    src = np.ones(nbytes // 8)
    dst = np.empty_like(src)
    best = min(WallClock().sample(lambda: np.copyto(dst, src), 1) for _ in range(repeats))
    return 2 * src.nbytes / best / 1e9
