"""``convbench compare A B``: two backends on the same cases, or two results sets side by side.

Each row says how many times faster or slower A is than B, marked ``~`` when the two times'
interquartile ranges overlap (the difference lies within their spread) and ``!`` when either
time is noisy (``convbench.timing``); the conclusion below the table counts both. The rows of
two results sets, and what differs between two machines' environment records, come from the
report's own tables (``convbench.report.tables.machine_ratios`` and ``environment_diff``).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import click
import numpy as np
import pandas as pd
from rich.markup import escape
from rich.table import Table

from convbench.cli.common import (
    await_quiet,
    case_options,
    check_backends,
    console_for_tables,
    finish_run,
    print_notes,
    progress_bar,
    thread_counts,
    trust_options,
    warning_kind,
)
from convbench.failures import describe
from convbench.registry import known_names
from convbench.spec import ConvSpec
from convbench.sweep import Case, SweepOptions, SweepRun, build_cases, read_records, run_sweep
from convbench.timing import format_seconds

# A case as the report's tables name it; a row's times and their trust, per side (``_a``, ``_b``).
CASE = ["backend", "batch", "size", "kernel", "dtype"]
TIMED = ["seconds", "q25", "q75", "spread", "noisy", "why_noisy"]
WITHIN_SPREAD = (
    "~ the two times' interquartile ranges overlap: the difference lies within the "
    "measurements' spread"
)
NOISY = "! A's or B's time is noisy"


def mutual(a: np.ndarray, b: np.ndarray, ref: np.ndarray) -> float:
    """max |a - b| / max |reference|: the two results' distance on the agreement scale."""
    scale = float(np.max(np.abs(ref))) or 1.0
    return float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64)))) / scale


def _tables():
    """The report's tables, imported where used: the report package is not small."""
    from convbench.report import tables

    return tables


def _side(record: dict, side: str) -> dict:
    """A run record's time and trust as one side of a row."""
    q25, q75, median = (record.get(n, np.nan) for n in ("q25_s", "q75_s", "median_s"))
    return {
        f"seconds_{side}": median,
        f"q25_{side}": q25,
        f"q75_{side}": q75,
        f"spread_{side}": record.get("spread", np.nan),
        f"noisy_{side}": bool(record.get("noisy")),
        f"why_noisy_{side}": record.get("noisy_reasons") or "",
    }


def pairs(cases: list[Case], a: str, b: str) -> list[tuple[Case, Case]]:
    """A's and B's cases that time the same inputs with the same thread count (a GPU backend's
    case, which has none, pairs with each of the other's)."""
    found = []
    for first in (c for c in cases if c.backend == a):
        for second in (c for c in cases if c.backend == b):
            threads = (first.threads, second.threads)
            same = first.threads == second.threads or None in threads
            if first.inputs_key == second.inputs_key and same:
                found.append((first, second))
    return found


def with_verdicts(rows: pd.DataFrame) -> pd.DataFrame:
    """Rows of both sides' times with ``ratio`` (A's time / B's), ``tied`` (the interquartile
    ranges overlap: ``tables.tied``) and ``noisy`` (either side is)."""
    tied = _tables().tied
    rows = rows.copy()
    rows["ratio"] = rows.seconds_a / rows.seconds_b
    rows["tied"] = [
        tied(*values) for values in zip(rows.q25_a, rows.q75_a, rows.q25_b, rows.q75_b, strict=True)
    ]
    rows["noisy"] = rows.noisy_a | rows.noisy_b
    return rows


def compare_backends(
    a: str, b: str, cases_a: tuple, threads: list[int], options: SweepOptions, remeasure: bool
) -> tuple[pd.DataFrame, SweepRun]:
    """Run both backends case by case (at each thread count); each row: both times with their
    spread and trust, each one's status, and their mutual agreement. Cases cut short by an
    interruption are left out."""
    cases = build_cases([a, b], *cases_a, threads)
    with progress_bar(len(cases)) as announce:
        run = run_sweep(cases, options, announce=announce, keep_output=True, remeasure=remeasure)
    outcomes = dict(zip(cases, run.outcomes, strict=False))  # the cases that finished, in order
    rows = []
    for case_a, case_b in pairs(cases, a, b):
        first, second = outcomes.get(case_a), outcomes.get(case_b)
        if first is None or second is None:
            continue
        ra, rb = first.record, second.record
        row = {k: ra[k] for k in CASE} | {"threads": case_a.threads or case_b.threads}
        row |= _side(ra, "a") | _side(rb, "b")
        row.update(ok_a=ra["status"], ok_b=rb["status"])
        if first.output is not None and second.output is not None:
            # Each is within its tolerance of the reference, so within the sum of each other.
            row["max_rel_ab"] = mutual(first.output, second.output, second.output)
            row["agree"] = row["max_rel_ab"] <= ra["tolerance"] + rb["tolerance"]
        rows.append(row)
    if not rows:
        return pd.DataFrame(), run
    return with_verdicts(pd.DataFrame(rows)), run


