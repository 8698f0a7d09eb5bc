"""The default benchmark grid, its skip policy and its inputs, shared by the asv suites and the CLI.

One parameter combination is one number. The grid is data here, not in ``benchmarks/``, so that
a run can say *why* a cell of the grid is empty: ``skip_reason`` depends on the parameters and
on what the backend object declares of itself (its device, its arithmetic, ``slow_method``, a
known defect in ``case_unsupported``), never on its name, and imports no framework nor queries
a device; whether a backend can run on this machine is a separate question, answered by
``case_unavailable``.

The grid reaches where methods cross over: kernels up to 31x31, where FFT methods overtake
direct sums, and images up to 8192². Which of its cases a CPU measures is a cost model (below,
``cpu_cost``): each case is counted in the unit of the arithmetic its backend declares
(``Backend.arithmetic``), multiply-adds for a direct method and n log2 n for an FFT, against a
budget of about a second per call, so that an FFT method is not held to the multiply-adds it
avoids and the whole default suite runs in minutes. A case over budget is skipped with a reason
that gives its count and the budget; GPU backends have no budget.
"""

from __future__ import annotations

import functools
import itertools
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from convbench.atomic import write_text, write_with
from convbench.backends.requirements import missing_requirement
from convbench.registry import BUILTIN, available_backends, get_backend
from convbench.spec import ConvSpec, numpy_dtype

if TYPE_CHECKING:
    from convbench.backends.base import Backend

# The operation every suite measures: the defaults, i.e. a 'same'-sized cross-correlation with
# zero padding, the deep-learning convention that every framework computes natively.
SPEC = ConvSpec()

BACKENDS = tuple(decl.name for decl in BUILTIN)
# Which backends the asv suites take as parameters: unset, the ones this machine may run; "all",
# every one of ``BACKENDS``; or a comma-separated list of names.
GRID_BACKENDS_VARIABLE = "CONVBENCH_ASV_BACKENDS"
SIZES = (64, 256, 1024, 2048, 4096, 8192)
# 4: an even kernel, where 'same' padding is asymmetric; 15 and 31: where FFT methods overtake
# direct ones.
KERNELS = (3, 4, 7, 15, 31)
DTYPES = ("float32", "float64")

# The batch case: a small-image workload, as a network layer sees it, whose kernels stop short
# of 31x31 (a size no layer uses; the single-image grid shows it).
BATCHES = (16,)
BATCH_SIZES = (256,)
BATCH_KERNELS = (3, 4, 7, 15)

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


def grid_backends(
    backends: tuple[str, ...] = BACKENDS, chosen: str | None = None
) -> tuple[str, ...]:
    """The backends of ``backends`` that the asv suites take as parameters, in their order.

    ``chosen`` (default: the environment variable ``CONVBENCH_ASV_BACKENDS``) is unset or empty
    for those this machine may run, judged without importing a framework or touching a device
    (``registry.available_backends``: the package is installed and, for a GPU backend, a GPU
    device node exists); "all" for every one, each that cannot run recorded as skipped with its
    reason; or a comma-separated list of names, kept in ``backends``' order. Leaving out what
    cannot run spares asv a process per combination (a quick run of the default suite spawns
    thousands); the machine's environment record still says why each backend left out cannot
    run, and the report lists them. ValueError names a chosen name that is not a backend."""
    chosen = os.environ.get(GRID_BACKENDS_VARIABLE, "") if chosen is None else chosen
    chosen = chosen.strip()
    if chosen == "all":
        return backends
    if chosen:
        names = [name.strip() for name in chosen.split(",") if name.strip()]
        unknown = [name for name in names if name not in BACKENDS]
        if unknown:
            raise ValueError(
                f"{GRID_BACKENDS_VARIABLE}={chosen!r}: {', '.join(map(repr, unknown))} is not a "
                f"backend; must be 'all' or names among: {', '.join(BACKENDS)}"
            )
        return tuple(name for name in backends if name in names)
    runnable = set(available_backends())
    return tuple(name for name in backends if name in runnable)


def setting_variants(backends: tuple[str, ...] | None = None) -> tuple[str, ...]:
    """Every combination of ``SETTING_OPTIONS``' values, per backend (of ``backends`` only, when
    given)."""
    variants = []
    for backend, choices in SETTING_OPTIONS.items():
        if backends is not None and backend not in backends:
            continue
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


