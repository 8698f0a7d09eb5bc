"""The report page: the model's tables laid out as cells, rendered by Jinja2 templates.

Python decides what each cell says (text, CSS class, colour); the templates in ``templates/``
decide the markup, with autoescaping on, so no results text can become markup. The figures are
matplotlib's SVG (``plots``), inserted as they are. Nothing here touches the disk.

Self-contained on purpose: styles inline, figures inline SVG, no scripts, so ``index.html`` opens
from disk, offline, and can be mailed as one file.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import jinja2
import pandas as pd

from convbench.load import BUSY_CORES
from convbench.report import plots, tables
from convbench.report.model import Model
from convbench.report.results import Problem
from convbench.timing import MIN_SAMPLES, WIDE_SPREAD, format_seconds

MISSING = "\u2013"  # an en dash in an empty cell
UNKNOWN = "unknown"  # a fact that no record holds
VERDICT_CSS = {"pass": "pass", "FAIL": "fail"}
# After a time or a ratio: it rests on a noisy timing (the marks of `convbench recommend`).
NOISY = " !"
# Before a ratio: the two times' interquartile ranges overlap (as `convbench compare` marks it).
TIED = "~"


@dataclass(frozen=True)
class Cell:
    """One table cell: its text, a CSS class, an optional inline style and a tooltip."""

    text: str
    css: str = ""
    style: str = ""
    title: str = ""


def _flagged(value: object) -> bool:
    """A known true flag (``tied``, ``noisy``); NA and None are not."""
    return not _missing(value) and bool(value)


def trusted(text: str, noisy: object, why: object = "", css: str = "num") -> Cell:
    """A cell of a time (or of a figure resting on one): ``NOISY`` after it, and why as its
    tooltip, when the time is noisy."""
    if not _flagged(noisy):
        return Cell(text, css)
    return Cell(text + NOISY, f"{css} noisy", title="" if _missing(why) else str(why))


def ratio_text(ratio: float, tied: object) -> str:
    """A ratio of two times, ``TIED`` before it when their spreads overlap."""
    return (TIED if _flagged(tied) else "") + _times(ratio)


@dataclass(frozen=True)
class Table:
    """A table as the templates render it: a header (none when empty) and rows of cells."""

    header: Sequence[str]
    rows: list[list[Cell]] = field(default_factory=list)


def _missing(value: object) -> bool:
    """None, NaN or NA: nothing recorded, nothing measured."""
    return pd.api.types.is_scalar(value) and bool(pd.isna(value))


def known(value: object) -> str:
    """A recorded fact as text, or 'unknown'."""
    return UNKNOWN if _missing(value) else str(value)


def table(header: Sequence[str], rows: Iterable[Sequence[Cell | str]]) -> Table:
    return Table(
        header, [[c if isinstance(c, Cell) else Cell(str(c)) for c in row] for row in rows]
    )


def heat(ratio_to_tolerance: float, text: str) -> Cell:
    """Green well inside the tolerance, through yellow, to red past it; no colour without a
    tolerance."""
    if _missing(ratio_to_tolerance):
        return Cell(text, "heat")
    r = max(0.0, min(ratio_to_tolerance, 2.0)) / 2.0
    hue = 120 * (1 - r)
    return Cell(text, "heat", f"background: hsl({hue:.0f}, 70%, 85%)")


def pivot(
    frame: pd.DataFrame,
    rows: list[str],
    cell: Callable,
    column: str = "size",
    label: Callable[[object], str] = lambda size: f"{size}x{size}",
) -> Table:
    """A row per ``rows`` key (a missing key reads 'unknown'), a column per value of
    ``column``; ``cell(row)`` fills each."""
    values = sorted(frame[column].unique())
    body = []
    for key, group in frame.groupby(rows, sort=True, dropna=False):
        by_value = {getattr(row, column): row for row in group.itertuples()}
        labels = [known(k) for k in key]
        body.append(
            [
                *(Cell(k, VERDICT_CSS.get(k, "")) for k in labels),
                *(cell(by_value[v]) if v in by_value else Cell(MISSING) for v in values),
            ]
        )
    return Table([*rows, *map(label, values)], body)


def _gbps(value: float) -> str:
    return "(unknown)" if _missing(value) else f"{value:.3g} GB/s"


def _times(value: float) -> str:
    return MISSING if _missing(value) else f"{value:.3g}x"


def _percent(value: float) -> str:
    return MISSING if _missing(value) else f"{value:.0%}"


def _share(value: float) -> str:
    return "" if _missing(value) else f" ({value:.0%})"


def noisy_words(trust) -> str:
    """Why a machine's timings are noisy, by reason, each that occurs (a ``Model.trust`` row)."""
    counts = [
        (trust.wide_spread, "with a wide spread"),
        (trust.few_samples, "with too few samples"),
        (trust.busy, "on a busy machine"),
    ]
    return ", ".join(f"{count} {words}" for count, words in counts if count)


