"""The canonical operation: ``ConvSpec``, its padding rules, and input validation.

Every backend computes exactly what ``scipy.signal.correlate2d`` / ``convolve2d`` compute for the
same (op, mode, boundary, fillvalue).  A backend maps that onto its library in one of two ways:
the library's own padding when it is *exactly* this padding, or an explicit ``np.pad`` of the
image followed by a 'valid' correlation.  ``padding`` below is the single source of truth.
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

    def numpy(self, batched: bool) -> tuple[tuple[int, int], ...]:
        lead = ((0, 0),) if batched else ()
        return (*lead, (self.top, self.bottom), (self.left, self.right))


def _axis_padding(op: str, mode: str, k: int) -> tuple[int, int]:
    if mode == "full":
        return k - 1, k - 1
    if mode == "valid":
        return 0, 0
    # 'same': correlation centres the kernel at (K-1)//2; convolution, whose kernel is
    # rotated, at K//2. For even K the two differ by one pixel: the trap behind most
    # "scipy and Keras disagree" reports.
    if op == "correlate":
        return (k - 1) // 2, k // 2
    return k // 2, (k - 1) // 2


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
    """

    op: str = "correlate"
    mode: str = "same"
    boundary: str = "fill"
    fillvalue: float = 0.0

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

    def __str__(self) -> str:
        fill = f",fillvalue={self.fillvalue:g}" if self.fillvalue else ""
        return f"{self.op}[mode={self.mode},boundary={self.boundary}{fill}]"

    def padding(self, kernel_shape: tuple[int, int]) -> Padding:
        """Padding of the image that turns this spec into a 'valid' correlation."""
        top, bottom = _axis_padding(self.op, self.mode, kernel_shape[0])
        left, right = _axis_padding(self.op, self.mode, kernel_shape[1])
        return Padding(top, bottom, left, right)

    def output_shape(self, image_shape: tuple[int, ...], kernel_shape: tuple[int, int]) -> tuple:
        *batch, h, w = self.padded_shape(image_shape, kernel_shape)
        kh, kw = kernel_shape
        return (*batch, h - kh + 1, w - kw + 1)

    def padded_shape(self, image_shape: tuple[int, ...], kernel_shape: tuple[int, int]) -> tuple:
        """The shape of ``pad(image, kernel_shape)`` for an image of ``image_shape``."""
        pad = self.padding(kernel_shape)
        *batch, h, w = image_shape
        return (*batch, h + pad.top + pad.bottom, w + pad.left + pad.right)

    def correlation_kernel(self, kernel: np.ndarray) -> np.ndarray:
        """The kernel a cross-correlation must use (rotated 180 degrees for 'convolve'), as a
        C-contiguous copy that frameworks can take without a stride check."""
        return (kernel[::-1, ::-1] if self.op == "convolve" else kernel).copy()

    def pad(self, image: np.ndarray, kernel_shape: tuple[int, int]) -> np.ndarray:
        """The image padded per this spec (host side, numpy), ready for a 'valid' correlation."""
        pad = self.padding(kernel_shape)
        if pad.is_zero:
            return image
        widths = pad.numpy(batched=image.ndim == 3)
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
    if image.ndim not in (2, 3):
        raise ValueError(
            f"image must be 2-D (H, W) or 3-D (B, H, W); got {image.ndim}-D shape {image.shape}"
        )
    if kernel.ndim != 2:
        raise ValueError(f"kernel must be 2-D (kh, kw); got {kernel.ndim}-D shape {kernel.shape}")
    if image.size == 0:
        raise ValueError(f"image is empty: shape {image.shape}")
    if kernel.size == 0:
        raise ValueError(f"kernel is empty: shape {kernel.shape}")
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
    if spec.mode == "valid" and (
        kernel.shape[0] > image.shape[-2] or kernel.shape[1] > image.shape[-1]
    ):
        raise ValueError(
            f"kernel {kernel.shape} is larger than the image {image.shape[-2:]} in mode 'valid', "
            "which would give an empty result; use mode 'same' or 'full'"
        )
    pads = spec.boundary == "fill" and not spec.padding(kernel.shape).is_zero
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
