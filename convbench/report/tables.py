"""Pure functions from the long results frame (``results.load_results``) to the report's tables.

Cases are the suites' parameters (backend, batch, size, kernel, dtype) of the default spec, a
'same'-sized correlation: an output is as large as its image.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import pandas as pd

from convbench import suite
from convbench.agreement import tolerance

CASE = ["backend", "batch", "size", "kernel", "dtype"]
ITEMSIZE = {"float16": 2, "bfloat16": 2, "float32": 4, "float64": 8}
NO_MESSAGE = (
    "the benchmark raised an error and no reason was recorded (asv keeps none; "
    "scripts/bench.sh has the suites write them to convbench-failures.jsonl)"
)


def is_gpu(backend: str) -> bool:
    return backend.endswith(suite.GPU_SUFFIXES)


# The CPU library a GPU library is compared with, where their names differ: cupy-gpu runs
# scipy.signal's code on CuPy (cupyx.scipy.signal).
CPU_COUNTERPART = {"cupy": "scipy"}


def library(backend: str) -> str:
    """The library a backend runs, named as its CPU backends are (cupy-gpu -> scipy)."""
    name = backend.split("-", 1)[0]
    return CPU_COUNTERPART.get(name, name) if is_gpu(backend) else name


def bytes_moved(size: int, kernel: int, dtype: str, batch: int = 1) -> int:
    """Bytes an op must read and write at least: image, kernel and a 'same'-sized output."""
    return ITEMSIZE[dtype] * (2 * batch * size * size + kernel * kernel)


def _metric(df: pd.DataFrame, suite: str, metric: str, status: str = "ok") -> pd.DataFrame:
    return df[(df.suite == suite) & (df.metric == metric) & (df.status == status)]


def op_times(df: pd.DataFrame) -> pd.DataFrame:
    """``Conv.time_op``: seconds per op for every machine and case that ran."""
    rows = _metric(df, "Conv", "time_op")
    return rows[["machine", *CASE, "value", "q25", "q75"]].rename(columns={"value": "seconds"})


def throughput(times: pd.DataFrame, bandwidth: Mapping[str, float | None]) -> pd.DataFrame:
    """GB/s (bytes read + written over time) and that as a share of the machine's copy rate."""
    out = times.copy()
    moved = [
        bytes_moved(s, k, d, b)
        for s, k, d, b in zip(out["size"], out["kernel"], out["dtype"], out["batch"], strict=True)
    ]
    out["gb_per_s"] = pd.Series(moved, index=out.index, dtype=float) / out["seconds"] / 1e9
    floor = out["machine"].map(lambda m: bandwidth.get(m) or math.nan)
    # The floor is the host's memory; a GPU streams from its own, which is not measured here.
    floor[out["backend"].map(is_gpu)] = math.nan
    out["of_bandwidth"] = out["gb_per_s"] / floor
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