def run_to_run_words(machine: str, spread: Mapping[str, object] | None) -> str:
    """What the report states of a machine's run-to-run spread (a ``Model.reproducibility``
    value), or how to measure it where it was not."""
    if not spread or spread.get("median_difference") is None:
        return (
            "not measured on this machine (python scripts/reproducibility.py --save "
            f"results/{machine}): how far a time could move in a second run is not known here."
        )
    long_op = spread.get("long_op_s") or 1e-3
    text = (
        f"the same {spread.get('cases_held') or '?'} timings of {format_seconds(long_op)} or "
        f"more, each taken by {spread.get('runs') or '?'} fresh processes"
        f"{' on ' + str(spread['measured'])[:10] if spread.get('measured') else ''}, differ by a "
        f"median {spread['median_difference']:.1%}"
    )
    if spread.get("largest_difference") is not None:
        text += f" (largest {spread['largest_difference']:.1%}"
        text += f", {spread['largest_case']})" if spread.get("largest_case") else ")"
    if spread.get("most_other_cores") is not None:
        text += f"; other processes took at most {spread['most_other_cores']:.2f} cores meanwhile"
    goal = spread.get("goal")
    if goal:
        within = spread["median_difference"] <= goal
        text += f" ({'within' if within else 'above'} the {goal:.0%} goal)"
    return text + ". A ratio between two runs closer to 1 than this is no finding."


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


@dataclass(frozen=True)
class MachineWins:
    """One machine's line in "at a glance"; ``largest`` is the ``Model.fastest`` row (a named
    tuple) of its largest image; ``tied``: cases whose winner is tied within the spread with
    the runner-up; ``noisy``: cases whose winner or runner-up is a noisy time."""

    machine: str
    wins: list[tuple[str, int]]
    cases: int
    largest: tuple
    tied: int
    noisy: int


@dataclass(frozen=True)
class Glance:
    """What "at a glance" says: which is fastest, by how much, how far to trust it, do they
    agree, what is missing. ``best_pair`` is the ``Model.pairs`` row of the largest speed-up,
    ``worst`` the ``Model.agreement`` row furthest past its tolerance, ``trust`` the
    ``Model.trust`` rows (named tuples)."""

    machines: list[MachineWins]
    trust: list[tuple]
    best_pair: tuple | None
    within: int
    outside: int
    no_verdict: int
    worst: tuple | None
    layers: list[LayerWins] = field(default_factory=list)


@dataclass(frozen=True)
class LayerWins:
    """One machine's line on the network layers in "at a glance": how often each backend is the
    fastest of a layer, batch and dtype (``Model.layer_fastest``), the highest rate measured
    (its ``Model.layers`` row; None without one), and the layer results within their
    tolerance and past it."""

    machine: str
    wins: list[tuple[str, int]]
    cases: int
    tied: int
    noisy: int
    best_rate: tuple | None
    within: int
    outside: int


def layer_wins(model: Model) -> list[LayerWins]:
    found = []
    for machine, group in model.layer_fastest.groupby("machine", sort=True):
        rows = model.layers[model.layers.machine == machine]
        rated = rows[rows.gflops.notna()]
        # One verdict per layer, backend and dtype: agreement is tracked on one image.
        verdicts = rows.drop_duplicates(["layer", "backend", "dtype"]).ok
        found.append(
            LayerWins(
                machine,
                list(group.fastest.value_counts().items()),
                len(group),
                int(group.tied.eq(True).sum()),
                int(group.noisy.sum()),
                _row(rated, rated.gflops.idxmax()) if not rated.empty else None,
                int(verdicts.eq(True).sum()),
                int(verdicts.eq(False).sum()),
            )
        )
    return found


def _row(frame: pd.DataFrame, index) -> tuple:
    """Row ``index`` of ``frame`` as a named tuple (a Series' own attributes, such as ``size``
    and ``dtype``, would hide columns of those names)."""
    return next(frame.loc[[index]].itertuples())


def glance(model: Model) -> Glance:
    machines = []
    for machine, group in model.fastest.groupby("machine"):
        largest = next(
            group[group["size"] == group["size"].max()].sort_values("seconds").itertuples()
        )
        wins = list(group.fastest.value_counts().items())
        tied = int(group.tied.eq(True).sum())
        machines.append(
            MachineWins(machine, wins, len(group), largest, tied, int(group.noisy.sum()))
        )
    pairs = model.pairs
    agree = model.agreement
    outside = agree[agree.ok.eq(False)]
    return Glance(
        machines=machines,
        trust=list(model.trust.itertuples()),
        best_pair=_row(pairs, pairs.speedup.idxmax()) if not pairs.empty else None,
        within=int(agree.ok.eq(True).sum()),
        outside=len(outside),
        no_verdict=int(agree.ok.isna().sum()),
        worst=_row(outside, outside.ratio.idxmax()) if not outside.empty else None,
        layers=layer_wins(model),
    )


