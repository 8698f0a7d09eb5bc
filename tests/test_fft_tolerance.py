"""The tolerance that follows a backend's arithmetic: 'fft' judged by the whole image's magnitude
and the transform's length, 'direct' exactly as before."""

from __future__ import annotations

import math

import numpy as np
import pytest

import convbench
from convbench.agreement import (
    CEILING,
    agreement,
    agreement_for,
    fft_error_scale,
    fft_points,
    fft_tolerance,
    tolerance,
    tolerance_for,
)
from convbench.backends.base import Backend, Plan
from convbench.reference import error_scale
from convbench.spec import ConvSpec

U32 = 2.0**-24


def test_fft_tolerance_grows_with_log2_of_the_length() -> None:
    assert fft_tolerance("float32", 2**20) == pytest.approx(8 * U32 * 20)
    assert fft_tolerance("float64", 1024) == pytest.approx(8 * 2.0**-53 * 10)
    # One point is one multiplication: the floor is log2(2) = 1.
    assert fft_tolerance("float32", 1) == pytest.approx(8 * U32)
    assert fft_tolerance("bfloat16", 2**40) == CEILING


@pytest.mark.parametrize(
    ("precision", "points", "error"),
    [("int8", 16, ValueError), ("float32", 0, ValueError), ("float32", 1.5j, TypeError)],
)
def test_fft_tolerance_names_a_bad_argument(precision: str, points, error: type) -> None:
    with pytest.raises(error, match=repr(precision) if precision == "int8" else "points"):
        fft_tolerance(precision, points)


def test_fft_points_is_the_full_linear_convolution_of_the_padded_image() -> None:
    assert fft_points((1024, 1024), (3, 3)) == 1030 * 1030
    assert fft_points((4, 100, 60), (31, 1)) == 190 * 60


@pytest.mark.parametrize("kernel", [(1, 1), (3, 3), (4, 7), (31, 31)])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_direct_backends_are_held_exactly_as_before(kernel: tuple[int, int], dtype: str) -> None:
    found = convbench.get_backend("scipy-correlate2d")
    assert tolerance_for(found, dtype, (64, 64), kernel) == tolerance(dtype, kernel[0] * kernel[1])


def test_fft_backends_are_held_to_the_fft_tolerance() -> None:
    found = convbench.get_backend("scipy-fftconvolve")
    expected = fft_tolerance("float32", fft_points((2, 300, 200), (5, 5)))
    assert tolerance_for(found, "float32", (2, 300, 200), (5, 5)) == expected


def test_opencv_tolerance_switches_with_its_method() -> None:
    opencv = convbench.get_backend("opencv-cpu")
    if opencv.unavailable_reason:
        pytest.skip(opencv.unavailable_reason)
    assert tolerance_for(opencv, "float32", (64, 64), (11, 11)) == tolerance("float32", 121)
    assert tolerance_for(opencv, "float32", (64, 64), (11, 12)) == fft_tolerance(
        "float32", fft_points((64, 64), (11, 12))
    )


class _Declares(Backend):
    """A backend that declares an arithmetic convbench does not know."""

    def arithmetic(self, dtype, image_shape, kernel_shape) -> str:
        return "winograd"

    def _plan(self, image, kernel, spec) -> Plan:
        raise AssertionError("never planned")


def test_an_unknown_arithmetic_is_named() -> None:
    with pytest.raises(ValueError, match=r"'winograd'.*'direct', 'fft'"):
        tolerance_for(_Declares("odd"), "float32", (8, 8), (3, 3))


@pytest.mark.parametrize("spec", [ConvSpec(), ConvSpec("convolve", "valid", "fill", 2.0)])
def test_agreement_for_a_direct_backend_is_the_plain_agreement(spec: ConvSpec) -> None:
    rng = np.random.default_rng(1)
    x, k = rng.standard_normal((40, 30), np.float32), rng.standard_normal((5, 4), np.float32)
    found = convbench.get_backend("scipy-correlate2d")
    out, ref = found.prepare(x, k, spec).result(), convbench.reference(x, k, spec)
    plain = agreement(out, ref, terms=20, precision="float32", scale=error_scale(x, k, spec))
    assert agreement_for(found, out, ref, x, k, spec) == plain


def test_fft_error_scale_is_the_padded_images_largest_pixel_times_the_kernel_norm() -> None:
    x = np.array([[1.0, -3.0], [2.0, np.nan]])
    k = np.array([[3.0, 4.0]])
    assert fft_error_scale(x, k) == 3.0 * 5.0
    assert fft_error_scale(x, k, ConvSpec(mode="full", fillvalue=-7.0)) == 7.0 * 5.0


def _corner_case() -> tuple[np.ndarray, np.ndarray, ConvSpec]:
    """A bright corner pixel that 'valid' pairs with one tiny tap: the direct sums stay small,
    while an FFT mixes the bright pixel's rounding into every output."""
    rng = np.random.default_rng(2)
    x, k = rng.standard_normal((256, 256)), rng.standard_normal((3, 3))
    x[0, 0], k[0, 0] = 1e4, 1e-3
    return x.astype(np.float32), k.astype(np.float32), ConvSpec(mode="valid")


def test_an_fft_result_is_judged_by_what_an_fft_can_do() -> None:
    x, k, spec = _corner_case()
    fft = convbench.get_backend("scipy-fftconvolve")
    out, ref = fft.prepare(x, k, spec).result(), convbench.reference(x, k, spec)
    as_direct = agreement(out, ref, terms=9, precision="float32", scale=error_scale(x, k, spec))
    assert not as_direct.ok
    found = agreement_for(fft, out, ref, x, k, spec)
    assert found.ok
    assert found.tolerance == fft_tolerance("float32", fft_points(x.shape, k.shape))


@pytest.mark.parametrize("name", ["scipy-fftconvolve", "scipy-oaconvolve"])
def test_the_fft_tolerance_still_catches_an_error(name: str) -> None:
    rng = np.random.default_rng(3)
    x, k = rng.standard_normal((256, 256), np.float32), rng.standard_normal((7, 7), np.float32)
    backend = convbench.get_backend(name)
    out, ref = backend.prepare(x, k).result(), convbench.reference(x, k)
    assert agreement_for(backend, out, ref, x, k).ok
    # One output off by a hundredth of a percent of the largest: far beyond float32 rounding.
    wrong = out.copy()
    wrong[100, 100] += np.float32(1e-4 * np.abs(ref).max())
    assert not agreement_for(backend, wrong, ref, x, k).ok
    # An output rounded to bfloat16's 8 bits is not float32 work either.
    coarse = (out.view(np.uint32) & np.uint32(0xFFFF0000)).view(np.float32)
    assert not agreement_for(backend, coarse, ref, x, k).ok


def test_seeded_normal_margin() -> None:
    """On seeded normal inputs, an FFT's error sits well inside its tolerance (no slack hidden
    in a loose factor, none missing)."""
    rng = np.random.default_rng(4)
    x, k = rng.standard_normal((512, 512), np.float32), rng.standard_normal((15, 15), np.float32)
    backend = convbench.get_backend("scipy-fftconvolve")
    found = agreement_for(backend, backend.prepare(x, k).result(), convbench.reference(x, k), x, k)
    assert 0.005 < found.max_rel / found.tolerance < 0.2
    assert math.isclose(found.tolerance, 8 * U32 * math.log2(554 * 554))
