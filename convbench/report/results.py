"""asv results and what the run recorded beside them -> one long pandas DataFrame.

A machine's folder holds asv's result files (read with asv's own ``asv.results`` API), the run's
per-case records (``convbench-records.jsonl``, see ``convbench.records``) and its environment
record (``convbench-environment.json``). One row per benchmark, machine and case of the
convolution suites (benchmarks without a size and a backend or variant are left to asv's own
site); for each machine only its newest commit is kept (asv's site shows history).

asv stores a number and nothing about it. Everything else a row says (library, device, CPU twin,
precision, tolerance, the setting and whether it is the library's default, why a case was skipped
or failed) comes from the case's record, joined by ``records.case_key``; the records of another
commit do not count. A fact that no record holds is None, shown as unknown: it is never guessed
from a backend's name or from today's benchmark grid. Two older sources are read where they are
the run's own words: the environment record's ``precision.<dtype>`` of a backend (asked of the
backend when the environment was collected) when a case has no record, and the failures file
that results older than the records may have (``convbench.failures``), for failure reasons only.

asv stores a skipped case (setup raised ``NotImplementedError``) as NaN and a failed one as null:
they become rows with ``status`` "skipped" or "failed", never dropped.
"""

from __future__ import annotations

import ast
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
from asv import util
from asv.results import Results, iter_results_paths

from convbench import failures, records
from convbench.environment import ENVIRONMENT_FILE

# The suites' parameter names, for results whose benchmarks.json is missing.
PARAM_NAMES = {
    "ConvBatch": ["backend", "batch", "size", "kernel", "dtype"],
    "ConvSettings": ["variant", "size", "kernel"],
    "default": ["backend", "size", "kernel", "dtype"],
}
KIND_BY_PREFIX = {"time": ("time", "seconds"), "peakmem": ("memory", "bytes")}
COLUMNS = [
    "machine",
    "commit",
    "suite",
    "metric",
    "kind",
    "unit",
    "backend",
    "variant",
    "setting",
    "default_setting",
    "batch",
    "size",
    "kernel",
    "dtype",
    "value",
    "q25",
    "q75",
    "status",
    "reason",
    "recorded",
    *records.FACTS,
]


def _benchmark_meta(results_dir: Path) -> dict[str, dict]:
    """benchmarks.json of the results root (the dir itself or, for a machine dir, its parent)."""
    for folder in (results_dir, results_dir.parent):
        path = folder / "benchmarks.json"
        if path.is_file():
            return util.load_json(str(path), api_version=2)
    return {}


def _kind_and_unit(name: str, meta: dict) -> tuple[str, str]:
    if "type" in meta:
        return meta["type"], meta.get("unit", "")
    prefix = name.rsplit(".", 1)[-1].split("_", 1)[0]
    return KIND_BY_PREFIX.get(prefix, ("track", ""))


def _newest(results: list[Results]) -> list[Results]:
    """Per machine, the result files of its newest commit date (several envs may share it)."""
    newest: dict[str, int] = {}
    for r in results:
        machine = r.params["machine"]
        newest[machine] = max(newest.get(machine, r.date or 0), r.date or 0)
    return [r for r in results if (r.date or 0) == newest[r.params["machine"]]]


def _status(value: object) -> str:
    if value is None:
        return "failed"
    if isinstance(value, float) and math.isnan(value):
        return "skipped"
    return "ok"


class _Recorded:
    """What one machine's run recorded beside its asv results, for one commit."""

    def __init__(self, folder: Path, commit: str | None) -> None:
        self.records = records.load(folder / records.FILE, commit)
        self.failures = [
            f for f in failures.load(folder / failures.FILE) if f.get("commit") in (None, commit)
        ]
        environment = folder / ENVIRONMENT_FILE
        self.backends: dict[str, dict] = (
            json.loads(environment.read_text()).get("backends") or {}
            if environment.is_file()
            else {}
        )

    def failure_reason(self, suite: str, metric: str, params: Mapping[str, Any]) -> str | None:
        """The failures file's reason for a case: a line of this benchmark (or of its suite's
        setup) holding every parameter of the case with the same value."""
        for failure in self.failures:
            if failure.get("benchmark") not in (f"{suite}.{metric}", f"{suite}.setup"):
                continue
            if all(str(failure.get(name)) == str(value) for name, value in params.items()):
                return failure.get("reason")
        return None

    def environment_precision(self, backend: str | None, dtype: str | None) -> str | None:
        if backend is None or dtype is None:
            return None
        settings = self.backends.get(backend, {}).get("settings") or {}
        return settings.get(f"precision.{dtype}")