@dataclass(frozen=True)
class RooflineView:
    """A machine's roofline: the figure, what its ceilings are and where they come from, and
    each result's share of its bound (largest image per backend; every result folded)."""

    plot: str
    ceilings: list[str]
    bandwidth_source: str
    peak_missing: bool
    largest: Table
    results: int
    every: Table


@dataclass(frozen=True)
class MachineView:
    """A machine's section; the tables are None where the machine has no Conv.time_op result.
    ``trust`` is its ``Model.trust`` row (None without timings) and ``noisy`` its noisy
    timings, each with why."""

    machine: str
    cpu: str
    cores: str
    gpu: str
    plot: str | None = None
    fastest: Table | None = None
    floor: str = ""
    floor_source: str = ""
    throughput: Table | None = None
    cases: int = 0
    every: Table | None = None
    batches: Table | None = None
    trust: tuple | None = None
    noisy: Table | None = None
    roofline: RooflineView | None = None
    run_to_run: str = ""


def _fastest_cell(r) -> Cell:
    text = r.fastest
    if not _missing(r.margin):
        text += f" ({ratio_text(r.margin, r.tied)})"
    why = "the winner's or the runner-up's time is noisy" if r.noisy else ""
    return trusted(text, r.noisy, why)


def noisy_table(timed: pd.DataFrame) -> Table:
    """Noisy timings, one row each, with why."""
    rows = [
        [
            f"{r.suite}.{r.metric}",
            known(r.backend if not _missing(r.backend) else r.variant),
            known(r.dtype),
            *(
                [Cell(MISSING, "num"), f"{r.layer}, batch {r.batch}"]
                if not _missing(r.layer)
                else [Cell(str(r.kernel), "num"), Cell(f"{r.size}x{r.size}", "num")]
            ),
            Cell(format_seconds(r.seconds), "num"),
            Cell(_percent(r.spread), "num"),
            Cell(MISSING if _missing(r.samples) else f"{r.samples:.0f}", "num"),
            Cell(MISSING if _missing(r.other_cores) else f"{r.other_cores:.2f}", "num"),
            r.why_noisy,
        ]
        for r in timed[timed.noisy].itertuples()
    ]
    header = ["benchmark", "backend", "dtype", "kernel", "image", "median", "spread"]
    return table([*header, "samples", "other load (cores)", "why noisy"], rows)


def _ceiling_words(limits: pd.DataFrame) -> list[str]:
    words = []
    for r in limits.itertuples():
        floor = (
            "memory bandwidth unknown"
            if _missing(r.bandwidth_gbs)
            else (f"memory {r.bandwidth_gbs:.3g} GB/s")
        )
        peak = (
            "no peak GFLOP/s recorded"
            if _missing(r.peak_gflops)
            else f"peak {r.peak_gflops:.3g} GFLOP/s (ridge at {r.ridge:.3g} flop/byte)"
        )
        words.append(f"{r.dtype}: {floor}; {peak}")
    return words


# What bounds a result (``tables.roofline_points``' limit), for its cell's tooltip.
BOUND_WORDS = {
    "memory": "of the memory bound",
    "compute": "of the compute bound (peak GFLOP/s)",
    "memory (no peak recorded)": "of the memory line (no peak recorded: a lower estimate)",
}


def _roof_cell(r) -> Cell:
    text = f"{r.gflops:.3g} GFLOP/s"
    if _missing(r.of_bound):
        return trusted(text, r.noisy, r.why_noisy)
    share = f"{r.of_bound:.0%} {BOUND_WORDS.get(r.limit, r.limit)}"
    found = trusted(f"{text} ({r.of_bound:.0%})", r.noisy, r.why_noisy)
    return dataclasses.replace(found, title="; ".join(t for t in (share, found.title) if t))


