"""Where a result sits among everything one image and kernel can give.

For each of the 8 orientations of the kernel (rotations, transpose, antitranspose, flips) and
each boundary, the float64 'full' cross-correlation contains every 'same' and 'valid' result as a
sub-array; a result is placed by the orientation, boundary and position (top, left) whose window
matches it (a ``Fit``). The relation between two results is the composition of where each one
sits, and what is left after it is their precision (a ``Residual``).

Cost: every position is first screened on two middle rows of a result, cut to the columns whose
windows stay inside the image (one screen serves every boundary); each surviving position is then
screened per boundary on two middle rows and two middle columns (which see the left/right and
top/bottom borders), and only what survives is compared in full (asv: benchmarks/explain.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from convbench.agreement import tolerance
from convbench.spec import BOUNDARIES, ConvSpec

# Kernel orientations relative to the kernel given, simplest explanation first: equivalent
# candidates (a symmetric kernel, a boundary a 'valid' result never sees) go to the earlier one.
ORIENTATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "identity": lambda k: k,
    "rot180": lambda k: np.rot90(k, 2),
    "transpose": lambda k: k.T,
    "antitranspose": lambda k: np.rot90(k, 2).T,
    "flipud": np.flipud,
    "fliplr": np.fliplr,
    "rot90": lambda k: np.rot90(k, 1),
    "rot270": lambda k: np.rot90(k, 3),
}
TRANSFORMS = tuple(name for name in ORIENTATIONS if name != "identity")
_RANK = {name: rank for rank, name in enumerate(ORIENTATIONS)}
# Preferred mode name when a size fits several (a 1-wide kernel): the usual one first.
MODE_ORDER = ("same", "full", "valid")
# A residual that is a common factor this far from 1 is a rescaled result, not lost precision:
# twice the largest bias that truncating both operands to bfloat16 could give.
_SCALE_LIMIT = 2.0**-6
_LABELS = np.arange(6).reshape(2, 3)
_MOST_POSITIONS, _MOST_VERIFIED = 4, 8


def rank(orientation: str) -> int:
    """The orientation's place in ORIENTATIONS: lower is the simpler explanation."""
    return _RANK[orientation]


def _orientation_of(labels: np.ndarray) -> str:
    for name, orient in ORIENTATIONS.items():
        candidate = orient(_LABELS)
        if candidate.shape == labels.shape and np.array_equal(candidate, labels):
            return name
    raise AssertionError("the dihedral group is closed")


def compose(first: str, then: str) -> str:
    """The orientation that applies ``first``, then ``then``."""
    return _orientation_of(ORIENTATIONS[then](ORIENTATIONS[first](_LABELS)))


def relative(base: str, other: str) -> str:
    """The orientation ``t`` with ``t(base(k)) == other(k)`` for every kernel ``k``."""
    return next(name for name in ORIENTATIONS if compose(base, name) == other)


def output_shapes(
    image_shape: tuple[int, ...], kshape: tuple[int, int]
) -> dict[str, tuple[int, ...]]:
    """The result shape of each mode, in MODE_ORDER."""
    return {mode: ConvSpec(mode=mode).output_shape(image_shape, kshape) for mode in MODE_ORDER}


def mode_of(
    shape: tuple[int, ...], image_shape: tuple[int, ...], kshape: tuple[int, int]
) -> str | None:
    """The first mode in MODE_ORDER whose results have ``shape``; None when none has."""
    shapes = output_shapes(image_shape, kshape).items()
    return next((mode for mode, size in shapes if size == tuple(shape)), None)


