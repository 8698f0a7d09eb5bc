"""Fair threads: every CPU library runs an op with a stated number of threads, the same for all.

Left alone, each library picks its own count (usually every core it may run on) and a
comparison then measures their defaults as much as their kernels. ``set_threads(library, n)``
sets the count through the library's own control and returns the count really in force,
read back from the library; ``threads_in_use(library)`` reads it. ``default_threads()`` is
every core this process may run on. What each library allows:

- torch: ``torch.set_num_threads``, any time, as often as wanted: a sweep of 1..N threads can
  run in one process. Inter-op threads serve only ``torch.jit.fork``; one convolution never
  uses them, so they are left alone.
- tensorflow: ``tf.config.threading.set_intra_op_parallelism_threads``, only before
  TensorFlow's runtime starts (its first op or tensor). Later TensorFlow raises RuntimeError;
  here that is ``ThreadsLocked``, unless the count asked for is already in force. A different
  count needs a fresh process (``thread_env``). Inter-op threads run independent ops side by
  side; one convolution is one op, so they are left alone.
- jax: XLA's CPU client sizes its thread pool from ``PJRT_NPROC`` when it starts (the first
  device query or computation), once per process. jax 0.10 ignores the older recipe
  ``--xla_cpu_multi_thread_eigen=false`` in ``XLA_FLAGS`` for convolutions (both cores stayed
  busy with it). After the start, another count is ``ThreadsLocked``.
- keras (Keras 3 on TensorFlow): TensorFlow's pools, with TensorFlow's rules.
- opencv: ``cv2.setNumThreads``, any time.
- scipy: ``scipy.signal.convolve2d`` / ``correlate2d`` and ``scipy.ndimage`` are sequential C
  loops, and ``scipy.fft`` keeps its default of one worker: one thread, whatever is asked;
  ``set_threads('scipy', n)`` returns 1 and says so.

GPU backends run on the device; their host threads are not what is measured, so a caller
sets and records threads for CPU backends (``Backend.device_kind == 'cpu'``) only.

The per-library code lives in ``convbench.backends.threads`` (frameworks are imported under
``convbench/backends/`` only); this module holds what needs none of them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from convbench.backends.threads import ThreadControl


class ThreadsLocked(RuntimeError):
    """The library has started with another thread count and cannot change it in this process;
    the message names the count in force and the way out (a fresh process, ``thread_env``)."""


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity), which is what torch, TensorFlow
    and XLA each use by default; ``os.cpu_count()`` where affinity is not known."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS and Windows have no sched_getaffinity
        return os.cpu_count() or 1


def default_threads() -> int:
    """The thread count every library gets unless told otherwise: all available cores."""
    return available_cores()


def check_count(threads: int) -> int:
    """``threads`` if it is a positive integer; ValueError naming it otherwise."""
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads={threads!r} must be a positive integer")
    return threads


def thread_env(threads: int, env: Mapping[str, str] | None = None) -> dict[str, str]:
    """``env`` (default ``os.environ``) with every library's start-up thread variables set to
    ``threads``: for a fresh worker process, so that TensorFlow and XLA, which fix their
    count when they start, start with it. torch and OpenMP/BLAS read ``OMP_NUM_THREADS`` and
    its kin; TensorFlow ``TF_NUM_INTRAOP_THREADS``; XLA's CPU client ``PJRT_NPROC``."""
    value = str(check_count(threads))
    names = (
        "OMP_NUM_THREADS",
        "MKL_NUM_THREADS",
        "OPENBLAS_NUM_THREADS",
        "TF_NUM_INTRAOP_THREADS",
        "PJRT_NPROC",
    )
    return {**(os.environ if env is None else env), **dict.fromkeys(names, value)}


def env_count(name: str) -> int | None:
    """A positive thread count from environment variable ``name``, else None."""
    try:
        value = int(os.environ.get(name, ""))
    except ValueError:
        return None
    return value if value > 0 else None


def set_threads(library: str, threads: int) -> int:
    """Run ``library``'s ops with ``threads`` threads from now on; returns the count in force
    afterwards, read back from the library (1 for single-threaded scipy). Raises
    ``ThreadsLocked`` when the library has started with another count, ValueError for an
    unknown library or a count that is not a positive integer."""
    return _control(library).set(check_count(threads))


def threads_in_use(library: str) -> int | None:
    """The thread count ``library`` runs its ops with now (its default when never set), or
    None when it cannot say."""
    return _control(library).get()


def _control(library: str) -> ThreadControl:
    # Imported on use: that module builds on this one.
    from convbench.backends.threads import CONTROLS

    try:
        return CONTROLS[library]
    except KeyError:
        raise ValueError(
            f"no thread control for library {library!r}; known: {sorted(CONTROLS)}"
        ) from None
