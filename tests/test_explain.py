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
from convbench.spec import BOUNDARIES, MODES, OPS, ConvSpec, numpy_dtype


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


# --- layers: padding, orientation and precision at a stride, dilation and groups ----------------


def layer_case(shape=(2, 4, 12, 12), kernel=(6, 2, 3, 3), seed=0):
    rng = np.random.default_rng(seed)
    return (
        rng.standard_normal(shape).astype(np.float32),
        rng.standard_normal(kernel).astype(np.float32),
    )


def padded(image, kernel, pad, spec: ConvSpec, rotate: bool = False) -> np.ndarray:
    """The float32 layer result with ``pad`` ((top, bottom), (left, right)) of zeros."""
    widths = ((0, 0),) * (image.ndim - 2) + tuple(pad)
    valid = ConvSpec(mode="valid", stride=spec.stride, dilation=spec.dilation, groups=spec.groups)
    weights = np.ascontiguousarray(kernel[..., ::-1, ::-1]) if rotate else kernel
    return convbench.reference(np.pad(image, widths), weights, valid).astype(np.float32)


def test_stride_2_same_vs_symmetric_padding_is_the_padding() -> None:
    spec = ConvSpec(stride=2, groups=2)
    image, kernel = layer_case()
    same = convbench.reference(image, kernel, spec).astype(np.float32)
    torch_like = padded(image, kernel, ((1, 1), (1, 1)), spec)
    assert same.shape == torch_like.shape == (2, 6, 6, 6)
    found = convbench.explain(same, torch_like, image, kernel, spec=spec)
    assert found.explained and found.precision == "exact"
    assert found.padding == (((0, 1), (0, 1)), ((1, 1), (1, 1)))
    assert (found.transform, found.offset, found.mode, found.boundary) == (None, (0, 0), None, None)
    words = " ".join(found.message.split())
    assert "actual pads 0 before and 1 after on both axes, as TensorFlow's 'SAME' does" in words
    assert "ceil(12 / 2) = 6 outputs" in words and "puts the odd one after" in words
    assert "Expected pads 1 on both sides, as torch's padding=1 does." in words
    assert "windows sit 1 pixel apart" in words
    assert "expected = F.conv2d(x, w, stride=2, padding=1, groups=2)" in found.message
    assert "actual   = F.conv2d(F.pad(x, (0, 1, 0, 1)), w, stride=2, groups=2)" in found.message


def test_convolution_at_a_stride_is_rot180_with_the_padding_mirrored() -> None:
    spec = ConvSpec(stride=2)
    image, kernel = layer_case(kernel=(6, 4, 4, 4))
    correlated = convbench.reference(image, kernel, spec).astype(np.float32)
    convolved = convbench.reference(image, kernel, ConvSpec(op="convolve", stride=2))
    found = convbench.explain(correlated, convolved.astype(np.float32), image, kernel, spec=spec)
    assert found.explained and found.transform == "rot180"
    # 'SAME' pads (1, 1) here, the same mirrored: only the kernel differs.
    assert found.padding is None
    assert "every plane rotated 180 degrees" in " ".join(found.message.split())
    assert "expected = F.conv2d(x, w.flip(-2, -1), stride=2, padding=1)" in found.message


def test_convolution_at_stride_2_on_an_even_size_mirrors_the_odd_pixel() -> None:
    spec = ConvSpec(stride=2)
    image, kernel = layer_case(shape=(1, 2, 14, 14), kernel=(2, 2, 3, 3))
    correlated = convbench.reference(image, kernel, spec).astype(np.float32)
    convolved = convbench.reference(image, kernel, ConvSpec(op="convolve", stride=2))
    found = convbench.explain(correlated, convolved.astype(np.float32), image, kernel, spec=spec)
    assert found.transform == "rot180"
    assert found.padding == (((0, 1), (0, 1)), ((1, 0), (1, 0)))
    assert "'SAME' mirrored" in " ".join(found.message.split())


