"""The float64 reference is scipy.signal's correlate2d/convolve2d, for every spec and shape."""

from __future__ import annotations

import numpy as np
import scipy.signal
from hypothesis import given, settings

from convbench import ConvSpec, reference
from tests.strategies import Case, cases


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
