"""Error metrics against the float64 reference, and dtype-aware tolerances.

Tolerance (``ok``): ``max_abs <= tolerance(precision, terms) * scale`` where

    tolerance = 8 * u * sqrt(terms)

and ``scale`` is ``max|reference|`` unless the caller passes the sharper
``convbench.reference.error_scale(image, kernel, spec)`` = max over outputs of ``sum |x * k|``
(a result that cancels to near zero still carries the rounding errors of its terms). With the
default scale this is ``max_rel <= tolerance``.

with ``u`` the unit roundoff of the precision the arithmetic actually ran in and ``terms`` the
number of products summed per output (kh * kw). Why this shape: each output is an inner product
of ``terms`` products, each rounded once, and the sum rounded ``terms - 1`` times. The worst-case
bound grows like ``terms * u`` but is never reached with rounding errors of random sign; the
probabilistic bound (Higham and Mary, SIAM J. Sci. Comput. 2019) grows like ``sqrt(terms) * u``
relative to ``sum |x * k|``, which for large seeded normal inputs is within a few times
``max|ref|``, but can be far larger on tiny or cancelling inputs.
The factor 8 covers the maximum over millions of outputs and the reordering that blocked and
vectorised kernels do. Without ``terms`` we assume 256 (kernels up to 16x16).

``precision`` defaults to the actual's dtype; pass ``"tf32"`` for float32 work done on tensor
cores with TF32 (10-bit mantissa), which is a different precision, not a float32 error.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# Unit roundoff (half the machine epsilon) of each arithmetic.
UNIT_ROUNDOFF = {
    "float64": 2.0**-53,
    "float32": 2.0**-24,
    "tf32": 2.0**-11,
    "float16": 2.0**-11,
    "bfloat16": 2.0**-8,
}
DEFAULT_TERMS = 256


def tolerance(precision: str, terms: int | None = None) -> float:
    """The largest ``max_rel`` accepted for ``terms``-term inner products in ``precision``."""
    if precision not in UNIT_ROUNDOFF:
        raise ValueError(f"precision {precision!r} is not one of {list(UNIT_ROUNDOFF)}")
    n = DEFAULT_TERMS if terms is None else terms
    if n < 1:
        raise ValueError(f"terms={n!r} must be a positive number of products per output")
    return 8.0 * UNIT_ROUNDOFF[precision] * math.sqrt(n)


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
    rounded = reference.astype(actual.dtype)
    a, b = _ordered_ints(actual), _ordered_ints(rounded)
    # In uint64 the difference hi - lo is exact (it lies in [0, 2**64)); int64 could overflow.
    hi, lo = np.maximum(a, b).astype(np.uint64), np.minimum(a, b).astype(np.uint64)
    return (hi - lo).astype(np.float64)


def _ratio(error: float, size: float) -> float:
    """error / size, where any error against a size of zero is infinitely relative."""
    if size > 0:
        return error / size
    return 0.0 if error == 0 else math.inf


def agreement(
    actual: np.ndarray,
    reference: np.ndarray,
    *,
    terms: int | None = None,
    precision: str | None = None,
    scale: float | None = None,
) -> Agreement:
    """Compare ``actual`` with the float64 ``reference`` of the same shape.

    ``terms``: products per output (kh * kw); ``precision``: the arithmetic that ran (default the
    actual's dtype; 'tf32' for TF32 work); ``scale``: the magnitude errors are judged against
    (default max|reference|; pass ``error_scale(image, kernel, spec)`` for inputs that cancel).
    """
    actual = np.asarray(actual)
    reference = np.asarray(reference)
    if actual.shape != reference.shape:
        raise ValueError(
            f"actual shape {actual.shape} differs from reference shape {reference.shape}; "
            "convbench.explain() can tell why"
        )
    precision = precision or actual.dtype.name
    tol = tolerance(precision, terms)
    a = actual.astype(np.float64)
    r = reference.astype(np.float64)
    finite = np.isfinite(a) & np.isfinite(r)
    # Non-finite values agree when both sides hold the same one (NaN with NaN, +inf with +inf).
    same_nonfinite = (np.isnan(a) & np.isnan(r)) | (np.isinf(a) & (a == r))
    mismatched = int(np.count_nonzero(~finite & ~same_nonfinite))
    max_abs = max_rel = rel_l2 = max_ulp = 0.0
    largest = 0.0
    if finite.any():
        diff = np.abs(a[finite] - r[finite])
        largest = float(np.max(np.abs(r[finite])))
        max_abs = float(diff.max())
        max_rel = _ratio(max_abs, largest)
        rel_l2 = _ratio(float(np.linalg.norm(diff)), float(np.linalg.norm(r[finite])))
        max_ulp = float(ulp_distance(actual[finite], reference[finite]).max())
    judged = _ratio(max_abs, max(largest, scale or 0.0))
    return Agreement(
        max_abs=max_abs,
        max_rel=max_rel,
        rel_l2=rel_l2,
        max_ulp=max_ulp,
        tolerance=tol,
        precision=precision,
        nonfinite_mismatch=mismatched,
        ok=mismatched == 0 and judged <= tol,
    )
