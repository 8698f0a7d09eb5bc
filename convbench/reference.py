"""The float64 reference: the canonical operation, computed directly on the CPU.

Deliberately independent of every backend's library: explicit padding, then a direct 'valid'
cross-correlation accumulated tap by tap in float64. The tests hold it against
``scipy.signal.convolve2d`` / ``correlate2d`` for every spec.
"""

from __future__ import annotations

import numpy as np

from convbench.spec import ConvSpec, check_inputs


def reference(image: np.ndarray, kernel: np.ndarray, spec: ConvSpec | None = None) -> np.ndarray:
    """The exact result of ``spec`` in float64, for an image (H, W) or batch (B, H, W)."""
    spec = ConvSpec() if spec is None else spec
    image, kernel = check_inputs(image, kernel, spec)
    x = spec.pad(image.astype(np.float64), kernel.shape)
    k = spec.correlation_kernel(kernel.astype(np.float64))
    out_shape = spec.output_shape(image.shape, kernel.shape)
    oh, ow = out_shape[-2:]
    out = np.zeros(out_shape, dtype=np.float64)
    # One pass per tap keeps memory at one output-sized buffer and makes a NaN pixel spoil
    # exactly the outputs whose window holds it, as a direct convolution does.
    for i in range(k.shape[0]):
        for j in range(k.shape[1]):
            out += k[i, j] * x[..., i : i + oh, j : j + ow]
    return out


def error_scale(image: np.ndarray, kernel: np.ndarray, spec: ConvSpec | None = None) -> float:
    """max over outputs of ``sum |x * k|``: what rounding errors scale with (see agreement).

    Larger than ``max|reference|`` wherever terms cancel; non-finite inputs are ignored.
    """
    spec = ConvSpec() if spec is None else spec
    image, kernel = check_inputs(image, kernel, spec)
    magnitude = ConvSpec(spec.op, spec.mode, spec.boundary, abs(spec.fillvalue))
    sums = reference(np.abs(image.astype(np.float64)), np.abs(kernel.astype(np.float64)), magnitude)
    finite = sums[np.isfinite(sums)]
    return float(finite.max()) if finite.size else 0.0
