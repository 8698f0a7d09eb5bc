"""Deep-learning layers: stride, dilation, groups and (N, C, H, W) inputs in the spec, the
reference and the backends."""

from __future__ import annotations

import importlib
from unittest import mock

import numpy as np
import pytest
import scipy.signal
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import convbench
from convbench import ConvSpec, reference
from convbench.agreement import agreement_for, tolerance, tolerance_for
from convbench.backends.base import Backend, Plan
from convbench.memory import case_memory
from convbench.reference import error_scale
from convbench.spec import FLOAT_DTYPES, Padding, check_inputs, terms_per_output
from tests.strategies import Case, cases, layer_cases, record, strided_cases

# The module, which the package's ``reference`` function shadows as an attribute.
reference_module = importlib.import_module("convbench.reference")


def definition(image: np.ndarray, kernel: np.ndarray, spec: ConvSpec) -> np.ndarray:
    """The layer's output straight from its definition, output channel by input channel by tap:
    out[n, o, y, x] = sum over c, i, j of padded[n, g * C + c, y*sh + i*dh, x*sw + j*dw] *
    k[o, c, i, j], with g the group of output channel o."""
    x = spec.pad(image.astype(np.float64), kernel.shape)
    k = spec.correlation_kernel(kernel.astype(np.float64))
    (sh, sw), (dh, dw) = spec.stride, spec.dilation
    out = np.zeros(spec.output_shape(image.shape, kernel.shape))
    c_out, per_group, kh, kw = k.shape
    oh, ow = out.shape[-2:]
    for o in range(c_out):
        group = o // (c_out // spec.groups)
        for c in range(per_group):
            for i in range(kh):
                for j in range(kw):
                    rows = slice(i * dh, i * dh + (oh - 1) * sh + 1, sh)
                    cols = slice(j * dw, j * dw + (ow - 1) * sw + 1, sw)
                    out[:, o] += k[o, c, i, j] * x[:, group * per_group + c, rows, cols]
    return out


@settings(max_examples=300, deadline=None)
@given(layer_cases())
def test_reference_is_the_definition(case: Case) -> None:
    got = reference(case.image, case.kernel, case.spec)
    np.testing.assert_allclose(got, definition(case.image, case.kernel, case.spec), atol=1e-12)


@settings(max_examples=100, deadline=None)
@given(layer_cases(), st.integers(1, 40))
def test_blocks_of_a_layer_give_the_whole_answer(case: Case, block: int) -> None:
    """Exactly with one input channel per group (a product per tap); with more, BLAS's matmul
    may round a sum differently for another block size: within a few float64 roundings."""
    whole = reference(case.image, case.kernel, case.spec)
    scale = error_scale(case.image, case.kernel, case.spec)
    with mock.patch.object(reference_module, "BLOCK_ELEMENTS", block):
        blocked = reference(case.image, case.kernel, case.spec)
        blocked_scale = error_scale(case.image, case.kernel, case.spec)
    if case.kernel.shape[1] == 1:
        np.testing.assert_array_equal(blocked, whole)
        assert blocked_scale == scale
    else:
        np.testing.assert_allclose(blocked, whole, rtol=0, atol=2**-48 * scale)
        assert blocked_scale == pytest.approx(scale, rel=2**-48)


def test_a_nan_spoils_the_outputs_whose_windows_hold_it_in_every_channel_of_its_group() -> None:
    image = np.random.default_rng(25).standard_normal((1, 4, 9, 9))
    image[0, 1, 4, 4] = np.nan  # group 0 (channels 0-1)
    kernel = np.random.default_rng(26).standard_normal((6, 2, 3, 3))
    got = reference(image, kernel, ConvSpec(mode="same", stride=2, groups=2))
    # SAME at stride 2 on 9: 5 outputs, padding 1 each side; output y reads rows 2y-1..2y+1.
    expected = np.zeros((1, 6, 5, 5), bool)
    expected[0, :3, 2:3, 2:3] = True
    np.testing.assert_array_equal(np.isnan(got), expected)


@settings(max_examples=100, deadline=None)
@given(cases())
def test_a_plain_spec_gives_exactly_what_a_one_channel_layer_gives(case: Case) -> None:
    """(H, W) and (B, H, W) are layers of one channel: the same numbers, bit for bit."""
    images = case.image.reshape(-1, 1, *case.image.shape[-2:])
    layer = reference(images, case.kernel[None, None], case.spec)
    plain = reference(case.image, case.kernel, case.spec)
    np.testing.assert_array_equal(layer.reshape(plain.shape), plain)


