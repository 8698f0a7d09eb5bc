"""The report's model: every table the page shows, computed once from the loaded results.

``build_model`` is pure (data in, tables out); the page (``convbench.report.html``) only lays the
model's tables out, so a number appears in two sections because it is one cell of one table,
never because two sections computed it twice.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pandas as pd

from convbench.report import tables
from convbench.report.results import IMPOSSIBLE, Problem


@dataclass(frozen=True)
class Model:
    """What the report knows; every frame is a ``convbench.report.tables`` function's result.

    ``results`` is the long frame of ``load_results`` (one row per benchmark, machine and case,
    with the facts its record holds); ``bandwidth`` is each machine's memory-bandwidth floor in
    GB/s and where it comes from; ``counts`` counts ``results`` by status, the one count of
    skipped and failed results on the page. ``problems`` are what could not be used as it stood
    and ``impossible`` the values set aside (``results.Loaded``): the page lists both.
    """

    results: pd.DataFrame
    environments: Mapping[str, dict]
    bandwidth: Mapping[str, tuple[float, str]]
    machines: list[str]
    times: pd.DataFrame
    fastest: pd.DataFrame
    throughput: pd.DataFrame
    batches: pd.DataFrame
    pairs: pd.DataFrame
    losses: pd.DataFrame
    settings: pd.DataFrame
    agreement: pd.DataFrame
    backends: pd.DataFrame
    not_run: pd.DataFrame
    counts: tables.Counts
    problems: tuple[Problem, ...]
    impossible: pd.DataFrame
    generated: str = ""
    source: str = ""


def build_model(
    results: pd.DataFrame,
    environments: Mapping[str, dict],
    bandwidth: Mapping[str, tuple[float, str]],
    generated: str = "",
    source: str = "",
    problems: Sequence[Problem] = (),
    impossible: pd.DataFrame | None = None,
) -> Model:
    times = tables.op_times(results)
    floors = {machine: floor for machine, (floor, _) in bandwidth.items()}
    pairs = tables.cpu_vs_gpu(results, times)
    return Model(
        results=results,
        environments=environments,
        bandwidth=bandwidth,
        machines=sorted(results.machine.unique()),
        times=times,
        fastest=tables.fastest(times),
        throughput=tables.throughput(times, floors),
        batches=tables.batch_times(results),
        pairs=pairs,
        losses=tables.gpu_losses(pairs),
        settings=tables.settings_sweep(results),
        agreement=tables.agreement(results),
        backends=tables.backends(results),
        not_run=tables.not_run(results, environments),
        counts=tables.counts(results),
        problems=tuple(problems),
        impossible=pd.DataFrame(columns=IMPOSSIBLE) if impossible is None else impossible,
        generated=generated,
        source=source,
    )
