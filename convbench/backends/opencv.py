"""OpenCV's ``cv2.filter2D`` (a cross-correlation) on the CPU.

filter2D returns the input's size with the window's ``anchor`` at the output pixel; its default
anchor is the kernel's centre ``K // 2``, one pixel off correlate 'same' for even kernels, so the
anchor is always given: the spec's padding before the image. Its borders: ``BORDER_CONSTANT``
pads with zeros and ``BORDER_REFLECT`` repeats the edge sample (convbench 'symm'); filter2D
refuses ``BORDER_WRAP``. So 'same' with zero fill or symm is native; wrap, a non-zero fill,
'full' and 'valid' are padded explicitly on the host, filtered, and cropped to the 'valid' part.
A batch (B, H, W) is filtered plane by plane into one output array.

filter2D picks its method by itself (``imgproc/src/filter.dispatch.cpp``, ``dftFilter2D``, the
same in OpenCV 4.x and 5.0): a kernel of 130 taps or more for float32 on a CPU with SSE3, of 50
taps or more otherwise (from 11x12 and 7x8 on), goes through a blocked DFT (``crossCorr``); a
smaller one through a direct sum (Intel IPP's, where OpenCV was built with it, for kernels up to
7x7). ``arithmetic`` says which, per case; the tests hold this rule against the library's own
results. The DFT runs in float64 for float32 images too and rounds once on output.
"""

from __future__ import annotations

import numpy as np

from convbench.backends.base import Backend, Plan
from convbench.backends.source import Source, pad_lines, per_plane
from convbench.spec import ConvSpec

# Kernel taps from which dftFilter2D takes over: float32 on a CPU with SSE3, and all else.
DFT_TAPS_FLOAT32_SSE3 = 130
DFT_TAPS = 50
# OpenCV's CPU feature id (core/cvdef.h), which its Python module does not export.
CV_CPU_SSE3 = 3


def _native_border(spec: ConvSpec) -> str | None:
    """The cv2 border constant's name that pads exactly as ``spec`` in 'same' mode, or None."""
    if spec.mode != "same":
        return None
    if spec.boundary == "fill" and spec.fillvalue == 0:
        return "BORDER_CONSTANT"
    return "BORDER_REFLECT" if spec.boundary == "symm" else None


class OpenCVBackend(Backend):
    library = "opencv"
    requires = ("cv2",)
    # filter2D's float kernels: CV_32F and CV_64F (it has no float16 or bfloat16 filter).
    dtypes = ("float32", "float64")
    layer_refusal = (
        "cv2.filter2D filters every pixel of one image with one kernel, with no stride, "
        "dilation or sum over channels"
    )

    def __init__(self, name: str, device: str = "cpu") -> None:
        if device != "cpu":
            raise ValueError(f"device={device!r} must be 'cpu' (cv2.filter2D runs on the CPU)")
        super().__init__(name, device)

    def dft_taps(self, dtype: str) -> int:
        """Kernel taps from which filter2D goes through a DFT in ``dtype`` on this CPU."""
        import cv2

        if dtype == "float32" and cv2.checkHardwareSupport(CV_CPU_SSE3):
            return DFT_TAPS_FLOAT32_SSE3
        return DFT_TAPS

    def arithmetic(
        self, dtype: str, image_shape: tuple[int, ...], kernel_shape: tuple[int, int]
    ) -> str:
        taps = kernel_shape[0] * kernel_shape[1]
        return "fft" if taps >= self.dft_taps(dtype) else "direct"

    def settings(self) -> dict[str, str]:
        import cv2

        return {
            "opencv": cv2.__version__,
            "opencv.threads": str(cv2.getNumThreads()),
            "opencv.ipp": str(cv2.ipp.useIPP()),
            "opencv.dft_from_taps": ", ".join(
                f"{dtype} {self.dft_taps(dtype)}" for dtype in self.dtypes
            ),
        }

    def _plan(self, image: np.ndarray, kernel: np.ndarray, spec: ConvSpec) -> Plan:
        import cv2

        weights = spec.correlation_kernel(kernel)
        out_h, out_w = spec.output_shape(image.shape, kernel.shape)[-2:]
        border = _native_border(spec)
        if border is not None:
            host, padding, top, left = image, "native", 0, 0
            pad = spec.padding(kernel.shape)
            anchor = (pad.left, pad.top)
        else:
            host, padding, border = spec.pad(image, kernel.shape), "explicit", "BORDER_CONSTANT"
            # Any anchor gives the 'valid' result, shifted by it; the centred one of correlate
            # 'same' is the one Intel IPP takes. Rows and columns filtered past the padded
            # image's edges are cropped away.
            kh, kw = kernel.shape
            top, left = (kh - 1) // 2, (kw - 1) // 2
            anchor = (left, top)
        border_type = getattr(cv2, border)
        rows, cols = slice(top, top + out_h), slice(left, left + out_w)

        def op(x: np.ndarray) -> np.ndarray:
            planes = x if x.ndim == 3 else x[None]
            out = np.empty_like(planes)
            for plane, into in zip(planes, out, strict=True):
                cv2.filter2D(plane, -1, weights, dst=into, anchor=anchor, borderType=border_type)
            out = out[:, rows, cols]
            return out if x.ndim == 3 else out[0]

        return Plan(host, np.ascontiguousarray, op, np.ascontiguousarray, padding)

    def _call_source(
        self,
        spec: ConvSpec,
        image_shape: tuple[int, ...],
        kernel_shape: tuple[int, int],
        dtype: str,
    ) -> str:
        code = Source(dtype).need("import cv2")
        code.inputs(spec, "correlate", "cv2.filter2D")
        border = _native_border(spec)
        crop = ""
        if border is not None:
            pad = spec.padding(kernel_shape)
            anchor = (pad.left, pad.top)
            if anchor != (kernel_shape[1] // 2, kernel_shape[0] // 2):
                code.add("# the anchor (x, y): filter2D's default, the kernel's centre K // 2,")
                code.add(f"# is one pixel off {spec.op} 'same' for an even kernel")
        else:
            border = "BORDER_CONSTANT"
            why = (
                "filter2D's borders are zeros (BORDER_CONSTANT) or symm (BORDER_REFLECT)"
                if spec.mode == "same"
                else "filter2D returns the input's size"
            )
            code.add(*pad_lines(spec, kernel_shape, len(image_shape) == 3, why, source="x"))
            kh, kw = kernel_shape
            top, left = (kh - 1) // 2, (kw - 1) // 2
            anchor = (left, top)
            out_h, out_w = spec.output_shape(image_shape, kernel_shape)[-2:]
            crop = f"[..., {top}:{top + out_h}, {left}:{left + out_w}]"
        call = f"cv2.filter2D({{}}, -1, k, anchor={anchor}, borderType=cv2.{border})"
        return code.add(f"out = {per_plane(call, len(image_shape) == 3)}{crop}").text()