def _row(
    result: Results,
    suite: str,
    metric: str,
    params: dict[str, Any],
    value: object,
    stat: dict | None,
    recorded: _Recorded,
) -> dict[str, Any]:
    record = recorded.records.get(records.case_key(f"{suite}.{metric}", params))
    facts = {name: (record or {}).get(name) for name in records.FACTS}
    backend = params.get("backend", (record or {}).get("backend"))
    dtype = params.get("dtype")
    status = _status(value)
    reason = None
    if status != "ok" and record is not None and record.get("status") == status:
        reason = record.get("reason")
    elif status == "failed":
        reason = recorded.failure_reason(suite, metric, params)
    if facts["precision"] is None:
        facts["precision"] = recorded.environment_precision(backend, dtype)
    return {
        "machine": result.params["machine"],
        "commit": result.commit_hash,
        "suite": suite,
        "metric": metric,
        "backend": backend,
        "variant": params.get("variant"),
        "setting": (record or {}).get("setting"),
        "default_setting": (record or {}).get("default_setting"),
        # A suite without a batch parameter measures one image.
        "batch": params.get("batch", 1),
        "size": params.get("size"),
        "kernel": params.get("kernel"),
        "dtype": dtype,
        "value": float(value) if status == "ok" else math.nan,
        "q25": (stat or {}).get("q_25", math.nan),
        "q75": (stat or {}).get("q_75", math.nan),
        "status": status,
        "reason": reason,
        "recorded": record is not None,
        **facts,
    }


def _rows(result: Results, meta: dict[str, dict], recorded: _Recorded):
    for name in sorted(result.get_all_result_keys()):
        params = result.get_result_params(name)
        suite, metric = name.split(".")[-2:]
        names = meta.get(name, {}).get("param_names") or PARAM_NAMES.get(
            suite, PARAM_NAMES["default"]
        )
        known = "size" in names and ("backend" in names or "variant" in names)
        if not known or len(names) != len(params):
            continue  # not a convolution suite (e.g. explain's timing): asv's site shows it
        kind, unit = _kind_and_unit(name, meta.get(name, {}))
        values = result.get_result_value(name, params)
        stats = result.get_result_stats(name, params)
        cases = pd.MultiIndex.from_product(
            [[ast.literal_eval(v) for v in values_repr] for values_repr in params]
        )
        for case, value, stat in zip(cases, values, stats, strict=True):
            case = dict(zip(names, case if isinstance(case, tuple) else (case,), strict=True))
            row = _row(result, suite, metric, case, value, stat, recorded)
            yield {**row, "kind": kind, "unit": unit}


def load_results(results_dir: str | Path) -> pd.DataFrame:
    """Every result under ``results_dir`` (a results root or one machine's folder), with what
    the run recorded of each case (``COLUMNS``)."""
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise FileNotFoundError(f"results dir {str(results_dir)!r} does not exist")
    paths = [
        (root, filename, machine)
        for root, filename, machine in iter_results_paths(str(results_dir))
        if filename != ENVIRONMENT_FILE
    ]
    folders = {machine: Path(root) for root, _, machine in paths}
    loaded = [
        Results.load(str(Path(root) / filename), machine_name=machine)
        for root, filename, machine in paths
    ]
    meta = _benchmark_meta(results_dir)
    rows = []
    for result in _newest(loaded):
        recorded = _Recorded(folders[result.params["machine"]], result.commit_hash)
        rows.extend(_rows(result, meta, recorded))
    frame = pd.DataFrame(rows, columns=COLUMNS)
    return frame.astype({"value": float, "q25": float, "q75": float, "tolerance": float})


def load_environments(results_dir: str | Path) -> dict[str, dict]:
    """``convbench-environment.json`` of each machine under ``results_dir``, by machine name."""
    results_dir = Path(results_dir)
    found = {}
    for path in sorted(results_dir.glob(f"**/{ENVIRONMENT_FILE}")):
        environment = json.loads(path.read_text())
        found[environment.get("machine", path.parent.name)] = environment
    return found
