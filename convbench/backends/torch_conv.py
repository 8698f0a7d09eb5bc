"""``torch.nn.functional.conv2d`` (a cross-correlation) on the CPU or a CUDA device.

Layout NCHW: an image is one sample with one channel, a batch (B, H, W) is B samples. Zero
padding is torch's own where it pads exactly as the spec (symmetric, or 'same' which puts the
extra row/column after, as correlate 'same' does); anything else is padded explicitly on the host.
"""

from __future__ import annotations

import warnings
from typing import ClassVar

import numpy as np

from convbench.backends.base import Backend, Plan, correlate_same, native_or_explicit, no_wait
from convbench.backends.source import (
    Source,
    kernel_source,
    literal,
    pad_lines,
    rotation_comment,
)
from convbench.spec import ConvSpec, Padding, numpy_dtype

# Image-sized buffers oneDNN's convolution of a one-channel image holds at its peak, at most.
ONEDNN_COPIES = 32
# Backend option -> the torch.backends.cudnn flag it sets.
CUDNN_FLAGS = {"tf32": "allow_tf32", "cudnn_benchmark": "benchmark"}


def _torch_padding(pad: Padding, kernel_shape: tuple[int, int]) -> tuple[int, int] | str | None:
    if pad.symmetric:
        return (pad.top, pad.left)
    if correlate_same(pad, kernel_shape):
        return "same"
    return None