def abs_error(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """|x - y|; 0 where both hold the same value (NaN and NaN too), inf for NaN vs a number."""
    with np.errstate(invalid="ignore"):
        diff = np.abs(x - y)
        unordered = np.isnan(diff)
        if not unordered.any():
            return diff
        same = (x == y) | (np.isnan(x) & np.isnan(y))
    return np.where(same, 0.0, np.where(unordered, np.inf, diff))


def _window_errors(band: np.ndarray, part: np.ndarray) -> np.ndarray:
    """Max abs error between ``part`` and each window of its shape in ``band``, by position."""
    return abs_error(sliding_window_view(band, part.shape), part).max(axis=(2, 3))


def max_abs(x: np.ndarray) -> float:
    finite = np.abs(x[np.isfinite(x)])
    return float(finite.max()) if finite.size and finite.max() > 0 else 1.0


def rel_error(x: np.ndarray, reference: np.ndarray) -> float:
    """``max|x - reference| / max|reference|`` (see abs_error for NaN)."""
    return float(abs_error(x, reference).max()) / max_abs(reference)


def _key(kernel: np.ndarray) -> bytes:
    return repr(kernel.shape).encode() + kernel.tobytes()


@dataclass(frozen=True)
class Fit:
    """Where a result sits: ``full[top:top + h, left:left + w]`` of the float64 cross-correlation
    of the image with ``orientation(kernel)`` under ``boundary``."""

    orientation: str
    boundary: str
    top: int
    left: int
    kshape: tuple[int, int]
    mode: str | None
    sees_border: bool
    error: float
    reference: np.ndarray = field(repr=False, compare=False)

    @property
    def anchor(self) -> tuple[int, int]:
        """Image pixel under the kernel's framework centre ((K-1)//2) for output (0, 0)."""
        return self.top - self.kshape[0] // 2, self.left - self.kshape[1] // 2


@dataclass(frozen=True)
class Located:
    """What the search found for one result: every fit that reproduces it (simplest first), and
    the closest candidate, fit or not (None when its shape is no mode's)."""

    fits: list[Fit]
    closest: Fit | None


class Search:
    """The candidates for one image and kernel, with padded images cached per kernel shape."""

    def __init__(self, image: np.ndarray, kernel: np.ndarray) -> None:
        self.image = image
        self.terms = kernel.size
        self.cap = tolerance("bfloat16", self.terms)
        self.floor = tolerance("float64", self.terms)
        self.kernels = {name: np.ascontiguousarray(f(kernel)) for name, f in ORIENTATIONS.items()}
        # Orientations that give the same kernel (a symmetric one) are searched once.
        self.groups: dict[bytes, list[str]] = {}
        for name, k in self.kernels.items():
            self.groups.setdefault(_key(k), []).append(name)
        self._padded: dict[tuple[tuple[int, int], str], np.ndarray] = {}
        self._windows: dict[tuple, np.ndarray] = {}

    def window(self, name: str, boundary: str, top: int, left: int, h: int, w: int) -> np.ndarray:
        """``full[top:top + h, left:left + w]``, accumulated exactly as convbench.reference does."""
        k = self.kernels[name]
        key = (k.shape, boundary)
        if key not in self._padded:
            full = ConvSpec(mode="full", boundary=boundary)
            self._padded[key] = full.pad(self.image, k.shape)
        padded = self._padded[key]
        out = np.zeros((h, w))
        for u in range(k.shape[0]):
            for v in range(k.shape[1]):
                out += k[u, v] * padded[top + u : top + u + h, left + v : left + v + w]
        return out

    def _screen_inside(self, result: np.ndarray, name: str, pmax: int, qmax: int):
        """Max abs error at every position (top <= pmax, left <= qmax) on two middle rows, cut
        to the columns no position's window takes past the image: one screen for all
        boundaries. None when the image is too small to have such a part."""
        h, _ = result.shape
        (a, b), (big_h, big_w) = self.kernels[name].shape, self.image.shape
        n = min(h, 2)
        i0, j0, j1 = (h - n) // 2, b - 1, big_w - qmax
        if i0 < a - 1 or i0 + n + pmax > big_h or j1 <= j0:
            return None
        band = self.window(name, "fill", i0, j0, n + pmax, j1 - j0 + qmax)
        return _window_errors(band, result[i0 : i0 + n, j0:j1])

    def _screen(self, result: np.ndarray, name: str, boundary: str, top: int, left: int, spread):
        """Max abs error at positions (top + p, left + q), (p, q) < spread, on two middle rows
        (which see the left and right borders) and two middle columns (top and bottom)."""
        h, w = result.shape
        n, m = min(h, 2), min(w, 2)
        i0, j0 = (h - n) // 2, (w - m) // 2
        rows = self.window(name, boundary, top + i0, left, n + spread[0] - 1, w + spread[1] - 1)
        cols = self.window(name, boundary, top, left + j0, h + spread[0] - 1, m + spread[1] - 1)
        by_rows = _window_errors(rows, result[i0 : i0 + n])
        return np.maximum(by_rows, _window_errors(cols, result[:, j0 : j0 + m]))

    def _candidates(self, result: np.ndarray, name: str, scale: float):
        """(error, name, boundary, top, left) for the positions worth a closer look."""
        (a, b), (big_h, big_w) = self.kernels[name].shape, self.image.shape
        pmax, qmax = big_h + a - 1 - result.shape[0], big_w + b - 1 - result.shape[1]
        inside = self._screen_inside(result, name, pmax, qmax)
        if inside is None:
            return [
                (float(error), name, boundary, top, left)
                for boundary in BOUNDARIES
                for (top, left), error in np.ndenumerate(
                    self._screen(result, name, boundary, 0, 0, (pmax + 1, qmax + 1)) / scale
                )
            ]
        inside = inside / scale
        # Ties happen only on degenerate images (constant, zeros); there the standard positions,
        # which sit in the middle of the range, come first.
        hopeful = sorted(
            zip(*np.nonzero(inside <= self.cap), strict=True),
            key=lambda pos: (inside[pos], abs(2 * pos[0] - pmax) + abs(2 * pos[1] - qmax)),
        )[:_MOST_POSITIONS]
        if not hopeful:
            # Kept only as the closest candidate an unexplained message can name.
            top, left = np.unravel_index(np.argmin(inside), inside.shape)
            return [(float(inside[top, left]), name, "fill", int(top), int(left))]
        return [
            (
                float(self._screen(result, name, boundary, top, left, (1, 1))[0, 0]) / scale,
                name,
                boundary,
                int(top),
                int(left),
            )
            for boundary in BOUNDARIES
            for top, left in hopeful
        ]

    def _interior(self, kshape: tuple[int, int], top: int, left: int, h: int, w: int) -> bool:
        """Whether no output of the window reaches past the image: the boundary cannot matter."""
        (a, b), (big_h, big_w) = kshape, self.image.shape
        return a - 1 <= top and top + h <= big_h and b - 1 <= left and left + w <= big_w

    def locate(self, result: np.ndarray) -> Located:
        """Every candidate that reproduces the float64 ``result``, and the closest one."""
        scale = max_abs(result)
        screened = [
            candidate
            for names in self.groups.values()
            if mode_of(result.shape, self.image.shape, self.kernels[names[0]].shape)
            for candidate in self._candidates(result, names[0], scale)
        ]
        if not screened:
            return Located([], None)
        closest = min(screened, key=lambda item: item[0])
        limit = min(self.cap, max(4 * closest[0], self.floor))
        hopeful = sorted(
            (item for item in screened if item[0] <= limit),
            key=lambda item: (item[0], rank(item[1]), BOUNDARIES.index(item[2])),
        )
        # Only a degenerate image ties more candidates than this; comparing them all in full
        # would cost seconds and could not tell them apart anyway.
        verified = [self._verify(result, *item[1:]) for item in hopeful[:_MOST_VERIFIED]]
        if not verified:
            return Located([], self._verify(result, *closest[1:]))
        limit = min(self.cap, max(4 * min(fit.error for fit in verified), self.floor))
        fits = [
            replace(fit, orientation=name)
            for fit in verified
            if fit.error <= limit
            for name in self.groups[_key(self.kernels[fit.orientation])]
        ]
        fits.sort(key=lambda f: (rank(f.orientation), BOUNDARIES.index(f.boundary)))
        return Located(fits, min(verified, key=lambda fit: fit.error))

    def _verify(self, result: np.ndarray, name: str, boundary: str, top: int, left: int) -> Fit:
        """The candidate compared with the whole result."""
        h, w = result.shape
        kshape = self.kernels[name].shape
        # A window that never reaches the border is the same under every boundary: compute it
        # once, as 'fill', so that equivalent candidates cost nothing and compare equal.
        sees_border = not self._interior(kshape, top, left, h, w)
        effective = boundary if sees_border else "fill"
        key = (name, effective, top, left, h, w)
        if key not in self._windows:
            self._windows[key] = self.window(name, effective, top, left, h, w)
        reference = self._windows[key]
        mode = mode_of(result.shape, self.image.shape, kshape)
        error = rel_error(result, reference)
        return Fit(name, boundary, top, left, kshape, mode, sees_border, error, reference)


def _scale(x: np.ndarray, reference: np.ndarray) -> float:
    """The least-squares factor ``s`` minimising ``|x - s * reference|``."""
    finite = np.isfinite(x) & np.isfinite(reference)
    norm = float(np.dot(reference[finite], reference[finite]))
    return float(np.dot(x[finite], reference[finite])) / norm if norm else 1.0


def scaled(x: np.ndarray, fit: Fit) -> float | None:
    """The factor when the float64 ``x`` is its fit rescaled rather than rounded, else None:
    lower precision rounds, it does not rescale."""
    s = _scale(x, fit.reference)
    if abs(s - 1) > _SCALE_LIMIT and rel_error(x, s * fit.reference) < fit.error / 2:
        return s
    return None


@dataclass(frozen=True)
class Relation:
    """How expected's fit differs from actual's; None (or no offset) where they agree."""

    transform: str | None
    offset: tuple[int, int]
    boundary: tuple[str, str] | None
    mode: tuple[str, str] | None

    @classmethod
    def between(cls, fa: Fit, fe: Fit) -> Relation:
        transform = relative(fa.orientation, fe.orientation)
        return cls(
            transform=None if transform == "identity" else transform,
            offset=(fa.anchor[0] - fe.anchor[0], fa.anchor[1] - fe.anchor[1]),
            boundary=None if fa.boundary == fe.boundary else (fa.boundary, fe.boundary),
            mode=None if fa.mode == fe.mode else (fa.mode, fe.mode),
        )

    def cost(self) -> tuple[int, int]:
        """Fewer differences first, then the simpler orientation."""
        differences = (self.transform, self.boundary, self.mode, any(self.offset) or None)
        return sum(d is not None for d in differences), rank(self.transform or "identity")


def related(
    located: dict[str, Located], wide: dict[str, np.ndarray]
) -> tuple[dict[str, Fit], Relation] | None:
    """The fits of 'actual' and 'expected' related by the fewest differences, and how; None when
    a side has no fit or is its fit rescaled. ``wide``: the two results in float64."""
    fits_a, fits_e = located["actual"].fits, located["expected"].fits
    if not (fits_a and fits_e):
        return None
    fa, fe = min(
        ((fa, fe) for fa in fits_a for fe in fits_e),
        key=lambda pair: Relation.between(*pair).cost(),
    )
    fits = {"actual": fa, "expected": fe}
    if any(scaled(wide[side], fit) is not None for side, fit in fits.items()):
        return None
    return fits, Relation.between(fa, fe)


def rounding_level(arrays: dict[str, np.ndarray]) -> str:
    """The accumulation rounding the results may show: float64 when both are, else float32."""
    return "float64" if all(x.dtype == np.float64 for x in arrays.values()) else "float32"


@dataclass(frozen=True)
class Residual:
    """What the structure leaves: the larger relative error of the two fits, classified as
    ``exact``, ``rounding`` (within ``level`` accumulation rounding) or ``reduced``."""

    precision: str
    error: float
    level: str


def residual(
    arrays: dict[str, np.ndarray], fits: dict[str, Fit], terms: int, image_shape: tuple[int, int]
) -> Residual:
    """Classify what remains of ``arrays`` (as given, any dtype) after their ``fits``."""
    error = max(fit.error for fit in fits.values())
    level = rounding_level(arrays)
    fa, fe = fits["actual"], fits["expected"]
    rounded = all(
        np.array_equal(x, fits[side].reference.astype(x.dtype), equal_nan=True)
        for side, x in arrays.items()
    )
    if rounded or (fa.orientation == fe.orientation and _same_inside(arrays, fits, image_shape)):
        return Residual("exact", error, level)
    return Residual("rounding" if error <= tolerance(level, terms) else "reduced", error, level)


def _same_inside(
    arrays: dict[str, np.ndarray], fits: dict[str, Fit], image_shape: tuple[int, int]
) -> bool:
    """Whether, with the same kernel, both hold identical values where neither sees a border."""
    fa, fe = fits["actual"], fits["expected"]
    x, y = arrays["actual"], arrays["expected"]
    (a, b), (big_h, big_w) = fa.kshape, image_shape
    top, left = max(a - 1, fa.top, fe.top), max(b - 1, fa.left, fe.left)
    bottom = min(big_h, fa.top + x.shape[0], fe.top + y.shape[0])
    right = min(big_w, fa.left + x.shape[1], fe.left + y.shape[1])
    if top >= bottom or left >= right:
        return False
    inner_x = x[top - fa.top : bottom - fa.top, left - fa.left : right - fa.left]
    inner_y = y[top - fe.top : bottom - fe.top, left - fe.left : right - fe.left]
    return np.array_equal(inner_x, inner_y, equal_nan=True)
