"""scipy.signal ``convolve2d`` / ``correlate2d``: the conventions convbench is defined by.

Each backend calls one scipy function. The other op is reached by rotating the kernel, which
is exact except for 'same' with an even kernel, where the two ops centre the window one pixel
apart; that case is padded explicitly and run 'valid'.
"""

from __future__ import annotations

import numpy as np

from convbench.backends.base import Backend, Plan
from convbench.spec import ConvSpec


class ScipySignalBackend(Backend):
    library = "scipy"
    requires = ("scipy",)
    # sigtools computes in float32, float64 and complex; float16 would be upcast silently.
    dtypes = ("float32", "float64")

    def __init__(self, name: str, function: str) -> None:
        super().__init__(name, "cpu")
        if function not in ("convolve2d", "correlate2d"):
            raise ValueError(f"function={function!r} must be 'convolve2d' or 'correlate2d'")
        self.function = function
        self.native_op = "convolve" if function == "convolve2d" else "correlate"

    def dtype_unsupported(self, dtype: str) -> str | None:
        if dtype in self.dtypes:
            return None
        return (
            f"scipy.signal.{self.function} computes only in float32, float64 and complex; "
            f"{dtype} would be silently upcast, so {self.name} does not accept it"
        )

    def settings(self) -> dict[str, str]:
        import scipy

        return {"scipy": scipy.__version__, "numpy": np.__version__}

    def _plan(self, image: np.ndarray, kernel: np.ndarray, spec: ConvSpec) -> Plan:
        import scipy.signal

        function = getattr(scipy.signal, self.function)
        even_same = spec.mode == "same" and any(k % 2 == 0 for k in kernel.shape)
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
        weights = np.ascontiguousarray(weights)

        def op(x: np.ndarray) -> np.ndarray:
            if x.ndim == 2:
                return function(x, weights, mode=mode, **kw)
            return np.stack([function(plane, weights, mode=mode, **kw) for plane in x])

        return Plan(host, upload=np.ascontiguousarray, op=op, download=np.asarray, padding=padding)
