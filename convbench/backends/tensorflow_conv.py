"""``tf.nn.conv2d`` (a cross-correlation) pinned to the CPU or a GPU.

Both TensorFlow backends run the same code; only the device string differs. Layout NHWC, kernel
HWIO: an image or a batch has one channel; a layer's input (N, C_in, H, W) and kernel (C_out,
C_in // groups, kh, kw) are transposed in ``prepare`` (and the result back to NCHW on download).
Stride, dilation and groups are conv2d's own (a kernel with fewer input channels than the image
is a grouped convolution). Zero padding is always TensorFlow's own: 'VALID', 'SAME' (which puts
the extra row/column after, as correlate 'same' does, at any stride) or an explicit per-side list.

TensorFlow places ops softly: asked for a GPU it may quietly run on the CPU. ``prepare`` checks
where the output landed and refuses a result from the wrong device.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import sys
import tempfile
from collections.abc import Iterator
from typing import ClassVar

import numpy as np

from convbench.backends.base import Backend, Plan, correlate_same, native_or_explicit, no_wait
from convbench.backends.source import Source, literal, pad_lines
from convbench.spec import ConvSpec, Padding

TF_DEVICES = {"cpu": "/CPU:0", "gpu": "/GPU:0"}
DATA_FORMATS = ("NHWC", "NCHW")
# TensorFlow's CPU Conv2D takes NCHW through oneDNN only; other dtypes fail with
# "The Conv2D op currently only supports the NHWC tensor format on the CPU".
CPU_NCHW_DTYPES = ("float32", "bfloat16")


# TensorFlow's C++ log is noise for a harness (oneDNN notices, CPU-feature hints and, on a machine
# without a GPU, "failed call to cuInit ... UNKNOWN ERROR (303)" and "Could not find cuda
# drivers"): an error that matters reaches Python as an exception. Unless the user chose a level,
# only fatal messages are let through.
LOG_LEVEL_ENV = "TF_CPP_MIN_LOG_LEVEL"
QUIET_LEVEL = 3
# A line of TensorFlow's C++ log: severity (Info, Warning, Error, Fatal), date, time (before
# absl is initialised, seconds since 1970 in place of a clock time), thread, source line.
LOG_LINE = re.compile(rb"([IWEF])\d{4} [\d:.]+ +\d+ \S+:\d+\] ")
SEVERITIES = b"IWEF"
# What absl prints before its first message when the program has not initialised its logging.
ABSL_PREAMBLE = b"WARNING: All log messages before absl::InitializeLog() is called"


def import_tensorflow():
    """Import TensorFlow, after torch when torch is installed, with its C++ log quieted (unless
    ``TF_CPP_MIN_LOG_LEVEL`` is set).

    Both wheels bundle native libraries (OpenMP, protobuf); loading TensorFlow's first has
    crashed or hung a later torch import in the same process, the other order is safe.
    """
    if importlib.util.find_spec("torch") is not None:
        import torch  # noqa: F401

    if "tensorflow" in sys.modules or LOG_LEVEL_ENV in os.environ:
        import tensorflow as tf

        return tf
    os.environ[LOG_LEVEL_ENV] = str(QUIET_LEVEL)
    with _start_up_log_filtered(QUIET_LEVEL):
        import tensorflow as tf

    return tf


def log_lines_kept(text: bytes, level: int) -> bytes:
    """The lines of ``text`` (standard error) that ``TF_CPP_MIN_LOG_LEVEL=level`` lets through:
    all but TensorFlow's log lines of lower severity and, from level 1, absl's preamble."""
    kept = []
    for line in text.splitlines(keepends=True):
        logged = LOG_LINE.match(line)
        if logged and SEVERITIES.index(logged[1]) < level:
            continue
        if level >= 1 and line.startswith(ABSL_PREAMBLE):
            continue
        kept.append(line)
    return b"".join(kept)


@contextlib.contextmanager
def _start_up_log_filtered(level: int) -> Iterator[None]:
    """Hold back standard error (file descriptor 2) while TensorFlow loads, then pass on what
    ``level`` lets through. Its shared libraries log as they load, before absl's logging is
    initialised, and absl writes such lines to standard error whatever the level says."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            os.write(2, log_lines_kept(held.read(), level))


