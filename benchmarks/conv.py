"""asv suites: speed (time_), memory (peakmem_) and agreement (track_) of one 2-D convolution.

Every class measures ``convbench.suite.SPEC`` (correlate, 'same', zero fill) over the grid in
``convbench.suite``; one parameter combination is one number. ``setup`` does all untimed work
(inputs, ``Backend.prepare``: padding, layout, upload, compilation; a first call for cuDNN
autotuning and kernel compilation) and skips, with asv's ``SkipNotImplemented`` and a reason, a
case that ``suite.skip_reason`` rules out or that this machine cannot run
(``suite.case_unavailable``). Any other error (a GPU out of memory, a library bug) is written
with its reason to ``$CONVBENCH_FAILURES`` (``convbench.failures``) and raised: asv records that
case as failed and goes on.

How a time is taken. asv_runner 0.3 times one call of a benchmark per sample when the class has
a ``setup``, and runs ``setup`` again before every sample. A GPU op returns at launch, so one call
and one device wait would add the launch and wait latency (10-30 us) to every op. Instead each
call of ``time_op`` launches a block of ``inner`` ops back to back (``inner`` chosen in ``setup``
so that a block lasts about ``suite.BLOCK_TIME``, 10 ms), and the suites' ``timer`` waits for the
device before reading the clock and divides by ``inner``: a sample is the time per op of a
block, as ``convbench.timing.Timer`` measures it. On the CPU the wait does nothing. The
prepared case is kept for the process (asv forks one per case), so the ``setup`` before each
sample is a lookup.

Importing this module imports the installed frameworks (``suite.preimport``) so that asv's
forkserver pays for them once; nothing here touches a device before ``setup`` runs in the
forked child.
"""

from __future__ import annotations

import functools
import itertools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from asv_runner.benchmarks.mark import SkipNotImplemented, skip_for_params

import convbench
from convbench import failures, suite
from convbench.backends.base import Prepared, no_wait
from convbench.timing import WallClock

suite.preimport()

# A calibration call this long is not repeated: the first call's extra cost (autotuning,
# compilation) is then small beside the op, and slow CPU cases are not paid twice.
CALIBRATE_ONCE = 1.0


@dataclass
class _Ready:
    """One prepared case of this process, kept across asv's per-sample ``setup`` calls."""

    image: np.ndarray
    weights: np.ndarray
    prepared: Prepared
    inner: int


_READY: dict[tuple, _Ready] = {}


class _Block:
    """What the suites' ``timer`` needs of the case being timed in this process."""

    inner = 1
    wait: Callable[[], None] = staticmethod(no_wait)


def block_timer() -> float:
    """asv's clock for ``time_*``: waits for the device, then reads ``perf_counter`` in units of
    ``_Block.inner`` calls, so that asv's sample (end - start) is seconds per op."""
    _Block.wait()
    return time.perf_counter() / _Block.inner


def calibrate(fn: Callable[[], object], wait: Callable[[], None]) -> int:
    """Calls of ``fn`` per timed block: enough for ``suite.BLOCK_TIME``, at least 1. The first call
    pays one-time costs (autotuning, compilation), so a second is timed unless the first was
    already slow."""
    clock = WallClock(wait)
    elapsed = clock.sample(fn, 1)
    if elapsed < CALIBRATE_ONCE:
        elapsed = clock.sample(fn, 1)
    launches = math.ceil(suite.BLOCK_TIME / max(elapsed, 1e-9))
    return int(min(suite.MAX_LAUNCHES, max(1, launches)))


def _recorded(method):
    """Write an error of ``method`` (setup or a benchmark) to the failures file, then raise it."""

    @functools.wraps(method)
    def wrapper(self, *params):
        try:
            return method(self, *params)
        except (SkipNotImplemented, NotImplementedError):
            raise
        except Exception as error:
            name = f"{type(self).__name__}.{method.__name__}"
            failures.record(name, _case(self.param_names, params), error)
            raise

    return wrapper


def _case(names: tuple[str, ...], params: tuple) -> dict[str, object]:
    """The parameters of a case as the report's columns (a variant split into backend, setting)."""
    case = dict(zip(names, params, strict=True))
    if "variant" in case:
        case["backend"], case["setting"] = suite.split_variant(case.pop("variant"))
    return case


def _skips(metric: str, params: tuple[list, ...], names: tuple[str, ...]) -> list[tuple]:
    """Parameter tuples that ``suite.metric_skip_reason`` rules out for ``metric``."""
    skipped = []
    for combo in itertools.product(*params):
        case = dict(zip(names, combo, strict=True))
        if suite.metric_skip_reason(metric, case["size"], case["kernel"], case.get("batch", 1)):
            skipped.append(combo)
    return skipped


