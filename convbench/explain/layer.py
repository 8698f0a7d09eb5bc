"""Where a layer's result sits among the paddings and kernel orientations of one image and kernel.

A layer (image ``(N, C_in, H, W)``, kernel ``(C_out, C_in // groups, kh, kw)``) at stride ``s``
reads, for output ``i``, the rows ``i * s - before + u * dilation``: the padding *before* each
axis and the kernel's orientation fix every window. The output size then fixes how far the
last window reaches, so the padding *after* is known up to the ``s - 1`` pixels no window reads
(the one reported is ``before`` when it is among them, else the fewest). Zero padding only: the
padding modes of frameworks' layers beyond zeros are not searched.

The candidates: per axis every ``before`` from 0 to the dilated kernel's extent less one, with
the output size the result has; the kernel as given (a cross-correlation, what frameworks' layers
compute) or rotated 180 degrees in every plane (a convolution). Each is computed at a few outputs
(``screen_positions``: both borders and the middle of each axis, up to ``SCREEN_CHANNELS`` output
channels across the groups, the first and last image) and compared with the result; those that
come close are computed in full for the first image (``convbench.reference`` on the image padded
so) and compared there: the error that classifies the precision is the first image's.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import numpy as np

from convbench.agreement import tolerance
from convbench.explain.search import (
    Residual,
    abs_error,
    max_abs,
    rel_error,
    rounding_level,
    scaled,
)
from convbench.reference import reference
from convbench.spec import ConvSpec, terms_per_output

# ((top, bottom), (left, right)): rows and columns of zeros added before and after the image.
Pad = tuple[tuple[int, int], tuple[int, int]]

# A layer's two kernel orientations, the simpler explanation first, and the op each stands for.
LAYER_ORIENTATIONS = ("identity", "rot180")
OPS = {"identity": "correlate", "rot180": "convolve"}
SCREEN_CHANNELS = 4
_MOST_VERIFIED = 4


def rotated(kernel: np.ndarray) -> np.ndarray:
    """Every plane of ``kernel`` rotated 180 degrees: what a convolution slides."""
    return np.ascontiguousarray(kernel[..., ::-1, ::-1])


@dataclass(frozen=True)
class Geometry:
    """The layer: input ``(N, C_in, H, W)``, kernel ``(C_out, C_in // groups, kh, kw)``, and
    the spec's stride, dilation and groups."""

    image_shape: tuple[int, int, int, int]
    kernel_shape: tuple[int, int, int, int]
    stride: tuple[int, int]
    dilation: tuple[int, int]
    groups: int

    @property
    def extent(self) -> tuple[int, int]:
        """The dilated kernel's size per axis, ``(K - 1) * dilation + 1``."""
        return ConvSpec(dilation=self.dilation).dilated_size(self.kernel_shape)

    @property
    def terms(self) -> int:
        return terms_per_output(self.kernel_shape)

    def output_range(self, axis: int) -> tuple[int, int]:
        """The fewest and most outputs any padding gives on ``axis`` (0 rows, 1 columns)."""
        size, extent, step = self.image_shape[2 + axis], self.extent[axis], self.stride[axis]
        fewest = (size - extent) // step + 1 if size >= extent else 1
        return fewest, (size + extent - 2) // step + 1

    def after(self, axis: int, before: int, outputs: int) -> tuple[int, int]:
        """The padding after ``axis`` that gives ``outputs`` outputs with ``before`` before: the
        least it can be (negative: the last rows are never read) and the most."""
        size, extent, step = self.image_shape[2 + axis], self.extent[axis], self.stride[axis]
        least = (outputs - 1) * step + extent - size - before
        return least, least + step - 1

    def befores(self, axis: int, outputs: int) -> list[int]:
        """The padding before ``axis`` of every padding that gives ``outputs`` outputs with each
        window reading at least one pixel of the image."""
        extent = self.extent[axis]
        found = []
        for before in range(extent):
            least, most = self.after(axis, before, outputs)
            if most >= 0 and least <= extent - 1:
                found.append(before)
        return found

    def padding(self, befores: tuple[int, int], outputs: tuple[int, int], op: str) -> Pad:
        """The padding with ``befores`` that gives ``outputs``, named by its after: 'same''s for
        ``op`` when that is one of the afters that give the outputs, else the before (a
        symmetric padding), else the least that is not negative."""
        same = self.same(op)
        found = []
        for axis, before in enumerate(befores):
            least, most = self.after(axis, before, outputs[axis])
            preferred = [same[axis][1]] if same[axis][0] == before else []
            after = next((a for a in (*preferred, before) if least <= a <= most), max(least, 0))
            found.append((before, after))
        return found[0], found[1]

    def same(self, op: str) -> Pad:
        """convbench's 'same' padding for ``op`` (TensorFlow's 'SAME' for a correlation)."""
        spec = ConvSpec(op=op, stride=self.stride, dilation=self.dilation)
        pad = spec.padding(self.kernel_shape, self.image_shape)
        return (pad.top, pad.bottom), (pad.left, pad.right)

    def same_total(self, axis: int) -> int:
        """The padding 'SAME' needs on ``axis``, before and after together."""
        size, extent, step = self.image_shape[2 + axis], self.extent[axis], self.stride[axis]
        return max((math.ceil(size / step) - 1) * step + extent - size, 0)


@dataclass(frozen=True)
class LayerFit:
    """A candidate for a result: the kernel in ``orientation``, the image zero-padded by
    ``padding``; its ``error`` against the result and its float64 values for the first image
    (``reference``; the screen's sample until verified)."""

    orientation: str
    padding: Pad
    error: float
    reference: np.ndarray = field(repr=False, compare=False)

    @property
    def befores(self) -> tuple[int, int]:
        """The padding before the rows and before the columns: what fixes the windows."""
        return self.padding[0][0], self.padding[1][0]


@dataclass(frozen=True)
class LayerLocated:
    """What the search found for one result: the fits (simplest first), the closest candidate,
    and, when the result's shape is no output of this layer, why (then nothing else)."""

    fits: list[LayerFit]
    closest: LayerFit | None
    problem: str | None = None


class LayerSearch:
    """The candidates for one layer's image (as given: only the images the search reads are
    converted) and float64 kernel."""

    def __init__(self, image: np.ndarray, kernel: np.ndarray, spec: ConvSpec) -> None:
        self.image = image
        self.geometry = Geometry(image.shape, kernel.shape, spec.stride, spec.dilation, spec.groups)
        self.terms = self.geometry.terms
        self.cap = tolerance("bfloat16", self.terms)
        self.floor = tolerance("float64", self.terms)
        turned = rotated(kernel)
        # A kernel whose planes are all symmetric under the rotation (1x1 kernels among them)
        # gives one candidate for both orientations: searched once, as the simpler.
        self.kernels = {"identity": kernel}
        if not np.array_equal(turned, kernel, equal_nan=True):
            self.kernels["rot180"] = turned

    def orientations(self, name: str) -> list[str]:
        """The orientations the candidate computed with ``name`` stands for."""
        return list(LAYER_ORIENTATIONS) if len(self.kernels) == 1 else [name]

    def shape_problem(self, shape: tuple[int, ...]) -> str | None:
        """Why ``shape`` is no output of this layer, or None."""
        n = self.geometry.image_shape[0]
        c_out = self.geometry.kernel_shape[0]
        if len(shape) != 4 or tuple(shape[:2]) != (n, c_out):
            return (
                f"shape {tuple(shape)} is not (N, C_out, H_out, W_out) = ({n}, {c_out}, ...) "
                f"for image {self.geometry.image_shape} and kernel {self.geometry.kernel_shape}"
            )
        for axis, word in enumerate(("rows", "columns")):
            fewest, most = self.geometry.output_range(axis)
            if not fewest <= shape[2 + axis] <= most:
                return (
                    f"{shape[2 + axis]} {word} of output is not a size this layer gives (from "
                    f"{fewest} without padding to {most} with the most) at stride "
                    f"{self.geometry.stride[axis]} and dilation {self.geometry.dilation[axis]}"
                )
        return None

    def screen_positions(self, shape: tuple[int, ...]) -> tuple[np.ndarray, ...]:
        """(images, channels, rows, columns) of the outputs every candidate is screened on."""
        n, c_out, h, w = shape
        images = np.unique([0, n - 1])
        channels = np.unique(np.linspace(0, c_out - 1, min(SCREEN_CHANNELS, c_out)).round())
        rows = np.unique([i for i in (0, 1, h // 2, h - 2, h - 1) if 0 <= i < h])
        cols = np.unique([j for j in (0, 1, w // 2, w - 2, w - 1) if 0 <= j < w])
        return images, channels.astype(int), rows, cols

    def sampled(self, name: str, before: tuple[int, int], positions) -> np.ndarray:
        """The candidate's outputs at ``positions`` (``screen_positions``), in float64."""
        images, channels, rows, cols = positions
        kernel = self.kernels[name]
        _, c_in, h, w = self.geometry.image_shape
        (sh, sw), (dh, dw) = self.geometry.stride, self.geometry.dilation
        kh, kw = kernel.shape[-2:]
        r = rows[:, None] * sh + np.arange(kh) * dh - before[0]
        c = cols[:, None] * sw + np.arange(kw) * dw - before[1]
        chosen = self.image[images].astype(np.float64)
        patch = chosen[:, :, np.clip(r, 0, h - 1)][..., np.clip(c, 0, w - 1)]
        inside = ((r >= 0) & (r < h))[:, :, None, None] & ((c >= 0) & (c < w))[None, None]
        # (image, channel, row, tap row, column, tap column); where() rather than a product, so
        # that a NaN of the image outside a window does not reach it.
        patch = np.where(inside, patch, 0.0)
        per_group_in = c_in // self.geometry.groups
        per_group_out = self.geometry.kernel_shape[0] // self.geometry.groups
        out = np.empty((len(images), len(channels), len(rows), len(cols)))
        for index, channel in enumerate(channels):
            first = channel // per_group_out * per_group_in
            group = patch[:, first : first + per_group_in]
            out[:, index] = np.einsum("ncruqv,cuv->nrq", group, kernel[channel])
        return out

    def full(self, name: str, padding: Pad, outputs: tuple[int, int]) -> np.ndarray:
        """The candidate for the first image, (C_out, H_out, W_out), by convbench.reference."""
        spec = ConvSpec(
            mode="valid",
            stride=self.geometry.stride,
            dilation=self.geometry.dilation,
            groups=self.geometry.groups,
        )
        image = self.image[:1].astype(np.float64)
        widths = [(0, 0), (0, 0)]
        for axis in (0, 1):
            least, _ = self.geometry.after(axis, padding[axis][0], outputs[axis])
            if least < 0:  # rows no window reads: dropped, as a library's floor division does
                image = image[:, :, :least] if axis == 0 else image[..., :least]
            widths.append((padding[axis][0], max(least, 0)))
        padded = np.pad(image, widths)
        return reference(padded, self.kernels[name], spec)[0]

    def locate(self, result: np.ndarray) -> LayerLocated:
        """Every candidate that reproduces ``result`` (any real dtype; only the outputs the
        search reads are converted to float64), and the closest one."""
        problem = self.shape_problem(result.shape)
        if problem:
            return LayerLocated([], None, problem)
        outputs = result.shape[2:]
        per_axis = [self.geometry.befores(axis, outputs[axis]) for axis in (0, 1)]
        positions = self.screen_positions(result.shape)
        images, channels, rows, cols = positions
        sample = result[np.ix_(images, channels, rows, cols)].astype(np.float64)
        first = result[0].astype(np.float64)
        scale = max_abs(first)
        screened = []
        for name in self.kernels:
            for befores in itertools.product(*per_axis):
                values = self.sampled(name, befores, positions)
                error = float(abs_error(sample, values).max()) / scale
                padding = self.geometry.padding(befores, outputs, OPS[name])
                screened.append(LayerFit(name, padding, error, values))
        screened.sort(key=lambda fit: (fit.error, LAYER_ORIENTATIONS.index(fit.orientation)))
        closest = screened[0]
        hopeful = [fit for fit in screened[:_MOST_VERIFIED] if fit.error <= self.cap]
        verified = [self._verify(first, fit, outputs) for fit in (hopeful or [closest])]
        best = min(verified, key=lambda fit: fit.error)
        limit = min(self.cap, max(4 * best.error, self.floor))
        fits = [
            LayerFit(
                orientation,
                self.geometry.padding(fit.befores, outputs, OPS[orientation]),
                fit.error,
                fit.reference,
            )
            for fit in sorted(verified, key=lambda fit: fit.error)
            if fit.error <= limit
            for orientation in self.orientations(fit.orientation)
        ]
        fits.sort(key=lambda fit: LAYER_ORIENTATIONS.index(fit.orientation))
        return LayerLocated(fits, best)

    def _verify(self, first: np.ndarray, fit: LayerFit, outputs: tuple[int, int]) -> LayerFit:
        """The candidate compared with the result's first image (``first``, float64)."""
        values = self.full(fit.orientation, fit.padding, outputs)
        return LayerFit(fit.orientation, fit.padding, rel_error(first, values), values)


def convention(fit: LayerFit, geometry: Geometry, outputs: tuple[int, int]) -> str | None:
    """The ConvSpec mode ('same', 'valid', 'full') whose padding ``fit`` has, or None."""
    extent = geometry.extent
    op = "correlate" if fit.orientation == "identity" else "convolve"
    if fit.padding == geometry.same(op) and all(
        outputs[axis] == math.ceil(geometry.image_shape[2 + axis] / geometry.stride[axis])
        for axis in (0, 1)
    ):
        return "same"
    if fit.padding == ((0, 0), (0, 0)) and outputs == tuple(
        geometry.output_range(axis)[0] for axis in (0, 1)
    ):
        return "valid"
    if fit.padding == tuple((e - 1, e - 1) for e in extent):
        return "full"
    return None


@dataclass(frozen=True)
class LayerRelation:
    """How expected's fit differs from actual's: the kernel orientation, the padding (actual's,
    expected's), the shift in outputs when the windows line up (a whole number of strides
    apart), and the modes when the output sizes differ; None or (0, 0) where they agree."""

    transform: str | None
    padding: tuple[Pad, Pad] | None
    offset: tuple[int, int]
    mode: tuple[str, str] | None

    @classmethod
    def between(
        cls, fa: LayerFit, fe: LayerFit, geometry: Geometry, shapes: dict[str, tuple[int, ...]]
    ) -> LayerRelation:
        moved = [fe.padding[axis][0] - fa.padding[axis][0] for axis in (0, 1)]
        aligned = all(d % s == 0 for d, s in zip(moved, geometry.stride, strict=True))
        offset = tuple(d // s for d, s in zip(moved, geometry.stride, strict=True))
        modes = (
            convention(fa, geometry, shapes["actual"][2:]),
            convention(fe, geometry, shapes["expected"][2:]),
        )
        resized = shapes["actual"][2:] != shapes["expected"][2:] and None not in modes
        return cls(
            transform=None if fa.orientation == fe.orientation else "rot180",
            padding=None if fa.padding == fe.padding else (fa.padding, fe.padding),
            offset=offset if aligned else (0, 0),
            mode=modes if resized else None,
        )

    def cost(self) -> tuple[int, int]:
        """Fewer differences first, then the simpler orientation."""
        differences = (self.transform, self.padding)
        return sum(d is not None for d in differences), int(self.transform is not None)


def related(
    located: dict[str, LayerLocated],
    shapes: dict[str, tuple[int, ...]],
    first: dict[str, np.ndarray],
    geometry: Geometry,
) -> tuple[dict[str, LayerFit], LayerRelation] | None:
    """The fits of 'actual' and 'expected' related by the fewest differences, and how; None when
    a side has no fit or is its fit rescaled. ``shapes``: the two results' shapes; ``first``:
    their first images in float64."""
    fits_a, fits_e = located["actual"].fits, located["expected"].fits
    if not (fits_a and fits_e):
        return None
    fa, fe = min(
        ((fa, fe) for fa in fits_a for fe in fits_e),
        key=lambda pair: LayerRelation.between(*pair, geometry, shapes).cost(),
    )
    fits = {"actual": fa, "expected": fe}
    if any(scaled(first[side], fit) is not None for side, fit in fits.items()):
        return None
    return fits, LayerRelation.between(fa, fe, geometry, shapes)


def residual(arrays: dict[str, np.ndarray], fits: dict[str, LayerFit], terms: int) -> Residual:
    """Classify what remains of ``arrays`` (as given, any dtype) after their ``fits``, judged on
    the first image."""
    error = max(fit.error for fit in fits.values())
    level = rounding_level(arrays)
    rounded = all(
        np.array_equal(x[0], fits[side].reference.astype(x.dtype), equal_nan=True)
        for side, x in arrays.items()
    )
    fa, fe = fits["actual"], fits["expected"]
    alike = (fa.orientation, fa.padding) == (fe.orientation, fe.padding) and np.array_equal(
        arrays["actual"], arrays["expected"], equal_nan=True
    )
    if rounded or alike:
        return Residual("exact", error, level)
    return Residual("rounding" if error <= tolerance(level, terms) else "reduced", error, level)
