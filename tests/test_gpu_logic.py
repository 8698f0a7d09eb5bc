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


@pytest.mark.parametrize("name", ["torch-cuda", "tensorflow-gpu", "jax-gpu"])
def test_gpu_backend_without_gpu_says_why(name: str) -> None:
    backend = convbench.get_backend(name)
    if backend.unavailable_reason is None:
        pytest.skip(f"{name} has a GPU here")
    x = np.ones((8, 8), np.float32)
    with pytest.raises(convbench.BackendUnavailable, match=f"backend '{name}' is unavailable: "):
        convbench.run(name, x, x[:3, :3])
