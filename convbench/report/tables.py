"""Pure functions from the long results frame (``results.load_results``) to the report's tables.

Cases are the suites' parameters (backend, batch, size, kernel, dtype) of the default spec, a
'same'-sized correlation: an output is as large as its image. Every fact about a backend (its
library, device, CPU twin, precision, arithmetic, tolerance) is a column of the frame, as the run
recorded it; where none was recorded it is missing here too, and no table guesses it from a name.

Every timing carries its trust (``trust``): its spread (asv's interquartile range over its
median), its sample count, the background load its record gives, and ``noisy`` with the reasons,
by the thresholds of convbench's own timer (``timing.WIDE_SPREAD``, ``timing.MIN_SAMPLES``,
``load.BUSY_CORES``). Two times whose interquartile ranges overlap are *tied within the spread*
(``tied``): a ratio between them is not a finding. Every conclusion a table draws (the fastest
backend, a speed-up, a machine against another) carries both.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from convbench import roofline
from convbench.load import BUSY_CORES
from convbench.timing import MIN_SAMPLES, WIDE_SPREAD

CASE = ["backend", "batch", "size", "kernel", "dtype"]
FACTS = ["library", "device", "cpu_twin", "precision", "arithmetic", "tolerance"]
# A timing's statistics (asv's) and what its record says of how it was measured.
MEASURED = ["q25", "q75", "ci_low", "ci_high", "samples", "other_cores", "threads", "busy_threads"]
TRUST = ["spread", "noisy", "why_noisy"]
ITEMSIZE = {"float16": 2, "bfloat16": 2, "float32": 4, "float64": 8}
NO_MESSAGE = "the benchmark raised an error and no reason was recorded (asv keeps none)"
NO_REASON = "no reason was recorded for this case"


def bytes_moved(size: int, kernel: int, dtype: str, batch: int = 1) -> float:
    """Bytes an op must read and write at least: image, kernel and a 'same'-sized output; NaN
    for a dtype whose size is not known here."""
    return ITEMSIZE.get(dtype, math.nan) * (2 * batch * size * size + kernel * kernel)


def _metric(df: pd.DataFrame, suite: str, metric: str, status: str = "ok") -> pd.DataFrame:
    return df[(df.suite == suite) & (df.metric == metric) & (df.status == status)]


def noisy_reasons(spread: float, samples: float, other_cores: float) -> tuple[str, ...]:
    """Why a timing should not be trusted as the op's speed (empty when it can be): a spread
    over ``WIDE_SPREAD``, fewer than ``MIN_SAMPLES`` samples, or other processes busy on more
    than ``BUSY_CORES`` cores while it was measured. An unknown figure (NaN) says nothing."""
    found = []
    if samples < MIN_SAMPLES:
        found.append(
            f"only {samples:.0f} samples: too few to bound the median (at least {MIN_SAMPLES})"
        )
    if spread > WIDE_SPREAD:
        found.append(f"wide spread: IQR is {spread:.0%} of the median (> {WIDE_SPREAD:.0%})")
    if other_cores > BUSY_CORES:
        found.append(
            f"busy machine: other processes used {other_cores:.2f} cores while measured "
            f"(> {BUSY_CORES})"
        )
    return tuple(found)


def trust(rows: pd.DataFrame) -> pd.DataFrame:
    """Timing rows (a ``value`` in seconds with asv's ``q25``, ``q75`` and ``samples``, and the
    record's ``other_cores``) with their ``spread`` (IQR / median), ``noisy`` and
    ``why_noisy`` (the reasons, '; '-joined; '' when trusted)."""
    out = rows.copy()
    out["spread"] = (out["q75"] - out["q25"]) / out["value"]
    why = [
        "; ".join(noisy_reasons(*found))
        for found in zip(out["spread"], out["samples"], out["other_cores"], strict=True)
    ]
    out["why_noisy"] = pd.Series(why, index=out.index, dtype=object)
    out["noisy"] = out["why_noisy"] != ""
    return out


def tied(a_q25: float, a_q75: float, b_q25: float, b_q75: float) -> bool | None:
    """Whether two times' interquartile ranges overlap (their difference lies within the
    spread); None when either range is unknown."""
    if any(pd.isna(v) for v in (a_q25, a_q75, b_q25, b_q75)):
        return None
    return bool(a_q25 <= b_q75 and b_q25 <= a_q75)


def _tied(frame: pd.DataFrame, a: tuple[str, str], b: tuple[str, str]) -> pd.Series:
    """``tied`` per row of ``frame`` for the IQR columns ``a`` and ``b``; NA where unknown."""
    found = [tied(*values) for values in zip(*(frame[c] for c in (*a, *b)), strict=True)]
    return pd.Series(found, index=frame.index, dtype="boolean")


def _timed(df: pd.DataFrame, suite: str, metric: str) -> pd.DataFrame:
    """The timings of ``suite.metric`` that ran, with their trust."""
    return trust(_metric(df, suite, metric))


TIMED = ["seconds", *MEASURED, *TRUST]


def timings(df: pd.DataFrame) -> pd.DataFrame:
    """Every timing that ran, of any suite, with its trust: what "noisy" counts."""
    rows = trust(df[(df.kind == "time") & (df.status == "ok")])
    columns = ["machine", "suite", "metric", "backend", "variant", "layer", *CASE[1:], "value"]
    return rows[[*columns, *MEASURED, *TRUST]].rename(columns={"value": "seconds"})


def timing_trust(timed: pd.DataFrame) -> pd.DataFrame:
    """Per machine, of its ``timings``: how many, how many noisy and for which reason (one
    timing may have several), the most other load any record gives, and the threads
    recorded."""
    rows = []
    for machine, group in timed.groupby("machine", sort=True):
        why = group.why_noisy
        threads = sorted({int(t) for t in group.threads.dropna()})
        rows.append(
            {
                "machine": machine,
                "timings": len(group),
                "noisy": int(group.noisy.sum()),
                "wide_spread": int(why.str.contains("wide spread").sum()),
                "busy": int(why.str.contains("busy machine").sum()),
                "few_samples": int(why.str.contains("samples").sum()),
                "load_recorded": int(group.other_cores.notna().sum()),
                "most_other_cores": group.other_cores.max(),
                "threads": ", ".join(map(str, threads)) or None,
            }
        )
    columns = ["machine", "timings", "noisy", "wide_spread", "busy", "few_samples"]
    return pd.DataFrame(rows, columns=[*columns, "load_recorded", "most_other_cores", "threads"])


def op_times(df: pd.DataFrame) -> pd.DataFrame:
    """``Conv.time_op``: seconds per op for every machine and case that ran, with its trust and
    its facts."""
    rows = _timed(df, "Conv", "time_op").rename(columns={"value": "seconds"})
    return rows[["machine", *CASE, *TIMED, *FACTS]].reset_index(drop=True)


def batch_times(df: pd.DataFrame) -> pd.DataFrame:
    """``ConvBatch.time_op``: seconds per batch for every machine and case that ran."""
    rows = _timed(df, "ConvBatch", "time_op").rename(columns={"value": "seconds"})
    return rows[["machine", *CASE, *TIMED]]


def throughput(times: pd.DataFrame, bandwidth: Mapping[str, float | None]) -> pd.DataFrame:
    """GB/s (bytes read + written over time) and that as a share of the machine's copy rate.

    The floor is the host's memory, so the share is given for backends recorded as running on
    the CPU only: a GPU streams from its own memory, which is not measured here, and a backend
    whose device was not recorded may be either.
    """
    out = times.copy()
    moved = [
        bytes_moved(s, k, d, b)
        for s, k, d, b in zip(out["size"], out["kernel"], out["dtype"], out["batch"], strict=True)
    ]
    out["gb_per_s"] = pd.Series(moved, index=out.index, dtype=float) / out["seconds"] / 1e9
    floor = out["machine"].map(lambda m: bandwidth.get(m) or math.nan).astype(float)
    out["of_bandwidth"] = (out["gb_per_s"] / floor).where(out["device"] == "cpu")
    return out


def fastest(times: pd.DataFrame) -> pd.DataFrame:
    """Per machine and case, the fastest backend and how much faster it is than the runner-up;
    ``tied`` when their interquartile ranges overlap (NA: unknown), ``noisy`` when either
    time is."""
    return _fastest(times, ["machine", "dtype", "kernel", "size", "batch"])


def _fastest(times: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """``fastest`` per the case ``keys``."""
    rows = []
    for key, group in times.groupby(keys, sort=True):
        ranked = group.sort_values("seconds")
        best = ranked.iloc[0]
        runner_up = ranked.iloc[1] if len(ranked) > 1 else None
        rows.append(
            {
                **dict(zip(keys, key, strict=True)),
                "fastest": best.backend,
                "seconds": best.seconds,
                "runner_up": None if runner_up is None else runner_up.backend,
                "margin": math.nan if runner_up is None else runner_up.seconds / best.seconds,
                "tied": None
                if runner_up is None
                else tied(best.q25, best.q75, runner_up.q25, runner_up.q75),
                "noisy": bool(best.noisy or (runner_up is not None and runner_up.noisy)),
            }
        )
    columns = [*keys, "fastest", "seconds", "runner_up", "margin", "tied", "noisy"]
    return pd.DataFrame(rows, columns=columns).astype({"tied": "boolean", "noisy": bool})


def cpu_vs_gpu(df: pd.DataFrame, times: pd.DataFrame | None = None) -> pd.DataFrame:
    """The same case on a GPU backend and on the CPU backend its record names as its CPU twin
    (torch-cuda and torch-cpu, cupy-gpu and scipy-correlate2d, ...), on any pair of machines.

    ``speedup`` compares the op alone (data already on the device); ``speedup_end_to_end`` holds
    the GPU to the honest comparison, its op plus the host<->device transfers
    (``Transfer.time_end_to_end``), and ``transfer_s`` is that transfer cost by itself. ``tied``
    and ``noisy`` (and their ``_end_to_end`` twins) say whether the two times' spreads overlap
    and whether either is noisy. ``times`` is ``op_times(df)`` when the caller has it already.
    """
    times = op_times(df) if times is None else times
    e2e = _timed(df, "Transfer", "time_end_to_end")
    e2e = e2e[["machine", *CASE, "value", "q25", "q75", "noisy"]].rename(
        columns={"value": "end_to_end_s", "q25": "e2e_q25", "q75": "e2e_q75", "noisy": "e2e_noisy"}
    )
    gpu = times[(times.device == "gpu") & times.cpu_twin.notna()].merge(
        e2e, on=["machine", *CASE], how="left"
    )
    cpu = times[times.device != "gpu"]
    shape = ["batch", "size", "kernel", "dtype"]
    pairs = gpu.merge(
        cpu, left_on=["cpu_twin", *shape], right_on=["backend", *shape], suffixes=("_gpu", "_cpu")
    )
    pairs = pairs.rename(
        columns={
            "machine_cpu": "cpu_machine",
            "backend_cpu": "cpu_backend",
            "seconds_cpu": "cpu_s",
            "machine_gpu": "gpu_machine",
            "backend_gpu": "gpu_backend",
            "seconds_gpu": "gpu_s",
        }
    )
    pairs["transfer_s"] = pairs["end_to_end_s"] - pairs["gpu_s"]
    pairs["speedup"] = pairs["cpu_s"] / pairs["gpu_s"]
    pairs["speedup_end_to_end"] = pairs["cpu_s"] / pairs["end_to_end_s"]
    pairs["tied"] = _tied(pairs, ("q25_cpu", "q75_cpu"), ("q25_gpu", "q75_gpu"))
    pairs["noisy"] = pairs["noisy_cpu"] | pairs["noisy_gpu"]
    pairs["tied_end_to_end"] = _tied(pairs, ("q25_cpu", "q75_cpu"), ("e2e_q25", "e2e_q75"))
    pairs["noisy_end_to_end"] = pairs["noisy_cpu"] | pairs["e2e_noisy"].eq(True)
    columns = [
        "cpu_machine",
        "cpu_backend",
        "gpu_machine",
        "gpu_backend",
        "size",
        "kernel",
        "dtype",
        "batch",
        "cpu_s",
        "gpu_s",
        "end_to_end_s",
        "transfer_s",
        "speedup",
        "speedup_end_to_end",
        "tied",
        "noisy",
        "tied_end_to_end",
        "noisy_end_to_end",
    ]
    return pairs[columns].sort_values(columns[:8]).reset_index(drop=True)


def gpu_losses(pairs: pd.DataFrame) -> pd.DataFrame:
    """Per CPU/GPU pairing, kernel and dtype: the largest image at which the GPU is slower than
    the CPU (speedup below 1), for the op alone and counting transfers; NaN where it never is.
    ``*_caveat`` says whether that loss rests on times tied within the spread ('tied') or on a
    noisy time ('noisy'), '' when on neither."""
    keys = ["cpu_machine", "cpu_backend", "gpu_machine", "gpu_backend", "kernel", "dtype"]
    rows = []
    for key, group in pairs.groupby(keys, sort=True):
        found = dict(zip(keys, key, strict=True))
        for name, suffix in (("op", ""), ("end_to_end", "_end_to_end")):
            lost = group[group["speedup" + suffix] < 1]
            largest = lost.loc[lost["size"].idxmax()] if not lost.empty else None
            found[f"{name}_loses_up_to"] = math.nan if largest is None else largest["size"]
            found[f"{name}_caveat"] = "" if largest is None else _caveat(largest, suffix)
        rows.append({**found, "cases": len(group)})
    columns = [
        *keys,
        "op_loses_up_to",
        "op_caveat",
        "end_to_end_loses_up_to",
        "end_to_end_caveat",
        "cases",
    ]
    return pd.DataFrame(rows, columns=columns)


def _yes(value: object) -> bool:
    """True for a known true flag; False for false and for unknown (NA)."""
    return not pd.isna(value) and bool(value)


def _caveat(row: pd.Series, suffix: str = "") -> str:
    if _yes(row["tied" + suffix]):
        return "tied"
    return "noisy" if _yes(row["noisy" + suffix]) else ""


def _verdicts(max_rel: pd.Series, tolerance: pd.Series) -> tuple[pd.Series, pd.Series]:
    """max_rel / tolerance, and within it or not: unknown (NA) without a recorded tolerance."""
    ratio = max_rel / tolerance
    ok = (ratio <= 1).astype("boolean").mask(ratio.isna())
    return ratio, ok


def settings_sweep(df: pd.DataFrame) -> pd.DataFrame:
    """``ConvSettings``: time and max_rel per settings variant, and the speed-up over the
    variant its record names as the library default for the same backend, machine and case
    (>1: this setting is faster; ``tied`` when their spreads overlap). ``default`` is True
    only where a record says so."""
    keys = ["machine", "variant", "size", "kernel"]
    described = ["backend", "setting", "default_setting", "precision"]
    times = _timed(df, "ConvSettings", "time_op")
    times = times[[*keys, *described, "value", "q25", "q75", *TRUST]]
    times = times.rename(columns={"value": "seconds"})
    errors = _metric(df, "ConvSettings", "track_max_rel")[[*keys, "value", "tolerance"]]
    out = times.merge(errors.rename(columns={"value": "max_rel"}), on=keys, how="left")
    out["default"] = out.pop("default_setting").eq(True)
    same = ["machine", "backend", "size", "kernel"]
    base = out[out["default"]][[*same, "seconds", "q25", "q75"]]
    out = out.merge(
        base.rename(columns={"seconds": "default_s", "q25": "default_q25", "q75": "default_q75"}),
        on=same,
        how="left",
    )
    out["vs_default"] = out["default_s"] / out["seconds"]
    out["tied"] = _tied(out, ("q25", "q75"), ("default_q25", "default_q75"))
    out["ratio"], out["ok"] = _verdicts(out["max_rel"], out["tolerance"])
    return out.sort_values(keys).reset_index(drop=True)


def agreement(df: pd.DataFrame) -> pd.DataFrame:
    """``Conv.track_max_rel`` against the tolerance recorded for the case: ``ok`` is NA (no
    verdict) where no tolerance was recorded."""
    rows = _metric(df, "Conv", "track_max_rel")
    rows = rows[["machine", *CASE, "value", "precision", "tolerance"]]
    rows = rows.rename(columns={"value": "max_rel"}).reset_index(drop=True)
    rows["ratio"], rows["ok"] = _verdicts(rows["max_rel"], rows["tolerance"])
    return rows


LAYER_CASE = ["machine", "layer", "backend", "batch", "dtype"]
LAYER_COLUMNS = [
    *LAYER_CASE,
    "seconds",
    "q25",
    "q75",
    "spread",
    "noisy",
    "why_noisy",
    "gflops",
    "max_rel",
    "tolerance",
    "ratio",
    "ok",
    "peak_bytes",
    "device",
    "precision",
]


def layer_results(df: pd.DataFrame) -> pd.DataFrame:
    """The ``Layer`` suite, one row per machine, layer, backend, batch and dtype that was timed:
    seconds per op with its trust; GFLOP/s as the run measured it (``track_gflops``, at the
    batch the suite measures it at, NaN at the others); the agreement with the float64
    reference, tracked on one image and the same at every batch, against the tolerance its
    record gives (``ok`` NA without one); and the peak memory where the run measured it."""
    times = _timed(df, "Layer", "time_op").rename(columns={"value": "seconds"})
    rows = times[[*LAYER_CASE, "seconds", "q25", "q75", "spread", "noisy", "why_noisy"]]
    rows = rows.assign(device=times.device, precision=times.precision)
    gflops = _metric(df, "Layer", "track_gflops")[[*LAYER_CASE, "value"]]
    peak = _metric(df, "Layer", "peakmem_op")[[*LAYER_CASE, "value"]]
    agree = _metric(df, "Layer", "track_max_rel")
    per_image = [key for key in LAYER_CASE if key != "batch"]
    agree = agree[[*per_image, "value", "tolerance"]].rename(columns={"value": "max_rel"})
    rows = rows.merge(gflops.rename(columns={"value": "gflops"}), on=LAYER_CASE, how="left")
    rows = rows.merge(peak.rename(columns={"value": "peak_bytes"}), on=LAYER_CASE, how="left")
    rows = rows.merge(agree.drop_duplicates(per_image), on=per_image, how="left")
    rows["ratio"], rows["ok"] = _verdicts(rows["max_rel"], rows["tolerance"])
    return rows[LAYER_COLUMNS].sort_values(LAYER_CASE).reset_index(drop=True)


def layer_fastest(layers: pd.DataFrame) -> pd.DataFrame:
    """Per machine, layer, batch and dtype (``layer_results`` rows), the fastest backend, by
    how much, and whether that is within the spread or rests on a noisy time (as ``fastest``);
    with the winner's GFLOP/s where measured."""
    keys = ["machine", "layer", "batch", "dtype"]
    found = _fastest(layers, keys)
    rates = layers[[*keys, "backend", "gflops"]].rename(columns={"backend": "fastest"})
    return found.merge(rates, on=[*keys, "fastest"], how="left")