def cpu_vs_gpu(df: pd.DataFrame) -> pd.DataFrame:
    """The same case on a library's CPU backend and its GPU backend (torch-cpu and torch-cuda,
    scipy-* and cupy-gpu, ...), on any pair of machines.

    ``speedup`` compares the op alone (data already on the device); ``speedup_end_to_end`` holds
    the GPU to the honest comparison, its op plus the host<->device transfers
    (``Transfer.time_end_to_end``), and ``transfer_s`` is that transfer cost by itself.
    """
    times = op_times(df)
    e2e = _metric(df, "Transfer", "time_end_to_end")[["machine", *CASE, "value"]]
    gpu = times[times.backend.map(is_gpu)].merge(
        e2e.rename(columns={"value": "end_to_end_s"}), on=["machine", *CASE], how="left"
    )
    cpu = times[~times.backend.map(is_gpu)]
    gpu = gpu.assign(library=gpu.backend.map(library))
    cpu = cpu.assign(library=cpu.backend.map(library))
    pairs = cpu.merge(
        gpu, on=["library", "batch", "size", "kernel", "dtype"], suffixes=("_cpu", "_gpu")
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


def default_setting(backend: str) -> str:
    """The settings-sweep setting that is the library's default (the first value of each
    option in ``suite.SETTING_OPTIONS``), e.g. 'tf32=True cudnn_benchmark=False'."""
    choices = suite.SETTING_OPTIONS.get(backend, {})
    first = {option: values[0] for option, values in choices.items()}
    return suite.split_variant(suite.variant_name(backend, first))[1]


def settings_sweep(df: pd.DataFrame) -> pd.DataFrame:
    """``ConvSettings``: time and max_rel per setting, and the speed-up over the library default
    on the same machine and case (>1: this setting is faster)."""
    keys = ["machine", "backend", "setting", "size", "kernel", "dtype"]
    times = _metric(df, "ConvSettings", "time_op")[[*keys, "value"]]
    times = times.rename(columns={"value": "seconds"})
    errors = _metric(df, "ConvSettings", "track_max_rel")[[*keys, "value"]]
    out = times.merge(errors.rename(columns={"value": "max_rel"}), on=keys, how="left")
    out["default"] = out.setting == out.backend.map(default_setting)
    base = out[out["default"]][["machine", "backend", "size", "kernel", "seconds"]]
    out = out.merge(
        base.rename(columns={"seconds": "default_s"}),
        on=["machine", "backend", "size", "kernel"],
        how="left",
    )
    out["vs_default"] = out["default_s"] / out["seconds"]
    out["precision"] = [
        variant_precision(b, setting) for b, setting in zip(out.backend, out.setting, strict=True)
    ]
    out["tolerance"] = [tolerance(p, k * k) for p, k in zip(out.precision, out.kernel, strict=True)]
    out["ratio"] = out["max_rel"] / out["tolerance"]
    return out.sort_values(keys).reset_index(drop=True)


def variant_precision(backend: str, setting: str) -> str:
    """The float32 arithmetic of a settings variant, read from its options as ``precision_of``
    reads recorded settings: TF32 on a GPU where ``tf32=True`` or JAX's default precision."""
    _, options = suite.parse_variant(f"{backend} {setting}")
    recorded = {"tf32": str(options.get("tf32")), "jax.precision": str(options.get("precision"))}
    return precision_of(backend, suite.SETTING_DTYPE, recorded)


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


def precision_of(backend: str, dtype: str, settings: Mapping[str, str]) -> str:
    """The arithmetic a recorded result ran in, from the settings stored with it.

    A recorded ``precision.<dtype>`` wins; otherwise float32 on a GPU counts as TF32 where the
    recorded settings allowed it (cuDNN's ``allow_tf32``, TensorFlow's ``tf32``, JAX's default
    precision), which is the looser, documented tolerance.
    """
    if f"precision.{dtype}" in settings:
        return settings[f"precision.{dtype}"]
    tf32 = (
        settings.get("cudnn.allow_tf32") == "True"
        or settings.get("tf32") == "True"
        or settings.get("jax.precision") == "default"
    )
    return "tf32" if dtype == "float32" and is_gpu(backend) and tf32 else dtype


def _settings(environments: Mapping[str, dict], machine: str, backend: str) -> dict:
    return environments.get(machine, {}).get("backends", {}).get(backend, {}).get("settings") or {}


def agreement(df: pd.DataFrame, environments: Mapping[str, dict]) -> pd.DataFrame:
    """``Conv.track_max_rel`` against ``convbench.agreement.tolerance(precision, kernel**2)``."""
    rows = _metric(df, "Conv", "track_max_rel")[["machine", *CASE, "value"]]
    rows = rows.rename(columns={"value": "max_rel"}).reset_index(drop=True)
    rows["precision"] = [
        precision_of(b, d, _settings(environments, m, b))
        for m, b, d in zip(rows.machine, rows.backend, rows.dtype, strict=True)
    ]
    rows["tolerance"] = [
        tolerance(p, k * k) for p, k in zip(rows.precision, rows.kernel, strict=True)
    ]
    rows["ratio"] = rows["max_rel"] / rows["tolerance"]
    rows["ok"] = rows["ratio"] <= 1
    return rows


def suite_reason(metric: str, backend: str, size: int, kernel: int, dtype: str, batch: int):
    """Why the default asv suite skips this case by design (``convbench.suite``), or None."""
    reason = suite.skip_reason(backend, size, kernel, dtype, batch)
    kind = metric.split("_", 1)[0]  # time_op -> time, peakmem_op -> peakmem, track_max_rel -> track
    if reason is None and kind in suite.METRICS:
        reason = suite.metric_skip_reason(kind, size, kernel, batch)
    return reason


def _reason(row, environments: Mapping[str, dict], skip_reason) -> str:
    if row.status == "failed":
        return row.reason if isinstance(row.reason, str) and row.reason else NO_MESSAGE
    backend = environments.get(row.machine, {}).get("backends", {}).get(row.backend, {})
    if backend.get("available") is False:
        return backend.get("reason") or f"{row.backend} is not available on {row.machine}"
    reason = skip_reason(row.metric, row.backend, row.size, row.kernel, row.dtype, row.batch)
    return reason or "skipped by the benchmark's setup (NotImplementedError; asv stores NaN)"


def _joined(values) -> str:
    return ", ".join(str(v) for v in sorted(set(values)))


def not_run(
    df: pd.DataFrame,
    environments: Mapping[str, dict],
    skip_reason: Callable[..., str | None] = suite_reason,
) -> pd.DataFrame:
    """Skipped and failed cases, one row per machine, backend, status and reason."""
    rows = df[df.status != "ok"].copy()
    keys = ["machine", "backend", "status", "reason"]
    columns = [*keys, "benchmarks", "dtypes", "sizes", "cases"]
    if rows.empty:
        return pd.DataFrame(columns=columns)
    rows["benchmark"] = rows.suite + "." + rows.metric
    rows["reason"] = [_reason(r, environments, skip_reason) for r in rows.itertuples()]
    summary = (
        rows.groupby(keys)
        .agg(
            benchmarks=("benchmark", _joined),
            dtypes=("dtype", _joined),
            sizes=("size", _joined),
            cases=("size", "size"),
        )
        .reset_index()
    )
    return summary[columns]
