"""Which backends exist, which can run here, and how to get one.

Built-in backends are declared as data. Whether one can run is decided in two steps:
``available_backends()`` is cheap (the framework's module can be *found*, and for GPU backends an
NVIDIA device node exists; nothing is imported), while ``list_backends(deep=True)`` asks the
framework itself (imports it, e.g. ``torch.cuda.is_available()``). Third-party backends register
through the entry-point group ``convbench.backends``: each entry point loads a ``Backend`` subclass
or a zero-argument callable returning a ``Backend``.
"""

from __future__ import annotations

import functools
import importlib
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any

from convbench.backends.base import Backend
from convbench.backends.requirements import missing_requirement

ENTRY_POINT_GROUP = "convbench.backends"


@dataclass(frozen=True)
class BackendDecl:
    """A built-in backend: where its class lives and how to build it."""

    name: str
    factory: str  # "module:Class", importable without importing the framework
    kwargs: dict[str, Any] = field(default_factory=dict)
    cpu_twin: str | None = None

    def build(self) -> Backend:
        module, _, attr = self.factory.partition(":")
        backend = getattr(importlib.import_module(module), attr)(self.name, **self.kwargs)
        backend.cpu_twin = self.cpu_twin
        return backend


_SCIPY = "convbench.backends.scipy_signal:ScipySignalBackend"
_TORCH = "convbench.backends.torch_conv:TorchBackend"
_TF = "convbench.backends.tensorflow_conv:TensorFlowBackend"
_JAX = "convbench.backends.jax_lax:JaxBackend"
_FFT = "convbench.backends.scipy_fft:ScipyFFTBackend"

BUILTIN = (
    BackendDecl("scipy-convolve2d", _SCIPY, {"function": "convolve2d"}),
    BackendDecl("scipy-correlate2d", _SCIPY, {"function": "correlate2d"}),
    BackendDecl("tensorflow-cpu", _TF, {"device": "cpu"}),
    BackendDecl("tensorflow-gpu", _TF, {"device": "gpu"}, cpu_twin="tensorflow-cpu"),
    BackendDecl("torch-cpu", _TORCH, {"device": "cpu"}),
    BackendDecl("torch-cuda", _TORCH, {"device": "cuda"}, cpu_twin="torch-cpu"),
    BackendDecl("jax-cpu", _JAX, {"device": "cpu"}),
    BackendDecl("jax-gpu", _JAX, {"device": "gpu"}, cpu_twin="jax-cpu"),
    BackendDecl(
        "cupy-gpu", _SCIPY, {"function": "correlate2d", "device": "gpu"}, "scipy-correlate2d"
    ),
    BackendDecl("scipy-fftconvolve", _FFT, {"function": "fftconvolve"}),
    BackendDecl("scipy-oaconvolve", _FFT, {"function": "oaconvolve"}),
    BackendDecl("scipy-ndimage", "convbench.backends.scipy_ndimage:ScipyNdimageBackend"),
    BackendDecl("opencv-cpu", "convbench.backends.opencv:OpenCVBackend"),
    BackendDecl("keras-cpu", "convbench.backends.keras_layer:KerasBackend"),
    BackendDecl(
        "cupy-fftconvolve", _FFT, {"function": "fftconvolve", "device": "gpu"}, "scipy-fftconvolve"
    ),
)


@dataclass(frozen=True)
class BackendStatus:
    """One row of ``list_backends()``."""

    name: str
    library: str
    device: str
    available: bool
    reason: str | None = None


def _entry_point_backends() -> dict[str, Any]:
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def known_names() -> list[str]:
    builtin = [decl.name for decl in BUILTIN]
    return builtin + sorted(set(_entry_point_backends()) - set(builtin))


@functools.cache
def get_backend(name: str) -> Backend:
    """The backend called ``name``; ValueError listing the known names when there is none."""
    for decl in BUILTIN:
        if decl.name == name:
            return decl.build()
    third_party = _entry_point_backends()
    if name in third_party:
        loaded = third_party[name].load()
        backend = loaded(name) if isinstance(loaded, type) else loaded()
        if not isinstance(backend, Backend):
            raise TypeError(
                f"entry point {name!r} in group {ENTRY_POINT_GROUP!r} gave "
                f"{type(backend).__name__}, not a convbench Backend"
            )
        return backend
    raise ValueError(f"unknown backend {name!r}; must be one of: {known_names()}")


def _status(name: str, deep: bool) -> BackendStatus:
    try:
        backend = get_backend(name)
    except Exception as error:  # a broken third-party plugin is reported, not fatal
        return BackendStatus(name, "?", "?", False, f"failed to load: {error}")
    if deep:
        reason = backend.unavailable_reason
    else:
        reason = missing_requirement(backend.requires, backend.needs_gpu)
    return BackendStatus(name, backend.library, backend.device, reason is None, reason)


def list_backends(deep: bool = False) -> list[BackendStatus]:
    """Every known backend with whether it can run here and, when not, why."""
    return [_status(name, deep) for name in known_names()]


def available_backends() -> list[str]:
    """Names of the backends usable on this machine, judged cheaply (no framework import)."""
    return [status.name for status in list_backends() if status.available]
