"""Each library's own thread control, behind ``convbench.threads`` (whose docstring says what
each library allows and why). Frameworks are imported inside the functions, on use."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass

from convbench.backends.tensorflow_conv import import_tensorflow
from convbench.threads import ThreadsLocked, available_cores, env_count


@dataclass(frozen=True)
class ThreadControl:
    """How to set (returning the count in force) and read one library's thread count."""

    library: str
    set: Callable[[int], int]
    get: Callable[[], int | None]


def _locked(library: str, in_force: int, wanted: int, when: str) -> ThreadsLocked:
    return ThreadsLocked(
        f"{library} has started with a thread count of {in_force} and cannot change to "
        f"{wanted} in this process: {when}. Set the count before that, or run in a fresh "
        f"process with convbench.threads.thread_env({wanted}) as its environment"
    )


def _torch_get() -> int:
    import torch

    return torch.get_num_threads()


def _torch_set(threads: int) -> int:
    import torch

    torch.set_num_threads(threads)
    return torch.get_num_threads()


def _tensorflow_get() -> int:
    tf = import_tensorflow()
    # 0 means "not set": TensorFlow then takes TF_NUM_INTRAOP_THREADS, else every core it
    # may run on (it honours the CPU affinity).
    configured = tf.config.threading.get_intra_op_parallelism_threads()
    return configured or env_count("TF_NUM_INTRAOP_THREADS") or available_cores()


def _tensorflow_set(threads: int) -> int:
    tf = import_tensorflow()
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
    except RuntimeError as error:  # "cannot be modified after initialization"
        in_force = _tensorflow_get()
        if in_force == threads:
            return threads
        raise _locked(
            "TensorFlow", in_force, threads, "its runtime fixes the count at its first op"
        ) from error
    return _tensorflow_get()


def _jax_started() -> bool:
    """Whether XLA's clients exist (asked without importing jax: not imported, not started)."""
    bridge = sys.modules.get("jax._src.xla_bridge")
    return bridge is not None and bridge.backends_are_initialized()


def _jax_get() -> int:
    # XLA's CPU client reads PJRT_NPROC, then NPROC, else takes every core it may run on.
    return env_count("PJRT_NPROC") or env_count("NPROC") or available_cores()


def _jax_set(threads: int) -> int:
    if _jax_started():
        in_force = _jax_get()
        if in_force == threads:
            return threads
        raise _locked(
            "jax", in_force, threads, "XLA's CPU client sizes its pool once, when it starts"
        )
    os.environ["PJRT_NPROC"] = str(threads)
    return _jax_get()


def _opencv_get() -> int:
    import cv2

    return cv2.getNumThreads()


def _opencv_set(threads: int) -> int:
    import cv2

    cv2.setNumThreads(threads)
    return cv2.getNumThreads()


def _one_thread(threads: int = 1) -> int:
    """convbench's scipy backends run on one thread whatever is asked: scipy.signal's direct
    loops and scipy.ndimage's filters are sequential C, and scipy.fft keeps its default of one
    worker (a backend would have to pass ``workers`` to change that)."""
    return 1


CONTROLS: dict[str, ThreadControl] = {
    control.library: control
    for control in (
        ThreadControl("torch", _torch_set, _torch_get),
        ThreadControl("tensorflow", _tensorflow_set, _tensorflow_get),
        # Keras 3 on TensorFlow runs TensorFlow's ops, in TensorFlow's thread pools.
        ThreadControl("keras", _tensorflow_set, _tensorflow_get),
        ThreadControl("jax", _jax_set, _jax_get),
        ThreadControl("opencv", _opencv_set, _opencv_get),
        ThreadControl("scipy", _one_thread, _one_thread),
    )
}
