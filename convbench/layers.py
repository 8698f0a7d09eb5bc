"""Convolution layers of real networks, for the Layer suite (``benchmarks/layers.py``).

Each ``Layer`` is one ``Conv2d`` of a published network, at the size it sees for a 224x224 input,
with where it is defined (``docs/layers.md`` lists them). The suite computes each as
``ConvSpec(mode='same', stride=..., dilation=..., groups=...)``: TensorFlow's 'SAME' padding,
which gives the output size of the network's own padding. At stride 2 the windows of 'SAME'
and of torch's symmetric ``padding=k // 2`` sit one pixel apart (``docs/gallery.md``), but the
arithmetic, and so the time and the kind of error, is the same.

The budget (``skip_reason``, ``metric_skip_reason``). Layers reach 1e8 multiply-adds per image,
and the default suite must run in minutes on a 2-core CPU, where a float32 layer takes
milliseconds to a tenth of a second per image. So on a CPU: float16 and bfloat16 are measured on
one image (their error is what a CPU can show of them; their speed belongs to GPUs), float16 up
to ``CPU_SLOW_MACS`` (torch has no vectorised float16 convolution on a CPU: seconds per call
beyond), nothing beyond ``CPU_MAX_MACS``. Each metric has its batch: the agreement with the
float64 reference does not depend on the batch and is tracked on one image; GFLOP/s (the rate
of a batch) and peak memory (largest with the batch's workspace) at the training batch; the
time at both.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from convbench.spec import ConvSpec, numpy_dtype

if TYPE_CHECKING:
    from convbench.backends.base import Backend

# The frameworks whose own convolution a network layer runs, on each device (Keras runs
# TensorFlow's: keras-cpu would measure the same kernel again).
BACKENDS = ("torch-cpu", "torch-cuda", "tensorflow-cpu", "tensorflow-gpu", "jax-cpu", "jax-gpu")
# One image (inference) and a training batch small enough for a CPU's budget.
BATCHES = (1, 16)
DTYPES = ("float32", "float16", "bfloat16")
LOW_PRECISION = ("float16", "bfloat16")

# Multiply-adds per call on a CPU: float16 up to CPU_SLOW_MACS, anything up to CPU_MAX_MACS.
CPU_SLOW_MACS = 3e8
CPU_MAX_MACS = 4e9
# The metrics that are not measured at every batch: the batch each is measured at.
METRIC_BATCH = {"track_max_rel": 1, "track_gflops": 16, "peakmem_op": 16}

_TORCHVISION = "https://github.com/pytorch/vision/blob/v0.20.0/torchvision/models"
_RESNET = (
    "He et al., Deep Residual Learning for Image Recognition, CVPR 2016 (arXiv:1512.03385), "
    f"Table 1; torchvision {_TORCHVISION}/resnet.py"
)


@dataclass(frozen=True)
class Layer:
    """One convolution layer: ``in_channels`` -> ``out_channels`` on a ``size``² input, a square
    ``kernel`` with ``stride``, ``dilation`` and ``groups`` as in ``torch.nn.Conv2d``."""

    name: str
    what: str
    in_channels: int
    out_channels: int
    size: int
    kernel: int
    source: str
    stride: int = 1
    dilation: int = 1
    groups: int = 1

    @property
    def spec(self) -> ConvSpec:
        return ConvSpec(stride=self.stride, dilation=self.dilation, groups=self.groups)

    def image_shape(self, batch: int) -> tuple[int, int, int, int]:
        return (batch, self.in_channels, self.size, self.size)

    @property
    def kernel_shape(self) -> tuple[int, int, int, int]:
        per_group = self.in_channels // self.groups
        return (self.out_channels, per_group, self.kernel, self.kernel)

    def output_shape(self, batch: int) -> tuple[int, ...]:
        return self.spec.output_shape(self.image_shape(batch), self.kernel_shape)

    def multiply_adds(self, batch: int) -> int:
        """Products summed in one call: every output sums ``C_in // groups * kh * kw``."""
        return math.prod(self.output_shape(batch)) * math.prod(self.kernel_shape[1:])

    def flops(self, batch: int) -> int:
        """Floating-point operations of one call, a multiply and an add per product (the
        convention of published GFLOP counts)."""
        return 2 * self.multiply_adds(batch)

    def inputs(self, batch: int, dtype: str, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Seeded standard-normal image and kernel, the kernel scaled by ``1 / sqrt(fan_in)``
        (the variance-preserving initialisation of trained layers), so that outputs are of
        order one as in a network: float16 neither overflows nor loses its small values.
        float16 and bfloat16 are drawn in float32 and rounded."""
        rng = np.random.default_rng(seed)
        draw = np.float64 if dtype == "float64" else np.float32
        image = rng.standard_normal(self.image_shape(batch), dtype=draw)
        weights = rng.standard_normal(self.kernel_shape, dtype=draw)
        weights *= draw(1 / math.sqrt(math.prod(self.kernel_shape[1:])))
        target = numpy_dtype(dtype)
        return image.astype(target, copy=False), weights.astype(target, copy=False)


LAYERS = (
    Layer(
        "resnet50.conv1",
        "ResNet-50 stem: 7x7, stride 2, RGB -> 64",
        3,
        64,
        224,
        7,
        _RESNET + " (conv1)",
        stride=2,
    ),
    Layer(
        "resnet50.layer1.0.conv2",
        "ResNet-50 conv2_x block: 3x3, 64 -> 64",
        64,
        64,
        56,
        3,
        _RESNET + " (layer1[0].conv2)",
    ),
    Layer(
        "resnet50.layer2.0.conv2",
        "ResNet-50 downsampling 3x3, stride 2, 128 -> 128 (torchvision's v1.5 strides here)",
        128,
        128,
        56,
        3,
        _RESNET + " (layer2[0].conv2)",
        stride=2,
    ),
    Layer(
        "resnet50.layer2.0.downsample.0",
        "ResNet-50 projection shortcut: 1x1, stride 2, 256 -> 512",
        256,
        512,
        56,
        1,
        _RESNET + " (layer2[0].downsample[0])",
        stride=2,
    ),
    Layer(
        "mobilenet_v2.features.3.conv.1.0",
        "MobileNetV2 depthwise 3x3, 144 channels (groups = channels)",
        144,
        144,
        56,
        3,
        "Sandler et al., MobileNetV2: Inverted Residuals and Linear Bottlenecks, CVPR 2018 "
        f"(arXiv:1801.04381), Table 2; torchvision {_TORCHVISION}/mobilenetv2.py "
        "(features[3].conv[1][0])",
        groups=144,
    ),
    Layer(
        "resnext50_32x4d.layer1.0.conv2",
        "ResNeXt-50 32x4d grouped 3x3, 128 -> 128 in 32 groups",
        128,
        128,
        56,
        3,
        "Xie et al., Aggregated Residual Transformations for Deep Neural Networks, CVPR 2017 "
        f"(arXiv:1611.05431), Table 1; torchvision {_TORCHVISION}/resnet.py "
        "(resnext50_32x4d, layer1[0].conv2)",
        groups=32,
    ),
    Layer(
        "deeplabv3_resnet50.backbone.layer3.1.conv2",
        "DeepLabv3 atrous 3x3, dilation 2, 256 -> 256 (output stride 8)",
        256,
        256,
        28,
        3,
        "Chen et al., Rethinking Atrous Convolution for Semantic Image Segmentation, 2017 "
        f"(arXiv:1706.05587); torchvision {_TORCHVISION}/segmentation/deeplabv3.py "
        "(deeplabv3_resnet50: replace_stride_with_dilation=[False, True, True], "
        "backbone.layer3[1].conv2)",
        dilation=2,
    ),
    Layer(
        "image.filter3x3",
        "A one-channel 3x3 image filter, the Conv suite's 256², 3x3 case",
        1,
        1,
        256,
        3,
        "convbench's Conv suite (benchmarks/conv.py), size 256, kernel 3",
    ),
)
NAMES = tuple(layer.name for layer in LAYERS)
_BY_NAME = {layer.name: layer for layer in LAYERS}


def get_layer(name: str) -> Layer:
    """The layer called ``name``; ValueError listing the names otherwise."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise ValueError(f"layer {name!r} must be one of: {list(NAMES)}") from None


def skip_reason(layer: Layer, backend: Backend, batch: int, dtype: str) -> str | None:
    """Why the Layer suite does not measure ``layer`` at ``batch`` in ``dtype`` on ``backend``
    (an object: asked what it declares, never parsed from its name), or None when it does.
    Imports no framework."""
    shapes = (layer.image_shape(batch), layer.kernel_shape)
    declined = backend.layer_unsupported(layer.spec, *shapes, dtype)
    declined = declined or backend.case_unsupported(*shapes, dtype)
    if declined:
        return declined
    if backend.device_kind != "cpu":
        return None
    if dtype in LOW_PRECISION and batch > 1:
        return (
            f"{dtype} on a CPU is measured on one image: its error is what a CPU shows of it, "
            "and a batch would only add time to the suite"
        )
    macs = layer.multiply_adds(batch)
    over = f"{macs:.2g} multiply-adds ({layer.name} at batch {batch}) exceed"
    if dtype == "float16" and macs > CPU_SLOW_MACS:
        return (
            f"float16 on a CPU has no vectorised kernel: {over} the suite's budget of "
            f"{CPU_SLOW_MACS:.2g} for it (seconds per call)"
        )
    if macs > CPU_MAX_MACS:
        return f"on a CPU: {over} the suite's budget of {CPU_MAX_MACS:.2g} (seconds per call)"
    return None


def metric_skip_reason(metric: str, batch: int) -> str | None:
    """Why the Layer suite does not measure ``metric`` (its asv name, e.g. 'track_max_rel') at
    ``batch``, or None when it does."""
    wanted = METRIC_BATCH.get(metric)
    if wanted is None or batch == wanted:
        return None
    return {
        "track_max_rel": (
            f"agreement is tracked at batch {wanted}: every image of a batch is computed alike, "
            "so more images only draw more samples of the same error"
        ),
        "track_gflops": (
            f"GFLOP/s is measured at batch {wanted}, the rate of a batch; at batch 1, time_op "
            "gives the latency"
        ),
        "peakmem_op": f"peak memory is measured at batch {wanted}, where the workspace is largest",
    }[metric]
