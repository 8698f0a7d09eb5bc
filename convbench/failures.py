"""Why a benchmark case failed, kept where asv keeps nothing.

asv stores a case whose benchmark raised as a null result; its message lives only in the run's
log. The asv suites catch the error in the benchmark's own process, append one JSON line for it
to the file that ``$CONVBENCH_FAILURES`` names (``scripts/bench.sh`` sets
``results/<machine>/convbench-failures.jsonl``) and raise it again, so asv marks that case failed
and goes on with the next. Each record names the commit benchmarked (``$CONVBENCH_COMMIT``, which
bench.sh sets, or asv's ``$ASV_COMMIT``); the report reads back those of its results' commit.

Out-of-memory errors are named as such whichever framework raised them (torch, CuPy, JAX/XLA,
TensorFlow, numpy): a batch too large for the GPU is that case's failure, not the run's.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

ENV = "CONVBENCH_FAILURES"
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


def record(
    benchmark: str,
    case: Mapping[str, object],
    error: BaseException,
    path: str | os.PathLike | None = None,
) -> None:
    """Append ``benchmark``'s failure on ``case`` to ``path`` (default: ``$CONVBENCH_FAILURES``;
    nothing is written when neither is set)."""
    path = path or os.environ.get(ENV)
    if not path:
        return
    line = {
        "benchmark": benchmark,
        **case,
        "reason": describe(error),
        "commit": os.environ.get("CONVBENCH_COMMIT") or os.environ.get("ASV_COMMIT"),
    }
    with open(path, "a", encoding="utf-8") as file:
        file.write(json.dumps(line, default=str) + "\n")


def load(path: str | os.PathLike) -> list[dict]:
    """The records in a failures file; [] when there is none. A torn last line (a process killed
    while writing) is skipped."""
    path = Path(path)
    if not path.is_file():
        return []
    found = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            found.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return found
