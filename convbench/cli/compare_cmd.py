"""``convbench compare A B``: two backends on the same cases, or two results sets side by side."""

from __future__ import annotations

from pathlib import Path

import click
import numpy as np
import pandas as pd
from rich.markup import escape
from rich.table import Table

from convbench.cli.common import (
    case_options,
    check_backends,
    console_for_tables,
    finish_run,
    print_notes,
    progress_bar,
)
from convbench.failures import describe
from convbench.registry import known_names
from convbench.spec import ConvSpec
from convbench.sweep import SweepOptions, SweepRun, build_cases, read_records, run_sweep
from convbench.timing import format_seconds

KEY = ["backend", "size", "kernel", "dtype", "batch"]
TIMES = ["median_s", "q25_s", "q75_s"]
WITHIN_SPREAD = (
    "~ the two times' interquartile ranges overlap: the difference lies within the "
    "measurements' spread"
)


def mutual(a: np.ndarray, b: np.ndarray, ref: np.ndarray) -> float:
    """max |a - b| / max |reference|: the two results' distance on the agreement scale."""
    scale = float(np.max(np.abs(ref))) or 1.0
    return float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64)))) / scale


def _times(record: dict, side: str) -> dict:
    return {f"{name}_{side}": record.get(name, np.nan) for name in TIMES}


def compare_backends(
    a: str, b: str, cases_a: tuple, options: SweepOptions
) -> tuple[pd.DataFrame, SweepRun]:
    """Run both backends case by case; each row: both times and spreads, each one's status,
    and their mutual agreement. Cases cut short by an interruption are left out."""
    cases = build_cases([a, b], *cases_a)
    with progress_bar(cases) as announce:
        run = run_sweep(cases, options, announce=announce, keep_output=True)
    outcomes = {(o.record["backend"], *(o.record[k] for k in KEY[1:])): o for o in run.outcomes}
    rows = []
    for case in cases[::2]:
        first = outcomes.get((a, *case.inputs_key[:4]))
        second = outcomes.get((b, *case.inputs_key[:4]))
        if first is None or second is None:
            continue
        ra, rb = first.record, second.record
        row = {k: ra[k] for k in KEY[1:]} | _times(ra, "a") | _times(rb, "b")
        row.update(ok_a=ra["status"], ok_b=rb["status"])
        if first.output is not None and second.output is not None:
            # Each is within its tolerance of the reference, so within the sum of each other.
            row["max_rel_ab"] = mutual(first.output, second.output, second.output)
            row["agree"] = row["max_rel_ab"] <= ra["tolerance"] + rb["tolerance"]
        rows.append(row)
    return pd.DataFrame(rows), run


def read_asv_folder(path: Path) -> pd.DataFrame:
    """Times and agreement of one machine's asv results folder. The one use of the report's
    readers here, imported where used: they pull in the plotting stack."""
    from convbench.report import load_results
    from convbench.report import tables as report_tables

    results = load_results(path)
    machines = sorted(results.machine.unique())
    if len(machines) != 1:
        raise click.BadParameter(
            f"{str(path)!r} holds {len(machines)} machines {machines}; "
            "point at one machine's folder"
        )
    times = report_tables.op_times(results).rename(
        columns={"seconds": "median_s", "q25": "q25_s", "q75": "q75_s"}
    )
    agree = report_tables.agreement(results)
    return times[[*KEY, *TIMES]].merge(agree[[*KEY, "ok"]], on=KEY, how="left")


def read_results_set(path: Path) -> pd.DataFrame:
    """Records of one results set: a file from ``convbench run --output`` (or its
    ``.partial.jsonl`` stream), or an asv results folder holding one machine."""
    try:
        if path.is_dir():
            return read_asv_folder(path)
        frame = read_records(path)
        return frame[frame.status.isin(["ok", "mismatch"])][[*KEY, *TIMES, "ok"]]
    except click.BadParameter:
        raise
    except Exception as error:  # whatever a corrupt or foreign file makes its reader raise
        raise click.BadParameter(
            f"cannot read {str(path)!r} as convbench results (a file from `convbench run "
            f"--output` or an asv results folder of one machine): {describe(error)}"
        ) from error


def compare_sets(a: Path, b: Path) -> pd.DataFrame:
    joined = read_results_set(a).merge(read_results_set(b), on=KEY, suffixes=("_a", "_b"))
    return joined.sort_values(KEY).reset_index(drop=True)


def speed_cell(row) -> str:
    """How many times faster or slower A is than B; '~' first when their interquartile ranges
    overlap (``WITHIN_SPREAD``)."""
    if pd.isna(row.median_s_a) or pd.isna(row.median_s_b) or row.median_s_a <= 0:
        return "-"
    ratio = row.median_s_b / row.median_s_a
    if ratio == 1:
        words = "same"
    elif ratio > 1:
        words = f"{ratio:.3g}x faster"
    else:
        words = f"{1 / ratio:.3g}x slower"
    overlap = max(row.q25_s_a, row.q25_s_b) <= min(row.q75_s_a, row.q75_s_b)
    return f"~{words}" if overlap else words