@dataclass(frozen=True)
class ResultsSet:
    """One side of a comparison of results sets: each timed case (``CASE``, ``threads`` asked,
    ``TIMED``, ``ok``: agreement with the reference) and the machine's environment record
    (None for a run file, which has none)."""

    times: pd.DataFrame
    environment: dict | None = None


def _one_machine(path: Path, machines: list[str]) -> None:
    if len(machines) != 1:
        raise click.BadParameter(
            f"{str(path)!r} holds {len(machines)} machines {machines}; "
            "point at one machine's folder"
        )


def read_asv_folder(path: Path) -> ResultsSet:
    """Times, trust and agreement of one machine's asv results folder, and its environment
    record, through the report's readers and tables."""
    from convbench.report.results import read_results

    tables = _tables()
    loaded = read_results(path)
    _one_machine(path, sorted(loaded.results.machine.unique()))
    results = loaded.results
    times = tables.op_times(results)
    agree = tables.agreement(results)
    times = times.merge(agree[[*CASE, "ok"]], on=CASE, how="left")
    environment = next(iter(loaded.environments.values()), None)
    return ResultsSet(times[[*CASE, "threads", *TIMED, "ok"]], environment)


def read_run_file(path: Path) -> ResultsSet:
    """Times, trust and agreement of a file from ``convbench run --output``: each record's own
    ``noisy`` and reasons; a file written before records had them is judged as the report
    judges asv's numbers (``tables.trust``)."""
    frame = read_records(path)
    frame = frame[frame.status.isin(["ok", "mismatch"])]
    # A stream holds a re-measured case twice: its later line is the one that counts.
    asked = "threads_asked" if "threads_asked" in frame else "threads"
    frame = frame.assign(threads=frame.get(asked, np.nan))
    frame = frame.drop_duplicates([*CASE, "threads"], keep="last")
    times = frame.rename(columns={"median_s": "seconds", "q25_s": "q25", "q75_s": "q75"})
    if "noisy" in times:
        times = times.assign(
            noisy=times.noisy.fillna(False).astype(bool),
            why_noisy=times.noisy_reasons.fillna("").astype(str),
        )
    else:
        other = times.other_cores if "other_cores" in times else np.nan
        known = times.assign(value=times.seconds, other_cores=other)
        times = _tables().trust(known).drop(columns="value")
    return ResultsSet(times[[*CASE, "threads", *TIMED, "ok"]].reset_index(drop=True))


def read_results_set(path: Path) -> ResultsSet:
    """One results set: a file from ``convbench run --output`` (or its ``.partial.jsonl``
    stream), or an asv results folder holding one machine."""
    try:
        return read_asv_folder(path) if path.is_dir() else read_run_file(path)
    except click.BadParameter:
        raise
    except Exception as error:  # whatever a corrupt or foreign file makes its reader raise
        raise click.BadParameter(
            f"cannot read {str(path)!r} as convbench results (a file from `convbench run "
            f"--output` or an asv results folder of one machine): {describe(error)}"
        ) from error


def _one_count(times: pd.DataFrame) -> pd.DataFrame:
    """Each case once: at its largest thread count (every core, unless asked otherwise)."""
    return times.sort_values("threads", na_position="first").drop_duplicates(CASE, keep="last")


