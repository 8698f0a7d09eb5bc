"""The float64 reference is scipy.signal's correlate2d/convolve2d, for every spec and shape."""

from __future__ import annotations

import importlib
from unittest import mock

import numpy as np
import scipy.signal
from hypothesis import given, settings
from hypothesis import strategies as st

from convbench import ConvSpec, reference
from convbench.reference import error_scale
from convbench.spec import FLOAT_DTYPES, numpy_dtype
from tests.strategies import Case, cases

# The module, which the package's ``reference`` function shadows as an attribute.
reference_module = importlib.import_module("convbench.reference")


@settings(max_examples=300, deadline=None)
@given(cases())
def test_reference_is_scipy(case: Case) -> None:
    spec = case.spec
    function = scipy.signal.correlate2d if spec.op == "correlate" else scipy.signal.convolve2d
    images = case.image if case.image.ndim == 3 else case.image[None]
    expected = np.stack(
        [
            function(
                x, case.kernel, mode=spec.mode, boundary=spec.boundary, fillvalue=spec.fillvalue
            )
            for x in images
        ]
    )
    got = reference(case.image, case.kernel, spec)
    got = got if got.ndim == 3 else got[None]
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


def test_convolve_is_correlate_with_rotated_kernel_outside_even_same() -> None:
    rng = np.random.default_rng(3)
    x, k = rng.standard_normal((9, 8)), rng.standard_normal((3, 5))
    for mode in ("full", "same", "valid"):
        conv = reference(x, k, ConvSpec("convolve", mode))
        corr = reference(x, k[::-1, ::-1], ConvSpec("correlate", mode))
        np.testing.assert_array_equal(conv, corr)


def test_nan_spoils_only_the_windows_that_hold_it() -> None:
    x = np.random.default_rng(4).standard_normal((10, 10))
    x[4, 6] = np.nan
    out = reference(x, np.ones((3, 2)), ConvSpec("correlate", "same"))
    # correlate 'same' with kh=3, kw=2 pads (1, 1) rows and (0, 1) columns: output (i, j) reads
    # rows i-1..i+1 and columns j..j+1.
    expected = np.zeros((10, 10), bool)
    expected[3:6, 5:7] = True
    np.testing.assert_array_equal(np.isnan(out), expected)


def test_inf_propagates() -> None:
    x = np.zeros((5, 5))
    x[2, 2] = np.inf
    out = reference(x, np.ones((3, 3)), ConvSpec(mode="same"))
    assert np.isinf(out[1:4, 1:4]).all() and np.isfinite(out[0]).all()


def _whole(image: np.ndarray, kernel: np.ndarray, spec: ConvSpec) -> np.ndarray:
    """The reference over the whole padded image at once (what it computed before blocks)."""
    x = spec.pad(image.astype(np.float64), kernel.shape)
    k = spec.correlation_kernel(kernel.astype(np.float64))
    oh, ow = spec.output_shape(image.shape, kernel.shape)[-2:]
    out = np.zeros(spec.output_shape(image.shape, kernel.shape))
    for i in range(k.shape[0]):
        for j in range(k.shape[1]):
            out += k[i, j] * x[..., i : i + oh, j : j + ow]
    return out


ANY_DTYPE_CASES = st.sampled_from(FLOAT_DTYPES).flatmap(
    lambda d: cases(dtype=numpy_dtype(d), max_side=20, max_kernel=9)
)


@settings(max_examples=200, deadline=None)
@given(ANY_DTYPE_CASES, st.integers(1, 60))
def test_blocks_give_the_whole_image_answer_exactly(case: Case, block: int) -> None:
    with mock.patch.object(reference_module, "BLOCK_ELEMENTS", block):
        got = reference(case.image, case.kernel, case.spec)
        scale = error_scale(case.image, case.kernel, case.spec)
    np.testing.assert_array_equal(got, _whole(case.image, case.kernel, case.spec))
    magnitude = ConvSpec(case.spec.op, case.spec.mode, case.spec.boundary, abs(case.spec.fillvalue))
    assert scale == _whole(np.abs(case.image), np.abs(case.kernel), magnitude).max()


def test_nan_pixels_spoil_the_same_outputs_in_blocks() -> None:
    x = np.random.default_rng(9).standard_normal((2, 30, 7))
    x[0, 3, 2] = x[1, 29, 6] = np.nan
    k = np.random.default_rng(10).standard_normal((5, 3))
    spec = ConvSpec("convolve", "full", "wrap")
    with mock.patch.object(reference_module, "BLOCK_ELEMENTS", 8):
        got = reference(x, k, spec)
    np.testing.assert_array_equal(got, _whole(x, k, spec))
    assert np.isnan(got).any()


def test_the_fill_is_rounded_to_the_image_dtype() -> None:
    x = np.random.default_rng(11).standard_normal((6, 6)).astype(np.float16)
    k = np.random.default_rng(12).standard_normal((3, 3)).astype(np.float16)
    got = reference(x, k, ConvSpec(fillvalue=0.1))
    rounded = float(np.float16(0.1))  # 0.0999755859375: what a float16 image is padded with
    assert rounded != 0.1
    np.testing.assert_array_equal(
        got, reference(x.astype(np.float64), k.astype(np.float64), ConvSpec(fillvalue=rounded))
    )


def test_any_layout_gives_the_same_reference() -> None:
    x = np.random.default_rng(13).standard_normal((9, 12))
    k = np.random.default_rng(14).standard_normal((4, 3))
    spec = ConvSpec("correlate", "same", "symm")
    expected = reference(x, k, spec)
    swapped = x.astype(">f8"), k.astype(">f4")
    np.testing.assert_array_equal(reference(*swapped, spec), reference(x, k.astype("f4"), spec))
    np.testing.assert_array_equal(reference(np.flip(np.flip(x).copy()), k, spec), expected)
    np.testing.assert_array_equal(reference(np.asfortranarray(x), k, spec), expected)
