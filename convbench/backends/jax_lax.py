"""``jax.lax.conv_general_dilated`` (a cross-correlation), compiled ahead of time in ``prepare``.

Layout NCHW / OIHW: an image is one sample of one channel, a batch (B, H, W) B samples, a layer's
input (N, C_in, H, W) itself; the option ``layout='NHWC'`` lays image and kernel out as NHWC /
HWIO instead (in ``prepare``), which XLA compiles differently. Stride, dilation and groups are
``window_strides``, ``rhs_dilation`` and ``feature_group_count``. JAX takes any per-side zero
padding, so only wrap, symm and non-zero fills are padded explicitly. float64 needs
``jax_enable_x64``, which ``prepare`` turns on (process-wide) when asked for float64 and records
in ``settings``. On GPUs JAX's default precision for float32
convolutions is TF32-level; the option ``configure(precision='highest')`` asks for full float32.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import ClassVar

import numpy as np

from convbench.backends.base import Backend, Plan, native_or_explicit
from convbench.backends.source import Source, pad_lines
from convbench.spec import ConvSpec

PRECISIONS = ("default", "high", "highest")
# Image layout -> the kernel's layout that goes with it.
LAYOUTS = {"NCHW": "OIHW", "NHWC": "HWIO"}

# Measured here with plain jax (jaxlib 0.10.2): a jitted float64 convolution with a small kernel
# ends the process with SIGSEGV from about a million pixels on.
CRASHING_JAXLIB = (0, 10)  # this release and older
CPU_FLOAT64_CRASH = (
    "jaxlib 0.10's XLA:CPU float64 convolution with kernels up to 6x6 crashes the process "
    "(SIGSEGV) on a million pixels or more: at random at 1024x1024 and 16x256x256, every time "
    "at 2048x2048"
)


def in_cpu_float64_crash(dtype: str, pixels: int, kernel_shape: tuple[int, int]) -> bool:
    """Whether a jax-cpu case lies where ``CPU_FLOAT64_CRASH`` says jaxlib 0.10 crashes."""
    return dtype == "float64" and max(kernel_shape) <= 6 and pixels >= 2**20


class JaxBackend(Backend):
    library = "jax"
    requires = ("jax",)
    dtypes = ("float16", "bfloat16", "float32", "float64")
    option_values: ClassVar[dict[str, tuple]] = {"precision": PRECISIONS, "layout": tuple(LAYOUTS)}
    # conv_general_dilated has window strides, kernel dilation and feature groups.
    layer_refusal = None

    def __init__(self, name: str, device: str = "cpu") -> None:
        if device not in ("cpu", "gpu"):
            raise ValueError(f"device={device!r} must be 'cpu' or 'gpu'")
        super().__init__(name, device)

    @property
    def jax_precision(self) -> str:
        return self.options["precision"] or "default"

    def _device_missing(self) -> str | None:
        import jax

        try:
            jax.devices(self.device)
        except RuntimeError as error:
            return f"JAX {jax.__version__} has no {self.device} device ({error})"
        return None

    def case_unsupported(
        self, image_shape: tuple[int, ...], kernel_shape: tuple[int, ...], dtype: str
    ) -> str | None:
        # Judged from the installed jaxlib's metadata, without importing it: the suites' grid
        # asks this of every case before any framework is loaded.
        pixels = int(np.prod(image_shape))
        kernel_shape = kernel_shape[-2:]
        if self.device != "cpu" or not in_cpu_float64_crash(dtype, pixels, kernel_shape):
            return None
        try:
            installed = version("jaxlib")
        except PackageNotFoundError:  # no jaxlib: the backend is unavailable, which says so
            return None
        if tuple(int(p) for p in installed.split(".")[:2]) > CRASHING_JAXLIB:
            return None
        return (
            f"{CPU_FLOAT64_CRASH} (installed: jaxlib {installed}); this case "
            f"has {pixels} pixels and a {kernel_shape[0]}x{kernel_shape[1]} kernel"
        )

    def settings(self) -> dict[str, str]:
        import jax

        device = jax.devices(self.device)[0]
        return {
            "jax": jax.__version__,
            "jax.device": str(device.device_kind),
            "jax.precision": self.jax_precision,
            "jax_enable_x64": str(jax.config.jax_enable_x64),
        } | self.option_settings()

    def precision(self, dtype: str) -> str:
        if self.device == "gpu" and dtype == "float32" and self.jax_precision == "default":
            return "tf32"
        return dtype

    def _plan(self, image: np.ndarray, kernel: np.ndarray, spec: ConvSpec) -> Plan:
        import jax
        from jax import lax

        if image.dtype == np.float64 and not jax.config.jax_enable_x64:
            jax.config.update("jax_enable_x64", True)
        native, pad = native_or_explicit(spec, kernel.shape, lambda p: True, image.shape)
        host = image if native else spec.pad(image, kernel.shape)
        device = jax.devices(self.device)[0]
        rank = image.ndim
        layout = self.options["layout"] or "NCHW"
        # NCHW -> the layout's axes, for the image (NHWC) and the kernel (OIHW -> HWIO).
        nchw = (0, 1, 2, 3)
        image_axes, kernel_axes = ((0, 2, 3, 1), (2, 3, 1, 0)) if layout == "NHWC" else (nchw, nchw)

        def upload(x: np.ndarray) -> jax.Array:
            # NCHW: (H, W) is one sample of one channel, (B, H, W) B samples of one channel.
            nchw = {2: x[None, None], 3: x[:, None], 4: x}[x.ndim]
            return jax.device_put(np.ascontiguousarray(nchw.transpose(image_axes)), device)

        oihw = spec.correlation_kernel(kernel)
        oihw = oihw if kernel.ndim == 4 else oihw[None, None]
        weights = jax.device_put(np.ascontiguousarray(oihw.transpose(kernel_axes)), device)
        precision = getattr(lax.Precision, self.jax_precision.upper())
        numbers = (layout, LAYOUTS[layout], layout)

        def conv(x: jax.Array) -> jax.Array:
            return lax.conv_general_dilated(
                x,
                weights,
                spec.stride,
                ((pad.top, pad.bottom), (pad.left, pad.right)),
                rhs_dilation=spec.dilation,
                dimension_numbers=numbers,
                feature_group_count=spec.groups,
                precision=precision,
            )

        x0 = upload(host)
        compiled = jax.jit(conv).lower(x0).compile()

        # JAX has no device-wide wait: remember the newest output and block on it. One device
        # runs a process's launches in order, so when the newest is ready, all are.
        newest: list[jax.Array] = []

        def op(x: jax.Array) -> jax.Array:
            newest[:] = [y := compiled(x)]
            return y

        def wait() -> None:
            while newest:
                newest.pop().block_until_ready()

        def download(y: jax.Array) -> np.ndarray:
            # np.array copies: a view of a JAX buffer is read-only, other backends' results are not.
            out = np.array(y)
            if layout == "NHWC":
                out = np.ascontiguousarray(out.transpose(0, 3, 1, 2))
            return {2: out[0, 0], 3: out[:, 0], 4: out}[rank]

        return Plan(host, upload, op, download, "native" if native else "explicit", wait)

    def _call_source(
        self,
        spec: ConvSpec,
        image_shape: tuple[int, ...],
        kernel_shape: tuple[int, int],
        dtype: str,
    ) -> str:
        code = Source(dtype).need("import jax", "from jax import lax")
        if dtype == "float64":
            code.add('jax.config.update("jax_enable_x64", True)  # float64 needs it (process-wide)')
        native, pad = native_or_explicit(spec, kernel_shape, lambda p: True)
        code.inputs(spec, "correlate", "lax.conv_general_dilated")
        if not native:
            why = "lax.conv_general_dilated pads with zeros only"
            code.add(*pad_lines(spec, kernel_shape, len(image_shape) == 3, why, source="x"))
        batched = len(image_shape) == 3
        precision = ""
        if self.jax_precision != "default":
            precision = f", precision=lax.Precision.{self.jax_precision.upper()}"
        padding = ((pad.top, pad.bottom), (pad.left, pad.right))
        code.add(
            f'device = jax.devices("{self.device}")[0]',
            "# NCHW with one channel; the kernel OIHW",
            f"x = jax.device_put({'x[:, None]' if batched else 'x[None, None]'}, device)",
            "k = jax.device_put(k[None, None], device)",
            f"y = lax.conv_general_dilated(x, k, (1, 1), {padding}{precision})",
        )
        return code.add(f"out = np.array(y)[{':' if batched else '0'}, 0]").text()
