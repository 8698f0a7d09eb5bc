"""How close convbench.timing lands to torch.utils.benchmark.Timer.blocked_autorange on the CPU.

Both timers time the very same callable (``Prepared.run`` of a convbench backend), alternating,
``--rounds`` times each; the figure is the ratio of the medians of their medians. torch's Timer
sets its own thread count (one unless told otherwise), so both run with ``--threads`` (default 1:
on a small, shared machine two OpenMP threads fighting other processes for two cores make the op
itself, not the timer, vary many-fold).

    python scripts/timer_agreement.py            # prints one line per case and the worst ratio
"""

from __future__ import annotations

import argparse
import statistics

import numpy as np
import torch.utils.benchmark as tb

import convbench
from convbench.threads import set_threads
from convbench.timing import Task, Timer, format_seconds

CASES = (
    ("torch-cpu", 256, 3),
    ("torch-cpu", 1024, 5),
    ("scipy-correlate2d", 256, 3),
    ("scipy-correlate2d", 512, 7),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # Many short rounds, alternating: both timers then see the same drifting load of a shared
    # machine; a few long rounds compare one quiet minute with one busy minute.
    parser.add_argument("--rounds", type=int, default=61)
    parser.add_argument("--min-run-time", type=float, default=0.05)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    threads = set_threads("torch", args.threads)
    rng = np.random.default_rng(0)
    worst = 0.0
    for backend, size, k in CASES:
        image = rng.standard_normal((size, size), dtype=np.float32)
        kernel = rng.standard_normal((k, k), dtype=np.float32)
        prepared = convbench.get_backend(backend).prepare(image, kernel)
        run = prepared.run
        ours, theirs = [], []
        for _ in range(args.rounds):
            timer = Timer.of(prepared, Task(backend, threads=threads))
            ours.append(timer.blocked_autorange(args.min_run_time))
            timer = tb.Timer("run()", globals={"run": run}, num_threads=threads)
            theirs.append(timer.blocked_autorange(min_run_time=args.min_run_time).median)
        a, b = statistics.median(m.median for m in ours), statistics.median(theirs)
        worst = max(worst, abs(a / b - 1))
        others = [m.load.other_cores for m in ours if m.load.other_cores is not None]
        other = f"{statistics.median(others):.2f}" if others else "unknown"
        print(
            f"{backend:18s} {size:5d}x{size:<5d} k={k}  convbench {format_seconds(a):>9s}  "
            f"torch.utils.benchmark {format_seconds(b):>9s}  ratio {a / b:.3f}  "
            f"noisy {sum(m.noisy for m in ours)}/{len(ours)}  other cores {other}"
        )
    print(f"largest difference: {worst:.1%} (threads: {threads})")


if __name__ == "__main__":
    main()
