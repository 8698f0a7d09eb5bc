"""Error metrics against the float64 reference, and dtype-aware tolerances.

Tolerance (``ok``): ``max_abs <= tolerance(precision, terms) * scale`` where

    tolerance = min(8 * u * sqrt(terms), CEILING)

and ``scale`` is ``max|reference|`` unless the caller passes the sharper
``convbench.reference.error_scale(image, kernel, spec)`` = max over outputs of ``sum |x * k|``
(a result that cancels to near zero still carries the rounding errors of its terms). With the
default scale this is ``max_rel <= tolerance``.

with ``u`` the unit roundoff of the precision the arithmetic actually ran in and ``terms`` the
number of products summed per output (kh * kw; C_in / groups * kh * kw for a layer). Why this
shape: each output is an inner product of ``terms`` products, each rounded once, and the sum
rounded ``terms - 1`` times. The worst-case
bound grows like ``terms * u`` but is never reached with rounding errors of random sign; the
probabilistic bound (Higham and Mary, SIAM J. Sci. Comput. 2019) grows like ``sqrt(terms) * u``
relative to ``sum |x * k|``, which for large seeded normal inputs is within a few times
``max|ref|``, but can be far larger on tiny or cancelling inputs.
The factor 8 covers the maximum over millions of outputs and the reordering that blocked and
vectorised kernels do. Without ``terms`` we assume 256 (kernels up to 16x16).

Two limits that no precision, term count or scale lifts:

- ``CEILING = 2**-4``: the tolerance never exceeds 1/16, four correct leading bits. Unbounded,
  the rule above reaches 1.0 for bfloat16 with a 32x32 kernel, where an all-zero answer would
  pass. The ceiling only binds where no honest arithmetic comes near it: it is 16 times the
  bfloat16 unit roundoff, and bfloat16, float16 and TF32 work that accumulates in float32 (what
  the CPU libraries and tensor cores do) is off by about one unit roundoff of its storage
  precision whatever the kernel size. Accumulation in bfloat16 itself drifts as terms are
  added and is refused from kernels of several hundred taps on, where its digits stop being
  believable (figures in docs/numerics.md).
- ``max_rel < 1``: an answer at least as far from the reference as the all-zero answer (whose
  ``max_rel`` is exactly 1) is never in agreement, whatever ``scale`` the caller passes.

``precision`` defaults to the actual's dtype; pass ``"tf32"`` for float32 work done on tensor
cores with TF32 (10-bit mantissa), which is a different precision, not a float32 error.

Memory: both arrays are compared in blocks of rows (``BLOCK_ELEMENTS`` values at a time), so the
comparison needs a few megabytes beyond its inputs whatever their size.

FFT methods (``Backend.arithmetic`` says 'fft': scipy's fftconvolve and oaconvolve, OpenCV's
filter2D from 50 or 130 kernel taps on) round differently. No output is a sum of its own terms:
every output of the inverse transform mixes the whole transformed image, so an output's error
follows the magnitude of the whole image and kernel and the transform's length ``n`` (points per
plane), not its own ``terms``. The standard bound for a computed FFT (Higham, *Accuracy and
Stability of Numerical Algorithms*, 2nd ed., SIAM 2002, Theorem 24.2) is normwise,
``||fl(Fx) - Fx||_2 <= c * u * log2(n) * ||Fx||_2``; carried through the two forward transforms,
the product and the inverse transform of a convolution it gives
``||fl(x*k) - x*k||_2 <= c * u * log2(n) * ||x||_2 * ||k||_1``. With rounding errors of random
sign the mean-square error of a transform grows like ``log2(n) * u**2`` instead (Weinstein, IEEE
Trans. Audio Electroacoust. 17(3), 1969; Kaneko and Liu, J. ACM 17(4), 1970), spread evenly over
the outputs: about ``u * sqrt(log2 n) * rms(x) * ||k||_2`` each. convbench accepts, for 'fft'
arithmetic,

    max_abs <= fft_tolerance(precision, n) * scale,   fft_tolerance = min(8 * u * log2(n), CEILING)

with ``scale`` the larger of ``max|reference|`` and ``fft_error_scale(image, kernel, spec)`` =
``max|x| * ||k||_2``, ``x`` the image as padded for the spec (``max|x|`` bounds the rms of any
block an overlap-add method transforms). ``log2(n)`` where ``sqrt(log2 n)`` is expected, and the
factor 8, cover the largest of all outputs. ``tolerance_for(backend, dtype, image_shape,
kernel_shape)`` gives the tolerance a backend's case is held to (for records and reports), and
``agreement_for(backend, actual, reference, image, kernel, spec)`` judges a result with it and
its scale; for a 'direct' backend they are exactly ``tolerance(precision, terms)`` (``terms``
of ``convbench.spec.terms_per_output``: kh * kw, or C_in / groups * kh * kw for a layer) and
``agreement(..., scale=error_scale(image, kernel, spec))``.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from convbench.reference import error_scale
from convbench.spec import ConvSpec, check_inputs, terms_per_output

if TYPE_CHECKING:
    from convbench.backends.base import Backend

# Unit roundoff (half the machine epsilon) of each arithmetic.
UNIT_ROUNDOFF = {
    "float64": 2.0**-53,
    "float32": 2.0**-24,
    "tf32": 2.0**-11,
    "float16": 2.0**-11,
    "bfloat16": 2.0**-8,
}
DEFAULT_TERMS = 256
# How a backend computes a case (Backend.arithmetic), which decides its tolerance.
ARITHMETICS = ("direct", "fft")
CEILING = 2.0**-4
# Values compared per block: 1 MiB per float64 temporary, about a dozen of them at a time.
BLOCK_ELEMENTS = 2**17


def _positive_real(name: str, value: object, least: float) -> float:
    """``value`` as a float, when it is a finite real number >= ``least``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}={value!r} must be a real number")
    if not (math.isfinite(value) and value >= least):
        raise ValueError(f"{name}={value!r} must be finite and at least {least:g}")
    return float(value)


