"""What the runs recorded -> one model (pandas tables) -> Jinja2 templates -> one ``index.html``.

``load_results`` reads every machine under a results dir: asv's numbers joined with the run's
per-case records (``convbench.records``); ``build_model`` computes every table once;
``html.page`` lays the model out; ``build_report`` is the one place that measures what is
missing and writes to disk.

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
from convbench.report.results import load_environments, load_results
from convbench.timing import copy_bandwidth

__all__ = [
    "Model",
    "bandwidths",
    "build_model",
    "build_report",
    "load_environments",
    "load_results",
    "read_model",
]


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
    """The model of every result under ``results_dir``; ValueError when there is none."""
    results = load_results(results_dir)
    if results.empty:
        raise ValueError(f"no asv results under {str(results_dir)!r}")
    environments = load_environments(results_dir)
    return build_model(
        results,
        environments,
        bandwidths(environments, sorted(results.machine.unique()), measure),
        generated=datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        source=str(results_dir),
    )


def build_report(
    results_dir: str | Path,
    output_dir: str | Path,
    measure: Callable[[], float] | None = copy_bandwidth,
) -> Path:
    """Read ``results_dir``, write ``output_dir/index.html`` and return its path."""
    # The page needs matplotlib and Jinja2 (the 'report' extra); the results and the tables
    # alone, which ``convbench compare`` reads, do not.
    from convbench.report import html

    page = html.page(read_model(results_dir, measure))
    return write_text(Path(output_dir) / "index.html", page)