def _reason(row, environments: Mapping[str, dict]) -> str:
    if isinstance(row.reason, str) and row.reason:
        return row.reason
    if row.status == "failed":
        return NO_MESSAGE
    backend = environments.get(row.machine, {}).get("backends", {}).get(row.backend, {})
    if backend.get("available") is False:
        return (
            f"{NO_REASON}; the machine's environment record says {row.backend} was not "
            f"available: {backend.get('reason') or 'no reason given'}"
        )
    return NO_REASON


def _joined(values) -> str:
    return ", ".join(str(v) for v in sorted(set(values.dropna())))


def not_run(df: pd.DataFrame, environments: Mapping[str, dict]) -> pd.DataFrame:
    """Skipped and failed results, one row per machine, backend (or settings variant), status
    and reason; ``results`` counts them."""
    keys = ["machine", "backend", "status", "reason"]
    columns = [*keys, "benchmarks", "dtypes", "sizes", "results"]
    rows = df[df.status != "ok"].copy()
    if rows.empty:
        return pd.DataFrame(columns=columns)
    rows["benchmark"] = rows.suite + "." + rows.metric
    rows["reason"] = [_reason(r, environments) for r in rows.itertuples()]
    rows["backend"] = rows.backend.fillna(rows.variant).fillna("unknown")
    summary = (
        rows.groupby(keys)
        .agg(
            benchmarks=("benchmark", _joined),
            dtypes=("dtype", _joined),
            sizes=("size", _joined),
            results=("size", "size"),
        )
        .reset_index()
    )
    return summary[columns]


