"""Agreement metrics and tolerances."""

from __future__ import annotations

import importlib
import math
from unittest import mock

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from convbench import ConvSpec, agreement, reference, tolerance
from convbench.agreement import CEILING, UNIT_ROUNDOFF, ulp_distance
from convbench.reference import error_scale
from convbench.spec import FLOAT_DTYPES, numpy_dtype

# The module, which the package's ``agreement`` function shadows as an attribute.
agreement_module = importlib.import_module("convbench.agreement")

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


def test_tolerance_stops_at_the_ceiling() -> None:
    assert tolerance("bfloat16", 1) == 8 * 2.0**-8 < CEILING
    assert tolerance("bfloat16", 3 * 3) == CEILING == 2.0**-4
    assert tolerance("float16", 15 * 15) == 8 * 2.0**-11 * 15 < CEILING
    assert tolerance("bfloat16", 32 * 32) == CEILING
    assert tolerance("tf32", 64 * 64) == CEILING
    assert tolerance("float32", 10**30) == CEILING
    # Where honest arithmetic lives, the ceiling changes nothing.
    assert tolerance("float32", 63 * 63) == pytest.approx(8 * 2.0**-24 * 63)


@pytest.mark.parametrize(
    ("terms", "error", "message"),
    [
        (0, ValueError, "terms=0 must be finite and at least 1"),
        (0.5, ValueError, "terms=0.5 must be"),
        (-9, ValueError, "terms=-9 must be"),
        (math.inf, ValueError, "terms=inf must be finite"),
        (math.nan, ValueError, "terms=nan must be finite"),
        (True, TypeError, "terms=True must be a real number"),
        ("9", TypeError, "terms='9' must be a real number"),
    ],
)
def test_bad_terms_are_refused_by_name(terms: object, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        tolerance("float32", terms)  # type: ignore[arg-type]
    with pytest.raises(error, match=message):
        agreement(np.ones(3), np.ones(3), terms=terms)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("scale", "error", "message"),
    [
        (math.inf, ValueError, "scale=inf must be finite and at least 0"),
        (-math.inf, ValueError, "scale=-inf must be finite"),
        (math.nan, ValueError, "scale=nan must be finite"),
        (-1.0, ValueError, "scale=-1.0 must be"),
        (np.float32(np.inf), ValueError, r"scale=np.float32\(inf\) must be finite"),
        ("2", TypeError, "scale='2' must be a real number"),
        (False, TypeError, "scale=False must be a real number"),
    ],
)
def test_bad_scale_is_refused_by_name(scale: object, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        agreement(np.ones(3), np.ones(3), scale=scale)  # type: ignore[arg-type]


def test_scale_of_zero_inputs_is_the_default() -> None:
    ref = np.array([1.0, -2.0])
    actual = ref + 1e-3
    assert agreement(actual, ref, scale=0.0) == agreement(actual, ref)


def test_the_reported_loopholes_are_closed() -> None:
    ref = np.random.default_rng(2).standard_normal((16, 16)) * 40
    zeros = np.zeros((16, 16), numpy_dtype("bfloat16"))
    found = agreement(zeros, ref, terms=32 * 32)
    assert not found.ok and found.max_rel == 1.0 and found.tolerance == CEILING
    assert not agreement(zeros, ref, terms=64 * 64).ok
    assert not agreement(ref + 100, ref, terms=10**30).ok
    with pytest.raises(ValueError, match="scale=inf"):
        agreement(ref + 100, ref, scale=math.inf)


def test_a_given_tolerance_stops_at_the_ceiling_too() -> None:
    ref = np.array([[4.0, -2.0]])
    assert agreement(ref * 1.01, ref, tol=0.02).ok
    found = agreement(ref * 1.5, ref, tol=0.9)
    assert found.tolerance == CEILING and not found.ok
    with pytest.raises(ValueError, match="tol=inf must be finite"):
        agreement(ref, ref, tol=math.inf)


PRECISIONS = st.sampled_from([None, *UNIT_ROUNDOFF])
TERMS = st.one_of(st.none(), st.integers(1, 10**30))
SCALES = st.one_of(st.none(), st.floats(0, 1e300))


@settings(max_examples=200, deadline=None)
@given(
    dtype=st.sampled_from(FLOAT_DTYPES),
    precision=PRECISIONS,
    terms=TERMS,
    scale=SCALES,
    magnitude=st.sampled_from([1e-30, 1e-3, 1.0, 1e4]),
    seed=st.integers(0, 2**32 - 1),
)
def test_no_answer_as_far_off_as_zero_is_ever_ok(dtype, precision, terms, scale, magnitude, seed):
    rng = np.random.default_rng(seed)
    ref = rng.standard_normal((4, 5)) * magnitude
    ref[0, 0] = magnitude  # never all zero
    for answer in (np.zeros(ref.shape), -ref):
        found = agreement(
            answer.astype(numpy_dtype(dtype)), ref, terms=terms, precision=precision, scale=scale
        )
        assert not found.ok and found.max_rel >= 1, found


def _unblocked(actual: np.ndarray, ref: np.ndarray) -> tuple[float, float, float, float, int]:
    """max_abs, max_rel, rel_l2, max_ulp and non-finite mismatches, over whole arrays at once."""
    a, r = actual.astype(np.float64), ref.astype(np.float64)
    finite = np.isfinite(a) & np.isfinite(r)
    same = (np.isnan(a) & np.isnan(r)) | (np.isinf(a) & (a == r))
    mismatched = int(np.count_nonzero(~finite & ~same))
    if not finite.any():
        return 0.0, 0.0, 0.0, 0.0, mismatched
    diff = np.abs(a[finite] - r[finite])
    largest = float(np.abs(r[finite]).max())
    max_abs = float(diff.max())
    max_rel = max_abs / largest if largest else (0.0 if max_abs == 0 else math.inf)
    norm = float(np.linalg.norm(r[finite]))
    rel_l2 = float(np.linalg.norm(diff)) / norm if norm else (0.0 if max_abs == 0 else math.inf)
    max_ulp = float(ulp_distance(actual[finite], ref[finite]).max())
    return max_abs, max_rel, rel_l2, max_ulp, mismatched


SPECIALS = st.sampled_from([np.nan, np.inf, -np.inf, 0.0])


@st.composite
def pairs(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    """An actual (any float dtype) near a float64 reference, with NaNs and infinities in both."""
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=9))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    ref = rng.standard_normal(shape)
    dtype = numpy_dtype(draw(st.sampled_from(FLOAT_DTYPES)))
    actual = (ref * (1 + 1e-3 * rng.standard_normal(shape))).astype(dtype)
    for array in (ref, actual):
        for _ in range(draw(st.integers(0, 3))):
            array[tuple(rng.integers(0, n) for n in shape)] = draw(SPECIALS)
    return actual, ref


