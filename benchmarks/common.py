"""The base of the asv suites in ``benchmarks/conv.py`` and ``benchmarks/layers.py``: one
``setup``, the metrics, the clock.

A suite is a ``ConvSuite`` that splices its parameters onto the base's (``params =
(*ConvSuite.params, sizes, ...)``), says what one parameter combination measures (``case``: a
``Case`` of the 2-D grid, whose spec is ``convbench.suite.SPEC``, correlate, 'same', zero fill;
or any ``SuiteCase``, such as a network layer) and takes its metrics, each written once, from
``TimeOp``, ``PeakmemOp`` and ``TrackMaxRel``; one parameter combination is one number.

``setup`` does all untimed work (inputs, ``Backend.prepare``: padding, layout, upload) or skips the
case, with asv's ``SkipNotImplemented`` and a reason: the grid's (``case.skip_reason``) or this
machine's (``suite.case_unavailable``; a case that needs more memory than is available,
``convbench.memory.memory_refusal``). Either way it writes what the run knows of the case, one
record per metric of the suite (``convbench.records``, to ``$CONVBENCH_RECORDS``) with the facts
asked of the backend object: ``ready``, or ``skipped`` with the reason. A metric that the grid does
not take for this case (``case.metric_skip_reason``) is skipped by asv without calling ``setup``
(``skip_for_params``); its record is written when the case is set up for its other metrics. Any
other error, in ``setup`` or in a metric, is recorded as ``failed`` with its reason
(``failures.describe``: out of memory named as such) and raised: asv marks that case failed and goes
on.

How a time is taken. asv_runner 0.3 times one call of a benchmark per sample when the class has
a ``setup``, and runs ``setup`` again before every sample. A GPU op returns at launch, so one call
and one device wait would add the launch and wait latency (10-30 us) to every op. Instead each
call of a ``time_`` metric runs a block of ``inner`` ops back to back and one device wait
(``BlockClock.block``; ``inner`` chosen so that a block lasts about ``suite.BLOCK_TIME``, 10 ms),
and asv reads its clock from that ``BlockClock``, which ``setup`` gives the instance as its
``timer`` (asv looks ``timer`` up on the instance after every ``setup``): the clock reads the
seconds per op of the blocks timed so far, so a sample is the time per op of one block, as
``convbench.timing.Timer`` measures it, and nothing else the call did. The first call runs one op,
cold, which asv takes as its warm-up (``ConvSuite.warmup_time``) and a quick run (one call per
case) as its only sample; the second warms up and calibrates ``inner`` before its block. Only a
``time_`` metric calibrates: ``setup`` prepares the case, and peak memory and agreement run one op.
asv keeps one instance per process and forks one process per benchmark, so the ``setup`` before
each sample finds its case ready.

What a time can be trusted for. ``setup`` gives a CPU backend every core this process may use
(``convbench.threads.default_threads``, set through its library before ``prepare``: the same
count for every CPU backend) and its records say the count asked and the count in force
(``threads_asked``, ``threads``; None on a GPU). The clock reads the machine's load from its first
block on (``convbench.load.LoadProbe``: the cores other processes used, the busy threads, the load
average), and ``teardown`` records it with the case (``records.make(trust=...)``). asv runs
``teardown`` then ``setup`` between two samples and ``teardown`` once after the last, and says
nothing of which is the last: a record is written after the first block (a quick run's only
sample) and after each sample once the sampling may be over by the suite's ``repeat`` (the most
samples taken, or its seconds of sampling passed), so a few records per case, the later winning
(``records.load``), the last covering every sample.
"""

from __future__ import annotations

import functools
import inspect
import itertools
import math
import os
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

import numpy as np
from asv_runner.benchmarks.mark import SkipNotImplemented, skip_for_params

import convbench
from convbench import failures, memory, records, suite
from convbench.backends.base import Backend, Prepared, no_wait
from convbench.load import Load, LoadProbe
from convbench.spec import ConvSpec
from convbench.sweep import give_threads
from convbench.threads import default_threads
from convbench.timing import WallClock

