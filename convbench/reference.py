"""The float64 reference: the canonical operation, computed directly on the CPU.

Deliberately independent of every backend's library: explicit padding, then a direct 'valid'
cross-correlation at the spec's stride and dilation, accumulated tap by tap in float64. The tests
hold it against ``scipy.signal.convolve2d`` / ``correlate2d`` for every plain spec, and against a
literal loop over the definition for layers.

The inputs are those a backend computes with: the image in its own dtype, the kernel and the
fill value rounded to it (``check_inputs``); only the arithmetic is float64.

An image (H, W) or a batch (B, H, W) is computed as a layer with one channel, so one loop serves
both: per image, per block of output rows, per tap, each group's input channels are summed
(``np.matmul``, every group at once) into each of its output channels.

Memory: the output is computed in blocks of rows (about ``BLOCK_ELEMENTS`` outputs, or slab
values, each), each from a float64 slab of the padded image gathered for it, so beyond the float64
result the reference needs a few MiB whatever the image size; no padded or float64 copy of the
whole image is made.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from convbench.spec import NUMPY_PAD_MODE, ConvSpec, check_inputs, fill_in

# Outputs (or slab values) per block: a 512 KiB float64 block, small enough for the cache, large
# enough that the Python loop over taps costs little next to the arithmetic.
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
    planes: np.ndarray, rows: np.ndarray, cols: np.ndarray, fill: float, magnitude: bool
) -> np.ndarray:
    """The padded ``planes``' (C, H, W) ``rows`` x ``cols`` (source indices, -1 for the fill)
    in float64."""
    slab = planes.take(np.maximum(rows, 0), axis=1).take(np.maximum(cols, 0), axis=2)
    slab = slab.astype(np.float64)
    slab[:, rows < 0, :] = fill
    slab[:, :, cols < 0] = fill
    return np.abs(slab) if magnitude else slab


def _as_layer(shape: tuple[int, ...], kernel_shape: tuple[int, ...]) -> tuple[tuple, tuple]:
    """The image and kernel shapes as a layer's: (H, W) and (B, H, W) have one channel."""
    if len(kernel_shape) == 4:
        return shape, kernel_shape
    return (int(np.prod(shape[:-2])), 1, *shape[-2:]), (1, 1, *kernel_shape)


def block_rows(image_shape: tuple[int, ...], kernel_shape: tuple[int, ...], spec: ConvSpec) -> int:
    """Output rows per block: about ``BLOCK_ELEMENTS`` outputs (all channels), and as many values
    of the slab of the padded image (``convbench.memory`` counts the slab)."""
    image_shape, kernel_shape = _as_layer(image_shape, kernel_shape)
    width = spec.output_shape(image_shape, kernel_shape)[-1]
    padded_width = spec.padded_shape(image_shape, kernel_shape)[-1]
    per_row = max(kernel_shape[0] * width, image_shape[1] * spec.stride[0] * padded_width)
    return max(1, BLOCK_ELEMENTS // per_row)


def slab_elements(
    image_shape: tuple[int, ...], kernel_shape: tuple[int, ...], spec: ConvSpec
) -> int:
    """Values in one block's slab of the padded image (at most; float64 each)."""
    rows = block_rows(image_shape, kernel_shape, spec)
    image_shape, kernel_shape = _as_layer(image_shape, kernel_shape)
    padded_width = spec.padded_shape(image_shape, kernel_shape)[-1]
    height = (rows - 1) * spec.stride[0] + spec.dilated_size(kernel_shape)[0]
    return image_shape[1] * height * padded_width


def _blocks(
    image: np.ndarray, kernel: np.ndarray, spec: ConvSpec, *, magnitude: bool = False
) -> Iterator[tuple[tuple, np.ndarray]]:
    """(index into the output as a layer's (N, C_out, H_out, W_out), float64 values) per block
    of output rows, for validated inputs.

    ``magnitude``: correlate ``|padded image|`` with ``|kernel|`` instead (``error_scale``).
    """
    layer_shape, kernel_shape = _as_layer(image.shape, kernel.shape)
    planes = image.reshape(layer_shape)
    k = spec.correlation_kernel(kernel.astype(np.float64)).reshape(kernel_shape)
    if magnitude:
        k = np.abs(k)
    c_out, per_group, kh, kw = kernel_shape
    groups = spec.groups
    # (group, its output channels, its input channels, kh, kw): every group in one product.
    weights = k.reshape(groups, c_out // groups, per_group, kh, kw)
    (sh, sw), (dh, dw) = spec.stride, spec.dilation
    pad = spec.padding(kernel_shape, layer_shape)
    h, w = layer_shape[-2:]
    rows = _source_index(spec, h, pad.top, pad.bottom)
    cols = _source_index(spec, w, pad.left, pad.right)
    oh, ow = spec.output_shape(layer_shape, kernel_shape)[-2:]
    fill = fill_in(image.dtype, spec)
    step = block_rows(layer_shape, kernel_shape, spec)
    span_h, _ = spec.dilated_size(kernel_shape)
    for n in range(layer_shape[0]):
        for top in range(0, oh, step):
            count = min(step, oh - top)
            first = top * sh
            needed = rows[first : first + (count - 1) * sh + span_h]
            slab = _slab(planes[n], needed, cols, fill, magnitude)
            out = np.zeros((groups, c_out // groups, count, ow))
            # Tap by tap, in the same order for every block: a NaN pixel spoils exactly the
            # outputs whose window holds it, as a direct convolution does.
            for i in range(kh):
                for j in range(kw):
                    window = slab[
                        :,
                        i * dh : i * dh + (count - 1) * sh + 1 : sh,
                        j * dw : j * dw + (ow - 1) * sw + 1 : sw,
                    ].reshape(groups, per_group, count, ow)
                    if per_group == 1:
                        # One input channel per group (every image and batch, depthwise
                        # layers): a product per output channel, as fast as numpy goes; matmul
                        # would first copy the strided window into a matrix (30x slower).
                        out += weights[:, :, 0, i, j, None, None] * window
                    else:
                        tap = np.matmul(
                            weights[:, :, :, i, j], window.reshape(groups, per_group, -1)
                        )
                        out += tap.reshape(out.shape)
            yield (n, slice(None), slice(top, top + count)), out.reshape(c_out, count, ow)


def reference(image: np.ndarray, kernel: np.ndarray, spec: ConvSpec | None = None) -> np.ndarray:
    """The exact result of ``spec`` in float64, for an image (H, W), a batch (B, H, W) or a
    layer's input (N, C_in, H, W) with its kernel (C_out, C_in // groups, kh, kw)."""
    spec = ConvSpec() if spec is None else spec
    image, kernel = check_inputs(image, kernel, spec, copy=False)
    out = np.empty(spec.output_shape(image.shape, kernel.shape), dtype=np.float64)
    layer = out.reshape(_as_layer(out.shape, kernel.shape)[0])
    for index, values in _blocks(image, kernel, spec):
        layer[index] = values
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
