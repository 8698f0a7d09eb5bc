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
they become rows with ``status`` "skipped" or "failed", never dropped. Of a timing, asv also
keeps its quartiles, its 99% confidence interval and its number of samples (``q25``, ``q75``,
``ci_low``, ``ci_high``, ``samples``); how busy the machine was and the threads used come from the
case's record where it says (``TRUST``), and are unknown otherwise.

Nothing under a results dir is taken to be well formed, and nothing is lost without a word: each
``Problem`` names its file and says what was done instead. A file that cannot be read is skipped
(a machine.json or benchmarks.json that cannot be read is done without: the results files name
their machine, and the suites' parameter names are known); a benchmark whose stored values do not
fit its parameters is skipped, since asv's reader would pad a short list with nulls (failures
that never happened) and cut a long one; a value that no measurement can have (a negative or
infinite time, a negative memory peak or error) is set aside in ``Loaded.impossible``, never drawn
and never counted; a field of a record or an environment of the wrong type reads as unknown.
"""

from __future__ import annotations

import ast
import itertools
import json
import math
import os
import reprlib
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from asv import util
from asv.benchmarks import Benchmarks
from asv.results import Results

from convbench import failures, records
from convbench.environment import ENVIRONMENT_FILE, REPRODUCIBILITY_FILE

# The suites' parameter names, for results whose benchmarks.json is missing or unreadable.
PARAM_NAMES = {
    "Conv": ["backend", "size", "kernel", "dtype"],
    "Transfer": ["backend", "size", "kernel", "dtype"],
    "ConvBatch": ["backend", "batch", "size", "kernel", "dtype"],
    "ConvSettings": ["variant", "size", "kernel"],
    "Layer": ["layer", "backend", "batch", "dtype"],
}
# What a parameter of the convolution suites must be; a benchmark with another is skipped.
PARAM_CHECKS = {
    "backend": (lambda v: isinstance(v, str), "a name"),
    "variant": (lambda v: isinstance(v, str), "a name"),
    "layer": (lambda v: isinstance(v, str), "a name"),
    "dtype": (lambda v: isinstance(v, str), "a dtype name"),
    **{
        name: (lambda v: type(v) is int and v > 0, "a positive integer")
        for name in ("size", "kernel", "batch")
    },
}
# What a record may say of how its case was measured (``convbench.timing.Measurement.facts``
# names): the cores other processes kept busy meanwhile, the threads the op was given and those
# it kept busy. Records written before the suites recorded them lack them: unknown.
TRUST = ("other_cores", "threads", "busy_threads")
KIND_BY_PREFIX = {"time": ("time", "seconds"), "peakmem": ("memory", "bytes")}
# What a value stored for each kind of benchmark can be when it was measured (NaN and null being
# asv's skip and failure); the convolution suites' "track" benchmarks track an error, max_rel.
POSSIBLE = {
    "time": (lambda v: math.isfinite(v) and v > 0, "a time must be a positive, finite number"),
    "memory": (lambda v: math.isfinite(v) and v >= 0, "a memory peak must be finite, not negative"),
    "track": (lambda v: v >= 0, "an error (max_rel) cannot be negative"),
}
# Files of a machine's folder that are not asv results.
NOT_RESULTS = {"machine.json", "benchmarks.json", ENVIRONMENT_FILE, REPRODUCIBILITY_FILE}
COLUMNS = [
    "machine",
    "commit",
    "suite",
    "metric",
    "kind",
    "unit",
    "backend",
    "variant",
    "layer",
    "setting",
    "default_setting",
    "batch",
    "size",
    "kernel",
    "dtype",
    "value",
    "q25",
    "q75",
    "ci_low",
    "ci_high",
    "samples",
    "status",
    "reason",
    "recorded",
    *records.FACTS,
    *TRUST,
]
# Whole numbers that a row may lack (a layer has no image size of the 2-D grid): pandas' nullable
# integers, so that a size reads 4096, never 4096.0.
COUNTS = ["batch", "size", "kernel"]
FLOATS = ["value", "q25", "q75", "ci_low", "ci_high", "samples", "tolerance", *TRUST]
IMPOSSIBLE = ["machine", "file", "benchmark", "case", "value", "why"]
# Stored values in a problem's one line: long strings and containers cut short.
SHORT = reprlib.Repr()
SHORT.maxstring = SHORT.maxother = 60


@dataclass(frozen=True)
class Problem:
    """Something under a results dir that could not be used as it stood: the file, and what was
    left out or read otherwise (one line)."""

    path: str
    what: str

    def __str__(self) -> str:
        text = f"{self.path}: {self.what}"
        return text.replace("\r", "\\r").replace("\n", "\\n")


@dataclass(frozen=True)
class Loaded:
    """What ``read_results`` found: the ``results`` (``COLUMNS``; values that can be measurements
    only), each machine's environment record, the ``impossible`` values set aside
    (``IMPOSSIBLE``: one row each, with the file it came from) and the ``problems`` met."""

    results: pd.DataFrame
    environments: dict[str, dict]
    impossible: pd.DataFrame
    problems: tuple[Problem, ...]
    reproducibility: dict[str, dict] = field(default_factory=dict)


class Unreadable(Exception):
    """A file that is not what the report needs; the message says why, in a few words."""


Check = tuple[Callable[[Any], bool], str]
TEXT: Check = (lambda v: isinstance(v, str), "text")
OBJECT: Check = (lambda v: isinstance(v, dict), "an object")
FLAG: Check = (lambda v: isinstance(v, bool), "true or false")
POSITIVE: Check = (lambda v: _real(v) and math.isfinite(v) and v > 0, "a positive number")
NOT_NEGATIVE: Check = (lambda v: _real(v) and math.isfinite(v) and v >= 0, "a number >= 0")
COUNT: Check = (lambda v: isinstance(v, int) and not isinstance(v, bool) and v > 0, "a count")
RECORD_FIELDS: dict[str, Check] = {
    "backend": TEXT,
    "setting": TEXT,
    "default_setting": FLAG,
    "status": (lambda v: v in records.STATUSES, f"one of {list(records.STATUSES)}"),
    "reason": TEXT,
    **{name: POSITIVE if name == "tolerance" else TEXT for name in records.FACTS},
    "other_cores": NOT_NEGATIVE,
    "threads": COUNT,
    "busy_threads": COUNT,
}
ENVIRONMENT_FIELDS: dict[str, Check] = {
    "machine": TEXT,
    "fixture": TEXT,
    "memory_bandwidth_gbs": POSITIVE,
    "versions": OBJECT,
    "backends": OBJECT,
}
BACKEND_FIELDS: dict[str, Check] = {"available": FLAG, "settings": OBJECT}
# A machine's run-to-run spread (scripts/reproducibility.py --save): the fields the report states.
REPRODUCIBILITY_FIELDS: dict[str, Check] = {
    "measured": TEXT,
    "runs": COUNT,
    "threads": COUNT,
    "cases_held": (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0, "a count"),
    "long_op_s": POSITIVE,
    "goal": POSITIVE,
    "median_difference": NOT_NEGATIVE,
    "largest_difference": NOT_NEGATIVE,
    "largest_case": TEXT,
    "most_other_cores": NOT_NEGATIVE,
}
# What the report reads of an asv results file besides its machine (all of them required).
RESULTS_FIELDS: dict[str, Check] = {
    "commit_hash": TEXT,
    "date": (lambda v: _real(v) and isinstance(v, int), "an integer"),
    "result_columns": (lambda v: isinstance(v, list), "a list"),
    "results": OBJECT,
}


def _real(value: object) -> bool:
    """An int or a float: what JSON holds as a number (a bool is not one)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def _checked(fields: Mapping[str, Any], checks: Mapping[str, Check]) -> tuple[dict, list[str]]:
    """``fields`` less each value (not None) that fails its check, and a few words on each."""
    kept, faults = dict(fields), []
    for name, (check, expected) in checks.items():
        value = kept.get(name)
        if value is not None and not check(value):
            faults.append(f"{name}={SHORT.repr(value)} is not {expected}")
            del kept[name]
    return kept, faults


