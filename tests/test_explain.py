"""convbench.explain: every relation between two results, random shapes, and what it must refuse
(the command line: test_explain_cli.py)."""

from __future__ import annotations

import importlib.util
import itertools

import numpy as np
import pytest
import scipy.signal
from hypothesis import given, settings
from hypothesis import strategies as st

import convbench
from convbench.explain import ORIENTATIONS, TRANSFORMS, compose, relative
from convbench.spec import BOUNDARIES, MODES, OPS, ConvSpec


def case(shape=(40, 36), kshape=(3, 3), seed=0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    image = rng.standard_normal(shape).astype(np.float32)
    return image, rng.standard_normal(kshape).astype(np.float32)


def conv(image, kernel, op="correlate", mode="same", boundary="fill", transform="identity"):
    """The float32 result of ``spec`` on the kernel in orientation ``transform``."""
    oriented = np.ascontiguousarray(ORIENTATIONS[transform](kernel))
    spec = ConvSpec(op=op, mode=mode, boundary=boundary)
    return convbench.reference(image, oriented, spec).astype(np.float32)


def explain_pair(kshape, side_a: dict, side_e: dict):
    """explain() of ``conv(**side_a)`` and ``conv(**side_e)`` on one case, with the two results."""
    image, kernel = case(kshape=kshape)
    actual, expected = conv(image, kernel, **side_a), conv(image, kernel, **side_e)
    return convbench.explain(actual, expected, image, kernel), actual, expected


def anchor(op: str, mode: str, transform: str, kernel_shape) -> tuple[int, int]:
    """Offset's definition: image pixel under the correlation kernel's (K-1)//2 for output 0."""
    a, b = ORIENTATIONS[transform](np.empty(kernel_shape)).shape
    pad = ConvSpec(op=op, mode=mode).padding((a, b))
    return (a - 1 - pad.top) - a // 2, (b - 1 - pad.left) - b // 2


def offset_between(side_a, side_e, kernel_shape) -> tuple[int, int]:
    (ya, xa), (ye, xe) = anchor(*side_a, kernel_shape), anchor(*side_e, kernel_shape)
    return ya - ye, xa - xe


def tf32(x: np.ndarray) -> np.ndarray:
    """Round float32 mantissas to TF32's 10 bits (to nearest, ties away from zero)."""
    bits = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)
    return ((bits + np.uint32(0x1000)) & np.uint32(0xFFFFE000)).view(np.float32)


# --- the dihedral bookkeeping ------------------------------------------------------------------


@pytest.mark.parametrize(("base", "other"), list(itertools.product(ORIENTATIONS, repeat=2)))
def test_relative_and_compose_match_numpy(base: str, other: str) -> None:
    k = np.arange(12.0).reshape(3, 4)
    found = relative(base, other)
    assert np.array_equal(ORIENTATIONS[found](ORIENTATIONS[base](k)), ORIENTATIONS[other](k))
    assert np.array_equal(
        ORIENTATIONS[compose(base, other)](k), ORIENTATIONS[other](ORIENTATIONS[base](k))
    )


def test_transform_names_are_the_numpy_meanings() -> None:
    k = np.arange(6.0).reshape(2, 3)
    expected = {
        "rot90": np.rot90(k, 1),
        "rot180": np.rot90(k, 2),
        "rot270": np.rot90(k, 3),
        "transpose": k.T,
        "antitranspose": np.rot90(k, 2).T,
        "flipud": np.flipud(k),
        "fliplr": np.fliplr(k),
    }
    assert set(TRANSFORMS) == set(expected)
    for name, want in expected.items():
        assert np.array_equal(ORIENTATIONS[name](k), want)


# --- each relation alone ------------------------------------------------------------------------


@pytest.mark.parametrize("transform", list(ORIENTATIONS))
@pytest.mark.parametrize("kshape", [(3, 3), (4, 3), (2, 5)])
def test_each_transform(transform: str, kshape) -> None:
    found, _, _ = explain_pair(kshape, {}, {"transform": transform})
    assert found.explained
    assert found.transform == (None if transform == "identity" else transform)
    assert (found.offset, found.boundary, found.mode) == ((0, 0), None, None)
    assert found.precision == "exact"


@pytest.mark.parametrize("kshape", [(3, 3), (5, 3), (4, 4), (4, 3), (3, 4), (2, 6)])
def test_convolve_vs_correlate_is_rot180_with_the_even_kernel_offset(kshape) -> None:
    found, _, _ = explain_pair(kshape, {"op": "correlate"}, {"op": "convolve"})
    assert found.explained and found.transform == "rot180"
    assert found.offset == (int(kshape[0] % 2 == 0), int(kshape[1] % 2 == 0))
    assert "cross-correlation" in found.message
    if any(k % 2 == 0 for k in kshape):
        assert "even kernel" in found.message
    assert "scipy.signal.convolve2d(image, kernel, mode='same')" in found.message


