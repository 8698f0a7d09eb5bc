"""Backends that misbehave on one case, for the fault-injection tests (tests/test_faults.py).

Each computes the float64 reference in numpy (no framework to import, so a worker starts fast)
and rounds it to the image's dtype, except on images of ``FAULT_SIZE`` pixels a side, where it
does what its class says while preparing the case. They are registered as third-party plugins
through the entry-point group ``convbench.backends`` by the tests' fixture.
"""

from __future__ import annotations

import os
import signal
import sys
import time

import numpy as np

from convbench.backends.base import Backend, Plan
from convbench.reference import reference

FAULT_SIZE = 13


class Faulty(Backend):
    """Computes every case correctly; subclasses misbehave on the ``FAULT_SIZE`` image."""

    library = "numpy"

    def misbehave(self) -> None:
        """Nothing: the well-behaved backend."""

    def _plan(self, image, kernel, spec) -> Plan:
        if image.shape[-1] == FAULT_SIZE:
            self.misbehave()
        return Plan(
            host_image=image,
            upload=np.asarray,
            op=lambda device_image: reference(device_image, kernel, spec).astype(image.dtype),
            download=np.asarray,
            padding="explicit",
        )


class Segfault(Faulty):
    def misbehave(self) -> None:
        os.kill(os.getpid(), signal.SIGSEGV)


class Exit(Faulty):
    def misbehave(self) -> None:
        sys.exit(0)


class HardExit(Faulty):
    def misbehave(self) -> None:
        os._exit(0)


class Interrupt(Faulty):
    def misbehave(self) -> None:
        raise KeyboardInterrupt


class OutOfMemory(Faulty):
    def misbehave(self) -> None:
        raise MemoryError("Unable to allocate 64.0 GiB for an array")


class OomKill(Faulty):
    """What the kernel's out-of-memory killer does to a process."""

    def misbehave(self) -> None:
        os.kill(os.getpid(), signal.SIGKILL)


class Hang(Faulty):
    def misbehave(self) -> None:
        time.sleep(3600)


# entry-point name -> "module:attribute", as a plugin's package metadata would declare them; the
# last one names a module that does not exist (a plugin whose import fails).
ENTRY_POINTS = {
    "fault-none": "tests.fault_backends:Faulty",
    "fault-segv": "tests.fault_backends:Segfault",
    "fault-exit": "tests.fault_backends:Exit",
    "fault-hard-exit": "tests.fault_backends:HardExit",
    "fault-interrupt": "tests.fault_backends:Interrupt",
    "fault-memory": "tests.fault_backends:OutOfMemory",
    "fault-oom-kill": "tests.fault_backends:OomKill",
    "fault-hang": "tests.fault_backends:Hang",
    "fault-broken": "tests.no_such_plugin:Backend",
}
