"""What the commands share: the options that choose a sweep's cases and how it is run, their
checks, the wait for a quiet machine, the progress bar, and how a run's records are shown (noisy
timings marked, with why). Text from backends and reasons reaches rich escaped: rich would read
``[cupy]`` in "pip install 'convbench[cupy]'" as markup and drop it."""

from __future__ import annotations

import functools
import math
import signal
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import click
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from convbench.failures import describe
from convbench.load import BUSY_CORES, MachineState
from convbench.quiet import Waited, wait_for_quiet
from convbench.registry import ENTRY_POINT_GROUP, get_backend
from convbench.spec import BOUNDARIES, FLOAT_DTYPES, MODES, OPS
from convbench.sweep import DEFAULT_CASE_TIMEOUT, Output, OutputError, Step, SweepRun
from convbench.threads import default_threads
from convbench.timing import WIDE_SPREAD, format_seconds

# Seconds ``run`` and ``compare`` wait for a quiet machine by default before the first case.
QUIET_WAIT = 60.0


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


class ThreadCounts(click.ParamType):
    """A thread count ``N`` or a range ``A-B`` (every count from A to B), as a tuple of counts."""

    name = "threads"

    def convert(self, value, param, ctx) -> tuple[int, ...]:
        if isinstance(value, tuple):
            return value
        low, dash, high = str(value).strip().partition("-")
        try:
            first = int(low)
            last = int(high) if dash else first
        except ValueError:
            first = last = 0
        if not 1 <= first <= last:
            self.fail(
                f"{value!r} is not a thread count: give N or a range A-B, with 1 <= A <= B",
                param,
                ctx,
            )
        return tuple(range(first, last + 1))


def thread_counts(given: Iterable[tuple[int, ...]]) -> list[int]:
    """The thread counts of the ``--threads`` options, each once, fewest first; when none is
    given, every core this process may use (``default_threads``)."""
    return sorted({count for counts in given for count in counts}) or [default_threads()]


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
        click.option(
            "--threads",
            "threads",
            type=ThreadCounts(),
            multiple=True,
            help="Threads every CPU backend runs with (repeatable, or a range A-B: each case "
            "once per count, to measure scaling). Default: every core this process may use "
            f"({default_threads()} here). Not applicable to GPU backends.",
        ),
    ]
    return functools.reduce(lambda f, option: option(f), reversed(options), command)


def trust_options(command: Callable) -> Callable:
    """The options of what a run does about a busy machine, shared by ``run`` and ``compare``."""
    options = [
        click.option(
            "--wait",
            type=Seconds(),
            default=QUIET_WAIT,
            show_default=True,
            help="Seconds to wait for a quiet machine (other processes using at most "
            f"{BUSY_CORES} cores) before the first case; then the run starts anyway, with a "
            "warning.",
        ),
        click.option(
            "--no-wait",
            is_flag=True,
            help="Start at once, even on a busy machine (what keeps it busy is still said).",
        ),
        click.option(
            "--remeasure/--no-remeasure",
            default=True,
            show_default=True,
            help="Time the cases marked noisy once more at the end, keeping both passes.",
        ),
    ]
    return functools.reduce(lambda f, option: option(f), reversed(options), command)


def await_quiet(seconds: float) -> Waited:
    """Wait up to ``seconds`` for a quiet machine (``convbench.quiet``), saying on standard
    error that it waits (once) and what the wait ended with: quiet, or what keeps it busy."""
    errors = Console(stderr=True)
    said = []

    def busy(state: MachineState, left: float) -> None:
        if not said:
            errors.print(
                f"[yellow]waiting up to {left:.0f} s for a quiet machine[/] (--no-wait: start "
                f"at once): {escape(str(state.load))}",
                highlight=False,
            )
            said.append(state)

    waited = wait_for_quiet(seconds, busy=busy)
    colour = "green" if waited.quiet else "yellow"
    errors.print(f"[{colour}]{escape(waited.summary())}[/]", highlight=False)
    return waited


def console_for_tables() -> Console:
    """Standard output, at least 140 columns wide even when piped (rich assumes 80 there): a
    run's table holds ten columns."""
    return Console(width=max(Console().width, 140))