def test_a_whole_stride_apart_lines_the_outputs_up() -> None:
    spec = ConvSpec(stride=2)
    image, kernel = layer_case(kernel=(6, 4, 5, 5))
    same = convbench.reference(image, kernel, spec).astype(np.float32)  # (1, 2) per axis
    shifted = padded(image, kernel, ((3, 0), (3, 0)), spec)
    found = convbench.explain(same, shifted, image, kernel, spec=spec)
    assert found.padding == (((1, 2), (1, 2)), ((3, 0), (3, 0)))
    assert found.offset == (1, 1)
    assert "expected[..., i + 1, j + 1] lines up with actual[..., i, j]" in found.message


def test_even_kernel_at_stride_1_is_an_offset_of_one() -> None:
    image, kernel = layer_case(kernel=(3, 4, 4, 4))
    same = convbench.reference(image, kernel).astype(np.float32)
    other = padded(image, kernel, ((2, 1), (2, 1)), ConvSpec())
    found = convbench.explain(same, other, image, kernel)
    assert found.padding == (((1, 2), (1, 2)), ((2, 1), (2, 1)))
    assert found.offset == (1, 1) and found.transform is None
    assert "a 4-pixel kernel needs 3 pixels of padding" in found.message


def test_valid_vs_same_names_both_modes() -> None:
    spec = ConvSpec(stride=2, dilation=2, groups=2)
    image, kernel = layer_case()
    same = convbench.reference(image, kernel, spec).astype(np.float32)
    valid = convbench.reference(
        image, kernel, ConvSpec(mode="valid", stride=2, dilation=2, groups=2)
    )
    found = convbench.explain(same, valid.astype(np.float32), image, kernel, spec=spec)
    assert found.mode == ("same", "valid")
    assert found.padding == (((1, 2), (1, 2)), ((0, 0), (0, 0)))
    words = " ".join(found.message.split())
    assert "Expected pads nothing, as mode='valid' does" in words
    assert "actual has 6x6 outputs per channel and expected 4x4" in words


@pytest.mark.parametrize(("dtype", "words"), [("float16", "float16"), ("bfloat16", "bfloat16")])
def test_a_layer_in_low_precision_is_reduced(dtype: str, words: str) -> None:
    spec = ConvSpec(stride=2, groups=4)
    image, kernel = layer_case(kernel=(8, 1, 3, 3))
    low = numpy_dtype(dtype)
    exact = convbench.reference(image, kernel, spec).astype(np.float32)
    # Inputs and result in the low dtype, as a library computing in it has them.
    rounded = convbench.reference(image.astype(low), kernel.astype(low), spec).astype(low)
    found = convbench.explain(exact, rounded, image, kernel, spec=spec)
    assert found.explained and found.padding is None and found.precision == "reduced"
    assert f"stored in {words}" in found.message


def test_tf32_inputs_in_a_layer_are_reduced_precision() -> None:
    spec = ConvSpec(dilation=2)
    image, kernel = layer_case(kernel=(6, 4, 3, 3))
    exact = convbench.reference(image, kernel, spec).astype(np.float32)
    rounded = convbench.reference(tf32(image), tf32(kernel), spec).astype(np.float32)
    found = convbench.explain(exact, rounded, image, kernel, spec=spec)
    assert (found.explained, found.precision, found.padding) == (True, "reduced", None)
    assert "TF32" in found.message


def test_identical_layer_results_are_exact_and_say_the_same_computation() -> None:
    image, kernel = layer_case()
    spec = ConvSpec(groups=2)
    result = convbench.reference(image, kernel, spec).astype(np.float32)
    found = convbench.explain(result, result.copy(), image, kernel, spec=spec)
    assert (found.explained, found.precision, found.padding) == (True, "exact", None)
    assert found.message.startswith("Explained: the same computation")


def test_noise_is_not_a_layer_result() -> None:
    image, kernel = layer_case()
    spec = ConvSpec(groups=2)
    result = convbench.reference(image, kernel, spec).astype(np.float32)
    noise = np.random.default_rng(5).standard_normal(result.shape).astype(np.float32)
    found = convbench.explain(result, noise, image, kernel, spec=spec)
    assert not found.explained and found.precision == "unknown" and found.padding is None
    assert "expected is no zero padding or kernel orientation of this layer" in found.message
    assert "groups 2, in NCHW layout" in found.message


