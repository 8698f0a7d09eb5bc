"""The float64 reference: the canonical operation, computed directly on the CPU.

Deliberately independent of every backend's library: explicit padding, then a direct 'valid'
cross-correlation accumulated tap by tap in float64. The tests hold it against
``scipy.signal.convolve2d`` / ``correlate2d`` for every spec.

The inputs are those a backend computes with: the image in its own dtype, the kernel and the
fill value rounded to it (``check_inputs``); only the arithmetic is float64.

Memory: the output is computed in blocks of rows (about ``BLOCK_ELEMENTS`` outputs each), each
from a float64 slab of the padded image gathered for it, so beyond the float64 result the
reference needs a few MiB (two slabs and a tap's product) whatever the image size; no padded or
float64 copy of the whole image is made.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from convbench.spec import NUMPY_PAD_MODE, ConvSpec, check_inputs, fill_in

# Outputs per block: a 512 KiB float64 block, small enough for the cache, large enough that the
# Python loop over taps costs little next to the arithmetic.
BLOCK_ELEMENTS = 2**16


def _source_index(spec: ConvSpec, size: int, before: int, after: int) -> np.ndarray:
    """For each position of a padded axis, the image index it copies, or -1 for the fill.

    np.pad applied to the indices is np.pad applied to the values, so this is ``spec.pad``'s
    padding exactly, for any pad width (wrap and symm repeat when it exceeds the image).
    """
    index = np.arange(size)
    if spec.boundary == "fill":
        return np.pad(index, (before, after), mode="constant", constant_values=-1)
    return np.pad(index, (before, after), mode=NUMPY_PAD_MODE[spec.boundary])


def _slab(
    plane: np.ndarray, rows: np.ndarray, cols: np.ndarray, fill: float, magnitude: bool
) -> np.ndarray:
    """The padded image's ``rows`` x ``cols`` (source indices, -1 for the fill) in float64."""
    slab = plane.take(np.maximum(rows, 0), axis=0).take(np.maximum(cols, 0), axis=1)
    slab = slab.astype(np.float64)
    slab[rows < 0, :] = fill
    slab[:, cols < 0] = fill
    return np.abs(slab) if magnitude else slab


def _blocks(
    image: np.ndarray, kernel: np.ndarray, spec: ConvSpec, *, magnitude: bool = False
) -> Iterator[tuple[tuple, np.ndarray]]:
    """(index into the output, float64 values) per block of output rows, for validated inputs.

    ``magnitude``: correlate ``|padded image|`` with ``|kernel|`` instead (``error_scale``).
    """
    k = spec.correlation_kernel(kernel.astype(np.float64))
    if magnitude:
        k = np.abs(k)
    kh, kw = k.shape
    pad = spec.padding(kernel.shape)
    *lead, h, w = image.shape
    rows = _source_index(spec, h, pad.top, pad.bottom)
    cols = _source_index(spec, w, pad.left, pad.right)
    oh, ow = len(rows) - kh + 1, len(cols) - kw + 1
    fill = fill_in(image.dtype, spec)
    step = max(1, BLOCK_ELEMENTS // ow)
    for index in np.ndindex(*lead):
        plane = image[index]
        for top in range(0, oh, step):
            n = min(step, oh - top)
            slab = _slab(plane, rows[top : top + n + kh - 1], cols, fill, magnitude)
            out = np.zeros((n, ow))
            product = np.empty_like(out)
            # Tap by tap, in the same order for every block: a NaN pixel spoils exactly the
            # outputs whose window holds it, as a direct convolution does.
            for i in range(kh):
                for j in range(kw):
                    out += np.multiply(k[i, j], slab[i : i + n, j : j + ow], out=product)
            yield (*index, slice(top, top + n)), out


def reference(image: np.ndarray, kernel: np.ndarray, spec: ConvSpec | None = None) -> np.ndarray:
    """The exact result of ``spec`` in float64, for an image (H, W) or batch (B, H, W)."""
    spec = ConvSpec() if spec is None else spec
    image, kernel = check_inputs(image, kernel, spec, copy=False)
    out = np.empty(spec.output_shape(image.shape, kernel.shape), dtype=np.float64)
    for index, values in _blocks(image, kernel, spec):
        out[index] = values
    return out


def error_scale(image: np.ndarray, kernel: np.ndarray, spec: ConvSpec | None = None) -> float:
    """max over outputs of ``sum |x * k|``: what rounding errors scale with (see agreement).

    Larger than ``max|reference|`` wherever terms cancel; non-finite inputs are ignored; 0.0
    when every term is zero.
    """
    spec = ConvSpec() if spec is None else spec
    image, kernel = check_inputs(image, kernel, spec, copy=False)
    largest = 0.0
    for _, sums in _blocks(image, kernel, spec, magnitude=True):
        finite = sums[np.isfinite(sums)]
        if finite.size:
            largest = max(largest, float(finite.max()))
    return largest
