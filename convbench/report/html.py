"""The report page: the model's tables laid out as cells, rendered by Jinja2 templates.

Python decides what each cell says (text, CSS class, colour); the templates in ``templates/``
decide the markup, with autoescaping on, so no results text can become markup. The figures are
matplotlib's SVG (``plots``), inserted as they are. Nothing here touches the disk.

Self-contained on purpose: styles inline, figures inline SVG, no scripts, so ``index.html`` opens
from disk, offline, and can be mailed as one file.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import jinja2
import pandas as pd

from convbench.report import plots
from convbench.report.model import Model
from convbench.report.results import Problem
from convbench.timing import format_seconds

MISSING = "\u2013"  # an en dash in an empty cell
UNKNOWN = "unknown"  # a fact that no record holds
VERDICT_CSS = {"pass": "pass", "FAIL": "fail"}


@dataclass(frozen=True)
class Cell:
    """One table cell: its text, a CSS class and an optional inline style."""

    text: str
    css: str = ""
    style: str = ""


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


def _share(value: float) -> str:
    return "" if _missing(value) else f" ({value:.0%})"


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


@dataclass(frozen=True)
class MachineWins:
    """One machine's line in "at a glance"; ``largest`` is the ``Model.fastest`` row (a named
    tuple) of its largest image."""

    machine: str
    wins: list[tuple[str, int]]
    cases: int
    largest: tuple


@dataclass(frozen=True)
class Glance:
    """What "at a glance" says: which is fastest, by how much, do they agree, what is missing.
    ``best_pair`` is the ``Model.pairs`` row of the largest speed-up, ``worst`` the
    ``Model.agreement`` row furthest past its tolerance (named tuples)."""

    machines: list[MachineWins]
    best_pair: tuple | None
    within: int
    outside: int
    no_verdict: int
    worst: tuple | None


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
        machines.append(MachineWins(machine, wins, len(group), largest))
    pairs = model.pairs
    agree = model.agreement
    outside = agree[agree.ok.eq(False)]
    return Glance(
        machines=machines,
        best_pair=_row(pairs, pairs.speedup.idxmax()) if not pairs.empty else None,
        within=int(agree.ok.eq(True).sum()),
        outside=len(outside),
        no_verdict=int(agree.ok.isna().sum()),
        worst=_row(outside, outside.ratio.idxmax()) if not outside.empty else None,
    )


@dataclass(frozen=True)
class MachineView:
    """A machine's section; the tables are None where the machine has no Conv.time_op result."""

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


def machine_section(model: Model, machine: str, colors: dict[str, str]) -> MachineView:
    env = model.environments.get(machine, {})
    times = model.times[model.times.machine == machine]
    described = {
        "machine": machine,
        "cpu": str(env.get("cpu") or "CPU not recorded"),
        "cores": str(env.get("cores") or "?"),
        "gpu": str(env.get("gpu") or "no GPU recorded"),
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
            model.fastest[model.fastest.machine == machine],
            ["dtype", "kernel"],
            lambda r: Cell(
                r.fastest + ("" if _missing(r.margin) else f" ({r.margin:.2g}x)"), "num"
            ),
        ),
        floor=_gbps(floor),
        floor_source=source,
        throughput=pivot(
            largest,
            ["backend", "dtype"],
            lambda r: Cell(
                f"{_gbps(r.gb_per_s)}{_share(r.of_bandwidth)} at {r.size}x{r.size}", "num"
            ),
            column="kernel",
            label=lambda k: f"{k}x{k} kernel",
        ),
        cases=len(flow),
        every=pivot(
            flow,
            ["backend", "dtype", "kernel"],
            lambda r: Cell(
                f"{format_seconds(r.seconds)} · {_gbps(r.gb_per_s)}{_share(r.of_bandwidth)}",
                "num",
            ),
        ),
        batches=None
        if batches.empty
        else pivot(
            batches,
            ["backend", "dtype", "batch", "size"],
            lambda r: Cell(
                f"{format_seconds(r.seconds)} ({format_seconds(r.seconds / r.batch)} an image)",
                "num",
            ),
            column="kernel",
            label=lambda k: f"{k}x{k} kernel",
        ),
    )


def _upto(size: float) -> Cell:
    return Cell(MISSING if _missing(size) else f"up to {int(size)}x{int(size)}", "num")


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
            lambda r: Cell(f"{_times(r.speedup)} · {_times(r.speedup_end_to_end)}", "num"),
        ),
        losses=table(
            ["GPU", "CPU", "kernel", "dtype", "op alone", "with transfers"],
            [
                [
                    f"{r.gpu_backend} @ {r.gpu_machine}",
                    f"{r.cpu_backend} @ {r.cpu_machine}",
                    Cell(str(r.kernel), "num"),
                    r.dtype,
                    _upto(r.op_loses_up_to),
                    _upto(r.end_to_end_loses_up_to),
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
        text = format_seconds(r.seconds)
        if not r.default and not _missing(r.vs_default):
            text += f" ({r.vs_default:.3g}x)"
        if _missing(r.max_rel):
            return Cell(text, "num")
        return heat(r.ratio, f"{text} · {_error(r.max_rel, r.ratio, r.precision)}")

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
    environment.tests["known"] = lambda value: not _missing(value)
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
            settings=settings_section(model),
            agreement=agreement_section(model),
            backends=backends_section(model),
            environments=environment_section(model),
            not_run=not_run_section(model),
            problems=problems_section(model),
        )
    )
