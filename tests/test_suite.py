"""The default benchmark grid: its skip policy, agreement-size limit and inputs."""

from __future__ import annotations

import importlib.util
import math
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
GPU_BACKENDS = ("tensorflow-gpu", "torch-cuda", "jax-gpu", "cupy-gpu", "cupy-fftconvolve")
FFT_BACKENDS = ("scipy-fftconvolve", "scipy-oaconvolve")
# OpenCV's method (direct or DFT) is asked of cv2 itself.
HAS_CV2 = importlib.util.find_spec("cv2") is not None


def test_grid_covers_the_issue():
    assert tuple(decl.name for decl in BUILTIN) == suite.BACKENDS
    assert min(suite.SIZES) <= 64 and max(suite.SIZES) == 8192 and len(suite.SIZES) >= 6
    assert any(k % 2 == 0 for k in suite.KERNELS)
    # Where FFT methods overtake direct ones: 15x15 and 31x31.
    assert {15, 31} <= set(suite.KERNELS) and max(suite.KERNELS) == 31
    assert suite.DTYPES == ("float32", "float64")
    assert (suite.SPEC.op, suite.SPEC.mode, suite.SPEC.boundary) == ("correlate", "same", "fill")


@pytest.mark.parametrize("backend", ["scipy-convolve2d", "scipy-correlate2d"])
@pytest.mark.parametrize("dtype", suite.DTYPES)
def test_scipy_direct_at_4096_with_15x15_is_skipped_with_its_reason(backend, dtype):
    reason = suite.skip_reason(backend, 4096, 15, dtype)
    assert reason is not None
    assert "scipy.signal's direct loop" in reason and "3.77e+09 multiply-adds" in reason


@pytest.mark.parametrize("backend", CPU_BACKENDS + GPU_BACKENDS)
@pytest.mark.parametrize("dtype", suite.DTYPES)
def test_the_smallest_case_is_measured_everywhere(backend, dtype):
    assert suite.skip_reason(backend, 64, 3, dtype) is None


@pytest.mark.parametrize("backend", ["tensorflow-cpu", "torch-cpu", "jax-cpu"])
def test_cpu_frameworks_measure_4096_in_float32_up_to_the_budget(backend):
    assert suite.skip_reason(backend, 4096, 7, "float32") is None
    assert suite.skip_reason(backend, 2048, 15, "float32") is None
    assert suite.skip_reason(backend, 8192, 3, "float32") is None
    assert "1.01e+09 multiply-adds" in suite.skip_reason(backend, 1024, 31, "float32")
    assert "float64 on a CPU" in suite.skip_reason(backend, 4096, 7, "float64")
    assert suite.skip_reason(backend, 4096, 15, "float32") == (
        "on a CPU: 3.77e+09 multiply-adds (4096x4096 image, 15x15 kernel) exceed the suite's "
        "budget of 1e+09 (seconds per call)"
    )


@pytest.mark.parametrize("backend", FFT_BACKENDS)
def test_fft_methods_are_budgeted_by_their_transforms_not_by_multiply_adds(backend):
    # 4096² with 31x31 is 1.6e10 multiply-adds, far past any direct budget: an FFT does it in
    # about 4e8 operations, whatever the kernel.
    for kernel in suite.KERNELS:
        assert suite.skip_reason(backend, 4096, kernel, "float32") is None
        assert suite.skip_reason(backend, 2048, kernel, "float64") is None
    assert suite.skip_reason(backend, 8192, 31, "float32") is None
    assert suite.skip_reason(backend, 4096, 31, "float64") is None


@pytest.mark.parametrize("backend", FFT_BACKENDS)
def test_large_ffts_are_measured_with_the_largest_kernel_only(backend):
    assert suite.skip_reason(backend, 8192, 15, "float32") == (
        "float32 FFT on a CPU: 1.75e+09 FFT operations (n log2 n, n = 8206x8206 points: "
        "8192x8192 image, 15x15 kernel) exceed 5e+08, above which an FFT method, whose cost "
        "hardly depends on the kernel, is measured with the largest kernel (31x31) only"
    )
    assert "largest kernel (31x31) only" in suite.skip_reason(backend, 4096, 3, "float64")