LEFT_OUT_COLUMNS = ["machine", "backend", "reason"]


def left_out(df: pd.DataFrame, environments: Mapping[str, dict]) -> pd.DataFrame:
    """Backends that a machine's environment record says cannot run there and that have no
    result of that machine: left out of its run's grid (``suite.grid_backends``), so no skipped
    result says why; one row each, with the record's reason."""
    rows = []
    for machine in sorted(df.machine.unique()):
        present = set(df[df.machine == machine].backend.dropna())
        backends = environments.get(machine, {}).get("backends", {})
        for backend, record in sorted(backends.items()):
            if record.get("available") is False and backend not in present:
                reason = record.get("reason")
                rows.append(
                    [machine, backend, reason if isinstance(reason, str) else "no reason recorded"]
                )
    return pd.DataFrame(rows, columns=LEFT_OUT_COLUMNS)


@dataclass(frozen=True)
class Counts:
    """Results (one benchmark of one case on one machine, any suite) by how they ended."""

    ok: int
    skipped: int
    failed: int


def counts(df: pd.DataFrame) -> Counts:
    found = df.status.value_counts()
    return Counts(*(int(found.get(status, 0)) for status in ("ok", "skipped", "failed")))


def _known(values: pd.Series):
    """The one recorded value of a fact, several joined where records differ, or None."""
    found = sorted({str(v) for v in values.dropna()})
    return ", ".join(found) if found else None


