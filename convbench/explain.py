"""Why two convolution results differ: ``explain(actual, expected, image, kernel)``.

The image and kernel are known, so every result they can give is *generated* and each array is
located among the candidates. For each of the 8 orientations of the kernel (rotations, transpose,
antitranspose, flips) and each boundary, the float64 'full' cross-correlation contains every
'same' and 'valid' result as a sub-array; a result is placed by the orientation, boundary and
position (top, left) whose window matches it. The relation between the two results is the
composition of where each one sits, and what is left after it is the precision.

Cost: every position is first screened on two middle rows of a result, cut to the columns whose
windows stay inside the image (one screen serves every boundary); each surviving position is then
screened per boundary on two middle rows and two middle columns (which see the left/right and
top/bottom borders), and only what survives is compared in full. 0.1-0.2 s for a 512x512 result
with a 3x3 to 7x7 kernel on a 2-core machine (asv: benchmarks/explain.py).

Precision. Each located result's error is ``max|result - reference| / max|reference|`` against
the float64 reference of its candidate; ``n = kh * kw`` products are summed per output and
``tolerance(p, n) = 8 * u_p * sqrt(n)`` is convbench.agreement's bound (``u_p`` its unit roundoff):

- ``exact``: nothing is left; each result equals its reference rounded to its dtype, or (same
  kernel orientation) the two hold bit-identical values wherever neither touches a border;
- ``rounding``: both errors within ``tolerance("float32", n)``, or ``tolerance("float64", n)``
  when both arrays are float64: the accumulation error of the arrays' own dtype;
- ``reduced``: within ``tolerance("bfloat16", n)``: TF32, float16 or bfloat16 arithmetic (the
  message names an array's own float16/bfloat16 dtype, else says TF32/float16 when within
  ``tolerance("tf32", n)`` and bfloat16 beyond);
- anything larger is not explained. Nor is a residual that is mostly a common factor (a scaled
  result: the least-squares scale ``s`` has ``|s - 1| > 2**-6`` and removing it halves the
  error): lower precision rounds, it does not rescale. ``precision`` is ``"unknown"`` when
  ``explained`` is False.
"""

from __future__ import annotations

import textwrap
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
KERNEL_CODE = {
    "identity": "kernel",
    "rot180": "np.rot90(kernel, 2)",
    "transpose": "kernel.T",
    "antitranspose": "np.rot90(kernel, 2).T",
    "flipud": "np.flipud(kernel)",
    "fliplr": "np.fliplr(kernel)",
    "rot90": "np.rot90(kernel)",
    "rot270": "np.rot90(kernel, 3)",
}
# Preferred mode name when a size fits several (a 1-wide kernel): the usual one first.
_MODE_ORDER = ("same", "full", "valid")
# A residual that is a common factor this far from 1 is a rescaled result, not lost precision:
# twice the largest bias that truncating both operands to bfloat16 could give.
_SCALE_LIMIT = 2.0**-6
_LABELS = np.arange(6).reshape(2, 3)
_LOW_DTYPES = ("float16", "bfloat16")
_MOST_POSITIONS, _MOST_VERIFIED = 4, 8


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


@dataclass(frozen=True)
class Explanation:
    """How ``expected`` relates to ``actual``; ``str()`` is the message. See the module doc."""

    explained: bool
    transform: str | None
    offset: tuple[int, int]
    boundary: tuple[str, str] | None
    mode: tuple[str, str] | None
    precision: str
    message: str

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class _Fit:
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


def _abs_error(x: np.ndarray, y: np.ndarray) -> np.ndarray:
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
    return _abs_error(sliding_window_view(band, part.shape), part).max(axis=(2, 3))


def _max_abs(x: np.ndarray) -> float:
    finite = np.abs(x[np.isfinite(x)])
    return float(finite.max()) if finite.size and finite.max() > 0 else 1.0


def _rel_error(x: np.ndarray, reference: np.ndarray) -> float:
    return float(_abs_error(x, reference).max()) / _max_abs(reference)


def _key(kernel: np.ndarray) -> bytes:
    return repr(kernel.shape).encode() + kernel.tobytes()


def _mode_of(shape: tuple[int, ...], image_shape: tuple[int, ...], kshape: tuple[int, int]):
    for mode in _MODE_ORDER:
        if ConvSpec(mode=mode).output_shape(image_shape, kshape) == tuple(shape):
            return mode
    return None


