"""The roofline: a case's direct-method work, the machine's bound for it and the share reached."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from convbench import roofline
from convbench.backends import peak
from convbench.roofline import Achieved, Roofline, Work
from convbench.spec import ConvSpec


def test_work_of_a_same_correlation_counts_two_flops_per_tap_and_each_array_once():
    # 4x5 image, 3x3 kernel, 'same': 20 outputs of 9 taps; 20 + 9 + 20 float32 values moved.
    assert roofline.work((4, 5), (3, 3), "float32") == Work(flops=2 * 9 * 20, bytes=4 * 49)


def test_work_of_a_batch_counts_every_image():
    assert roofline.work((3, 4, 5), (2, 2), "float64") == Work(
        flops=2 * 4 * 60, bytes=8 * (60 + 4 + 60)
    )


def test_work_follows_the_specs_outputs():
    valid = roofline.work((6, 6), (3, 3), "float32", ConvSpec(mode="valid"))
    full = roofline.work((6, 6), (3, 3), "float32", ConvSpec(mode="full"))
    assert valid == Work(flops=2 * 9 * 16, bytes=4 * (36 + 9 + 16))
    assert full == Work(flops=2 * 9 * 64, bytes=4 * (36 + 9 + 64))


def test_intensity_is_flops_per_byte():
    assert Work(flops=300, bytes=100).intensity == 3.0
    # A 'same' 3x3 float32 correlation of a large image: 18 flops per 8 bytes (in and out).
    assert roofline.work((4096, 4096), (3, 3), "float32").intensity == pytest.approx(2.25)


def test_the_bound_is_memory_below_the_ridge_and_the_peak_above():
    roof = Roofline(peak_gflops=100.0, bandwidth_gbs=10.0)
    assert roof.ridge == 10.0
    assert roof.bound(2.0) == 20.0 and roof.limit(2.0) == "memory"
    assert roof.bound(10.0) == 100.0 and roof.limit(10.0) == "compute"
    assert roof.bound(50.0) == 100.0 and roof.limit(50.0) == "compute"
    assert roof.bound(0.0) == 0.0


def test_achieved_is_the_direct_work_over_the_time_against_the_bound():
    roof = Roofline(peak_gflops=100.0, bandwidth_gbs=10.0)
    case = Work(flops=4_000_000_000, bytes=1_000_000_000)  # intensity 4: bound 40 GFLOP/s
    assert roofline.achieved(case, 0.2, roof) == Achieved(
        gflops=20.0, bound_gflops=40.0, share=0.5, limit="memory"
    )
    # An FFT method that does less work than the direct method's passes the direct bound.
    assert roofline.achieved(case, 0.05, roof).share == 2.0


@pytest.mark.parametrize("seconds", [0, -1.0, math.inf, math.nan, None, True])
def test_achieved_refuses_a_time_that_is_not_positive(seconds):
    with pytest.raises(ValueError, match=r"seconds=.* must be a positive finite number"):
        roofline.achieved(Work(1, 1), seconds, Roofline(1.0, 1.0))


@pytest.mark.parametrize(
    ("peak", "bandwidth", "named"),
    [(0.0, 1.0, "peak_gflops=0.0"), (1.0, -2.0, "bandwidth_gbs=-2.0"), (math.nan, 1, "nan")],
)
def test_a_roofline_refuses_ceilings_that_are_not_positive(peak, bandwidth, named):
    with pytest.raises(ValueError, match=named):
        Roofline(peak, bandwidth)


@pytest.mark.parametrize("intensity", [-1.0, math.nan])
def test_the_bound_refuses_a_negative_intensity(intensity):
    with pytest.raises(ValueError, match="intensity"):
        Roofline(1.0, 1.0).bound(intensity)


@given(
    peak=st.floats(1e-3, 1e6),
    bandwidth=st.floats(1e-3, 1e4),
    intensity=st.floats(0, 1e4),
)
def test_the_bound_never_passes_either_ceiling(peak, bandwidth, intensity):
    roof = Roofline(peak, bandwidth)
    bound = roof.bound(intensity)
    assert bound <= peak and bound <= intensity * bandwidth * (1 + 1e-12)
    assert bound == pytest.approx(min(peak, intensity * bandwidth))


ENVIRONMENT = {
    "memory_bandwidth_gbs": 12.5,
    "peak_gflops": {
        "float32": {"gflops": 96.0, "library": "torch", "size": 2048},
        "float64": {"gflops": 48.0, "library": "numpy", "size": 2048},
    },
}


def test_the_roofline_of_an_environment_record():
    assert roofline.from_environment(ENVIRONMENT, "float32") == Roofline(96.0, 12.5)
    assert roofline.from_environment(ENVIRONMENT, "float64") == Roofline(48.0, 12.5)


@pytest.mark.parametrize(
    "record",
    [
        {"memory_bandwidth_gbs": 12.5},  # from before the peak rate was measured
        {**ENVIRONMENT, "memory_bandwidth_gbs": None},
        {**ENVIRONMENT, "peak_gflops": {"float32": {"gflops": "fast"}}},
        {**ENVIRONMENT, "peak_gflops": {"float32": 96.0}},
        {**ENVIRONMENT, "peak_gflops": []},
    ],
)
def test_an_environment_record_without_both_ceilings_has_no_roofline(record):
    assert roofline.from_environment(record, "float32") is None


def test_an_environment_record_has_no_roofline_for_a_dtype_it_did_not_measure():
    assert roofline.from_environment(ENVIRONMENT, "bfloat16") is None


def test_the_roofline_module_imports_no_framework():
    code = (
        "import sys, convbench.roofline; "
        "print(sorted({'torch', 'tensorflow', 'jax', 'cv2'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# The peak rate's measurement (convbench.backends.peak).


def test_the_peak_rate_is_the_best_size_with_its_flop_count(monkeypatch):
    monkeypatch.setattr(peak, "SIZES", (100, 200, 400))
    seconds = iter([0.01, 0.1])  # 100: too short a call, so 200 is tried; 200 is long enough
    monkeypatch.setattr(peak, "_best_seconds", lambda multiply, calls: next(seconds))
    rate = peak.library_rate("numpy", "float32")
    # 2 * 100**3 flops in 0.01 s beats 2 * 200**3 in 0.1 s.
    assert (rate.dtype, rate.library, rate.size) == ("float32", "numpy", 100)
    assert rate.gflops == pytest.approx(0.2)
    assert rate.threads is None
    assert rate.method.startswith("numpy.matmul of two 100x100 float32 matrices (2 n^3 flops)")


@pytest.mark.parametrize("library", peak.installed_libraries())
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_each_installed_library_measures_a_positive_rate(monkeypatch, library, dtype):
    monkeypatch.setattr(peak, "SIZES", (32, 64))
    rate = peak.library_rate(library, dtype)
    assert rate.gflops > 0 and rate.size in (32, 64) and rate.library == library
    assert f"{library}.matmul of two" in rate.method and dtype in rate.method
    assert rate.other_cores is None or rate.other_cores >= 0
    if library == "torch":
        assert rate.threads >= 1 and f"{rate.threads} thread" in rate.method


def test_the_peak_is_the_best_library(monkeypatch):
    def rate(library, dtype):
        gflops = {"numpy": 10.0, "torch": 30.0}[library]
        return peak.PeakRate(dtype, gflops, library, 1024, None, library, None)

    monkeypatch.setattr(peak, "library_rate", rate)
    assert peak.peak_rate("float64", ("numpy", "torch")).library == "torch"
    assert peak.peak_rate("float64", ("numpy",)).gflops == 10.0


@pytest.mark.parametrize(
    ("library", "dtype", "message"),
    [
        ("cupy", "float32", r"library='cupy' must be one of \['numpy', 'torch'\]"),
        ("numpy", "float16", r"dtype='float16' must be 'float32' or 'float64'"),
    ],
)
def test_an_unknown_library_or_dtype_is_refused(library, dtype, message):
    with pytest.raises(ValueError, match=message):
        peak.library_rate(library, dtype)


def test_no_library_is_refused():
    with pytest.raises(ValueError, match="at least one of"):
        peak.peak_rate("float32", ())
