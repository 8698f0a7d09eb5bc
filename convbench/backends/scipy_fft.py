"""scipy.signal ``fftconvolve`` / ``oaconvolve`` on the CPU, and CuPy's ``fftconvolve`` on the GPU.

Both functions compute a *convolution* through FFTs: ``fftconvolve`` transforms the whole
zero-padded image at once, ``oaconvolve`` (overlap-add) in blocks sized to the kernel. The
correlate op is the convolution with the kernel rotated 180 degrees, which is exact except for
'same' with an even kernel, where the two ops centre the window one pixel apart; that case, and
every boundary other than zero fill (wrap, symm, a non-zero fill), is padded explicitly on the host
and run 'valid'. A batch (B, H, W) is one call over the last two axes: each plane is transformed
on its own.

The arithmetic is 'fft' (``Backend.arithmetic``): a rounding error of the transforms lands on
every output, so errors grow with the whole image's magnitude and the transform's length, not
with the terms of one output (``convbench.agreement.fft_tolerance``), and one non-finite pixel
spoils every output of its transform (its plane for fftconvolve, its blocks for oaconvolve), not
only the windows that hold it. float32 stays float32:
``scipy.fft`` (pocketfft) transforms float32 as complex64, as cuFFT does; float64 as complex128.

``cupyx.scipy.signal`` has both functions with the same signatures and semantics on CuPy
arrays, so the GPU backend (cupy-fftconvolve) is this code with CuPy's upload, download and
device wait. It has not yet been run on a GPU.
"""

from __future__ import annotations

import importlib

import numpy as np

from convbench.backends.base import Backend, Plan
from convbench.backends.scipy_signal import (
    MODULES,
    SOURCE_IMPORTS,
    ScipySignalBackend,
    upload_source,
)
from convbench.backends.source import Source, pad_lines
from convbench.spec import ConvSpec

FUNCTIONS = ("fftconvolve", "oaconvolve")


class ScipyFFTBackend(Backend):
    library = "scipy"
    # scipy.fft transforms float16 in float32 and returns float32: it would be upcast silently.
    dtypes = ("float32", "float64")
    layer_refusal = (
        "fftconvolve and oaconvolve compute every output of a full convolution, with no stride, "
        "dilation or sum over channels"
    )

    # The same array modules and devices as scipy.signal's direct backends: their device check
    # and their transfers (CuPy's upload, download and device-wide wait) serve here unchanged.
    _device_missing = ScipySignalBackend._device_missing
    _transfers = ScipySignalBackend._transfers

    def __init__(self, name: str, function: str, device: str = "cpu") -> None:
        if function not in FUNCTIONS:
            raise ValueError(f"function={function!r} must be one of {list(FUNCTIONS)}")
        if device not in MODULES:
            raise ValueError(f"device={device!r} must be one of {list(MODULES)}")
        super().__init__(name, device)
        self.function = function
        self.signal_module, self.array_module, package = MODULES[device]
        self.library = package
        self.requires = (package,)

    def dtype_unsupported(self, dtype: str) -> str | None:
        if dtype in self.dtypes:
            return None
        return (
            f"{self.signal_module}.{self.function} transforms only float32 and float64; "
            f"{dtype} would be silently upcast, so {self.name} does not accept it"
        )

    def preimport(self) -> None:
        # As scipy_signal's: scipy.signal on the CPU; CuPy alone on the GPU, whose cupyx kernels
        # compile when first called, in the benchmark's own process.
        importlib.import_module(self.signal_module if self.device == "cpu" else self.array_module)

    def arithmetic(
        self, dtype: str, image_shape: tuple[int, ...], kernel_shape: tuple[int, int]
    ) -> str:
        return "fft"

    def settings(self) -> dict[str, str]:
        xp = importlib.import_module(self.array_module)
        found = {
            self.library: importlib.import_module(self.library).__version__,
            self.array_module: xp.__version__,
        }
        if self.device == "cpu":
            import scipy.fft

            # scipy.fft runs one thread unless told otherwise (scipy.fft.set_workers).
            found["scipy.fft.workers"] = str(scipy.fft.get_workers())
        else:
            found["cuda.runtime"] = str(xp.cuda.runtime.runtimeGetVersion())
            found["cufft"] = str(importlib.import_module("cupy.cuda.cufft").getVersion())
        return found

    def _plan(self, image: np.ndarray, kernel: np.ndarray, spec: ConvSpec) -> Plan:
        function = getattr(importlib.import_module(self.signal_module), self.function)
        upload, download, wait = self._transfers()
        even_same = spec.mode == "same" and any(k % 2 == 0 for k in kernel.shape)
        zero_fill = spec.boundary == "fill" and spec.fillvalue == 0
        if zero_fill and (spec.op == "convolve" or not even_same):
            host, mode, padding = image, spec.mode, "native"
        else:
            host, mode, padding = spec.pad(image, kernel.shape), "valid", "explicit"
        # The convolution kernel of either op: the correlation kernel rotated back.
        weights = spec.correlation_kernel(kernel)[::-1, ::-1]
        weights = upload(np.ascontiguousarray(weights if image.ndim == 2 else weights[None]))

        def op(x):
            return function(x, weights, mode=mode, axes=(-2, -1))

        return Plan(host, upload=upload, op=op, download=download, padding=padding, wait=wait)

    def _call_source(
        self,
        spec: ConvSpec,
        image_shape: tuple[int, ...],
        kernel_shape: tuple[int, int],
        dtype: str,
    ) -> str:
        code = Source(dtype).need(*SOURCE_IMPORTS[self.device])
        code.inputs(spec, "convolve", f"signal.{self.function}")
        even_same = spec.mode == "same" and any(k % 2 == 0 for k in kernel_shape)
        zero_fill = spec.boundary == "fill" and spec.fillvalue == 0
        mode = spec.mode
        if not zero_fill or (spec.op == "correlate" and even_same):
            why = (
                f"{self.function} pads with zeros only"
                if not zero_fill
                else f"for an even kernel correlate 'same' is centred one pixel apart from "
                f"{self.function}'s"
            )
            code.add(*pad_lines(spec, kernel_shape, len(image_shape) == 3, why, source="x"))
            mode = "valid"
        upload_source(code, self.device)
        # A batch (B, H, W): the kernel gets a leading axis, and the transform runs per plane.
        weights = "k[None]" if len(image_shape) == 3 else "k"
        result = f'signal.{self.function}(x, {weights}, mode="{mode}", axes=(-2, -1))'
        if self.device != "cpu":
            result = f"cp.asnumpy({result})"
        return code.add(f"out = {result}").text()
