"""Agreement metrics and tolerances."""

from __future__ import annotations

import math

import numpy as np
import pytest

from convbench import ConvSpec, agreement, reference, tolerance
from convbench.agreement import ulp_distance
from convbench.reference import error_scale

try:
    from ml_dtypes import bfloat16
except ImportError:  # ml_dtypes comes with jax and tensorflow
    bfloat16 = None


def test_identical_results_agree_exactly() -> None:
    ref = np.random.default_rng(0).standard_normal((8, 8))
    found = agreement(ref.astype(np.float32), ref, terms=9)
    assert found.ok and found.max_ulp == 0.0
    assert found.max_abs <= 2.0**-24 * np.abs(ref).max()


def test_known_perturbation_is_measured_exactly() -> None:
    ref = np.array([[1.0, -4.0], [2.0, 0.5]])
    actual = ref.copy()
    actual[1, 0] += 1e-3
    found = agreement(actual, ref, terms=4)
    assert found.max_abs == pytest.approx(1e-3)
    assert found.max_rel == pytest.approx(1e-3 / 4.0)
    assert found.rel_l2 == pytest.approx(1e-3 / np.linalg.norm(ref))
    assert not found.ok


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_ulp_distance_counts_representable_values(dtype: type) -> None:
    one = np.array([1.0, -1.0, 0.0], dtype)
    up = np.nextafter(one, np.array(np.inf, dtype))
    np.testing.assert_array_equal(ulp_distance(up, one.astype(np.float64)), [1, 1, 1])
    # Across zero: the smallest subnormals either side of 0 are two steps apart.
    tiny = np.nextafter(np.array(0, dtype), np.array(1, dtype))
    assert ulp_distance(np.array([tiny]), np.array([-float(tiny)]))[0] == 2


@pytest.mark.skipif(bfloat16 is None, reason="ml_dtypes is not installed")
def test_ulp_distance_in_bfloat16() -> None:
    actual = np.array([1.0078125], bfloat16)  # the next bfloat16 after 1.0
    assert ulp_distance(actual, np.array([1.0]))[0] == 1


def test_nan_in_both_agrees_and_nan_in_one_does_not() -> None:
    ref = np.array([1.0, np.nan, np.inf, 2.0])
    assert agreement(ref.copy(), ref).ok
    actual = ref.copy()
    actual[3] = np.nan
    found = agreement(actual, ref)
    assert not found.ok and found.nonfinite_mismatch == 1
    flipped = ref.copy()
    flipped[2] = -np.inf
    assert agreement(flipped, ref).nonfinite_mismatch == 1


def test_tolerance_rule() -> None:
    assert tolerance("float32", 9) == pytest.approx(8 * 2.0**-24 * 3)
    assert tolerance("float64", 225) == pytest.approx(8 * 2.0**-53 * 15)
    assert tolerance("tf32", 16) == pytest.approx(8 * 2.0**-11 * 4)
    assert tolerance("float32") == pytest.approx(8 * 2.0**-24 * 16)
    with pytest.raises(ValueError, match="precision 'int8' is not one of"):
        tolerance("int8", 9)
    with pytest.raises(ValueError, match="terms=0"):
        tolerance("float32", 0)


def test_tf32_error_fails_float32_but_passes_as_tf32() -> None:
    ref = np.random.default_rng(1).standard_normal((64, 64))
    actual = (ref * (1 + 3e-4)).astype(np.float32)
    assert not agreement(actual, ref, terms=9).ok
    assert agreement(actual, ref, terms=9, precision="tf32").ok


def test_shape_mismatch_is_an_error_pointing_to_explain() -> None:
    with pytest.raises(ValueError, match="explain"):
        agreement(np.zeros((3, 3)), np.zeros((4, 4)))


def test_all_zero_reference() -> None:
    zero = np.zeros((2, 2))
    assert agreement(zero, zero).max_rel == 0.0
    assert math.isinf(agreement(zero + 1e-9, zero).max_rel)


def test_scale_judges_cancelling_results_by_their_terms() -> None:
    image = np.array([[1.0, 1.0 + 2.0**-20]])
    kernel = np.array([[1.0, -1.0]])
    spec = ConvSpec(mode="valid")
    ref = reference(image, kernel, spec)  # -2**-20: the terms cancel
    actual = ref + 2.0**-52  # one float64 rounding of a term of size 1
    assert not agreement(actual, ref, terms=2).ok
    scale = error_scale(image, kernel, spec)
    assert scale == pytest.approx(2.0)
    assert agreement(actual, ref, terms=2, scale=scale).ok
