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
def specs(draw: st.DrawFn) -> ConvSpec:
    boundary = draw(st.sampled_from(BOUNDARIES))
    fill = draw(st.sampled_from([0.0, 0.0, 1.5, -3.0])) if boundary == "fill" else 0.0
    return ConvSpec(
        op=draw(st.sampled_from(OPS)),
        mode=draw(st.sampled_from(MODES)),
        boundary=boundary,
        fillvalue=fill,
    )


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