class _Case:
    """Set-up shared by the suites: one process per parameter combination, one round; repeat
    from 3 samples (slow cases) up to 20 (fast ones), stopping after 5 s of sampling."""

    rounds = 1
    repeat = (3, 20, 5.0)
    timeout = 180
    timer = staticmethod(block_timer)

    def _prepare(
        self,
        backend: str,
        size: int,
        kernel: int,
        dtype: str,
        batch: int,
        options: dict | None = None,
        timed: str = "launch",
    ) -> None:
        key = (type(self).__name__, backend, size, kernel, dtype, batch, str(options), timed)
        if key not in _READY:
            reason = suite.skip_reason(backend, size, kernel, dtype, batch)
            reason = reason or suite.case_unavailable(backend, dtype)
            if reason:
                raise SkipNotImplemented(reason)
            image, weights = suite.make_inputs(size, kernel, dtype, batch)
            found = convbench.get_backend(backend).configure(**(options or {}))
            prepared = found.prepare(image, weights, suite.SPEC)
            inner = calibrate(getattr(prepared, timed), prepared.wait)
            _READY[key] = _Ready(image, weights, prepared, inner)
        ready = _READY[key]
        self.image, self.weights, self.prepared = ready.image, ready.weights, ready.prepared
        self.inner = _Block.inner = ready.inner
        _Block.wait = ready.prepared.wait

    def _launches(self) -> None:
        launch = self.prepared.launch
        for _ in range(self.inner):
            launch()

    def _max_rel(self) -> float:
        reference = convbench.reference(self.image, self.weights, suite.SPEC)
        return convbench.agreement(self.prepared.result(), reference).max_rel


class Conv(_Case):
    """One image ``size``² with a ``kernel``² kernel."""

    params = (list(suite.BACKENDS), list(suite.SIZES), list(suite.KERNELS), list(suite.DTYPES))
    param_names = ("backend", "size", "kernel", "dtype")

    @_recorded
    def setup(self, backend, size, kernel, dtype):
        self._prepare(backend, size, kernel, dtype, batch=1)

    @_recorded
    def time_op(self, backend, size, kernel, dtype):
        """The op alone, on data already on the device: a block of launches, then the wait."""
        self._launches()

    @skip_for_params(_skips("peakmem", params, param_names))
    @_recorded
    def peakmem_op(self, backend, size, kernel, dtype):
        """Peak resident memory of the process: frameworks, inputs, output and workspace."""
        self.prepared.run()

    @skip_for_params(_skips("track", params, param_names))
    @_recorded
    def track_max_rel(self, backend, size, kernel, dtype):
        """Largest error / max|reference| against the float64 reference."""
        return self._max_rel()

    track_max_rel.unit = "relative error"


class ConvBatch(_Case):
    """A batch of ``batch`` images ``size``² (one channel), as a network layer sees them."""

    params = (
        list(suite.BACKENDS),
        list(suite.BATCHES),
        list(suite.BATCH_SIZES),
        list(suite.KERNELS),
        list(suite.DTYPES),
    )
    param_names = ("backend", "batch", "size", "kernel", "dtype")

    @_recorded
    def setup(self, backend, batch, size, kernel, dtype):
        self._prepare(backend, size, kernel, dtype, batch=batch)

    @_recorded
    def time_op(self, backend, batch, size, kernel, dtype):
        """The op alone, on data already on the device: a block of launches, then the wait."""
        self._launches()

    @skip_for_params(_skips("peakmem", params, param_names))
    @_recorded
    def peakmem_op(self, backend, batch, size, kernel, dtype):
        """Peak resident memory of the process: frameworks, inputs, output and workspace."""
        self.prepared.run()

    @skip_for_params(_skips("track", params, param_names))
    @_recorded
    def track_max_rel(self, backend, batch, size, kernel, dtype):
        """Largest error / max|reference| against the float64 reference."""
        return self._max_rel()

    track_max_rel.unit = "relative error"


class ConvSettings(_Case):
    """The settings that change speed or numbers (TF32, cuDNN autotuning, JAX precision), one
    ``variant`` each: a backend and the options it runs with (``suite.SETTING_OPTIONS``; the
    first value of each option is the library's default). float32, where TF32 applies."""

    params = (
        list(suite.setting_variants()),
        list(suite.SETTING_SIZES),
        list(suite.SETTING_KERNELS),
    )
    param_names = ("variant", "size", "kernel")

    @_recorded
    def setup(self, variant, size, kernel):
        backend, options = suite.parse_variant(variant)
        self._prepare(backend, size, kernel, suite.SETTING_DTYPE, batch=1, options=options)

    @_recorded
    def time_op(self, variant, size, kernel):
        """The op alone, on data already on the device: a block of launches, then the wait."""
        self._launches()

    @skip_for_params(_skips("track", params, param_names))
    @_recorded
    def track_max_rel(self, variant, size, kernel):
        """Largest error / max|reference| against the float64 reference."""
        return self._max_rel()

    track_max_rel.unit = "relative error"


class Transfer(_Case):
    """Host -> device, the op, device -> host: what a caller holding numpy arrays waits for.

    Compare with ``Conv.time_op`` (same parameters) for the share of the transfers. On a CPU
    backend the "transfers" are the copies and layout changes into and out of the framework.
    """

    params = (
        list(suite.BACKENDS),
        list(suite.TRANSFER_SIZES),
        list(suite.TRANSFER_KERNELS),
        list(suite.DTYPES),
    )
    param_names = ("backend", "size", "kernel", "dtype")

    @_recorded
    def setup(self, backend, size, kernel, dtype):
        self._prepare(backend, size, kernel, dtype, batch=1, timed="end_to_end")

    @_recorded
    def time_end_to_end(self, backend, size, kernel, dtype):
        """Upload, op, download to a numpy array (each download waits for its op)."""
        end_to_end = self.prepared.end_to_end
        for _ in range(self.inner):
            end_to_end()
