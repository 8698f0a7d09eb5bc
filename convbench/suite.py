"""The default benchmark grid, its skip policy and its inputs, shared by the asv suites and the CLI.

One parameter combination is one number. The grid is data here, not in ``benchmarks/``, so that
a run can say *why* a cell of the grid is empty: ``skip_reason`` depends on the parameters and
on what the backend object declares of itself (its device, ``Backend.slow_method``, a known
defect in ``Backend.case_unsupported``), never on its name, and imports no framework nor queries
a device; whether a backend can run on this machine is a separate question, answered by
``case_unavailable``.

Why the budgets below: on a 2-core CPU, scipy.signal's direct loop and every float64 convolution
cost about 4-10 ns per multiply-add and the framework float32 kernels about 0.2-1 ns, so 1.6e8
multiply-adds of the former and 1e9 of the latter are about a second per call. Cases beyond them
(4096² with 15x15 takes 1-5 s in float32 and up to 40 s in float64) are skipped on CPUs with this
reason, so that the whole default suite runs in minutes; GPU backends have no such budget.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING

import numpy as np

from convbench.backends.requirements import missing_requirement
from convbench.registry import BUILTIN, get_backend
from convbench.spec import ConvSpec, numpy_dtype

if TYPE_CHECKING:
    from convbench.backends.base import Backend

# The operation every suite measures: the defaults, i.e. a 'same'-sized cross-correlation with
# zero padding, the deep-learning convention that every framework computes natively.
SPEC = ConvSpec()

BACKENDS = tuple(decl.name for decl in BUILTIN)
SIZES = (64, 256, 1024, 2048, 4096)
KERNELS = (3, 4, 7, 15)  # 4: an even kernel, where 'same' padding is asymmetric
DTYPES = ("float32", "float64")

# The batch case: a small-image workload, as a network layer sees it.
BATCHES = (16,)
BATCH_SIZES = (256,)

# Host -> device -> host, beside the op alone; one kernel is enough to show the transfer share.
TRANSFER_SIZES = (256, 2048)
TRANSFER_KERNELS = (3,)

# The settings sweep: each variant is a backend and the options it is configured with, written
# as one asv parameter ("torch-cuda tf32=False cudnn_benchmark=True"), so that every number names
# the setting that produced it. Only settings that change speed or numbers, in float32 (where TF32
# applies), at two image sizes and the smallest and largest kernel.
SETTING_OPTIONS = {
    "torch-cuda": {"tf32": (True, False), "cudnn_benchmark": (False, True)},
    "tensorflow-gpu": {"tf32": (True, False)},
    "jax-gpu": {"precision": ("default", "highest")},
    "jax-cpu": {"precision": ("default", "highest")},
}
SETTING_SIZES = (1024, 8192)
SETTING_KERNELS = (3, 15)
SETTING_DTYPE = "float32"


def variant_name(backend: str, options: dict[str, object]) -> str:
    """One settings-sweep parameter: ``backend`` and ``key=value`` for each option."""
    return " ".join([backend, *(f"{key}={value}" for key, value in options.items())])


def split_variant(variant: str) -> tuple[str, str]:
    """A variant's backend and its setting as written: ('torch-cuda', 'tf32=False ...')."""
    backend, _, setting = variant.partition(" ")
    return backend, setting.strip()


def parse_variant(variant: str) -> tuple[str, dict[str, object]]:
    """``variant_name``'s inverse: the backend and its options (True/False back to bools)."""
    backend, setting = split_variant(variant)
    options: dict[str, object] = {}
    for pair in setting.split():
        key, sep, value = pair.partition("=")
        if not sep:
            raise ValueError(f"setting {pair!r} in variant {variant!r} is not key=value")
        options[key] = {"True": True, "False": False}.get(value, value)
    return backend, options


def default_variant(backend: str) -> str:
    """The variant of ``backend`` that leaves the library as it is: each option's first value."""
    choices = SETTING_OPTIONS[backend]
    return variant_name(backend, {option: values[0] for option, values in choices.items()})


def setting_variants() -> tuple[str, ...]:
    """Every combination of ``SETTING_OPTIONS``' values, per backend."""
    variants = []
    for backend, choices in SETTING_OPTIONS.items():
        for values in itertools.product(*choices.values()):
            variants.append(variant_name(backend, dict(zip(choices, values, strict=True))))
    return tuple(variants)


# How the asv suites time an op (benchmarks/conv.py): a sample is a block of back-to-back launches
# lasting at least BLOCK_TIME, with one device wait; one wait (~10 us) is then 0.1% of it, and the
# samples last as long as convbench's Timer's (10 ms), so both absorb a busy machine's preemptions
# alike. Blocks never exceed MAX_LAUNCHES launches.
BLOCK_TIME = 10e-3
MAX_LAUNCHES = 10_000
TIMING = (
    f"blocks of back-to-back launches lasting {BLOCK_TIME * 1e3:g} ms or more (at most "
    f"{MAX_LAUNCHES} launches), one device wait per block, seconds per op"
)


