"""ConvSpec: validation, the padding table of DESIGN.md, output shapes, input checks."""

from __future__ import annotations

import numpy as np
import pytest

from convbench.spec import ConvSpec, Padding, check_inputs


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
        ({"fillvalue": float("nan")}, "must be finite"),
    ],
)
def test_bad_spec_values_name_value_and_accepted(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        ConvSpec(**kwargs)


def test_fillvalue_must_be_a_number() -> None:
    with pytest.raises(TypeError, match="fillvalue='0' must be a real number"):
        ConvSpec(fillvalue="0")


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
        (np.ones((1, 1, 5, 5)), KERNEL, ConvSpec(), ValueError, "got 4-D shape"),
        (IMAGE, np.ones((1, 3, 3)), ConvSpec(), ValueError, "kernel must be 2-D"),
        (np.ones((0, 5), np.float32), KERNEL, ConvSpec(), ValueError, "image is empty"),
        (IMAGE, np.ones((3, 0)), ConvSpec(), ValueError, "kernel is empty"),
        (IMAGE, np.ones((6, 2)), ConvSpec(mode="valid"), ValueError, "larger than the image"),
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