def _read_json(path: Path, version: int | None = None) -> dict:
    """A JSON object file (in asv's format ``version`` when given); Unreadable says why not."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise Unreadable("missing") from None
    except UnicodeDecodeError:
        raise Unreadable("not UTF-8 text") from None
    except OSError as error:
        raise Unreadable(f"cannot be read ({error.strerror or error})") from None
    if not text.strip():
        raise Unreadable("empty")
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as error:
        raise Unreadable(f"not JSON ({error})") from None
    if not isinstance(data, dict):
        raise Unreadable(f"a JSON {type(data).__name__}, not an object")
    if version is not None and data.get("version") != version:
        raise Unreadable(f"version={SHORT.repr(data.get('version'))}, not asv's format {version}")
    return data


class _Reader:
    """One pass over a results dir: the problems it meets and the impossible values it sets
    aside, noted as they come."""

    def __init__(self, results_dir: Path) -> None:
        self.root = results_dir
        self.problems: list[Problem] = []
        self.impossible: list[dict[str, Any]] = []

    def note(self, path: Path, what: str) -> None:
        problem = Problem(str(path), what)
        if problem not in self.problems:
            self.problems.append(problem)

    def benchmark_meta(self) -> dict[str, dict]:
        """benchmarks.json of the results root (the dir itself or, for a machine dir, its
        parent), each entry that holds what the report uses of it."""
        paths = [folder / "benchmarks.json" for folder in (self.root, self.root.parent)]
        path = next((p for p in paths if p.exists()), paths[0])
        try:
            found = _read_json(path, version=Benchmarks.api_version)
        except Unreadable as why:
            self.note(path, f"{why}: the suites' own parameter names are used")
            return {}
        meta = {}
        for name, entry in found.items():
            if name == "version":
                continue
            names = entry.get("param_names") if isinstance(entry, dict) else None
            if not (isinstance(names, list) and all(isinstance(n, str) for n in names)):
                self.note(path, f"{name} has no list of parameter names: left out")
                continue
            meta[name] = {
                "param_names": names,
                **{k: entry[k] for k in ("type", "unit") if isinstance(entry.get(k), str)},
            }
        return meta

    def result_files(self) -> Iterator[tuple[Path, str | None, str | None]]:
        """Each candidate results file with the machine its folder's machine.json names, or
        None and why that file cannot be read (each results file's own machine name counts
        then)."""
        walk = os.walk(
            self.root,
            onerror=lambda error: self.note(Path(error.filename), f"skipped: {error.strerror}"),
        )
        for folder, _, names in sorted(walk):
            candidates = sorted(n for n in names if n.endswith(".json") and n not in NOT_RESULTS)
            if not candidates:
                continue
            machine, why = None, None
            try:
                machine = _read_json(Path(folder) / "machine.json").get("machine")
                if not isinstance(machine, str) or not machine:
                    raise Unreadable(f"machine={SHORT.repr(machine)} is not a machine name")
            except Unreadable as error:
                machine, why = None, str(error)
            for name in candidates:
                yield Path(folder) / name, machine, why

    def result(
        self, path: Path, machine: str | None, machine_unreadable: str | None
    ) -> tuple[Results, dict] | None:
        """asv's reading of one results file and the file's own JSON; None (noted) when the
        file is no asv results file of its folder's machine."""
        try:
            raw = _read_json(path, version=Results.api_version)
            params = raw.get("params")
            stated = params.get("machine") if isinstance(params, dict) else None
            if not isinstance(stated, str) or not stated:
                raise Unreadable(f"params.machine={SHORT.repr(stated)} is not a machine name")
            if machine is not None and stated != machine:
                raise Unreadable(f"its machine is {stated!r}, its folder's is {machine!r}")
            for key, (check, expected) in RESULTS_FIELDS.items():
                if not check(raw.get(key)):
                    raise Unreadable(f"{key}={SHORT.repr(raw.get(key))} is not {expected}")
            result = Results.load(str(path))
        except Unreadable as why:
            self.note(path, f"skipped: {why}")
            return None
        except (util.UserError, LookupError, TypeError, ValueError, AttributeError) as error:
            self.note(path, f"skipped: asv cannot read it ({type(error).__name__}: {error})")
            return None
        if machine_unreadable is not None:
            self.note(
                path.parent / "machine.json",
                f"{machine_unreadable}: the results files' own machine name is used",
            )
        return result, raw

    def cases(
        self, path: Path, raw: dict, name: str, names: list[str]
    ) -> list[dict[str, Any]] | None:
        """The parameter combinations of a stored benchmark (name -> value), in the order of its
        values; None (noted) when the values do not fit the parameters."""
        row = raw["results"][name]
        columns = raw["result_columns"]
        stored = dict(zip(columns, row, strict=False)) if isinstance(row, list) else {}
        params, values = stored.get("params"), stored.get("result")
        try:
            if not (isinstance(params, list) and all(isinstance(p, list) for p in params)):
                raise Unreadable("its params are not lists of parameter values")
            if len(params) != len(names):
                raise Unreadable(
                    f"{len(params)} parameter lists for its {len(names)} parameters "
                    f"({', '.join(names)})"
                )
            literal = [[_literal(v) for v in values_repr] for values_repr in params]
            for param, options in zip(names, literal, strict=True):
                check, expected = PARAM_CHECKS.get(param, (lambda v: True, ""))
                for value in options:
                    if not check(value):
                        raise Unreadable(f"its {param} {SHORT.repr(value)} is not {expected}")
            combinations = math.prod(len(p) for p in params)
            if values is not None and not isinstance(values, list):
                raise Unreadable("its result is not a list of values")
            if values is not None and len(values) != combinations:
                raise Unreadable(f"{len(values)} values for {combinations} parameter combinations")
        except Unreadable as why:
            self.note(path, f"{name} skipped: {why}")
            return None
        return [dict(zip(names, case, strict=True)) for case in itertools.product(*literal)]

    def set_aside(self, result: Results, path: Path, name: str, case: dict, value, why) -> None:
        self.impossible.append(
            {
                "machine": result.params["machine"],
                "file": str(path),
                "benchmark": name,
                "case": ", ".join(f"{k}={v}" for k, v in case.items()),
                "value": SHORT.repr(value),
                "why": why,
            }
        )