def _mode_sizes(image_shape: tuple[int, ...], kshape: tuple[int, int]) -> str:
    return ", ".join(
        f"{mode} {ConvSpec(mode=mode).output_shape(image_shape, kshape)}" for mode in _MODE_ORDER
    )


class _Search:
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

    def locate(self, result: np.ndarray) -> tuple[list[_Fit], _Fit | None]:
        """Every candidate that reproduces ``result`` (simplest first), and the closest one."""
        scale = _max_abs(result)
        screened = [
            candidate
            for names in self.groups.values()
            if _mode_of(result.shape, self.image.shape, self.kernels[names[0]].shape)
            for candidate in self._candidates(result, names[0], scale)
        ]
        if not screened:
            return [], None
        closest = min(screened, key=lambda item: item[0])
        limit = min(self.cap, max(4 * closest[0], self.floor))
        order = list(ORIENTATIONS)
        hopeful = sorted(
            (item for item in screened if item[0] <= limit),
            key=lambda item: (item[0], order.index(item[1]), BOUNDARIES.index(item[2])),
        )
        # Only a degenerate image ties more candidates than this; comparing them all in full
        # would cost seconds and could not tell them apart anyway.
        verified = [self._verify(result, *item[1:]) for item in hopeful[:_MOST_VERIFIED]]
        if not verified:
            return [], self._verify(result, *closest[1:])
        limit = min(self.cap, max(4 * min(fit.error for fit in verified), self.floor))
        fits = [
            replace(fit, orientation=name)
            for fit in verified
            if fit.error <= limit
            for name in self.groups[_key(self.kernels[fit.orientation])]
        ]
        fits.sort(key=lambda f: (order.index(f.orientation), BOUNDARIES.index(f.boundary)))
        return fits, min(verified, key=lambda fit: fit.error)

    def _verify(self, result: np.ndarray, name: str, boundary: str, top: int, left: int) -> _Fit:
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
        mode = _mode_of(result.shape, self.image.shape, kshape)
        error = _rel_error(result, reference)
        return _Fit(name, boundary, top, left, kshape, mode, sees_border, error, reference)


def _scale(x: np.ndarray, reference: np.ndarray) -> float:
    """The least-squares factor ``s`` minimising ``|x - s * reference|``."""
    finite = np.isfinite(x) & np.isfinite(reference)
    norm = float(np.dot(reference[finite], reference[finite]))
    return float(np.dot(x[finite], reference[finite])) / norm if norm else 1.0


def _scaled(x: np.ndarray, fit: _Fit) -> float | None:
    """The factor when ``x`` is its candidate rescaled rather than rounded, else None."""
    s = _scale(x, fit.reference)
    if abs(s - 1) > _SCALE_LIMIT and _rel_error(x, s * fit.reference) < fit.error / 2:
        return s
    return None


@dataclass(frozen=True)
class _Relation:
    transform: str | None
    offset: tuple[int, int]
    boundary: tuple[str, str] | None
    mode: tuple[str, str] | None

    @classmethod
    def between(cls, fa: _Fit, fe: _Fit) -> _Relation:
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
        rank = list(ORIENTATIONS).index(self.transform or "identity")
        return sum(d is not None for d in differences), rank


def _scipy_call(fit: _Fit, shape: tuple[int, int]) -> tuple[str, str]:
    """(op, code) of the scipy.signal call that gives the located result, simplest kernel first."""
    a, b = fit.kshape
    order = list(ORIENTATIONS)
    options = []
    for op in ("correlate", "convolve"):
        name = fit.orientation if op == "correlate" else compose(fit.orientation, "rot180")
        pad = ConvSpec(op=op, mode=fit.mode).padding(fit.kshape)
        if (fit.top, fit.left) == (a - 1 - pad.top, b - 1 - pad.left):
            options.append((order.index(name), op, name))
    border = fit.sees_border and fit.boundary != "fill"
    boundary = f", boundary='{fit.boundary}'" if border else ""
    if options:
        _, op, name = min(options)
        return op, f"scipy.signal.{op}2d(image, {KERNEL_CODE[name]}, mode='{fit.mode}'{boundary})"
    rows, cols = f"{fit.top}:{fit.top + shape[0]}", f"{fit.left}:{fit.left + shape[1]}"
    code = KERNEL_CODE[fit.orientation]
    return (
        "correlate",
        f"scipy.signal.correlate2d(image, {code}, mode='full'{boundary})[{rows}, {cols}]",
    )


