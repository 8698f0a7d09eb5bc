"""``scipy.ndimage.correlate`` on the CPU: a direct sum per output, same-sized output.

ndimage names the boundaries differently: its 'reflect' repeats the edge sample (numpy
'symmetric', convbench 'symm'), 'grid-wrap' is periodic (for filters a synonym of its 'wrap'),
'constant' extends with ``cval``; each is exact for any kernel size, the kernel larger than the
image included. The window sits at ``K // 2 + origin`` along an axis of kernel size K, so the
spec's padding before the image, ``pad``, is ``origin = pad - K // 2``: -1 for the even kernels of
correlate 'same', 0 otherwise. ndimage.convolve is correlate with the kernel rotated, so one
function serves both ops.

ndimage always returns the input's size, so 'same' is native and 'full' / 'valid' are padded
explicitly on the host, correlated with the window at the kernel's first tap, and cropped.
A batch (B, H, W) is one call with a (1, kh, kw) kernel, which never mixes planes.

ndimage accumulates in float64 whatever the input's dtype and rounds once to float32 on output.
"""

from __future__ import annotations

import numpy as np

from convbench.backends.base import Backend, Plan
from convbench.backends.source import Source, pad_lines
from convbench.spec import ConvSpec

NDIMAGE_MODES = {"fill": "constant", "wrap": "grid-wrap", "symm": "reflect"}


class ScipyNdimageBackend(Backend):
    library = "scipy"
    requires = ("scipy",)
    # ndimage's filters take float32 and float64; float16 arrays are refused by its C code.
    dtypes = ("float32", "float64")
    # A C loop over the kernel's taps for every output, accumulating in float64: 2-3 ns per
    # multiply-add in float32 and float64 alike on a 2-core x86 CPU (scipy 1.17).
    slow_method = "scipy.ndimage's direct loop"
    layer_refusal = (
        "ndimage.correlate filters every pixel of one image with one kernel, with no stride, "
        "dilation or sum over channels"
    )

    def settings(self) -> dict[str, str]:
        import scipy

        return {"scipy": scipy.__version__, "numpy": np.__version__}

    def preimport(self) -> None:
        import scipy.ndimage  # noqa: F401

    def _plan(self, image: np.ndarray, kernel: np.ndarray, spec: ConvSpec) -> Plan:
        from scipy import ndimage

        weights = spec.correlation_kernel(kernel)
        pad = spec.padding(kernel.shape)
        kh, kw = kernel.shape
        if spec.mode == "same":
            host, padding = image, "native"
            origin = (pad.top - kh // 2, pad.left - kw // 2)
            mode, cval = NDIMAGE_MODES[spec.boundary], spec.fillvalue
        else:
            host, padding = spec.pad(image, kernel.shape), "explicit"
            # The window starts at the output's own pixel: out[i] = sum_j k[j] * x[i + j], so
            # the first rows and columns are the 'valid' result and the rest is cropped.
            origin, mode, cval = (-(kh // 2), -(kw // 2)), "constant", 0.0
        out_h, out_w = spec.output_shape(image.shape, kernel.shape)[-2:]
        if image.ndim == 3:
            weights, origin = weights[None], (0, *origin)

        def op(x: np.ndarray) -> np.ndarray:
            out = ndimage.correlate(x, weights, mode=mode, cval=cval, origin=origin)
            return out[..., :out_h, :out_w]

        return Plan(host, np.ascontiguousarray, op, np.ascontiguousarray, padding)

    def _call_source(
        self,
        spec: ConvSpec,
        image_shape: tuple[int, ...],
        kernel_shape: tuple[int, int],
        dtype: str,
    ) -> str:
        code = Source(dtype).need("from scipy import ndimage")
        code.inputs(spec, "correlate", "ndimage.correlate")
        pad = spec.padding(kernel_shape)
        kh, kw = kernel_shape
        batched = len(image_shape) == 3
        if spec.mode == "same":
            origin = (pad.top - kh // 2, pad.left - kw // 2)
            mode, cval = NDIMAGE_MODES[spec.boundary], spec.fillvalue
            if origin != (0, 0):
                code.add("# ndimage centres the window at K // 2; correlate 'same' at (K - 1) // 2")
            crop = ""
        else:
            why = "scipy.ndimage returns the input's size"
            code.add(*pad_lines(spec, kernel_shape, batched, why, source="x"))
            code.add("# the window starts at the output's own pixel; the tail is cropped")
            origin, mode, cval = (-(kh // 2), -(kw // 2)), "constant", 0.0
            out_h, out_w = spec.output_shape(image_shape, kernel_shape)[-2:]
            crop = f"[..., :{out_h}, :{out_w}]"
        weights = "k"
        if batched:
            # A (1, kh, kw) kernel never mixes the planes of a batch.
            weights, origin = "k[None]", (0, *origin)
        call = f'ndimage.correlate(x, {weights}, mode="{mode}", cval={cval!r}, origin={origin})'
        return code.add(f"out = {call}{crop}").text()