@settings(max_examples=100, deadline=None)
@given(cases(), st.integers(1, 3), st.integers(1, 3))
def test_stride_subsamples_the_stride_one_result(case: Case, sh: int, sw: int) -> None:
    """In 'full' and 'valid' the padding does not depend on the stride: striding keeps every
    stride-th output of the stride-1 result, exactly."""
    spec = case.spec
    if spec.mode == "same":
        spec = ConvSpec(spec.op, "full", spec.boundary, spec.fillvalue)
    strided = ConvSpec(spec.op, spec.mode, spec.boundary, spec.fillvalue, stride=(sh, sw))
    np.testing.assert_array_equal(
        reference(case.image, case.kernel, strided),
        reference(case.image, case.kernel, spec)[..., ::sh, ::sw],
    )


@settings(max_examples=100, deadline=None)
@given(cases(), st.integers(1, 3), st.integers(1, 3))
def test_dilation_is_scipy_with_zeros_between_the_taps(case: Case, dh: int, dw: int) -> None:
    spec = case.spec
    kh, kw = case.kernel.shape
    spread = np.zeros(((kh - 1) * dh + 1, (kw - 1) * dw + 1))
    spread[::dh, ::dw] = case.kernel
    function = scipy.signal.correlate2d if spec.op == "correlate" else scipy.signal.convolve2d
    images = case.image.reshape(-1, *case.image.shape[-2:])
    if spec.mode == "valid" and (
        spread.shape[0] > images.shape[1] or spread.shape[1] > images.shape[2]
    ):
        return
    dilated = ConvSpec(spec.op, spec.mode, spec.boundary, spec.fillvalue, dilation=(dh, dw))
    expected = [function(x, spread, spec.mode, spec.boundary, spec.fillvalue) for x in images]
    got = reference(case.image, case.kernel, dilated)
    np.testing.assert_allclose(got.reshape(-1, *got.shape[-2:]), expected, atol=1e-12)


@settings(max_examples=50, deadline=None)
@given(cases(), st.integers(1, 3))
def test_depthwise_is_scipy_per_channel(case: Case, channels: int) -> None:
    rng = np.random.default_rng(channels)
    image = rng.standard_normal((2, channels, *case.image.shape[-2:]))
    kernel = rng.standard_normal((channels, 1, *case.kernel.shape))
    spec = ConvSpec(
        case.spec.op, case.spec.mode, case.spec.boundary, case.spec.fillvalue, groups=channels
    )
    function = scipy.signal.correlate2d if spec.op == "correlate" else scipy.signal.convolve2d
    got = reference(image, kernel, spec)
    for n in range(2):
        for c in range(channels):
            expected = function(image[n, c], kernel[c, 0], spec.mode, spec.boundary, spec.fillvalue)
            np.testing.assert_allclose(got[n, c], expected, atol=1e-12)


def test_a_grouped_layer_is_its_groups_side_by_side() -> None:
    rng = np.random.default_rng(5)
    image, kernel = rng.standard_normal((2, 6, 7, 8)), rng.standard_normal((4, 3, 3, 2))
    spec = ConvSpec(groups=2, stride=2, dilation=(1, 2))
    one = ConvSpec(stride=2, dilation=(1, 2))
    got = reference(image, kernel, spec)
    np.testing.assert_array_equal(got[:, :2], reference(image[:, :3], kernel[:2], one))
    np.testing.assert_array_equal(got[:, 2:], reference(image[:, 3:], kernel[2:], one))


def test_a_layer_with_one_channel_each_way_is_scipy() -> None:
    rng = np.random.default_rng(6)
    image, kernel = rng.standard_normal((3, 1, 9, 7)), rng.standard_normal((1, 1, 4, 3))
    for op, function in (
        ("correlate", scipy.signal.correlate2d),
        ("convolve", scipy.signal.convolve2d),
    ):
        for mode in ("full", "same", "valid"):
            got = reference(image, kernel, ConvSpec(op, mode, "symm"))
            for n in range(3):
                expected = function(image[n, 0], kernel[0, 0], mode, "symm")
                np.testing.assert_allclose(got[n, 0], expected, atol=1e-12)


# --- padding and shapes ------------------------------------------------------------------------


