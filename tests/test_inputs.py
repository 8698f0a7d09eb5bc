"""Every backend owns its inputs once prepared, returns writable arrays, and reads any valid numpy
layout (byte-swapped, reversed, strided, Fortran-ordered, read-only) by value."""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import convbench
from convbench.reference import error_scale
from convbench.spec import ConvSpec
from tests.strategies import Case, cases


def _dtype(backend: convbench.Backend) -> str:
    return next(d for d in ("float32", "float64", *backend.dtypes) if d in backend.dtypes)


def _inputs(backend: convbench.Backend, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    dtype = _dtype(backend)
    return rng.standard_normal((2, 14, 11)).astype(dtype), rng.standard_normal((3, 4)).astype(dtype)


@pytest.mark.parametrize("spec", [ConvSpec(), ConvSpec("convolve", "full", "symm")])
def test_changing_the_callers_arrays_changes_no_prepared_case(
    backend: convbench.Backend, spec: ConvSpec
) -> None:
    image, kernel = _inputs(backend)
    prepared = backend.prepare(image, kernel, spec)
    expected = prepared.result()
    image += 1
    kernel *= -2
    np.testing.assert_array_equal(prepared.result(), expected)
    np.testing.assert_array_equal(prepared.end_to_end(), expected)


def test_results_are_writable_and_fresh(backend: convbench.Backend) -> None:
    prepared = backend.prepare(*_inputs(backend))
    first = prepared.result()
    assert first.flags.writeable
    expected = first.copy()
    first[...] = np.nan
    np.testing.assert_array_equal(prepared.result(), expected)
    assert prepared.end_to_end().flags.writeable


def _byteswapped(x: np.ndarray) -> np.ndarray:
    return x.astype(x.dtype.newbyteorder())


def _reversed(x: np.ndarray) -> np.ndarray:
    """The same values seen through negative strides."""
    return np.flip(np.flip(x).copy())


def _strided(x: np.ndarray) -> np.ndarray:
    """The same values, every other element of a larger array."""
    holder = np.zeros(tuple(2 * n for n in x.shape), x.dtype)
    view = holder[tuple(slice(None, None, 2) for _ in x.shape)]
    view[...] = x
    return view


def _readonly(x: np.ndarray) -> np.ndarray:
    y = x.copy()
    y.flags.writeable = False
    return y


LAYOUTS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "native": lambda x: x,
    "byteswapped": _byteswapped,
    "reversed": _reversed,
    "strided": _strided,
    "fortran": np.asfortranarray,
    "readonly": _readonly,
}


def test_layouts_hold_the_same_values() -> None:
    x = np.arange(12.0).reshape(3, 4)
    for name, layout in LAYOUTS.items():
        y = layout(x)
        np.testing.assert_array_equal(y, x, err_msg=name)
    assert not _byteswapped(x).dtype.isnative
    assert _reversed(x).strides[0] < 0
    assert not _strided(x).flags.contiguous


def test_a_reversed_single_row_is_read_by_value(backend: convbench.Backend) -> None:
    # x[::-1] of shape (1, W) has a negative stride that torch.from_numpy refused.
    image, kernel = _inputs(backend)
    row = image[0, :1]
    assert row[::-1].strides[0] < 0
    expected = backend.prepare(row, kernel).result()
    np.testing.assert_array_equal(backend.prepare(row[::-1], kernel).result(), expected)


PROPERTY = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def test_any_layout_gives_the_native_result(backend: convbench.Backend) -> None:
    dtype = _dtype(backend)

    @PROPERTY
    @given(
        cases(dtype=dtype),
        st.sampled_from(sorted(LAYOUTS)),
        st.sampled_from(sorted(LAYOUTS)),
    )
    def check(case: Case, image_layout: str, kernel_layout: str) -> None:
        image = LAYOUTS[image_layout](case.image)
        kernel = LAYOUTS[kernel_layout](case.kernel)
        out = backend.prepare(image, kernel, case.spec).result()
        np.testing.assert_array_equal(
            out, backend.prepare(case.image, case.kernel, case.spec).result()
        )
        found = convbench.agreement(
            out,
            convbench.reference(image, kernel, case.spec),
            terms=case.kernel.size,
            precision=backend.precision(dtype),
            scale=error_scale(image, kernel, case.spec),
        )
        assert found.ok, f"{backend.name} {case.spec} {image_layout}/{kernel_layout}: {found}"

    check()


BEYOND = {"float32": 1e39, "float16": 7e4}


def test_a_fill_beyond_the_dtype_is_refused_before_any_work(backend: convbench.Backend) -> None:
    dtype = next((d for d in BEYOND if d in backend.dtypes), None)
    if dtype is None:
        pytest.skip(f"{backend.name} computes in neither float32 nor float16")
    image = np.ones((6, 6), dtype)
    message = re.escape(f"fillvalue={BEYOND[dtype]!r} is outside the range of {dtype}")
    with pytest.raises(ValueError, match=message):
        backend.prepare(image, image[:3, :3], ConvSpec(fillvalue=BEYOND[dtype]))
