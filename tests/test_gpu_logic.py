"""The CPU-side logic of the GPU backends: padding arguments, device placement, availability.

torch-cuda and tensorflow-gpu run the very code of torch-cpu and tensorflow-cpu (checked against
the reference in test_backends); only the device string and the synchronisation differ.
"""

from __future__ import annotations

import numpy as np
import pytest

import convbench
from convbench.backends.base import correlate_same, native_or_explicit
from convbench.backends.tensorflow_conv import TensorFlowBackend, check_placement, tf_padding
from convbench.backends.torch_conv import TorchBackend, _torch_padding
from convbench.spec import ConvSpec, Padding


def test_tf_padding_arguments() -> None:
    assert tf_padding(Padding(0, 0, 0, 0), (3, 3)) == "VALID"
    assert tf_padding(Padding(1, 2, 0, 1), (4, 2)) == "SAME"
    assert tf_padding(Padding(2, 1, 1, 0), (4, 2)) == [[0, 0], [2, 1], [1, 0], [0, 0]]
    assert tf_padding(Padding(3, 3, 3, 3), (4, 4)) == [[0, 0], [3, 3], [3, 3], [0, 0]]


def test_torch_padding_arguments() -> None:
    assert _torch_padding(Padding(1, 1, 2, 2), (3, 5)) == (1, 2)
    assert _torch_padding(Padding(1, 2, 1, 2), (4, 4)) == "same"
    assert _torch_padding(Padding(2, 1, 2, 1), (4, 4)) is None


def test_native_or_explicit() -> None:
    same4 = ConvSpec("correlate", "same")
    assert native_or_explicit(same4, (4, 4), lambda p: correlate_same(p, (4, 4))) == (
        True,
        Padding(1, 2, 1, 2),
    )
    for spec in (ConvSpec("convolve", "same", "wrap"), ConvSpec(fillvalue=1.0)):
        assert native_or_explicit(spec, (3, 3), lambda p: True) == (False, Padding(0, 0, 0, 0))


def test_placement_check() -> None:
    check_placement("/GPU:0", "/job:localhost/replica:0/task:0/device:GPU:0")
    check_placement("/CPU:0", "/job:localhost/replica:0/task:0/device:CPU:0")
    with pytest.raises(RuntimeError, match=r"placed conv2d on .*CPU:0.*not '/GPU:0'"):
        check_placement("/GPU:0", "/job:localhost/replica:0/task:0/device:CPU:0")


def test_device_names() -> None:
    assert TensorFlowBackend("t", "gpu").tf_device == "/GPU:0"
    assert TensorFlowBackend("t", "cpu").tf_device == "/CPU:0"
    with pytest.raises(ValueError, match="device='tpu' must be one of"):
        TensorFlowBackend("t", "tpu")
    with pytest.raises(ValueError, match="device='gpu' must be 'cpu' or 'cuda'"):
        TorchBackend("t", "gpu")


@pytest.mark.parametrize("name", ["torch-cuda", "tensorflow-gpu", "jax-gpu", "cupy-gpu"])
def test_gpu_backend_without_gpu_says_why(name: str) -> None:
    backend = convbench.get_backend(name)
    if backend.unavailable_reason is None:
        pytest.skip(f"{name} has a GPU here")
    x = np.ones((8, 8), np.float32)
    with pytest.raises(convbench.BackendUnavailable, match=f"backend '{name}' is unavailable: "):
        convbench.run(name, x, x[:3, :3])


def test_options_are_validated_recorded_and_copied() -> None:
    base = convbench.get_backend("torch-cpu")
    tuned = base.configure(tf32=False, cudnn_benchmark=True)
    unset = {"tf32": None, "cudnn_benchmark": None, "memory_format": None}
    assert tuned is not base and base.options == unset
    assert tuned.options == {**unset, "tf32": False, "cudnn_benchmark": True}
    assert "options={'tf32': False, 'cudnn_benchmark': True}" in repr(tuned)
    with pytest.raises(ValueError, match=r"torch-cpu has no option 'tf33'; its options are \["):
        base.configure(tf33=True)
    with pytest.raises(ValueError, match=r"option tf32='off' is not one of \[True, False\]"):
        base.configure(tf32="off")
    jax_backend = convbench.get_backend("jax-gpu").configure(precision="highest")
    assert jax_backend.jax_precision == "highest"
    assert jax_backend.precision("float32") == "float32"
    assert convbench.get_backend("jax-gpu").precision("float32") == "tf32"


def test_torch_options_reach_cudnn_flags_and_settings() -> None:
    torch = pytest.importorskip("torch")
    backend = convbench.get_backend("torch-cpu").configure(cudnn_benchmark=True, tf32=False)
    saved = torch.backends.cudnn.benchmark, torch.backends.cudnn.allow_tf32
    try:
        x = np.random.default_rng(0).standard_normal((8, 8)).astype(np.float32)
        backend.prepare(x, x[:3, :3]).run()
        assert (torch.backends.cudnn.benchmark, torch.backends.cudnn.allow_tf32) == (True, False)
        settings = backend.settings()
        assert settings["option.cudnn_benchmark"] == "True"
        assert settings["option.tf32"] == "False"
    finally:
        torch.backends.cudnn.benchmark, torch.backends.cudnn.allow_tf32 = saved


def test_tensorflow_tf32_option_reaches_tensorflow() -> None:
    backend = convbench.get_backend("tensorflow-cpu")
    if backend.unavailable_reason:
        pytest.skip(backend.unavailable_reason)
    from convbench.backends.tensorflow_conv import import_tensorflow

    tf = import_tensorflow()
    saved = tf.config.experimental.tensor_float_32_execution_enabled()
    try:
        x = np.random.default_rng(0).standard_normal((8, 8)).astype(np.float32)
        backend.configure(tf32=not saved).prepare(x, x[:3, :3]).run()
        assert tf.config.experimental.tensor_float_32_execution_enabled() is (not saved)
    finally:
        tf.config.experimental.enable_tensor_float_32_execution(saved)


def test_cupy_backend_is_the_scipy_code_on_the_gpu() -> None:
    backend = convbench.get_backend("cupy-gpu")
    assert (backend.signal_module, backend.array_module) == ("cupyx.scipy.signal", "cupy")
    assert backend.requires == ("cupy",) and backend.needs_gpu
    assert backend.function == convbench.get_backend("scipy-correlate2d").function
    assert "cupyx.scipy.signal.correlate2d computes only in" in backend.dtype_unsupported("float16")


def test_jax_cpu_refuses_the_float64_case_that_crashes_jaxlib() -> None:
    backend = convbench.get_backend("jax-cpu")
    if backend.unavailable_reason:
        pytest.skip(backend.unavailable_reason)
    import jaxlib

    if tuple(int(p) for p in jaxlib.__version__.split(".")[:2]) > (0, 10):
        pytest.skip(f"jaxlib {jaxlib.__version__} is newer than the defect's")
    big = np.zeros((1024, 1024))
    with pytest.raises(NotImplementedError, match=r"SIGSEGV.*1048576 pixels and a 3x3 kernel"):
        backend.prepare(big, np.ones((3, 3)))
    assert backend.case_unsupported((1024, 1024), (7, 7), "float64") is None
    assert backend.case_unsupported((1024, 1024), (3, 3), "float32") is None
