"""Every available backend agrees with the float64 reference on every spec it accepts;
TensorFlow starts without its C++ log."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import convbench
from convbench.agreement import agreement_for
from convbench.backends.tensorflow_conv import log_lines_kept
from convbench.spec import FLOAT_DTYPES, ConvSpec
from tests.strategies import Case, cases, record

PROPERTY = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _dtype_available(dtype: str) -> None:
    if dtype == "bfloat16":
        pytest.importorskip("ml_dtypes", reason="bfloat16 arrays need ml_dtypes")


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_backend_matches_reference(backend: convbench.Backend, dtype: str) -> None:
    _dtype_available(dtype)
    reason = backend.dtype_unsupported(dtype)
    if reason:
        x = np.ones((4, 4), dtype)
        with pytest.raises(NotImplementedError, match=dtype):
            backend.prepare(x, x[:2, :2], ConvSpec())
        pytest.skip(reason)

    @PROPERTY
    @given(cases(dtype=dtype))
    def check(case: Case) -> None:
        prepared = backend.prepare(case.image, case.kernel, case.spec)
        out = prepared.result()
        expected = convbench.reference(case.image, case.kernel, case.spec)
        assert out.dtype == case.image.dtype
        assert out.shape == expected.shape == prepared.output_shape
        found = agreement_for(backend, out, expected, case.image, case.kernel, case.spec)
        record(backend.name, dtype, found.max_rel)
        assert found.ok, f"{backend.name} {case.spec} {prepared.padding}: {found}"

    check()


@pytest.mark.parametrize("spec", [ConvSpec(mode="same"), ConvSpec("convolve", "full", "wrap")])
def test_end_to_end_equals_result(backend: convbench.Backend, spec: ConvSpec) -> None:
    rng = np.random.default_rng(5)
    x, k = rng.standard_normal((2, 20, 17)), rng.standard_normal((4, 3))
    prepared = backend.prepare(x, k, spec)
    np.testing.assert_array_equal(prepared.end_to_end(), prepared.result())
    np.testing.assert_array_equal(prepared.fetch(prepared.run()), prepared())


def test_launches_then_one_wait_give_the_result(backend: convbench.Backend) -> None:
    # A timed block: several launches back to back, one wait, then every output is complete.
    rng = np.random.default_rng(8)
    x, k = rng.standard_normal((64, 48)), rng.standard_normal((5, 4))
    prepared = backend.prepare(x, k)
    outputs = [prepared.launch() for _ in range(3)]
    prepared.wait()
    expected = prepared.result()
    for out in outputs:
        np.testing.assert_array_equal(prepared.fetch(out), expected)


@pytest.mark.parametrize("op", ["correlate", "convolve"])
def test_nan_spoils_only_its_windows(backend: convbench.Backend, op: str) -> None:
    x = np.random.default_rng(6).standard_normal((16, 16)).astype(np.float32)
    x[7, 9] = np.nan
    k = np.random.default_rng(7).standard_normal((4, 3)).astype(np.float32)
    if backend.arithmetic("float32", x.shape, k.shape) == "fft":
        pytest.skip("an FFT mixes every pixel into every output (tests/test_new_backends.py)")
    spec = ConvSpec(op=op, mode="same")
    out = backend.prepare(x, k, spec).result()
    np.testing.assert_array_equal(np.isnan(out), np.isnan(convbench.reference(x, k, spec)))


@given(kernel=st.integers(1, 6), size=st.integers(6, 12))
@settings(max_examples=20, deadline=None)
def test_seed_keras_same_vs_convolve2d(kernel: int, size: int) -> None:
    """The seed report, named: Keras' SAME 'conv' is a correlation; scipy.signal.convolve2d
    rotates the kernel; for even kernels the 'same' windows also sit one pixel apart."""
    rng = np.random.default_rng(kernel * 100 + size)
    x, k = rng.standard_normal((size, size)), rng.standard_normal((kernel, kernel))
    keras_like = convbench.reference(x, k, ConvSpec("correlate", "same"))
    scipy_conv = convbench.run("scipy-convolve2d", x, k, ConvSpec("convolve", "same"))
    if kernel > 1:
        assert not np.allclose(keras_like, scipy_conv)
    # Rotating the kernel 180 degrees "fixes it" for odd kernels only ...
    rotated = convbench.run("scipy-convolve2d", x, k[::-1, ::-1], ConvSpec("convolve", "same"))
    assert np.allclose(keras_like, rotated) == (kernel % 2 == 1)
    # ... and for even ones the rest is a one-pixel shift of the window:
    if kernel % 2 == 0:
        np.testing.assert_allclose(keras_like[:-1, :-1], rotated[1:, 1:], atol=1e-12)
    # convbench's scipy backend computes the framework's op exactly.
    same = convbench.run("scipy-convolve2d", x, k, ConvSpec("correlate", "same"))
    np.testing.assert_allclose(same, keras_like, atol=1e-12)


def test_seed_with_tensorflow() -> None:
    tf_backend = convbench.get_backend("tensorflow-cpu")
    if tf_backend.unavailable_reason:
        pytest.skip(tf_backend.unavailable_reason)
    rng = np.random.default_rng(8)
    x, k = rng.standard_normal((32, 32)), rng.standard_normal((4, 4))
    keras_like = tf_backend.prepare(x, k, ConvSpec("correlate", "same")).result()
    scipy_conv = convbench.run("scipy-convolve2d", x, k, ConvSpec("convolve", "same"))
    assert not np.allclose(keras_like, scipy_conv)
    np.testing.assert_allclose(
        keras_like,
        convbench.run("scipy-correlate2d", x, k, ConvSpec("correlate", "same")),
        atol=1e-12,
    )


START_UP = (
    b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
    b"I0000 00:00:1795622357.181875    9963 port.cc:153] oneDNN custom operations are on.\n"
    b"W0000 00:00:1795622357.183020    9963 cpu_feature_guard.cc:210] AVX512F available.\n"
    b"E0000 00:00:1795622360.016759    9963 cuda_platform.cc:52] failed call to cuInit: (303)\n"
    b"F0523 10:21:07.123456    9963 status.cc:12] Check failed: device\n"
    b"/site/keras/src/export.py:3: UserWarning: a Python warning\n"
)


@pytest.mark.parametrize(
    ("level", "kept"),
    [(0, [0, 1, 2, 3, 4, 5]), (1, [2, 3, 4, 5]), (2, [3, 4, 5]), (3, [4, 5])],
)
def test_start_up_lines_below_the_level_are_held_back(level: int, kept: list[int]) -> None:
    lines = START_UP.splitlines(keepends=True)
    assert log_lines_kept(START_UP, level) == b"".join(lines[i] for i in kept)


@pytest.mark.skipif(importlib.util.find_spec("tensorflow") is None, reason="needs TensorFlow")
def test_tensorflow_starts_without_its_cpp_log() -> None:
    code = (
        "import numpy as np, convbench; "
        "x = np.random.default_rng(0).standard_normal((16, 16)); "
        "print(convbench.run('tensorflow-cpu', x, np.ones((3, 3))).shape)"
    )
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert (done.stdout, done.stderr) == ("(16, 16)\n", "")
