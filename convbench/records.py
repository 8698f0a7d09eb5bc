"""What a run knew about each case, written while the case ran; what the report reads.

asv stores one number per benchmark and parameter combination and nothing about it: not the
library or device it ran on, not the arithmetic it really used, not why a case was skipped or
failed. The suites therefore append one JSON line per benchmark and case to the file that
``$CONVBENCH_RECORDS`` names (``scripts/bench.sh`` sets
``results/<machine>/convbench-records.jsonl``, beside the machine's asv results), built from the
backend object itself (``backend_facts``). The
report joins these lines with asv's numbers by ``case_key``; it never re-derives a fact from a
backend's name or from today's grid.

A record is a flat mapping:

- ``benchmark``: asv's ``Suite.metric`` (e.g. ``Conv.time_op``);
- ``params``: the benchmark's parameters exactly as asv passes them (``{"backend": "torch-cpu",
  "size": 256, ...}`` or ``{"variant": "torch-cuda tf32=False", ...}``), the join key;
- ``backend``, ``setting``: the backend's name and the options it ran with ("" for defaults);
- ``default_setting``: whether ``setting`` is the library's own default (True for a suite that
  runs backends untouched; in the settings sweep, the variant each other is compared with);
- ``status``: ``ready`` (set up), ``skipped`` (not measured, by design or because it cannot run
  here) or ``failed`` (raised); a later ``failed`` wins over a ``ready`` of the same case;
- ``reason``: why it was skipped or failed (None when ready);
- the facts of ``FACTS``: ``library``, ``device`` ("cpu" or "gpu"), ``cpu_twin`` (for a GPU
  backend, the CPU backend that runs the same code), ``precision`` (the arithmetic really used,
  e.g. "tf32" for float32 on tensor cores), ``arithmetic`` ("direct" sums or "fft", which the
  backend may choose per case, as OpenCV does) and ``tolerance`` (the largest ``max_rel``
  accepted, from ``agreement.tolerance_for``); None where unknown;
- ``commit``: the commit benchmarked (``$CONVBENCH_COMMIT`` or asv's ``$ASV_COMMIT``), so that a
  report reads the records of its results' commit only;
- optionally, how the case was measured (``make(trust=...)``, names of
  ``convbench.timing.Measurement.facts``): ``threads`` (the count the library ran with, read back;
  None for a GPU backend or a library without a thread control), ``threads_asked``, and for a
  timing, the load while its samples were taken: ``other_cores``, ``cores``, ``busy_threads``,
  ``load_average_start``, ``load_average_end``. A record without them says nothing of them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from convbench.agreement import tolerance_for

if TYPE_CHECKING:
    from convbench.backends.base import Backend

ENV = "CONVBENCH_RECORDS"
FILE = "convbench-records.jsonl"
STATUSES = ("ready", "skipped", "failed")
FACTS = ("library", "device", "cpu_twin", "precision", "arithmetic", "tolerance")
# A later record of a case replaces an earlier one unless the earlier one ranks higher: a case
# that failed in one benchmark's process stays failed when the next process sets it up again.
RANK = {"ready": 0, "skipped": 1, "failed": 2}


def backend_facts(
    backend: Backend, dtype: str, image_shape: tuple[int, ...], kernel_shape: tuple[int, int]
) -> dict[str, Any]:
    """The facts of ``FACTS`` for ``backend`` computing an ``image_shape`` image with a
    ``kernel_shape`` kernel in ``dtype``, asked of the backend object. A fact the backend cannot
    give (its framework is not installed) is None, never guessed."""
    found: dict[str, Any] = {
        "library": backend.library or None,
        "device": backend.device_kind,
        "cpu_twin": backend.cpu_twin,
        "precision": None,
        "arithmetic": None,
        "tolerance": None,
    }
    try:
        found["precision"] = backend.precision(dtype)
        found["arithmetic"] = backend.arithmetic(dtype, image_shape, kernel_shape)
        found["tolerance"] = tolerance_for(backend, dtype, image_shape, kernel_shape)
    except Exception:  # an absent framework cannot say which arithmetic it would use
        pass
    return found


def case_key(benchmark: str, params: Mapping[str, Any]) -> tuple:
    """The join key of a record and an asv result: the benchmark and its parameters, each value
    as ``repr`` (asv stores parameters as their reprs)."""
    return (benchmark, *sorted((name, repr(value)) for name, value in params.items()))


def commit() -> str | None:
    return os.environ.get("CONVBENCH_COMMIT") or os.environ.get("ASV_COMMIT")


def make(
    benchmark: str,
    params: Mapping[str, Any],
    status: str,
    *,
    backend: str,
    setting: str = "",
    default_setting: bool = True,
    reason: str | None = None,
    facts: Mapping[str, Any] | None = None,
    trust: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """One record (see the module docstring); facts missing from ``facts`` are None, and the
    fields of ``trust`` (how the case was measured) are added as given."""
    if status not in STATUSES:
        raise ValueError(f"status={status!r} must be one of {list(STATUSES)}")
    return {
        "benchmark": benchmark,
        "params": dict(params),
        "backend": backend,
        "setting": setting,
        "default_setting": default_setting,
        "status": status,
        "reason": reason,
        **{name: (facts or {}).get(name) for name in FACTS},
        "commit": commit(),
        **(trust or {}),
    }


def append(records: Iterable[Mapping[str, Any]], path: str | os.PathLike | None = None) -> None:
    """Append ``records`` to ``path`` (default ``$CONVBENCH_RECORDS``; nothing is written when
    neither is set), one JSON line each, in one write."""
    path = path or os.environ.get(ENV)
    if not path:
        return
    text = "".join(json.dumps(dict(r), default=str) + "\n" for r in records)
    with open(path, "a", encoding="utf-8") as file:
        file.write(text)


def load(
    path: str | os.PathLike,
    commit: str | None = None,
    on_skip: Callable[[int, str], object] | None = None,
) -> dict[tuple, dict[str, Any]]:
    """The records of a records file by ``case_key``, for ``commit`` when given (records without
    a commit are kept). A line that is not a JSON object with a benchmark name and a params
    object (a torn last line of a killed run) is skipped, and ``on_skip(line_number, why)``
    called when given. Of several records of one case the highest ``RANK`` wins, the later among
    equals."""
    path = Path(path)
    if not path.is_file():
        return {}
    found: dict[tuple, dict[str, Any]] = {}
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    for number, line in enumerate(lines, start=1):
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            if on_skip is not None:
                on_skip(number, f"not JSON ({error})")
            continue
        if not (
            isinstance(record, dict)
            and isinstance(record.get("benchmark"), str)
            and isinstance(record.get("params"), dict)
        ):
            if on_skip is not None:
                on_skip(number, "not a JSON object with a benchmark name and a params object")
            continue
        if commit is not None and record.get("commit") not in (None, commit):
            continue
        key = case_key(record["benchmark"], record["params"])
        earlier = found.get(key)
        if earlier is None or _rank(record) >= _rank(earlier):
            found[key] = record
    return found


def _rank(record: Mapping[str, Any]) -> int:
    status = record.get("status")
    return RANK.get(status, 0) if isinstance(status, str) else 0