# Multiply-adds per call above which a slow method (``Backend.slow_method``) and float64 on a CPU
# are skipped, and above which every CPU case is.
CPU_SLOW_MACS = 1.6e8
CPU_MAX_MACS = 1e9
# Agreement (track_*) needs the float64 reference, accumulated tap by tap in numpy (about 4 ns per
# multiply-add: 1 s at 1024² with 15x15, 10 s at 4096²). Larger cases only draw more samples of the
# same per-output error, so agreement is tracked for images up to 1024² and references up to
# 1024² x 7x7 (also 16 x 256² x 7x7) multiply-adds.
TRACK_MAX_SIZE = 1024
TRACK_MAX_MACS = 1024 * 1024 * 7 * 7
# Peak memory depends on the image and the kernel's extremes (an im2col workspace grows with k²),
# not on every kernel between them; measuring two kernels halves its cost.
PEAKMEM_KERNELS = (3, 15)

METRICS = ("time", "peakmem", "track")


def multiply_adds(size: int, kernel: int, batch: int = 1) -> int:
    """Multiply-adds of one 'same' correlation of ``batch`` images ``size``² with ``kernel``²."""
    return batch * size * size * kernel * kernel


def skip_reason(backend: str, size: int, kernel: int, dtype: str, batch: int = 1) -> str | None:
    """Why the default suite does not measure this case of the backend called ``backend``, or
    None when it does.

    Asks the backend object what it declares (device, slow method, known defects), never parses
    its name; imports no framework and depends on nothing installed but, for a known defect, the
    defective library's version (see ``case_unavailable`` for what this machine can run).
    """
    found = get_backend(backend)
    if found.device_kind == "cpu":
        over_budget = _cpu_budget(found, size, kernel, dtype, batch)
        if over_budget:
            return over_budget
    image_shape = (size, size) if batch == 1 else (batch, size, size)
    return found.case_unsupported(image_shape, (kernel, kernel), dtype)


def _cpu_budget(found: Backend, size: int, kernel: int, dtype: str, batch: int) -> str | None:
    """Why this case costs a CPU backend more than the suite's budget, or None."""
    macs = multiply_adds(size, kernel, batch)
    shape = f"{batch}x{size}x{size}" if batch > 1 else f"{size}x{size}"
    over = f"{macs:.2g} multiply-adds ({shape} image, {kernel}x{kernel} kernel) exceed"
    if found.slow_method and macs > CPU_SLOW_MACS:
        return (
            f"{found.slow_method}: {over} the suite's budget of {CPU_SLOW_MACS:.2g} "
            "(about a second per call on one CPU core)"
        )
    if dtype == "float64" and macs > CPU_SLOW_MACS:
        return (
            f"float64 on a CPU: {over} the suite's budget of {CPU_SLOW_MACS:.2g} (seconds per call)"
        )
    if macs > CPU_MAX_MACS:
        return f"on a CPU: {over} the suite's budget of {CPU_MAX_MACS:.2g} (seconds per call)"
    return None


def metric_skip_reason(metric: str, size: int, kernel: int, batch: int = 1) -> str | None:
    """Why the suite does not measure ``metric`` ("time", "peakmem", "track") for a case that
    ``skip_reason`` lets through, or None when it does. Depends on the parameters alone."""
    if metric not in METRICS:
        raise ValueError(f"metric={metric!r} must be one of {list(METRICS)}")
    macs = multiply_adds(size, kernel, batch)
    if metric == "track" and (size > TRACK_MAX_SIZE or macs > TRACK_MAX_MACS):
        return (
            f"agreement is tracked up to {TRACK_MAX_SIZE}x{TRACK_MAX_SIZE} images and "
            f"{TRACK_MAX_MACS:.2g} multiply-adds: the float64 reference costs seconds here "
            "and larger cases add no new kind of error"
        )
    if metric == "peakmem" and kernel not in PEAKMEM_KERNELS:
        return f"peak memory is measured for kernels {list(PEAKMEM_KERNELS)}, the extremes"
    return None


def make_inputs(
    size: int, kernel: int, dtype: str, batch: int = 1, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Seeded standard-normal image ``(size, size)`` (or ``(batch, size, size)``) and kernel.

    Never zeros or ones: those hide ordering and rounding differences. The image and kernel come
    from one generator, so a (size, kernel, batch, seed) always gives the same numbers; float16
    and bfloat16 are drawn in float32 and rounded.
    """
    rng = np.random.default_rng(seed)
    shape = (size, size) if batch == 1 else (batch, size, size)
    draw = np.float64 if dtype == "float64" else np.float32
    image = rng.standard_normal(shape, dtype=draw)
    weights = rng.standard_normal((kernel, kernel), dtype=draw)
    target = numpy_dtype(dtype)
    return image.astype(target, copy=False), weights.astype(target, copy=False)


def case_unavailable(backend: str, dtype: str) -> str | None:
    """Why ``backend`` cannot compute ``dtype`` on this machine (imports its framework)."""
    found = get_backend(backend)
    return found.unavailable_reason or found.dtype_unsupported(dtype)


def preimport(backends: tuple[str, ...] = BACKENDS) -> None:
    """Import the frameworks of the installed backends (``Backend.preimport``), and nothing more.

    For asv's forkserver: importing TensorFlow, torch and JAX once in the server saves seconds in
    every forked benchmark. Importing initialises no device; querying one (``torch.cuda``,
    ``tf.config``, ``jax.devices``) would, and CUDA cannot be used in a child forked after it was
    initialised, so device queries happen only in the benchmarks' ``setup``.
    """
    for name in backends:
        found = get_backend(name)
        if missing_requirement(found.requires, needs_gpu=False) is None:
            found.preimport()