def _literal(value_repr: object) -> object:
    if not isinstance(value_repr, str):
        raise Unreadable(f"its parameter value {SHORT.repr(value_repr)} is not a repr")
    try:
        return ast.literal_eval(value_repr)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        raise Unreadable(f"its parameter value {SHORT.repr(value_repr)} is no literal") from None


def _kind_and_unit(name: str, meta: dict) -> tuple[str, str]:
    if "type" in meta:
        return meta["type"], meta.get("unit", "")
    prefix = name.rsplit(".", 1)[-1].split("_", 1)[0]
    return KIND_BY_PREFIX.get(prefix, ("track", ""))


def _status(kind: str, value: object) -> tuple[str, str | None]:
    """'ok', 'skipped' (asv's NaN) or 'failed' (asv's null), or 'impossible' and why."""
    if value is None:
        return "failed", None
    if not _real(value):
        return "impossible", "not a number"
    if math.isnan(value):
        return "skipped", None
    possible, why = POSSIBLE.get(kind, (lambda v: True, ""))
    return ("ok", None) if possible(value) else ("impossible", why)


def _statistic(stat: object, name: str) -> float:
    value = stat.get(name) if isinstance(stat, dict) else None
    return float(value) if _real(value) and math.isfinite(value) and value >= 0 else math.nan


