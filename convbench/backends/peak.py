"""The machine's peak floating-point rate: the best of a large matrix multiply in each installed
BLAS (numpy's, and torch's when torch is installed), per dtype.

A matrix multiply of n x n matrices does 2 n³ flops on n² data, so from a few hundred on it is
bound by the arithmetic units, not by memory, and a tuned BLAS keeps them busier than any other
kernel a machine runs: its rate is the roof a convolution's rate is judged against
(``convbench.roofline``). Each library is measured at growing sizes until one call lasts
``MIN_CALL_TIME`` (small products leave cores idle), the best of ``REPEATS`` calls at each size
after a warm-up call; the best rate over libraries and sizes is the peak, recorded with the
library, size and thread count that gave it. These are the host CPU's ceilings: a GPU's are not
measured here.

torch is imported only when asked for, and before anything could import TensorFlow after it
(see ``convbench.backends.tensorflow_conv.import_tensorflow``).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from convbench.load import LoadProbe
from convbench.timing import WallClock

# Matrix sizes tried in turn, until one call lasts MIN_CALL_TIME: on a laptop or a 2-core VM the
# rate saturates around 1024-2048; 4096 caps the cost on a slow machine (one call of 1.4e11
# flops in float64).
SIZES = (512, 1024, 2048, 4096)
MIN_CALL_TIME = 0.05
REPEATS = 3
LIBRARIES = ("numpy", "torch")


@dataclass(frozen=True)
class PeakRate:
    """The best matrix-multiply rate found for one dtype, and what gave it."""

    dtype: str
    gflops: float
    library: str
    size: int
    # Threads the library ran with (torch's ``get_num_threads``); None where the library does not
    # say (numpy's BLAS keeps its own default, usually every core).
    threads: int | None
    method: str
    # Cores other processes kept busy meanwhile (``convbench.load``): a busy machine reads low.
    other_cores: float | None


def _best_seconds(multiply: Callable[[], object], calls: int) -> float:
    """The best seconds of ``calls`` calls of ``multiply``, after one untimed call."""
    multiply()
    clock = WallClock()
    return min(clock.sample(multiply, 1) for _ in range(calls))


def _numpy_multiply(dtype: str, size: int) -> Callable[[], object]:
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((size, size)).astype(dtype) for _ in range(2))
    out = np.empty_like(a)
    return lambda: np.matmul(a, b, out=out)


def _torch_multiply(dtype: str, size: int) -> Callable[[], object]:
    import torch

    generator = torch.Generator().manual_seed(0)
    kind = getattr(torch, dtype)
    a, b = (torch.randn(size, size, generator=generator, dtype=kind) for _ in range(2))
    out = torch.empty_like(a)
    return lambda: torch.matmul(a, b, out=out)


def _threads(library: str) -> int | None:
    if library == "torch":
        import torch

        return torch.get_num_threads()
    return None


def _blas(library: str) -> str:
    """The library as the record names it: numpy with its BLAS, torch with its version."""
    if library == "torch":
        import torch

        return f"torch {torch.__version__}"
    blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
    return f"numpy {np.__version__} ({blas.get('name')} {blas.get('version')})"


def library_rate(library: str, dtype: str) -> PeakRate:
    """``library``'s best matmul rate in ``dtype`` ('float32' or 'float64')."""
    if library not in LIBRARIES:
        raise ValueError(f"library={library!r} must be one of {list(LIBRARIES)}")
    if dtype not in ("float32", "float64"):
        raise ValueError(f"dtype={dtype!r} must be 'float32' or 'float64'")
    make = _torch_multiply if library == "torch" else _numpy_multiply
    best_rate, best_size = 0.0, SIZES[0]
    with LoadProbe() as probe:
        for size in SIZES:
            seconds = _best_seconds(make(dtype, size), REPEATS)
            rate = 2 * size**3 / seconds / 1e9
            if rate > best_rate:
                best_rate, best_size = rate, size
            if seconds >= MIN_CALL_TIME:
                break
    threads = _threads(library)
    method = (
        f"{library}.matmul of two {best_size}x{best_size} {dtype} matrices (2 n^3 flops), "
        f"best of {REPEATS} calls after a warm-up, {_blas(library)}"
        + (f", {threads} threads" if threads else ", the BLAS's own thread count")
    )
    other = probe.result.other_cores if probe.result else None
    return PeakRate(dtype, best_rate, library, best_size, threads, method, other)


def installed_libraries() -> tuple[str, ...]:
    """The libraries of ``LIBRARIES`` installed here (numpy always is)."""
    return tuple(name for name in LIBRARIES if importlib.util.find_spec(name) is not None)


def peak_rate(dtype: str, libraries: tuple[str, ...] | None = None) -> PeakRate:
    """The best matmul rate in ``dtype`` over ``libraries`` (default: every one installed)."""
    chosen = installed_libraries() if libraries is None else libraries
    if not chosen:
        raise ValueError("libraries must name at least one of " + str(list(LIBRARIES)))
    return max((library_rate(name, dtype) for name in chosen), key=lambda rate: rate.gflops)