def backends(df: pd.DataFrame) -> pd.DataFrame:
    """Per machine and backend: its facts as recorded (None where no record holds one), the
    precision of each dtype it was run in, and its results by status."""
    rows = []
    named = df[df.backend.notna()]
    for (machine, backend), group in named.groupby(["machine", "backend"], sort=True):
        typed = group[group.dtype.notna()]
        precision = {
            dtype: _known(cases.precision) for dtype, cases in typed.groupby("dtype", sort=True)
        }
        found = group.status.value_counts()
        rows.append(
            {
                "machine": machine,
                "backend": backend,
                "library": _known(group.library),
                "device": _known(group.device),
                "cpu_twin": _known(group.cpu_twin),
                "precision": precision,
                "recorded": int(group.recorded.sum()),
                **{status: int(found.get(status, 0)) for status in ("ok", "skipped", "failed")},
            }
        )
    columns = ["machine", "backend", "library", "device", "cpu_twin", "precision", "recorded"]
    return pd.DataFrame(rows, columns=[*columns, "ok", "skipped", "failed"])


# --- Machine against machine -------------------------------------------------------------------


RATIO_KEPT = ["seconds", "q25", "q75", "spread", "noisy", "why_noisy"]
RATIO_COLUMNS = [
    "machine_a",
    "machine_b",
    *CASE,
    *(f"{name}_{side}" for side in "ab" for name in RATIO_KEPT),
    "ratio",
    "tied",
    "noisy",
]