# The skip policy's cost model. A CPU case's cost is counted in the unit of the arithmetic the
# backend says it runs (``Backend.arithmetic``): a direct method does one multiply-add per kernel
# tap per output; an FFT method transforms the zero-padded image, of n = (H+kh-1) x (W+kw-1)
# points per plane, at about n log2 n operations per transform, whatever the kernel. Each unit
# has its budgets, set to about a second per call on a 2-core CPU:
# - direct, a slow method (``Backend.slow_method``) or float64: 1.6e8 multiply-adds (4-10 ns each);
# - direct, float32 (a library's vectorised kernel, 0.1-1 ns each): 1e9. Past it torch and JAX
#   take several seconds on a large one-channel image (torch's oneDNN path reorders it into
#   16-channel blocks: gigabytes at 8192²);
# - FFT, float32 (pocketfft and OpenCV's DFT, 0.4-0.8 ns per n log2 n): 2e9 (8192²); float64
#   moves twice the bytes and costs about twice as much: 1e9 (4096²).
# An FFT method's time hardly depends on the kernel, so past CPU_FFT_EVERY_KERNEL (4096² in
# float32, 2048² in float64) it is measured with the largest kernel only: the case where direct
# methods are out of reach, and where the FFT's advantage is widest.
CPU_SLOW_MACS = 1.6e8
CPU_MAX_MACS = 1e9
CPU_FFT_OPERATIONS = {"float32": 2e9, "float64": 1e9}
CPU_FFT_EVERY_KERNEL = {"float32": 5e8, "float64": 2.5e8}
# Agreement (track_*) needs the float64 reference, accumulated tap by tap in numpy (about 4 ns per
# multiply-add: 1 s at 1024² with 15x15, 10 s at 4096²). Larger cases only draw more samples of the
# same per-output error, so agreement is tracked for images up to 1024² and references up to
# 1024² x 7x7 (also 16 x 256² x 7x7) multiply-adds.
TRACK_MAX_SIZE = 1024
TRACK_MAX_MACS = 1024 * 1024 * 7 * 7
# Peak memory depends on the image and the kernel's extremes (an im2col workspace grows with k²),
# not on every kernel between them; measuring two kernels costs a fraction of measuring all.
PEAKMEM_KERNELS = (min(KERNELS), max(KERNELS))
# Nor on every size: below 1024² a process's peak is the frameworks' own (about 0.5 GiB whatever
# the op), and 2048² lies between 1024² and 4096² on a line that grows with the image.
PEAKMEM_SIZES = (1024, 4096, 8192)
PEAKMEM_BATCH_KERNELS = (min(BATCH_KERNELS), max(BATCH_KERNELS))

METRICS = ("time", "peakmem", "track")


def multiply_adds(size: int, kernel: int, batch: int = 1) -> int:
    """Multiply-adds of one 'same' correlation of ``batch`` images ``size``² with ``kernel``²."""
    return batch * size * size * kernel * kernel


def transform_points(size: int, kernel: int) -> int:
    """Points of one plane's FFT for a linear convolution of ``size``² with ``kernel``²: the
    image zero-padded by the kernel, (size + kernel - 1)²."""
    return (size + kernel - 1) ** 2


def fft_operations(size: int, kernel: int, batch: int = 1) -> float:
    """The FFT cost model's work for one call: ``batch`` x n log2 n, n = ``transform_points``."""
    points = transform_points(size, kernel)
    return batch * points * math.log2(points)


@dataclass(frozen=True)
class CpuCost:
    """One call of a case on a CPU as the skip policy counts it: ``work`` in ``unit``, against
    ``budget``; ``method`` opens the skip reason, ``detail`` says what was counted and
    ``seconds`` what the budget means. An FFT method's cost hardly depends on the kernel: past
    ``every_kernel`` it is measured with the grid's largest kernel only."""

    work: float
    unit: str
    budget: float
    method: str
    detail: str
    seconds: str
    every_kernel: float | None = None

    def reason(self, kernel: int) -> str | None:
        """Why a case of this cost with a ``kernel``² kernel is not measured, or None."""
        counted = f"{self.method}: {self.work:.3g} {self.unit} ({self.detail}) exceed"
        if self.work > self.budget:
            return f"{counted} the suite's budget of {self.budget:.2g} ({self.seconds})"
        largest = max(KERNELS)
        if self.every_kernel is not None and self.work > self.every_kernel and kernel < largest:
            return (
                f"{counted} {self.every_kernel:.2g}, above which an FFT method, whose cost hardly "
                f"depends on the kernel, is measured with the largest kernel ({largest}x{largest}) "
                "only"
            )
        return None


def cpu_cost(found: Backend, size: int, kernel: int, dtype: str, batch: int = 1) -> CpuCost | None:
    """What one call of this case costs ``found`` on a CPU, in the unit of the arithmetic it says
    it runs, and the budget it is held to; None when the backend cannot say (its library is
    not installed, so nothing runs here anyway)."""
    if missing_requirement(found.requires, needs_gpu=False):
        return None
    image_shape = (size, size) if batch == 1 else (batch, size, size)
    shape = "x".join(map(str, image_shape))
    if found.arithmetic(dtype, image_shape, (kernel, kernel)) == "fft":
        side = size + kernel - 1
        planes = f"{batch} x " if batch > 1 else ""
        # float16 and bfloat16 are never cheaper than float32 on a CPU: the lowest budgets.
        return CpuCost(
            fft_operations(size, kernel, batch),
            "FFT operations",
            CPU_FFT_OPERATIONS.get(dtype, min(CPU_FFT_OPERATIONS.values())),
            f"{dtype} FFT on a CPU",
            f"n log2 n, n = {planes}{side}x{side} points: {shape} image, {kernel}x{kernel} kernel",
            "seconds per call",
            CPU_FFT_EVERY_KERNEL.get(dtype, min(CPU_FFT_EVERY_KERNEL.values())),
        )
    detail = f"{shape} image, {kernel}x{kernel} kernel"
    macs = multiply_adds(size, kernel, batch)
    if found.slow_method:
        seconds = "about a second per call on one CPU core"
        return CpuCost(macs, "multiply-adds", CPU_SLOW_MACS, found.slow_method, detail, seconds)
    if dtype == "float64":
        method = "float64 on a CPU"
        return CpuCost(macs, "multiply-adds", CPU_SLOW_MACS, method, detail, "seconds per call")
    return CpuCost(macs, "multiply-adds", CPU_MAX_MACS, "on a CPU", detail, "seconds per call")