@pytest.mark.parametrize("backend", FFT_BACKENDS)
def test_ffts_past_their_budget_are_skipped_with_the_count(backend):
    assert suite.skip_reason(backend, 8192, 31, "float64") == (
        "float64 FFT on a CPU: 1.76e+09 FFT operations (n log2 n, n = 8222x8222 points: "
        "8192x8192 image, 31x31 kernel) exceed the suite's budget of 1e+09 (seconds per call)"
    )
    reason = suite.skip_reason(backend, 256, 31, "float32", batch=4096)
    assert reason is not None and "n = 4096 x 286x286 points: 4096x256x256 image" in reason


def test_opencv_is_budgeted_by_the_method_it_picks():
    # filter2D sums directly below 130 taps in float32 (50 otherwise), through a DFT above.
    opencv = convbench.get_backend("opencv-cpu")
    pytest.importorskip("cv2")
    assert opencv.arithmetic("float32", (64, 64), (7, 7)) == "direct"
    assert "float64 on a CPU: 8.22e+08 multiply-adds" in suite.skip_reason(
        "opencv-cpu", 4096, 7, "float64"
    )
    assert suite.skip_reason("opencv-cpu", 4096, 31, "float64") is None
    assert "largest kernel" in suite.skip_reason("opencv-cpu", 4096, 15, "float64")


@pytest.mark.parametrize(
    ("size", "kernel", "points"), [(64, 3, 66 * 66), (1, 1, 1), (8192, 31, 8222 * 8222)]
)
def test_fft_operations_are_n_log2_n_of_the_padded_image(size, kernel, points):
    assert suite.transform_points(size, kernel) == points
    assert suite.fft_operations(size, kernel) == points * math.log2(points)
    assert suite.fft_operations(size, kernel, batch=3) == 3 * points * math.log2(points)


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


def test_every_size_is_measured_by_some_cpu_backend_in_float32_and_to_4096_in_float64():
    cpu = [b for b in suite.BACKENDS if convbench.get_backend(b).device_kind == "cpu"]
    for size in suite.SIZES:
        for dtype in suite.DTYPES if size <= 4096 else ("float32",):
            assert any(
                suite.skip_reason(b, size, k, dtype) is None for b in cpu for k in suite.KERNELS
            ), (size, dtype)
    assert all(suite.skip_reason(b, 8192, k, "float64") for b in cpu for k in suite.KERNELS)


@given(
    backend=st.sampled_from([b for b in suite.BACKENDS if b != "opencv-cpu" or HAS_CV2]),
    size=st.integers(1, 8192),
    kernel=st.integers(1, 31),
    dtype=st.sampled_from(("float16", "bfloat16", "float32", "float64")),
    batch=st.integers(1, 64),
)
def test_skip_reason_is_the_budget_rule_or_a_declared_defect(backend, size, kernel, dtype, batch):
    reason = suite.skip_reason(backend, size, kernel, dtype, batch)
    found = convbench.get_backend(backend)
    image_shape = (size, size) if batch == 1 else (batch, size, size)
    fft = found.arithmetic(dtype, image_shape, (kernel, kernel)) == "fft"
    if fft:
        work, unit = suite.fft_operations(size, kernel, batch), "FFT operations"
        budget = suite.CPU_FFT_OPERATIONS.get(dtype, 1e9)
        narrow = suite.CPU_FFT_EVERY_KERNEL.get(dtype, 2.5e8)
        over = work > budget or (work > narrow and kernel < max(suite.KERNELS))
    else:
        work, unit = suite.multiply_adds(size, kernel, batch), "multiply-adds"
        slow = found.slow_method is not None or dtype == "float64"
        over = work > (suite.CPU_SLOW_MACS if slow else suite.CPU_MAX_MACS)
    budget = found.device_kind == "cpu" and over
    if budget:
        assert reason is not None and f"{work:.3g} {unit}" in reason
    else:
        assert reason == found.case_unsupported(image_shape, (kernel, kernel), dtype)
    # A case skipped for its cost stays skipped when its image grows.
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


class ByFFT(SlowLoop):
    """A third-party FFT method: budgeted by its transforms, not by its multiply-adds."""

    slow_method = None

    def arithmetic(self, dtype, image_shape, kernel_shape):  # type: ignore[no-untyped-def]
        return "fft"


class NotInstalled(SlowLoop):
    """A backend whose library is missing, so it cannot say how it would compute."""

    requires = ("no_such_module_anywhere",)

    def arithmetic(self, dtype, image_shape, kernel_shape):  # type: ignore[no-untyped-def]
        raise AssertionError("the grid never asks a backend that is not installed")