def machine_ratios(df: pd.DataFrame, a: str, b: str, times: pd.DataFrame | None = None):
    """Every backend and case timed on both machine ``a`` and machine ``b``: both times with
    their spreads, ``ratio`` = time on ``a`` / time on ``b`` (above 1: ``b`` is faster),
    ``tied`` when the two interquartile ranges overlap and ``noisy`` when either time is.
    ``times`` is ``op_times(df)`` when the caller has it already."""
    times = op_times(df) if times is None else times
    held = sorted(times.machine.unique())
    for machine in (a, b):
        if machine not in held:
            raise ValueError(f"machine {machine!r} has no Conv.time_op result; one of {held}")
    pairs = times[times.machine == a][[*CASE, *RATIO_KEPT]].merge(
        times[times.machine == b][[*CASE, *RATIO_KEPT]], on=CASE, suffixes=("_a", "_b")
    )
    pairs.insert(0, "machine_a", a)
    pairs.insert(1, "machine_b", b)
    pairs["ratio"] = pairs["seconds_a"] / pairs["seconds_b"]
    pairs["tied"] = _tied(pairs, ("q25_a", "q75_a"), ("q25_b", "q75_b"))
    pairs["noisy"] = pairs["noisy_a"] | pairs["noisy_b"]
    return pairs[RATIO_COLUMNS].sort_values(CASE).reset_index(drop=True)


