"""What ``scripts/bench.sh`` needs around ``asv run`` to give numbers a user can trust.

asv run ... | python scripts/asv_trust.py progress
    passes asv's output through, adding to each of its progress lines ("[ 12.50%] ...") the
    time elapsed and an estimate of the time left, from asv's own share done so far.

python scripts/asv_trust.py noisy results/<machine> --commit HASH
    prints, one argument a line, ``--bench REGEX`` for each timing of that commit that is
    noisy, as the report judges asv's numbers (``convbench.report.tables.noisy_reasons``: a
    spread over 10% of the median, fewer than 6 samples, other processes busy on more than a
    quarter of a core per the case's record), ready for ``asv run --append-samples``: the
    second pass adds its samples to the first's. How many, and why, goes to standard error.
"""

from __future__ import annotations

import argparse
import ast
import itertools
import json
import math
import re
import sys
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from convbench import records
from convbench.cli.common import warning_kind

# asv's progress lines start with the share of the run done: "[ 12.50%] ".
PROGRESS = re.compile(r"^\[\s*(\d+(?:\.\d+)?)%\]")


def clock_text(seconds: float) -> str:
    minutes, seconds = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


def with_times(line: str, elapsed: float) -> str:
    """``line`` with the time elapsed and left appended when it is one of asv's progress
    lines; the time left is the elapsed time scaled by the share still to do."""
    found = PROGRESS.match(line)
    if found is None:
        return line
    done = float(found.group(1)) / 100
    left = f", about {clock_text(elapsed * (1 - done) / done)} left" if done > 0 else ""
    return f"{line.rstrip()}   [{clock_text(elapsed)} elapsed{left}]"


def progress(lines: Iterable[str], out=sys.stdout, clock=time.monotonic) -> None:
    start = clock()
    for line in lines:
        out.write(with_times(line.rstrip("\n"), clock() - start) + "\n")
        out.flush()


@dataclass(frozen=True)
class Timing:
    """One asv timing: its benchmark (``module.Suite.metric``), parameters as asv writes them
    (reprs, in order), and why it is noisy (empty when it is not)."""

    benchmark: str
    params: tuple[str, ...]
    why: tuple[str, ...]

    @property
    def regex(self) -> str:
        """asv's ``--bench`` for this combination alone: asv matches ``name(p0, p1, ...)``."""
        return f"^{re.escape(self.benchmark)}\\({re.escape(', '.join(self.params))}\\)$"


def timings(machine_dir: Path, commit: str) -> Iterator[Timing]:
    """Every timing asv stored for ``commit`` in ``machine_dir``, judged with its record."""
    from asv.results import Results

    from convbench.report.tables import noisy_reasons

    meta = json.loads((machine_dir.parent / "benchmarks.json").read_text())
    kept = records.load(machine_dir / records.FILE, commit=commit)
    for path in sorted(machine_dir.glob(f"{commit[:8]}-*.json")):
        result = Results.load(str(path))
        if result.commit_hash != commit:
            continue
        for benchmark in result.get_all_result_keys():
            if meta.get(benchmark, {}).get("type") != "time":
                continue
            names = meta[benchmark]["param_names"]
            params = result.get_result_params(benchmark)
            values = result.get_result_value(benchmark, params)
            stats = result.get_result_stats(benchmark, params)
            combos = itertools.product(*params) if params else [()]
            for combo, value, stat in zip(combos, values, stats, strict=True):
                if value is None or not math.isfinite(value) or not stat:
                    continue  # skipped or failed: nothing to measure again
                literal = {n: ast.literal_eval(v) for n, v in zip(names, combo, strict=True)}
                suite_metric = ".".join(benchmark.split(".")[-2:])
                record = kept.get(records.case_key(suite_metric, literal), {})
                other = record.get("other_cores")
                why = noisy_reasons(
                    (stat["q_75"] - stat["q_25"]) / value,
                    stat.get("repeat", math.nan),
                    math.nan if other is None else other,
                )
                yield Timing(benchmark, tuple(combo), why)


def noisy(machine_dir: Path, commit: str, out=sys.stdout, err=sys.stderr) -> int:
    """Print ``--bench`` and a regex for each noisy timing; the count and reasons to ``err``."""
    found = list(timings(machine_dir, commit))
    again = [timing for timing in found if timing.why]
    for timing in again:
        out.write(f"--bench\n{timing.regex}\n")
    kinds = Counter(warning_kind(why) for timing in again for why in timing.why)
    said = ", ".join(f"{kind} {n}" for kind, n in sorted(kinds.items()))
    err.write(f"{len(again)} of {len(found)} timings are noisy{f' ({said})' if said else ''}\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/asv_trust.py", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("progress", help="add elapsed and left times to asv's progress lines")
    finder = commands.add_parser("noisy", help="--bench regexes of the noisy timings")
    finder.add_argument("machine_dir", type=Path, help="results/<machine>")
    finder.add_argument("--commit", required=True, help="the full commit hash benchmarked")
    args = parser.parse_args(argv)
    if args.command == "progress":
        progress(sys.stdin)
        return 0
    return noisy(args.machine_dir, args.commit)


if __name__ == "__main__":
    sys.exit(main())