@settings(max_examples=200, deadline=None)
@given(pair=pairs(), block=st.integers(1, 40))
def test_blocks_give_the_whole_array_answer(pair: tuple[np.ndarray, np.ndarray], block: int):
    actual, ref = pair
    max_abs, max_rel, rel_l2, max_ulp, mismatched = _unblocked(actual, ref)
    with mock.patch.object(agreement_module, "BLOCK_ELEMENTS", block):
        found = agreement(actual, ref)
    assert (found.max_abs, found.max_rel, found.max_ulp) == (max_abs, max_rel, max_ulp)
    assert found.nonfinite_mismatch == mismatched
    assert found.rel_l2 == pytest.approx(rel_l2, rel=1e-12, abs=0)


def test_rel_l2_does_not_overflow() -> None:
    ref = np.full((3, 4), 1e300)
    actual = ref * (1 + 1e-6)
    found = agreement(actual, ref)
    assert found.rel_l2 == pytest.approx(1e-6, rel=1e-6)
    with np.errstate(over="ignore"):
        assert np.isinf(np.linalg.norm(ref))  # what a one-pass norm would have divided by


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_byte_swapped_actual_is_read_by_value(dtype: str) -> None:
    ref = np.array([[1.0, -2.5, 3.0]])
    native = np.nextafter(ref.astype(dtype), np.array(np.inf, dtype))
    swapped = native.astype(native.dtype.newbyteorder())
    assert agreement(swapped, ref) == agreement(native, ref)
    assert agreement(native, ref).max_ulp == 1
