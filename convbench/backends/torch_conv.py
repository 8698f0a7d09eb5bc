"""``torch.nn.functional.conv2d`` (a cross-correlation) on the CPU or a CUDA device.

Layout NCHW: an image is one sample with one channel, a batch (B, H, W) is B samples, a layer's
input (N, C_in, H, W) is itself; the kernel is OIHW. Stride, dilation and groups are conv2d's own.
Zero padding is torch's own where it pads exactly as the spec (symmetric, or 'same' at stride 1,
which puts the extra row/column after, as correlate 'same' does); anything else is padded
explicitly on the host. The option ``memory_format='channels_last'`` stores image and kernel
NHWC in memory (done in ``prepare``), which picks other kernels in oneDNN and cuDNN.
"""

from __future__ import annotations

import warnings
from typing import ClassVar

import numpy as np

from convbench.backends.base import Backend, Plan, correlate_same, native_or_explicit, no_wait
from convbench.backends.source import Source, literal, pad_lines
from convbench.spec import ConvSpec, Padding, numpy_dtype, terms_per_output

# oneDNN reorders a tensor into blocks of 16 channels and holds two such copies at its peak, at
# most: 32 image-sized buffers for a one-channel image.
ONEDNN_BLOCK = 16
# Backend option -> the torch.backends.cudnn flag it sets.
CUDNN_FLAGS = {"tf32": "allow_tf32", "cudnn_benchmark": "benchmark"}
MEMORY_FORMATS = ("contiguous_format", "channels_last")  # torch.<name>


def _torch_padding(
    pad: Padding, window: tuple[int, ...], stride: tuple[int, int] = (1, 1)
) -> tuple[int, int] | str | None:
    """conv2d's ``padding`` for ``pad`` with a kernel covering ``window`` (the dilated kernel's
    spatial size), or None when conv2d cannot pad so: it pads symmetrically, or as 'same',
    which it allows at stride 1 only."""
    if pad.symmetric:
        return (pad.top, pad.left)
    if stride == (1, 1) and correlate_same(pad, window[-2:]):
        return "same"
    return None


def _blocked(channels: int) -> int:
    """Channels rounded up to oneDNN's blocks of 16."""
    return -(-channels // ONEDNN_BLOCK) * ONEDNN_BLOCK


class TorchBackend(Backend):
    library = "torch"
    requires = ("torch",)
    dtypes = ("float16", "bfloat16", "float32", "float64")
    # cuDNN flags: TF32 moves float32 errors from ~1e-7 to ~1e-4; benchmark mode autotunes the
    # algorithm per shape (it can be several times faster for large kernels).
    # memory_format: how image and kernel lie in memory (None: torch's default, contiguous NCHW).
    # conv2d has stride, dilation and groups; padding it cannot do is done in prepare.
    layer_refusal = None
    option_values: ClassVar[dict[str, tuple]] = dict.fromkeys(CUDNN_FLAGS, (True, False)) | {
        "memory_format": MEMORY_FORMATS
    }

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
        kernel_shape: tuple[int, ...],
        dtype: str,
        spec: ConvSpec,
    ) -> int:
        """On the CPU, float32 and bfloat16 go to oneDNN, which reorders a tensor into
        16-channel blocks (up to 32 image-sized buffers at the peak for one channel); float64
        and float16 go to slow_conv2d, which unfolds the image into an im2col buffer of
        C_in * kh * kw values per output position. Measured peaks in docs/numerics.md."""
        import torch

        if self.device != "cpu":
            return super().workspace_bytes(image_shape, kernel_shape, dtype, spec)
        itemsize = numpy_dtype(dtype).itemsize
        padded = int(np.prod(spec.padded_shape(image_shape, kernel_shape))) * itemsize
        output = int(np.prod(spec.output_shape(image_shape, kernel_shape))) * itemsize
        c_in, c_out = (image_shape[1], kernel_shape[0]) if len(kernel_shape) == 4 else (1, 1)
        if dtype in ("float32", "bfloat16") and torch.backends.mkldnn.is_available():
            blocked = max(padded * _blocked(c_in) // c_in, output * _blocked(c_out) // c_out)
            return padded + 2 * blocked
        im2col = output * terms_per_output(kernel_shape) * spec.groups // c_out
        return padded + output + im2col

    def _plan(self, image: np.ndarray, kernel: np.ndarray, spec: ConvSpec) -> Plan:
        import torch
        import torch.nn.functional as F

        window = spec.dilated_size(kernel.shape)
        native, pad = native_or_explicit(
            spec,
            kernel.shape,
            lambda p: _torch_padding(p, window, spec.stride) is not None,
            image.shape,
        )
        padding = _torch_padding(pad, window, spec.stride) if native else 0
        host = image if native else spec.pad(image, kernel.shape)
        dtype = getattr(torch, image.dtype.name)
        device = torch.device(self.device)
        memory_format = getattr(torch, self.options["memory_format"] or "contiguous_format")

        def upload(x: np.ndarray) -> torch.Tensor:
            # numpy has no bfloat16 of its own; float32 holds every bfloat16 value exactly.
            t = torch.from_numpy(np.ascontiguousarray(x, dtype=_numpy_carrier(x.dtype)))
            t = t.to(device=device, dtype=dtype)
            # NCHW: (H, W) is one sample of one channel, (B, H, W) B samples of one channel.
            t = {2: t[None, None], 3: t[:, None], 4: t}[t.ndim]
            return t.contiguous(memory_format=memory_format)

        weights = upload(spec.correlation_kernel(kernel))
        stride, dilation, groups = spec.stride, spec.dilation, spec.groups
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
                return F.conv2d(x, weights, None, stride, padding, dilation, groups)

        out_dtype = image.dtype

        def download(y: torch.Tensor) -> np.ndarray:
            y = {2: y[0, 0], 3: y[:, 0], 4: y}[image.ndim]
            if y.dtype == torch.bfloat16:
                y = y.float()
            # channels_last results are NHWC in memory: hand back a C-contiguous NCHW array.
            return np.ascontiguousarray(y.cpu().numpy(), dtype=out_dtype)

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
        code.inputs(spec, "correlate", "F.conv2d", contiguous=True, dtype=carrier)
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