def test_a_rescaled_layer_result_is_not_explained() -> None:
    image, kernel = layer_case(kernel=(6, 4, 3, 3))
    result = convbench.reference(image, kernel).astype(np.float32)
    found = convbench.explain(result, 2 * result, image, kernel)
    assert not found.explained
    assert "multiplied by 2" in found.message


def test_a_layer_result_of_the_wrong_shape_says_what_shape_was_expected() -> None:
    image, kernel = layer_case()
    result = convbench.reference(image, kernel, ConvSpec(groups=2)).astype(np.float32)
    nhwc = np.ascontiguousarray(result.transpose(0, 2, 3, 1))
    found = convbench.explain(result, nhwc, image, kernel, spec=ConvSpec(groups=2))
    assert not found.explained
    assert "expected has shape (2, 12, 12, 6) is not (N, C_out, H_out, W_out) = (2, 6, ...)" in (
        " ".join(found.message.split())
    )
    too_small = result[..., :2]
    found = convbench.explain(result, too_small, image, kernel, spec=ConvSpec(groups=2))
    assert "2 columns of output is not a size this layer gives (from 10" in " ".join(
        found.message.split()
    )


def test_plain_images_at_a_stride_are_one_channel_layers() -> None:
    image, kernel = case(shape=(20, 18), kshape=(3, 3))
    spec = ConvSpec(stride=2)
    same = convbench.reference(image, kernel, spec).astype(np.float32)
    torch_like = padded(image, kernel, ((1, 1), (1, 1)), spec)
    found = convbench.explain(same, torch_like, image, kernel, spec=spec)
    assert found.padding == (((0, 1), (0, 1)), ((1, 1), (1, 1)))
    assert "torch.from_numpy(image)[None, None]" in found.message


def test_layer_inputs_are_checked() -> None:
    image, kernel = layer_case()
    result = convbench.reference(image, kernel, ConvSpec(groups=2)).astype(np.float32)
    with pytest.raises(ValueError, match="groups=3 does not divide C_in=4"):
        convbench.explain(result, result, image, kernel, spec=ConvSpec(groups=3))
    with pytest.raises(ValueError, match="needs a 4-D kernel"):
        convbench.explain(result, result, image, kernel[0, 0])
    with pytest.raises(TypeError, match=r"spec must be a convbench\.ConvSpec or None, got dict"):
        convbench.explain(result, result, image, kernel, spec={"stride": 2})
    with pytest.raises(
        ValueError, match=r"a 2-D image \(12, 12\) needs a 2-D kernel and 2-D results"
    ):
        convbench.explain(result, result, image[0, 0], kernel[0, 0])


@st.composite
def layer_geometries(draw: st.DrawFn):
    groups = draw(st.sampled_from([1, 1, 2]))
    spec = ConvSpec(
        stride=(draw(st.integers(1, 3)), draw(st.integers(1, 3))),
        dilation=(draw(st.integers(1, 2)), draw(st.integers(1, 2))),
        groups=groups,
    )
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    h, w = draw(st.integers(8, 14)), draw(st.integers(8, 14))
    image, kernel = layer_case(
        (1, 2 * groups, h, w), (2 * groups, 2, kh, kw), seed=draw(st.integers(0, 99))
    )
    extent = spec.dilated_size(kernel.shape)
    pads = [
        tuple((draw(st.integers(0, e - 1)), draw(st.integers(0, e - 1))) for e in extent)
        for _ in range(2)
    ]
    return spec, image, kernel, pads


@settings(max_examples=40, deadline=None)
@given(layer_geometries())
def test_any_two_paddings_are_found_as_their_windows(geometry) -> None:
    spec, image, kernel, (pad_a, pad_e) = geometry
    actual, expected = (padded(image, kernel, pad, spec) for pad in (pad_a, pad_e))
    found = convbench.explain(actual, expected, image, kernel, spec=spec)
    assert found.explained
    if found.padding is None:
        assert actual.shape == expected.shape
        assert all(a[0] == e[0] for a, e in zip(pad_a, pad_e, strict=True))
        return
    for reported, given_pad, result in zip(
        found.padding, (pad_a, pad_e), (actual, expected), strict=True
    ):
        # The windows are the padding before; the reported padding gives the result itself.
        assert [axis[0] for axis in reported] == [axis[0] for axis in given_pad]
        assert np.array_equal(padded(image, kernel, reported, spec), result)
