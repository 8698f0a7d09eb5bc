"""``convbench recommend``: the fastest backend for one convolution, and the call that computes
it; a thin shell over ``convbench.recommend``."""

from __future__ import annotations

import json
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import click
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from convbench.cli.common import Seconds, check_backends, console_for_tables
from convbench.cli.explain_cmd import parse_shape
from convbench.recommend import (
    DEFAULT_BUDGET,
    DEVICES,
    Candidate,
    Convolution,
    Measured,
    Recommendation,
    RecommendError,
    from_results,
    measure,
    recommend,
)
from convbench.registry import known_names
from convbench.spec import BOUNDARIES, FLOAT_DTYPES, MODES, OPS, ConvSpec
from convbench.timing import format_seconds

ESTIMATED = "~ estimated from a smaller case, not timed at this size"
NOISY = "! a noisy time: its spread was wide or the machine was busy while it was measured"
METHODS = {"direct": "direct", "fft": "FFT"}


def _shape(ctx: click.Context, param: click.Parameter, value: str) -> tuple[int, int]:
    return parse_shape(value)


@contextmanager
def progress() -> Iterator[Callable[[int, int, str], None]]:
    """A progress bar on standard error; the yielded callable moves it."""
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(
        *columns, TimeElapsedColumn(), console=Console(stderr=True), transient=True
    ) as bar:
        task = bar.add_task("convbench recommend", total=None)

        def announce(done: int, steps: int, text: str) -> None:
            bar.update(task, completed=done, total=steps, description=escape(text))

        yield announce


def _time(candidate: Candidate) -> str:
    if candidate.timed:
        return format_seconds(candidate.median_s) + (" !" if candidate.noisy else "")
    if candidate.seconds is not None:
        return f"~{format_seconds(candidate.seconds)}"
    return "-"


def _spread(candidate: Candidate) -> str:
    if not candidate.timed or candidate.q25_s is None or candidate.q75_s is None:
        return "-"
    return f"{(candidate.q75_s - candidate.q25_s) / candidate.median_s:.0%}"


def _agreement(candidate: Candidate) -> str:
    if candidate.max_rel is None:
        return "-"
    tolerance = f" / {candidate.tolerance:.1e}" if candidate.tolerance is not None else ""
    where = f" (at {candidate.agreement_case})" if candidate.agreement_case else ""
    return f"{candidate.max_rel:.1e}{tolerance}{where}"


def _verdict(candidate: Candidate) -> str:
    if candidate.status in ("unsupported", "skipped"):
        return f"[yellow]{candidate.status}[/]"
    if candidate.status == "error":
        return "[red]error[/]"
    if candidate.ok is None:
        return "unknown" if candidate.timed else "-"
    return "[green]ok[/]" if candidate.ok else "[red]MISMATCH[/]"


def table(answer: Recommendation) -> tuple[Table, dict[str, int]]:
    """The ranked candidates, and the notes numbered in it (reason -> number)."""
    result = Table(
        title=escape(f"convbench recommend: {answer.convolution}"),
        caption=escape(answer.source),
    )
    for column in ("#", "backend", "time", "spread", "speed-up", "max_rel / tol", "ok"):
        result.add_column(
            escape(column), justify="left" if column in ("backend", "ok") else "right"
        )
    result.add_column("method")
    notes: dict[str, int] = {}
    for number, candidate in enumerate(answer.candidates, 1):
        reason = ""
        if candidate.reason and candidate.status != "ok":
            notes.setdefault(candidate.reason, len(notes) + 1)
            reason = f" [{notes[candidate.reason]}]"
        speedup = answer.speedup(candidate)
        result.add_row(
            str(number) if candidate.seconds is not None else "",
            escape(candidate.backend) + (" *" if candidate is answer.choice else ""),
            _time(candidate),
            _spread(candidate),
            "-" if speedup is None else f"{speedup:.3g}x",
            _agreement(candidate),
            _verdict(candidate) + escape(reason),
            METHODS.get(candidate.method or "", "-"),
        )
    return result, notes


def verdict_lines(answer: Recommendation) -> list[str]:
    """The answer in words: the choice, how much faster, the tie, or why there is none."""
    choice = answer.choice
    if choice is None:
        return ["no candidate agreed with the reference: nothing to recommend"]
    method = METHODS.get(choice.method or "", "")
    lines = [
        f"fastest {'agreeing' if answer.verified else 'unverified'} backend: {choice.backend}, "
        f"{format_seconds(choice.median_s)} per call" + (f" ({method})" if method else "")
    ]
    speedup = answer.speedup(choice)
    if answer.baseline is not None and answer.baseline is not choice and speedup:
        lines[0] += f", {speedup:.3g}x faster than {answer.baseline.backend}"
    if not answer.verified:
        lines.append(
            "agreement with the reference was not recorded for these results: the choice is "
            "the fastest, unverified"
        )
    if answer.tied:
        lines.append(
            f"tied with {', '.join(answer.tied)}: their times' interquartile ranges overlap, "
            "the difference lies within the measurements' spread"
        )
    return lines