def roofline_section(model: Model, machine: str, colors: dict[str, str]) -> RooflineView | None:
    placed = model.roofline[model.roofline.machine == machine]
    if placed.empty:
        return None
    limits = model.ceilings[
        (model.ceilings.machine == machine) & model.ceilings.dtype.isin(placed.dtype)
    ]
    _, source = model.bandwidth.get(machine, (math.nan, "not recorded"))
    largest = placed.sort_values("size").groupby(["backend", "dtype", "kernel"]).tail(1)
    return RooflineView(
        plot=plots.roofline(placed, limits, colors, f"{machine}: roofline of its CPU"),
        ceilings=_ceiling_words(limits),
        bandwidth_source=source,
        peak_missing=bool(limits.peak_gflops.isna().any()),
        largest=pivot(
            largest,
            ["backend", "dtype"],
            lambda r: _roof_cell(r),
            column="kernel",
            label=lambda k: f"{k}x{k} kernel",
        ),
        results=len(placed),
        every=pivot(placed, ["backend", "dtype", "kernel"], _roof_cell),
    )


def machine_section(model: Model, machine: str, colors: dict[str, str]) -> MachineView:
    env = model.environments.get(machine, {})
    times = model.times[model.times.machine == machine]
    trust = model.trust[model.trust.machine == machine]
    timed = model.timings[model.timings.machine == machine]
    described = {
        "machine": machine,
        "cpu": str(env.get("cpu") or "CPU not recorded"),
        "cores": str(env.get("cores") or "?"),
        "gpu": str(env.get("gpu") or "no GPU recorded"),
        "trust": next(trust.itertuples()) if not trust.empty else None,
        "noisy": noisy_table(timed) if timed.noisy.any() else None,
        "run_to_run": run_to_run_words(machine, model.reproducibility.get(machine)),
    }
    if times.empty:
        return MachineView(**described)
    floor, source = model.bandwidth.get(machine, (math.nan, "not recorded"))
    flow = model.throughput[model.throughput.machine == machine]
    largest = flow.sort_values("size").groupby(["backend", "dtype", "kernel"]).tail(1)
    batches = model.batches[model.batches.machine == machine]
    return MachineView(
        **described,
        plot=plots.time_vs_size(times, colors, f"{machine}: time per op (lower is better)"),
        fastest=pivot(
            model.fastest[model.fastest.machine == machine], ["dtype", "kernel"], _fastest_cell
        ),
        floor=_gbps(floor),
        floor_source=source,
        throughput=pivot(
            largest,
            ["backend", "dtype"],
            lambda r: trusted(
                f"{_gbps(r.gb_per_s)}{_share(r.of_bandwidth)} at {r.size}x{r.size}",
                r.noisy,
                r.why_noisy,
            ),
            column="kernel",
            label=lambda k: f"{k}x{k} kernel",
        ),
        cases=len(flow),
        every=pivot(
            flow,
            ["backend", "dtype", "kernel"],
            lambda r: trusted(
                f"{format_seconds(r.seconds)} · {_gbps(r.gb_per_s)}{_share(r.of_bandwidth)}",
                r.noisy,
                r.why_noisy,
            ),
        ),
        batches=None
        if batches.empty
        else pivot(
            batches,
            ["backend", "dtype", "batch", "size"],
            lambda r: trusted(
                f"{format_seconds(r.seconds)} ({format_seconds(r.seconds / r.batch)} an image)",
                r.noisy,
                r.why_noisy,
            ),
            column="kernel",
            label=lambda k: f"{k}x{k} kernel",
        ),
        roofline=roofline_section(model, machine, colors),
    )


CAVEATS = {"tied": f" ({TIED} tied within the spread)", "noisy": f" ({NOISY.strip()} noisy)"}


def _upto(size: float, caveat: str = "") -> Cell:
    if _missing(size):
        return Cell(MISSING, "num")
    return Cell(f"up to {int(size)}x{int(size)}{CAVEATS.get(caveat, '')}", "num")


@dataclass(frozen=True)
class GpuView:
    """The CPU vs GPU section (None on the page where no case ran on a GPU and its twin)."""

    plot: str
    speedups: Table
    losses: Table
    transfers: Table