@contextmanager
def progress_bar(planned: int) -> Iterator[Callable[[Step], None]]:
    """A progress bar on standard error, with the time elapsed and an estimate of the time left
    for the whole run (from the pace of the cases finished so far); the yielded callable
    announces each case starting (``convbench.sweep.Step``: the re-measured cases of a second
    pass add to the total)."""
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    times = (TimeElapsedColumn(), TextColumn("left"), TimeRemainingColumn())
    with Progress(*columns, *times, console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task("convbench", total=planned)

        def announce(step: Step) -> None:
            again = "re-measuring " if step.remeasure else ""
            progress.update(
                task,
                total=step.planned,
                completed=step.done,
                description=escape(f"{again}{step.case}"),
            )

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


def _known(value) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def flagged(record: dict) -> bool:
    """Whether a record's timing comes with a warning: noisy (``convbench.timing``'s reasons) or
    run on more threads than it was given."""
    return bool(record.get("noisy")) or bool(record.get("warning"))


def threads_cell(record: dict) -> str:
    """The threads in force; the count asked beside it when the library ran another (scipy runs
    one whatever is asked); the count asked of a case that did not run; '-' where none applies
    (a GPU backend) or none is known (a library without a thread control)."""
    given, asked = record.get("threads"), record.get("threads_asked")
    if not _known(given):
        return str(int(asked)) if _known(asked) and not _ran(record) else "-"
    if _known(asked) and int(asked) != int(given):
        return f"{int(given)} ({int(asked)} asked)"
    return str(int(given))


def time_cell(record: dict) -> str:
    """The median time, marked ' !' when it comes with a warning (``print_notes`` says why)."""
    if not _ran(record):
        return "-"
    return format_seconds(record["median_s"]) + (" !" if flagged(record) else "")


def results_table(records: list[dict], title: str) -> Table:
    """One row per case: the time (marked ! when noisy), its spread, the cores other processes
    used meanwhile and the threads; failure reasons are numbered and listed by ``print_notes``."""
    notes = reason_notes(records)
    table = Table(title=escape(title))
    columns = ("backend", "case", "threads", "time", "spread", "load", "GB/s", "max_rel")
    for column in (*columns, "tolerance", "ok"):
        table.add_column(column, justify="left" if column in ("backend", "case", "ok") else "right")
    for r in records:
        ran = _ran(r)
        load = r.get("other_cores")
        table.add_row(
            escape(r["backend"]),
            case_label(r),
            threads_cell(r),
            time_cell(r),
            f"{r['spread']:.0%}" if ran else "-",
            f"{load:.2f}" if ran and _known(load) else "-",
            f"{r['gb_per_s']:.3g}" if ran and r.get("gb_per_s") else "-",
            f"{r['max_rel']:.2e}" if ran else "-",
            f"{r['tolerance']:.2e}" if ran else "-",
            status_cell(r, notes),
        )
    return table


def warning_kind(text: str) -> str:
    """What a timing's warning is about, without its numbers: 'wide spread', 'busy machine',
    'too few samples' or 'more threads busy than given' (``convbench.timing``'s words)."""
    if "threads were busy while" in text:
        return "more threads busy than given"
    if text.startswith("only ") and "samples" in text.split(":")[0]:
        return "too few samples"
    return text.split(":")[0]


def warning_kinds(records: Iterable[dict]) -> Counter:
    """How many timings of ``records`` carry each ``warning_kind``."""
    found: Counter = Counter()
    for r in records:
        if _ran(r) and r.get("warning"):
            found.update({warning_kind(text) for text in str(r["warning"]).split("; ")})
    return found


NOISY_NOTE = (
    f"! noisy: the spread (IQR) is over {WIDE_SPREAD:.0%} of the median, other processes used "
    f"over {BUSY_CORES} cores while it was measured (the load column), too few samples bound "
    "the median, or the op kept more threads busy than it was given"
)


def print_notes(console: Console, records: list[dict]) -> None:
    """The numbered failure reasons, then what the ! marks and, when some timings are noisy,
    how many and why, and which were timed again."""
    for reason, number in reason_notes(records).items():
        console.print(f"[{number}] {escape(reason)}", highlight=False)
    timed = [r for r in records if _ran(r)]
    marked = [r for r in timed if flagged(r)]
    twice = [r for r in timed if r.get("passes") == 2]
    if marked:
        console.print(NOISY_NOTE, highlight=False)
        kinds = ", ".join(f"{kind} {n}" for kind, n in sorted(warning_kinds(marked).items()))
        console.print(
            f"{len(marked)} of {len(timed)} timings marked ! ({kinds}): a difference between "
            "them may be the machine's, not the backends'",
            highlight=False,
        )
    if twice:
        still = sum(1 for r in twice if r.get("noisy"))
        second = sum(1 for r in twice if r.get("reported_pass") == 2)
        console.print(
            f"{len(twice)} noisy timings were taken again after the others ({still} still "
            f"noisy); the table shows the second pass for {second} of them (the one not noisy, "
            "else the faster: other work only adds time); both passes are in the records "
            "(pass1_*, pass2_*)",
            highlight=False,
        )


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