def compare_sets(a: ResultsSet, b: ResultsSet) -> pd.DataFrame:
    """The cases both sets timed, side by side (``tables.machine_ratios``), with each side's
    agreement. Two thread sweeps are lined up count by count; otherwise each case once per
    side, at its largest thread count (two machines each use all their cores by default), and
    ``threads_a``/``threads_b`` say what each ran with."""
    tables = _tables()
    counts = [set(side.times.threads.dropna()) for side in (a, b)]
    if min(len(found) for found in counts) > 1:
        groups = [
            (count, a.times[a.times.threads == count], b.times[b.times.threads == count])
            for count in sorted(counts[0] & counts[1])
        ]
    else:
        groups = [(None, _one_count(a.times), _one_count(b.times))]
    found = []
    for count, times_a, times_b in groups:
        times = pd.concat([times_a.assign(machine="A"), times_b.assign(machine="B")])
        if times_a.empty or times_b.empty:
            continue
        ratios = tables.machine_ratios(times, "A", "B", times=times)
        extra = [
            side.rename(columns={"threads": f"threads_{name}", "ok": f"ok_{name}"})[
                [*CASE, f"threads_{name}", f"ok_{name}"]
            ]
            for name, side in (("a", times_a), ("b", times_b))
        ]
        ratios = ratios.merge(extra[0], on=CASE).merge(extra[1], on=CASE)
        found.append(ratios.assign(threads=count))
    if not found:
        return pd.DataFrame()
    return pd.concat(found).sort_values([*CASE, "threads"]).reset_index(drop=True)


def speed_words(ratio: float) -> str:
    """A's time / B's as words: how many times faster or slower A is."""
    if ratio == 1:
        return "same"
    if ratio < 1:
        return f"{1 / ratio:.3g}x faster"
    return f"{ratio:.3g}x slower"


def speed_cell(row) -> str:
    """How many times faster or slower A is than B; '~' first when their interquartile ranges
    overlap (``WITHIN_SPREAD``), ' !' after when either time is noisy (``NOISY``)."""
    if pd.isna(row.seconds_a) or pd.isna(row.seconds_b) or row.seconds_b <= 0:
        return "-"
    words = speed_words(row.seconds_a / row.seconds_b)
    return f"{'~' if _yes(row.tied) else ''}{words}{' !' if _yes(row.noisy) else ''}"


def _yes(value) -> bool:
    """True for a true verdict; False for a false or unknown one (None, NA)."""
    return not pd.isna(value) and bool(value)


def _time(value: float) -> str:
    return "-" if pd.isna(value) else format_seconds(value)


def _verdict(value) -> str:
    """A status word ("ok", "unsupported", ...) or an agreement verdict (True, False, NA)."""
    if pd.isna(value):  # no verdict: no tolerance was recorded for the case
        return "-"
    if isinstance(value, str):
        return "[green]ok[/]" if value == "ok" else f"[red]{escape(value)}[/]"
    return "[green]ok[/]" if value else "[red]MISMATCH[/]"


def _count(value) -> str:
    return "-" if pd.isna(value) else str(int(value))


def render(frame: pd.DataFrame, a: str, b: str, by_backend: bool) -> Table:
    table = Table(
        title=escape(f"A = {a}   B = {b}   (A vs B: how many times faster or slower A is than B)")
    )
    first = [] if by_backend else ["backend"]
    sides = ["threads"] if by_backend else ["threads A", "threads B"]
    columns = [*first, "size", "kernel", "dtype", *sides, "time A", "time B", "A vs B", "A", "B"]
    for column in columns:
        table.add_column(column, justify="left" if column in ("backend", "dtype") else "right")
    if by_backend:
        table.add_column("max_rel A-B", justify="right")
        table.add_column("agree")
    for r in frame.itertuples():
        cells = [] if by_backend else [escape(r.backend)]
        cells += [str(r.size), str(r.kernel), r.dtype + (f" x{r.batch}" if r.batch > 1 else "")]
        cells += [_count(r.threads)] if by_backend else [_count(r.threads_a), _count(r.threads_b)]
        cells += [_time(r.seconds_a), _time(r.seconds_b), speed_cell(r)]
        cells += [_verdict(r.ok_a), _verdict(r.ok_b)]
        if by_backend:
            agree = getattr(r, "agree", np.nan)
            rel = getattr(r, "max_rel_ab", np.nan)
            cells += ["-" if pd.isna(rel) else f"{rel:.2e}", _verdict(agree)]
        table.add_row(*cells)
    return table


