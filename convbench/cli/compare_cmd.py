"""``convbench compare A B``: two backends on the same cases, or two results sets side by side."""

from __future__ import annotations

from pathlib import Path

import click
import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

from convbench.cli.run_cmd import (
    READERS,
    build_cases,
    case_options,
    console_for_tables,
    print_notes,
    sweep,
)
from convbench.registry import known_names
from convbench.report import load_environments, load_results
from convbench.report import tables as report_tables
from convbench.spec import ConvSpec
from convbench.timing import format_seconds

KEY = ["backend", "size", "kernel", "dtype", "batch"]


def mutual(a: np.ndarray, b: np.ndarray, ref: np.ndarray) -> float:
    """max |a - b| / max |reference|: the two results' distance on the agreement scale."""
    scale = float(np.max(np.abs(ref))) or 1.0
    return float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64)))) / scale


def compare_backends(a: str, b: str, cases_a, options) -> tuple[pd.DataFrame, list[dict]]:
    """Run both backends case by case; each row: both times, the speedup, mutual agreement."""
    cases = build_cases([a, b], *cases_a)
    outcomes = dict(((c.backend, c.inputs_key), o) for c, o in sweep(cases, *options))
    rows = []
    for case in cases[::2]:
        first, second = outcomes[(a, case.inputs_key)], outcomes[(b, case.inputs_key)]
        ra, rb = first.record, second.record
        row = {k: ra[k] for k in ("size", "kernel", "dtype", "batch")}
        row.update(
            time_a=ra.get("median_s", np.nan),
            time_b=rb.get("median_s", np.nan),
            ok_a=ra["status"],
            ok_b=rb["status"],
        )
        row["speedup"] = row["time_a"] / row["time_b"]
        if first.output is not None and second.output is not None:
            # Each is within its tolerance of the reference, so within the sum of each other.
            row["max_rel_ab"] = mutual(first.output, second.output, second.output)
            row["agree"] = row["max_rel_ab"] <= ra["tolerance"] + rb["tolerance"]
        rows.append(row)
    return pd.DataFrame(rows), [o.record for o in outcomes.values()]


def read_results_set(path: Path) -> pd.DataFrame:
    """Records of one results set: a file from ``convbench run --output``, or an asv results
    folder holding one machine."""
    if path.is_file():
        if path.suffix.lower() not in READERS:
            raise click.BadParameter(f"{str(path)!r} must end in one of {sorted(READERS)}")
        frame = READERS[path.suffix.lower()](path)
        return frame[frame.status.isin(["ok", "mismatch"])][[*KEY, "median_s", "ok"]]
    results = load_results(path)
    machines = sorted(results.machine.unique())
    if len(machines) != 1:
        raise click.BadParameter(
            f"{str(path)!r} holds {len(machines)} machines {machines}; "
            "point at one machine's folder"
        )
    times = report_tables.op_times(results).rename(columns={"seconds": "median_s"})
    agree = report_tables.agreement(results, load_environments(path))
    return times[[*KEY, "median_s"]].merge(agree[[*KEY, "ok"]], on=KEY, how="left")


def compare_sets(a: Path, b: Path) -> pd.DataFrame:
    joined = read_results_set(a).merge(read_results_set(b), on=KEY, suffixes=("_a", "_b"))
    joined = joined.rename(columns={"median_s_a": "time_a", "median_s_b": "time_b"})
    joined["speedup"] = joined["time_a"] / joined["time_b"]
    return joined.sort_values(KEY).reset_index(drop=True)


def _time(value: float) -> str:
    return "-" if pd.isna(value) else format_seconds(value)


def _verdict(value) -> str:
    if value is True or value == "ok":
        return "[green]ok[/]"
    if pd.isna(value):
        return "-"
    return f"[red]{'MISMATCH' if value is False else value}[/]"


def render(frame: pd.DataFrame, a: str, b: str, by_backend: bool) -> Table:
    table = Table(title=f"A = {a}   B = {b}   (speedup = time A / time B: B is that many x faster)")
    first = [] if by_backend else ["backend"]
    for column in [*first, "size", "kernel", "dtype", "time A", "time B", "speedup", "A", "B"]:
        table.add_column(column, justify="left" if column in ("backend", "dtype") else "right")
    if by_backend:
        table.add_column("A vs B", justify="right")
        table.add_column("agree")
    for r in frame.itertuples():
        cells = [] if by_backend else [r.backend]
        cells += [str(r.size), str(r.kernel), r.dtype + (f" x{r.batch}" if r.batch > 1 else "")]
        cells += [_time(r.time_a), _time(r.time_b)]
        cells += ["-" if pd.isna(r.speedup) else f"{r.speedup:.3g}x"]
        cells += [_verdict(r.ok_a), _verdict(r.ok_b)]
        if by_backend:
            agree = getattr(r, "agree", np.nan)
            rel = getattr(r, "max_rel_ab", np.nan)
            cells += ["-" if pd.isna(rel) else f"{rel:.2e}", _verdict(agree)]
        table.add_row(*cells)
    return table


@click.command("compare")
@click.argument("a")
@click.argument("b")
@case_options
def compare_command(a, b, sizes, kernels, dtypes, op, mode, boundary, batch, min_run_time, seed):
    """Compare A with B: two backends, or two results sets.

    \b
    Two backends (e.g. `convbench compare torch-cpu tensorflow-cpu`): both run the same cases
    (the options below choose them, as in `convbench run`); per case their times, the speedup
    time A / time B, each one's agreement with the float64 reference, and their distance from
    each other (max |A - B| / max |B|), which must stay within the sum of their tolerances.
    \b
    Two results sets: files written by `convbench run --output` (.csv, .json, .parquet) or asv
    results folders of one machine each (e.g. results/machine-a results/machine-b): the cases
    both hold, side by side; the case options are then ignored.

    Exit status: 0 when every case ran on both and agreed; 1 when a case could not run on one of
    them (unsupported or an error), mismatched the reference, or the two disagree, and when two
    results sets share no case or hold a mismatch; 2 on bad usage.
    """
    names = known_names()
    console = console_for_tables()
    if a in names and b in names:
        spec = ConvSpec(op=op, mode=mode, boundary=boundary)
        frame, records = compare_backends(
            a,
            b,
            (sizes, kernels, dtypes, batch, spec),
            (min_run_time, seed, Console(stderr=True)),
        )
        console.print(render(frame.assign(backend=a), a, b, by_backend=True))
        print_notes(console, records)
        agreed = "agree" in frame and frame["agree"].fillna(False).all()
        raise SystemExit(0 if agreed and all(r["status"] == "ok" for r in records) else 1)
    paths = [Path(a), Path(b)]
    if not all(p.exists() for p in paths):
        raise click.UsageError(
            f"A and B must both be backend names ({names}) or both existing results "
            f"(a file from `convbench run --output`, or an asv results folder): got {a!r}, {b!r}"
        )
    frame = compare_sets(*paths)
    if frame.empty:
        console.print(f"[red]{a} and {b} share no case[/]")
        raise SystemExit(1)
    console.print(render(frame, a, b, by_backend=False))
    ok = frame[["ok_a", "ok_b"]].fillna(True).astype(bool).all(axis=None)
    raise SystemExit(0 if ok else 1)
