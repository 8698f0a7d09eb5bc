"""The FFT, ndimage, OpenCV and Keras backends: the canonical operation with large kernels too,
and the facts they declare (method, arithmetic, precision) held against the libraries."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

import convbench
from convbench.agreement import agreement_for, ulp_distance
from convbench.spec import ConvSpec
from tests.strategies import Case, cases, record

FFT = ("scipy-fftconvolve", "scipy-oaconvolve")
NEW = (*FFT, "scipy-ndimage", "opencv-cpu", "keras-cpu")

# Kernels up to 16x16 reach OpenCV's DFT path (from 50 taps in float64, 130 in float32) and
# oaconvolve's blocks; images up to 40 pixels a side keep the float64 reference cheap.
LARGE = settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _available(name: str) -> convbench.Backend:
    found = convbench.get_backend(name)
    if found.unavailable_reason:
        pytest.skip(f"{name}: {found.unavailable_reason}")
    return found


@pytest.fixture(params=NEW)
def new_backend(request: pytest.FixtureRequest) -> convbench.Backend:
    return _available(request.param)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_large_kernels_match_reference(new_backend: convbench.Backend, dtype: str) -> None:
    @LARGE
    @given(cases(dtype=dtype, max_side=40, max_kernel=16))
    def check(case: Case) -> None:
        prepared = new_backend.prepare(case.image, case.kernel, case.spec)
        out = prepared.result()
        expected = convbench.reference(case.image, case.kernel, case.spec)
        assert out.dtype == case.image.dtype
        assert out.shape == expected.shape == prepared.output_shape
        found = agreement_for(new_backend, out, expected, case.image, case.kernel, case.spec)
        record(new_backend.name, dtype, found.max_rel)
        assert found.ok, f"{new_backend.name} {case.spec} {prepared.padding}: {found}"

    check()


@pytest.mark.parametrize("name", NEW)
def test_declared_arithmetic(name: str) -> None:
    found = convbench.get_backend(name)
    expected = "fft" if name in FFT else "direct"
    for kernel in ((1, 1), (3, 3), (4, 7)):
        assert found.arithmetic("float32", (64, 64), kernel) == expected


def _integer_case(dtype: str, kernel: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Small integers: a direct sum of their products is exact in float32 and float64, an FFT's
    is not (its rounding errors show at least where the exact sum is zero)."""
    rng = np.random.default_rng(kernel[0] * 1000 + kernel[1])
    image = rng.integers(-1, 2, (2 * kernel[0] + 8, 2 * kernel[1] + 8)).astype(dtype)
    return image, rng.integers(-3, 4, kernel).astype(dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(
    "kernel",
    [(3, 3), (7, 7), (7, 8), (5, 10), (5, 9), (11, 11), (11, 12), (12, 11), (1, 129), (1, 130)],
)
@pytest.mark.parametrize("spec", [ConvSpec(), ConvSpec("convolve", "full", "wrap")])
def test_opencv_method_is_what_filter2d_does(
    dtype: str, kernel: tuple[int, int], spec: ConvSpec
) -> None:
    """``arithmetic`` is OpenCV's own rule (dftFilter2D's thresholds), checked on its results."""
    opencv = _available("opencv-cpu")
    image, weights = _integer_case(dtype, kernel)
    out = opencv.prepare(image, weights, spec).result()
    exact = np.array_equal(out, convbench.reference(image, weights, spec))
    assert opencv.arithmetic(dtype, image.shape, kernel) == ("direct" if exact else "fft")


def test_opencv_settings_name_its_dft_threshold() -> None:
    found = _available("opencv-cpu").settings()
    assert found["opencv.dft_from_taps"] == "float32 130, float64 50"
    assert {"opencv", "opencv.threads", "opencv.ipp"} <= set(found)


@pytest.mark.parametrize(("name", "kernel"), [("opencv-cpu", (12, 12)), ("scipy-ndimage", (5, 4))])
def test_float32_accumulated_in_float64_is_correctly_rounded(
    name: str, kernel: tuple[int, int]
) -> None:
    """OpenCV's DFT and ndimage's sum run in float64 for float32 images and round once."""
    backend = _available(name)
    rng = np.random.default_rng(3)
    x, k = rng.standard_normal((2, 96, 80), np.float32), rng.standard_normal(kernel, np.float32)
    out = backend.prepare(x, k).result()
    assert ulp_distance(out, convbench.reference(x, k)).max() <= 1


def test_scipy_fft_transforms_float32_in_float32() -> None:
    """scipy.fft keeps float32 as complex64, so fftconvolve's float32 errors are float32's."""
    import scipy.fft

    assert scipy.fft.rfftn(np.ones((4, 4), np.float32)).dtype == np.complex64
    rng = np.random.default_rng(4)
    x, k = rng.standard_normal((128, 128), np.float32), rng.standard_normal((9, 9), np.float32)
    found = convbench.agreement(convbench.run("scipy-fftconvolve", x, k), convbench.reference(x, k))
    assert 2.0**-24 < found.max_rel < 2.0**-24 * 100


@pytest.mark.parametrize("name", FFT)
def test_fft_spreads_a_nan_beyond_its_windows(name: str) -> None:
    """A documented difference from direct methods: a NaN spoils every output of the transform
    that holds it (the whole plane for fftconvolve, its blocks for oaconvolve), never another
    plane of a batch."""
    x = np.random.default_rng(6).standard_normal((2, 40, 40))
    x[0, 7, 9] = np.nan
    k = np.random.default_rng(7).standard_normal((4, 3))
    out = convbench.run(name, x, k)
    windows = np.isnan(convbench.reference(x[0], k))
    assert (np.isnan(out[0]) >= windows).all()
    assert np.isnan(out[0]).sum() > windows.sum()
    if name == "scipy-fftconvolve":
        assert np.isnan(out[0]).all()
    np.testing.assert_allclose(out[1], convbench.reference(x[1], k), atol=1e-12)


def test_ndimage_default_origin_is_off_by_one_for_even_kernels() -> None:
    """ndimage centres a window at K//2; correlate 'same' at (K-1)//2: the backend's origin."""
    from scipy import ndimage

    rng = np.random.default_rng(9)
    x, k = rng.standard_normal((12, 12)), rng.standard_normal((4, 4))
    canonical = convbench.reference(x, k, ConvSpec("correlate", "same"))
    default = ndimage.correlate(x, k, mode="constant")
    np.testing.assert_allclose(default[1:, 1:], canonical[:-1, :-1], atol=1e-12)
    assert not np.allclose(default, canonical)
    np.testing.assert_allclose(convbench.run("scipy-ndimage", x, k), canonical, atol=1e-12)


def test_keras_runs_conv2d_on_tensorflow() -> None:
    found = _available("keras-cpu").settings()
    assert found["keras.backend"] == "tensorflow"
    assert int(found["keras"].split(".")[0]) >= 3


def test_keras_on_another_backend_is_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    from convbench.backends.keras_layer import KerasBackend, import_keras

    _available("keras-cpu")
    monkeypatch.setattr(import_keras().backend, "backend", lambda: "jax")
    reason = KerasBackend("keras-cpu").unavailable_reason
    assert reason is not None and "'jax'" in reason and "tensorflow" in reason


def test_keras_same_is_the_seed_report() -> None:
    """A Keras Conv2D with padding='same' is correlate 'same', not scipy's convolve2d."""
    _available("keras-cpu")
    rng = np.random.default_rng(10)
    x, k = rng.standard_normal((20, 20)), rng.standard_normal((4, 4))
    keras_out = convbench.run("keras-cpu", x, k, ConvSpec("correlate", "same"))
    scipy_out = convbench.run("scipy-convolve2d", x, k, ConvSpec("convolve", "same"))
    assert not np.allclose(keras_out, scipy_out)
    np.testing.assert_allclose(keras_out, convbench.reference(x, k), atol=1e-12)


def test_cupy_fftconvolve_is_the_gpu_twin_of_scipy_fftconvolve() -> None:
    found = convbench.get_backend("cupy-fftconvolve")
    assert (found.device_kind, found.cpu_twin, found.library) == (
        "gpu",
        "scipy-fftconvolve",
        "cupy",
    )
    assert found.arithmetic("float32", (64, 64), (3, 3)) == "fft"
    status = {s.name: s for s in convbench.list_backends()}["cupy-fftconvolve"]
    if importlib.util.find_spec("cupy") is None:
        assert not status.available
        assert "'cupy' is not installed" in status.reason