# Environment facts not worth a line of difference: the machine's name, when it was collected,
# and the fixture's banner.
UNCOMPARED = {"machine", "collected", "fixture"}
FACT_LABELS = {
    "cpu": "CPU",
    "cpu_flags": "CPU flags",
    "flags": "CPU flags",
    "cores": "cores",
    "memory_gib": "memory (GiB)",
    "memory_bandwidth_gbs": "memory bandwidth (GB/s)",
    "memory_bandwidth_method": "memory bandwidth measured by",
    "gpu": "GPU",
    "driver": "GPU driver",
    "cuda": "CUDA",
    "cudnn": "cuDNN",
    "python": "Python",
    "timing": "asv timing",
}
NOT_RECORDED = "not recorded"
# A fact one record lacks (None is a fact: a record may say there is no GPU).
_ABSENT = object()


def _flat(label: str, value: Any, into: dict[str, Any]) -> None:
    """``value`` under ``label``, an object's fields each under ``label.field``; a list of plain
    values as a set (flags compare as sets, in any order)."""
    if isinstance(value, Mapping):
        for key, inner in value.items():
            _flat(f"{label}.{key}" if label else str(key), inner, into)
    elif isinstance(value, list) and all(isinstance(v, str | int | float) for v in value):
        into[label] = frozenset(map(str, value))
    else:
        into[label] = value if isinstance(value, str | int | float | bool | None) else str(value)


def environment_facts(environment: Mapping[str, Any]) -> dict[str, Any]:
    """An environment record (``convbench env``) as one flat mapping, fact -> value, in the
    record's order, labelled in the user's words: 'torch version', 'torch-cpu: torch.threads',
    'peak GFLOP/s, float32' (the rate and what gave it, one line). Any JSON is taken: a field
    of an unexpected type is one fact."""
    facts: dict[str, Any] = {}
    for key, value in environment.items():
        if key in UNCOMPARED:
            continue
        if key == "versions" and isinstance(value, Mapping):
            for library, found in value.items():
                _flat(f"{library} version", found, facts)
        elif key == "backends" and isinstance(value, Mapping):
            for name, backend in value.items():
                if not isinstance(backend, Mapping):
                    _flat(name, backend, facts)
                    continue
                available = backend.get("available")
                facts[f"{name} available"] = (
                    "yes" if available is True else f"no: {backend.get('reason') or 'no reason'}"
                )
                settings = backend.get("settings")
                for setting, found in (settings if isinstance(settings, Mapping) else {}).items():
                    _flat(f"{name}: {setting}", found, facts)
        elif key == "peak_gflops" and isinstance(value, Mapping):
            for dtype, peak in value.items():
                facts[f"peak GFLOP/s, {dtype}"] = peak_text(peak)
        else:
            _flat(FACT_LABELS.get(str(key), str(key)), value, facts)
    return facts


def peak_text(peak: Any) -> str:
    """A peak rate of the environment record in one line: the rate and what gave it."""
    if not isinstance(peak, Mapping):
        return str(peak)
    gflops = peak.get("gflops")
    rate = f"{gflops:.4g}" if isinstance(gflops, float) else str(gflops)
    how = [str(peak["library"])] if peak.get("library") is not None else []
    if peak.get("threads") is not None:
        how.append(f"{peak['threads']} threads")
    if isinstance(peak.get("other_cores"), int | float):
        how.append(f"other load {peak['other_cores']:.2f} cores")
    return f"{rate} ({', '.join(how)})" if how else rate


def _fact_text(value: Any) -> str:
    if value is _ABSENT:
        return NOT_RECORDED
    if value is None:
        return "none"
    if isinstance(value, frozenset):
        return ", ".join(sorted(value)) or "none"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def environment_diff(a: Mapping[str, Any] | None, b: Mapping[str, Any] | None) -> pd.DataFrame:
    """What differs between two environment records (``fact``, its text on ``a`` and on ``b``),
    in the records' order: hardware, versions, each backend's settings, the roofline's ceilings;
    'not recorded' where one record lacks a fact; of a set recorded on both (CPU flags), what
    only one side has. A missing record (None) records nothing."""
    facts_a = environment_facts(a or {})
    facts_b = environment_facts(b or {})
    rows = []
    for fact in [*facts_a, *(f for f in facts_b if f not in facts_a)]:
        value_a, value_b = facts_a.get(fact, _ABSENT), facts_b.get(fact, _ABSENT)
        if value_a == value_b:
            continue
        if isinstance(value_a, frozenset) and isinstance(value_b, frozenset):
            fact, value_a, value_b = f"{fact}, only here", value_a - value_b, value_b - value_a
        rows.append({"fact": fact, "a": _fact_text(value_a), "b": _fact_text(value_b)})
    return pd.DataFrame(rows, columns=["fact", "a", "b"])