@pytest.mark.parametrize(("mode_a", "mode_e"), list(itertools.permutations(MODES, 2)))
@pytest.mark.parametrize("kshape", [(3, 5), (4, 2)])
def test_mode_pairs_and_the_literal_offset(mode_a: str, mode_e: str, kshape) -> None:
    found, actual, expected = explain_pair(kshape, {"mode": mode_a}, {"mode": mode_e})
    assert found.explained and found.transform is None and found.boundary is None
    assert found.mode == (mode_a, mode_e)
    dy, dx = found.offset
    assert (dy, dx) == offset_between(
        ("correlate", mode_a, "identity"), ("correlate", mode_e, "identity"), kshape
    )
    # The definition: expected[i + dy, j + dx] == actual[i, j] wherever both exist.
    h, w = actual.shape
    rows = [i for i in range(h) if 0 <= i + dy < expected.shape[0]]
    cols = [j for j in range(w) if 0 <= j + dx < expected.shape[1]]
    shifted = expected[rows[0] + dy : rows[-1] + dy + 1, cols[0] + dx : cols[-1] + dx + 1]
    assert np.array_equal(shifted, actual[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1])


@pytest.mark.parametrize(("boundary_a", "boundary_e"), list(itertools.permutations(BOUNDARIES, 2)))
@pytest.mark.parametrize("kshape", [(3, 3), (4, 2)])
def test_each_boundary_pair(boundary_a: str, boundary_e: str, kshape) -> None:
    found, _, _ = explain_pair(kshape, {"boundary": boundary_a}, {"boundary": boundary_e})
    assert found.explained
    assert found.boundary == (boundary_a, boundary_e)
    assert (found.transform, found.offset, found.mode) == (None, (0, 0), None)
    assert f"boundary='{boundary_e}'" in found.message or boundary_e == "fill"


def test_valid_results_never_see_the_boundary() -> None:
    image, kernel = case()
    actual = conv(image, kernel, mode="valid", boundary="wrap")
    expected = conv(image, kernel, mode="valid", boundary="symm")
    found = convbench.explain(actual, expected, image, kernel)
    assert found.explained and found.boundary is None and found.precision == "exact"


# --- precision ----------------------------------------------------------------------------------


def test_float32_accumulation_is_rounding() -> None:
    image, kernel = case(shape=(64, 64), kshape=(5, 5))
    actual = scipy.signal.correlate2d(image, kernel, mode="same")
    expected = scipy.signal.convolve2d(image, kernel, mode="same")
    found = convbench.explain(actual, expected, image, kernel)
    assert found.explained and found.transform == "rot180" and found.precision == "rounding"


def test_float64_results_use_the_float64_rounding_level() -> None:
    image, kernel = (x.astype(np.float64) for x in case(shape=(32, 32)))
    actual = scipy.signal.correlate2d(image, kernel, mode="same")
    expected = scipy.signal.correlate2d(image, kernel, mode="full")
    found = convbench.explain(actual, expected, image, kernel)
    assert found.precision in ("exact", "rounding")
    noisy = expected * (1 + 1e-9 * np.random.default_rng(3).standard_normal(expected.shape))
    assert convbench.explain(actual, noisy, image, kernel).precision == "reduced"


@pytest.mark.parametrize("kshape", [(3, 3), (4, 4), (7, 7)])
def test_tf32_rounded_inputs_are_reduced_precision(kshape) -> None:
    image, kernel = case(shape=(96, 80), kshape=kshape)
    actual = scipy.signal.correlate2d(tf32(image), tf32(kernel), mode="same")
    expected = scipy.signal.convolve2d(image, kernel, mode="same")
    found = convbench.explain(actual, expected, image, kernel)
    assert found.explained and found.transform == "rot180" and found.precision == "reduced"
    assert "TF32" in found.message
    assert found.offset == (int(kshape[0] % 2 == 0), int(kshape[1] % 2 == 0))


def test_bfloat16_level_is_reduced_and_named() -> None:
    image, kernel = case(shape=(48, 48))
    exact = conv(image, kernel)
    # Relative noise of bfloat16 size (2**-8) on every output.
    noise = 2.0**-8 * np.random.default_rng(5).uniform(-1, 1, exact.shape)
    found = convbench.explain(exact, (exact * (1 + noise)).astype(np.float32), image, kernel)
    assert found.explained and found.precision == "reduced" and "bfloat16" in found.message


def test_a_float16_result_is_reduced_and_named() -> None:
    image, kernel = case(shape=(48, 48))
    half = [x.astype(np.float16).astype(np.float32) for x in (image, kernel)]
    actual = scipy.signal.correlate2d(*half, mode="same").astype(np.float16)
    found = convbench.explain(actual, conv(image, kernel, op="convolve"), image, kernel)
    assert found.explained and found.transform == "rot180" and found.precision == "reduced"
    assert "actual is stored in float16" in found.message