# A calibration call this long is not repeated: the first call's extra cost (autotuning,
# compilation) is then small beside the op, and slow CPU cases are not paid twice.
CALIBRATE_ONCE = 1.0
# The warm-up before the samples: calls for at least this long, so that a fast op also runs on
# warm caches, pools and clocks.
WARMUP_TIME = 0.1
# asv stops sampling once its own clock, started a moment before the clock's first block, has
# passed the suite's seconds of sampling: the clock counts the sampling as possibly over this
# much earlier.
SAMPLING_SLACK = 0.05


def input_cache() -> Path | None:
    """Where the suites keep the large seeded images they draw (``suite.make_inputs``'s
    ``cache``): ``$CONVBENCH_INPUT_CACHE``, "off" for none; by default ``.asv/inputs`` beside
    asv's own state (ignored by git, about 0.5 GiB for the default grid). asv starts a process
    per case, and each would draw its image again: about a second at 8192², against 40 ms to
    read it back."""
    chosen = os.environ.get("CONVBENCH_INPUT_CACHE", "")
    if chosen == "off":
        return None
    return Path(chosen) if chosen else Path(__file__).resolve().parents[1] / ".asv" / "inputs"


def calibrate(fn: Callable[[], object], wait: Callable[[], None], cold: bool = True) -> int:
    """Calls of ``fn`` per timed block: enough for ``suite.BLOCK_TIME``, at least 1; also the
    warm-up. The first call of a ``cold`` op pays one-time costs (autotuning, compilation), so
    unless it was already slow it is not counted. ``fn`` is then called until ``WARMUP_TIME`` has
    passed (a slow op once), and the fastest call sets the block."""
    clock = WallClock(wait)
    start = time.perf_counter()
    elapsed = clock.sample(fn, 1)
    if cold and elapsed < CALIBRATE_ONCE:
        elapsed = clock.sample(fn, 1)
    while elapsed < CALIBRATE_ONCE and time.perf_counter() - start < WARMUP_TIME:
        elapsed = min(elapsed, clock.sample(fn, 1))
    launches = math.ceil(suite.BLOCK_TIME / max(elapsed, 1e-9))
    return int(min(suite.MAX_LAUNCHES, max(1, launches)))


class BlockClock:
    """asv's clock for a ``time_`` metric, and the blocks of ops that the metric runs.

    ``block()`` runs ``fn`` ``inner`` times back to back, waits for the device and adds the
    block's seconds per op to what the clock reads; so asv's sample (the reading after one call of
    the metric less the one before) is the seconds per op of the block that call ran. The first
    block is one op, cold (asv's warm-up, or a quick run's only sample); the second calibrates
    ``inner`` first (``calibrate``), uncounted, unless that cold op already took
    ``CALIBRATE_ONCE`` (then ``inner`` is 1).
    """

    def __init__(self, fn: Callable[[], object], wait: Callable[[], None] = no_wait) -> None:
        self.fn = fn
        self.wait = wait
        self.inner: int | None = None
        self.blocks = 0
        self.per_op = 0.0
        self.probe: LoadProbe | None = None
        self.started: float | None = None

    def __call__(self) -> float:
        return self.per_op

    def load(self) -> Load | None:
        """The machine's load from the first block until now; None before the first block."""
        if self.probe is None:
            return None
        self.probe.__exit__(None, None, None)  # reads the interval so far; the probe goes on
        return self.probe.result

    def sampling_may_be_over(self, repeat: tuple[int, int, float]) -> bool:
        """Whether asv may take no further sample of a suite with ``repeat`` = (fewest, most,
        seconds): after the first block (a quick run's only sample; otherwise asv's warm-up),
        once the most samples are taken, or once the fewest are and the seconds have passed."""
        fewest, most, seconds = repeat
        samples = self.blocks - 1
        elapsed = 0.0 if self.started is None else time.perf_counter() - self.started
        return (
            self.blocks == 1
            or samples >= most
            or (samples >= fewest and elapsed >= seconds - SAMPLING_SLACK)
        )

    def block(self) -> None:
        """Run one block and add its seconds per op to the reading."""
        if self.probe is None:
            # Opened outside the timed span: a reading lists the machine's processes.
            self.probe = LoadProbe().__enter__()
            self.started = time.perf_counter()
        if self.blocks == 1 and self.inner is None:
            self.inner = calibrate(self.fn, self.wait, cold=False)
        inner, fn = self.inner or 1, self.fn
        self.wait()  # work launched before the block (an upload) is not the block's
        start = time.perf_counter()
        for _ in range(inner):
            fn()
        self.wait()
        seconds = time.perf_counter() - start
        if self.blocks == 0 and seconds >= CALIBRATE_ONCE:
            self.inner = 1
        self.blocks += 1
        self.per_op += seconds / inner


