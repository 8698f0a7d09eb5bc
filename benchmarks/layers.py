"""asv: convolution layers of real networks (``convbench.layers``; the table in docs/layers.md).

One parameter combination is one layer on one backend, at one batch size, in one dtype: its time
per op (``time_op``), its arithmetic rate (``track_gflops``, at the training batch: the layer's
``2 * N * C_out * H_out * W_out * C_in / groups * kh * kw`` floating-point operations over the
median time of blocks of ops, measured in the metric's own process), its error against the
float64 reference (``track_max_rel``, at batch 1) and the process's peak memory (``peakmem_op``,
at the training batch). How a case is set up, skipped, recorded and timed is
``benchmarks/common.py``'s ``ConvSuite``.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

import convbench
from convbench import layers, suite
from convbench.spec import ConvSpec
from convbench.timing import WallClock

from .common import PeakmemOp, TimeOp, TrackMaxRel

suite.preimport(suite.grid_backends(layers.BACKENDS))

# Blocks of ops timed for track_gflops: the median of a few, as time_op's samples are.
GFLOPS_BLOCKS = 5


@dataclass(frozen=True)
class LayerCase:
    """One layer of ``convbench.layers`` at ``batch`` images in ``dtype`` on ``backend``."""

    layer: layers.Layer
    backend: str
    batch: int
    dtype: str
    options: Mapping[str, object] = field(default_factory=dict)
    setting: str = ""
    default_setting: bool = True

    @property
    def image_shape(self) -> tuple[int, ...]:
        return self.layer.image_shape(self.batch)

    @property
    def kernel_shape(self) -> tuple[int, ...]:
        return self.layer.kernel_shape

    @property
    def spec(self) -> ConvSpec:
        return self.layer.spec

    def skip_reason(self) -> str | None:
        found = convbench.get_backend(self.backend)
        return layers.skip_reason(self.layer, found, self.batch, self.dtype)

    def metric_skip_reason(self, metric: str) -> str | None:
        return layers.metric_skip_reason(metric, self.batch)

    def inputs(self) -> tuple[np.ndarray, np.ndarray]:
        return self.layer.inputs(self.batch, self.dtype)


class Layer(TimeOp, PeakmemOp, TrackMaxRel):
    """One network layer (``convbench.layers.LAYERS``) per combination.

    Fewer samples than the 2-D grid's (3 to 10, stopping after 2 s of sampling): a layer's
    block of ops lasts longer, and its spread is as narrow.
    """

    params = (
        list(layers.NAMES),
        list(suite.grid_backends(layers.BACKENDS)),
        list(layers.BATCHES),
        list(layers.DTYPES),
    )
    param_names = ("layer", "backend", "batch", "dtype")
    repeat = (3, 10, 2.0)

    @staticmethod
    def case(layer: str, backend: str, batch: int, dtype: str) -> LayerCase:
        return LayerCase(layers.get_layer(layer), backend, batch, dtype)

    def track_gflops(self, *params: Any) -> float:
        """Floating-point operations per second, in 10^9: the layer's count over the median
        seconds per op of ``GFLOPS_BLOCKS`` blocks of ``inner`` back-to-back ops."""
        ready = self.ready
        clock = WallClock(ready.prepared.wait)
        block = statistics.median(
            clock.sample(ready.timed, ready.inner) for _ in range(GFLOPS_BLOCKS)
        )
        return ready.case.layer.flops(ready.case.batch) / (block / ready.inner) / 1e9

    track_gflops.unit = "GFLOP/s"  # type: ignore[attr-defined]