# --- combinations -------------------------------------------------------------------------------


def test_rotation_transpose_offset_mode_and_boundary_together() -> None:
    image, kernel = case(kshape=(4, 4))
    side_a, side_e = ("correlate", "same", "identity"), ("convolve", "full", "transpose")
    actual = conv(image, kernel)
    expected = conv(
        image, kernel, op="convolve", mode="full", boundary="wrap", transform="transpose"
    )
    found = convbench.explain(actual, expected, image, kernel)
    assert found.explained
    assert found.transform == "antitranspose"
    assert found.mode == ("same", "full") and found.boundary == ("fill", "wrap")
    assert found.offset == offset_between(side_a, side_e, kernel.shape) == (2, 2)


def test_transposed_non_square_kernel_with_the_even_offset() -> None:
    image, kernel = case(kshape=(4, 3))
    actual = conv(image, kernel)
    expected = conv(image, kernel, op="convolve", transform="transpose")
    found = convbench.explain(actual, expected, image, kernel)
    assert found.transform == "antitranspose"
    assert found.offset == offset_between(
        ("correlate", "same", "identity"), ("convolve", "same", "transpose"), kernel.shape
    )


@settings(max_examples=60, deadline=None)
@given(
    data=st.data(),
    kshape=st.tuples(st.integers(2, 5), st.integers(2, 5)),
    dtype=st.sampled_from(["float32", "float64"]),
)
def test_random_shapes_and_relations(data, kshape, dtype) -> None:
    # Large enough for a 'valid' result with the kernel in either orientation.
    side = st.integers(max(kshape) + 2, 24)
    shape = (data.draw(side), data.draw(side))
    image, kernel = case(shape, kshape, seed=data.draw(st.integers(0, 2**32 - 1)))
    image, kernel = image.astype(dtype), kernel.astype(dtype)
    sides = [
        (
            data.draw(st.sampled_from(OPS)),
            data.draw(st.sampled_from(MODES)),
            data.draw(st.sampled_from(BOUNDARIES)),
            data.draw(st.sampled_from(list(ORIENTATIONS))),
        )
        for _ in range(2)
    ]
    (op_a, mode_a, b_a, t_a), (op_e, mode_e, b_e, t_e) = sides
    results = []
    for op, mode, boundary, transform in sides:
        oriented = np.ascontiguousarray(ORIENTATIONS[transform](kernel))
        spec = ConvSpec(op=op, mode=mode, boundary=boundary)
        results.append(convbench.get_backend(f"scipy-{op}2d").prepare(image, oriented, spec))
    actual, expected = (prepared.result() for prepared in results)
    found = convbench.explain(actual, expected, image, kernel)

    def correlation(op: str, transform: str) -> str:
        return transform if op == "correlate" else compose(transform, "rot180")

    transform = relative(correlation(op_a, t_a), correlation(op_e, t_e))
    assert found.explained, found.message
    assert found.transform == (None if transform == "identity" else transform)
    assert found.offset == offset_between(
        (op_a, mode_a, correlation(op_a, t_a)), (op_e, mode_e, correlation(op_e, t_e)), kshape
    )
    assert found.mode == (None if mode_a == mode_e else (mode_a, mode_e))
    border_seen = b_a != b_e and "valid" not in (mode_a, mode_e)
    assert found.boundary == ((b_a, b_e) if border_seen else None)
    assert found.precision in ("exact", "rounding")


# --- what must not be explained -----------------------------------------------------------------


@pytest.mark.parametrize("factor", [2.0, 0.5, -1.0, 1.05])
def test_scaled_results_are_not_explained(factor: float) -> None:
    image, kernel = case()
    actual = conv(image, kernel)
    for pair in ((actual, factor * actual), (factor * actual, actual)):
        found = convbench.explain(*pair, image, kernel)
        assert not found.explained and found.precision == "unknown"
        assert found.transform is None and found.offset == (0, 0)
    assert "multiplied by" in found.message or factor == -1.0


def test_unrelated_arrays_are_not_explained() -> None:
    image, kernel = case()
    rng = np.random.default_rng(9)
    actual = conv(image, kernel)
    assert not convbench.explain(actual, rng.standard_normal(actual.shape), image, kernel).explained
    other_image = rng.standard_normal(image.shape).astype(np.float32)
    found = convbench.explain(actual, conv(other_image, kernel), image, kernel)
    assert not found.explained
    assert "actual is scipy.signal.correlate2d(image, kernel, mode='same')" in found.message
    flipped_output = actual[:, ::-1]
    assert not convbench.explain(actual, flipped_output, image, kernel).explained


