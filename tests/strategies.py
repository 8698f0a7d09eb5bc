"""Hypothesis strategies for convolution cases."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np
from hypothesis import strategies as st

from convbench.spec import BOUNDARIES, MODES, OPS, ConvSpec

# Worst max_rel per (backend, dtype) seen by the property tests, and examples run per backend.
WORST: dict[tuple[str, str], float] = defaultdict(float)
EXAMPLES: dict[str, int] = defaultdict(int)


def record(backend: str, dtype: str, max_rel: float) -> None:
    WORST[backend, dtype] = max(WORST[backend, dtype], max_rel)
    EXAMPLES[backend] += 1


@dataclass(frozen=True)
class Case:
    image: np.ndarray
    kernel: np.ndarray
    spec: ConvSpec


@st.composite
def specs(draw: st.DrawFn, **layer: object) -> ConvSpec:
    """A spec of every op, mode and boundary; ``layer`` adds stride, dilation, groups."""
    boundary = draw(st.sampled_from(BOUNDARIES))
    fill = draw(st.sampled_from([0.0, 0.0, 1.5, -3.0])) if boundary == "fill" else 0.0
    return ConvSpec(
        op=draw(st.sampled_from(OPS)),
        mode=draw(st.sampled_from(MODES)),
        boundary=boundary,
        fillvalue=fill,
        **layer,
    )


def _pairs(top: int) -> st.SearchStrategy:
    """An int up to ``top`` or a pair of them, ones most often."""
    one = st.sampled_from([1, 1, *range(2, top + 1)])
    return st.one_of(one, st.tuples(one, one))


@st.composite
def layer_cases(
    draw: st.DrawFn,
    dtype: str = "float64",
    max_side: int = 9,
    max_kernel: int = 4,
    max_stride: int = 3,
    max_dilation: int = 3,
) -> Case:
    """A layer's input (N, C_in, H, W) and kernel (C_out, C_in // groups, kh, kw) with random
    stride, dilation and groups; a 'valid' image at least as large as the dilated kernel."""
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    c_in = groups * draw(st.integers(1, 3))
    c_out = groups * draw(st.integers(1, 3))
    spec = draw(
        specs(stride=draw(_pairs(max_stride)), dilation=draw(_pairs(max_dilation)), groups=groups)
    )
    kh, kw = draw(st.integers(1, max_kernel)), draw(st.integers(1, max_kernel))
    eh, ew = spec.dilated_size((kh, kw))
    low_h, low_w = (eh, ew) if spec.mode == "valid" else (1, 1)
    h = draw(st.integers(low_h, max(low_h, max_side)))
    w = draw(st.integers(low_w, max(low_w, max_side)))
    n = draw(st.integers(1, 2))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    image = rng.standard_normal((n, c_in, h, w)).astype(dtype)
    kernel = rng.standard_normal((c_out, c_in // groups, kh, kw)).astype(dtype)
    return Case(image, kernel, spec)


@st.composite
def cases(draw: st.DrawFn, dtype: str = "float64", max_side: int = 12, max_kernel: int = 6) -> Case:
    """Random shapes (odd, even, rectangular kernels; some larger than the image), batches."""
    spec = draw(specs())
    kh, kw = draw(st.integers(1, max_kernel)), draw(st.integers(1, max_kernel))
    low_h, low_w = (kh, kw) if spec.mode == "valid" else (1, 1)
    h = draw(st.integers(low_h, max(low_h, max_side)))
    w = draw(st.integers(low_w, max(low_w, max_side)))
    batch = draw(st.sampled_from([(), (), (1,), (3,)]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    image = rng.standard_normal((*batch, h, w)).astype(dtype)
    kernel = rng.standard_normal((kh, kw)).astype(dtype)
    return Case(image, kernel, spec)


@st.composite
def strided_cases(draw: st.DrawFn, dtype: str = "float64") -> Case:
    """An image (H, W) or a batch (B, H, W) at a random stride and dilation."""
    case = draw(cases(dtype=dtype, max_side=10, max_kernel=4))
    spec = case.spec
    strided = ConvSpec(
        spec.op,
        spec.mode,
        spec.boundary,
        spec.fillvalue,
        stride=draw(_pairs(3)),
        dilation=draw(_pairs(3)),
    )
    window = strided.dilated_size(case.kernel.shape)
    if spec.mode == "valid" and (
        window[0] > case.image.shape[-2] or window[1] > case.image.shape[-1]
    ):
        strided = ConvSpec(
            spec.op, "full", spec.boundary, spec.fillvalue, strided.stride, strided.dilation
        )
    return Case(case.image, case.kernel, strided)