@pytest.fixture
def plugins(monkeypatch: pytest.MonkeyPatch):
    points = {
        name: EntryPoint(name, f"{__name__}:{cls}", registry.ENTRY_POINT_GROUP)
        for name, cls in [
            ("example-loop", "SlowLoop"),
            ("example-gpu", "OnGpu"),
            ("example-fft", "ByFFT"),
            ("example-absent", "NotInstalled"),
        ]
    }
    monkeypatch.setattr(registry, "_entry_point_backends", lambda: points)
    registry.get_backend.cache_clear()
    yield
    registry.get_backend.cache_clear()


@pytest.mark.usefixtures("plugins")
def test_the_grid_asks_the_backend_object_not_its_name():
    reason = suite.skip_reason("example-loop", 1024, 15, "float32")
    assert reason == (
        "example's pure-Python loop: 2.36e+08 multiply-adds (1024x1024 image, 15x15 kernel) exceed "
        "the suite's budget of 1.6e+08 (about a second per call on one CPU core)"
    )
    assert suite.skip_reason("example-loop", 1024, 7, "float32") is None
    assert suite.skip_reason("example-gpu", 8192, 15, "float64") is None


@pytest.mark.usefixtures("plugins")
def test_the_cost_model_follows_the_arithmetic_the_backend_declares():
    assert suite.skip_reason("example-fft", 4096, 31, "float32") is None
    assert suite.skip_reason("example-fft", 8192, 31, "float64").startswith(
        "float64 FFT on a CPU: 1.76e+09 FFT operations"
    )
    cost = suite.cpu_cost(convbench.get_backend("example-loop"), 64, 3, "float32")
    assert cost == suite.CpuCost(
        work=64 * 64 * 9,
        unit="multiply-adds",
        budget=suite.CPU_SLOW_MACS,
        method="example's pure-Python loop",
        detail="64x64 image, 3x3 kernel",
        seconds="about a second per call on one CPU core",
    )
    assert cost.reason(3) is None


@pytest.mark.usefixtures("plugins")
def test_a_backend_that_is_not_installed_is_not_budgeted_but_unavailable():
    assert suite.cpu_cost(convbench.get_backend("example-absent"), 8192, 31, "float64") is None
    assert suite.skip_reason("example-absent", 8192, 31, "float64") is None
    assert "no_such_module_anywhere" in suite.case_unavailable("example-absent", "float64")


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
        31,
    ]
    timed = [k for k in suite.KERNELS if suite.metric_skip_reason("time", 4096, k) is None]
    assert timed == [3, 7, 15, 31]
    assert "even 4x4 kernel is in the grid for agreement" in suite.metric_skip_reason(
        "time", 4096, 4
    )
    assert suite.metric_skip_reason("track", 256, 4) is None
    batch = [k for k in suite.BATCH_KERNELS if not suite.metric_skip_reason("peakmem", 256, k, 16)]
    assert batch == [3, 15]
    assert suite.metric_skip_reason("peakmem", 256, 7, 16) == (
        "peak memory is measured for kernels [3, 15], the extremes"
    )


def test_peak_memory_is_measured_from_1024_up_where_the_op_shows_past_the_frameworks():
    sizes = [s for s in suite.SIZES if suite.metric_skip_reason("peakmem", s, 3) is None]
    assert sizes == [1024, 4096, 8192]
    assert suite.metric_skip_reason("peakmem", 256, 3) == (
        "peak memory is measured for images 1024x1024, 4096x4096, 8192x8192: below 1024x1024 the "
        "peak is the frameworks' own, and 2048x2048 lies between"
    )
    # A batch's peak is measured at its own size.
    assert suite.metric_skip_reason("peakmem", 256, 3, 16) is None


def test_unknown_metric_is_refused():
    with pytest.raises(ValueError, match="must be one of"):
        suite.metric_skip_reason("speed", 64, 3)


def test_the_grid_and_the_environment_import_no_backend_module():
    code = (
        "import sys, convbench.suite, convbench.environment; "
        "print(sorted(m for m in sys.modules if m.startswith('convbench.backends.')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == (
        "['convbench.backends.base', 'convbench.backends.peak', 'convbench.backends.requirements']"
    )


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


