"""What every backend is: a name, the dtypes it computes in, and a ``prepare`` step.

A backend module may import its framework only inside methods, so that listing backends and
importing convbench stay cheap. ``prepare`` does all untimed work (validation, explicit padding,
kernel flip, layout, upload) and returns a ``Prepared`` whose ``run`` is the timed op alone.
"""

from __future__ import annotations

import copy
import functools
import importlib
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from convbench.backends.requirements import missing_requirement
from convbench.spec import FLOAT_DTYPES, ConvSpec, Padding, check_inputs, numpy_dtype


def no_wait() -> None:
    """The device wait of a CPU backend: its work is done when the call returns."""


# Image-sized buffers a backend is assumed to hold while it computes, when it does not say.
DEFAULT_WORKSPACE_COPIES = 4


def default_workspace(
    image_shape: tuple[int, ...], kernel_shape: tuple[int, int], dtype: str, spec: ConvSpec
) -> int:
    """``DEFAULT_WORKSPACE_COPIES`` buffers the size of the padded image or the output, whichever
    is larger, in bytes: an explicit padded copy, the library's copy on upload, its output before
    the download copies it out, and scratch."""
    padded = np.prod(spec.padded_shape(image_shape, kernel_shape))
    outputs = np.prod(spec.output_shape(image_shape, kernel_shape))
    return DEFAULT_WORKSPACE_COPIES * int(max(padded, outputs)) * numpy_dtype(dtype).itemsize


class BackendUnavailable(RuntimeError):
    """The backend cannot run on this machine; the message says why."""


@dataclass(frozen=True)
class Plan:
    """How a backend computes one case; built by ``Backend._plan``.

    ``op`` launches the work and may return before the device has finished it (GPU frameworks
    queue work on a stream); ``wait`` returns once everything launched so far is done. A timer
    reads its clock only after a ``wait``, so it measures the work and not the launch.
    """

    host_image: np.ndarray
    upload: Callable[[np.ndarray], Any]
    op: Callable[[Any], Any]
    download: Callable[[Any], np.ndarray]
    padding: str
    wait: Callable[[], None] = no_wait


@dataclass(frozen=True)
class Prepared:
    """One case ready to time: ``run()`` is the op on device-resident data, returning when the
    device is done; ``launch()`` and ``wait()`` are its two halves, for timing a block of
    back-to-back launches with one wait; ``result()`` is a host array in the image's dtype;
    ``end_to_end()`` uploads, runs and downloads."""

    backend: str
    spec: ConvSpec
    dtype: str
    padding: str
    output_shape: tuple[int, ...]
    _plan: Plan = field(repr=False)
    _device_image: Any = field(repr=False)

    def launch(self) -> Any:
        return self._plan.op(self._device_image)

    def wait(self) -> None:
        self._plan.wait()

    def run(self) -> Any:
        out = self.launch()
        self.wait()
        return out

    def fetch(self, device_result: Any) -> np.ndarray:
        return self._plan.download(device_result)

    def result(self) -> np.ndarray:
        return self.fetch(self.run())

    def end_to_end(self) -> np.ndarray:
        plan = self._plan
        out = plan.op(plan.upload(plan.host_image))
        plan.wait()
        return plan.download(out)

    def __call__(self) -> np.ndarray:
        return self.result()


def native_or_explicit(
    spec: ConvSpec,
    kernel_shape: tuple[int, ...],
    native: Callable[[Padding], bool],
    image_shape: tuple[int, ...] | None = None,
) -> tuple[bool, Padding]:
    """Whether the library's own zero padding can express ``spec``, and the padding to ask for.

    ``native(padding)`` says whether the library pads exactly so. When it cannot (wrap, symm,
    a non-zero fill, or an asymmetric 'same' it does not offer), the image is padded explicitly
    on the host in ``prepare`` and the library runs a 'valid' correlation. ``image_shape`` is
    needed for 'same' at a stride above 1, whose padding depends on the image's size.
    """
    pad = spec.padding(kernel_shape, image_shape)
    if spec.boundary == "fill" and spec.fillvalue == 0 and native(pad):
        return True, pad
    return False, Padding(0, 0, 0, 0)


def is_layer_case(spec: ConvSpec, image_shape: tuple[int, ...]) -> bool:
    """Whether a case needs a layer's arithmetic: stride, dilation or groups other than 1, or
    an image (N, C_in, H, W)."""
    return len(image_shape) == 4 or not spec.is_plain


def _shape_words(shape: tuple[int, ...]) -> str:
    return "x".join(map(str, shape))