def gpu_section(model: Model, colors: dict[str, str]) -> GpuView | None:
    pairs = model.pairs
    if pairs.empty:
        return None
    float32 = pairs[pairs.dtype == "float32"]
    pairs = pairs.assign(
        CPU=pairs.cpu_backend + " @ " + pairs.cpu_machine,
        GPU=pairs.gpu_backend + " @ " + pairs.gpu_machine,
    )
    losses = model.losses
    lost = losses[losses.op_loses_up_to.notna() | losses.end_to_end_loses_up_to.notna()]
    return GpuView(
        plot=plots.speedups(float32 if not float32.empty else model.pairs, colors),
        speedups=pivot(
            pairs,
            ["CPU", "GPU", "kernel", "dtype"],
            lambda r: trusted(
                f"{ratio_text(r.speedup, r.tied)} · "
                f"{ratio_text(r.speedup_end_to_end, r.tied_end_to_end)}",
                r.noisy or r.noisy_end_to_end,
                "a CPU, GPU or end-to-end time of this case is noisy",
            ),
        ),
        losses=table(
            ["GPU", "CPU", "kernel", "dtype", "op alone", "with transfers"],
            [
                [
                    f"{r.gpu_backend} @ {r.gpu_machine}",
                    f"{r.cpu_backend} @ {r.cpu_machine}",
                    Cell(str(r.kernel), "num"),
                    r.dtype,
                    _upto(r.op_loses_up_to, r.op_caveat),
                    _upto(r.end_to_end_loses_up_to, r.end_to_end_caveat),
                ]
                for r in lost.itertuples()
            ],
        ),
        transfers=pivot(
            pairs.drop_duplicates(["GPU", "kernel", "dtype", "size"]),
            ["GPU", "kernel", "dtype"],
            lambda r: Cell(
                f"{format_seconds(r.transfer_s)} (op {format_seconds(r.gpu_s)})"
                if not _missing(r.transfer_s)
                else MISSING,
                "num",
            ),
        ),
    )


def _error(max_rel: float, ratio: float, precision: object) -> str:
    if _missing(ratio):
        return f"max_rel {max_rel:.2g} (no tolerance recorded)"
    return f"max_rel {max_rel:.2g} ({ratio:.2g} of {known(precision)} tol.)"


def settings_section(model: Model) -> Table | None:
    sweep = model.settings
    if sweep.empty:
        return None

    def cell(r) -> Cell:
        text = format_seconds(r.seconds) + (NOISY if r.noisy else "")
        if not r.default and not _missing(r.vs_default):
            text += f" ({ratio_text(r.vs_default, r.tied)})"
        if _missing(r.max_rel):
            return trusted(text, False)
        found = heat(r.ratio, f"{text} · {_error(r.max_rel, r.ratio, r.precision)}")
        return dataclasses.replace(found, title=r.why_noisy if r.noisy else "")

    sweep = sweep.assign(
        variant=[
            v + (" (default)" if d else "")
            for v, d in zip(sweep.variant, sweep.default, strict=True)
        ]
    )
    return pivot(sweep, ["machine", "variant", "precision", "kernel"], cell)


def _verdict(ok: pd.Series) -> str:
    if ok.eq(False).any():
        return "FAIL"
    return "pass" if ok.notna().all() else "no tolerance recorded"


@dataclass(frozen=True)
class AgreementView:
    summary: Table
    results: int
    every: Table


def _tolerance(value: float) -> str:
    return UNKNOWN if _missing(value) else f"{value:.2g}"


def agreement_section(model: Model) -> AgreementView | None:
    agree = model.agreement
    if agree.empty:
        return None
    keys = ["machine", "backend", "dtype"]
    worst = agree.sort_values(["ratio", "max_rel"], ascending=False).drop_duplicates(
        [*keys, "size"]
    )
    verdicts = {key: _verdict(group.ok) for key, group in agree.groupby(keys)}
    worst = worst.assign(verdict=[verdicts[k] for k in zip(*(worst[c] for c in keys), strict=True)])
    return AgreementView(
        summary=pivot(
            worst,
            ["machine", "backend", "dtype", "precision", "verdict"],
            lambda r: heat(
                r.ratio,
                f"{r.max_rel:.2g} (k={r.kernel})"
                if _missing(r.ratio)
                else f"{r.max_rel:.2g} ({r.ratio:.2g} of tol., k={r.kernel})",
            ),
        ),
        results=len(agree),
        every=pivot(
            agree,
            ["machine", "backend", "dtype", "kernel", "precision"],
            lambda r: heat(r.ratio, f"{r.max_rel:.2g} / {_tolerance(r.tolerance)}"),
        ),
    )


@dataclass(frozen=True)
class LayersView:
    """The network layers of one machine: the fastest backend per layer, batch and dtype, and
    every result (time, GFLOP/s, agreement, peak memory)."""

    machine: str
    fastest: Table
    results: int
    every: Table


def _gflops(value: float) -> str:
    return MISSING if _missing(value) else f"{value:.3g}"


def _mib(value: float) -> str:
    return MISSING if _missing(value) else f"{value / 2**20:,.0f} MiB"


def _layer_agreement(r) -> Cell:
    if _missing(r.max_rel):
        return Cell(MISSING, "num")
    if _missing(r.ratio):
        return heat(r.ratio, f"{r.max_rel:.2g}")
    return heat(r.ratio, f"{r.max_rel:.2g} ({r.ratio:.2g} of tol.)")


