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
- Samples are collected until ``min_run_time`` has passed; the result is the median per call, with
  the interquartile range as the spread. A spread wider than 10% of the median (torch's threshold)
  raises a warning in the measurement: the machine was busy or the op is unstable.

A ``Clock`` decides how one sample is read. ``WallClock`` (``time.perf_counter`` after the device
wait it is given; none for CPU work) is the default and needs nothing from the framework.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from convbench.backends.base import Prepared, no_wait

# torch.utils.benchmark also calls a measurement unreliable above this IQR / median.
WIDE_SPREAD = 0.10
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

    def __str__(self) -> str:
        return f"{self.label}[{self.case}]" if self.case else self.label


@dataclass(frozen=True)
class Measurement:
    """Samples of one ``Task``: ``raw_times[i]`` is the seconds of ``number`` calls."""

    task: Task
    number: int
    raw_times: tuple[float, ...]
    overhead: float = 0.0  # the clock's own cost as a fraction of one sample

    @property
    def times(self) -> np.ndarray:
        """Seconds per call, one value per sample."""
        return np.asarray(self.raw_times, dtype=float) / self.number

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

    @property
    def warnings(self) -> tuple[str, ...]:
        found = []
        if len(self.raw_times) < 4:
            found.append(f"only {len(self.raw_times)} samples; the spread is a rough guess")
        if self.spread > WIDE_SPREAD:
            found.append(
                f"wide spread: IQR is {self.spread:.0%} of the median "
                f"(> {WIDE_SPREAD:.0%}); the machine may be busy"
            )
        return tuple(found)

    def __str__(self) -> str:
        text = (
            f"{self.task}: median {format_seconds(self.median)}, "
            f"IQR {format_seconds(self.iqr)} ({self.spread:.1%}), "
            f"{len(self.raw_times)} samples x {self.number} calls"
        )
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

    def blocked_autorange(self, min_run_time: float = 0.2, min_samples: int = 5) -> Measurement:
        """Warm up, autorange, then sample for at least ``min_run_time`` seconds."""
        self.warm_up()
        clock_cost = self.clock_overhead()
        number = self.autorange(clock_cost)
        samples: list[float] = []
        deadline = time.perf_counter() + min_run_time
        while len(samples) < min_samples or time.perf_counter() < deadline:
            samples.append(self.clock.sample(self.fn, number))
        return Measurement(
            self.task, number, tuple(samples), clock_cost / statistics.median(samples)
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
