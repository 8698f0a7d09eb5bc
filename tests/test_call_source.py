"""Backend.call_source: the pasted source computes the spec, as the reference does and exactly as
the backend's own ``prepare`` does (the call recommended is the call measured)."""

from __future__ import annotations

import itertools
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

import convbench
from convbench.agreement import agreement_for
from convbench.backends.base import Backend, Plan
from convbench.registry import BUILTIN
from convbench.spec import MODES, OPS, ConvSpec, numpy_dtype
from tests.strategies import Case, cases

BOUNDARIES = [("fill", 0.0), ("fill", 1.5), ("wrap", 0.0), ("symm", 0.0)]
SPECS = [
    ConvSpec(op, mode, boundary, fill)
    for op, mode, (boundary, fill) in itertools.product(OPS, MODES, BOUNDARIES)
]
# Odd and square, even and rectangular.
KERNELS = [(3, 3), (4, 2)]
PROPERTY = settings(
    max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def inputs(
    image_shape: tuple[int, ...], kernel_shape: tuple[int, int], dtype: str, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    target = numpy_dtype(dtype)
    return (
        rng.standard_normal(image_shape).astype(target),
        rng.standard_normal(kernel_shape).astype(target),
    )


def run_source(source: str, image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    scope = {"image": image, "kernel": kernel}
    exec(compile(source, "<call_source>", "exec"), scope)
    return scope["out"]


def check(backend: Backend, image: np.ndarray, kernel: np.ndarray, spec: ConvSpec) -> None:
    """The source's result: the backend's own, bit for bit, and within its tolerance of the
    reference."""
    dtype = image.dtype.name
    out = run_source(backend.call_source(spec, image.shape, kernel.shape, dtype), image, kernel)
    expected = backend.prepare(image, kernel, spec).result()
    assert out.dtype == image.dtype
    np.testing.assert_array_equal(out, expected)
    found = agreement_for(
        backend, out, convbench.reference(image, kernel, spec), image, kernel, spec
    )
    assert found.ok, f"{backend.name} {spec}: {found}"


@pytest.mark.parametrize("kernel_shape", KERNELS, ids=lambda k: f"{k[0]}x{k[1]}")
@pytest.mark.parametrize("spec", SPECS, ids=str)
def test_every_spec_in_float64(backend: Backend, spec: ConvSpec, kernel_shape) -> None:
    image, kernel = inputs((13, 14), kernel_shape, "float64")
    check(backend, image, kernel, spec)


@pytest.mark.parametrize("spec", [ConvSpec(), ConvSpec("convolve", "same", "symm")], ids=str)
def test_a_large_kernel(backend: Backend, spec: ConvSpec) -> None:
    # 12x11: 132 taps, OpenCV's DFT path in float32 and float64 alike.
    for dtype in ("float32", "float64"):
        image, kernel = inputs((30, 29), (12, 11), dtype, seed=4)
        check(backend, image, kernel, spec)


@pytest.mark.parametrize(
    "spec",
    [ConvSpec(), ConvSpec("convolve", "same", "symm"), ConvSpec("correlate", "full", "fill", 2)],
    ids=str,
)
def test_every_dtype(backend: Backend, spec: ConvSpec) -> None:
    for dtype in backend.dtypes:
        image, kernel = inputs((11, 10), (4, 3), dtype, seed=1)
        check(backend, image, kernel, spec)


@pytest.mark.parametrize("spec", [ConvSpec("convolve", "same"), ConvSpec(mode="valid")], ids=str)
def test_a_batch(backend: Backend, spec: ConvSpec) -> None:
    image, kernel = inputs((3, 9, 7), (2, 3), "float32", seed=2)
    check(backend, image, kernel, spec)


def test_random_cases(backend: Backend) -> None:
    @PROPERTY
    @given(cases(dtype="float64", max_side=10, max_kernel=6))
    def each(case: Case) -> None:
        check(backend, case.image, case.kernel, case.spec)

    each()


def test_a_strided_image_is_read_as_it_is(backend: Backend) -> None:
    image, kernel = inputs((20, 18), (3, 4), "float32", seed=3)
    image, kernel = image[::-2, ::2], kernel.T
    check(backend, image, kernel, ConvSpec("convolve", "same", "wrap"))


@pytest.mark.parametrize("name", [decl.name for decl in BUILTIN])
def test_a_dtype_the_backend_lacks_is_refused_with_the_reason(name: str) -> None:
    found = convbench.get_backend(name)
    lacking = [d for d in ("float16", "bfloat16") if d not in found.dtypes]
    for dtype in lacking:
        with pytest.raises(NotImplementedError, match=dtype):
            found.call_source(ConvSpec(), (8, 8), (3, 3), dtype)


def test_a_known_defect_is_refused_with_the_reason() -> None:
    jax = convbench.get_backend("jax-cpu")
    if jax.case_unsupported((2048, 2048), (3, 3), "float64") is None:
        pytest.skip("the installed jaxlib has no known float64 defect")
    with pytest.raises(NotImplementedError, match="SIGSEGV"):
        jax.call_source(ConvSpec(), (2048, 2048), (3, 3), "float64")


class Plain(Backend):
    """A third-party backend that computes but does not say how."""

    def _plan(self, image, kernel, spec) -> Plan:
        return Plan(image, np.asarray, np.asarray, np.asarray, "explicit")


def test_a_backend_without_a_source_says_so() -> None:
    with pytest.raises(NotImplementedError, match="plain does not give the library call"):
        Plain("plain").call_source(ConvSpec(), (8, 8), (3, 3), "float32")


@pytest.mark.parametrize(
    ("arguments", "error", "words"),
    [
        ((ConvSpec(mode="valid"), (4, 4), (5, 3), "float32"), ValueError, "larger than the image"),
        ((ConvSpec(), (4, 4), (3, 3), "int8"), ValueError, "'int8' is not one of"),
        ((ConvSpec(), (4,), (3, 3), "float32"), ValueError, r"must be \(H, W\)"),
        ((ConvSpec(), (0, 4), (3, 3), "float32"), ValueError, "must be positive"),
        (("correlate", (4, 4), (3, 3), "float32"), TypeError, "convbench.ConvSpec"),
    ],
)
def test_bad_arguments_name_the_value(arguments, error, words) -> None:
    with pytest.raises(error, match=words):
        convbench.get_backend("scipy-correlate2d").call_source(*arguments)


def test_writing_a_source_imports_no_framework() -> None:
    # recommend writes the call in the driver process, which must stay free of frameworks.
    script = (
        "import sys, convbench\n"
        "from convbench.registry import BUILTIN\n"
        "for decl in BUILTIN:\n"
        "    convbench.get_backend(decl.name).call_source(convbench.ConvSpec(), (8, 8), (4, 4),"
        " 'float32')\n"
        "print(sorted({'torch', 'tensorflow', 'jax', 'keras', 'cv2', 'cupy'} & set(sys.modules)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize("name", ["torch-cpu", "tensorflow-cpu", "jax-cpu", "opencv-cpu"])
def test_size_one_axes_with_negative_strides_are_copied(name: str) -> None:
    """numpy calls a reversed (1, W) row or a rotated 1x1 kernel contiguous and keeps its
    negative strides, which torch.from_numpy refuses: the source copies them."""
    backend = convbench.get_backend(name)
    if backend.unavailable_reason:
        pytest.skip(backend.unavailable_reason)
    row = np.arange(1.0, 6.0)[None, :][::-1]
    for image, kernel in ((row, np.array([[2.0]])), (np.array([[0.5]]), np.array([[-1.5]]))):
        check(backend, image, kernel, ConvSpec(op="convolve", mode="full"))


def test_the_source_reads_as_its_library_is_called() -> None:
    source = convbench.get_backend("torch-cpu").call_source(
        ConvSpec("convolve", "same", "symm"), (64, 64), (4, 4), "float32"
    )
    assert source == (
        "import numpy as np\n"
        "import torch\n"
        "import torch.nn.functional as F\n"
        "\n"
        "# F.conv2d cross-correlates; to convolve, the kernel is rotated 180 degrees\n"
        "k = np.array(kernel[::-1, ::-1], dtype=np.float32, order='C')\n"
        "x = np.array(image, dtype=np.float32, order='C')\n"
        "# conv2d pads with zeros only:\n"
        "# the image is padded for convolve 'same' (symm: mirrored, the edge repeated), then run "
        "'valid'\n"
        'x = np.pad(x, ((2, 1), (2, 1)), mode="symmetric")\n'
        "# NCHW: one channel; the kernel OIHW\n"
        "x = torch.from_numpy(x)[None, None]\n"
        "k = torch.from_numpy(k)[None, None]\n"
        "y = F.conv2d(x, k)\n"
        "out = y[0, 0].numpy()\n"
    )