class SuiteCase(Protocol):
    """What ``ConvSuite`` asks of a case: ``Case`` (one 2-D convolution of the grid in
    ``convbench.suite``) or another suite's own (``benchmarks/layers.py``: a network layer)."""

    backend: str
    dtype: str
    options: Mapping[str, object]
    setting: str
    default_setting: bool

    @property
    def image_shape(self) -> tuple[int, ...]: ...

    @property
    def kernel_shape(self) -> tuple[int, ...]: ...

    @property
    def spec(self) -> ConvSpec: ...

    def skip_reason(self) -> str | None:
        """Why the suite does not measure this case at all, or None."""

    def metric_skip_reason(self, metric: str) -> str | None:
        """Why the suite does not measure the metric called ``metric`` ('time_op', ...) for this
        case, or None; depends on the parameters alone."""

    def inputs(self) -> tuple[np.ndarray, np.ndarray]:
        """The seeded image and kernel."""


@dataclass(frozen=True)
class Case:
    """What one parameter combination of a suite measures."""

    backend: str
    size: int
    kernel: int
    dtype: str
    batch: int = 1
    options: Mapping[str, object] = field(default_factory=dict)
    # The options as the settings sweep writes them ("" when the suite leaves the backend as it
    # is), and whether they are the library's own defaults.
    setting: str = ""
    default_setting: bool = True

    @property
    def image_shape(self) -> tuple[int, ...]:
        square = (self.size, self.size)
        return (self.batch, *square) if self.batch > 1 else square

    @property
    def kernel_shape(self) -> tuple[int, int]:
        return (self.kernel, self.kernel)

    @property
    def spec(self) -> ConvSpec:
        return suite.SPEC

    def skip_reason(self) -> str | None:
        return suite.skip_reason(self.backend, self.size, self.kernel, self.dtype, self.batch)

    def metric_skip_reason(self, metric: str) -> str | None:
        return suite.metric_skip_reason(metric_kind(metric), self.size, self.kernel, self.batch)

    def inputs(self) -> tuple[np.ndarray, np.ndarray]:
        return suite.make_inputs(
            self.size, self.kernel, self.dtype, self.batch, cache=input_cache()
        )


@dataclass(frozen=True)
class Ready:
    """A case set up in this process: asv's parameters, the case, the facts recorded of it, its
    inputs, the prepared op, the op that is timed and the threads it was given."""

    params: tuple
    case: SuiteCase
    facts: Mapping[str, Any]
    image: np.ndarray
    weights: np.ndarray
    prepared: Prepared
    # The method of ``prepared`` that a ``time_`` metric repeats (``ConvSuite.timed``).
    timed: Callable[[], object]
    # ``threads_asked`` and ``threads`` (in force), for the records.
    threads: Mapping[str, int | None] = field(default_factory=dict)

    @functools.cached_property
    def inner(self) -> int:
        """Calls of ``timed`` per block of ``suite.BLOCK_TIME``, calibrated when first asked."""
        return calibrate(self.timed, self.prepared.wait)


def metric_kind(name: str) -> str:
    """'time', 'peakmem' or 'track': asv's kind of benchmark, the prefix of its name."""
    return name.partition("_")[0]


def metric_skip_reason(name: str, case: SuiteCase) -> str | None:
    return case.metric_skip_reason(name)


def load_facts(load: Load | None) -> dict[str, Any]:
    """A ``Load`` under the names of ``convbench.timing.Measurement.facts``."""
    if load is None:
        return {}
    return {
        "other_cores": load.other_cores,
        "cores": load.cores,
        "busy_threads": load.busy_threads,
        "load_average_start": load.load_average_start,
        "load_average_end": load.load_average_end,
    }