def tf_padding(
    pad: Padding,
    kernel_shape: tuple[int, ...],
    same: Padding | None = None,
    data_format: str = "NHWC",
) -> str | list[list[int]]:
    """The ``padding`` argument of tf.nn.conv2d that pads exactly ``pad`` with zeros.
    ``same`` is what 'SAME' pads for the case; without it, 'SAME' at stride 1 and dilation 1
    (``correlate_same`` of the kernel)."""
    if pad.is_zero:
        return "VALID"
    if correlate_same(pad, kernel_shape) if same is None else pad == same:
        return "SAME"
    spatial = [[pad.top, pad.bottom], [pad.left, pad.right]]
    if data_format == "NCHW":
        return [[0, 0], [0, 0], *spatial]
    return [[0, 0], *spatial, [0, 0]]


def cpu_bfloat16_stride_defect(
    spec: ConvSpec, image_shape: tuple[int, ...], kernel_shape: tuple[int, ...], dtype: str
) -> str | None:
    """Why TensorFlow's CPU Conv2D cannot compute this case, or None: in bfloat16, an axis with
    a stride above 1 and a single output gets wrong values (often all of them; zeros or
    values near 1e38), whatever the padding. Measured in docs/findings.md."""
    if dtype != "bfloat16":
        return None
    out = spec.output_shape(image_shape, kernel_shape)[-2:]
    axes = [
        n for n, size, step in zip("HW", out, spec.stride, strict=True) if size == 1 and step > 1
    ]
    if not axes:
        return None
    return (
        "TensorFlow's CPU Conv2D in bfloat16 computes wrong values where an axis with a stride "
        f"above 1 has a single output; this case has one output on {' and '.join(axes)} at "
        f"stride {spec.stride}"
    )


def cpu_float32_column_defect(
    spec: ConvSpec, image_shape: tuple[int, ...], kernel_shape: tuple[int, ...], dtype: str
) -> str | None:
    """Why TensorFlow's CPU Conv2D cannot compute this case, or None: in float32, a batch of more
    than one sample with one input channel, stride 1 on H and above 1 on W, gets wrong values
    (values near 1e35, memory never written) where it has a single output column but more than
    one row, from a kernel more than one column wide at dilation 1 on W. Measured in
    docs/findings.md."""
    if dtype != "float32":
        return None
    samples = 1 if len(image_shape) == 2 else image_shape[0]
    channels = image_shape[1] if len(image_shape) == 4 else 1
    out_h, out_w = spec.output_shape(image_shape, kernel_shape)[-2:]
    (step_h, step_w), kernel_w = spec.stride, kernel_shape[-1]
    if not (
        samples > 1
        and channels == 1
        and step_h == 1 < step_w
        and out_w == 1 < out_h
        and kernel_w > 1
        and spec.dilation[1] == 1
    ):
        return None
    return (
        "TensorFlow's CPU Conv2D in float32 computes wrong values for a batch of one input "
        "channel whose W axis, strided and undilated, has a single output while H, at stride 1, "
        f"has more; this case has {samples} samples, {out_h} rows and 1 column out at stride "
        f"{spec.stride}"
    )


def cpu_conv2d_defect(
    spec: ConvSpec, image_shape: tuple[int, ...], kernel_shape: tuple[int, ...], dtype: str
) -> str | None:
    """Why TensorFlow's CPU Conv2D computes this case wrongly, or None (docs/findings.md)."""
    return cpu_bfloat16_stride_defect(
        spec, image_shape, kernel_shape, dtype
    ) or cpu_float32_column_defect(spec, image_shape, kernel_shape, dtype)