def _newest(loaded: list[tuple[Path, Results]]) -> list[tuple[Path, Results]]:
    """Per machine, the result files of its newest commit date (several envs may share it)."""
    newest: dict[str, int] = {}
    for _, r in loaded:
        machine = r.params["machine"]
        newest[machine] = max(newest.get(machine, r.date), r.date)
    return [(path, r) for path, r in loaded if r.date == newest[r.params["machine"]]]


class _Recorded:
    """What one machine's run recorded beside its asv results, for one commit; ``backends`` is
    its environment record's (``Loaded.environments``)."""

    def __init__(self, folder: Path, commit: str, backends: dict, reader: _Reader) -> None:
        self.backends = backends
        path = folder / records.FILE
        found = records.load(
            path, commit, lambda n, why: reader.note(path, f"line {n} skipped: {why}")
        )
        self.records = {}
        for key, record in found.items():
            kept, faults = _checked(record, RECORD_FIELDS)
            if faults:
                case = ", ".join(f"{k}={v}" for k, v in record["params"].items())
                reader.note(
                    path,
                    f"the record of {record['benchmark']} ({case}): {'; '.join(faults)}: "
                    "read as unknown",
                )
            self.records[key] = kept
        path = folder / failures.FILE
        self.failures = []
        noted = failures.load(path, lambda n, why: reader.note(path, f"line {n} skipped: {why}"))
        for failure in noted:
            if failure.get("commit") not in (None, commit):
                continue
            if not (
                isinstance(failure.get("benchmark"), str) and isinstance(failure.get("reason"), str)
            ):
                reader.note(
                    path, f"{SHORT.repr(failure)} skipped: a failure needs a benchmark and a reason"
                )
                continue
            self.failures.append(failure)

    def failure_reason(self, suite: str, metric: str, params: Mapping[str, Any]) -> str | None:
        """The failures file's reason for a case: a line of this benchmark (or of its suite's
        setup) holding every parameter of the case with the same value."""
        for failure in self.failures:
            if failure["benchmark"] not in (f"{suite}.{metric}", f"{suite}.setup"):
                continue
            if all(str(failure.get(name)) == str(value) for name, value in params.items()):
                return failure["reason"]
        return None

    def environment_precision(self, backend: str | None, dtype: str | None) -> str | None:
        if backend is None or dtype is None:
            return None
        settings = self.backends.get(backend, {}).get("settings") or {}
        precision = settings.get(f"precision.{dtype}")
        return precision if isinstance(precision, str) else None