# --- Roofline ------------------------------------------------------------------------------


def peak_gflops(environment: Mapping[str, Any], dtype: str) -> float:
    """The peak GFLOP/s an environment record holds for ``dtype``; NaN when it holds none (or
    one that is not a positive number)."""
    peaks = environment.get("peak_gflops")
    peak = peaks.get(dtype) if isinstance(peaks, Mapping) else None
    gflops = peak.get("gflops") if isinstance(peak, Mapping) else None
    real = isinstance(gflops, int | float) and not isinstance(gflops, bool)
    return float(gflops) if real and math.isfinite(gflops) and gflops > 0 else math.nan


def _on_cpu(device: object, environment: Mapping[str, Any] | None) -> bool:
    """Whether a result ran on its machine's CPU: its record says so, or none says and the
    machine's environment record names no GPU (then nothing else could have run it)."""
    if isinstance(device, str):
        return device == "cpu"
    return environment is not None and "gpu" in environment and not environment["gpu"]


def ceilings(
    times: pd.DataFrame,
    environments: Mapping[str, Mapping[str, Any]],
    bandwidth: Mapping[str, float | None],
) -> pd.DataFrame:
    """Per machine and dtype it timed: the CPU's two ceilings, ``peak_gflops`` (NaN when its
    environment record holds none for the dtype) and ``bandwidth_gbs`` (its bandwidth floor),
    and the ``ridge`` intensity between them."""
    rows = []
    for (machine, dtype), _ in times.groupby(["machine", "dtype"], sort=True):
        peak = peak_gflops(environments.get(machine, {}), dtype)
        floor = bandwidth.get(machine) or math.nan
        rows.append(
            {
                "machine": machine,
                "dtype": dtype,
                "peak_gflops": peak,
                "bandwidth_gbs": floor,
                "ridge": peak / floor,
            }
        )
    return pd.DataFrame(rows, columns=["machine", "dtype", "peak_gflops", "bandwidth_gbs", "ridge"])


def _work(batch: int, size: int, kernel: int, dtype: str) -> roofline.Work | None:
    shape = (size, size) if batch == 1 else (batch, size, size)
    try:
        return roofline.work(shape, (kernel, kernel), dtype)
    except (ValueError, ImportError):  # a dtype numpy does not know here
        return None


def roofline_points(
    times: pd.DataFrame, environments: Mapping[str, Mapping[str, Any]], limits: pd.DataFrame
) -> pd.DataFrame:
    """Every result that ran on its machine's CPU (its record says so, or none says and the
    machine's environment record names no GPU) under that CPU's roofline (``limits``:
    ``ceilings``, whose machines and dtypes it may lack): arithmetic ``intensity`` (flop/byte)
    and ``gflops`` achieved, both by the direct method's work (``2 kh kw`` flops per output, so
    every method is charged the same), the ``bound`` at its intensity, ``of_bound`` (above 1
    only for a method doing less work, an FFT) and ``limit``: 'memory' or 'compute', or
    'memory (no peak recorded)' when only the bandwidth is known, whose bound is then an upper
    one. GPU results have no point: these are the host CPU's ceilings."""
    known = limits.set_index(["machine", "dtype"])
    rows = []
    for row in times.itertuples():
        if not _on_cpu(row.device, environments.get(row.machine)):
            continue
        work = _work(row.batch, row.size, row.kernel, row.dtype)
        if work is None:
            continue
        peak, floor = (
            known.loc[(row.machine, row.dtype), ["peak_gflops", "bandwidth_gbs"]]
            if (row.machine, row.dtype) in known.index
            else (math.nan, math.nan)
        )
        gflops = work.flops / row.seconds / 1e9
        if not math.isnan(peak) and not math.isnan(floor):
            line = roofline.Roofline(peak, floor)
            bound, limit = line.bound(work.intensity), line.limit(work.intensity)
        elif not math.isnan(floor):
            bound, limit = work.intensity * floor, "memory (no peak recorded)"
        else:
            bound, limit = math.nan, None
        rows.append(
            {
                "machine": row.machine,
                **{name: getattr(row, name) for name in CASE},
                "seconds": row.seconds,
                "noisy": row.noisy,
                "why_noisy": row.why_noisy,
                "arithmetic": row.arithmetic,
                "intensity": work.intensity,
                "gflops": gflops,
                "bound": bound,
                "of_bound": gflops / bound,
                "limit": limit,
            }
        )
    columns = ["machine", *CASE, "seconds", "noisy", "why_noisy", "arithmetic", "intensity"]
    return pd.DataFrame(rows, columns=[*columns, "gflops", "bound", "of_bound", "limit"])