def check_placement(wanted: str, placed: str) -> None:
    """Raise when TensorFlow ran an op somewhere other than ``wanted`` ('/GPU:0', '/CPU:0')."""
    kind, index = wanted.strip("/").split(":")
    if not placed.upper().endswith(f"{kind}:{index}"):
        raise RuntimeError(
            f"TensorFlow placed conv2d on {placed!r}, not {wanted!r}; "
            "soft device placement fell back, so this result would mislabel the device"
        )


class TensorFlowBackend(Backend):
    library = "tensorflow"
    requires = ("tensorflow",)
    dtypes = ("float16", "bfloat16", "float32", "float64")
    # TensorFlow runs float32 convolutions in TF32 on Ampere and newer GPUs unless told not to.
    # data_format: the image's layout (None: TensorFlow's default, NHWC); the kernel is HWIO.
    option_values: ClassVar[dict[str, tuple]] = {
        "tf32": (True, False),
        "data_format": DATA_FORMATS,
    }
    # conv2d has strides, dilations and groups; padding it cannot do is done in prepare.
    layer_refusal = None

    def __init__(self, name: str, device: str = "cpu") -> None:
        if device not in TF_DEVICES:
            raise ValueError(f"device={device!r} must be one of {list(TF_DEVICES)}")
        super().__init__(name, device)
        self.tf_device = TF_DEVICES[device]

    def preimport(self) -> None:
        import_tensorflow()

    def _device_missing(self) -> str | None:
        tf = import_tensorflow()

        if self.device == "gpu" and not tf.config.list_physical_devices("GPU"):
            return (
                f"TensorFlow {tf.__version__} sees no GPU "
                f"(built with CUDA: {tf.test.is_built_with_cuda()})"
            )
        return None

    def layer_unsupported(
        self,
        spec: ConvSpec,
        image_shape: tuple[int, ...],
        kernel_shape: tuple[int, ...],
        dtype: str,
    ) -> str | None:
        if self.device == "cpu":
            return cpu_conv2d_defect(spec, image_shape, kernel_shape, dtype)
        return None

    def dtype_unsupported(self, dtype: str) -> str | None:
        nchw = self.options["data_format"] == "NCHW"
        if nchw and self.device == "cpu" and dtype not in CPU_NCHW_DTYPES:
            return (
                f"TensorFlow's CPU Conv2D takes data_format='NCHW' only in "
                f"{' and '.join(CPU_NCHW_DTYPES)}, not {dtype}; {self.name} computes {dtype} "
                "with data_format='NHWC'"
            )
        return super().dtype_unsupported(dtype)

    def settings(self) -> dict[str, str]:
        tf = import_tensorflow()

        found = {
            "tensorflow": tf.__version__,
            "tf.intra_op_threads": str(tf.config.threading.get_intra_op_parallelism_threads()),
            "tf.inter_op_threads": str(tf.config.threading.get_inter_op_parallelism_threads()),
        }
        if self.device == "gpu":
            build = tf.sysconfig.get_build_info()
            found.update(
                {
                    "cuda": str(build.get("cuda_version")),
                    "cudnn": str(build.get("cudnn_version")),
                    "tf32": str(self._tf32()),
                }
            )
        return found | self.option_settings()

    def _tf32(self) -> bool:
        """Whether float32 work may use TF32: this backend's option, else TensorFlow's global."""
        if self.options["tf32"] is not None:
            return self.options["tf32"]
        return import_tensorflow().config.experimental.tensor_float_32_execution_enabled()

    def precision(self, dtype: str) -> str:
        if self.device == "gpu" and dtype == "float32" and self._tf32():
            return "tf32"
        return dtype

    def _plan(self, image: np.ndarray, kernel: np.ndarray, spec: ConvSpec) -> Plan:
        tf = import_tensorflow()

        native, pad = native_or_explicit(spec, kernel.shape, lambda p: True, image.shape)
        same = ConvSpec(mode="same", stride=spec.stride, dilation=spec.dilation)
        data_format = self.options["data_format"] or "NHWC"
        same_padding = same.padding(kernel.shape, image.shape)
        padding = tf_padding(pad, kernel.shape, same_padding, data_format)
        host = image if native else spec.pad(image, kernel.shape)
        device = self.tf_device
        rank = image.ndim
        nhwc = data_format == "NHWC"

        def upload(x: np.ndarray) -> tf.Tensor:
            # NCHW: (H, W) is one sample of one channel, (B, H, W) B samples of one channel.
            t = {2: x[None, None], 3: x[:, None], 4: x}[x.ndim]
            with tf.device(device):
                t = tf.identity(tf.constant(t.transpose(0, 2, 3, 1) if nhwc else t))
            return t

        oihw = spec.correlation_kernel(kernel)
        oihw = oihw if kernel.ndim == 4 else oihw[None, None]
        with tf.device(device):
            # HWIO: the spatial axes first, then input and output channels.
            weights = tf.identity(tf.constant(oihw.transpose(2, 3, 1, 0)))
        strides, dilations = list(spec.stride), list(spec.dilation)
        # Eager CPU ops are synchronous; GPU ops are queued on a stream and must be waited for.
        wait = tf.test.experimental.sync_devices if self.device == "gpu" else no_wait

        tf32 = self.options["tf32"]
        set_tf32 = tf.config.experimental.enable_tensor_float_32_execution

        def op(x: tf.Tensor) -> tf.Tensor:
            # The TF32 switch is process-wide: re-assert this backend's choice on every call.
            if tf32 is not None:
                set_tf32(tf32)
            with tf.device(device):
                return tf.nn.conv2d(
                    x,
                    weights,
                    strides=strides,
                    padding=padding,
                    data_format=data_format,
                    dilations=dilations,
                )

        def download(y: tf.Tensor) -> np.ndarray:
            out = y.numpy()
            out = np.ascontiguousarray(out.transpose(0, 3, 1, 2)) if nhwc else out
            return {2: out[0, 0], 3: out[:, 0], 4: out}[rank]

        # A corner as large as the kernel's window runs the same kernel on the same device,
        # cheaply.
        eh, ew = spec.dilated_size(kernel.shape)
        probe = host[:1] if rank > 2 else host
        check_placement(device, op(upload(probe[..., : eh + 1, : ew + 1])).device)
        return Plan(host, upload, op, download, "native" if native else "explicit", wait)

    def _call_source(
        self,
        spec: ConvSpec,
        image_shape: tuple[int, ...],
        kernel_shape: tuple[int, int],
        dtype: str,
    ) -> str:
        code = Source(dtype).need("import tensorflow as tf")
        if self.options["tf32"] is not None:
            code.add(
                f"tf.config.experimental.enable_tensor_float_32_execution({self.options['tf32']})"
            )
        native, pad = native_or_explicit(spec, kernel_shape, lambda p: True)
        code.inputs(spec, "correlate", "tf.nn.conv2d")
        if not native:
            why = "tf.nn.conv2d pads with zeros only"
            code.add(*pad_lines(spec, kernel_shape, len(image_shape) == 3, why, source="x"))
        padding = tf_padding(pad, kernel_shape)
        batched = len(image_shape) == 3
        layout = "x[..., None]" if batched else "x[None, ..., None]"
        code.add(
            "# NHWC with one channel; the kernel HWIO",
            f'with tf.device("{self.tf_device}"):',
            f"    x = tf.constant({layout})",
            f"    y = tf.nn.conv2d(x, k[:, :, None, None], strides=1, padding={literal(padding)})",
        )
        return code.add(f"out = y.numpy()[{'...' if batched else '0, ...'}, 0]").text()
