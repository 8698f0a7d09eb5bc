"""What the runs recorded -> one model (pandas tables) -> Jinja2 templates -> one ``index.html``.

``read_results`` reads every machine under a results dir: asv's numbers joined with the run's
per-case records (``convbench.records``), and every problem met on the way (a file that cannot be
read, values that do not fit their benchmark, impossible values); ``build_model`` computes every
table once; ``html.page`` lays the model out, its problems included; ``read_model`` and
``write_page`` are the one place that measures what is missing and the one that writes to disk.

The memory-bandwidth floor of a machine is the ``memory_bandwidth_gbs`` recorded in its
``convbench-environment.json`` when present; otherwise, for the machine the report is built on
(``convbench.environment.default_machine_name()``), a numpy copy is measured at report time;
other machines show none.
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from convbench.atomic import write_text
from convbench.environment import default_machine_name
from convbench.report.model import Model, build_model
from convbench.report.results import (
    Loaded,
    Problem,
    ResultsWarning,
    load_environments,
    load_results,
    read_results,
)
from convbench.timing import copy_bandwidth

__all__ = [
    "Loaded",
    "Model",
    "NoResults",
    "Problem",
    "ResultsWarning",
    "bandwidths",
    "build_model",
    "build_report",
    "load_environments",
    "load_results",
    "read_model",
    "read_results",
    "write_page",
]


class NoResults(ValueError):
    """No result under a results dir could be used; ``problems`` says what was found instead."""

    def __init__(self, results_dir: str | Path, problems: tuple[Problem, ...]) -> None:
        self.problems = problems
        found = f" ({len(problems)} problem(s) with its files)" if problems else ""
        super().__init__(f"no readable asv results under {str(results_dir)!r}{found}")


def bandwidths(
    environments: Mapping[str, dict],
    machines: Iterable[str],
    measure: Callable[[], float] | None = copy_bandwidth,
    host: str | None = None,
) -> dict[str, tuple[float, str]]:
    """Each machine's memory-bandwidth floor in GB/s and where the number comes from."""
    host = default_machine_name() if host is None else host
    found = {}
    for machine in machines:
        recorded = environments.get(machine, {}).get("memory_bandwidth_gbs")
        if recorded:
            found[machine] = (float(recorded), "recorded with the results")
        elif machine == host and measure is not None:
            found[machine] = (measure(), f"measured on {host} when this report was built")
        else:
            found[machine] = (math.nan, "not recorded")
    return found


def read_model(
    results_dir: str | Path, measure: Callable[[], float] | None = copy_bandwidth
) -> Model:
    """The model of every result under ``results_dir``, its problems included; NoResults when
    there is no result to show."""
    loaded = read_results(results_dir)
    if loaded.results.empty:
        raise NoResults(results_dir, loaded.problems)
    machines = sorted(loaded.results.machine.unique())
    return build_model(
        loaded.results,
        loaded.environments,
        bandwidths(loaded.environments, machines, measure),
        generated=datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        source=str(results_dir),
        problems=loaded.problems,
        impossible=loaded.impossible,
        reproducibility=loaded.reproducibility,
    )


def write_page(model: Model, output_dir: str | Path) -> Path:
    """Write ``output_dir/index.html`` of ``model`` atomically (a reader, or a writer killed
    mid-way, leaves the previous page or the whole new one) and return its path."""
    # The page needs matplotlib and Jinja2 (the 'report' extra); the results and the tables
    # alone, which ``convbench compare`` reads, do not.
    from convbench.report import html

    # A folder that cannot be made fails now, not after the page is drawn.
    Path(output_dir).mkdir(parents=True, exist_ok=True)
    return write_text(Path(output_dir) / "index.html", html.page(model))


def build_report(
    results_dir: str | Path,
    output_dir: str | Path,
    measure: Callable[[], float] | None = copy_bandwidth,
) -> Path:
    """Read ``results_dir``, write ``output_dir/index.html`` and return its path."""
    return write_page(read_model(results_dir, measure), output_dir)
