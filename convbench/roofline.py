"""Where a convolution's speed sits under its machine's roofline.

A machine has two ceilings (Williams, Waterman and Patterson, "Roofline", CACM 2009): the peak
floating-point rate its cores reach (measured by ``convbench env`` as the best large matrix
multiply, ``convbench.backends.peak``) and the rate memory feeds them (a large numpy copy,
``convbench.timing.copy_bandwidth``). An op that does F flops on B bytes it must move, at least,
has the arithmetic intensity I = F / B and cannot run faster than ``min(peak, I x bandwidth)``
GFLOP/s: below the ridge (``Roofline.ridge`` flop/byte) memory bounds it, above it the
arithmetic does.

Every method is charged the same work, the direct method's: ``2 x kh x kw`` flops per output
(a multiply and an add per tap) on the image, kernel and output read or written once. So an
achieved rate is that work over the measured time, the same yardstick for every backend. An FFT
method does less arithmetic than that for large kernels, and so can pass 100% of the direct
bound: that is the point where it wins, not an error of the measurement.

Pure functions of shapes and numbers: nothing here measures or imports a framework.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from convbench.spec import ConvSpec, numpy_dtype


def _positive(name: str, value: float) -> None:
    real = isinstance(value, int | float) and not isinstance(value, bool)
    if not (real and math.isfinite(value) and value > 0):
        raise ValueError(f"{name}={value!r} must be a positive finite number")


@dataclass(frozen=True)
class Roofline:
    """A machine's two ceilings for one dtype: peak GFLOP/s and memory bandwidth in GB/s."""

    peak_gflops: float
    bandwidth_gbs: float

    def __post_init__(self) -> None:
        _positive("peak_gflops", self.peak_gflops)
        _positive("bandwidth_gbs", self.bandwidth_gbs)

    @property
    def ridge(self) -> float:
        """The intensity (flop/byte) from which the peak rate, not memory, bounds an op."""
        return self.peak_gflops / self.bandwidth_gbs

    def bound(self, intensity: float) -> float:
        """The GFLOP/s attainable at ``intensity`` flop/byte: min(peak, intensity x bandwidth)."""
        if not intensity >= 0:
            raise ValueError(f"intensity={intensity!r} must be a number >= 0")
        return min(self.peak_gflops, intensity * self.bandwidth_gbs)

    def limit(self, intensity: float) -> str:
        """Which ceiling bounds an op of ``intensity``: 'memory' or 'compute'."""
        return "memory" if intensity * self.bandwidth_gbs < self.peak_gflops else "compute"


@dataclass(frozen=True)
class Work:
    """What one convolution must do, at least, by the direct method: flops and bytes moved."""

    flops: int
    bytes: int

    @property
    def intensity(self) -> float:
        """Flops per byte moved."""
        return self.flops / self.bytes


def work(
    image_shape: tuple[int, ...],
    kernel_shape: tuple[int, int],
    dtype: str,
    spec: ConvSpec | None = None,
) -> Work:
    """The direct method's work for one case: ``2 x kh x kw`` flops per output; the image, the
    kernel and the output each read or written once, in ``dtype``. ``image_shape`` is ``(H, W)``
    or a batch ``(B, H, W)``; the outputs are those of ``spec`` (default: 'same')."""
    spec = ConvSpec() if spec is None else spec
    kh, kw = kernel_shape
    outputs = math.prod(spec.output_shape(tuple(image_shape), (kh, kw)))
    itemsize = numpy_dtype(dtype).itemsize
    moved = itemsize * (math.prod(image_shape) + kh * kw + outputs)
    return Work(flops=2 * kh * kw * outputs, bytes=moved)


@dataclass(frozen=True)
class Achieved:
    """A measured op against its roofline: the direct work's GFLOP/s, the bound at its intensity,
    the share of that bound (above 1 only for a method that does less work, an FFT), and
    which ceiling the bound is ('memory' or 'compute')."""

    gflops: float
    bound_gflops: float
    share: float
    limit: str


def achieved(case: Work, seconds: float, roofline: Roofline) -> Achieved:
    """How fast an op that took ``seconds`` ran, in the direct method's GFLOP/s, and how close
    that is to ``roofline``'s bound for its intensity."""
    _positive("seconds", seconds)
    rate = case.flops / seconds / 1e9
    bound = roofline.bound(case.intensity)
    return Achieved(rate, bound, rate / bound, roofline.limit(case.intensity))


def from_environment(environment: Mapping[str, Any], dtype: str) -> Roofline | None:
    """The roofline that an environment record (``convbench env``) holds for ``dtype``; None when
    it lacks the bandwidth or that dtype's peak rate, or holds one that is not a positive
    number (a record from before these were measured)."""
    peaks = environment.get("peak_gflops")
    peak = peaks.get(dtype) if isinstance(peaks, Mapping) else None
    gflops = peak.get("gflops") if isinstance(peak, Mapping) else None
    try:
        return Roofline(gflops, environment.get("memory_bandwidth_gbs"))  # type: ignore[arg-type]
    except ValueError:
        return None