def conclusion(frame: pd.DataFrame) -> str:
    """What the rows say, with how far to trust it: how often A is faster, slower, or within
    the spread, and how many of those rows rest on a noisy time."""
    timed = frame[frame.seconds_a.notna() & frame.seconds_b.notna()]
    tied = timed.tied.fillna(False).astype(bool)
    faster = int(((timed.ratio < 1) & ~tied).sum())
    slower = int(((timed.ratio > 1) & ~tied).sum())
    noisy = int(timed.noisy.sum())
    text = (
        f"of {len(timed)} cases timed on both, A is faster in {faster}, slower in {slower}, "
        f"and within the spread (~) in {int(tied.sum())}"
    )
    if noisy:
        text += f"; {noisy} rest on a noisy time (!): they may say more of the machine"
    return text


def print_footnote(console, frame: pd.DataFrame) -> None:
    """What ~ and ! mean (when the table has them), why the noisy times are noisy, and the
    conclusion."""
    if frame.tied.fillna(False).astype(bool).any():
        console.print(WITHIN_SPREAD, highlight=False)
    if frame.noisy.any():
        why: Counter = Counter()
        for text in (*frame.why_noisy_a, *frame.why_noisy_b):
            why.update({warning_kind(part) for part in str(text or "").split("; ") if part})
        kinds = ", ".join(f"{kind} {n}" for kind, n in sorted(why.items()))
        console.print(f"{NOISY}: {kinds}" if kinds else NOISY, highlight=False)
    console.print(conclusion(frame), highlight=False)


def print_environment_diff(console, a: ResultsSet, b: ResultsSet) -> None:
    """What differs between the two machines' environment records (``tables.environment_diff``),
    when both sets are asv folders with one."""
    if a.environment is None or b.environment is None:
        return
    differs = _tables().environment_diff(a.environment, b.environment)
    if differs.empty:
        console.print("the two environment records hold the same facts", highlight=False)
        return
    table = Table(title="what differs between the two machines")
    for column in ("fact", "A", "B"):
        table.add_column(column)
    for row in differs.itertuples():
        table.add_row(escape(row.fact), escape(row.a), escape(row.b))
    console.print(table)


@click.command("compare")
@click.argument("a")
@click.argument("b")
@case_options
@trust_options
def compare_command(
    a,
    b,
    sizes,
    kernels,
    dtypes,
    op,
    mode,
    boundary,
    batch,
    min_run_time,
    seed,
    case_timeout,
    threads,
    wait,
    no_wait,
    remeasure,
):
    """Compare A with B: two backends, or two results sets.

    \b
    Two backends (e.g. `convbench compare torch-cpu tensorflow-cpu`): both run the same cases
    (the options below choose them, as in `convbench run`, each backend in a worker process,
    each CPU backend with the same --threads); per case their times, how many times faster or
    slower A is than B (marked ~ where the two times' interquartile ranges overlap, ! where
    either time is noisy), each one's agreement with the float64 reference, and their distance
    from each other (max |A - B| / max |B|), which must stay within the sum of their
    tolerances. As `run` does, it first waits for a quiet machine (--wait, --no-wait) and at
    the end times the noisy cases again (--no-remeasure: not).
    \b
    Two results sets: files written by `convbench run --output` (.csv, .json, .jsonl,
    .parquet, or the .partial.jsonl stream of a run that did not end) or asv results folders of
    one machine each (e.g. results/machine-a results/machine-b): the cases both hold, side by
    side with the threads each ran with, and for two machines what differs between their
    environment records; the case options are then ignored.

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
        await_quiet(0.0 if no_wait else wait)
        frame, run = compare_backends(
            a,
            b,
            (sizes, kernels, dtypes, batch, spec),
            thread_counts(threads),
            SweepOptions(min_run_time, seed, case_timeout),
            remeasure,
        )
        if not frame.empty:
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
    first, second = (read_results_set(path) for path in paths)
    frame = compare_sets(first, second)
    print_environment_diff(console, first, second)
    if frame.empty:
        console.print(f"[red]{escape(a)} and {escape(b)} share no case[/]")
        raise SystemExit(1)
    console.print(render(frame, a, b, by_backend=False))
    print_footnote(console, frame)
    ok = frame[["ok_a", "ok_b"]].fillna(True).astype(bool).all(axis=None)
    raise SystemExit(0 if ok else 1)