def layers_section(model: Model) -> list[LayersView]:
    """One view per machine with Layer results."""
    views = []
    for machine, rows in model.layers.groupby("machine", sort=True):
        best = model.layer_fastest[model.layer_fastest.machine == machine]
        fastest = table(
            ["layer", "batch", "dtype", "fastest (vs runner-up)", "time per op", "GFLOP/s"],
            [
                [
                    r.layer,
                    Cell(str(r.batch), "num"),
                    r.dtype,
                    _fastest_cell(r),
                    Cell(format_seconds(r.seconds), "num"),
                    Cell(_gflops(r.gflops), "num"),
                ]
                for r in best.itertuples()
            ],
        )
        header = ["layer", "backend", "batch", "dtype", "time per op", "GFLOP/s"]
        every = table(
            [*header, "max_rel (of tolerance)", "peak memory", "precision"],
            [
                [
                    r.layer,
                    r.backend,
                    Cell(str(r.batch), "num"),
                    r.dtype,
                    trusted(format_seconds(r.seconds), r.noisy, r.why_noisy),
                    Cell(_gflops(r.gflops), "num"),
                    _layer_agreement(r),
                    Cell(_mib(r.peak_bytes), "num"),
                    known(r.precision),
                ]
                for r in rows.itertuples()
            ],
        )
        views.append(LayersView(machine, fastest, len(rows), every))
    return views


@dataclass(frozen=True)
class UseThisView:
    """The fastest way per case: per machine the backend to use for each case, the crossover
    figure of direct and FFT methods, and where the FFT wins."""

    machine: str
    cases: Table
    crossover_plot: str | None
    crossover_sizes: list[int]
    crossover_dtype: str | None
    crossover: Table | None
    fft_results: bool
    verified: bool


def _use_cell(r, say_unknown: bool = True) -> Cell:
    text = f"{r.backend} {format_seconds(r.seconds)}"
    notes = []
    if r.tied:
        notes.append(f"{TIED} {r.tied}")
    if not r.verified:
        if say_unknown:
            notes.append("agreement unknown")
    elif r.agreement_at:
        notes.append(f"agrees at {r.agreement_at}")
    if r.mismatched:
        notes.append(f"faster but disagreeing: {r.mismatched}")
    if notes:
        text += f" ({'; '.join(notes)})"
    why = "its time is noisy" if r.noisy else ""
    return trusted(text, r.noisy, why, css="" if r.verified else "unverified")


def crossover_choice(times: pd.DataFrame) -> tuple[str | None, list[int]]:
    """The dtype (float32 when timed) and up to two image sizes at which a machine's crossover
    figure shows time against kernel size: its largest image timed with two kernel sizes or
    more, and the image a quarter of its side when timed so too (else the next smaller)."""
    single = times[times.batch == 1]
    if single.empty:
        return None, []
    dtypes = sorted(single.dtype.unique())
    dtype = "float32" if "float32" in dtypes else dtypes[0]
    kernels = single[single.dtype == dtype].groupby("size").kernel.nunique()
    sizes = sorted(kernels[kernels >= 2].index)
    if not sizes:
        return dtype, []
    largest = sizes[-1]
    smaller = largest // 4 if largest // 4 in sizes else (sizes[-2] if len(sizes) > 1 else None)
    return dtype, [s for s in (smaller, largest) if s is not None]


def _crossover_cell(r) -> Cell:
    if _missing(r.fft_speedup):
        return Cell(
            f"{known(r.backend_direct)} only"
            if _missing(r.backend_fft)
            else f"{r.backend_fft} only",
            "num",
        )
    fft_wins = r.fft_speedup > 1
    ratio = r.fft_speedup if fft_wins else 1 / r.fft_speedup
    winner = f"FFT ({r.backend_fft})" if fft_wins else f"direct ({r.backend_direct})"
    return trusted(
        f"{winner} {ratio_text(ratio, r.tied)}",
        r.noisy,
        "a time of this case is noisy",
        css="num fft" if fft_wins else "num",
    )


def use_this_section(model: Model, colors: dict[str, str]) -> list[UseThisView]:
    views = []
    for machine, cases in model.use_this.groupby("machine", sort=True):
        times = model.times[model.times.machine == machine]
        dtype, sizes = crossover_choice(times)
        # Without an FFT result there is no crossover to see.
        fft = bool(times.arithmetic.eq("fft").any())
        crossing = model.crossover[
            (model.crossover.machine == machine) & model.crossover.fft_speedup.notna()
        ]
        shown = times[(times.dtype == dtype) & times["size"].isin(sizes) & (times.batch == 1)]
        views.append(
            UseThisView(
                machine=machine,
                # Where no case has a verdict, "agreement unknown" is said once, not per cell.
                cases=pivot(
                    cases,
                    ["dtype", "kernel"],
                    functools.partial(_use_cell, say_unknown=bool(cases.verified.any())),
                ),
                verified=bool(cases.verified.any()),
                crossover_plot=plots.crossover(
                    shown, sizes, colors, f"{machine}: {dtype}, time against kernel size"
                )
                if sizes and fft
                else None,
                crossover_sizes=sizes,
                crossover_dtype=dtype,
                crossover=pivot(
                    crossing,
                    ["dtype", "size"],
                    _crossover_cell,
                    column="kernel",
                    label=lambda k: f"{k}x{k} kernel",
                )
                if not crossing.empty
                else None,
                fft_results=fft,
            )
        )
    return views


