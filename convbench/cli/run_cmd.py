"""``convbench run``: a sweep without asv, a thin shell over ``convbench.sweep``."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import click
from rich.markup import escape

from convbench.cli.common import (
    await_quiet,
    case_options,
    check_backends,
    check_output,
    console_for_tables,
    finish_run,
    print_notes,
    progress_bar,
    results_table,
    thread_counts,
    trust_options,
)
from convbench.registry import available_backends
from convbench.spec import ConvSpec
from convbench.sweep import (
    FAILED,
    STREAM_SUFFIX,
    Output,
    OutputError,
    SweepOptions,
    build_cases,
    run_sweep,
)


def exit_code(records: list[dict]) -> int:
    """1 when a case errored or mismatched, or when no case ran at all; else 0."""
    if any(r["status"] in FAILED for r in records):
        return 1
    return 0 if any(r["status"] == "ok" for r in records) else 1


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
    type=click.Path(path_type=Path),
    callback=check_output,
    help="Write one record per case; the suffix picks CSV (.csv), JSON (.json), JSON lines "
    f"(.jsonl) or Parquet (.parquet). Each case is also appended to <output>{STREAM_SUFFIX} "
    "as it finishes; that file is removed once the output is written.",
)
@trust_options
def run_command(
    backends,
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
    output: Output | None,
    wait,
    no_wait,
    remeasure,
) -> None:
    """Time each backend on each case and check it against the float64 reference.

    Every case is warmed up, then timed with convbench's timer (median and IQR of samples of at
    least 10 ms), and its result compared with the same op in float64. A case the backend cannot
    do (a dtype it lacks, a missing device) is reported as unsupported; an exception, an
    out-of-memory error, a crash of the backend's process or a case over --case-timeout is that
    case's error; the other cases go on.

    Every timing carries its trust: its spread, the cores other processes used while it was
    measured (load), the threads it was given, and a ! mark when it is noisy (why is said below
    the table; the records hold noisy and noisy_reasons). Every CPU backend runs with the same
    thread count (--threads, default every core this process may use); --threads 1-4 measures
    each case at 1, 2, 3 and 4 threads. Before the first case the run waits up to --wait seconds
    for a quiet machine (--no-wait: not at all), and at the end it times the noisy cases once
    more (--no-remeasure: not), keeping both passes in the records.

    Backends run in a worker process, so a backend that crashes, hangs or exits loses its case
    only. With --output, each finished case is appended to <output>.partial.jsonl (JSON lines)
    at once, and the output is written at the end, atomically; after a kill -9 the finished
    cases are in the .partial.jsonl file (a later run to the same output refuses to overwrite
    it). Ctrl-C (SIGINT) or SIGTERM stop the sweep and write the cases finished so far.

    Exit status: 0 when every case that ran agreed with the reference; 1 when any case errored
    or mismatched, when no case could run at all, or when the records could not be written;
    2 on bad usage; 130 when stopped by SIGINT, 143 by SIGTERM.
    """
    spec = ConvSpec(op=op, mode=mode, boundary=boundary)
    names = list(backends) or available_backends()
    cases = build_cases(names, sizes, kernels, dtypes, batch, spec, thread_counts(threads))
    console = console_for_tables()
    options = SweepOptions(min_run_time, seed, case_timeout)
    await_quiet(0.0 if no_wait else wait)
    try:
        with progress_bar(len(cases)) as announce:
            run = run_sweep(cases, options, output, announce, remeasure=remeasure)
    except OutputError as error:
        raise click.ClickException(str(error)) from error
    records = run.records
    console.print(results_table(records, f"convbench run: {spec}"))
    print_notes(console, records)
    if output is not None and not run.write_error:
        console.print(
            f"wrote {len(records)} records to {escape(str(output.path))}", highlight=False
        )
    counts = Counter(r["status"] for r in records)
    console.print(", ".join(f"{n} {status}" for status, n in sorted(counts.items())))
    raise SystemExit(finish_run(console, run, exit_code(records)))
