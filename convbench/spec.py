"""The canonical operation: ``ConvSpec``, its padding rules, and input validation.

Every backend computes exactly what ``scipy.signal.correlate2d`` / ``convolve2d`` compute for the
same (op, mode, boundary, fillvalue).  A backend maps that onto its library in one of two ways:
the library's own padding when it is *exactly* this padding, or an explicit ``np.pad`` of the
image followed by a 'valid' correlation.  ``padding`` below is the single source of truth.

Deep-learning layers are the same operation with more axes: an image ``(N, C_in, H, W)`` and a
kernel ``(C_out, C_in // groups, kh, kw)`` (NCHW / OIHW, as torch) give ``(N, C_out, H_out,
W_out)``, with ``stride``, ``dilation`` and ``groups`` as in ``torch.nn.functional.conv2d``.
Stride and dilation apply to 2-D images and batches too: the padding rule is per spatial axis.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

OPS = ("correlate", "convolve")
MODES = ("full", "same", "valid")
BOUNDARIES = ("fill", "wrap", "symm")

# numpy's names for the boundaries. 'symm' repeats the edge sample (numpy 'symmetric',
# tf.pad SYMMETRIC); numpy/torch 'reflect' does not and is *not* 'symm'.
NUMPY_PAD_MODE = {"fill": "constant", "wrap": "wrap", "symm": "symmetric"}

# Compute dtypes by name. bfloat16 is numpy-visible through ml_dtypes (shipped with jax and TF).
FLOAT_DTYPES = ("float16", "bfloat16", "float32", "float64")


# Shapes of the inputs, in words, for errors.
PLANE_SHAPES = "image (H, W) or (B, H, W) with kernel (kh, kw)"
LAYER_SHAPES = "image (N, C_in, H, W) with kernel (C_out, C_in // groups, kh, kw)"


class Padding(NamedTuple):
    """Rows/columns added before (top/left) and after (bottom/right) the image."""

    top: int
    bottom: int
    left: int
    right: int

    @property
    def symmetric(self) -> bool:
        return self.top == self.bottom and self.left == self.right

    @property
    def is_zero(self) -> bool:
        return not any(self)

    def numpy(self, lead: int) -> tuple[tuple[int, int], ...]:
        """``np.pad`` widths for an array with ``lead`` axes before the two spatial ones (0 for
        (H, W), 1 for (B, H, W), 2 for (N, C, H, W); ``True``/``False`` read as 1/0)."""
        return (*((0, 0),) * int(lead), (self.top, self.bottom), (self.left, self.right))


def _axis_padding(
    op: str, mode: str, k: int, dilation: int, stride: int, size: int | None
) -> tuple[int, int]:
    """(before, after) on one spatial axis of ``size`` samples (None: not needed, stride 1)."""
    span = (k - 1) * dilation + 1
    if mode == "full":
        return span - 1, span - 1
    if mode == "valid":
        return 0, 0
    # 'same' is TensorFlow's SAME: ceil(size / stride) outputs, the total padding split with
    # the smaller half before. At stride 1 the total is span - 1 whatever the size. Convolution,
    # whose kernel is rotated, mirrors it: for an even kernel the two sit one pixel apart, the
    # trap behind most "scipy and Keras disagree" reports.
    if stride == 1:
        total = span - 1
    else:
        assert size is not None
        total = max((-(-size // stride) - 1) * stride + span - size, 0)
    before, after = total // 2, total - total // 2
    return (before, after) if op == "correlate" else (after, before)


def _pair(field: str, value: object) -> tuple[int, int]:
    """A positive int, or a pair of them, as a pair (rows, columns)."""
    values = value if isinstance(value, (tuple, list)) and len(value) == 2 else (value,) * 2
    if not all(_positive_int(v) for v in values):
        raise ValueError(f"ConvSpec {field}={value!r} must be a positive integer or a pair of them")
    return int(values[0]), int(values[1])


def _positive_int(value: object) -> bool:
    return (
        isinstance(value, numbers.Integral)
        and not isinstance(value, (bool, np.bool_))
        and value >= 1
    )


def _words(pair: tuple[int, int]) -> str:
    return str(pair[0]) if pair[0] == pair[1] else f"{pair[0]}x{pair[1]}"


@dataclass(frozen=True)
class ConvSpec:
    """What to compute, in scipy.signal's terms.

    ``op="correlate"`` is ``scipy.signal.correlate2d`` and what ``tf.nn.conv2d``, Keras
    ``Conv2D`` and ``torch.nn.functional.conv2d`` compute; ``op="convolve"`` is
    ``scipy.signal.convolve2d`` (kernel rotated 180 degrees). The default is the deep-learning
    convention: a 'same'-sized cross-correlation with zero padding.

    ``fillvalue`` is any finite real number: a Python int or float, a numpy integer or floating
    scalar (bfloat16 included), a ``fractions.Fraction``; it is stored as a float. NaN and
    infinities are refused: with kernel weights of both signs they turn every border output
    into NaN, which measures nothing a user would benchmark. Booleans, complex numbers,
    strings and arrays are refused too.

    ``stride`` and ``dilation`` are a positive int or a pair (rows, columns), stored as a pair;
    ``groups`` a positive int that must divide both channel counts of a layer (1 for a 2-D
    image or a batch). They are torch's ``conv2d`` arguments of the same names.
    """

    op: str = "correlate"
    mode: str = "same"
    boundary: str = "fill"
    fillvalue: float = 0.0
    stride: tuple[int, int] = (1, 1)
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1

    def __post_init__(self) -> None:
        for field, value, accepted in (
            ("op", self.op, OPS),
            ("mode", self.mode, MODES),
            ("boundary", self.boundary, BOUNDARIES),
        ):
            if value not in accepted:
                raise ValueError(f"ConvSpec {field}={value!r} is not one of {list(accepted)}")
        if not _real_scalar(self.fillvalue):
            raise TypeError(
                f"ConvSpec fillvalue={self.fillvalue!r} must be a real number "
                "(int, float or a numpy real scalar)"
            )
        try:
            finite = math.isfinite(float(self.fillvalue))
        except OverflowError:  # an int beyond every float
            finite = False
        if not finite:
            raise ValueError(f"ConvSpec fillvalue={self.fillvalue!r} must be finite")
        if self.boundary != "fill" and self.fillvalue != 0:
            raise ValueError(
                f"ConvSpec fillvalue={self.fillvalue!r} only applies to boundary='fill', "
                f"not boundary={self.boundary!r}"
            )
        object.__setattr__(self, "fillvalue", float(self.fillvalue))
        object.__setattr__(self, "stride", _pair("stride", self.stride))
        object.__setattr__(self, "dilation", _pair("dilation", self.dilation))
        if not _positive_int(self.groups):
            raise ValueError(f"ConvSpec groups={self.groups!r} must be a positive integer")
        object.__setattr__(self, "groups", int(self.groups))

    def __str__(self) -> str:
        fill = f",fillvalue={self.fillvalue:g}" if self.fillvalue else ""
        layer = "".join(
            f",{name}={words}"
            for name, words, default in (
                ("stride", _words(self.stride), "1"),
                ("dilation", _words(self.dilation), "1"),
                ("groups", str(self.groups), "1"),
            )
            if words != default
        )
        return f"{self.op}[mode={self.mode},boundary={self.boundary}{fill}{layer}]"

    @property
    def is_plain(self) -> bool:
        """Stride 1, dilation 1, one group: scipy's operation, with nothing of a layer's."""
        return self.stride == (1, 1) and self.dilation == (1, 1) and self.groups == 1

    def dilated_size(self, kernel_shape: tuple[int, ...]) -> tuple[int, int]:
        """The window a kernel covers, ``(K - 1) * dilation + 1`` per spatial axis."""
        kh, kw = kernel_shape[-2:]
        return (kh - 1) * self.dilation[0] + 1, (kw - 1) * self.dilation[1] + 1

    def padding(
        self, kernel_shape: tuple[int, ...], image_shape: tuple[int, ...] | None = None
    ) -> Padding:
        """Padding of the image that turns this spec into a 'valid' correlation (at the spec's
        stride and dilation). The kernel's spatial axes are its last two. 'same' at a stride
        above 1 depends on the image's size: ``image_shape`` is needed there and only there."""
        kh, kw = kernel_shape[-2:]
        if image_shape is None:
            if self.mode == "same" and self.stride != (1, 1):
                raise ValueError(
                    f"'same' padding at stride {self.stride} depends on the image's size: "
                    "pass image_shape"
                )
            h = w = None
        else:
            h, w = image_shape[-2:]
        (sh, sw), (dh, dw) = self.stride, self.dilation
        top, bottom = _axis_padding(self.op, self.mode, kh, dh, sh, h)
        left, right = _axis_padding(self.op, self.mode, kw, dw, sw, w)
        return Padding(top, bottom, left, right)

    def output_shape(self, image_shape: tuple[int, ...], kernel_shape: tuple[int, ...]) -> tuple:
        """``(H_out, W_out)`` after the image's leading axes, ``(N, C_out)`` for a layer:
        ``floor((H + before + after - Ke) / stride) + 1`` per spatial axis."""
        *lead, h, w = self.padded_shape(image_shape, kernel_shape)
        if len(kernel_shape) == 4:
            lead = [image_shape[0], kernel_shape[0]]
        (eh, ew), (sh, sw) = self.dilated_size(kernel_shape), self.stride
        return (*lead, (h - eh) // sh + 1, (w - ew) // sw + 1)

    def padded_shape(self, image_shape: tuple[int, ...], kernel_shape: tuple[int, ...]) -> tuple:
        """The shape of ``pad(image, kernel_shape)`` for an image of ``image_shape``."""
        pad = self.padding(kernel_shape, image_shape)
        *lead, h, w = image_shape
        return (*lead, h + pad.top + pad.bottom, w + pad.left + pad.right)

    def correlation_kernel(self, kernel: np.ndarray) -> np.ndarray:
        """The kernel a cross-correlation must use (every plane rotated 180 degrees for
        'convolve'), as a C-contiguous copy that frameworks can take without a stride check."""
        return (kernel[..., ::-1, ::-1] if self.op == "convolve" else kernel).copy()

    def pad(self, image: np.ndarray, kernel_shape: tuple[int, ...]) -> np.ndarray:
        """The image padded per this spec (host side, numpy), ready for a 'valid' correlation."""
        pad = self.padding(kernel_shape, image.shape)
        if pad.is_zero:
            return image
        widths = pad.numpy(image.ndim - 2)
        if self.boundary == "fill":
            fill = np.asarray(self.fillvalue).astype(image.dtype)
            return np.pad(image, widths, mode="constant", constant_values=fill)
        return np.pad(image, widths, mode=NUMPY_PAD_MODE[self.boundary])


def _real_scalar(value: object) -> bool:
    """A real number other than a boolean; bfloat16 scalars are numpy scalars of their own."""
    if isinstance(value, (bool, np.bool_)):
        return False
    if isinstance(value, numbers.Real):
        return True
    return isinstance(value, np.generic) and np.dtype(type(value)).name in FLOAT_DTYPES


def dtype_name(dtype: np.dtype) -> str:
    return np.dtype(dtype).name


def numpy_dtype(name: str) -> np.dtype:
    """The numpy dtype called ``name``; 'bfloat16' comes from ml_dtypes (with jax and TF)."""
    if name not in FLOAT_DTYPES:
        raise ValueError(f"dtype {name!r} is not one of {list(FLOAT_DTYPES)}")
    if name == "bfloat16":
        try:
            import ml_dtypes
        except ImportError as error:
            raise ImportError("bfloat16 arrays need the ml_dtypes package") from error
        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(name)


def largest_finite(dtype: np.dtype) -> float:
    """The largest finite value of a float dtype (bfloat16's from ml_dtypes)."""
    if dtype_name(dtype) == "bfloat16":
        import ml_dtypes

        return float(ml_dtypes.finfo(dtype).max)
    return float(np.finfo(dtype).max)


def fill_in(dtype: np.dtype, spec: ConvSpec) -> float:
    """``spec.fillvalue`` rounded to ``dtype``: the value an image of that dtype is padded with."""
    with np.errstate(over="ignore"):
        return float(np.asarray(spec.fillvalue).astype(dtype))


def check_shapes(
    image_shape: tuple[int, ...], kernel_shape: tuple[int, ...], spec: ConvSpec
) -> None:
    """ValueError unless the shapes go together for ``spec``: an image (H, W) or (B, H, W) with a
    kernel (kh, kw), or a layer's image (N, C_in, H, W) with a kernel (C_out, C_in // groups,
    kh, kw) where ``spec.groups`` divides C_in and C_out; nothing empty; in mode 'valid', a
    dilated kernel no larger than the image."""
    image_shape, kernel_shape = tuple(image_shape), tuple(kernel_shape)
    if len(image_shape) not in (2, 3, 4):
        raise ValueError(
            f"image must be 2-D (H, W), 3-D (B, H, W) or 4-D (N, C_in, H, W); got "
            f"{len(image_shape)}-D shape {image_shape}"
        )
    layer = len(image_shape) == 4
    if len(kernel_shape) != (4 if layer else 2):
        raise ValueError(
            f"a {len(image_shape)}-D image {image_shape} needs a "
            f"{'4-D kernel (C_out, C_in // groups, kh, kw)' if layer else '2-D kernel (kh, kw)'}"
            f"; got a {len(kernel_shape)}-D kernel of shape {kernel_shape} "
            f"(accepted: {PLANE_SHAPES}, or {LAYER_SHAPES})"
        )
    if 0 in image_shape:
        raise ValueError(f"image is empty: shape {image_shape}")
    if 0 in kernel_shape:
        raise ValueError(f"kernel is empty: shape {kernel_shape}")
    if not layer and spec.groups != 1:
        raise ValueError(
            f"ConvSpec groups={spec.groups} needs a layer's channels ({LAYER_SHAPES}); a "
            f"{len(image_shape)}-D image {image_shape} has one channel, so groups must be 1"
        )
    if layer:
        c_in, c_out, per_group = image_shape[1], kernel_shape[0], kernel_shape[1]
        for count, channels in (("C_in", c_in), ("C_out", c_out)):
            if channels % spec.groups:
                raise ValueError(
                    f"ConvSpec groups={spec.groups} does not divide {count}={channels} "
                    f"(image {image_shape}, kernel {kernel_shape})"
                )
        if per_group * spec.groups != c_in:
            raise ValueError(
                f"kernel {kernel_shape} has {per_group} input channels per group; an image "
                f"with C_in={c_in} in groups={spec.groups} needs {c_in // spec.groups} "
                f"(kernel (C_out, C_in // groups, kh, kw))"
            )
    if spec.mode == "valid":
        window = spec.dilated_size(kernel_shape)
        if window[0] > image_shape[-2] or window[1] > image_shape[-1]:
            dilated = f" (dilated to {window})" if spec.dilation != (1, 1) else ""
            raise ValueError(
                f"kernel {kernel_shape[-2:]}{dilated} is larger than the image "
                f"{image_shape[-2:]} in mode 'valid', which would give an empty result; use "
                "mode 'same' or 'full'"
            )


def check_inputs(
    image: np.ndarray, kernel: np.ndarray, spec: ConvSpec, *, copy: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Validate image and kernel for ``spec``; return them as arrays, kernel in the image's dtype.

    The image's dtype is the compute dtype. A kernel of another real dtype is cast to it
    (documented choice: frameworks hold weights in the activation dtype, and a float64 kernel
    with a float32 image is the common accident, not a request for mixed precision). The fill
    value is rounded to it too; one that rounds to infinity (1e39 in float32, 7e4 in float16) is
    a ValueError naming the dtype's range, since padding with it would turn the border into
    inf and NaN where the exact result is finite or infinite.

    With ``copy`` (what ``Backend.prepare`` does) both come back as fresh C-contiguous arrays in
    native byte order: a prepared case owns its inputs, so changing the caller's arrays later
    changes nothing, and frameworks that take numpy memory as it lies (``torch.from_numpy``,
    ``jax.device_put``) never see a byte-swapped or negatively strided array. The copy costs
    one pass over the image, against kh * kw passes of the convolution. ``copy=False`` returns
    the caller's arrays as they are (the kernel cast), for code that only reads them during
    the call.
    """
    if not isinstance(spec, ConvSpec):
        raise TypeError(f"spec must be a convbench.ConvSpec, got {type(spec).__name__}")
    image = np.asarray(image)
    kernel = np.asarray(kernel)
    check_shapes(image.shape, kernel.shape, spec)
    name = dtype_name(image.dtype)
    if name not in FLOAT_DTYPES:
        raise TypeError(
            f"image dtype {name} is not supported; the image's dtype is the compute dtype and "
            f"must be one of {list(FLOAT_DTYPES)}"
        )
    kind = kernel.dtype.kind
    if kind not in "iuf" and dtype_name(kernel.dtype) != "bfloat16":
        raise TypeError(
            f"kernel dtype {kernel.dtype} is not supported; use a real dtype "
            f"(it is cast to the image's dtype {name})"
        )
    pads = spec.boundary == "fill" and not spec.padding(kernel.shape, image.shape).is_zero
    if pads and not np.isfinite(fill_in(image.dtype, spec)):
        raise ValueError(
            f"ConvSpec fillvalue={spec.fillvalue!r} is outside the range of {name} "
            f"(finite values up to ±{largest_finite(image.dtype):.6g}): padding a {name} "
            "image with it would pad with infinity"
        )
    if not copy:
        return image, kernel.astype(image.dtype, copy=False)
    native = image.dtype.newbyteorder("=")
    return (
        np.array(image, dtype=native, order="C", copy=True),
        np.array(kernel, dtype=native, order="C", copy=True),
    )


def terms_per_output(kernel_shape: tuple[int, ...]) -> int:
    """Products summed into one output: kh * kw, and C_in // groups * kh * kw for a layer's
    kernel (C_out, C_in // groups, kh, kw)."""
    return math.prod(kernel_shape[1:] if len(kernel_shape) == 4 else kernel_shape)