def test_a_size_that_is_no_mode_is_not_explained() -> None:
    image, kernel = case()
    actual = conv(image, kernel)
    found = convbench.explain(actual, actual[:-3, :-3], image, kernel)
    assert not found.explained and "not a convolution size" in found.message


def test_identical_or_rounding_close_arrays_need_no_explaining() -> None:
    image, kernel = case()
    unrelated = np.random.default_rng(2).standard_normal(image.shape).astype(np.float32)
    found = convbench.explain(unrelated, unrelated.copy(), image, kernel)
    assert found.explained and found.precision == "exact" and found.transform is None
    close = (unrelated * (1 + 2.0**-24)).astype(np.float32)
    assert convbench.explain(unrelated, close, image, kernel).precision in ("exact", "rounding")


def test_a_constant_image_ties_every_candidate_and_still_answers() -> None:
    image, kernel = np.ones((64, 64), np.float32), case(kshape=(5, 5))[1]
    actual = conv(image, kernel)
    found = convbench.explain(actual, conv(image, kernel, mode="full"), image, kernel)
    assert found.explained and found.mode == ("same", "full") and found.offset == (2, 2)
    zeros = np.zeros_like(image)
    assert convbench.explain(zeros, zeros, zeros, kernel).precision == "exact"


def test_nan_propagates_and_is_still_explained() -> None:
    image, kernel = case()
    image[10, 7] = np.nan
    found = convbench.explain(
        conv(image, kernel), conv(image, kernel, op="convolve"), image, kernel
    )
    assert found.explained and found.transform == "rot180"


def test_bad_input_names_the_array() -> None:
    image, kernel = case()
    actual = conv(image, kernel)
    with pytest.raises(ValueError, match="actual must be a non-empty 2-D array"):
        convbench.explain(actual[None], actual, image, kernel)
    with pytest.raises(TypeError, match="kernel dtype"):
        convbench.explain(actual, actual, image, kernel.astype(complex))


def test_explanation_is_frozen_and_prints_its_message() -> None:
    image, kernel = case()
    found = convbench.explain(
        conv(image, kernel), conv(image, kernel, op="convolve"), image, kernel
    )
    assert str(found) == found.message
    with pytest.raises(AttributeError):
        found.explained = False  # type: ignore[misc]


# --- the seed: Keras Conv2D(padding='same') vs scipy.signal.convolve2d(image, kernel.T) ----------


def check_seed_explanation(found: convbench.Explanation) -> None:
    assert found.explained
    assert found.transform == "antitranspose" and found.offset == (0, 0)
    assert found.precision == "rounding"
    message = found.message
    assert "cross-correlation" in message and "transposed kernel" in message
    assert "scipy.signal.correlate2d(image, kernel, mode='same')" in message
    assert "scipy.signal.convolve2d(image, kernel.T, mode='same')" in message


def test_seed_scipy_only() -> None:
    """The seed with scipy's correlate2d standing in for Keras (which computes the same)."""
    image, kernel = case(shape=(128, 128))
    keras_like = scipy.signal.correlate2d(image, kernel, mode="same")
    user = scipy.signal.convolve2d(image, kernel.T, mode="same")
    check_seed_explanation(convbench.explain(keras_like, user, image, kernel))


@pytest.mark.skipif(
    importlib.util.find_spec("tensorflow") is None, reason="TensorFlow is not installed"
)
def test_seed_keras_conv2d_same_vs_scipy_convolve2d_transposed() -> None:
    """The question convbench exists for, run with real Keras as the user wrote it."""
    from convbench.backends.tensorflow_conv import import_tensorflow

    tf = import_tensorflow()
    image, kernel = case(shape=(128, 128))
    layer = tf.keras.layers.Conv2D(1, kernel.shape, padding="same", use_bias=False)
    layer.build((1, *image.shape, 1))
    layer.set_weights([kernel[:, :, None, None]])
    keras_out = np.asarray(layer(image[None, :, :, None]))[0, :, :, 0]
    user = scipy.signal.convolve2d(image, kernel.T, mode="same")
    check_seed_explanation(convbench.explain(keras_out, user, image, kernel))


# --- the package --------------------------------------------------------------------------------


def test_the_public_names_are_one_object_wherever_imported() -> None:
    # ``import convbench.explain.search as search`` would fail: the package's attribute
    # ``convbench.explain`` is the function, so submodules are reached through ``from``.
    from convbench.explain import KERNEL_CODE, Explanation, explain, message, search

    assert convbench.explain is explain and convbench.Explanation is Explanation
    assert ORIENTATIONS is search.ORIENTATIONS and KERNEL_CODE is message.KERNEL_CODE
    assert set(KERNEL_CODE) == set(ORIENTATIONS)
    kernel = case()[1]
    for name, code in KERNEL_CODE.items():
        assert np.array_equal(eval(code, {"np": np, "kernel": kernel}), ORIENTATIONS[name](kernel))