class TorchBackend(Backend):
    library = "torch"
    requires = ("torch",)
    dtypes = ("float16", "bfloat16", "float32", "float64")
    # cuDNN flags: TF32 moves float32 errors from ~1e-7 to ~1e-4; benchmark mode autotunes the
    # algorithm per shape (it can be several times faster for large kernels).
    option_values: ClassVar[dict[str, tuple]] = dict.fromkeys(CUDNN_FLAGS, (True, False))

    def __init__(self, name: str, device: str = "cpu") -> None:
        if device not in ("cpu", "cuda"):
            raise ValueError(f"device={device!r} must be 'cpu' or 'cuda'")
        super().__init__(name, device)

    def _device_missing(self) -> str | None:
        import torch

        if self.device == "cuda" and not torch.cuda.is_available():
            build = (
                "a CPU-only build" if torch.version.cuda is None else f"CUDA {torch.version.cuda}"
            )
            return f"torch.cuda.is_available() is False (torch {torch.__version__}, {build})"
        return None

    def _chosen_flags(self) -> dict[str, bool]:
        """The cuDNN flags this backend's options set (torch.backends.cudnn attribute names)."""
        return {
            flag: self.options[option]
            for option, flag in CUDNN_FLAGS.items()
            if self.options[option] is not None
        }

    def _cudnn_flags(self) -> dict[str, bool]:
        """The cuDNN flags in force for this backend: its options, else torch's globals."""
        import torch

        cudnn = torch.backends.cudnn
        return {flag: getattr(cudnn, flag) for flag in CUDNN_FLAGS.values()} | self._chosen_flags()

    def settings(self) -> dict[str, str]:
        import torch

        found = {"torch": torch.__version__, "torch.threads": str(torch.get_num_threads())}
        if self.device == "cuda":
            flags = self._cudnn_flags()
            found.update(
                {
                    "gpu": torch.cuda.get_device_name(),
                    "cuda": str(torch.version.cuda),
                    "cudnn": str(torch.backends.cudnn.version()),
                    "cudnn.benchmark": str(flags["benchmark"]),
                    "cudnn.allow_tf32": str(flags["allow_tf32"]),
                }
            )
        return found | self.option_settings()

    def precision(self, dtype: str) -> str:
        if self.device == "cuda" and dtype == "float32":
            import torch

            # cuDNN convolutions use TF32 by default on Ampere (compute capability 8) and newer.
            tf32 = self._cudnn_flags()["allow_tf32"]
            if tf32 and torch.cuda.get_device_capability()[0] >= 8:
                return "tf32"
        return dtype

    def workspace_bytes(
        self,
        image_shape: tuple[int, ...],
        kernel_shape: tuple[int, int],
        dtype: str,
        spec: ConvSpec,
    ) -> int:
        """On the CPU, float32 and bfloat16 go to oneDNN, which reorders a one-channel tensor
        into 16-channel blocks (up to 32 image-sized buffers at the peak); float64 and float16
        go to slow_conv2d, which unfolds the image into an im2col buffer of kh * kw values per
        output. Measured peaks in docs/numerics.md."""
        import torch

        if self.device != "cpu":
            return super().workspace_bytes(image_shape, kernel_shape, dtype, spec)
        itemsize = numpy_dtype(dtype).itemsize
        padded = int(np.prod(spec.padded_shape(image_shape, kernel_shape))) * itemsize
        output = int(np.prod(spec.output_shape(image_shape, kernel_shape))) * itemsize
        if dtype in ("float32", "bfloat16") and torch.backends.mkldnn.is_available():
            return padded + ONEDNN_COPIES * max(padded, output)
        return padded + (kernel_shape[0] * kernel_shape[1] + 1) * output

    def _plan(self, image: np.ndarray, kernel: np.ndarray, spec: ConvSpec) -> Plan:
        import torch
        import torch.nn.functional as F

        native, pad = native_or_explicit(
            spec, kernel.shape, lambda p: _torch_padding(p, kernel.shape) is not None
        )
        padding = _torch_padding(pad, kernel.shape) if native else 0
        host = image if native else spec.pad(image, kernel.shape)
        dtype = getattr(torch, image.dtype.name)
        device = torch.device(self.device)

        def upload(x: np.ndarray) -> torch.Tensor:
            # numpy has no bfloat16 of its own; float32 holds every bfloat16 value exactly.
            t = torch.from_numpy(np.ascontiguousarray(x, dtype=_numpy_carrier(x.dtype)))
            t = t.to(device=device, dtype=dtype)
            return t[:, None] if t.ndim == 3 else t[None, None]

        weights = upload(spec.correlation_kernel(kernel))
        # Device-wide: waits for every stream, whichever one the op was queued on.
        wait = torch.cuda.synchronize if self.device == "cuda" else no_wait

        chosen = self._chosen_flags()
        cudnn = torch.backends.cudnn

        def op(x: torch.Tensor) -> torch.Tensor:
            # cuDNN flags are process-wide: re-assert this backend's choices on every call, so a
            # case prepared earlier in a sweep runs with its own settings.
            for flag, value in chosen.items():
                setattr(cudnn, flag, value)
            with warnings.catch_warnings():
                # torch warns that 'same' with an even kernel copies the input; that copy is
                # part of what a user of padding='same' pays, so it stays in the timing.
                warnings.filterwarnings("ignore", message="Using padding='same'")
                return F.conv2d(x, weights, padding=padding)

        out_dtype = image.dtype

        def download(y: torch.Tensor) -> np.ndarray:
            y = y[:, 0] if image.ndim == 3 else y[0, 0]
            if y.dtype == torch.bfloat16:
                y = y.float()
            return y.cpu().numpy().astype(out_dtype, copy=False)

        return Plan(host, upload, op, download, "native" if native else "explicit", wait)

    def _call_source(
        self,
        spec: ConvSpec,
        image_shape: tuple[int, ...],
        kernel_shape: tuple[int, int],
        dtype: str,
    ) -> str:
        code = Source(dtype).need("import torch", "import torch.nn.functional as F")
        for flag, value in self._chosen_flags().items():
            code.add(f"torch.backends.cudnn.{flag} = {value}")
        native, pad = native_or_explicit(
            spec, kernel_shape, lambda p: _torch_padding(p, kernel_shape) is not None
        )
        # numpy has no bfloat16 that torch reads; float32 holds every bfloat16 value exactly.
        carrier = "float32" if dtype == "bfloat16" else dtype
        code.add(*rotation_comment(spec, "correlate", "F.conv2d"))
        code.add(f"k = {code.cast(kernel_source(spec, 'correlate'), True, carrier)}")
        code.add(f"x = {code.cast('image', True, carrier)}")
        padding = ""
        if not native:
            why = (
                "conv2d pads with zeros only"
                if spec.boundary != "fill" or spec.fillvalue
                else "conv2d pads with zeros symmetrically or as correlate 'same' only"
            )
            code.add(*pad_lines(spec, kernel_shape, len(image_shape) == 3, why, source="x"))
        elif not pad.is_zero:
            padding = f", padding={literal(_torch_padding(pad, kernel_shape))}"
        move = [] if self.device == "cpu" else [f'device="{self.device}"']
        if dtype != carrier:
            move.append(f"dtype=torch.{dtype}")
        to = f".to({', '.join(move)})" if move else ""
        layout = "[:, None]" if len(image_shape) == 3 else "[None, None]"
        code.add(
            "# NCHW: one channel; the kernel OIHW",
            f"x = torch.from_numpy(x){layout}{to}",
            f"k = torch.from_numpy(k)[None, None]{to}",
            f"y = F.conv2d(x, k{padding})",
        )
        back = "[:, 0]" if len(image_shape) == 3 else "[0, 0]"
        if self.device != "cpu":
            back += ".cpu()"
        if dtype == "bfloat16":
            back += ".float().numpy().astype(ml_dtypes.bfloat16)"
        else:
            back += ".numpy()"
        return code.add(f"out = y{back}").text()


def _numpy_carrier(dtype: np.dtype) -> np.dtype:
    return np.dtype(np.float32) if dtype.name == "bfloat16" else dtype
