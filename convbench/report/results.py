"""asv results (all machines under a results dir) -> one long pandas DataFrame.

Files are read with asv's own ``asv.results`` API. One row per benchmark, machine and parameter
combination of the convolution suites (benchmarks without a backend and a size are left to asv's
own site); for each machine only its newest commit is kept (asv's site shows history).
asv stores a skipped case (setup raised ``NotImplementedError``) as NaN and a failed one as null:
they become rows with ``status`` "skipped" or "failed", never dropped; a failed row's ``reason`` is
the one the suites wrote to the machine's ``convbench-failures.jsonl`` (``convbench.failures``).
The settings suite's ``variant`` parameter becomes a ``backend`` and a ``setting`` column (empty
for the other suites, whose backends run with the library defaults).
"""

from __future__ import annotations

import ast
import json
import math
from pathlib import Path

import pandas as pd
from asv import util
from asv.results import Results, iter_results_paths

from convbench import failures
from convbench import suite as grid
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
    "setting",
    "batch",
    "size",
    "kernel",
    "dtype",
    "value",
    "q25",
    "q75",
    "status",
    "reason",
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


def _backend_and_setting(case: dict) -> tuple[str | None, str]:
    if "variant" not in case:
        return case.get("backend"), ""
    return grid.split_variant(case["variant"])


FAILURE_KEYS = ("backend", "setting", "batch", "size", "kernel", "dtype")


def _failure_key(benchmark: str, case: dict) -> tuple:
    return (benchmark, *(str(case.get(k, "")) for k in FAILURE_KEYS))


def _failure_reasons(machine_dir: Path, commit: str | None) -> dict[tuple, str]:
    """(benchmark, case) -> reason, from the failures file of one machine's newest run."""
    found = {}
    for record in failures.load(machine_dir / failures.FILE):
        if record.get("commit") not in (None, commit):
            continue
        case = {"batch": 1, "setting": "", **record}
        found[_failure_key(record["benchmark"], case)] = record["reason"]
    return found


def _rows(result: Results, meta: dict[str, dict], reasons: dict[tuple, str]):
    for name in sorted(result.get_all_result_keys()):
        params = result.get_result_params(name)
        suite, metric = name.split(".")[-2:]
        names = meta.get(name, {}).get("param_names") or PARAM_NAMES.get(
            suite, PARAM_NAMES["default"]
        )
        known = {"backend", "size"} <= set(names) or {"variant", "size"} <= set(names)
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
            backend, setting = _backend_and_setting(case)
            case = {
                "batch": 1,
                "dtype": grid.SETTING_DTYPE if "variant" in case else None,
                **case,
                "backend": backend,
                "setting": setting,
            }
            status = _status(value)
            reason = None
            if status == "failed":
                reason = reasons.get(_failure_key(f"{suite}.{metric}", case)) or reasons.get(
                    _failure_key(f"{suite}.setup", case)
                )
            yield {
                "machine": result.params["machine"],
                "commit": result.commit_hash,
                "suite": suite,
                "metric": metric,
                "kind": kind,
                "unit": unit,
                "backend": backend,
                "setting": setting,
                "batch": case["batch"],
                "size": case.get("size"),
                "kernel": case.get("kernel"),
                "dtype": case["dtype"],
                "value": float(value) if status == "ok" else math.nan,
                "q25": (stat or {}).get("q_25", math.nan),
                "q75": (stat or {}).get("q_75", math.nan),
                "status": status,
                "reason": reason,
            }


def load_results(results_dir: str | Path) -> pd.DataFrame:
    """Every result under ``results_dir`` (a results root or one machine's folder)."""
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
        machine = result.params["machine"]
        reasons = _failure_reasons(folders[machine], result.commit_hash)
        rows.extend(_rows(result, meta, reasons))
    frame = pd.DataFrame(rows, columns=COLUMNS)
    return frame.astype({"value": float, "q25": float, "q75": float})


def load_environments(results_dir: str | Path) -> dict[str, dict]:
    """``convbench-environment.json`` of each machine under ``results_dir``, by machine name."""
    results_dir = Path(results_dir)
    found = {}
    for path in sorted(results_dir.glob(f"**/{ENVIRONMENT_FILE}")):
        environment = json.loads(path.read_text())
        found[environment.get("machine", path.parent.name)] = environment
    return found
