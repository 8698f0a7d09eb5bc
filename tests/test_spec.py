"""ConvSpec: validation, the padding table of DESIGN.md, output shapes, input checks."""

from __future__ import annotations

import decimal
import fractions
import re

import numpy as np
import pytest

from convbench.spec import ConvSpec, Padding, check_inputs, largest_finite, numpy_dtype

try:
    from ml_dtypes import bfloat16
except ImportError:  # ml_dtypes comes with jax and tensorflow
    bfloat16 = None


@pytest.mark.parametrize("k", range(1, 8))
def test_padding_table(k: int) -> None:
    table = {
        ("correlate", "full"): (k - 1, k - 1),
        ("convolve", "full"): (k - 1, k - 1),
        ("correlate", "same"): ((k - 1) // 2, k // 2),
        ("convolve", "same"): (k // 2, (k - 1) // 2),
        ("correlate", "valid"): (0, 0),
        ("convolve", "valid"): (0, 0),
    }
    for (op, mode), (before, after) in table.items():
        pad = ConvSpec(op=op, mode=mode).padding((k, 1))
        assert (pad.top, pad.bottom) == (before, after)
        assert (pad.left, pad.right) == (0, 0)


def test_even_kernel_same_modes_sit_one_pixel_apart() -> None:
    corr = ConvSpec(op="correlate", mode="same").padding((4, 4))
    conv = ConvSpec(op="convolve", mode="same").padding((4, 4))
    assert corr == Padding(1, 2, 1, 2)
    assert conv == Padding(2, 1, 2, 1)


@pytest.mark.parametrize(
    ("mode", "expected"), [("full", (3, 12, 14)), ("same", (3, 9, 9)), ("valid", (3, 6, 4))]
)
def test_output_shape(mode: str, expected: tuple[int, ...]) -> None:
    assert ConvSpec(mode=mode).output_shape((3, 9, 9), (4, 6)) == expected


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"op": "conv"}, "op='conv' is not one of ['correlate', 'convolve']"),
        ({"mode": "SAME"}, "mode='SAME' is not one of ['full', 'same', 'valid']"),
        ({"boundary": "reflect"}, "boundary='reflect' is not one of ['fill', 'wrap', 'symm']"),
        ({"boundary": "wrap", "fillvalue": 1.0}, "only applies to boundary='fill'"),
        ({"fillvalue": float("nan")}, "fillvalue=nan must be finite"),
        ({"fillvalue": float("inf")}, "fillvalue=inf must be finite"),
        ({"fillvalue": -float("inf")}, "fillvalue=-inf must be finite"),
        ({"fillvalue": np.float32("nan")}, r"fillvalue=np.float32\(nan\) must be finite"),
        ({"fillvalue": np.float16("inf")}, r"fillvalue=np.float16\(inf\) must be finite"),
        ({"fillvalue": 10**400}, "fillvalue=1000.* must be finite"),
    ],
)
def test_bad_spec_values_name_value_and_accepted(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        ConvSpec(**kwargs)


@pytest.mark.parametrize(
    "value",
    ["0", True, np.bool_(False), 1 + 0j, np.complex64(1), np.array(0.5), decimal.Decimal("0.5")],
    ids=repr,
)
def test_fillvalue_must_be_a_real_number(value: object) -> None:
    with pytest.raises(TypeError, match=r"fillvalue=.* must be a real number \(int, float or"):
        ConvSpec(fillvalue=value)


@pytest.mark.parametrize(
    ("value", "stored"),
    [
        (np.float32(0.5), 0.5),
        (np.float16(-2.0), -2.0),
        (np.float64(0.1), 0.1),
        (np.int64(3), 3.0),
        (np.uint8(7), 7.0),
        (fractions.Fraction(1, 4), 0.25),
        (5, 5.0),
    ],
    ids=repr,
)
def test_fillvalue_takes_any_finite_real_scalar(value: object, stored: float) -> None:
    spec = ConvSpec(fillvalue=value)
    assert spec.fillvalue == stored and type(spec.fillvalue) is float


@pytest.mark.skipif(bfloat16 is None, reason="ml_dtypes is not installed")
def test_fillvalue_takes_a_bfloat16_scalar() -> None:
    assert ConvSpec(fillvalue=bfloat16(1.5)).fillvalue == 1.5


def test_spec_is_frozen_and_prints_stably() -> None:
    spec = ConvSpec(op="convolve", mode="full", fillvalue=2)
    assert str(spec) == "convolve[mode=full,boundary=fill,fillvalue=2]"
    assert spec.fillvalue == 2.0 and isinstance(spec.fillvalue, float)
    with pytest.raises(AttributeError):
        spec.op = "correlate"  # type: ignore[misc]


IMAGE = np.ones((5, 5), np.float32)
KERNEL = np.ones((3, 3), np.float32)


@pytest.mark.parametrize(
    ("image", "kernel", "spec", "error", "message"),
    [
        (np.ones(5, np.float32), KERNEL, ConvSpec(), ValueError, "image must be 2-D .* got 1-D"),
        (np.ones((1, 1, 1, 5, 5)), KERNEL, ConvSpec(), ValueError, "got 5-D shape"),
        (np.ones((1, 1, 5, 5)), KERNEL, ConvSpec(), ValueError, "needs a 4-D kernel .* 2-D kernel"),
        (IMAGE, np.ones((1, 3, 3)), ConvSpec(), ValueError, "needs a 2-D kernel .* 3-D kernel"),
        (IMAGE, np.ones((1, 1, 3, 3)), ConvSpec(), ValueError, "needs a 2-D kernel .* 4-D"),
        (np.ones((0, 5), np.float32), KERNEL, ConvSpec(), ValueError, "image is empty"),
        (IMAGE, np.ones((3, 0)), ConvSpec(), ValueError, "kernel is empty"),
        (IMAGE, np.ones((6, 2)), ConvSpec(mode="valid"), ValueError, "larger than the image"),
        (
            IMAGE,
            KERNEL,
            ConvSpec(mode="valid", dilation=(1, 3)),
            ValueError,
            r"kernel \(3, 3\) \(dilated to \(3, 7\)\) is larger than the image \(5, 5\)",
        ),
        (np.ones((5, 5), np.int32), KERNEL, ConvSpec(), TypeError, "image dtype int32"),
        (np.ones((5, 5), bool), KERNEL, ConvSpec(), TypeError, "image dtype bool"),
        (np.ones((5, 5), np.complex64), KERNEL, ConvSpec(), TypeError, "image dtype complex64"),
        (np.ones((5, 5), object), KERNEL, ConvSpec(), TypeError, "image dtype object"),
        (IMAGE, np.ones((3, 3), complex), ConvSpec(), TypeError, "kernel dtype complex128"),
        (IMAGE, np.ones((3, 3), bool), ConvSpec(), TypeError, "kernel dtype bool"),
        (IMAGE, KERNEL, "same", TypeError, "spec must be a convbench.ConvSpec"),
    ],
)
def test_bad_input(image, kernel, spec, error, message) -> None:
    with pytest.raises(error, match=message):
        check_inputs(image, kernel, spec)


def test_kernel_is_cast_to_the_image_dtype() -> None:
    image, kernel = check_inputs(IMAGE, np.ones((3, 3), np.float64), ConvSpec())
    assert image.dtype == np.float32 and kernel.dtype == np.float32
    _, kernel = check_inputs(IMAGE, np.ones((3, 3), np.int64), ConvSpec())
    assert kernel.dtype == np.float32


def test_kernel_larger_than_image_is_fine_outside_valid() -> None:
    for mode in ("full", "same"):
        check_inputs(np.ones((2, 2)), np.ones((5, 5)), ConvSpec(mode=mode))


@pytest.mark.parametrize(
    ("dtype", "fill"),
    [("float32", 1e39), ("float32", -1e39), ("float16", 7e4), ("float16", 65520.0)],
)
def test_a_fill_beyond_the_dtype_is_refused_naming_its_range(dtype: str, fill: float) -> None:
    image = np.ones((4, 4), dtype)
    message = re.escape(f"fillvalue={fill!r} is outside the range of {dtype}")
    with pytest.raises(ValueError, match=message):
        check_inputs(image, KERNEL, ConvSpec(fillvalue=fill))
    with pytest.raises(ValueError, match=re.escape(f"up to ±{largest_finite(image.dtype):.6g}")):
        check_inputs(image, KERNEL, ConvSpec(fillvalue=fill))


@pytest.mark.skipif(bfloat16 is None, reason="ml_dtypes is not installed")
def test_a_fill_beyond_bfloat16_is_refused() -> None:
    image = np.ones((4, 4), numpy_dtype("bfloat16"))
    with pytest.raises(ValueError, match=r"outside the range of bfloat16 \(finite values up to"):
        check_inputs(image, KERNEL, ConvSpec(fillvalue=3.4e38))
    check_inputs(image, KERNEL, ConvSpec(fillvalue=3.3e38))


def test_a_fill_within_the_dtype_or_never_used_is_fine() -> None:
    # 65519 rounds down to float16's largest finite value, 65504; 65520 would round to inf.
    check_inputs(np.ones((4, 4), np.float16), KERNEL, ConvSpec(fillvalue=65519.0))
    check_inputs(np.ones((4, 4), np.float32), KERNEL, ConvSpec(fillvalue=3e38))
    # 'valid' pads nothing, nor does 'same' with a 1x1 kernel: the fill never enters.
    check_inputs(np.ones((4, 4), np.float16), KERNEL, ConvSpec(mode="valid", fillvalue=7e4))
    check_inputs(np.ones((4, 4), np.float16), np.ones((1, 1)), ConvSpec(fillvalue=7e4))


def test_checked_inputs_are_owned_native_c_arrays() -> None:
    base = np.arange(40.0, dtype=">f4").reshape(5, 8)
    image = base[::-1, ::2]
    kernel = np.asfortranarray(np.arange(6.0).reshape(2, 3)).astype(">f8")
    checked_image, checked_kernel = check_inputs(image, kernel, ConvSpec())
    for checked, given in ((checked_image, image), (checked_kernel, kernel)):
        assert checked.dtype == np.float32 and checked.dtype.isnative
        assert checked.flags.c_contiguous and checked.flags.owndata and checked.flags.writeable
        np.testing.assert_array_equal(checked, given)
    base[...] = 0
    assert checked_image.any()


def test_checked_inputs_without_copy_are_the_callers() -> None:
    image = np.ones((5, 5), np.float32)
    kernel = np.ones((3, 3), np.float32)
    checked_image, checked_kernel = check_inputs(image, kernel, ConvSpec(), copy=False)
    assert checked_image is image and checked_kernel is kernel