@dataclass(frozen=True)
class PairView:
    """Machine ``a`` against machine ``b``: what differs between their environments, how each
    was measured, and the ratio of their times per backend and case (None: no case ran on
    both)."""

    a: str
    b: str
    differences: Table
    measured: Table
    ratios: Table | None
    cases: int
    tied: int
    noisy: int


def _measured(model: Model, machines: Sequence[str]) -> Table:
    rows = []
    for machine in machines:
        found = model.trust[model.trust.machine == machine]
        spread = _run_to_run(model.reproducibility.get(machine))
        if found.empty:
            rows.append([machine, *[Cell(MISSING, "num")] * 4, spread])
            continue
        r = next(found.itertuples())
        load = (
            "not recorded"
            if not r.load_recorded
            else f"at most {r.most_other_cores:.2f} cores (recorded for {r.load_recorded})"
        )
        rows.append(
            [
                machine,
                Cell(str(r.timings), "num"),
                Cell(str(r.noisy), "num noisy" if r.noisy else "num"),
                load,
                known(r.threads),
                spread,
            ]
        )
    header = ["machine", "timings", "noisy", "other processes while measured", "threads recorded"]
    return table([*header, "run-to-run spread"], rows)


def _run_to_run(spread: Mapping[str, object] | None) -> Cell:
    """A machine's median run-to-run difference, or that it was not measured."""
    if not spread or spread.get("median_difference") is None:
        return Cell("not measured")
    text = f"{spread['median_difference']:.1%} median"
    if spread.get("largest_difference") is not None:
        text += f", {spread['largest_difference']:.1%} largest"
    return Cell(text, "num")


def _ratio_cell(r) -> Cell:
    text = f"{ratio_text(r.ratio, r.tied)} ({_percent(r.spread_a)} | {_percent(r.spread_b)})"
    why = "; ".join(w for w in (r.why_noisy_a, r.why_noisy_b) if w)
    return trusted(text, r.noisy, why)


def machines_section(model: Model) -> list[PairView]:
    views = []
    for a, b in model.machine_pairs:
        ratios = model.ratios[(model.ratios.machine_a == a) & (model.ratios.machine_b == b)]
        differences = model.differences[(a, b)]
        views.append(
            PairView(
                a=a,
                b=b,
                differences=table(
                    ["what differs", a, b],
                    ([r.fact, r.a, r.b] for r in differences.itertuples()),
                ),
                measured=_measured(model, (a, b)),
                ratios=pivot(ratios, ["backend", "dtype", "kernel"], _ratio_cell)
                if not ratios.empty
                else None,
                cases=len(ratios),
                tied=int(ratios.tied.eq(True).sum()),
                noisy=int(ratios.noisy.sum()),
            )
        )
    return views


def backends_section(model: Model) -> Table:
    rows = []
    for r in model.backends.itertuples():
        # A recorded backend without a twin has none (a CPU backend); unrecorded, it is unknown.
        twin = MISSING if _missing(r.cpu_twin) and r.recorded else known(r.cpu_twin)
        precision = " · ".join(f"{dtype}: {known(p)}" for dtype, p in r.precision.items())
        rows.append(
            [
                r.machine,
                r.backend,
                known(r.library),
                known(r.device),
                twin,
                precision or MISSING,
                Cell(str(r.ok), "num"),
                Cell(str(r.skipped), "num"),
                Cell(str(r.failed), "num"),
                Cell(str(r.recorded), "num"),
            ]
        )
    header = ["machine", "backend", "library", "device", "CPU twin", "precision by dtype"]
    return table([*header, "ran", "skipped", "failed", "recorded"], rows)


def _flags(flags: object) -> str | None:
    if isinstance(flags, list):
        return " ".join(sorted(map(str, flags)))
    return None if flags is None else str(flags)


def _peaks(peaks: object) -> list[tuple[str, str]]:
    """The environment record's peak rate per dtype, each in one line."""
    if not isinstance(peaks, Mapping):
        return [] if peaks is None else [("peak GFLOP/s", str(peaks))]
    return [(f"peak GFLOP/s, {dtype}", tables.peak_text(peak)) for dtype, peak in peaks.items()]