# --- The fastest way ---------------------------------------------------------------------------


def _agreement_at(verdicts: pd.DataFrame, size: int) -> tuple[bool | None, str]:
    """A backend's verdict for an image of ``size`` from its judged cases (same machine,
    kernel, dtype): that size's, else the nearest judged size's (named), else unknown (None)."""
    tracked = verdicts[verdicts.ok.notna()]
    if tracked.empty:
        return None, ""
    nearest = tracked.iloc[(tracked["size"].map(lambda s: abs(math.log(s / size)))).argmin()]
    where = "" if nearest["size"] == size else f"{nearest['size']}x{nearest['size']}"
    return bool(nearest.ok), where


def use_this(times: pd.DataFrame, agreement: pd.DataFrame) -> pd.DataFrame:
    """Per machine and case of one image: the backend to use, the fastest whose result agrees
    with the reference (``convbench.recommend.choose``: never one that mismatches; one whose
    agreement is unknown only where none is known to agree, then ``verified`` is False), with
    ``agreement_at``: the image size its verdict comes from when this size has none (agreement
    is tracked on smaller images than time), '' otherwise; ``tied``: the others whose spreads
    overlap its own (``recommend.tied_with``); ``noisy`` when its time is; ``mismatched``: the
    faster backends left out for disagreeing."""
    # The decision is recommend's, so the page and `convbench recommend` answer alike.
    from convbench.recommend import Candidate, choose, tied_with

    keys = ["machine", "size", "kernel", "dtype"]
    single = times[times.batch == 1]
    tracked = agreement[agreement.batch == 1]
    rows = []
    for key, group in single.groupby(keys, sort=True):
        machine, size, kernel, dtype = key
        verdicts = tracked[
            (tracked.machine == machine) & (tracked.kernel == kernel) & (tracked.dtype == dtype)
        ]
        candidates, where = [], {}
        for row in group.itertuples():
            ok, where[row.backend] = _agreement_at(verdicts[verdicts.backend == row.backend], size)
            candidates.append(
                Candidate(
                    backend=row.backend,
                    status="mismatch" if ok is False else "ok",
                    median_s=float(row.seconds),
                    q25_s=None if pd.isna(row.q25) else float(row.q25),
                    q75_s=None if pd.isna(row.q75) else float(row.q75),
                    ok=ok,
                    noisy=bool(row.noisy),
                    method=None if pd.isna(row.arithmetic) else row.arithmetic,
                )
            )
        choice, verified = choose(candidates)
        if choice is None:
            continue
        faster = [c for c in candidates if c.median_s < choice.median_s and c.ok is False]
        rows.append(
            {
                **dict(zip(keys, key, strict=True)),
                "backend": choice.backend,
                "seconds": choice.median_s,
                "arithmetic": choice.method,
                "verified": verified,
                "agreement_at": where[choice.backend],
                "tied": ", ".join(tied_with(choice, candidates)),
                "noisy": choice.noisy,
                "mismatched": ", ".join(c.backend for c in faster),
                "candidates": len(candidates),
            }
        )
    columns = [*keys, "backend", "seconds", "arithmetic", "verified", "agreement_at", "tied"]
    return pd.DataFrame(rows, columns=[*columns, "noisy", "mismatched", "candidates"])


def crossover(times: pd.DataFrame) -> pd.DataFrame:
    """Per machine, dtype, image size and kernel size (one image): the fastest backend summing
    directly and the fastest by FFT (the arithmetic its record gives), and ``fft_speedup`` =
    direct time / FFT time (above 1: the FFT wins), ``tied`` when their spreads overlap and
    ``noisy`` when either time is. A side with no result is missing (NaN)."""
    keys = ["machine", "dtype", "size", "kernel"]
    single = times[(times.batch == 1) & times.arithmetic.isin(["direct", "fft"])]
    best = single.sort_values("seconds").drop_duplicates([*keys, "arithmetic"])
    kept = ["backend", "seconds", "q25", "q75", "noisy"]
    direct = best[best.arithmetic == "direct"][[*keys, *kept]]
    fft = best[best.arithmetic == "fft"][[*keys, *kept]]
    out = direct.merge(fft, on=keys, how="outer", suffixes=("_direct", "_fft"))
    out["fft_speedup"] = out["seconds_direct"] / out["seconds_fft"]
    out["tied"] = _tied(out, ("q25_direct", "q75_direct"), ("q25_fft", "q75_fft"))
    out["noisy"] = out["noisy_direct"].eq(True) | out["noisy_fft"].eq(True)
    columns = [*keys, "backend_direct", "seconds_direct", "backend_fft", "seconds_fft"]
    return out[[*columns, "fft_speedup", "tied", "noisy"]].sort_values(keys).reset_index(drop=True)
