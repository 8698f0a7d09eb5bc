"""How far apart the same timings land when taken again in separate processes on one machine.

Each run is a fresh Python process that sets every library to the same thread count
(``convbench.threads``) and times each case with ``Timer.of(prepared).blocked_autorange``, the
way a sweep does. The figure per case is the run-to-run difference, ``max / min - 1`` of its
medians over the runs; the script prints it per case with the background load each run saw,
then the median over the cases. The goal for ops of a millisecond or more is 3%: a difference
above it with a busy machine beside it is the machine, not the timer.

    python scripts/reproducibility.py                 # 3 runs, all cores, 1 s per case
    python scripts/reproducibility.py --runs 5 --threads 1 --json repro.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from convbench import environment
from convbench.load import machine_state
from convbench.threads import default_threads, thread_env
from convbench.timing import format_seconds

BACKENDS = ("torch-cpu", "tensorflow-cpu", "jax-cpu", "scipy-correlate2d")
SIZE = 1024
KERNELS = (3, 7)
DTYPE = "float32"
# Ops at least this long are held to the goal; shorter ones are listed for information.
LONG_OP = 1e-3
GOAL = 0.03


@dataclass(frozen=True)
class Case:
    backend: str
    kernel: int

    def __str__(self) -> str:
        return f"{self.backend} {SIZE}x{SIZE} k={self.kernel} {DTYPE}"


CASES = tuple(Case(b, k) for b in BACKENDS for k in KERNELS)


def worker(threads: int, min_run_time: float) -> None:
    """One run: time every case in this process, one JSON line of facts per case on stdout."""
    import convbench
    from convbench.threads import set_threads
    from convbench.timing import Task, Timer

    rng = np.random.default_rng(0)
    image = rng.standard_normal((SIZE, SIZE)).astype(DTYPE)
    for case in CASES:
        backend = convbench.get_backend(case.backend)
        if backend.unavailable_reason:
            print(json.dumps({"case": str(case), "skipped": backend.unavailable_reason}))
            continue
        given = set_threads(backend.library, threads)
        kernel = rng.standard_normal((case.kernel, case.kernel)).astype(DTYPE)
        prepared = backend.prepare(image, kernel)
        task = Task(case.backend, str(case), threads=given)
        measurement = Timer.of(prepared, task).blocked_autorange(min_run_time)
        print(json.dumps({"case": str(case), **measurement.facts()}), flush=True)


def run_once(threads: int, min_run_time: float) -> dict[str, dict]:
    """One fresh process (its libraries start with ``threads``): facts by case."""
    flags = ["--worker", f"--threads={threads}", f"--min-run-time={min_run_time}"]
    done = subprocess.run(
        [sys.executable, __file__, *flags],
        env=thread_env(threads),
        capture_output=True,
        text=True,
        check=True,
    )
    rows = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    return {row["case"]: row for row in rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=default_threads())
    parser.add_argument("--min-run-time", type=float, default=1.0)
    parser.add_argument("--json", type=Path, help="also write every run's facts here")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.threads, args.min_run_time)
        return

    print(f"machine: {environment.cpu_model()}, threads per library: {args.threads}")
    runs = []
    for index in range(args.runs):
        state = machine_state()
        print(f"run {index + 1}: " + (state.warning() or f"quiet ({state.load})"))
        runs.append(run_once(args.threads, args.min_run_time))

    differences = []
    for case in map(str, CASES):
        facts = [run[case] for run in runs if case in run and "median_s" in run[case]]
        if len(facts) < 2:
            print(f"{case:40s} not measured: {runs[0].get(case, {}).get('skipped', 'failed')}")
            continue
        medians = [f["median_s"] for f in facts]
        difference = max(medians) / min(medians) - 1
        if min(medians) >= LONG_OP:
            differences.append(difference)
        load = ", ".join(
            "unknown" if f["other_cores"] is None else f"{f['other_cores']:.2f}" for f in facts
        )
        noisy = sum(f["noisy"] for f in facts)
        print(
            f"{case:40s} medians {', '.join(format_seconds(m) for m in medians):30s} "
            f"difference {difference:6.1%}  other cores {load}  noisy {noisy}/{len(facts)}"
        )
    if differences:
        middle = statistics.median(differences)
        print(
            f"median run-to-run difference over {len(differences)} cases of {LONG_OP * 1e3:g} "
            f"ms or more: {middle:.1%} (goal {GOAL:.0%}; largest {max(differences):.1%})"
        )
    if args.json:
        args.json.write_text(json.dumps({"threads": args.threads, "runs": runs}, indent=1))


if __name__ == "__main__":
    main()