def _row(
    result: Results,
    suite: str,
    metric: str,
    params: dict[str, Any],
    value: object,
    status: str,
    stat: object,
    recorded: _Recorded,
) -> dict[str, Any]:
    record = recorded.records.get(records.case_key(f"{suite}.{metric}", params))
    facts = {name: (record or {}).get(name) for name in records.FACTS}
    backend = params.get("backend", (record or {}).get("backend"))
    dtype = params.get("dtype")
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
        "layer": params.get("layer"),
        "setting": (record or {}).get("setting"),
        "default_setting": (record or {}).get("default_setting"),
        # A suite without a batch parameter measures one image.
        "batch": params.get("batch", 1),
        "size": params.get("size"),
        "kernel": params.get("kernel"),
        "dtype": dtype,
        "value": float(value) if status == "ok" else math.nan,
        "q25": _statistic(stat, "q_25"),
        "q75": _statistic(stat, "q_75"),
        # asv's 99% confidence interval of the median, and its number of samples.
        "ci_low": _statistic(stat, "ci_99_a"),
        "ci_high": _statistic(stat, "ci_99_b"),
        "samples": _statistic(stat, "repeat"),
        "status": status,
        "reason": reason,
        "recorded": record is not None,
        **facts,
        **{name: (record or {}).get(name) for name in TRUST},
    }


def _rows(
    path: Path,
    raw: dict,
    result: Results,
    meta: dict[str, dict],
    recorded: _Recorded,
    reader: _Reader,
) -> Iterator[dict[str, Any]]:
    for name in sorted(result.get_all_result_keys()):
        suite, _, metric = name.rpartition(".")
        suite = suite.rpartition(".")[2]
        names = meta.get(name, {}).get("param_names") or PARAM_NAMES.get(suite)
        if (
            not names
            or not {"size", "layer"} & set(names)
            or not {"backend", "variant"} & set(names)
        ):
            continue  # not a convolution suite (e.g. explain's timing): asv's site shows it
        cases = reader.cases(path, raw, name, names)
        if cases is None:
            continue
        kind, unit = _kind_and_unit(name, meta.get(name, {}))
        params = result.get_result_params(name)
        values = result.get_result_value(name, params)
        stats = result.get_result_stats(name, params)
        for case, value, stat in zip(cases, values, stats, strict=True):
            status, why = _status(kind, value)
            if status == "impossible":
                reader.set_aside(result, path, name, case, value, why)
                continue
            row = _row(result, suite, metric, case, value, status, stat, recorded)
            yield {**row, "kind": kind, "unit": unit}


def _environment(path: Path, reader: _Reader) -> dict | None:
    """One environment record, each field the report relies on of the type it needs (a field
    that is not is left out, noted); None (noted) when the file cannot be read."""
    try:
        found = _read_json(path)
    except Unreadable as why:
        reader.note(path, f"skipped: {why}")
        return None
    environment, faults = _checked(found, ENVIRONMENT_FIELDS)
    backends = {}
    for name, backend in (environment.get("backends") or {}).items():
        if not isinstance(backend, dict):
            faults.append(f"backends.{name} is not an object")
            continue
        backends[name], more = _checked(backend, BACKEND_FIELDS)
        faults.extend(f"backends.{name}.{fault}" for fault in more)
    environment["backends"] = backends
    if faults:
        reader.note(path, f"{'; '.join(faults)}: left out")
    return environment


