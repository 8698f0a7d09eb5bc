"""Why a benchmark case failed, in one line.

asv stores a case whose benchmark raised as a null result; its message lives only in the run's
log. The asv suites catch the error in the benchmark's own process, write its ``describe`` as the
reason of a ``failed`` run record (``convbench.records``) and raise it again, so asv marks that
case failed and goes on with the next. Results from before the records kept these reasons in a
failures file of their own (``FILE``, one JSON line per failure), which ``load`` still reads.

Out-of-memory errors are named as such whichever framework raised them (torch, CuPy, JAX/XLA,
TensorFlow, numpy): a batch too large for the GPU is that case's failure, not the run's.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

FILE = "convbench-failures.jsonl"
# Words in the type name or message of an out-of-memory error: torch.OutOfMemoryError ("CUDA out
# of memory"), cupy OutOfMemoryError ("Out of memory allocating"), XLA ("RESOURCE_EXHAUSTED"),
# tf.errors.ResourceExhaustedError ("OOM when allocating"), MemoryError, numpy's
# _ArrayMemoryError ("Unable to allocate").
OOM_MARKERS = (
    "outofmemory",
    "out of memory",
    "resource_exhausted",
    "resourceexhausted",
    "oom when allocating",
    "memoryerror",
    "unable to allocate",
)
MAX_MESSAGE = 500


def is_out_of_memory(error: BaseException) -> bool:
    text = f"{type(error).__name__} {error}".lower()
    return isinstance(error, MemoryError) or any(marker in text for marker in OOM_MARKERS)


def describe(error: BaseException) -> str:
    """One line: 'out of memory: ' for OOM errors, then the error's type and first line."""
    lines = str(error).strip().splitlines()
    first = lines[0] if lines else ""
    text = f"{type(error).__name__}: {first}"[:MAX_MESSAGE]
    return f"out of memory: {text}" if is_out_of_memory(error) else text


def load(
    path: str | os.PathLike, on_skip: Callable[[int, str], object] | None = None
) -> list[dict]:
    """The lines of a failures file written before the run records; [] when there is none. A
    line that is not a JSON object (a torn last line of a process killed while writing) is
    skipped, and ``on_skip(line_number, why)`` called when given."""
    path = Path(path)
    if not path.is_file():
        return []
    found = []
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    for number, line in enumerate(lines, start=1):
        try:
            failure = json.loads(line)
        except json.JSONDecodeError as error:
            why = f"not JSON ({error})"
        else:
            if isinstance(failure, dict):
                found.append(failure)
                continue
            why = "not a JSON object"
        if on_skip is not None:
            on_skip(number, why)
    return found
