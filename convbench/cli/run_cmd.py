"""``convbench run``: a sweep without asv. Each case is timed with ``convbench.timing`` and its
result checked against the float64 reference; one failing case never stops the others."""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import click
import numpy as np
import pandas as pd
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from convbench.agreement import agreement
from convbench.backends.base import BackendUnavailable
from convbench.failures import describe
from convbench.reference import reference
from convbench.registry import available_backends, get_backend
from convbench.spec import BOUNDARIES, FLOAT_DTYPES, MODES, OPS, ConvSpec
from convbench.suite import make_inputs
from convbench.timing import Task, Timer, format_seconds

# Where a case's work failed. "unsupported": the backend says it cannot do this case (dtype,
# unavailable device); "error": anything else raised; "mismatch": it ran, outside tolerance.
FAILED = ("error", "mismatch")
WRITERS = {
    ".csv": lambda frame, path: frame.to_csv(path, index=False),
    ".json": lambda frame, path: frame.to_json(path, orient="records", indent=1),
    ".parquet": lambda frame, path: frame.to_parquet(path, index=False),
}
READERS = {
    ".csv": pd.read_csv,
    ".json": lambda path: pd.read_json(path, orient="records"),
    ".parquet": pd.read_parquet,
}


@dataclass(frozen=True)
class Case:
    """One combination of the sweep, for one backend."""

    backend: str
    size: int
    kernel: int
    dtype: str
    batch: int
    spec: ConvSpec

    def __str__(self) -> str:
        batch = f",batch={self.batch}" if self.batch > 1 else ""
        return f"{self.backend}[size={self.size},kernel={self.kernel},dtype={self.dtype}{batch}]"

    @property
    def inputs_key(self) -> tuple:
        return (self.size, self.kernel, self.dtype, self.batch)


@dataclass(frozen=True)
class Outcome:
    """A case's record (one flat row for pandas) and its host result when it ran."""

    record: dict
    output: np.ndarray | None = None


def base_record(case: Case) -> dict:
    return {
        "backend": case.backend,
        "size": case.size,
        "kernel": case.kernel,
        "dtype": case.dtype,
        "batch": case.batch,
        "op": case.spec.op,
        "mode": case.spec.mode,
        "boundary": case.spec.boundary,
    }


def failure(case: Case, error: Exception) -> Outcome:
    """The record of a case that raised: 'unsupported' when the backend declined it (a dtype it
    lacks, a device that is absent), otherwise 'error' with the error's first line (named 'out of
    memory' when it is one, whichever framework raised it)."""
    if isinstance(error, (NotImplementedError, BackendUnavailable)):
        return Outcome({**base_record(case), "status": "unsupported", "reason": str(error)})
    return Outcome({**base_record(case), "status": "error", "reason": describe(error)})


def run_case(
    case: Case, image: np.ndarray, kernel: np.ndarray, ref: np.ndarray, min_run_time: float
) -> Outcome:
    """Time ``case`` and check it; any exception becomes the case's status and reason."""
    record = base_record(case)
    try:
        backend = get_backend(case.backend)
        prepared = backend.prepare(image, kernel, case.spec)
        measurement = Timer.of(prepared, Task(case.backend, str(case))).blocked_autorange(
            min_run_time
        )
        output = prepared.result()
        precision = backend.precision(case.dtype)
        agree = agreement(output, ref, terms=case.kernel**2, precision=precision)
    except Exception as error:  # a case's failure (OOM, a library bug) is that case's result
        return failure(case, error)
    # The least traffic any implementation has: read image and kernel once, write the output.
    moved = image.nbytes + kernel.nbytes + output.size * image.itemsize
    record.update(
        status="ok" if agree.ok else "mismatch",
        reason="" if agree.ok else str(agree),
        device=backend.device,
        precision=precision,
        median_s=measurement.median,
        q25_s=measurement.q25,
        q75_s=measurement.q75,
        spread=measurement.spread,
        number=measurement.number,
        samples=len(measurement.raw_times),
        gb_per_s=moved / measurement.median / 1e9,
        max_rel=agree.max_rel,
        max_abs=agree.max_abs,
        rel_l2=agree.rel_l2,
        tolerance=agree.tolerance,
        ok=agree.ok,
        warning="; ".join(measurement.warnings),
    )
    return Outcome(record, output)