_OP_WORDS = {"correlate": "a cross-correlation", "convolve": "a convolution"}
_BOUNDARY_WORDS = {
    "fill": "pads with zeros (boundary='fill')",
    "wrap": "wraps around periodically (boundary='wrap': numpy 'wrap', torch 'circular')",
    "symm": "mirrors the image with the edge sample repeated (boundary='symm': numpy "
    "'symmetric', tf.pad SYMMETRIC; torch's 'reflect' is not this)",
}
_REST_WORDS = {
    "transpose": (
        "a transposed kernel",
        "expected's kernel is actual's transposed: rows and columns swapped, as `.T` does "
        "(a stray .T, or weights read as (width, height)).",
    ),
    "flipud": (
        "a kernel flipped upside down",
        "expected's kernel is actual's with its rows in reverse order (np.flipud): half of a "
        "convolution's 180-degree rotation, as from an image or weights stored bottom-up.",
    ),
    "rot90": (
        "a kernel turned by 90 degrees",
        "expected's kernel is actual's rotated a quarter turn (np.rot90), a transpose plus a "
        "flip: usually weights laid out in another axis order.",
    ),
}


def _wrap(text: str) -> str:
    return textwrap.fill(
        text, width=100, initial_indent="- ", subsequent_indent="  ", break_on_hyphens=False
    )


def _causes(
    relation: _Relation, calls: dict[str, tuple[str, str]], fits: dict[str, _Fit], shapes
) -> list[tuple[str, str]]:
    """(headline phrase, explanation) for each structural difference."""
    causes = []
    transform = relation.transform or "identity"
    flip = transform in ("rot180", "antitranspose", "fliplr", "rot270")
    rest = compose(transform, "rot180") if flip else transform
    if flip:
        (op_a, _), (op_e, _) = calls["actual"], calls["expected"]
        who = (
            f"actual is {_OP_WORDS[op_a]} and expected {_OP_WORDS[op_e]}"
            if op_a != op_e
            else "expected's kernel is actual's rotated 180 degrees, which is what convolving "
            "instead of cross-correlating does"
        )
        causes.append(
            (
                "cross-correlation vs convolution",
                f"Cross-correlation vs convolution: {who}. A convolution "
                "(scipy.signal.convolve2d) rotates the kernel 180 degrees before sliding it; a "
                "cross-correlation (scipy.signal.correlate2d, and what tf.nn.conv2d, Keras Conv2D "
                "and torch.nn.functional.conv2d compute despite the name) does not.",
            )
        )
    if rest != "identity":
        headline, words = _REST_WORDS[rest]
        causes.append((headline, f"{headline[0].upper()}{headline[1:]}: {words}"))
    if flip and rest != "identity":
        code = KERNEL_CODE[transform].replace("kernel", "k")
        causes.append(
            (
                "",
                f"Together: for actual's kernel k, expected used {code} "
                f"(transform='{transform}'), so rotating the kernel 180 degrees alone fixes only "
                "the convolution part.",
            )
        )
    if relation.mode:
        (m_a, m_e), (dy, dx) = relation.mode, relation.offset
        causes.append(
            (
                f"'{m_a}' vs '{m_e}' output size",
                f"Output size: actual is the '{m_a}' result {shapes['actual']} and expected the "
                f"'{m_e}' one {shapes['expected']} ('full' keeps every output that overlaps the "
                "image, 'same' the image's size, 'valid' only windows inside it); "
                f"expected[i + {dy}, j + {dx}] lines up with actual[i, j].",
            )
        )
    elif any(relation.offset):
        dy, dx = relation.offset
        shifted = [(d, k) for d, k in zip(relation.offset, fits["actual"].kshape, strict=True) if d]
        even_same = fits["actual"].mode == "same" and all(
            abs(d) == 1 and k % 2 == 0 for d, k in shifted
        )
        why = (
            "for an even kernel size K, correlate2d 'same' and the framework 'SAME' padding "
            "(TensorFlow, Keras, torch) pad (K-1)//2 before and K//2 after, while convolve2d "
            "'same' pads K//2 before: their windows sit one pixel apart, so rotating the "
            "kernel alone cannot make them match."
            if even_same
            else "the two were padded or cropped differently."
        )
        causes.append(
            (
                f"a shift of ({dy}, {dx}) pixels",
                f"A shift: expected[i + {dy}, j + {dx}] lines up with actual[i, j]; {why}",
            )
        )
    if relation.boundary:
        b_a, b_e = relation.boundary
        causes.append(
            (
                f"a different border ('{b_a}' vs '{b_e}')",
                "Border: the results agree away from the edges; there actual "
                f"{_BOUNDARY_WORDS[b_a]} and expected {_BOUNDARY_WORDS[b_e]}.",
            )
        )
    return causes


