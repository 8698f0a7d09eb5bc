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
    python scripts/reproducibility.py --save results/MACHINE   # for that machine's report

``--save DIR`` writes the figure and every case's medians to ``DIR/convbench-reproducibility.json``
(``convbench.environment.REPRODUCIBILITY_FILE``), beside the machine's asv results: the report
states it in the machine's section (``scripts/bench.sh`` runs this after a full run).
"""

from __future__ import annotations

import argparse
import datetime
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from convbench import environment
from convbench.atomic import write_text
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


def summary(runs: list[dict[str, dict]], threads: int) -> dict:
    """The figure of ``runs`` (each a run's records by case), with every case's medians, the
    background load each run saw and how many of its timings were noisy: what ``--save`` writes
    (``convbench.report.results`` reads it)."""
    cases = []
    for case in runs[0]:
        facts = [run[case] for run in runs if run.get(case, {}).get("status") == "ok"]
        if len(facts) < 2:
            cases.append({"case": case, "measured": False, "reason": runs[0][case].get("reason")})
            continue
        medians = [f["median_s"] for f in facts]
        cases.append(
            {
                "case": case,
                "measured": True,
                "medians_s": medians,
                "difference": max(medians) / min(medians) - 1,
                "held_to_goal": min(medians) >= LONG_OP,
                "other_cores": [f["other_cores"] for f in facts],
                "noisy": sum(bool(f["noisy"]) for f in facts),
            }
        )
    held = [case for case in cases if case.get("held_to_goal")]
    differences = [case["difference"] for case in held]
    loads = [c for case in cases for c in case.get("other_cores", []) if c is not None]
    largest = max(held, key=lambda case: case["difference"], default=None)
    return {
        # Not "version": asv reads every .json beside its results and would take a version for
        # its own results format (and offer to "update" the file).
        "convbench_reproducibility": 1,
        "measured": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "cpu": environment.cpu_model(),
        "threads": threads,
        "runs": len(runs),
        "long_op_s": LONG_OP,
        "goal": GOAL,
        "cases_held": len(held),
        "median_difference": statistics.median(differences) if differences else None,
        "largest_difference": largest["difference"] if largest else None,
        "largest_case": largest["case"] if largest else None,
        "most_other_cores": max(loads) if loads else None,
        "noisy": sum(case.get("noisy", 0) for case in cases),
        "cases": cases,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=default_threads())
    parser.add_argument("--min-run-time", type=float, default=1.0)
    parser.add_argument("--json", type=Path, help="also write every run's records here")
    parser.add_argument(
        "--save", type=Path, metavar="DIR", help="write the figure to DIR for the report"
    )
    args = parser.parse_args()
    if args.runs < 2:
        parser.error(f"--runs {args.runs}: a difference needs at least 2 runs")

    print(f"machine: {environment.cpu_model()}, threads per library: {args.threads}")
    runs = []
    for index in range(args.runs):
        state = machine_state()
        print(f"run {index + 1}: " + (state.warning() or f"quiet ({state.load})"))
        runs.append(run_once(args.threads, args.min_run_time))

    found = summary(runs, args.threads)
    for case in found["cases"]:
        name = case["case"]
        if not case["measured"]:
            print(f"{name:40s} not measured: {case['reason']}")
            continue
        medians = ", ".join(format_seconds(m) for m in case["medians_s"])
        load = ", ".join("unknown" if c is None else f"{c:.2f}" for c in case["other_cores"])
        print(
            f"{name:40s} medians {medians:30s} difference {case['difference']:6.1%}  "
            f"other cores {load}  noisy {case['noisy']}/{len(case['medians_s'])}"
        )
    if found["median_difference"] is not None:
        print(
            f"median run-to-run difference over {found['cases_held']} cases of "
            f"{LONG_OP * 1e3:g} ms or more: {found['median_difference']:.1%} (goal {GOAL:.0%}; "
            f"largest {found['largest_difference']:.1%})"
        )
    if args.json:
        args.json.write_text(json.dumps({"threads": args.threads, "runs": runs}, indent=1))
    if args.save:
        path = args.save / environment.REPRODUCIBILITY_FILE
        write_text(path, json.dumps(found, indent=1) + "\n")
        print(f"saved: {path}")


if __name__ == "__main__":
    main()
