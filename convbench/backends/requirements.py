"""Whether a backend's requirements are met, judged without importing anything.

Shared by ``Backend.unavailable_reason`` and the registry's cheap listing, so that the registry
imports the backends' base and never the other way round.
"""

from __future__ import annotations

import functools
import importlib.util
import os


@functools.cache
def nvidia_gpu_present() -> bool:
    """A cheap hint that an NVIDIA GPU is attached (device nodes), without loading CUDA."""
    gpus = "/proc/driver/nvidia/gpus"
    return os.path.exists("/dev/nvidia0") or (os.path.isdir(gpus) and bool(os.listdir(gpus)))


# convbench's extra that installs a module, where the two names differ.
EXTRAS = {"cv2": "opencv"}


def missing_requirement(modules: tuple[str, ...], needs_gpu: bool) -> str | None:
    """Why a backend cannot run, judged without importing anything; None when it may."""
    for module in modules:
        if importlib.util.find_spec(module) is None:
            extra = EXTRAS.get(module, module)
            return f"Python package {module!r} is not installed (pip install 'convbench[{extra}]')"
    if needs_gpu and not nvidia_gpu_present():
        return "no NVIDIA GPU found on this machine (/dev/nvidia0 is absent)"
    return None
