"""The report's model: every table the page shows, computed once from the loaded results.

``build_model`` is pure (data in, tables out); the page (``convbench.report.html``) only lays the
model's tables out, so a number appears in two sections because it is one cell of one table,
never because two sections computed it twice.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

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

    ``timings`` is every timing with its trust and ``trust`` its count per machine;
    ``machine_pairs`` every pair of machines (sorted), with ``ratios`` (``machine_ratios`` of
    every pair, one frame) and ``differences`` (``environment_diff`` of each pair);
    ``ceilings`` and ``roofline`` each CPU's roofline and every CPU result under it;
    ``use_this`` the backend to use per case and ``crossover`` direct against FFT methods;
    ``layers`` the network layers (the Layer suite) and ``layer_fastest`` the fastest per layer;
    ``reproducibility`` each machine's measured run-to-run spread, where it was measured.
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
    left_out: pd.DataFrame
    counts: tables.Counts
    timings: pd.DataFrame
    trust: pd.DataFrame
    machine_pairs: list[tuple[str, str]]
    ratios: pd.DataFrame
    differences: Mapping[tuple[str, str], pd.DataFrame]
    ceilings: pd.DataFrame
    roofline: pd.DataFrame
    use_this: pd.DataFrame
    crossover: pd.DataFrame
    layers: pd.DataFrame
    layer_fastest: pd.DataFrame
    problems: tuple[Problem, ...]
    impossible: pd.DataFrame
    generated: str = ""
    source: str = ""
    reproducibility: Mapping[str, dict] = field(default_factory=dict)


def build_model(
    results: pd.DataFrame,
    environments: Mapping[str, dict],
    bandwidth: Mapping[str, tuple[float, str]],
    generated: str = "",
    source: str = "",
    problems: Sequence[Problem] = (),
    impossible: pd.DataFrame | None = None,
    reproducibility: Mapping[str, dict] | None = None,
) -> Model:
    times = tables.op_times(results)
    floors = {machine: floor for machine, (floor, _) in bandwidth.items()}
    pairs = tables.cpu_vs_gpu(results, times)
    machines = sorted(results.machine.unique())
    machine_pairs = list(itertools.combinations(machines, 2))
    timed = set(times.machine)
    ratios = [
        tables.machine_ratios(results, a, b, times)
        for a, b in machine_pairs
        if a in timed and b in timed
    ]
    ceilings = tables.ceilings(times, environments, floors)
    agreement = tables.agreement(results)
    timings = tables.timings(results)
    layers = tables.layer_results(results)
    return Model(
        results=results,
        environments=environments,
        bandwidth=bandwidth,
        machines=machines,
        times=times,
        fastest=tables.fastest(times),
        throughput=tables.throughput(times, floors),
        batches=tables.batch_times(results),
        pairs=pairs,
        losses=tables.gpu_losses(pairs),
        settings=tables.settings_sweep(results),
        agreement=agreement,
        backends=tables.backends(results),
        not_run=tables.not_run(results, environments),
        left_out=tables.left_out(results, environments),
        counts=tables.counts(results),
        timings=timings,
        trust=tables.timing_trust(timings),
        machine_pairs=machine_pairs,
        ratios=pd.concat(ratios, ignore_index=True)
        if ratios
        else pd.DataFrame(columns=tables.RATIO_COLUMNS),
        differences={
            (a, b): tables.environment_diff(environments.get(a), environments.get(b))
            for a, b in machine_pairs
        },
        ceilings=ceilings,
        roofline=tables.roofline_points(times, environments, ceilings),
        use_this=tables.use_this(times, agreement),
        crossover=tables.crossover(times),
        layers=layers,
        layer_fastest=tables.layer_fastest(layers),
        problems=tuple(problems),
        impossible=pd.DataFrame(columns=IMPOSSIBLE) if impossible is None else impossible,
        generated=generated,
        source=source,
        reproducibility=dict(reproducibility or {}),
    )