def _environments(results_dir: Path, reader: _Reader) -> dict[str, dict]:
    found = {}
    for path in sorted(results_dir.glob(f"**/{ENVIRONMENT_FILE}")):
        environment = _environment(path, reader)
        if environment is not None:
            found[environment.get("machine") or path.parent.name] = environment
    return found


def _reproducibility(results_dir: Path, reader: _Reader) -> dict[str, dict]:
    """Each machine's run-to-run spread, by its folder's name (the file sits beside the machine's
    results), each field the report states of the type it needs (a field that is not is left
    out, noted)."""
    found = {}
    for path in sorted(results_dir.glob(f"**/{REPRODUCIBILITY_FILE}")):
        try:
            record = _read_json(path)
        except Unreadable as why:
            reader.note(path, f"skipped: {why}")
            continue
        kept, faults = _checked(record, REPRODUCIBILITY_FIELDS)
        if faults:
            reader.note(path, f"{'; '.join(faults)}: left out")
        machine = results_dir.name if path.parent == results_dir else path.parent.name
        found[machine] = {name: kept.get(name) for name in REPRODUCIBILITY_FIELDS}
    return found


def read_results(results_dir: str | Path) -> Loaded:
    """Every result under ``results_dir`` (a results root or one machine's folder), with what the
    run recorded of each case, and everything that could not be used as it stood (see the
    module's docstring). FileNotFoundError when ``results_dir`` is no folder."""
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise FileNotFoundError(f"results dir {str(results_dir)!r} does not exist")
    reader = _Reader(results_dir)
    environments = _environments(results_dir, reader)
    loaded, raws = [], {}
    for path, machine, why in reader.result_files():
        found = reader.result(path, machine, why)
        if found is not None:
            loaded.append((path, found[0]))
            raws[path] = found[1]
    # Without results, a missing benchmarks.json is no problem of its own.
    meta = reader.benchmark_meta() if loaded else {}
    rows = []
    recorded: dict[tuple[Path, str], _Recorded] = {}
    for path, result in _newest(loaded):
        key = (path.parent, result.commit_hash)
        if key not in recorded:
            backends = environments.get(result.params["machine"], {}).get("backends", {})
            recorded[key] = _Recorded(path.parent, result.commit_hash, backends, reader)
        rows.extend(_rows(path, raws[path], result, meta, recorded[key], reader))
    impossible = pd.DataFrame(reader.impossible, columns=IMPOSSIBLE)
    for (file, benchmark, why), values in impossible.groupby(["file", "benchmark", "why"]):
        reader.note(
            Path(file),
            f"{benchmark}: {len(values)} impossible value(s) set aside, neither drawn nor "
            f"counted ({why}: {_listed(values.value)})",
        )
    frame = pd.DataFrame(rows, columns=COLUMNS)
    spread = _reproducibility(results_dir, reader)
    return Loaded(
        results=frame.astype({name: float for name in FLOATS} | dict.fromkeys(COUNTS, "Int64")),
        environments=environments,
        impossible=impossible,
        problems=tuple(reader.problems),
        reproducibility=spread,
    )


def _listed(values: pd.Series, shown: int = 4) -> str:
    more = len(values) - shown
    return ", ".join(values[:shown]) + (f" and {more} more" if more > 0 else "")


class ResultsWarning(UserWarning):
    """A problem of a results dir (``Problem``), for callers of ``load_results``."""


def _warn(problems) -> None:
    for problem in problems:
        warnings.warn(str(problem), ResultsWarning, stacklevel=3)


def load_results(results_dir: str | Path) -> pd.DataFrame:
    """``read_results(results_dir).results``, each problem given as a ``ResultsWarning``."""
    loaded = read_results(results_dir)
    _warn(loaded.problems)
    return loaded.results


def load_environments(results_dir: str | Path) -> dict[str, dict]:
    """``convbench-environment.json`` of each machine under ``results_dir``, by machine name;
    each problem given as a ``ResultsWarning``."""
    reader = _Reader(Path(results_dir))
    found = _environments(Path(results_dir), reader)
    _warn(reader.problems)
    return found
