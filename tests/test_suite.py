"""The default benchmark grid: its skip policy, agreement-size limit and inputs."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import EntryPoint

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import convbench
from convbench import registry, suite
from convbench.backends.base import Backend
from convbench.registry import BUILTIN

CPU_BACKENDS = ("scipy-convolve2d", "scipy-correlate2d", "tensorflow-cpu", "torch-cpu", "jax-cpu")
GPU_BACKENDS = ("tensorflow-gpu", "torch-cuda", "jax-gpu", "cupy-gpu")


def test_grid_covers_the_issue():
    assert tuple(decl.name for decl in BUILTIN) == suite.BACKENDS
    assert min(suite.SIZES) <= 64 and max(suite.SIZES) >= 4096 and len(suite.SIZES) >= 5
    assert any(k % 2 == 0 for k in suite.KERNELS)
    assert suite.DTYPES == ("float32", "float64")
    assert (suite.SPEC.op, suite.SPEC.mode, suite.SPEC.boundary) == ("correlate", "same", "fill")


@pytest.mark.parametrize("backend", ["scipy-convolve2d", "scipy-correlate2d"])
@pytest.mark.parametrize("dtype", suite.DTYPES)
def test_scipy_direct_at_4096_with_15x15_is_skipped_with_its_reason(backend, dtype):
    reason = suite.skip_reason(backend, 4096, 15, dtype)
    assert reason is not None
    assert "scipy.signal's direct loop" in reason and "3.8e+09 multiply-adds" in reason


@pytest.mark.parametrize("backend", CPU_BACKENDS + GPU_BACKENDS)
@pytest.mark.parametrize("dtype", suite.DTYPES)
def test_the_smallest_case_is_measured_everywhere(backend, dtype):
    assert suite.skip_reason(backend, 64, 3, dtype) is None


@pytest.mark.parametrize("backend", ["tensorflow-cpu", "torch-cpu", "jax-cpu"])
def test_cpu_frameworks_measure_4096_in_float32_up_to_the_budget(backend):
    assert suite.skip_reason(backend, 4096, 7, "float32") is None
    assert suite.skip_reason(backend, 2048, 15, "float32") is None
    assert "float64 on a CPU" in suite.skip_reason(backend, 4096, 7, "float64")
    assert "budget of 1e+09" in suite.skip_reason(backend, 4096, 15, "float32")


@pytest.mark.parametrize("backend", GPU_BACKENDS)
@pytest.mark.parametrize("dtype", suite.DTYPES)
def test_gpu_backends_have_no_cpu_budget(backend, dtype):
    assert all(
        suite.skip_reason(backend, size, kernel, dtype) is None
        for size in suite.SIZES
        for kernel in suite.KERNELS
    )


def test_jax_cpu_float64_crash_region_is_skipped_and_named():
    for size, kernel, batch in [(1024, 3, 1), (1024, 6, 1), (2048, 4, 1), (256, 3, 16)]:
        assert "SIGSEGV" in suite.skip_reason("jax-cpu", size, kernel, "float64", batch)
    assert suite.skip_reason("jax-cpu", 1024, 7, "float64") is None
    assert suite.skip_reason("jax-cpu", 512, 3, "float64") is None
    assert suite.skip_reason("jax-cpu", 256, 3, "float64", batch=4) is None
    assert suite.skip_reason("jax-cpu", 2048, 3, "float32") is None
    assert suite.skip_reason("jax-gpu", 2048, 3, "float64") is None


def test_batch_counts_in_the_budget():
    assert suite.skip_reason("scipy-correlate2d", 256, 7, "float64", batch=16) is None
    reason = suite.skip_reason("scipy-correlate2d", 256, 15, "float64", batch=64)
    assert reason is not None and "64x256x256" in reason


def test_every_size_and_dtype_is_measured_by_some_cpu_backend():
    for size in suite.SIZES:
        for dtype in suite.DTYPES:
            assert any(
                suite.skip_reason(b, size, k, dtype) is None
                for b in CPU_BACKENDS
                for k in suite.KERNELS
            ), (size, dtype)


@given(
    backend=st.sampled_from(suite.BACKENDS),
    size=st.integers(1, 8192),
    kernel=st.integers(1, 31),
    dtype=st.sampled_from(("float16", "bfloat16", "float32", "float64")),
    batch=st.integers(1, 64),
)
def test_skip_reason_is_the_budget_rule_or_a_declared_defect(backend, size, kernel, dtype, batch):
    reason = suite.skip_reason(backend, size, kernel, dtype, batch)
    found = convbench.get_backend(backend)
    macs = suite.multiply_adds(size, kernel, batch)
    slow = macs > suite.CPU_SLOW_MACS
    budget = found.device_kind == "cpu" and (
        (found.slow_method is not None and slow)
        or (dtype == "float64" and slow)
        or macs > suite.CPU_MAX_MACS
    )
    if budget:
        assert reason is not None and f"{macs:.2g} multiply-adds" in reason
    else:
        image_shape = (size, size) if batch == 1 else (batch, size, size)
        assert reason == found.case_unsupported(image_shape, (kernel, kernel), dtype)
    # A case skipped for its cost stays skipped when it grows.
    if budget:
        assert suite.skip_reason(backend, size + 1, kernel, dtype, batch) is not None


class SlowLoop(Backend):
    """A third-party backend that declares itself a slow direct loop."""

    library = "example"
    slow_method = "example's pure-Python loop"

    def _plan(self, image, kernel, spec):  # type: ignore[no-untyped-def]
        raise AssertionError("the grid never plans a case")


class OnGpu(SlowLoop):
    """The same, on a GPU: the CPU budget does not apply."""

    def __init__(self, name: str) -> None:
        super().__init__(name, device="gpu")


@pytest.fixture
def plugins(monkeypatch: pytest.MonkeyPatch):
    points = {
        name: EntryPoint(name, f"{__name__}:{cls}", registry.ENTRY_POINT_GROUP)
        for name, cls in [("example-loop", "SlowLoop"), ("example-gpu", "OnGpu")]
    }
    monkeypatch.setattr(registry, "_entry_point_backends", lambda: points)
    registry.get_backend.cache_clear()
    yield
    registry.get_backend.cache_clear()


@pytest.mark.usefixtures("plugins")
def test_the_grid_asks_the_backend_object_not_its_name():
    reason = suite.skip_reason("example-loop", 1024, 15, "float32")
    assert reason == (
        "example's pure-Python loop: 2.4e+08 multiply-adds (1024x1024 image, 15x15 kernel) exceed "
        "the suite's budget of 1.6e+08 (about a second per call on one CPU core)"
    )
    assert suite.skip_reason("example-loop", 1024, 7, "float32") is None
    assert suite.skip_reason("example-gpu", 8192, 15, "float64") is None


def test_the_scipy_loop_is_slow_on_the_cpu_only():
    assert convbench.get_backend("scipy-correlate2d").slow_method == "scipy.signal's direct loop"
    assert convbench.get_backend("cupy-gpu").slow_method is None
    assert all(convbench.get_backend(name).slow_method is None for name in CPU_BACKENDS[2:])


def test_agreement_is_tracked_where_the_reference_is_cheap():
    assert suite.metric_skip_reason("track", 1024, 7) is None
    assert suite.metric_skip_reason("track", 256, 7, batch=16) is None
    assert "float64 reference" in suite.metric_skip_reason("track", 1024, 15)
    assert "float64 reference" in suite.metric_skip_reason("track", 2048, 3)
    assert "float64 reference" in suite.metric_skip_reason("track", 256, 15, batch=16)


def test_peak_memory_is_measured_for_the_extreme_kernels():
    assert [k for k in suite.KERNELS if suite.metric_skip_reason("peakmem", 4096, k) is None] == [
        3,
        15,
    ]
    assert all(suite.metric_skip_reason("time", 4096, k) is None for k in suite.KERNELS)


def test_unknown_metric_is_refused():
    with pytest.raises(ValueError, match="must be one of"):
        suite.metric_skip_reason("speed", 64, 3)


def test_the_grid_and_the_environment_import_no_backend_module():
    code = (
        "import sys, convbench.suite, convbench.environment; "
        "print(sorted(m for m in sys.modules if m.startswith('convbench.backends.')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['convbench.backends.base', 'convbench.backends.requirements']"


def test_preimport_asks_each_installed_backend(monkeypatch: pytest.MonkeyPatch):
    asked = []

    class Found:
        def __init__(self, name: str, requires: tuple[str, ...]) -> None:
            self.name, self.requires = name, requires

        def preimport(self) -> None:
            asked.append(self.name)

    found = {"here": Found("here", ("numpy",)), "absent": Found("absent", ("no_such_module",))}
    monkeypatch.setattr(suite, "get_backend", found.__getitem__)
    suite.preimport(("here", "absent"))
    assert asked == ["here"]


def test_scipy_preimport_loads_scipy_signal():
    code = (
        "import sys, convbench; convbench.get_backend('scipy-convolve2d').preimport(); "
        "print('scipy.signal' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"


def test_skip_policy_imports_no_framework():
    code = (
        "import sys; from convbench import suite; "
        "suite.skip_reason('torch-cuda', 4096, 15, 'float64'); suite.make_inputs(8, 3, 'float32'); "
        "print(sorted({'torch', 'tensorflow', 'jax'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
@pytest.mark.parametrize("batch", [1, 3])
def test_make_inputs_are_seeded_normals(dtype, batch):
    image, kernel = suite.make_inputs(32, 4, dtype, batch=batch, seed=5)
    again, again_kernel = suite.make_inputs(32, 4, dtype, batch=batch, seed=5)
    other, _ = suite.make_inputs(32, 4, dtype, batch=batch, seed=6)
    assert image.shape == ((32, 32) if batch == 1 else (batch, 32, 32))
    assert kernel.shape == (4, 4)
    assert image.dtype == np.dtype(dtype) and kernel.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(image, again)
    np.testing.assert_array_equal(kernel, again_kernel)
    assert not np.array_equal(image, other)
    values = image.astype(np.float64)
    assert abs(values.mean()) < 0.2 and 0.8 < values.std() < 1.2
    assert np.count_nonzero(kernel) == kernel.size and np.unique(kernel).size == kernel.size


def test_make_inputs_in_bfloat16() -> None:
    pytest.importorskip("ml_dtypes")
    image, kernel = suite.make_inputs(16, 3, "bfloat16")
    assert image.dtype.name == kernel.dtype.name == "bfloat16"
    assert np.isfinite(image.astype(np.float32)).all()


def test_setting_variants_cover_every_combination_and_parse_back():
    variants = suite.setting_variants()
    assert len(variants) == 4 + 2 + 2 + 2  # torch-cuda 2x2, tensorflow-gpu, jax-gpu, jax-cpu
    assert variants[0] == "torch-cuda tf32=True cudnn_benchmark=False"  # the library default
    assert suite.default_variant("torch-cuda") == variants[0]
    assert suite.default_variant("jax-cpu") == "jax-cpu precision=default"
    for variant in variants:
        backend, options = suite.parse_variant(variant)
        assert suite.variant_name(backend, options) == variant
        assert set(options) == set(suite.SETTING_OPTIONS[backend])
        assert suite.split_variant(variant) == (backend, variant.partition(" ")[2])
        # Each option is one the backend accepts, with a value it accepts.
        configured = convbench.get_backend(backend).configure(**options)
        assert configured.options.items() >= options.items()
    assert suite.parse_variant("jax-gpu precision=highest") == ("jax-gpu", {"precision": "highest"})
    assert suite.parse_variant("torch-cuda tf32=False")[1] == {"tf32": False}


def test_a_variant_setting_without_a_value_is_refused():
    with pytest.raises(ValueError, match="'tf32' in variant 'torch-cuda tf32' is not key=value"):
        suite.parse_variant("torch-cuda tf32")
