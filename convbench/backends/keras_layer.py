"""A Keras 3 ``Conv2D`` layer on TensorFlow, pinned to the CPU: the object of "scipy and Keras give
different answers".

One filter and one input channel for an image or a batch; C_out filters with ``strides``,
``dilation_rate`` and ``groups`` for a layer's input (N, C_in, H, W), transposed to NHWC in
``prepare``. ``use_bias=False``, the kernel set with ``set_weights`` (HWIO), the layer called on
the image as a user calls it (``layer(x)``, eager, its Python overhead included). Conv2D
cross-correlates. Its 'valid' is the spec's zero padding and its 'same' is TensorFlow's SAME,
(K-1)//2 before and K//2 after at stride 1: correlate 'same', and convolve 'same' for odd
kernels. Everything else (full, convolve 'same' with an even kernel, wrap, symm, non-zero fills)
is padded explicitly on the host and run 'valid'. Conv2D refuses a stride and a dilation above 1
together, and so does this backend.

Keras picks its backend when first imported, from ``KERAS_BACKEND``; ``import_keras`` sets it to
'tensorflow' when unset and imports TensorFlow first (after torch, see ``import_tensorflow``).
Keras already running on another backend makes this backend unavailable, with that reason.
"""

from __future__ import annotations

import os

import numpy as np

from convbench.backends.base import Backend, Plan, correlate_same, native_or_explicit
from convbench.backends.source import Source, literal, pad_lines
from convbench.backends.tensorflow_conv import (
    check_placement,
    cpu_conv2d_defect,
    import_tensorflow,
)
from convbench.spec import ConvSpec

CPU = "/CPU:0"


def import_keras():
    """Import Keras with TensorFlow as its backend unless ``KERAS_BACKEND`` names another."""
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    import_tensorflow()
    import keras

    return keras