def test_stride_two_same_pads_like_tensorflow() -> None:
    """TF's SAME on an even input with a 3x3 kernel at stride 2 pads 0 before and 1 after:
    224 -> 112. 'convolve' mirrors it."""
    spec = ConvSpec(mode="same", stride=2)
    assert spec.padding((8, 3, 3, 3), (1, 3, 224, 224)) == Padding(0, 1, 0, 1)
    assert spec.output_shape((1, 3, 224, 224), (8, 3, 3, 3)) == (1, 8, 112, 112)
    mirrored = ConvSpec(op="convolve", mode="same", stride=2)
    assert mirrored.padding((3, 3), (224, 224)) == Padding(1, 0, 1, 0)
    # An odd input needs 2: one each side.
    assert spec.padding((3, 3), (225, 225)) == Padding(1, 1, 1, 1)
    assert spec.output_shape((225, 225), (3, 3)) == (113, 113)


@pytest.mark.parametrize(
    ("size", "k", "s", "d", "before", "after", "out"),
    [
        (224, 3, 2, 1, 0, 1, 112),
        (224, 7, 2, 1, 2, 3, 112),
        (5, 3, 2, 1, 1, 1, 3),
        (6, 1, 2, 1, 0, 0, 3),  # a 1x1 kernel at stride 2 never pads
        (10, 1, 4, 1, 0, 0, 3),  # total (3 - 1) * 4 + 1 - 10 < 0: no padding
        (8, 3, 1, 2, 2, 2, 8),  # dilation 2: the kernel covers 5
        (9, 2, 3, 2, 0, 0, 3),  # span 3: total (3 - 1) * 3 + 3 - 9 = 0
    ],
)
def test_same_padding_table(size, k, s, d, before, after, out) -> None:
    spec = ConvSpec(mode="same", stride=(s, 1), dilation=(d, 1))
    pad = spec.padding((k, 1), (size, 4))
    total = max((-(-size // s) - 1) * s + (k - 1) * d + 1 - size, 0)
    assert (pad.top, pad.bottom) == (before, after) == (total // 2, total - total // 2)
    assert spec.output_shape((size, 4), (k, 1))[0] == out == -(-size // s)


@settings(max_examples=200, deadline=None)
@given(
    st.integers(1, 40),
    st.integers(1, 6),
    st.integers(1, 4),
    st.integers(1, 3),
    st.sampled_from(["correlate", "convolve"]),
    st.sampled_from(["full", "same", "valid"]),
)
def test_output_size_rule(size: int, k: int, s: int, d: int, op: str, mode: str) -> None:
    span = (k - 1) * d + 1
    if mode == "valid" and span > size:
        return
    spec = ConvSpec(op=op, mode=mode, stride=(s, 1), dilation=(d, 1))
    pad = spec.padding((k, 1), (size, 1))
    out = spec.output_shape((size, 1), (k, 1))[0]
    assert out == (size + pad.top + pad.bottom - span) // s + 1
    expected = {
        "full": (size + span - 2) // s + 1,
        "same": -(-size // s),
        "valid": (size - span) // s + 1,
    }
    assert out == expected[mode]
    if mode == "same":
        correlate = ConvSpec(mode="same", stride=(s, 1), dilation=(d, 1)).padding((k, 1), (size, 1))
        if op == "convolve":
            assert (pad.top, pad.bottom) == (correlate.bottom, correlate.top)


@pytest.mark.parametrize("k", range(1, 8))
def test_stride_one_same_is_todays_rule_at_every_size(k: int) -> None:
    for size in range(1, 12):
        for op, expected in (
            ("correlate", ((k - 1) // 2, k // 2)),
            ("convolve", (k // 2, (k - 1) // 2)),
        ):
            pad = ConvSpec(op=op, mode="same").padding((k, 1), (size, 3))
            assert (pad.top, pad.bottom) == expected


def test_same_at_a_stride_needs_the_image_shape() -> None:
    with pytest.raises(ValueError, match=r"'same' padding at stride \(2, 1\) depends on the image"):
        ConvSpec(stride=(2, 1)).padding((3, 3))
    assert ConvSpec(stride=2, mode="full").padding((3, 3)) == Padding(2, 2, 2, 2)


def test_layer_shapes() -> None:
    spec = ConvSpec(mode="valid", stride=(2, 3), dilation=2, groups=2)
    assert spec.output_shape((4, 6, 11, 13), (10, 3, 3, 2)) == (4, 10, 4, 4)
    assert spec.padded_shape((4, 6, 11, 13), (10, 3, 3, 2)) == (4, 6, 11, 13)
    assert ConvSpec(mode="full").padded_shape((1, 2, 5, 5), (3, 2, 3, 2)) == (1, 2, 9, 7)
    assert spec.dilated_size((10, 3, 3, 2)) == (5, 3)


def test_convolve_rotates_every_kernel_plane() -> None:
    kernel = np.arange(2 * 3 * 2 * 3.0).reshape(2, 3, 2, 3)
    rotated = ConvSpec(op="convolve").correlation_kernel(kernel)
    for o in range(2):
        for c in range(3):
            np.testing.assert_array_equal(rotated[o, c], np.rot90(kernel[o, c], 2))
    assert rotated.flags.c_contiguous


def test_padding_numpy_widths_for_every_rank() -> None:
    pad = Padding(1, 2, 3, 4)
    assert pad.numpy(0) == ((1, 2), (3, 4))
    assert pad.numpy(True) == ((0, 0), (1, 2), (3, 4))
    assert pad.numpy(2) == ((0, 0), (0, 0), (1, 2), (3, 4))


def test_pad_pads_only_the_spatial_axes_of_a_layer() -> None:
    image = np.arange(2 * 3 * 4 * 4.0).reshape(2, 3, 4, 4)
    padded = ConvSpec(mode="same", boundary="wrap", stride=2).pad(image, (5, 3, 3, 3))
    assert padded.shape == (2, 3, 5, 5)
    np.testing.assert_array_equal(padded[:, :, :4, :4], image)
    np.testing.assert_array_equal(padded[:, :, 4], image[:, :, 0, [0, 1, 2, 3, 0]])


# --- the spec's new fields -----------------------------------------------------------------------


def test_stride_and_dilation_are_stored_as_pairs() -> None:
    assert ConvSpec(stride=2).stride == (2, 2)
    assert ConvSpec(dilation=[1, 3]).dilation == (1, 3)
    assert ConvSpec(stride=np.int64(2), groups=np.int32(3)).groups == 3
    assert ConvSpec(stride=2) == ConvSpec(stride=(2, 2))
    assert ConvSpec().stride == (1, 1) and ConvSpec().dilation == (1, 1) and ConvSpec().groups == 1
    assert ConvSpec().is_plain and not ConvSpec(groups=2).is_plain


def test_layer_fields_print_only_when_set() -> None:
    assert str(ConvSpec()) == "correlate[mode=same,boundary=fill]"
    spec = ConvSpec(stride=(2, 1), dilation=3, groups=4)
    assert str(spec) == "correlate[mode=same,boundary=fill,stride=2x1,dilation=3,groups=4]"


@pytest.mark.parametrize("field", ["stride", "dilation"])
@pytest.mark.parametrize(
    "value", [0, -1, 1.0, 2.5, True, False, "2", None, (1, 0), (1, 2, 3), (2,), (True, 1)]
)
def test_bad_stride_or_dilation_names_field_and_value(field: str, value: object) -> None:
    with pytest.raises(ValueError) as error:
        ConvSpec(**{field: value})
    expected = f"ConvSpec {field}={value!r} must be a positive integer or a pair of them"
    assert str(error.value) == expected


@pytest.mark.parametrize("value", [0, -2, 1.0, True, "1", None, (1, 1)])
def test_bad_groups_names_value(value: object) -> None:
    with pytest.raises(ValueError) as error:
        ConvSpec(groups=value)
    assert str(error.value) == f"ConvSpec groups={value!r} must be a positive integer"


LAYER_IMAGE = np.ones((2, 4, 6, 6))


@pytest.mark.parametrize(
    ("image", "kernel", "spec", "message"),
    [
        (
            LAYER_IMAGE,
            np.ones((3, 3)),
            ConvSpec(),
            r"a 4-D image \(2, 4, 6, 6\) needs a 4-D kernel \(C_out, C_in // groups, kh, kw\); "
            "got a 2-D kernel",
        ),
        (
            np.ones((6, 6)),
            np.ones((2, 1, 3, 3)),
            ConvSpec(),
            r"a 2-D image \(6, 6\) needs a 2-D kernel \(kh, kw\); got a 4-D kernel",
        ),
        (
            LAYER_IMAGE,
            np.ones((2, 3, 3, 3)),
            ConvSpec(),
            r"kernel \(2, 3, 3, 3\) has 3 input channels per group; an image with C_in=4 in "
            "groups=1 needs 4",
        ),
        (
            LAYER_IMAGE,
            np.ones((2, 4, 3, 3)),
            ConvSpec(groups=2),
            r"has 4 input channels per group; .* groups=2 needs 2",
        ),
        (
            LAYER_IMAGE,
            np.ones((2, 1, 3, 3)),
            ConvSpec(groups=3),
            r"groups=3 does not divide C_in=4",
        ),
        (
            LAYER_IMAGE,
            np.ones((3, 2, 3, 3)),
            ConvSpec(groups=2),
            r"groups=2 does not divide C_out=3",
        ),
        (
            np.ones((3, 6, 6)),
            np.ones((3, 3)),
            ConvSpec(groups=3),
            r"groups=3 needs a layer's channels",
        ),
        (np.ones((0, 4, 6, 6)), np.ones((2, 4, 3, 3)), ConvSpec(), "image is empty"),
        (LAYER_IMAGE, np.ones((0, 4, 3, 3)), ConvSpec(), "kernel is empty"),
        (
            LAYER_IMAGE,
            np.ones((2, 4, 3, 3)),
            ConvSpec(mode="valid", dilation=3),
            r"dilated to \(7, 7\)\) is larger than the image \(6, 6\)",
        ),
    ],
)
def test_bad_layer_input_says_what_was_expected(image, kernel, spec, message) -> None:
    with pytest.raises(ValueError, match=message):
        check_inputs(image, kernel, spec)
    with pytest.raises(ValueError, match=message):
        reference(image, kernel, spec)


def test_valid_with_a_dilated_kernel_that_fits_is_fine() -> None:
    got = reference(
        np.ones((1, 1, 7, 7)), np.ones((1, 1, 3, 3)), ConvSpec(mode="valid", dilation=3)
    )
    np.testing.assert_array_equal(got, np.full((1, 1, 1, 1), 9.0))


# --- tolerance and memory count a layer's terms --------------------------------------------------


def test_terms_per_output() -> None:
    assert terms_per_output((3, 5)) == 15
    assert terms_per_output((64, 32, 3, 3)) == 288
    assert terms_per_output((64, 1, 3, 3)) == 9


def test_tolerance_for_counts_the_input_channels_of_a_group() -> None:
    from convbench.registry import get_backend

    backend = get_backend("scipy-correlate2d")
    layer = tolerance_for(backend, "float32", (1, 64, 8, 8), (16, 32, 3, 3))
    assert layer == tolerance("float32", 32 * 9)
    assert tolerance_for(backend, "float32", (8, 8), (3, 3)) == tolerance("float32", 9)


def test_error_scale_of_a_layer_sums_every_channel() -> None:
    image = np.full((1, 4, 5, 5), -2.0)
    kernel = np.full((4, 2, 3, 3), 0.5)
    # Valid: every output sums 2 channels * 9 taps of |x * k| = 1.
    assert error_scale(image, kernel, ConvSpec(mode="valid", groups=2)) == 18.0


def test_case_memory_of_a_layer() -> None:
    memory = case_memory((8, 64, 56, 56), (128, 64, 3, 3), "float32", ConvSpec(stride=2))
    assert memory.inputs == (8 * 64 * 56 * 56 + 128 * 64 * 9) * 4
    assert memory.output == 8 * 128 * 28 * 28 * 4
    assert memory.reference == 8 * 128 * 28 * 28 * 8
    assert memory.blocks < 64 * 2**20


# --- backends ------------------------------------------------------------------------------------


class Plain(Backend):
    """A backend that says nothing about layers."""

    def _plan(self, image, kernel, spec) -> Plan:
        return Plan(image, np.asarray, np.asarray, np.asarray, "explicit")


@pytest.mark.parametrize(
    ("image_shape", "kernel_shape", "spec"),
    [
        ((6, 6), (3, 3), ConvSpec(stride=2)),
        ((2, 6, 6), (3, 3), ConvSpec(dilation=(1, 2))),
        ((1, 2, 6, 6), (2, 2, 3, 3), ConvSpec()),
        ((1, 2, 6, 6), (2, 1, 3, 3), ConvSpec(groups=2)),
    ],
)
def test_a_backend_refuses_layers_unless_it_says_it_computes_them(
    image_shape, kernel_shape, spec
) -> None:
    backend = Plain("plain")
    refusal = r"plain does not compute .* image: it computes 2-D images and batches at stride 1"
    with pytest.raises(NotImplementedError, match=refusal):
        backend.prepare(np.ones(image_shape), np.ones(kernel_shape), spec)
    with pytest.raises(NotImplementedError, match="plain gives its call for 2-D images"):
        backend.call_source(spec, image_shape, kernel_shape, "float64")
    assert backend.layer_unsupported(ConvSpec(), (6, 6), (3, 3), "float64") is None


# The backends that compute layers; every other built-in one refuses them.
LAYER_BACKENDS = (
    "torch-cpu",
    "torch-cuda",
    "tensorflow-cpu",
    "tensorflow-gpu",
    "jax-cpu",
    "jax-gpu",
    "keras-cpu",
)
LAYER_PROPERTY = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _known_refusal(backend: Backend, case: Case) -> str | None:
    """The words of a layer backend's refusal of ``case``, where its library cannot do it."""
    spec = case.spec
    if backend.name == "keras-cpu" and max(spec.stride) > 1 and max(spec.dilation) > 1:
        return "Conv2D does not take strides > 1 with dilation_rate > 1"
    out = spec.output_shape(case.image.shape, case.kernel.shape)[-2:]
    single = any(n == 1 and s > 1 for n, s in zip(out, spec.stride, strict=True))
    tensorflow_cpu = backend.name in ("tensorflow-cpu", "keras-cpu")
    if tensorflow_cpu and case.image.dtype.name == "bfloat16" and single:
        return "CPU Conv2D in bfloat16 computes wrong values where an axis with a stride"
    if tensorflow_cpu and case.image.dtype.name == "float32" and _one_column_batch(case):
        return "CPU Conv2D in float32 computes wrong values for a batch of one input channel"
    return None


def _one_column_batch(case: Case) -> bool:
    """A batch of one-channel samples, stride 1 on H and above 1 on W, one output column, more
    than one row, a kernel more than one column wide, undilated on W."""
    spec, shape = case.spec, case.image.shape
    rows, columns = spec.output_shape(shape, case.kernel.shape)[-2:]
    one_channel = len(shape) == 3 or (len(shape) == 4 and shape[1] == 1)
    return (
        len(shape) > 2
        and shape[0] > 1
        and one_channel
        and spec.stride[0] == 1 < spec.stride[1]
        and columns == 1 < rows
        and case.kernel.shape[-1] > 1
        and spec.dilation[1] == 1
    )


def test_the_layer_backends_are_those_that_say_so(backend: Backend) -> None:
    assert (backend.layer_refusal is None) == (backend.name in LAYER_BACKENDS)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_layer_backend_matches_reference(backend: Backend, dtype: str) -> None:
    if backend.name not in LAYER_BACKENDS:
        pytest.skip(f"{backend.name} computes no layers")
    if dtype == "bfloat16":
        pytest.importorskip("ml_dtypes", reason="bfloat16 arrays need ml_dtypes")
    if backend.dtype_unsupported(dtype):
        pytest.skip(backend.dtype_unsupported(dtype))

    @LAYER_PROPERTY
    @given(st.one_of(layer_cases(dtype=dtype), strided_cases(dtype=dtype)))
    def check(case: Case) -> None:
        refusal = _known_refusal(backend, case)
        if refusal:
            with pytest.raises(NotImplementedError, match=refusal):
                backend.prepare(case.image, case.kernel, case.spec)
            return
        prepared = backend.prepare(case.image, case.kernel, case.spec)
        out = prepared.result()
        expected = reference(case.image, case.kernel, case.spec)
        assert out.dtype == case.image.dtype
        assert out.shape == expected.shape == prepared.output_shape
        found = agreement_for(backend, out, expected, case.image, case.kernel, case.spec)
        record(backend.name, dtype, found.max_rel)
        assert found.ok, f"{backend.name} {case.spec} {prepared.padding}: {found}"

    check()


@pytest.mark.parametrize(
    "spec",
    [
        ConvSpec(),
        ConvSpec("convolve", "same"),
        ConvSpec("correlate", "full", "symm"),
        ConvSpec("convolve", "valid"),
    ],
)
def test_a_plain_case_is_a_one_channel_layer_bit_for_bit(backend: Backend, spec: ConvSpec) -> None:
    """Stride 1, dilation 1, one group: the layer path computes exactly what the plain one does."""
    if backend.name not in LAYER_BACKENDS:
        pytest.skip(f"{backend.name} computes no layers")
    rng = np.random.default_rng(21)
    image = rng.standard_normal((3, 13, 11)).astype(np.float32)
    kernel = rng.standard_normal((4, 3)).astype(np.float32)
    plain = backend.prepare(image, kernel, spec).result()
    layer = backend.prepare(image[:, None], kernel[None, None], spec).result()
    np.testing.assert_array_equal(layer[:, 0], plain)


@pytest.mark.parametrize("op", ["correlate", "convolve"])
def test_stride_two_same_on_an_even_image(backend: Backend, op: str) -> None:
    """224 -> 112 with a 3x3 kernel: TF pads 0 before and 1 after ('convolve' 1 and 0)."""
    if backend.name not in LAYER_BACKENDS:
        pytest.skip(f"{backend.name} computes no layers")
    rng = np.random.default_rng(22)
    image = rng.standard_normal((1, 2, 224, 224)).astype(np.float32)
    kernel = rng.standard_normal((3, 2, 3, 3)).astype(np.float32)
    spec = ConvSpec(op=op, stride=2)
    prepared = backend.prepare(image, kernel, spec)
    out = prepared.result()
    assert out.shape == prepared.output_shape == (1, 3, 112, 112)
    expected = reference(image, kernel, spec)
    assert agreement_for(backend, out, expected, image, kernel, spec).ok
    # TensorFlow's 'SAME' (or its per-side list) and JAX's pairs pad exactly so; Keras has
    # 'same' but no mirror of it; torch pads symmetrically or as 'same' at stride 1 only.
    native = {"tensorflow", "jax"} | ({"keras"} if op == "correlate" else set())
    assert prepared.padding == ("native" if backend.library in native else "explicit")


@pytest.mark.parametrize(
    ("image_shape", "kernel_shape", "spec"),
    [
        ((8, 8), (3, 3), ConvSpec(stride=2)),
        ((2, 8, 8), (3, 3), ConvSpec(dilation=2)),
        ((1, 3, 8, 8), (2, 3, 3, 3), ConvSpec()),
        ((1, 4, 8, 8), (2, 2, 3, 3), ConvSpec(groups=2)),
    ],
)
def test_every_other_backend_refuses_layers_with_its_reason(
    backend: Backend, image_shape, kernel_shape, spec
) -> None:
    if backend.name in LAYER_BACKENDS:
        pytest.skip(f"{backend.name} computes layers")
    image = np.ones(image_shape, np.float32)
    with pytest.raises(NotImplementedError) as refused:
        backend.prepare(image, np.ones(kernel_shape, np.float32), spec)
    assert backend.layer_refusal in str(refused.value)
    assert str(spec) in str(refused.value)


def test_keras_refuses_a_stride_with_a_dilation() -> None:
    keras = convbench.get_backend("keras-cpu")
    reason = keras.layer_unsupported(
        ConvSpec(stride=2, dilation=2), (1, 1, 8, 8), (1, 1, 3, 3), "float32"
    )
    assert reason == (
        "Keras Conv2D does not take strides > 1 with dilation_rate > 1; keras-cpu cannot compute "
        "stride (2, 2) with dilation (2, 2)"
    )
    assert (
        keras.layer_unsupported(ConvSpec(stride=2), (1, 1, 8, 8), (1, 1, 3, 3), "float32") is None
    )


# --- layout options ------------------------------------------------------------------------------

LAYOUT_CASE = (
    np.random.default_rng(23).standard_normal((2, 4, 10, 9)).astype(np.float32),
    np.random.default_rng(24).standard_normal((6, 2, 3, 2)).astype(np.float32),
    ConvSpec("convolve", "same", "symm", stride=(2, 1), dilation=(1, 2), groups=2),
)


def _available(name: str) -> Backend:
    found = convbench.get_backend(name)
    if found.unavailable_reason:
        pytest.skip(f"{name}: {found.unavailable_reason}")
    return found


@pytest.mark.parametrize(
    ("name", "option", "value"),
    [
        ("torch-cpu", "memory_format", "channels_last"),
        ("torch-cpu", "memory_format", "contiguous_format"),
        ("jax-cpu", "layout", "NHWC"),
        ("jax-cpu", "layout", "NCHW"),
        ("tensorflow-cpu", "data_format", "NCHW"),
        ("tensorflow-cpu", "data_format", "NHWC"),
    ],
)
def test_a_layout_option_computes_the_same_layer(name: str, option: str, value: str) -> None:
    backend = _available(name).configure(**{option: value})
    image, kernel, spec = LAYOUT_CASE
    out = backend.prepare(image, kernel, spec).result()
    assert out.flags.c_contiguous
    expected = reference(image, kernel, spec)
    assert agreement_for(backend, out, expected, image, kernel, spec).ok
    assert backend.option_settings() == {f"option.{option}": value}


def test_torch_channels_last_lays_the_image_out_nhwc() -> None:
    import torch

    backend = _available("torch-cpu").configure(memory_format="channels_last")
    image, kernel, spec = LAYOUT_CASE
    prepared = backend.prepare(image, kernel, spec)
    assert prepared._device_image.is_contiguous(memory_format=torch.channels_last)
    assert not prepared._device_image.is_contiguous()


def test_tensorflow_nchw_on_the_cpu_refuses_what_its_conv2d_cannot_do() -> None:
    backend = _available("tensorflow-cpu").configure(data_format="NCHW")
    with pytest.raises(NotImplementedError, match="takes data_format='NCHW' only in float32 and"):
        backend.prepare(np.ones((1, 1, 6, 6)), np.ones((1, 1, 3, 3)))
    assert backend.dtype_unsupported("bfloat16") is None


def test_torch_workspace_of_a_layer_counts_its_im2col_columns() -> None:
    backend = _available("torch-cpu")
    spec = ConvSpec(mode="valid", groups=2)
    # float64 goes to slow_conv2d: im2col holds C_in * kh * kw values per output position.
    got = backend.workspace_bytes((2, 4, 10, 10), (6, 2, 3, 3), "float64", spec)
    padded, output, positions = 2 * 4 * 10 * 10 * 8, 2 * 6 * 8 * 8 * 8, 2 * 8 * 8
    assert got == padded + output + positions * 4 * 9 * 8


@pytest.mark.parametrize("name", ["tensorflow-cpu", "keras-cpu"])
def test_tensorflow_cpu_refuses_bfloat16_where_a_strided_axis_has_one_output(name: str) -> None:
    backend = _available(name)
    pytest.importorskip("ml_dtypes")
    spec = ConvSpec(mode="valid", stride=(1, 2))
    # 3 columns, a 3-wide kernel: one output column at stride 2.
    reason = backend.layer_unsupported(spec, (7, 3), (2, 3), "bfloat16")
    assert reason == (
        "TensorFlow's CPU Conv2D in bfloat16 computes wrong values where an axis with a stride "
        "above 1 has a single output; this case has one output on W at stride (1, 2)"
    )
    assert backend.layer_unsupported(spec, (7, 3), (2, 3), "float32") is None
    assert backend.layer_unsupported(spec, (7, 5), (2, 3), "bfloat16") is None


# A batch of 3 one-channel 6x5 images, a 3x4 kernel, 'valid' at stride (1, 2): 4 rows, 1 column.
COLUMN_CASE = ((3, 6, 5), (3, 4), ConvSpec("convolve", "valid", stride=(1, 2)))


@pytest.mark.parametrize("name", ["tensorflow-cpu", "keras-cpu"])
def test_tensorflow_cpu_refuses_float32_batches_of_one_strided_column(name: str) -> None:
    backend = _available(name)
    image_shape, kernel_shape, spec = COLUMN_CASE
    reason = backend.layer_unsupported(spec, image_shape, kernel_shape, "float32")
    assert reason == (
        "TensorFlow's CPU Conv2D in float32 computes wrong values for a batch of one input "
        "channel whose W axis, strided and undilated, has a single output while H, at stride 1, "
        "has more; this case has 3 samples, 4 rows and 1 column out at stride (1, 2)"
    )
    assert backend.layer_unsupported(spec, (2, 1, 6, 5), (2, 1, 3, 4), "float32") == reason.replace(
        "3 samples", "2 samples"
    )


@pytest.mark.parametrize(
    ("image_shape", "kernel_shape", "spec", "dtype"),
    [
        # One sample, two input channels, float64, the same image transposed, a 1-wide kernel,
        # a dilated W axis, one output row, two output columns: each computes correctly.
        ((6, 5), (3, 4), COLUMN_CASE[2], "float32"),
        ((1, 6, 5), (3, 4), COLUMN_CASE[2], "float32"),
        ((3, 2, 6, 5), (1, 2, 3, 4), COLUMN_CASE[2], "float32"),
        ((3, 6, 5), (3, 4), COLUMN_CASE[2], "float64"),
        ((3, 5, 6), (4, 3), ConvSpec("convolve", "valid", stride=(2, 1)), "float32"),
        ((3, 6, 2), (3, 1), COLUMN_CASE[2], "float32"),
        ((3, 6, 3), (3, 2), ConvSpec(mode="valid", stride=(1, 2), dilation=(1, 2)), "float32"),
        ((3, 3, 5), (3, 4), COLUMN_CASE[2], "float32"),
        ((3, 6, 7), (3, 4), COLUMN_CASE[2], "float32"),
    ],
)
def test_tensorflow_cpu_computes_the_cases_next_to_the_float32_column_defect(
    image_shape, kernel_shape, spec: ConvSpec, dtype: str
) -> None:
    backend = _available("tensorflow-cpu")
    assert backend.layer_unsupported(spec, image_shape, kernel_shape, dtype) is None
    rng = np.random.default_rng(27)
    image = rng.standard_normal(image_shape).astype(dtype)
    kernel = rng.standard_normal(kernel_shape).astype(dtype)
    out = backend.prepare(image, kernel, spec).result()
    expected = reference(image, kernel, spec)
    assert agreement_for(backend, out, expected, image, kernel, spec).ok