def test_the_asv_grid_takes_the_backends_this_machine_may_run_by_default(monkeypatch):
    monkeypatch.delenv(suite.GRID_BACKENDS_VARIABLE, raising=False)
    chosen = suite.grid_backends()
    # The cheap judgement (no framework import, no device query) of the registry's listing.
    assert chosen == tuple(registry.available_backends())
    assert "scipy-correlate2d" in chosen
    assert list(chosen) == [name for name in suite.BACKENDS if name in chosen]


def test_the_asv_grid_without_a_gpu_leaves_out_the_gpu_backends(monkeypatch):
    monkeypatch.setattr(
        "convbench.backends.requirements.nvidia_gpu_present", lambda: False, raising=True
    )
    chosen = suite.grid_backends(chosen="")
    assert not set(chosen) & set(GPU_BACKENDS)
    assert not any(v.startswith(GPU_BACKENDS) for v in suite.setting_variants(chosen))


def test_the_asv_grid_can_be_every_backend_or_a_chosen_few():
    assert suite.grid_backends(chosen="all") == suite.BACKENDS
    # Listed names keep the grid's order, whatever order they are given in.
    assert suite.grid_backends(chosen=" torch-cpu, scipy-correlate2d ") == (
        "scipy-correlate2d",
        "torch-cpu",
    )
    assert suite.grid_backends(("torch-cpu", "jax-cpu"), chosen="jax-cpu,scipy-ndimage") == (
        "jax-cpu",
    )
    variants = suite.setting_variants(("jax-cpu",))
    assert variants and all(v.startswith("jax-cpu ") for v in variants)
    assert suite.setting_variants(("scipy-correlate2d",)) == ()


def test_an_unknown_backend_for_the_asv_grid_is_named():
    words = (
        r"CONVBENCH_ASV_BACKENDS='torch-cpu,tourch-cuda': 'tourch-cuda' is not a backend; "
        r"must be 'all' or names among: scipy-convolve2d, "
    )
    with pytest.raises(ValueError, match=words):
        suite.grid_backends(chosen="torch-cpu,tourch-cuda")


@pytest.mark.parametrize(("batch", "dtype"), [(1, "float32"), (1, "float64"), (3, "bfloat16")])
def test_cached_inputs_are_the_numbers_drawn_without_a_cache(tmp_path, monkeypatch, batch, dtype):
    monkeypatch.setattr(suite, "CACHED_ELEMENTS", 64)
    drawn = suite.make_inputs(16, 5, dtype, batch)
    first = suite.make_inputs(16, 5, dtype, batch, cache=tmp_path)
    kept = sorted(path.name for path in tmp_path.iterdir())
    assert len(kept) == 2 and kept[0].endswith(".npy") and kept[1].endswith(".state.json")
    # Read back, for this kernel and another: the kernel follows the image in the generator.
    again = suite.make_inputs(16, 5, dtype, batch, cache=tmp_path)
    other = suite.make_inputs(16, 3, dtype, batch, cache=tmp_path)
    for found in (first, again):
        for got, want in zip(found, drawn, strict=True):
            assert got.dtype == want.dtype and np.array_equal(got, want)
            assert got.flags.writeable
    assert np.array_equal(other[1], suite.make_inputs(16, 3, dtype, batch)[1])
    # Small images are drawn each time, not kept.
    suite.make_inputs(4, 3, dtype, cache=tmp_path)
    assert len(list(tmp_path.iterdir())) == 2


def test_a_torn_or_unwritable_input_cache_costs_time_not_numbers(tmp_path, monkeypatch):
    monkeypatch.setattr(suite, "CACHED_ELEMENTS", 64)
    drawn = suite.make_inputs(16, 3, "float32")
    suite.make_inputs(16, 3, "float32", cache=tmp_path)
    (image,) = tmp_path.glob("*.npy")
    image.write_bytes(image.read_bytes()[:100])
    assert all(map(np.array_equal, suite.make_inputs(16, 3, "float32", cache=tmp_path), drawn))
    (state,) = tmp_path.glob("*.state.json")
    state.write_text("{")
    assert all(map(np.array_equal, suite.make_inputs(16, 3, "float32", cache=tmp_path), drawn))
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    assert all(map(np.array_equal, suite.make_inputs(16, 3, "float32", cache=blocked), drawn))