class ConvSuite(ABC):
    """One 2-D convolution per parameter combination, on the backend the combination names.

    One process per parameter combination, one round, one cold op as asv's warm-up, then 3 to 20
    samples, stopping after 2 s of sampling: an op of 0.1 s or more gets 3 to 20 samples of its
    own length, each long beside the machine's preemptions; more of them would narrow its median
    little while the whole suite must run in minutes.
    """

    params: ClassVar[tuple[list, ...]] = (list(suite.grid_backends()),)
    param_names: ClassVar[tuple[str, ...]] = ("backend",)
    rounds = 1
    repeat = (3, 20, 2.0)
    # Any positive time: asv's warm-up is then one call, the clock's first block (one cold op).
    warmup_time = 1e-6
    timeout = 180
    # The method of ``Prepared`` that this suite's ``time_`` metric calls, ``inner`` times.
    timed: ClassVar[str] = "launch"
    ready: Ready | None = None
    # The metric this process runs (asv runs one per process), set when it is first called.
    running: str | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Each metric of a suite (a class that declares its ``params``; the metric mixins do
        not) records its failures and carries asv's ``skip_params`` for the combinations that
        ``case.metric_skip_reason`` rules out, computed from this suite's own parameters."""
        super().__init_subclass__(**kwargs)
        if "params" in vars(cls):
            for name in cls.metrics():
                setattr(cls, name, _metric(cls, name, inspect.unwrap(getattr(cls, name))))

    @classmethod
    def metrics(cls) -> list[str]:
        """This suite's asv benchmarks: its ``time_``, ``peakmem_`` and ``track_`` methods."""
        return [
            name
            for name in dir(cls)
            if metric_kind(name) in suite.METRICS and callable(getattr(cls, name))
        ]

    @staticmethod
    @abstractmethod
    def case(*params: Any) -> SuiteCase:
        """What the parameter combination ``params`` (in ``param_names`` order) measures."""

    def setup(self, *params: Any) -> None:
        """Prepare the case, or skip it with a reason; record what is known of it either way."""
        if self.ready is not None and self.ready.params == params:
            return  # asv runs setup again before every sample
        case = self.case(*params)
        reasons: dict[str, str | None] = dict.fromkeys(self.metrics())
        facts: Mapping[str, Any] = {}
        try:
            found = convbench.get_backend(case.backend).configure(**case.options)
            facts = records.backend_facts(found, case.dtype, case.image_shape, case.kernel_shape)
            grid = case.skip_reason()
            reasons = {name: grid or metric_skip_reason(name, case) for name in reasons}
            why_not = (
                grid
                or suite.case_unavailable(case.backend, case.dtype)
                # A case this machine cannot hold is skipped, not met by the OOM killer.
                or memory.memory_refusal(
                    case.image_shape, case.kernel_shape, case.dtype, case.spec, found
                )
            )
            if why_not:
                raise SkipNotImplemented(why_not)
            self.ready = self._prepare(found, case, params, facts)
        except NotImplementedError as error:  # asv's skip, SkipNotImplemented included
            self._record(params, case, facts, reasons, "skipped", str(error))
            raise
        except Exception as error:
            self._record(params, case, facts, reasons, "failed", failures.describe(error))
            raise
        self._record(params, case, facts, reasons, "ready", None, self.ready.threads)
        self.timer = BlockClock(self.ready.timed, self.ready.prepared.wait)

    def teardown(self, *params: Any) -> None:
        """Between two samples and after the last: record the load the samples so far were
        taken under, when they may be all of them (see the module docstring)."""
        clock, ready = getattr(self, "timer", None), self.ready
        if ready is None or not isinstance(clock, BlockClock) or clock.blocks == 0:
            return  # not set up here, or not a time_ metric
        if clock.sampling_may_be_over(self.repeat):
            trust = {**ready.threads, **load_facts(clock.load())}
            found = self._make(self.running, *self._known(), "ready", None, trust)
            records.append([found])

    def _prepare(
        self, found: Backend, case: SuiteCase, params: tuple, facts: Mapping[str, Any]
    ) -> Ready:
        image, weights = case.inputs()
        # Before prepare: TensorFlow fixes its thread count at its first op.
        asked = default_threads() if found.device_kind == "cpu" else None
        threads = {"threads_asked": asked, "threads": give_threads(found, asked)}
        prepared = found.prepare(image, weights, case.spec)
        timed = getattr(prepared, self.timed)
        return Ready(params, case, facts, image, weights, prepared, timed, threads)

    def _record(
        self,
        params: tuple,
        case: SuiteCase,
        facts: Mapping[str, Any],
        reasons: Mapping[str, str | None],
        status: str,
        reason: str | None,
        trust: Mapping[str, Any] | None = None,
    ) -> None:
        """One record per metric in ``reasons``: skipped with its own reason where it has one,
        else ``status`` and ``reason`` (with ``trust``: how the case is measured)."""
        records.append(
            self._make(name, params, case, facts, "skipped", own)
            if own
            else self._make(name, params, case, facts, status, reason, trust)
            for name, own in reasons.items()
        )

    def _make(
        self,
        name: str,
        params: tuple,
        case: SuiteCase,
        facts: Mapping[str, Any],
        status: str,
        reason: str | None,
        trust: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        return records.make(
            f"{type(self).__name__}.{name}",
            dict(zip(self.param_names, params, strict=True)),
            status,
            backend=case.backend,
            setting=case.setting,
            default_setting=case.default_setting,
            reason=reason,
            facts=facts,
            trust=trust,
        )

    def _known(self) -> tuple[tuple, SuiteCase, Mapping[str, Any]]:
        """The parameters, case and facts of the case set up."""
        return self.ready.params, self.ready.case, self.ready.facts

    def record_failure(self, name: str, error: Exception) -> None:
        """The metric ``name`` raised ``error`` on the case set up."""
        reason = failures.describe(error)
        records.append([self._make(name, *self._known(), "failed", reason, self.ready.threads)])


def _grid_skips(suite_class: type[ConvSuite], params: tuple) -> bool:
    """Whether the grid rules this combination out for every metric; a backend that cannot be
    asked (a broken plugin) rules nothing out here: its ``setup`` records why."""
    try:
        return suite_class.case(*params).skip_reason() is not None
    except Exception:
        return False


def _metric(suite_class: type[ConvSuite], name: str, method: Callable) -> Callable:
    """``method`` as the metric ``name`` of ``suite_class``: an error is recorded as the case's
    failure, then raised for asv; run over the parameter values that some combination measures,
    and skipped (asv's ``skip_for_params``, without even a ``setup``) for the combinations among
    them that ``case.metric_skip_reason`` rules out."""

    @functools.wraps(method)
    def metric(self: ConvSuite, *params: Any) -> Any:
        self.running = name
        try:
            return method(self, *params)
        except NotImplementedError:
            raise
        except Exception as error:
            self.record_failure(name, error)
            raise

    combos = list(itertools.product(*suite_class.params))
    ruled_out = {c for c in combos if metric_skip_reason(name, suite_class.case(*c))}
    # The grid's own rule (``case.skip_reason``: declared by the backend objects, no framework
    # imported) decides which values are measured at all; a combination it rules out among the
    # values kept is still set up, and its record says why it is skipped.
    measured = [c for c in combos if c not in ruled_out and not _grid_skips(suite_class, c)]
    if measured:
        # asv forks a process for every combination of a benchmark's parameters, even one that it
        # skips: a metric that the grid takes on part of it only gets parameters of its own, the
        # values that some measured combination has (asv reads ``params`` off the method first).
        own = [
            [value for value in values if any(c[i] == value for c in measured)]
            for i, values in enumerate(suite_class.params)
        ]
        if own != [list(values) for values in suite_class.params]:
            metric.params = own  # type: ignore[attr-defined]
        combos = list(itertools.product(*own))
    skipped = [c for c in combos if c in ruled_out]
    return skip_for_params(skipped)(metric) if skipped else metric


class TimeOp(ConvSuite):
    """The op alone: ``time_op``."""

    def time_op(self, *params: Any) -> None:
        """The op alone, on data already on the device: a block of launches, then the wait."""
        self.timer.block()


class PeakmemOp(ConvSuite):
    """The memory of one op: ``peakmem_op``."""

    def peakmem_op(self, *params: Any) -> None:
        """Peak resident memory of the process: frameworks, inputs, output and workspace."""
        self.ready.prepared.run()


class TrackMaxRel(ConvSuite):
    """The error against the float64 reference: ``track_max_rel``."""

    def track_max_rel(self, *params: Any) -> float:
        """Largest error / max|reference| against the float64 reference."""
        ready = self.ready
        reference = convbench.reference(ready.image, ready.weights, ready.case.spec)
        return convbench.agreement(ready.prepared.result(), reference).max_rel

    track_max_rel.unit = "relative error"  # type: ignore[attr-defined]
