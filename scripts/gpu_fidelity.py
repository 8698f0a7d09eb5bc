"""Do convbench's times of GPU ops agree with CUDA-event device time?

For each GPU backend and float32 case, these numbers per op:

- ``do_bench``: ``triton.testing.do_bench`` (CUDA events around each call, L2 flushed between
  calls, median), the reference; its events are recorded on the stream the op runs on;
- ``events``: CUDA events around a block of as many back-to-back launches as the timer's block,
  on the op's stream, median of 5 blocks: device time with the caches as warm as in the timer's
  blocks, so that a difference from do_bench that is the L2 flush (small images fit in a
  GPU's L2 cache: 50 MB on an H100) shows as such;
- ``timer``: ``convbench.timing.Timer.of(prepared)``, blocks of launches and one device wait;
- ``asv``: the committed asv result of the same case (``Conv.time_op``, and at 8192² the
  settings suite's library-default variant), when ``--results`` holds one for this machine.

CuPy runs on its own current stream; events on another stream time the launch, not the work
(reported 20-80x too small). So CuPy is run on a stream of its own that torch wraps with
``torch.cuda.ExternalStream``, and do_bench's events go on it. JAX runs on streams of its own that
torch cannot see: do_bench cannot time it, and its row says so.

    python scripts/gpu_fidelity.py --results results --output fidelity.csv

On a machine without CUDA, ``--reference wall`` replaces do_bench by a per-call synchronized wall
clock, so the script itself can be checked anywhere (the numbers then mean nothing of the sort).
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import time
from pathlib import Path

import pandas as pd

import convbench
from convbench import suite
from convbench.report import load_results, tables
from convbench.timing import Task, Timer, format_seconds

BACKENDS = ("torch-cuda", "cupy-gpu", "jax-gpu")
SIZES = (1024, 4096, 8192)
KERNELS = (3, 7, 15)
AGREE = 0.03  # the bound, for ops of MIN_OP and more
MIN_OP = 50e-6


def op_stream(stream_ptr: int | None):
    """The torch stream events must go on: the one at ``stream_ptr`` (CuPy's, wrapped), or
    torch's current stream when None."""
    import torch

    return torch.cuda.ExternalStream(stream_ptr) if stream_ptr else torch.cuda.current_stream()


def do_bench_seconds(fn, stream_ptr: int | None = None) -> float:
    """Median of triton's do_bench, in seconds, with its events on the stream ``stream_ptr``
    (None: torch's current stream)."""
    import torch
    from triton.testing import do_bench

    with torch.cuda.stream(op_stream(stream_ptr)):
        try:
            ms = do_bench(fn, warmup=25, rep=200, return_mode="median")
        except TypeError:  # older triton: no return_mode
            ms = do_bench(fn, warmup=25, rep=200, quantiles=[0.5])
    return float(ms) / 1e3


def event_block_seconds(fn, number: int, stream_ptr: int | None = None, blocks: int = 5) -> float:
    """Median over ``blocks`` of the CUDA-event time of ``number`` back-to-back calls of ``fn``,
    per call, with the events on the stream ``stream_ptr`` (None: torch's current stream)."""
    import torch

    stream = op_stream(stream_ptr)
    times = []
    for _ in range(blocks):
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        start.record(stream)
        for _ in range(number):
            fn()
        end.record(stream)
        end.synchronize()
        times.append(start.elapsed_time(end) / 1e3 / number)
    return statistics.median(times)


def wall_seconds(fn, wait) -> float:
    """A stand-in reference for machines without CUDA: median of 50 synchronized calls."""
    times = []
    for _ in range(50):
        start = time.perf_counter()
        fn()
        wait()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def asv_times(results: Path | None, machine: str | None) -> dict[tuple, float]:
    """(backend, size, kernel) -> asv's median per op (float32, library-default settings): the
    report's ``Conv.time_op`` table, and the settings suite's default variants for the sizes
    only it has (8192²)."""
    if results is None or not results.is_dir():
        return {}
    frame = load_results(results)
    if machine is not None:
        frame = frame[frame.machine == machine]
    found = {}
    times = tables.op_times(frame)
    for row in times[(times.dtype == "float32") & (times.batch == 1)].itertuples():
        found[row.backend, row.size, row.kernel] = row.seconds
    sweep = tables.settings_sweep(frame)
    for row in sweep[sweep["default"]].itertuples():
        found.setdefault((row.backend, row.size, row.kernel), row.seconds)
    return found


def measure(backend: str, size: int, kernel: int, reference: str) -> dict:
    """One row: the case's op timed by the reference clock and by convbench's Timer."""
    image, weights = suite.make_inputs(size, kernel, "float32")
    row: dict = {"backend": backend, "size": size, "kernel": kernel}
    stream = contextlib.nullcontext()
    stream_ptr = None
    if backend == "cupy-gpu":
        import cupy

        stream = cupy.cuda.Stream(non_blocking=True)
        stream_ptr = stream.ptr
    with stream:
        prepared = convbench.get_backend(backend).prepare(image, weights)
        prepared.run()  # autotuning, kernel compilation
        timer = Timer.of(prepared, Task(backend, f"{size}x{size} k={kernel}"))
        measured = timer.blocked_autorange(min_run_time=0.5)
        row["timer_s"], row["block"] = measured.median, measured.number
        if reference == "wall":
            row["reference_s"] = wall_seconds(prepared.launch, prepared.wait)
            row["reference"] = "synchronized wall clock (stand-in)"
        elif backend.startswith("jax"):
            row["reference_s"] = float("nan")
            row["reference"] = "none: do_bench's events cannot see JAX's streams"
        else:
            row["reference_s"] = do_bench_seconds(prepared.launch, stream_ptr)
            row["reference"] = "do_bench on the op's stream"
            try:
                row["events_s"] = event_block_seconds(prepared.launch, measured.number, stream_ptr)
            except Exception as error:  # the second reference only: keep do_bench's number
                row["events_error"] = repr(error)
        if backend == "cupy-gpu" and reference != "wall":
            # The pitfall, measured: events on torch's default stream, CuPy's work elsewhere.
            row["wrong_stream_s"] = do_bench_seconds(prepared.launch, None)
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", nargs="+", default=list(BACKENDS))
    parser.add_argument("--sizes", nargs="+", type=int, default=list(SIZES))
    parser.add_argument("--kernels", nargs="+", type=int, default=list(KERNELS))
    parser.add_argument("--reference", choices=["do_bench", "wall"], default="do_bench")
    parser.add_argument("--results", type=Path, help="asv results dir to compare with")
    parser.add_argument("--machine", help="the machine's name under --results")
    parser.add_argument("--output", type=Path, help="write the table here as CSV")
    args = parser.parse_args(argv)

    recorded = asv_times(args.results, args.machine)
    rows = []
    for backend in args.backends:
        found = convbench.get_backend(backend)
        if found.unavailable_reason:
            print(f"{backend}: skipped, {found.unavailable_reason}", file=sys.stderr)
            continue
        for size in args.sizes:
            for kernel in args.kernels:
                try:
                    row = measure(backend, size, kernel, args.reference)
                except Exception as error:  # one case's failure (e.g. OOM) is that case's row
                    row = {"backend": backend, "size": size, "kernel": kernel, "error": repr(error)}
                row["asv_s"] = recorded.get((backend, size, kernel), float("nan"))
                rows.append(row)
                print(row, file=sys.stderr, flush=True)
    table = pd.DataFrame(rows)
    if table.empty:
        print("no GPU backend is available here", file=sys.stderr)
        return 1
    for column in ("timer_s", "asv_s", "reference_s", "events_s"):
        if column not in table:
            table[column] = float("nan")
    table["timer_vs_ref"] = table.timer_s / table.reference_s
    table["asv_vs_ref"] = table.asv_s / table.reference_s
    table["timer_vs_events"] = table.timer_s / table.events_s
    judged = table[table.reference_s >= MIN_OP]
    table["within_3pct"] = (
        (table.timer_vs_ref - 1).abs().le(AGREE)
        & ((table.asv_vs_ref - 1).abs().le(AGREE) | table.asv_s.isna())
    ).where(table.reference_s >= MIN_OP)
    if args.output:
        table.to_csv(args.output, index=False)
    shown = table.assign(
        **{
            c: table[c].map(lambda s: format_seconds(s) if s == s else "-")
            for c in ("reference_s", "events_s", "timer_s", "asv_s")
        }
    )
    columns = ["backend", "size", "kernel", "reference_s", "timer_s", "timer_vs_ref"]
    columns += ["asv_s", "asv_vs_ref", "within_3pct", "events_s", "timer_vs_events"]
    print(shown[columns].to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    worst = (judged[["timer_vs_ref", "asv_vs_ref"]] - 1).abs().max().max()
    print(f"largest difference for ops >= {format_seconds(MIN_OP)}: {worst:.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