def correlate_same(pad: Padding, kernel_shape: tuple[int, int]) -> bool:
    """True when ``pad`` is the framework 'SAME' padding: (K-1)//2 before, K//2 after."""
    kh, kw = kernel_shape
    return pad == Padding((kh - 1) // 2, kh // 2, (kw - 1) // 2, kw // 2)


class Backend(ABC):
    """A library and device that computes ``ConvSpec``s."""

    library: str = ""
    # For a GPU backend, the CPU backend that runs the same code (torch-cuda -> torch-cpu), which
    # the report pairs it with; set by the registry for built-in backends.
    cpu_twin: str | None = None
    dtypes: tuple[str, ...] = ("float32", "float64")
    requires: tuple[str, ...] = ()
    # Settings that change speed or numbers, each with the values it accepts; None in
    # ``options`` means "the library's default, untouched".
    option_values: ClassVar[dict[str, tuple[Any, ...]]] = {}
    # The suites' time budget on a CPU (convbench.suite.skip_reason) assumes a library's own
    # vectorised kernel: a fraction of a nanosecond per multiply-add. A method several times
    # slower (a direct loop over the kernel's taps) names itself here, in the words of a skip
    # reason ("scipy.signal's direct loop"), and gets the suites' low budget in every dtype.
    slow_method: str | None = None
    # Why this backend computes no layer case (stride, dilation or groups other than 1, or an
    # (N, C_in, H, W) image), in its library's words; None for one that computes layers.
    layer_refusal: str | None = (
        "it computes 2-D images and batches at stride 1 without dilation or groups"
    )

    def __init__(self, name: str, device: str = "cpu") -> None:
        self.name = name
        self.device = device
        self.options: dict[str, Any] = dict.fromkeys(self.option_values)

    def __repr__(self) -> str:
        chosen = {k: v for k, v in self.options.items() if v is not None}
        extra = f", options={chosen}" if chosen else ""
        return f"{type(self).__name__}(name={self.name!r}, device={self.device!r}{extra})"

    def configure(self, **options: Any) -> Backend:
        """A copy of this backend with settings changed, e.g. ``configure(tf32=False)``."""
        for key, value in options.items():
            if key not in self.option_values:
                raise ValueError(
                    f"{self.name} has no option {key!r}; its options are {list(self.option_values)}"
                )
            accepted = self.option_values[key]
            if value not in accepted:
                raise ValueError(
                    f"{self.name} option {key}={value!r} is not one of {list(accepted)}"
                )
        configured = copy.copy(self)
        configured.options = {**self.options, **options}
        return configured

    def option_settings(self) -> dict[str, str]:
        """The options chosen, as recorded facts (``option.<name>``)."""
        return {f"option.{k}": str(v) for k, v in self.options.items() if v is not None}

    @property
    def needs_gpu(self) -> bool:
        return self.device != "cpu"

    @property
    def device_kind(self) -> str:
        """'cpu' or 'gpu', whatever the library calls its device ('cuda', 'gpu')."""
        return "gpu" if self.needs_gpu else "cpu"

    @functools.cached_property
    def unavailable_reason(self) -> str | None:
        """Why this backend cannot run here (imports the framework), or None if it can."""
        missing = missing_requirement(self.requires, self.needs_gpu)
        return missing or self._device_missing()

    def _device_missing(self) -> str | None:
        """Ask the framework whether the device is there; None when it is."""
        return None

    def preimport(self) -> None:
        """Import this backend's framework (installed), and touch no device: asv's forkserver
        imports once what every forked benchmark then finds loaded (``convbench.suite``)."""
        for module in self.requires:
            importlib.import_module(module)

    def dtype_unsupported(self, dtype: str) -> str | None:
        if dtype in self.dtypes:
            return None
        return f"{self.name} does not compute in {dtype}; it supports {list(self.dtypes)}"

    def case_unsupported(
        self, image_shape: tuple[int, ...], kernel_shape: tuple[int, int], dtype: str
    ) -> str | None:
        """Why this backend refuses a case it otherwise supports (a known library defect), or
        None. Checked in ``prepare``, before anything can crash the process."""
        return None

    def layer_unsupported(
        self,
        spec: ConvSpec,
        image_shape: tuple[int, ...],
        kernel_shape: tuple[int, ...],
        dtype: str,
    ) -> str | None:
        """Why this backend refuses a layer case (stride, dilation or groups other than 1, or an
        (N, C_in, H, W) image), or None: ``layer_refusal``'s reason for every layer case, so that
        a backend computes a layer only where it says it can, never silently at stride 1. A
        backend that computes some layer cases says here which it cannot."""
        if self.layer_refusal and is_layer_case(spec, image_shape):
            return (
                f"{self.name} does not compute {spec} on a {_shape_words(image_shape)} image: "
                f"{self.layer_refusal}"
            )
        return None

    def settings(self) -> dict[str, str]:
        """Versions and settings that change speed or numbers, recorded with every result."""
        return {}

    def precision(self, dtype: str) -> str:
        """The arithmetic a ``dtype`` computation really runs in (e.g. 'tf32' for float32)."""
        return dtype

    def arithmetic(
        self, dtype: str, image_shape: tuple[int, ...], kernel_shape: tuple[int, int]
    ) -> str:
        """How this case is computed, which decides how its rounding errors grow
        (``convbench.agreement.tolerance_for``): 'direct', each output a sum of its kh*kw
        products, or 'fft', through transforms of the whole image (or of blocks of it)."""
        return "direct"

    def workspace_bytes(
        self,
        image_shape: tuple[int, ...],
        kernel_shape: tuple[int, int],
        dtype: str,
        spec: ConvSpec,
    ) -> int:
        """Host memory this backend takes for a case beyond the inputs, its own copy of them and
        its output (``convbench.memory.case_memory`` adds them up); ``default_workspace`` unless
        the backend knows better."""
        return default_workspace(image_shape, kernel_shape, dtype, spec)

    def prepare(
        self, image: np.ndarray, kernel: np.ndarray, spec: ConvSpec | None = None
    ) -> Prepared:
        spec = ConvSpec() if spec is None else spec
        image, kernel = check_inputs(image, kernel, spec)
        dtype = image.dtype.name
        if self.unavailable_reason:
            raise BackendUnavailable(
                f"backend {self.name!r} is unavailable: {self.unavailable_reason}"
            )
        reason = (
            self.dtype_unsupported(dtype)
            or self.case_unsupported(image.shape, kernel.shape, dtype)
            or self.layer_unsupported(spec, image.shape, kernel.shape, dtype)
        )
        if reason:
            raise NotImplementedError(reason)
        plan = self._plan(image, kernel, spec)
        return Prepared(
            backend=self.name,
            spec=spec,
            dtype=dtype,
            padding=plan.padding,
            output_shape=spec.output_shape(image.shape, kernel.shape),
            _plan=plan,
            _device_image=plan.upload(plan.host_image),
        )

    @abstractmethod
    def _plan(self, image: np.ndarray, kernel: np.ndarray, spec: ConvSpec) -> Plan:
        """Build the plan for validated inputs (kernel already in the image's dtype)."""

    def call_source(
        self,
        spec: ConvSpec,
        image_shape: tuple[int, ...],
        kernel_shape: tuple[int, int],
        dtype: str,
    ) -> str:
        """Python source that computes ``spec`` with this backend's library the way ``prepare``
        does, ready to paste: with numpy arrays ``image`` (``image_shape``: (H, W) or (B, H, W))
        and ``kernel`` in scope, it assigns the result to ``out``, a numpy array in ``dtype``.
        Self-contained: its imports, the kernel's rotation, explicit ``np.pad`` where the library
        cannot pad so, the framework's layout and device, the result back on the host.

        Imports no framework. NotImplementedError with the reason when this backend cannot
        compute the case (a dtype it lacks, a known defect) or does not give its call.
        """
        if not isinstance(spec, ConvSpec):
            raise TypeError(f"spec must be a convbench.ConvSpec, got {type(spec).__name__}")
        image_shape, kernel_shape = tuple(image_shape), tuple(kernel_shape)
        if dtype not in FLOAT_DTYPES:
            raise ValueError(f"dtype {dtype!r} is not one of {list(FLOAT_DTYPES)}")
        if is_layer_case(spec, image_shape):
            raise NotImplementedError(
                f"{self.name} gives its call for 2-D images and batches at stride 1 without "
                f"dilation or groups, not for {spec} on a {_shape_words(image_shape)} image"
            )
        if len(image_shape) not in (2, 3) or len(kernel_shape) != 2:
            raise ValueError(
                f"image_shape {image_shape} must be (H, W) or (B, H, W) and kernel_shape "
                f"{kernel_shape} (kh, kw)"
            )
        if min(*image_shape, *kernel_shape) < 1:
            raise ValueError(f"shapes {image_shape} and {kernel_shape} must be positive")
        if spec.mode == "valid" and any(
            k > n for k, n in zip(kernel_shape, image_shape[-2:], strict=True)
        ):
            raise ValueError(
                f"kernel {kernel_shape} is larger than the image {image_shape[-2:]} in mode "
                "'valid', which would give an empty result"
            )
        reason = self.dtype_unsupported(dtype) or self.case_unsupported(
            image_shape, kernel_shape, dtype
        )
        if reason:
            raise NotImplementedError(reason)
        return self._call_source(spec, image_shape, kernel_shape, dtype)

    def _call_source(
        self,
        spec: ConvSpec,
        image_shape: tuple[int, ...],
        kernel_shape: tuple[int, int],
        dtype: str,
    ) -> str:
        """``call_source`` for checked arguments; a backend that can write its call says how."""
        raise NotImplementedError(f"{self.name} does not give the library call it makes")