@dataclass(frozen=True)
class EnvironmentView:
    machine: str
    facts: Table
    backends: Table


def environment_section(model: Model) -> list[EnvironmentView]:
    machines = []
    for machine, env in sorted(model.environments.items()):
        floor, source = model.bandwidth.get(machine, (math.nan, "not recorded"))
        facts = [
            ("collected", env.get("collected")),
            ("CPU", env.get("cpu")),
            ("cores", env.get("cores")),
            ("memory", f"{env['memory_gib']} GiB" if env.get("memory_gib") else None),
            ("memory bandwidth", f"{_gbps(floor)} ({source})"),
            ("GPU", env.get("gpu")),
            ("driver", env.get("driver")),
            ("CUDA", env.get("cuda")),
            ("cuDNN", env.get("cudnn")),
            ("Python", env.get("python")),
            ("asv timing", env.get("timing")),
            ("CPU flags", _flags(env.get("cpu_flags"))),
            *_peaks(env.get("peak_gflops")),
            *sorted((env.get("versions") or {}).items()),
        ]
        backends = [
            [
                name,
                Cell("yes", "pass") if b.get("available") else Cell("no", "fail"),
                ", ".join(f"{k}={v}" for k, v in (b.get("settings") or {}).items())
                or (b.get("reason") or ""),
            ]
            for name, b in sorted((env.get("backends") or {}).items())
        ]
        machines.append(
            EnvironmentView(
                machine,
                table([], [[k, MISSING if v is None else str(v)] for k, v in facts]),
                table(["backend", "available", "settings / reason"], backends),
            )
        )
    return machines


@dataclass(frozen=True)
class NotRunView:
    """The skipped or the failed results, grouped by machine, backend and reason; ``count`` is
    the model's one count of them."""

    count: int
    groups: int
    table: Table


def left_out_table(model: Model) -> Table | None:
    """The backends left out of a machine's grid because they cannot run there, or None."""
    if model.left_out.empty:
        return None
    header = tables.LEFT_OUT_COLUMNS
    return table(header, ([*row] for row in model.left_out[header].itertuples(index=False)))


def not_run_section(model: Model) -> dict[str, NotRunView]:
    missing = model.not_run
    header = ["machine", "backend", "reason", "benchmarks", "dtypes", "sizes", "results"]
    views = {}
    for status in ("failed", "skipped"):
        chosen = missing[missing.status == status]
        views[status] = NotRunView(
            count=getattr(model.counts, status),
            groups=len(chosen),
            table=table(
                header,
                [
                    [
                        r.machine,
                        r.backend,
                        r.reason,
                        r.benchmarks,
                        r.dtypes,
                        r.sizes,
                        Cell(str(r.results), "num"),
                    ]
                    for r in chosen.itertuples()
                ],
            ),
        )
    return views


@dataclass(frozen=True)
class ProblemsView:
    """What could not be used as it stood (``Model.problems``), and the impossible values set
    aside, one row each with the file it came from."""

    problems: tuple[Problem, ...]
    impossible: Table


def problems_section(model: Model) -> ProblemsView | None:
    if not model.problems:
        return None
    header = ["machine", "file", "benchmark", "case", "value", "why"]
    rows = model.impossible[header].itertuples(index=False)
    return ProblemsView(model.problems, table(header, ([*row] for row in rows)))


@functools.cache
def templates() -> jinja2.Environment:
    """The page's templates, read from the installed package; autoescaping on."""
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("convbench.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["seconds"] = format_seconds
    environment.filters["plural"] = _plural
    environment.filters["noisy_words"] = noisy_words
    environment.tests["known"] = lambda value: not _missing(value)
    environment.tests["flagged"] = _flagged
    return environment


def page(model: Model) -> str:
    """The whole ``index.html``."""
    colors = plots.backend_colors(model.results.backend.dropna())
    fixture = [env["fixture"] for env in model.environments.values() if env.get("fixture")]
    return (
        templates()
        .get_template("page.html")
        .render(
            model=model,
            fixture=fixture[0] if fixture else None,
            glance=glance(model),
            machines=[machine_section(model, m, colors) for m in model.machines],
            gpu=gpu_section(model, colors),
            use_this=use_this_section(model, colors),
            layers=layers_section(model),
            wide_spread=WIDE_SPREAD,
            min_samples=MIN_SAMPLES,
            busy_cores=BUSY_CORES,
            pairs=machines_section(model),
            settings=settings_section(model),
            agreement=agreement_section(model),
            backends=backends_section(model),
            environments=environment_section(model),
            not_run=not_run_section(model),
            left_out=left_out_table(model),
            problems=problems_section(model),
        )
    )