def sweep(
    cases: list[Case], min_run_time: float, seed: int, console: Console
) -> Iterator[tuple[Case, Outcome]]:
    """Run every case with a progress bar; inputs and reference are made once per input case."""
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("convbench run", total=len(cases))
        for key, group in itertools.groupby(cases, key=lambda c: c.inputs_key):
            group = list(group)
            try:
                image, kernel = make_inputs(*key, seed=seed)
                ref = reference(image, kernel, group[0].spec)
            except Exception as error:  # bad inputs for this spec: every backend's case fails
                for case in group:
                    yield case, failure(case, error)
                    progress.advance(task)
                continue
            for case in group:
                progress.update(task, description=str(case))
                yield case, run_case(case, image, kernel, ref, min_run_time)
                progress.advance(task)


def build_cases(backends, sizes, kernels, dtypes, batch: int, spec: ConvSpec) -> list[Case]:
    """Cases ordered so that those sharing inputs (and the reference) are adjacent."""
    return [
        Case(b, s, k, d, batch, spec)
        for s, k, d in itertools.product(sizes, kernels, dtypes)
        for b in backends
    ]


def check_backends(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]):
    for name in value:
        try:
            get_backend(name)
        except ValueError as error:  # the registry names the known backends
            raise click.BadParameter(str(error)) from error
    return value


def check_output(ctx: click.Context, param: click.Parameter, value: Path | None):
    if value is not None and value.suffix.lower() not in WRITERS:
        raise click.BadParameter(
            f"{str(value)!r} must end in one of {sorted(WRITERS)} (the format is the suffix)"
        )
    return value


def case_options(command: Callable) -> Callable:
    """The options that choose the cases, shared by ``run`` and ``compare``."""
    options = [
        click.option(
            "--size",
            "sizes",
            type=click.IntRange(min=1),
            multiple=True,
            default=(256, 1024),
            show_default=True,
            help="Image height and width (repeatable).",
        ),
        click.option(
            "--kernel-size",
            "-k",
            "kernels",
            type=click.IntRange(min=1),
            multiple=True,
            default=(3, 7),
            show_default=True,
            help="Kernel height and width (repeatable).",
        ),
        click.option(
            "--dtype",
            "dtypes",
            type=click.Choice(FLOAT_DTYPES),
            multiple=True,
            default=("float32",),
            show_default=True,
            help="Compute dtype (repeatable).",
        ),
        click.option("--op", type=click.Choice(OPS), default="correlate", show_default=True),
        click.option("--mode", type=click.Choice(MODES), default="same", show_default=True),
        click.option(
            "--boundary", type=click.Choice(BOUNDARIES), default="fill", show_default=True
        ),
        click.option(
            "--batch",
            type=click.IntRange(min=1),
            default=1,
            show_default=True,
            help="Images per call (B, H, W).",
        ),
        click.option(
            "--min-run-time",
            type=click.FloatRange(min=0.0),
            default=0.2,
            show_default=True,
            help="Seconds of samples per case, after warm-up.",
        ),
        click.option("--seed", type=int, default=0, show_default=True, help="Input seed."),
    ]
    return functools.reduce(lambda f, option: option(f), reversed(options), command)


def _time_cell(record: dict) -> str:
    return format_seconds(record["median_s"]) if record.get("median_s") else "-"


def console_for_tables() -> Console:
    """Standard output, at least 120 columns wide even when piped (rich assumes 80 there)."""
    return Console(width=max(Console().width, 120))


def reason_notes(records: list[dict]) -> dict[str, int]:
    """A number for each distinct failure reason, in order of first appearance."""
    notes: dict[str, int] = {}
    for r in records:
        if r["status"] != "ok" and r.get("reason"):
            notes.setdefault(r["reason"], len(notes) + 1)
    return notes


