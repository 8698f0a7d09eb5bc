"""asv suites: speed (time_), memory (peakmem_) and agreement (track_) of one 2-D convolution.

Every suite measures ``convbench.suite.SPEC`` over the grid in ``convbench.suite``; how a case is
set up, skipped, recorded and timed is ``benchmarks/common.py``'s ``ConvSuite``.

Importing this module imports the installed frameworks (``suite.preimport``) so that asv's
forkserver pays for them once; nothing here touches a device before ``setup`` runs in the
forked child.
"""

from __future__ import annotations

from convbench import suite

from .common import Case, ConvSuite, PeakmemOp, TimeOp, TrackMaxRel

suite.preimport(suite.grid_backends())


class Conv(TimeOp, PeakmemOp, TrackMaxRel):
    """One image ``size``² with a ``kernel``² kernel."""

    params = (*ConvSuite.params, list(suite.SIZES), list(suite.KERNELS), list(suite.DTYPES))
    param_names = (*ConvSuite.param_names, "size", "kernel", "dtype")

    @staticmethod
    def case(backend: str, size: int, kernel: int, dtype: str) -> Case:
        return Case(backend, size, kernel, dtype)


class ConvBatch(TimeOp, PeakmemOp, TrackMaxRel):
    """A batch of ``batch`` images ``size``² (one channel), as a network layer sees them."""

    params = (
        *ConvSuite.params,
        list(suite.BATCHES),
        list(suite.BATCH_SIZES),
        list(suite.BATCH_KERNELS),
        list(suite.DTYPES),
    )
    param_names = (*ConvSuite.param_names, "batch", "size", "kernel", "dtype")

    @staticmethod
    def case(backend: str, batch: int, size: int, kernel: int, dtype: str) -> Case:
        return Case(backend, size, kernel, dtype, batch)


class ConvSettings(TimeOp, TrackMaxRel):
    """The settings that change speed or numbers (TF32, cuDNN autotuning, JAX precision), one
    ``variant`` each: a backend and the options it runs with (``suite.SETTING_OPTIONS``; the
    first value of each option is the library's default). float32, where TF32 applies."""

    params = (
        list(suite.setting_variants(suite.grid_backends())),
        list(suite.SETTING_SIZES),
        list(suite.SETTING_KERNELS),
    )
    param_names = ("variant", "size", "kernel")

    @staticmethod
    def case(variant: str, size: int, kernel: int) -> Case:
        backend, options = suite.parse_variant(variant)
        return Case(
            backend,
            size,
            kernel,
            suite.SETTING_DTYPE,
            options=options,
            setting=suite.split_variant(variant)[1],
            default_setting=variant == suite.default_variant(backend),
        )


class Transfer(ConvSuite):
    """Host -> device, the op, device -> host: what a caller holding numpy arrays waits for.

    Compare with ``Conv.time_op`` (same parameters) for the share of the transfers. On a CPU
    backend the "transfers" are the copies and layout changes into and out of the framework.
    """

    params = (
        *ConvSuite.params,
        list(suite.TRANSFER_SIZES),
        list(suite.TRANSFER_KERNELS),
        list(suite.DTYPES),
    )
    param_names = (*ConvSuite.param_names, "size", "kernel", "dtype")
    timed = "end_to_end"

    @staticmethod
    def case(backend: str, size: int, kernel: int, dtype: str) -> Case:
        return Case(backend, size, kernel, dtype)

    def time_end_to_end(self, *params: object) -> None:
        """Upload, op, download to a numpy array (each download waits for its op)."""
        self.timer.block()
