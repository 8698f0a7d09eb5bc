"""How far apart the same timings land when taken again in separate processes on one machine.

Each run is a fresh ``convbench run`` (its own driver and worker processes, every CPU library
given the same thread count, ``--threads``), with no wait for a quiet machine and no second pass:
the runs are back to back and each number is its run's own. The figure per case is the
run-to-run difference, ``max / min - 1`` of its medians over the runs; the script prints it per
case with the background load each run saw and whether its timing was noisy, then the median
over the cases. The goal for ops of a millisecond or more is 3%: a difference above it with a
busy machine beside it is the machine, not the timer.

    python scripts/reproducibility.py                 # 3 runs, all cores, 1 s per case
    python scripts/reproducibility.py --runs 5 --threads 1 --json repro.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from convbench import environment
from convbench.load import machine_state
from convbench.sweep import load_stream
from convbench.threads import default_threads
from convbench.timing import format_seconds

BACKENDS = ("torch-cpu", "tensorflow-cpu", "jax-cpu", "scipy-correlate2d")
SIZE = 1024
KERNELS = (3, 7)
DTYPE = "float32"
# Ops at least this long are held to the goal; shorter ones are listed for information.
LONG_OP = 1e-3
GOAL = 0.03


def case_name(record: dict) -> str:
    return f"{record['backend']} {record['size']}x{record['size']} k={record['kernel']} {DTYPE}"


def run_once(threads: int, min_run_time: float) -> dict[str, dict]:
    """One fresh ``convbench run`` of every case: its records by case."""
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "run.jsonl"
        chosen = [arg for name in BACKENDS for arg in ("-b", name)]
        kernels = [arg for kernel in KERNELS for arg in ("-k", str(kernel))]
        command = [
            sys.executable, "-m", "convbench", "run", *chosen, "--size", str(SIZE), *kernels,
            "--dtype", DTYPE, "--threads", str(threads), "--min-run-time", str(min_run_time),
            "--no-wait", "--no-remeasure", "-o", str(out),
        ]  # fmt: skip
        # Exit status 1 says a case could not run here (a library not installed): its record
        # says why, and the others count.
        done = subprocess.run(command, capture_output=True, text=True)
        if not out.exists():
            raise SystemExit(f"convbench run wrote no records ({done.returncode}):\n{done.stderr}")
        return {case_name(record): record for record in load_stream(out)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=default_threads())
    parser.add_argument("--min-run-time", type=float, default=1.0)
    parser.add_argument("--json", type=Path, help="also write every run's records here")
    args = parser.parse_args()

    print(f"machine: {environment.cpu_model()}, threads per library: {args.threads}")
    runs = []
    for index in range(args.runs):
        state = machine_state()
        print(f"run {index + 1}: " + (state.warning() or f"quiet ({state.load})"))
        runs.append(run_once(args.threads, args.min_run_time))

    differences = []
    for case in runs[0]:
        facts = [run[case] for run in runs if run.get(case, {}).get("status") == "ok"]
        if len(facts) < 2:
            print(f"{case:40s} not measured: {runs[0][case].get('reason')}")
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