def status_cell(record: dict, notes: dict[str, int]) -> str:
    colour = {"ok": "green", "unsupported": "yellow"}.get(record["status"], "red")
    label = "MISMATCH" if record["status"] == "mismatch" else record["status"]
    note = f" [{notes[record['reason']]}]" if record.get("reason") in notes else ""
    return f"[{colour}]{label}[/]{escape(note)}"


def results_table(records: list[dict], title: str) -> Table:
    """One row per case; failure reasons are numbered and listed by ``print_notes``."""
    notes = reason_notes(records)
    table = Table(title=escape(title))
    for column in ("backend", "case", "time", "spread", "GB/s", "max_rel", "tolerance", "ok"):
        table.add_column(column, justify="left" if column in ("backend", "case", "ok") else "right")
    for r in records:
        ran = "median_s" in r and not pd.isna(r["median_s"])
        table.add_row(
            r["backend"],
            case_label(r),
            _time_cell(r) if ran else "-",
            (f"{r['spread']:.0%}" + (" !" if r.get("warning") else "")) if ran else "-",
            f"{r['gb_per_s']:.3g}" if ran else "-",
            f"{r['max_rel']:.2e}" if ran else "-",
            f"{r['tolerance']:.2e}" if ran else "-",
            status_cell(r, notes),
        )
    return table


def case_label(record: dict) -> str:
    batch = f" x{record['batch']}" if record["batch"] > 1 else ""
    return f"{record['size']}x{record['size']} k{record['kernel']} {record['dtype']}{batch}"


def print_notes(console: Console, records: list[dict]) -> None:
    for reason, number in reason_notes(records).items():
        console.print(f"[{number}] {escape(reason)}", highlight=False)
    if any(r.get("warning") for r in records):
        console.print("! spread (IQR / median) over 10%: the machine was busy", highlight=False)


def exit_code(records: list[dict]) -> int:
    """1 when a case errored or mismatched, or when no case ran at all; else 0."""
    if any(r["status"] in FAILED for r in records):
        return 1
    return 0 if any(r["status"] == "ok" for r in records) else 1


def write_records(records: list[dict], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    WRITERS[path.suffix.lower()](pd.DataFrame(records), path)


@click.command("run")
@click.option(
    "--backend",
    "-b",
    "backends",
    multiple=True,
    callback=check_backends,
    help="Backend to run (repeatable); default: every backend available here.",
)
@case_options
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    callback=check_output,
    help="Write one record per case; the suffix picks CSV (.csv), JSON (.json) or Parquet "
    "(.parquet).",
)
def run_command(
    backends, sizes, kernels, dtypes, op, mode, boundary, batch, min_run_time, seed, output
) -> None:
    """Time each backend on each case and check it against the float64 reference.

    Every case is warmed up, then timed with convbench's timer (median and IQR of samples of at
    least 10 ms), and its result compared with the same op in float64. A case the backend cannot
    do (a dtype it lacks, a missing device) is reported as unsupported; an exception or an
    out-of-memory error is that case's error; the other cases go on.

    Exit status: 0 when every case that ran agreed with the reference; 1 when any case errored
    or mismatched, or when no case could run at all; 2 on bad usage.
    """
    spec = ConvSpec(op=op, mode=mode, boundary=boundary)
    names = list(backends) or available_backends()
    cases = build_cases(names, sizes, kernels, dtypes, batch, spec)
    console = console_for_tables()
    outcomes = [outcome for _, outcome in sweep(cases, min_run_time, seed, Console(stderr=True))]
    records = [o.record for o in outcomes]
    console.print(results_table(records, f"convbench run: {spec}"))
    print_notes(console, records)
    if output is not None:
        write_records(records, output)
        console.print(f"wrote {len(records)} records to {output}", highlight=False)
    counts = pd.Series([r["status"] for r in records]).value_counts().to_dict()
    console.print(", ".join(f"{n} {status}" for status, n in sorted(counts.items())))
    raise SystemExit(exit_code(records))