class KerasBackend(Backend):
    library = "keras"
    requires = ("tensorflow", "keras")
    dtypes = ("float16", "bfloat16", "float32", "float64")
    # Conv2D has strides, dilation_rate and groups (layer_unsupported: not stride with dilation).
    layer_refusal = None

    def __init__(self, name: str, device: str = "cpu") -> None:
        if device != "cpu":
            raise ValueError(f"device={device!r} must be 'cpu'")
        super().__init__(name, device)

    def _device_missing(self) -> str | None:
        keras = import_keras()
        major = int(keras.__version__.split(".")[0])
        if major < 3:
            return f"Keras {keras.__version__} is installed; {self.name} needs Keras 3"
        if keras.backend.backend() != "tensorflow":
            return (
                f"Keras {keras.__version__} runs on {keras.backend.backend()!r} "
                "(KERAS_BACKEND); this backend runs Keras on 'tensorflow'"
            )
        return None

    def preimport(self) -> None:
        import_keras()

    def layer_unsupported(
        self,
        spec: ConvSpec,
        image_shape: tuple[int, ...],
        kernel_shape: tuple[int, ...],
        dtype: str,
    ) -> str | None:
        if max(spec.stride) > 1 and max(spec.dilation) > 1:
            return (
                f"Keras Conv2D does not take strides > 1 with dilation_rate > 1; {self.name} "
                f"cannot compute stride {spec.stride} with dilation {spec.dilation}"
            )
        # Conv2D runs TensorFlow's CPU kernel, defects included.
        return cpu_conv2d_defect(spec, image_shape, kernel_shape, dtype)

    def settings(self) -> dict[str, str]:
        keras = import_keras()
        tf = import_tensorflow()
        return {
            "keras": keras.__version__,
            "keras.backend": keras.backend.backend(),
            "tensorflow": tf.__version__,
            "tf.intra_op_threads": str(tf.config.threading.get_intra_op_parallelism_threads()),
            "tf.inter_op_threads": str(tf.config.threading.get_inter_op_parallelism_threads()),
        }

    def _plan(self, image: np.ndarray, kernel: np.ndarray, spec: ConvSpec) -> Plan:
        tf = import_tensorflow()
        keras = import_keras()

        # Conv2D's 'same' is TensorFlow's SAME at the spec's stride and dilation.
        same = ConvSpec(mode="same", stride=spec.stride, dilation=spec.dilation)
        same_padding = same.padding(kernel.shape, image.shape)
        native, pad = native_or_explicit(
            spec, kernel.shape, lambda p: p.is_zero or p == same_padding, image.shape
        )
        host = image if native else spec.pad(image, kernel.shape)
        rank = image.ndim
        oihw = spec.correlation_kernel(kernel)
        oihw = oihw if kernel.ndim == 4 else oihw[None, None]
        layer = keras.layers.Conv2D(
            oihw.shape[0],
            oihw.shape[-2:],
            strides=spec.stride,
            padding="valid" if pad.is_zero else "same",
            dilation_rate=spec.dilation,
            groups=spec.groups,
            use_bias=False,
            dtype=image.dtype.name,
        )
        layer.build((None, *host.shape[-2:], oihw.shape[1] * spec.groups))
        # HWIO: the spatial axes first, then input and output channels.
        layer.set_weights([oihw.transpose(2, 3, 1, 0)])

        def upload(x: np.ndarray) -> tf.Tensor:
            # NHWC: (H, W) is one sample of one channel, (B, H, W) B samples of one channel.
            nchw = {2: x[None, None], 3: x[:, None], 4: x}[x.ndim]
            with tf.device(CPU):
                return tf.identity(tf.constant(nchw.transpose(0, 2, 3, 1)))

        def op(x: tf.Tensor) -> tf.Tensor:
            with tf.device(CPU):
                return layer(x)

        def download(y: tf.Tensor) -> np.ndarray:
            out = np.ascontiguousarray(y.numpy().transpose(0, 3, 1, 2))
            return {2: out[0, 0], 3: out[:, 0], 4: out}[rank]

        # A corner as large as the kernel's window runs the same layer on the same device,
        # cheaply.
        eh, ew = spec.dilated_size(kernel.shape)
        probe = host[:1] if rank > 2 else host
        check_placement(CPU, op(upload(probe[..., : eh + 1, : ew + 1])).device)
        return Plan(host, upload, op, download, "native" if native else "explicit")

    def _call_source(
        self,
        spec: ConvSpec,
        image_shape: tuple[int, ...],
        kernel_shape: tuple[int, int],
        dtype: str,
    ) -> str:
        code = Source(dtype).need("import tensorflow as tf")
        native, pad = native_or_explicit(
            spec, kernel_shape, lambda p: p.is_zero or correlate_same(p, kernel_shape)
        )
        code.add(
            "# Keras on TensorFlow, chosen before Keras is first imported",
            "import os",
            'os.environ.setdefault("KERAS_BACKEND", "tensorflow")',
            "import keras",
            "",
        )
        code.inputs(spec, "correlate", "Conv2D")
        if not native:
            why = "Conv2D pads with zeros, as correlate 'same' or 'valid', only"
            code.add(*pad_lines(spec, kernel_shape, len(image_shape) == 3, why, source="x"))
        batched = len(image_shape) == 3
        padding = "valid" if pad.is_zero else "same"
        code.add(
            f"layer = keras.layers.Conv2D(1, {kernel_shape}, padding={literal(padding)}, "
            f"use_bias=False, dtype={literal(dtype)})",
            "layer.build((None, *x.shape[-2:], 1))",
            "layer.set_weights([k[:, :, None, None]])  # HWIO",
            "# NHWC with one channel",
            f'with tf.device("{CPU}"):',
            f"    y = layer(tf.constant({'x[..., None]' if batched else 'x[None, ..., None]'}))",
        )
        return code.add(f"out = y.numpy()[{'...' if batched else '0, ...'}, 0]").text()