def print_answer(console: Console, answer: Recommendation) -> None:
    rendered, notes = table(answer)
    console.print(rendered)
    if answer.baseline is not None:
        console.print(
            f"speed-up: how many times faster than {escape(answer.baseline.backend)}",
            highlight=False,
        )
    if any(not c.timed and c.seconds is not None for c in answer.candidates):
        console.print(ESTIMATED, highlight=False)
    for reason, number in notes.items():
        console.print(f"[{number}] {escape(reason)}", highlight=False)
    if any(c.noisy for c in answer.candidates):
        console.print(NOISY, highlight=False)
    for note in answer.notes:
        console.print(f"note: {escape(note)}", highlight=False)
    console.print()
    for line in verdict_lines(answer):
        console.print(escape(line), highlight=False)
    if answer.call_error:
        console.print(f"[red]{escape(answer.call_error)}[/]", highlight=False)
    if answer.call:
        console.print(
            "\nthe call (with numpy arrays image and kernel in scope; the result in out):\n",
            highlight=False,
        )
        # Plain text: pasted as it is printed, never wrapped or marked up.
        click.echo(answer.call, nl=False)


@click.command("recommend")
@click.option(
    "--shape",
    required=True,
    callback=_shape,
    help="Image size: N or HxW, e.g. 4096x4096.",
)
@click.option(
    "--kernel",
    "kernel_shape",
    required=True,
    callback=_shape,
    help="Kernel size: K or KHxKW, e.g. 15x15.",
)
@click.option("--dtype", type=click.Choice(FLOAT_DTYPES), default="float32", show_default=True)
@click.option(
    "--device",
    type=click.Choice(DEVICES),
    default="any",
    show_default=True,
    help="Where the candidates run.",
)
@click.option("--op", type=click.Choice(OPS), default="correlate", show_default=True)
@click.option("--mode", type=click.Choice(MODES), default="same", show_default=True)
@click.option("--boundary", type=click.Choice(BOUNDARIES), default="fill", show_default=True)
@click.option(
    "--fillvalue",
    type=float,
    default=0.0,
    show_default=True,
    help="Value outside the image with --boundary fill.",
)
@click.option(
    "--results",
    "results_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Answer from these stored asv results (the nearest measured case) instead of timing here.",
)
@click.option(
    "--current",
    help="The backend in use now: speed-ups are given over it (default: over the slowest).",
)
@click.option(
    "--budget",
    type=Seconds(strict=True),
    default=DEFAULT_BUDGET,
    show_default=True,
    help="About how many seconds the answer may take, estimates and checks included; a "
    "candidate whose estimated timing would overrun it is not timed (the fastest estimated "
    "always is).",
)
@click.option(
    "--backend",
    "-b",
    "backends",
    multiple=True,
    callback=check_backends,
    help="A candidate to time (repeatable); default: every backend available here.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the answer as JSON.")
def recommend_command(
    shape: tuple[int, int],
    kernel_shape: tuple[int, int],
    dtype: str,
    device: str,
    op: str,
    mode: str,
    boundary: str,
    fillvalue: float,
    results_dir: Path | None,
    current: str | None,
    budget: float,
    backends: tuple[str, ...],
    as_json: bool,
) -> None:
    """The fastest backend for one convolution whose result agrees with the float64
    reference, and the library call that computes it, ready to paste.

    \b
    Without --results, every backend available here that computes the dtype on the device
    (or each --backend) is timed on this machine (in a worker process, as `convbench run`
    does): for a large image first on a smaller case, to estimate a call, then at the asked
    size, fastest estimated first, within --budget. With --results, the answer comes from the
    nearest case measured there, named as such.

    The table ranks the candidates: time per call, its spread, the speed-up over --current
    (or the slowest), the error against the reference with the tolerance, the verdict and the
    arithmetic (direct or FFT). The fastest agreeing backend is marked *; candidates whose
    times' spreads overlap it are named as tied. --json prints {"backend", "median_s",
    "call", "candidates", ...}; "call" is Python source that, with numpy arrays image and
    kernel in scope, assigns the result to out.

    Exit status: 0 with a recommendation; 1 when no candidate agrees or none can run; 2 on bad
    usage; 130 when stopped by SIGINT, 143 by SIGTERM.
    """
    try:
        spec = ConvSpec(op=op, mode=mode, boundary=boundary, fillvalue=fillvalue)
        convolution = Convolution(shape, kernel_shape, dtype, spec, device)
    except (ValueError, TypeError) as error:
        raise click.UsageError(str(error)) from error
    try:
        if results_dir is not None:
            found = from_results(convolution, results_dir)
            check_current(current, [c.backend for c in found.candidates])
        else:
            check_current(current, [])
            with progress() as announce:
                found = measure(convolution, budget, backends=backends or None, announce=announce)
    except RecommendError as error:
        raise click.ClickException(str(error)) from error
    answer = recommend(convolution, found.candidates, found.source, current, found.notes)
    if as_json:
        click.echo(json.dumps(answer.to_json(), indent=1))
    else:
        print_answer(console_for_tables(), answer)
    if found.stopped_by is not None:
        name = signal.Signals(found.stopped_by).name
        click.echo(f"interrupted by {name}: the answer is of the candidates timed so far", err=True)
    raise SystemExit(exit_status(found, answer))


def check_current(current: str | None, measured: list[str]) -> None:
    """``--current`` names a known backend or one of the stored results."""
    names = sorted({*known_names(), *measured})
    if current is not None and current not in names:
        raise click.BadParameter(
            f"unknown backend {current!r}; must be one of: {names}", param_hint="'--current'"
        )


def exit_status(found: Measured, answer: Recommendation) -> int:
    """128 + the signal's number when one stopped the timing (the answer is of what finished),
    else 0 with a recommendation and 1 without."""
    if found.stopped_by is not None:
        return 128 + int(signal.Signals(found.stopped_by))
    return 0 if answer.choice is not None else 1
