"""What the commands share: the options that choose a sweep's cases, their checks, the progress
bar, and how a run's records are shown. Text from backends and reasons reaches rich escaped:
rich would read ``[cupy]`` in "pip install 'convbench[cupy]'" as markup and drop it."""

from __future__ import annotations

import functools
import math
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import click
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from convbench.failures import describe
from convbench.registry import ENTRY_POINT_GROUP, get_backend
from convbench.spec import BOUNDARIES, FLOAT_DTYPES, MODES, OPS
from convbench.sweep import DEFAULT_CASE_TIMEOUT, Case, Output, OutputError, SweepRun
from convbench.timing import format_seconds


class Seconds(click.ParamType):
    """A finite number of seconds, at least ``minimum`` (or above it, when ``strict``)."""

    name = "seconds"

    def __init__(self, minimum: float = 0.0, strict: bool = False) -> None:
        self.minimum = minimum
        self.strict = strict

    def convert(self, value, param, ctx) -> float:
        if isinstance(value, float):
            return value
        try:
            seconds = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number of seconds", param, ctx)
        low = seconds <= self.minimum if self.strict else seconds < self.minimum
        if not math.isfinite(seconds) or low:
            bound = f"> {self.minimum:g}" if self.strict else f">= {self.minimum:g}"
            self.fail(f"{value!r} is not a finite number of seconds {bound}", param, ctx)
        return seconds


def check_backends(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]):
    """Every name known, and every third-party plugin among them loadable."""
    for name in value:
        try:
            get_backend(name)
        except ValueError as error:  # the registry names the known backends
            raise click.BadParameter(str(error)) from error
        except Exception as error:  # a plugin that raises on load: say which and why
            raise click.BadParameter(
                f"backend plugin {name!r} (entry point group {ENTRY_POINT_GROUP!r}) failed to "
                f"load: {describe(error)}"
            ) from error
    return value


def check_output(ctx: click.Context, param: click.Parameter, value: Path | None):
    """The output can be written, checked before the first case runs."""
    if value is None:
        return None
    try:
        Output(value).check()
    except OutputError as error:
        raise click.BadParameter(str(error)) from error
    return Output(value)


def case_options(command: Callable) -> Callable:
    """The options that choose the cases and how each is measured, shared by ``run`` and
    ``compare``."""
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
            type=Seconds(),
            default=0.2,
            show_default=True,
            help="Seconds of samples per case, after warm-up.",
        ),
        click.option(
            "--seed",
            type=click.IntRange(min=0),
            default=0,
            show_default=True,
            help="Input seed (numpy's: an integer >= 0).",
        ),
        click.option(
            "--case-timeout",
            type=Seconds(strict=True),
            default=DEFAULT_CASE_TIMEOUT,
            show_default=True,
            help="Seconds one case may take (its framework's import included) before its "
            "process is killed and the case recorded as an error.",
        ),
    ]
    return functools.reduce(lambda f, option: option(f), reversed(options), command)


def console_for_tables() -> Console:
    """Standard output, at least 120 columns wide even when piped (rich assumes 80 there)."""
    return Console(width=max(Console().width, 120))


@contextmanager
def progress_bar(cases: list[Case]) -> Iterator[Callable[[Case], None]]:
    """A progress bar on standard error; the yielded callable announces the case starting."""
    position = {case: number for number, case in enumerate(cases)}
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(
        *columns, TimeElapsedColumn(), console=Console(stderr=True), transient=True
    ) as progress:
        task = progress.add_task("convbench", total=len(cases))

        def announce(case: Case) -> None:
            progress.update(task, completed=position[case], description=escape(str(case)))

        yield announce


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
    return f"[{colour}]{escape(label)}[/]{escape(note)}"


def case_label(record: dict) -> str:
    batch = f" x{record['batch']}" if record["batch"] > 1 else ""
    return f"{record['size']}x{record['size']} k{record['kernel']} {record['dtype']}{batch}"


def _ran(record: dict) -> bool:
    median = record.get("median_s")
    return median is not None and math.isfinite(median)


def results_table(records: list[dict], title: str) -> Table:
    """One row per case; failure reasons are numbered and listed by ``print_notes``."""
    notes = reason_notes(records)
    table = Table(title=escape(title))
    for column in ("backend", "case", "time", "spread", "GB/s", "max_rel", "tolerance", "ok"):
        table.add_column(column, justify="left" if column in ("backend", "case", "ok") else "right")
    for r in records:
        ran = _ran(r)
        table.add_row(
            escape(r["backend"]),
            case_label(r),
            format_seconds(r["median_s"]) if ran else "-",
            (f"{r['spread']:.0%}" + (" !" if r.get("warning") else "")) if ran else "-",
            f"{r['gb_per_s']:.3g}" if ran and r.get("gb_per_s") else "-",
            f"{r['max_rel']:.2e}" if ran else "-",
            f"{r['tolerance']:.2e}" if ran else "-",
            status_cell(r, notes),
        )
    return table


def print_notes(console: Console, records: list[dict]) -> None:
    for reason, number in reason_notes(records).items():
        console.print(f"[{number}] {escape(reason)}", highlight=False)
    if any(r.get("warning") for r in records):
        console.print("! spread (IQR / median) over 10%: the machine was busy", highlight=False)


def finish_run(console: Console, run: SweepRun, status: int) -> int:
    """Say how a sweep ended when it did not end as planned; the exit status: 128 + the signal
    number when a signal stopped it (130 for SIGINT, 143 for SIGTERM), else 1 when its records
    could not all be written, else ``status``."""
    if run.write_error:
        console.print(f"[red]{escape(run.write_error)}[/]", highlight=False)
    if run.stopped_by is not None:
        name = signal.Signals(run.stopped_by).name
        console.print(
            f"[yellow]interrupted by {name} after {len(run.outcomes)} of {run.planned} cases; "
            "the finished ones are kept[/]",
            highlight=False,
        )
        return 128 + int(run.stopped_by)
    return 1 if run.write_error else status