def _precision(
    arrays: dict[str, np.ndarray], fits: dict[str, _Fit], terms: int, image_shape: tuple[int, int]
) -> tuple[str, str, str]:
    """(precision, headline phrase, explanation) for what the structure leaves."""
    error = max(fit.error for fit in fits.values())
    both64 = all(x.dtype == np.float64 for x in arrays.values())
    level = "float64" if both64 else "float32"
    rounding, tf32 = tolerance(level, terms), tolerance("tf32", terms)
    fa, fe = fits["actual"], fits["expected"]
    rounded = all(
        np.array_equal(x, fits[side].reference.astype(x.dtype), equal_nan=True)
        for side, x in arrays.items()
    )
    if rounded or (fa.orientation == fe.orientation and _same_inside(arrays, fits, image_shape)):
        return "exact", "nothing else: the numbers are identical", ""
    if error <= rounding:
        return (
            "rounding",
            f"{level} rounding (max_rel {error:.2g})",
            f"Precision: what remains (max_rel {error:.2g}) is {level} accumulation rounding "
            f"(within {rounding:.2g} for {terms}-term sums).",
        )
    low = [(side, x.dtype.name) for side, x in arrays.items() if x.dtype.name in _LOW_DTYPES]
    if low:
        side, which = low[0]
        cause = (
            f"{side} is stored in {which}, whose own rounding this is: compare it with "
            f"convbench.agreement(..., precision='{which}')."
        )
    else:
        which = "TF32/float16" if error <= tf32 else "bfloat16"
        cause = (
            "float32 work on tensor cores with TF32 (turn it off with "
            "torch.backends.cudnn.allow_tf32 = False or "
            "tf.config.experimental.enable_tensor_float_32_execution(False)), or float16/bfloat16 "
            "arithmetic inside. Compare such results with convbench.agreement(..., "
            "precision='tf32')."
        )
    return (
        "reduced",
        f"reduced precision at {which} level (max_rel {error:.2g})",
        f"Reduced precision: what remains (max_rel {error:.2g}) is more than {level} rounding "
        f"({rounding:.2g}) and of {which} size: {cause}",
    )