def _time(value: float) -> str:
    return "-" if pd.isna(value) else format_seconds(value)


def _verdict(value) -> str:
    """A status word ("ok", "unsupported", ...) or an agreement verdict (True, False, NA)."""
    if pd.isna(value):  # no verdict: no tolerance was recorded for the case
        return "-"
    if isinstance(value, str):
        return "[green]ok[/]" if value == "ok" else f"[red]{escape(value)}[/]"
    return "[green]ok[/]" if value else "[red]MISMATCH[/]"


def render(frame: pd.DataFrame, a: str, b: str, by_backend: bool) -> Table:
    table = Table(
        title=escape(f"A = {a}   B = {b}   (A vs B: how many times faster or slower A is than B)")
    )
    first = [] if by_backend else ["backend"]
    for column in [*first, "size", "kernel", "dtype", "time A", "time B", "A vs B", "A", "B"]:
        table.add_column(column, justify="left" if column in ("backend", "dtype") else "right")
    if by_backend:
        table.add_column("max_rel A-B", justify="right")
        table.add_column("agree")
    for r in frame.itertuples():
        cells = [] if by_backend else [escape(r.backend)]
        cells += [str(r.size), str(r.kernel), r.dtype + (f" x{r.batch}" if r.batch > 1 else "")]
        cells += [_time(r.median_s_a), _time(r.median_s_b), speed_cell(r)]
        cells += [_verdict(r.ok_a), _verdict(r.ok_b)]
        if by_backend:
            agree = getattr(r, "agree", np.nan)
            rel = getattr(r, "max_rel_ab", np.nan)
            cells += ["-" if pd.isna(rel) else f"{rel:.2e}", _verdict(agree)]
        table.add_row(*cells)
    return table


def print_footnote(console, frame: pd.DataFrame) -> None:
    if any(speed_cell(r).startswith("~") for r in frame.itertuples()):
        console.print(WITHIN_SPREAD, highlight=False)


@click.command("compare")
@click.argument("a")
@click.argument("b")
@case_options
def compare_command(
    a, b, sizes, kernels, dtypes, op, mode, boundary, batch, min_run_time, seed, case_timeout
):
    """Compare A with B: two backends, or two results sets.

    \b
    Two backends (e.g. `convbench compare torch-cpu tensorflow-cpu`): both run the same cases
    (the options below choose them, as in `convbench run`, each backend in a worker process);
    per case their times, how many times faster or slower A is than B (marked ~ where the two
    times' interquartile ranges overlap), each one's agreement with the float64 reference, and
    their distance from each other (max |A - B| / max |B|), which must stay within the sum of
    their tolerances.
    \b
    Two results sets: files written by `convbench run --output` (.csv, .json, .jsonl,
    .parquet, or the .partial.jsonl stream of a run that did not end) or asv results folders of
    one machine each (e.g. results/machine-a results/machine-b): the cases both hold, side by
    side; the case options are then ignored.

    Exit status: 0 when every case ran on both and agreed; 1 when a case could not run on one of
    them (unsupported or an error), mismatched the reference, or the two disagree, and when two
    results sets share no case or hold a mismatch; 2 on bad usage, an unreadable or corrupt
    results set included; 130 when stopped by SIGINT, 143 by SIGTERM (two backends).
    """
    names = known_names()
    console = console_for_tables()
    if a in names and b in names:
        check_backends(None, None, (a, b))
        spec = ConvSpec(op=op, mode=mode, boundary=boundary)
        frame, run = compare_backends(
            a,
            b,
            (sizes, kernels, dtypes, batch, spec),
            SweepOptions(min_run_time, seed, case_timeout),
        )
        console.print(render(frame.assign(backend=a), a, b, by_backend=True))
        print_footnote(console, frame)
        print_notes(console, run.records)
        agreed = "agree" in frame and frame["agree"].fillna(False).all()
        status = 0 if agreed and all(r["status"] == "ok" for r in run.records) else 1
        raise SystemExit(finish_run(console, run, status))
    paths = [Path(a), Path(b)]
    if not all(p.exists() for p in paths):
        raise click.UsageError(
            f"A and B must both be backend names ({names}) or both existing results "
            f"(a file from `convbench run --output`, or an asv results folder): got {a!r}, {b!r}"
        )
    frame = compare_sets(*paths)
    if frame.empty:
        console.print(f"[red]{escape(a)} and {escape(b)} share no case[/]")
        raise SystemExit(1)
    console.print(render(frame, a, b, by_backend=False))
    print_footnote(console, frame)
    ok = frame[["ok_a", "ok_b"]].fillna(True).astype(bool).all(axis=None)
    raise SystemExit(0 if ok else 1)
