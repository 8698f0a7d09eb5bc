"""Pure functions from the long results frame (``results.load_results``) to the report's tables.

Cases are the suites' parameters (backend, batch, size, kernel, dtype) of the default spec, a
'same'-sized correlation: an output is as large as its image. Every fact about a backend (its
library, device, CPU twin, precision, tolerance) is a column of the frame, as the run recorded
it; where none was recorded it is missing here too, and no table guesses it from a name.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd

CASE = ["backend", "batch", "size", "kernel", "dtype"]
FACTS = ["library", "device", "cpu_twin", "precision", "tolerance"]
ITEMSIZE = {"float16": 2, "bfloat16": 2, "float32": 4, "float64": 8}
NO_MESSAGE = "the benchmark raised an error and no reason was recorded (asv keeps none)"
NO_REASON = "no reason was recorded for this case"


def bytes_moved(size: int, kernel: int, dtype: str, batch: int = 1) -> float:
    """Bytes an op must read and write at least: image, kernel and a 'same'-sized output; NaN
    for a dtype whose size is not known here."""
    return ITEMSIZE.get(dtype, math.nan) * (2 * batch * size * size + kernel * kernel)


def _metric(df: pd.DataFrame, suite: str, metric: str, status: str = "ok") -> pd.DataFrame:
    return df[(df.suite == suite) & (df.metric == metric) & (df.status == status)]


def op_times(df: pd.DataFrame) -> pd.DataFrame:
    """``Conv.time_op``: seconds per op for every machine and case that ran, with its facts."""
    rows = _metric(df, "Conv", "time_op")
    columns = ["machine", *CASE, "value", "q25", "q75", *FACTS]
    return rows[columns].rename(columns={"value": "seconds"}).reset_index(drop=True)


def batch_times(df: pd.DataFrame) -> pd.DataFrame:
    """``ConvBatch.time_op``: seconds per batch for every machine and case that ran."""
    rows = _metric(df, "ConvBatch", "time_op")
    return rows[["machine", *CASE, "value"]].rename(columns={"value": "seconds"})


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
    """Per machine and case, the fastest backend and how much faster it is than the runner-up."""
    rows = []
    keys = ["machine", "dtype", "kernel", "size", "batch"]
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
            }
        )
    return pd.DataFrame(rows, columns=[*keys, "fastest", "seconds", "runner_up", "margin"])


def cpu_vs_gpu(df: pd.DataFrame, times: pd.DataFrame | None = None) -> pd.DataFrame:
    """The same case on a GPU backend and on the CPU backend its record names as its CPU twin
    (torch-cuda and torch-cpu, cupy-gpu and scipy-correlate2d, ...), on any pair of machines.

    ``speedup`` compares the op alone (data already on the device); ``speedup_end_to_end`` holds
    the GPU to the honest comparison, its op plus the host<->device transfers
    (``Transfer.time_end_to_end``), and ``transfer_s`` is that transfer cost by itself.
    ``times`` is ``op_times(df)`` when the caller has it already.
    """
    times = op_times(df) if times is None else times
    e2e = _metric(df, "Transfer", "time_end_to_end")[["machine", *CASE, "value"]]
    gpu = times[(times.device == "gpu") & times.cpu_twin.notna()].merge(
        e2e.rename(columns={"value": "end_to_end_s"}), on=["machine", *CASE], how="left"
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
    ]
    return pairs[columns].sort_values(columns[:8]).reset_index(drop=True)


def gpu_losses(pairs: pd.DataFrame) -> pd.DataFrame:
    """Per CPU/GPU pairing, kernel and dtype: the largest image at which the GPU is slower than
    the CPU (speedup below 1), for the op alone and counting transfers; NaN where it never is."""
    keys = ["cpu_machine", "cpu_backend", "gpu_machine", "gpu_backend", "kernel", "dtype"]
    rows = []
    for key, group in pairs.groupby(keys, sort=True):
        op = group[group.speedup < 1]["size"]
        e2e = group[group.speedup_end_to_end < 1]["size"]
        rows.append(
            {
                **dict(zip(keys, key, strict=True)),
                "op_loses_up_to": op.max() if not op.empty else math.nan,
                "end_to_end_loses_up_to": e2e.max() if not e2e.empty else math.nan,
                "cases": len(group),
            }
        )
    columns = [*keys, "op_loses_up_to", "end_to_end_loses_up_to", "cases"]
    return pd.DataFrame(rows, columns=columns)


def _verdicts(max_rel: pd.Series, tolerance: pd.Series) -> tuple[pd.Series, pd.Series]:
    """max_rel / tolerance, and within it or not: unknown (NA) without a recorded tolerance."""
    ratio = max_rel / tolerance
    ok = (ratio <= 1).astype("boolean").mask(ratio.isna())
    return ratio, ok


def settings_sweep(df: pd.DataFrame) -> pd.DataFrame:
    """``ConvSettings``: time and max_rel per settings variant, and the speed-up over the
    variant its record names as the library default for the same backend, machine and case
    (>1: this setting is faster). ``default`` is True only where a record says so."""
    keys = ["machine", "variant", "size", "kernel"]
    described = ["backend", "setting", "default_setting", "precision"]
    times = _metric(df, "ConvSettings", "time_op")[[*keys, *described, "value"]]
    times = times.rename(columns={"value": "seconds"})
    errors = _metric(df, "ConvSettings", "track_max_rel")[[*keys, "value", "tolerance"]]
    out = times.merge(errors.rename(columns={"value": "max_rel"}), on=keys, how="left")
    out["default"] = out.pop("default_setting").eq(True)
    base = out[out["default"]][["machine", "backend", "size", "kernel", "seconds"]]
    out = out.merge(
        base.rename(columns={"seconds": "default_s"}),
        on=["machine", "backend", "size", "kernel"],
        how="left",
    )
    out["vs_default"] = out["default_s"] / out["seconds"]
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