def skip_reason(backend: str, size: int, kernel: int, dtype: str, batch: int = 1) -> str | None:
    """Why the default suite does not measure this case of the backend called ``backend``, or
    None when it does.

    Asks the backend object what it declares (device, arithmetic, slow method, known defects),
    never parses its name; imports no framework, and depends on nothing installed but what a
    backend reads of its own library without running it (OpenCV's CPU features, which decide
    its method; a defective library's version).
    """
    found = get_backend(backend)
    if found.device_kind == "cpu":
        cost = cpu_cost(found, size, kernel, dtype, batch)
        over_budget = cost.reason(kernel) if cost else None
        if over_budget:
            return over_budget
    image_shape = (size, size) if batch == 1 else (batch, size, size)
    return found.case_unsupported(image_shape, (kernel, kernel), dtype)


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
    if metric == "time" and kernel % 2 == 0:
        return (
            f"the even {kernel}x{kernel} kernel is in the grid for agreement, where the 'same' "
            "window sits off-centre and conventions part; its time lies on the odd kernels' curve"
        )
    extremes = PEAKMEM_KERNELS if batch == 1 else PEAKMEM_BATCH_KERNELS
    if metric == "peakmem" and kernel not in extremes:
        return f"peak memory is measured for kernels {list(extremes)}, the extremes"
    if metric == "peakmem" and batch == 1 and size not in PEAKMEM_SIZES:
        return (
            f"peak memory is measured for images {', '.join(f'{s}x{s}' for s in PEAKMEM_SIZES)}: "
            "below 1024x1024 the peak is the frameworks' own, and 2048x2048 lies between"
        )
    return None


def make_inputs(
    size: int,
    kernel: int,
    dtype: str,
    batch: int = 1,
    seed: int = 0,
    cache: Path | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Seeded standard-normal image ``(size, size)`` (or ``(batch, size, size)``) and kernel.

    Never zeros or ones: those hide ordering and rounding differences. The image and kernel come
    from one generator, so a (size, kernel, batch, seed) always gives the same numbers; float16
    and bfloat16 are drawn in float32 and rounded.

    ``cache``: a folder where a drawn image of ``CACHED_ELEMENTS`` or more is kept, with the
    generator's state after it, and read back next time, the same numbers (drawing 8192² normals
    takes about a second, reading them back a tenth of that; the asv suites pay it in every
    process they start for a case). The file names hold numpy's version, whose generator drew
    them.
    """
    shape = (size, size) if batch == 1 else (batch, size, size)
    draw = np.float64 if dtype == "float64" else np.float32
    rng, image = _drawn_image(shape, draw, seed, cache)
    weights = rng.standard_normal((kernel, kernel), dtype=draw)
    target = numpy_dtype(dtype)
    return image.astype(target, copy=False), weights.astype(target, copy=False)


# The images make_inputs keeps in its cache: large enough that drawing them costs more than
# reading them back (from 1024²).
CACHED_ELEMENTS = 2**20


def _drawn_image(
    shape: tuple[int, ...], draw: type, seed: int, cache: Path | None
) -> tuple[np.random.Generator, np.ndarray]:
    """The seeded generator after drawing the image, and the image (from ``cache`` if kept)."""
    rng = np.random.default_rng(seed)
    if cache is None or math.prod(shape) < CACHED_ELEMENTS:
        return rng, rng.standard_normal(shape, dtype=draw)
    stem = f"{'x'.join(map(str, shape))}-{np.dtype(draw).name}-seed{seed}-numpy{np.__version__}"
    image_path, state_path = cache / f"{stem}.npy", cache / f"{stem}.state.json"
    try:
        image = np.load(image_path)
        rng.bit_generator.state = json.loads(state_path.read_text())
        if image.shape == shape and image.dtype == draw:
            return rng, image

        rng = np.random.default_rng(seed)
    except (OSError, EOFError, ValueError, KeyError, TypeError):
        rng = np.random.default_rng(seed)  # not kept yet, or torn: draw it again
    image = rng.standard_normal(shape, dtype=draw)
    try:
        # The state first: an image without its state is drawn again, never paired wrongly.
        write_text(state_path, json.dumps(rng.bit_generator.state))
        write_with(image_path, functools.partial(_save, image))
    except OSError:
        pass  # a cache that cannot be written costs time, not numbers
    return rng, image


def _save(array: np.ndarray, path: Path) -> None:
    with path.open("wb") as file:
        np.save(file, array)


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
