"""asv suites: speed (time_), memory (peakmem_) and agreement (track_) of one 2-D convolution.

Every class measures ``convbench.suite.SPEC`` (correlate, 'same', zero fill) over the grid in
``convbench.suite``; one parameter combination is one number. ``setup`` does all untimed work
(inputs, ``Backend.prepare``: padding, layout, upload, compilation) and skips, with asv's
``SkipNotImplemented`` and a reason, a case that ``suite.skip_reason`` rules out or that this
machine cannot run (``suite.case_unavailable``).

Importing this module imports the installed frameworks (``suite.preimport``) so that asv's
forkserver pays for them once; nothing here touches a device before ``setup`` runs in the
forked child.
"""

from __future__ import annotations

import itertools

from asv_runner.benchmarks.mark import SkipNotImplemented, skip_for_params

import convbench
from convbench import suite

suite.preimport()


def _skips(metric: str, params: tuple[list, ...], names: tuple[str, ...]) -> list[tuple]:
    """Parameter tuples that ``suite.metric_skip_reason`` rules out for ``metric``."""
    skipped = []
    for combo in itertools.product(*params):
        case = dict(zip(names, combo, strict=True))
        if suite.metric_skip_reason(metric, case["size"], case["kernel"], case.get("batch", 1)):
            skipped.append(combo)
    return skipped


class _Case:
    """Set-up and benchmarks shared by the single-image and the batch suites."""

    # One process per parameter combination, one round: repeat from 3 samples (slow cases)
    # up to 10 (fast ones), stopping after 5 s of sampling; the first calls, spent choosing
    # ``number``, are the warm-up (oneDNN primitives, XLA executables, thread pools).
    rounds = 1
    repeat = (3, 10, 5.0)
    timeout = 180

    def _prepare(self, backend: str, size: int, kernel: int, dtype: str, batch: int) -> None:
        reason = suite.skip_reason(backend, size, kernel, dtype, batch)
        reason = reason or suite.case_unavailable(backend, dtype)
        if reason:
            raise SkipNotImplemented(reason)
        self.image, self.weights = suite.make_inputs(size, kernel, dtype, batch)
        self.prepared = convbench.get_backend(backend).prepare(self.image, self.weights, suite.SPEC)

    def _max_rel(self) -> float:
        reference = convbench.reference(self.image, self.weights, suite.SPEC)
        return convbench.agreement(self.prepared.result(), reference).max_rel


class Conv(_Case):
    """One image ``size``² with a ``kernel``² kernel."""

    params = (list(suite.BACKENDS), list(suite.SIZES), list(suite.KERNELS), list(suite.DTYPES))
    param_names = ("backend", "size", "kernel", "dtype")

    def setup(self, backend, size, kernel, dtype):
        self._prepare(backend, size, kernel, dtype, batch=1)

    def time_op(self, backend, size, kernel, dtype):
        """The op alone, on data already on the device; returns when the device is done."""
        self.prepared.run()

    @skip_for_params(_skips("peakmem", params, param_names))
    def peakmem_op(self, backend, size, kernel, dtype):
        """Peak resident memory of the process: frameworks, inputs, output and workspace."""
        self.prepared.run()

    @skip_for_params(_skips("track", params, param_names))
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

    def setup(self, backend, batch, size, kernel, dtype):
        self._prepare(backend, size, kernel, dtype, batch=batch)

    def time_op(self, backend, batch, size, kernel, dtype):
        """The op alone, on data already on the device; returns when the device is done."""
        self.prepared.run()

    @skip_for_params(_skips("peakmem", params, param_names))
    def peakmem_op(self, backend, batch, size, kernel, dtype):
        """Peak resident memory of the process: frameworks, inputs, output and workspace."""
        self.prepared.run()

    @skip_for_params(_skips("track", params, param_names))
    def track_max_rel(self, backend, batch, size, kernel, dtype):
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

    def setup(self, backend, size, kernel, dtype):
        self._prepare(backend, size, kernel, dtype, batch=1)

    def time_end_to_end(self, backend, size, kernel, dtype):
        """Upload, op, download to a numpy array."""
        self.prepared.end_to_end()