def _same_inside(
    arrays: dict[str, np.ndarray], fits: dict[str, _Fit], image_shape: tuple[int, int]
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


def _as_2d(value: np.ndarray, what: str) -> np.ndarray:
    array = np.asarray(value)
    if array.ndim != 2 or array.size == 0:
        raise ValueError(
            f"{what} must be a non-empty 2-D array; got shape {array.shape} "
            "(explain one image of a batch at a time: result[b], image[b])"
        )
    if array.dtype.kind not in "iuf" and array.dtype.name != "bfloat16":
        raise TypeError(f"{what} dtype {array.dtype} is not a real number type")
    return array


def explain(
    actual: np.ndarray, expected: np.ndarray, image: np.ndarray, kernel: np.ndarray
) -> Explanation:
    """Why ``expected`` differs from ``actual``, both computed from ``image`` and ``kernel``.

    Finds the kernel orientation, shift, boundary and output mode that relate the two results,
    classifies what is left (``exact``, ``rounding``, ``reduced``) and says it in a message with
    the scipy calls that reproduce each result. Unrelated or rescaled arrays are not explained;
    two arrays equal to within rounding are, even when they do not come from image and kernel.
    """
    arrays = {"actual": _as_2d(actual, "actual"), "expected": _as_2d(expected, "expected")}
    image, kernel = _as_2d(image, "image"), _as_2d(kernel, "kernel")
    search = _Search(image.astype(np.float64), kernel.astype(np.float64))
    found = {side: search.locate(x.astype(np.float64)) for side, x in arrays.items()}
    (fits_a, _), (fits_e, _) = found["actual"], found["expected"]
    if fits_a and fits_e:
        fa, fe = min(
            ((fa, fe) for fa in fits_a for fe in fits_e),
            key=lambda pair: _Relation.between(*pair).cost(),
        )
        fits = {"actual": fa, "expected": fe}
        scaled = {side: _scaled(arrays[side].astype(np.float64), fit) for side, fit in fits.items()}
        if not any(scaled.values()):
            return _explained(arrays, fits, search.terms, image.shape)
    return _unexplained(arrays, found, search, image.shape, kernel.shape)


def _explained(
    arrays: dict[str, np.ndarray],
    fits: dict[str, _Fit],
    terms: int,
    image_shape: tuple[int, int],
) -> Explanation:
    relation = _Relation.between(fits["actual"], fits["expected"])
    shapes = {side: x.shape for side, x in arrays.items()}
    calls = {side: _scipy_call(fit, shapes[side]) for side, fit in fits.items()}
    causes = _causes(relation, calls, fits, shapes)
    precision, residual, residual_why = _precision(arrays, fits, terms, image_shape)
    headline = [phrase for phrase, _ in causes if phrase]
    if headline:
        summary = f"Explained: {', '.join(headline)}; beyond that, {residual}."
    else:
        summary = f"Explained: the same computation; {residual}."
    width = max(len(side) for side in calls)
    lines = [summary]
    why = [_wrap(text) for _, text in causes] + ([_wrap(residual_why)] if residual_why else [])
    if why:
        lines += ["", "Why:", *why]
    lines += [
        "",
        "Fix: these scipy calls reproduce each result (import numpy as np, scipy.signal):",
    ]
    lines += [f"  {side:<{width}} = {code}" for side, (_, code) in calls.items()]
    if causes:
        lines.append("so use actual's call in place of expected's to get actual's numbers.")
    return Explanation(
        explained=True,
        transform=relation.transform,
        offset=relation.offset,
        boundary=relation.boundary,
        mode=relation.mode,
        precision=precision,
        message="\n".join(lines),
    )


def _unexplained(
    arrays: dict[str, np.ndarray],
    found: dict[str, tuple[list[_Fit], _Fit | None]],
    search: _Search,
    image_shape: tuple[int, int],
    kernel_shape: tuple[int, int],
) -> Explanation:
    x, y = arrays["actual"], arrays["expected"]
    if x.shape == y.shape:
        x64, y64 = x.astype(np.float64), y.astype(np.float64)
        level = "float64" if x.dtype == y.dtype == np.float64 else "float32"
        error = _rel_error(x64, y64)
        if error <= tolerance(level, search.terms):
            same = (
                "identical" if error == 0 else f"equal up to {level} rounding (max_rel {error:.2g})"
            )
            message = f"Explained: the two results are {same}; nothing to explain."
            return _without_structure(True, "exact" if error == 0 else "rounding", message)
    lines = ["Not explained: no known relation accounts for the difference."]
    for side, (fits, closest) in found.items():
        x = arrays[side]
        fit = fits[0] if fits else closest
        if fit is None:
            sizes = _mode_sizes(image_shape, kernel_shape)
            words = (
                f"{side} has shape {x.shape}, not a convolution size for image {image_shape} and "
                f"kernel {kernel_shape}: {sizes}."
            )
            lines.append(_wrap(words))
            continue
        call = _scipy_call(fit, x.shape)[1]
        factor = _scaled(x.astype(np.float64), fit)
        if factor is not None:
            words = (
                f"{side} is {call} multiplied by {factor:.4g}: a rescaled result, not a "
                "convolution convention nor lost precision."
            )
        elif fits:
            words = f"{side} is {call}."
        else:
            words = (
                f"{side} is no orientation, boundary, mode or shift of this convolution: the "
                f"closest, {call}, is off by max_rel {fit.error:.2g} (even bfloat16 arithmetic "
                f"stays within {search.cap:.2g})."
            )
        lines.append(_wrap(words))
    lines.append("Check that both results were computed from this image and kernel.")
    return _without_structure(False, "unknown", "\n".join(lines))


def _without_structure(explained: bool, precision: str, message: str) -> Explanation:
    return Explanation(explained, None, (0, 0), None, None, precision, message)
