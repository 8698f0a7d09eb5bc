"""Registry: names, availability without framework imports, entry-point plugins."""

from __future__ import annotations

import ast
import subprocess
import sys
from importlib.metadata import EntryPoint
from pathlib import Path

import numpy as np
import pytest

import convbench
from convbench import registry
from convbench.backends import requirements
from convbench.backends.base import Backend, Plan

BACKENDS_DIR = Path(convbench.__file__).parent / "backends"


def test_builtin_names_are_stable() -> None:
    names = [status.name for status in convbench.list_backends()]
    for name in (
        "scipy-convolve2d",
        "scipy-correlate2d",
        "tensorflow-cpu",
        "tensorflow-gpu",
        "torch-cpu",
        "torch-cuda",
    ):
        assert name in names


def test_unknown_name_lists_known_names() -> None:
    with pytest.raises(ValueError, match=r"unknown backend 'torch-gpu'; must be one of: \["):
        convbench.get_backend("torch-gpu")


def test_unavailable_backends_carry_a_reason() -> None:
    for status in convbench.list_backends():
        assert status.available == (status.reason is None)
    assert "scipy-convolve2d" in convbench.available_backends()


def test_available_backends_imports_no_framework() -> None:
    code = (
        "import sys, convbench; names = convbench.available_backends(); "
        "print([m for m in ('torch', 'tensorflow', 'jax') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


class Doubling(Backend):
    """A third-party backend for the test: correlation via scipy, times two."""

    library = "example"

    def _plan(self, image, kernel, spec):  # type: ignore[no-untyped-def]
        from scipy.signal import correlate2d

        host = spec.pad(image, kernel.shape)
        weights = spec.correlation_kernel(kernel)
        return Plan(
            host, np.asarray, lambda x: 2 * correlate2d(x, weights, "valid"), np.asarray, "explicit"
        )


def test_entry_point_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    point = EntryPoint("example-double", f"{__name__}:Doubling", registry.ENTRY_POINT_GROUP)
    monkeypatch.setattr(registry, "_entry_point_backends", lambda: {point.name: point})
    registry.get_backend.cache_clear()
    try:
        assert "example-double" in convbench.available_backends()
        x = np.random.default_rng(0).standard_normal((6, 6))
        k = np.ones((3, 3))
        np.testing.assert_allclose(
            convbench.run("example-double", x, k), 2 * convbench.reference(x, k)
        )
    finally:
        registry.get_backend.cache_clear()


def test_broken_entry_point_is_reported_not_fatal(monkeypatch: pytest.MonkeyPatch) -> None:
    point = EntryPoint("broken", "no_such_module:Thing", registry.ENTRY_POINT_GROUP)
    monkeypatch.setattr(registry, "_entry_point_backends", lambda: {point.name: point})
    registry.get_backend.cache_clear()
    try:
        status = {s.name: s for s in convbench.list_backends()}["broken"]
        assert not status.available and "failed to load" in status.reason
    finally:
        registry.get_backend.cache_clear()


def test_backends_never_import_the_registry() -> None:
    """The registry imports the backends' base, never the other way round."""
    for path in BACKENDS_DIR.glob("*.py"):
        tree = ast.parse(path.read_text())
        modules = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        modules |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        assert "convbench.registry" not in modules, path.name


def test_a_missing_package_is_named_with_its_install_command() -> None:
    assert requirements.missing_requirement(("numpy", "no_such_module"), needs_gpu=False) == (
        "Python package 'no_such_module' is not installed (pip install 'convbench[no_such_module]')"
    )
    assert requirements.missing_requirement(("numpy",), needs_gpu=False) is None


def test_a_gpu_backend_needs_an_nvidia_device_node(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(requirements, "nvidia_gpu_present", lambda: False)
    assert requirements.missing_requirement((), needs_gpu=True) == (
        "no NVIDIA GPU found on this machine (/dev/nvidia0 is absent)"
    )
    monkeypatch.setattr(requirements, "nvidia_gpu_present", lambda: True)
    assert requirements.missing_requirement((), needs_gpu=True) is None