def tolerance(precision: str, terms: float | None = None) -> float:
    """The largest ``max_rel`` accepted for ``terms``-term inner products in ``precision``."""
    if precision not in UNIT_ROUNDOFF:
        raise ValueError(f"precision {precision!r} is not one of {list(UNIT_ROUNDOFF)}")
    n = DEFAULT_TERMS if terms is None else _positive_real("terms", terms, 1)
    return min(8.0 * UNIT_ROUNDOFF[precision] * math.sqrt(n), CEILING)


@dataclass(frozen=True)
class Agreement:
    """How far a result is from the reference. Errors are over positions finite in both."""

    max_abs: float
    max_rel: float
    rel_l2: float
    max_ulp: float
    tolerance: float
    precision: str
    nonfinite_mismatch: int
    ok: bool

    def __str__(self) -> str:
        verdict = "ok" if self.ok else "MISMATCH"
        extra = (
            f", {self.nonfinite_mismatch} non-finite mismatches" if self.nonfinite_mismatch else ""
        )
        return (
            f"{verdict}: max_rel={self.max_rel:.3g} (tol {self.tolerance:.3g}, {self.precision}), "
            f"max_abs={self.max_abs:.3g}, rel_l2={self.rel_l2:.3g}, max_ulp={self.max_ulp:.3g}"
            f"{extra}"
        )


def _ordered_ints(values: np.ndarray) -> np.ndarray:
    """Map floats to integers whose difference counts representable values between them."""
    bits = values.dtype.itemsize * 8
    raw = values.view(f"int{bits}").astype(np.int64)
    magnitude = np.int64((1 << (bits - 1)) - 1)
    # Negative floats count downwards from zero; this makes the mapping monotone.
    return np.where(raw < 0, -(raw & magnitude), raw)


