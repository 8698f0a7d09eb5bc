"""scipy.signal ``convolve2d`` / ``correlate2d`` on the CPU, and CuPy's copies of them on the GPU.

These functions define the conventions convbench holds every backend to. Each backend calls one
function. The other op is reached by rotating the kernel, which is exact except for 'same' with
an even kernel, where the two ops centre the window one pixel apart; that case is padded
explicitly and run 'valid'.

``cupyx.scipy.signal`` has the same signatures and semantics on CuPy arrays, so the GPU backend
is this very code with another array module, an upload, a download and a device wait.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import numpy as np

from convbench.backends.base import Backend, Plan, no_wait
from convbench.backends.source import Source, pad_lines, per_plane
from convbench.spec import ConvSpec

FUNCTIONS = ("convolve2d", "correlate2d")
# device -> (signal module, array module, what to install)
MODULES = {"cpu": ("scipy.signal", "numpy", "scipy"), "gpu": ("cupyx.scipy.signal", "cupy", "cupy")}


class ScipySignalBackend(Backend):
    library = "scipy"
    # sigtools computes in float32, float64 and complex; float16 would be upcast silently.
    dtypes = ("float32", "float64")
    layer_refusal = (
        "convolve2d and correlate2d take one 2-D image and kernel, with no stride, dilation or "
        "channels"
    )

    def __init__(self, name: str, function: str, device: str = "cpu") -> None:
        if function not in FUNCTIONS:
            raise ValueError(f"function={function!r} must be one of {list(FUNCTIONS)}")
        if device not in MODULES:
            raise ValueError(f"device={device!r} must be one of {list(MODULES)}")
        super().__init__(name, device)
        self.function = function
        self.native_op = "convolve" if function == "convolve2d" else "correlate"
        self.signal_module, self.array_module, package = MODULES[device]
        self.library = package
        self.requires = (package,)
        # scipy.signal's convolve2d walks every tap of the kernel for every output in C (several
        # nanoseconds per multiply-add); CuPy's copy runs as a GPU kernel.
        self.slow_method = "scipy.signal's direct loop" if device == "cpu" else None

    def dtype_unsupported(self, dtype: str) -> str | None:
        if dtype in self.dtypes:
            return None
        return (
            f"{self.signal_module}.{self.function} computes only in float32, float64 and complex; "
            f"{dtype} would be silently upcast, so {self.name} does not accept it"
        )

    def _device_missing(self) -> str | None:
        if self.device == "cpu":
            return None
        import cupy

        try:
            count = cupy.cuda.runtime.getDeviceCount()
        except cupy.cuda.runtime.CUDARuntimeError as error:
            return f"CuPy {cupy.__version__} finds no CUDA device ({error})"
        return None if count else f"CuPy {cupy.__version__} finds no CUDA device"

    def preimport(self) -> None:
        # scipy.signal's own import takes 1-2 s. On the GPU, CuPy alone: cupyx compiles and loads
        # its kernels when first called, in the benchmark's own process.
        module = self.signal_module if self.device == "cpu" else self.array_module
        importlib.import_module(module)

    def settings(self) -> dict[str, str]:
        xp = importlib.import_module(self.array_module)
        found = {self.library: importlib.import_module(self.library).__version__}
        found[self.array_module] = xp.__version__
        if self.device == "gpu":
            found["cuda.runtime"] = str(xp.cuda.runtime.runtimeGetVersion())
        return found

    def _transfers(self) -> tuple[Callable, Callable, Callable[[], None]]:
        """upload, download and wait-for-the-device for this device."""
        if self.device == "cpu":
            return np.ascontiguousarray, np.asarray, no_wait
        import cupy

        # Device-wide: CuPy may run on a non-default stream, and a wait on the wrong stream
        # returns before the work is done.
        return cupy.asarray, cupy.asnumpy, cupy.cuda.Device().synchronize

    def _plan(self, image: np.ndarray, kernel: np.ndarray, spec: ConvSpec) -> Plan:
        function = getattr(importlib.import_module(self.signal_module), self.function)
        stack = importlib.import_module(self.array_module).stack
        upload, download, wait = self._transfers()
        even_same = spec.mode == "same" and any(k % 2 == 0 for k in kernel.shape)
        kw: dict[str, Any]
        if spec.op == self.native_op or not even_same:
            host, mode, padding = image, spec.mode, "native"
            kw = {"boundary": spec.boundary, "fillvalue": spec.fillvalue}
            weights = kernel if spec.op == self.native_op else kernel[::-1, ::-1]
        else:
            host, mode, padding, kw = spec.pad(image, kernel.shape), "valid", "explicit", {}
            # A 'valid' correlation with the correlation kernel, written in this function's op.
            weights = spec.correlation_kernel(kernel)
            if self.native_op == "convolve":
                weights = weights[::-1, ::-1]
        weights = upload(weights.copy())

        def op(x: Any) -> Any:
            if x.ndim == 2:
                return function(x, weights, mode=mode, **kw)
            return stack([function(plane, weights, mode=mode, **kw) for plane in x])

        return Plan(host, upload=upload, op=op, download=download, padding=padding, wait=wait)

    def _call_source(
        self,
        spec: ConvSpec,
        image_shape: tuple[int, ...],
        kernel_shape: tuple[int, int],
        dtype: str,
    ) -> str:
        code = Source(dtype).need(*SOURCE_IMPORTS[self.device])
        code.inputs(spec, self.native_op, f"signal.{self.function}")
        even_same = spec.mode == "same" and any(k % 2 == 0 for k in kernel_shape)
        if spec.op == self.native_op or not even_same:
            fill = f", fillvalue={spec.fillvalue!r}" if spec.boundary == "fill" else ""
            arguments = f'mode="{spec.mode}", boundary="{spec.boundary}"{fill}'
        else:
            why = (
                f"for an even kernel {spec.op} 'same' is centred one pixel apart from "
                f"{self.function}'s"
            )
            code.add(*pad_lines(spec, kernel_shape, len(image_shape) == 3, why, source="x"))
            arguments = 'mode="valid"'
        upload_source(code, self.device)
        call = f"signal.{self.function}({{}}, k, {arguments})"
        return result_source(code, call, len(image_shape) == 3, self.device).text()


# What the pasted source of each device imports.
SOURCE_IMPORTS = {
    "cpu": ("from scipy import signal",),
    "gpu": ("import cupy as cp", "from cupyx.scipy import signal"),
}


def upload_source(code: Source, device: str) -> Source:
    """Put ``x`` and ``k`` on the GPU (CuPy), or leave them where they are on the CPU."""
    if device == "cpu":
        return code
    return code.add("x, k = cp.asarray(x), cp.asarray(k)")


def result_source(code: Source, call: str, batched: bool, device: str) -> Source:
    """``out = call(x)``, plane by plane for a batch (B, H, W) as the backend runs it, brought
    back to the host from a GPU. ``call`` has one ``{}`` where the image goes."""
    result = per_plane(call, batched, "np" if device == "cpu" else "cp")
    return code.add(f"out = {result}" if device == "cpu" else f"out = cp.asnumpy({result})")
