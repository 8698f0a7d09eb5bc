"""Waiting for a quiet machine before measuring.

A timing taken while other processes compete for the cores is marked noisy (``convbench.load``);
better to start when they are done. ``wait_for_quiet`` looks at the machine
(``convbench.load.machine_state``) until other processes use at most ``BUSY_CORES`` or the time
allowed has passed, and says what it saw; the caller then goes on either way (its timings carry
the load they were taken under). ``python -m convbench.quiet`` does the same for a shell script
(``scripts/bench.sh``): it prints what keeps the machine busy, and exits 0 when the machine is
quiet, 1 when it is still busy after ``--wait`` seconds.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

from convbench.load import MachineState, machine_state

# Seconds each look at the machine watches it (machine_state's own default): long enough to see
# a process that wakes every few hundred milliseconds, short beside a sweep.
LOOK_SECONDS = 0.5
# Seconds between two looks while waiting.
PAUSE_SECONDS = 4.0


@dataclass(frozen=True)
class Waited:
    """What ``wait_for_quiet`` saw: its last look at the machine, the seconds it waited and how
    many looks it took."""

    state: MachineState
    seconds: float
    looks: int

    @property
    def quiet(self) -> bool:
        return self.state.quiet

    def summary(self) -> str:
        """One sentence: quiet at once, quiet after waiting, or still busy (naming what)."""
        if self.quiet:
            after = "" if self.looks == 1 else f" after {self.seconds:.0f} s of waiting"
            return f"the machine is quiet{after}: {self.state.load}"
        waited = f"after {self.seconds:.0f} s of waiting, " if self.looks > 1 else ""
        return f"{waited}{self.state.warning()}"


def wait_for_quiet(
    timeout: float,
    *,
    look: Callable[[], MachineState] = lambda: machine_state(LOOK_SECONDS),
    pause: Callable[[float], object] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    busy: Callable[[MachineState, float], object] | None = None,
) -> Waited:
    """Look at the machine until it is quiet or ``timeout`` seconds have passed (0: look once),
    pausing ``PAUSE_SECONDS`` between looks (less when less time is left); ``busy(state, left)``
    is told of each busy look and the seconds left to wait."""
    if timeout < 0:
        raise ValueError(f"timeout={timeout!r} must be a number of seconds >= 0")
    start = clock()
    looks = 0
    while True:
        state = look()
        looks += 1
        left = timeout - (clock() - start)
        if state.quiet or left <= 0:
            return Waited(state, clock() - start, looks)
        if busy is not None:
            busy(state, left)
        pause(min(PAUSE_SECONDS, left))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m convbench.quiet",
        description="Wait for other processes to leave the CPUs before measuring; exit 0 when "
        "the machine is quiet, 1 when it is still busy after --wait seconds.",
    )
    parser.add_argument(
        "--wait",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="seconds to wait for a quiet machine (default 60; 0 looks once)",
    )
    args = parser.parse_args(argv)
    if not (math.isfinite(args.wait) and args.wait >= 0):
        parser.error(f"--wait {args.wait!r} must be a finite number of seconds >= 0")

    said = []

    def say(state: MachineState, left: float) -> None:
        if not said:
            print(f"waiting up to {left:.0f} s for a quiet machine: {state.load}", flush=True)
            said.append(state)

    waited = wait_for_quiet(args.wait, busy=say)
    print(waited.summary(), flush=True)
    return 0 if waited.quiet else 1


if __name__ == "__main__":
    sys.exit(main())