def ulp_distance(actual: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Representable values of ``actual.dtype`` between ``actual`` and the rounded reference."""
    # Native byte order first: the integer view below reads the bytes as they lie in memory.
    native = actual.dtype.newbyteorder("=")
    rounded = reference.astype(native)
    a, b = _ordered_ints(actual.astype(native, copy=False)), _ordered_ints(rounded)
    # In uint64 the difference hi - lo is exact (it lies in [0, 2**64)); int64 could overflow.
    hi, lo = np.maximum(a, b).astype(np.uint64), np.minimum(a, b).astype(np.uint64)
    return (hi - lo).astype(np.float64)


def _ratio(error: float, size: float) -> float:
    """error / size, where any error against a size of zero is infinitely relative."""
    if size > 0:
        return error / size
    return 0.0 if error == 0 else math.inf


@dataclass
class _Norm:
    """A 2-norm accumulated block by block as ``top * sqrt(ssq)`` (LAPACK's dnrm2 scaling), so
    that squares of large values cannot overflow."""

    top: float = 0.0
    ssq: float = 0.0

    def add(self, values: np.ndarray) -> None:
        largest = float(np.max(values, initial=0.0))
        if largest == 0:
            return
        if largest > self.top:
            self.ssq *= (self.top / largest) ** 2
            self.top = largest
        self.ssq += float(np.sum(np.square(values / self.top)))

    @property
    def value(self) -> float:
        return self.top * math.sqrt(self.ssq)


def _row_blocks(shape: tuple[int, ...]) -> Iterator[tuple]:
    """Index tuples that cover an array of ``shape`` (2-D or more) in blocks of whole rows."""
    *lead, rows, cols = shape
    step = max(1, BLOCK_ELEMENTS // max(cols, 1))
    for index in np.ndindex(*lead):
        for start in range(0, rows, step):
            yield (*index, slice(start, start + step))


def agreement(
    actual: np.ndarray,
    reference: np.ndarray,
    *,
    terms: float | None = None,
    precision: str | None = None,
    scale: float | None = None,
    tol: float | None = None,
) -> Agreement:
    """Compare ``actual`` with the float64 ``reference`` of the same shape.

    ``terms``: products per output (``convbench.spec.terms_per_output``); ``precision``: the
    arithmetic that ran (default the actual's dtype; 'tf32' for TF32 work); ``scale``: the
    magnitude errors are judged against (default max|reference|; pass ``error_scale(image,
    kernel, spec)`` for inputs that cancel; 0, the scale of all-zero inputs, is the default's).
    A ``scale`` or ``terms`` that is not a finite non-negative number (``terms`` at least 1) is
    a ValueError.
    ``tol``: the largest ``max_abs / scale`` accepted, when not ``tolerance(precision, terms)``
    (``tolerance_for`` gives it for any backend's arithmetic); it too stops at ``CEILING``.
    """
    actual = np.asarray(actual)
    reference = np.asarray(reference)
    if actual.shape != reference.shape:
        raise ValueError(
            f"actual shape {actual.shape} differs from reference shape {reference.shape}; "
            "convbench.explain() can tell why"
        )
    precision = precision or actual.dtype.name
    tol = (
        tolerance(precision, terms) if tol is None else min(_positive_real("tol", tol, 0), CEILING)
    )
    judged_scale = 0.0 if scale is None else _positive_real("scale", scale, 0)
    if actual.ndim < 2:
        # One row: reshaping a 0-D or 1-D array to 2-D is always a view.
        actual, reference = actual.reshape(1, -1), reference.reshape(1, -1)
    mismatched = 0
    max_abs = largest = max_ulp = 0.0
    diff_norm, ref_norm = _Norm(), _Norm()
    for block in _row_blocks(actual.shape):
        a_block, r_block = actual[block], reference[block]
        a = a_block.astype(np.float64)
        r = r_block.astype(np.float64)
        finite = np.isfinite(a) & np.isfinite(r)
        # Non-finite values agree when both sides hold the same one (NaN with NaN, +inf with +inf).
        same_nonfinite = (np.isnan(a) & np.isnan(r)) | (np.isinf(a) & (a == r))
        mismatched += int(np.count_nonzero(~finite & ~same_nonfinite))
        if not finite.any():
            continue
        r_finite = np.abs(r[finite])
        diff = np.abs(a[finite] - r[finite])
        largest = max(largest, float(r_finite.max()))
        max_abs = max(max_abs, float(diff.max()))
        diff_norm.add(diff)
        ref_norm.add(r_finite)
        max_ulp = max(max_ulp, float(ulp_distance(a_block[finite], r_block[finite]).max()))
    max_rel = _ratio(max_abs, largest)
    judged = _ratio(max_abs, max(largest, judged_scale))
    return Agreement(
        max_abs=max_abs,
        max_rel=max_rel,
        rel_l2=_ratio(diff_norm.value, ref_norm.value),
        max_ulp=max_ulp,
        tolerance=tol,
        precision=precision,
        nonfinite_mismatch=mismatched,
        ok=mismatched == 0 and judged <= tol and max_rel < 1,
    )


def fft_tolerance(precision: str, points: int) -> float:
    """The largest ``max_abs / scale`` accepted for an FFT convolution whose transforms have
    ``points`` points per plane, in ``precision`` (see the module docstring)."""
    if precision not in UNIT_ROUNDOFF:
        raise ValueError(f"precision {precision!r} is not one of {list(UNIT_ROUNDOFF)}")
    n = _positive_real("points", points, 1)
    return min(8.0 * UNIT_ROUNDOFF[precision] * math.log2(max(n, 2.0)), CEILING)


def fft_points(image_shape: tuple[int, ...], kernel_shape: tuple[int, ...]) -> int:
    """Points per plane of the largest transform any spec needs: the image padded by K-1 on both
    sides ('full') and linearly convolved with the kernel. A method that rounds up to a fast
    length or transforms in blocks uses a few percent more, or fewer; only ``log2`` of it counts.
    """
    h, w = image_shape[-2:]
    kh, kw = kernel_shape[-2:]
    return (h + 3 * (kh - 1)) * (w + 3 * (kw - 1))


def fft_error_scale(image: np.ndarray, kernel: np.ndarray, spec: ConvSpec | None = None) -> float:
    """``max|x| * ||k||_2`` with ``x`` the image padded for ``spec``: what an FFT convolution's
    rounding errors scale with (see the module docstring); non-finite values are ignored."""
    spec = ConvSpec() if spec is None else spec
    image, kernel = check_inputs(image, kernel, spec, copy=False)
    padded = spec.pad(image.astype(np.float64), kernel.shape)
    weights = kernel.astype(np.float64)
    x, k = padded[np.isfinite(padded)], weights[np.isfinite(weights)]
    if not x.size or not k.size:
        return 0.0
    return float(np.max(np.abs(x)) * np.linalg.norm(k))


def tolerance_for(
    backend: Backend, dtype: str, image_shape: tuple[int, ...], kernel_shape: tuple[int, ...]
) -> float:
    """The largest ``max_rel`` ``backend`` is held to for this case, from its declared
    arithmetic (``Backend.arithmetic``): for 'direct', ``tolerance`` of its precision and the
    kernel's ``terms_per_output`` (kh * kw, or C_in / groups * kh * kw for a layer); for 'fft',
    ``fft_tolerance`` of its precision and ``fft_points``."""
    precision = backend.precision(dtype)
    method = backend.arithmetic(dtype, image_shape, kernel_shape)
    if method not in ARITHMETICS:
        raise ValueError(
            f"{backend.name}.arithmetic() gave {method!r}; it must be one of {list(ARITHMETICS)}"
        )
    if method == "fft":
        return fft_tolerance(precision, fft_points(image_shape, kernel_shape))
    return tolerance(precision, terms_per_output(kernel_shape))


def agreement_for(
    backend: Backend,
    actual: np.ndarray,
    reference: np.ndarray,
    image: np.ndarray,
    kernel: np.ndarray,
    spec: ConvSpec | None = None,
) -> Agreement:
    """``agreement`` of ``backend``'s result for this case, judged by ``tolerance_for`` against
    the scale its arithmetic's errors follow (``error_scale``, or ``fft_error_scale``)."""
    image, kernel = np.asarray(image), np.asarray(kernel)
    dtype = image.dtype.name
    fft = backend.arithmetic(dtype, image.shape, kernel.shape) == "fft"
    scale = (fft_error_scale if fft else error_scale)(image, kernel, spec)
    return agreement(
        actual,
        reference,
        precision=backend.precision(dtype),
        scale=scale,
        tol=tolerance_for(backend, dtype, image.shape, kernel.shape),
    )
