"""The report page as pure functions from data to HTML strings; nothing here touches the disk.

Self-contained on purpose: styles inline, figures inline SVG, no scripts, so ``index.html`` opens
from disk, offline, and can be mailed as one file.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import pandas as pd

from convbench.report import plots, tables
from convbench.timing import format_seconds

CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1d2733;
       margin: 0 auto; max-width: 1280px; padding: 0 24px 48px; }
h1 { margin: 24px 0 4px; } h2 { margin-top: 36px; border-bottom: 2px solid #dfe5ec; }
h3 { margin: 22px 0 6px; } .sub { color: #5b6b7c; margin: 0 0 12px; }
.fixture { background: #fff4d6; border: 1px solid #e6c45c; padding: 6px 10px; }
ul.glance li { margin: 3px 0; }
table { border-collapse: collapse; margin: 8px 0 14px; font-size: 13px; }
th, td { padding: 3px 9px; border-bottom: 1px solid #e4e9ef; text-align: left;
         vertical-align: top; }
th { background: #f3f6f9; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.pass { color: #17683a; font-weight: 600; } td.fail { color: #b3261e; font-weight: 600; }
td.heat { text-align: right; font-variant-numeric: tabular-nums; }
nav a { margin-right: 14px; } svg { max-width: 100%; height: auto; }
.env { display: flex; flex-wrap: wrap; gap: 24px; } .env > div { flex: 1 1 380px; }
small, .note { color: #5b6b7c; }
h3.fail { color: #b3261e; } summary { cursor: pointer; margin: 8px 0; }
"""
MISSING = "\u2013"  # an en dash in an empty cell
VERDICT_CSS = {"pass": "pass", "FAIL": "fail"}


@dataclass(frozen=True)
class Cell:
    """One table cell: text (escaped when rendered), a CSS class and an optional inline style."""

    text: str
    css: str = ""
    style: str = ""

    def render(self) -> str:
        css = f' class="{self.css}"' if self.css else ""
        style = f' style="{self.style}"' if self.style else ""
        return f"<td{css}{style}>{html.escape(self.text)}</td>"


@dataclass(frozen=True)
class ReportData:
    """Everything the page shows; built by ``convbench.report.build_report``."""

    results: pd.DataFrame
    environments: Mapping[str, dict]
    bandwidth: Mapping[str, tuple[float, str]] = field(default_factory=dict)
    generated: str = ""
    source: str = ""


def number(value: float, digits: int = 3) -> Cell:
    return Cell(MISSING if _missing(value) else f"{value:.{digits}g}", "num")


def seconds(value: float) -> Cell:
    return Cell(MISSING if _missing(value) else format_seconds(value), "num")


def ratio(value: float) -> Cell:
    return Cell(MISSING if _missing(value) else f"{value:.3g}x", "num")


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def table(header: Sequence[str], rows: Iterable[Sequence[Cell | str]], caption: str = "") -> str:
    names = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    head = f"<thead><tr>{names}</tr></thead>" if any(header) else ""
    body = "".join(
        "<tr>"
        + "".join((c if isinstance(c, Cell) else Cell(str(c))).render() for c in row)
        + "</tr>"
        for row in rows
    )
    cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    return f"<table>{cap}{head}<tbody>{body}</tbody></table>"


def heat(ratio_to_tolerance: float, text: str) -> Cell:
    """Green well inside the tolerance, through yellow, to red past it."""
    if _missing(ratio_to_tolerance):
        return Cell(MISSING, "heat")
    r = max(0.0, min(ratio_to_tolerance, 2.0)) / 2.0
    hue = 120 * (1 - r)
    return Cell(text, "heat", f"background: hsl({hue:.0f}, 70%, 85%)")


def glance(data: ReportData) -> str:
    """A few sentences: which is fastest, by how much, do they agree, what is missing."""
    times = tables.op_times(data.results)
    items = []
    for machine, group in tables.fastest(times).groupby("machine"):
        wins = group.fastest.value_counts()
        ranking = ", ".join(
            f"<b>{html.escape(name)}</b> in {count}" for name, count in wins.items()
        )
        largest = next(
            group[group["size"] == group["size"].max()].sort_values("seconds").itertuples()
        )
        margin = (
            f", {largest.margin:.2g}x ahead of {largest.runner_up}" if largest.runner_up else ""
        )
        items.append(
            f"On <b>{html.escape(machine)}</b> the fastest backend is {ranking} of the "
            f"{len(group)} cases; at {largest.size}x{largest.size} "
            f"({largest.kernel}x{largest.kernel} kernel, {largest.dtype}) "
            f"{html.escape(largest.fastest)} takes {format_seconds(largest.seconds)}"
            f"{html.escape(margin)}."
        )
    pairs = tables.cpu_vs_gpu(data.results)
    if not pairs.empty:
        best = next(pairs.loc[[pairs.speedup.idxmax()]].itertuples())
        items.append(
            f"CPU vs GPU: up to <b>{best.speedup:.3g}x</b> ({html.escape(best.gpu_backend)} on "
            f"{html.escape(best.gpu_machine)} vs {html.escape(best.cpu_backend)} on "
            f"{html.escape(best.cpu_machine)}, {best.size}x{best.size}, k={best.kernel}, "
            f"{best.dtype}); {best.speedup_end_to_end:.3g}x counting the host/device transfers."
        )
    agree = tables.agreement(data.results, data.environments)
    bad = agree[~agree.ok]
    text = f"Agreement: {int(agree.ok.sum())} of {len(agree)} results within tolerance"
    if not bad.empty:
        worst = next(bad.loc[[bad.ratio.idxmax()]].itertuples())
        text += (
            f"; <b>{len(bad)} outside</b>, worst {html.escape(worst.backend)} {worst.dtype} "
            f"{worst.size}x{worst.size} k={worst.kernel} on {html.escape(worst.machine)} "
            f"({worst.ratio:.3g}x its tolerance)"
        )
    items.append(text + ".")
    status = data.results[data.results.suite == "Conv"].status.value_counts()
    items.append(
        f"Not run: {status.get('skipped', 0)} skipped and {status.get('failed', 0)} failed "
        "Conv results, listed with reasons below."
    )
    return '<ul class="glance">' + "".join(f"<li>{i}</li>" for i in items) + "</ul>"


def _pivot(
    frame: pd.DataFrame,
    rows: list[str],
    cell: Callable,
    column: str = "size",
    label: Callable[[object], str] = lambda size: f"{size}x{size}",
) -> str:
    """A row per ``rows`` key, a column per value of ``column``; ``cell(row)`` fills each."""
    values = sorted(frame[column].unique())
    body = []
    for key, group in frame.groupby(rows, sort=True):
        by_value = {getattr(row, column): row for row in group.itertuples()}
        key = key if isinstance(key, tuple) else (key,)
        body.append(
            [
                *(Cell(str(k), VERDICT_CSS.get(str(k), "")) for k in key),
                *(cell(by_value[v]) if v in by_value else Cell(MISSING) for v in values),
            ]
        )
    return table([*rows, *map(label, values)], body)


def details(summary: str, body: str) -> str:
    """A folded block: the page stays short, every number is one click away, no script needed."""
    return f"<details><summary>{summary}</summary>{body}</details>"


def machine_section(data: ReportData, machine: str, colors: dict[str, str]) -> str:
    times = tables.op_times(data.results)
    times = times[times.machine == machine]
    env = data.environments.get(machine, {})
    gpu = env.get("gpu") or "no GPU"
    parts = [
        f'<h2 id="m-{html.escape(machine)}">Machine {html.escape(machine)}</h2>',
        f'<p class="sub">{html.escape(str(env.get("cpu", "CPU not recorded")))}, '
        f"{env.get('cores', '?')} cores; {html.escape(str(gpu))}</p>",
    ]
    if times.empty:
        return "".join([*parts, "<p>No Conv.time_op results on this machine.</p>"])
    parts.append(plots.time_vs_size(times, colors, f"{machine}: time per op (lower is better)"))
    parts.append("<h3>Fastest backend per case</h3>")
    parts.append(
        _pivot(
            tables.fastest(times),
            ["dtype", "kernel"],
            lambda r: Cell(
                r.fastest + ("" if _missing(r.margin) else f" ({r.margin:.2g}x)"),
                "num",
            ),
        )
    )
    parts.append('<p class="note">In brackets: how much slower the runner-up is.</p>')
    floor, source = data.bandwidth.get(machine, (math.nan, "not recorded"))
    flow = tables.throughput(times, {machine: floor})
    parts.append("<h3>Throughput</h3>")
    parts.append(
        f'<p class="note">GB/s = bytes read and written (image, kernel, output) / median time, '
        f"at the largest image each backend ran; in brackets its share of the memory-bandwidth "
        f"floor, a numpy copy at {_gbps(floor)} ({html.escape(source)}).</p>"
    )
    largest = flow.sort_values("size").groupby(["backend", "dtype", "kernel"]).tail(1)
    parts.append(
        _pivot(
            largest,
            ["backend", "dtype"],
            lambda r: Cell(
                f"{r.gb_per_s:.3g} GB/s"
                + ("" if _missing(r.of_bandwidth) else f" ({r.of_bandwidth:.0%})")
                + f" at {r.size}x{r.size}",
                "num",
            ),
            column="kernel",
            label=lambda k: f"{k}x{k} kernel",
        )
    )
    every = _pivot(
        flow,
        ["backend", "dtype", "kernel"],
        lambda r: Cell(
            f"{format_seconds(r.seconds)} · {r.gb_per_s:.3g} GB/s"
            + ("" if _missing(r.of_bandwidth) else f" ({r.of_bandwidth:.0%})"),
            "num",
        ),
    )
    parts.append(details(f"Time per op and GB/s for all {len(flow)} cases", every))
    batch = data.results[
        (data.results.machine == machine)
        & (data.results.suite == "ConvBatch")
        & (data.results.metric == "time_op")
        & (data.results.status == "ok")
    ]
    if not batch.empty:
        parts.append("<h3>Batches</h3>")
        parts.append(
            _pivot(
                batch.rename(columns={"value": "seconds"}),
                ["backend", "dtype", "batch", "size"],
                lambda r: Cell(
                    f"{format_seconds(r.seconds)} ({format_seconds(r.seconds / r.batch)} an image)",
                    "num",
                ),
                column="kernel",
                label=lambda k: f"{k}x{k} kernel",
            )
        )
    return "".join(parts)


def _gbps(value: float) -> str:
    return "(unknown)" if _missing(value) else f"{value:.3g} GB/s"


def gpu_section(data: ReportData, colors: dict[str, str]) -> str:
    pairs = tables.cpu_vs_gpu(data.results)
    head = '<h2 id="gpu">CPU vs GPU</h2>'
    if pairs.empty:
        return head + (
            "<p>No case ran on both a CPU backend and the same library's GPU backend "
            "(e.g. torch-cpu and torch-cuda); run the suite on a GPU machine and commit its "
            "results next to these.</p>"
        )
    float32 = pairs[pairs.dtype == "float32"]
    figure = plots.speedups(float32 if not float32.empty else pairs, colors)
    pairs = pairs.assign(
        CPU=pairs.cpu_backend + " @ " + pairs.cpu_machine,
        GPU=pairs.gpu_backend + " @ " + pairs.gpu_machine,
    )
    speedup = _pivot(
        pairs,
        ["CPU", "GPU", "kernel", "dtype"],
        lambda r: Cell(f"{r.speedup:.3g}x · {r.speedup_end_to_end:.3g}x", "num"),
    )
    transfers = pairs.drop_duplicates(["GPU", "kernel", "dtype", "size"])
    transfer = _pivot(
        transfers,
        ["GPU", "kernel", "dtype"],
        lambda r: Cell(f"{format_seconds(r.transfer_s)} (op {format_seconds(r.gpu_s)})", "num"),
    )
    return "".join(
        [
            head,
            '<p class="note">CPU time / GPU time for the same case. The first number is the op '
            "alone with the data already on the device (Conv.time_op); the second counts the "
            "host/device transfers too (Transfer.time_end_to_end): what a caller holding numpy "
            "arrays gets.</p>",
            figure,
            speedup,
            "<h3>Where the GPU loses</h3>",
            _losses(pairs),
            "<h3>Transfer cost</h3>",
            '<p class="note">Transfer.time_end_to_end minus the op: upload of the image and '
            "download of the result.</p>",
            transfer,
        ]
    )


def settings_section(data: ReportData) -> str:
    sweep = tables.settings_sweep(data.results)
    head = '<h2 id="settings">Settings: TF32, cuDNN autotuning, JAX precision</h2>'
    if sweep.empty:
        return head + "<p>No ConvSettings results.</p>"

    def cell(r) -> Cell:
        text = format_seconds(r.seconds)
        if not r.default and not _missing(r.vs_default):
            text += f" ({r.vs_default:.3g}x)"
        if _missing(r.max_rel):
            return Cell(text, "num")
        text += f" · max_rel {r.max_rel:.2g} ({r.ratio:.2g} of {r.precision} tol.)"
        return heat(r.ratio, text)

    sweep = sweep.assign(
        setting=[
            s + (" (default)" if d else "")
            for s, d in zip(sweep.setting, sweep.default, strict=True)
        ]
    )
    return "".join(
        [
            head,
            '<p class="note">The same float32 op under each setting that changes speed or '
            "numbers (ConvSettings): time per op, in brackets the speed-up over the library's "
            "default setting on that machine (above 1: faster), and the error against the "
            "float64 reference where it was tracked, as a share of the tolerance of the "
            "arithmetic the setting asks for (TF32 or float32; colour as under Agreement). "
            "Every number names the setting that "
            "produced it; the other suites run with the library defaults, recorded per "
            "backend under Environments.</p>",
            _pivot(sweep, ["machine", "backend", "setting", "kernel"], cell),
        ]
    )


def _losses(pairs: pd.DataFrame) -> str:
    losses = tables.gpu_losses(pairs)
    lost = losses[losses.op_loses_up_to.notna() | losses.end_to_end_loses_up_to.notna()]
    if lost.empty:
        return "<p>The GPU backend is faster than its CPU twin in every paired case.</p>"

    def upto(size: float) -> Cell:
        return Cell(MISSING if _missing(size) else f"up to {int(size)}x{int(size)}", "num")

    rows = [
        [
            f"{r.gpu_backend} @ {r.gpu_machine}",
            f"{r.cpu_backend} @ {r.cpu_machine}",
            Cell(str(r.kernel), "num"),
            r.dtype,
            upto(r.op_loses_up_to),
            upto(r.end_to_end_loses_up_to),
        ]
        for r in lost.itertuples()
    ]
    return (
        '<p class="note">Images at and below these sizes ran slower on the GPU than on the CPU '
        "(speedup below 1): launch and synchronization costs that small images cannot hide, and "
        "with transfers, the copies to and from the device.</p>"
        + table(["GPU", "CPU", "kernel", "dtype", "op alone", "with transfers"], rows)
    )


def agreement_section(data: ReportData) -> str:
    agree = tables.agreement(data.results, data.environments)
    head = '<h2 id="agreement">Agreement with the float64 reference</h2>'
    if agree.empty:
        return head + "<p>No Conv.track_max_rel results.</p>"
    worst = agree.loc[agree.groupby(["machine", "backend", "dtype", "size"]).ratio.idxmax()]
    passed = worst.groupby(["machine", "backend", "dtype"]).ok.transform("all")
    summary = _pivot(
        worst.assign(verdict=passed.map({True: "pass", False: "FAIL"})),
        ["machine", "backend", "dtype", "precision", "verdict"],
        lambda r: heat(r.ratio, f"{r.max_rel:.2g} ({r.ratio:.2g} of tol., k={r.kernel})"),
    )
    every = _pivot(
        agree,
        ["machine", "backend", "dtype", "kernel", "precision"],
        lambda r: heat(r.ratio, f"{r.max_rel:.2g} / {r.tolerance:.2g}"),
    )
    return "".join(
        [
            head,
            '<p class="note">max_rel = max |result &minus; reference| / max |reference| '
            "(reference: the same op in float64 on the CPU), against the tolerance "
            "8·u·√(k²) for the unit roundoff u of the precision the arithmetic ran in (TF32 where "
            "the recorded settings allowed it). Each cell is the kernel size closest to its "
            "tolerance; colour: green well inside the tolerance, red past it.</p>",
            summary,
            details(f"max_rel / tolerance for all {len(agree)} results", every),
        ]
    )


def environment_section(data: ReportData) -> str:
    parts = ['<h2 id="environment">Environments</h2><div class="env">']
    for machine, env in sorted(data.environments.items()):
        floor, source = data.bandwidth.get(machine, (math.nan, "not recorded"))
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
        parts.append(
            f"<div><h3>{html.escape(machine)}</h3>"
            + table([], [[k, MISSING if v is None else str(v)] for k, v in facts])
            + table(["backend", "available", "settings / reason"], backends)
            + "</div>"
        )
    if not data.environments:
        parts.append("<p>No convbench-environment.json found next to the results.</p>")
    return "".join([*parts, "</div>"])


def not_run_section(data: ReportData) -> str:
    missing = tables.not_run(data.results, data.environments)
    parts = ['<h2 id="not-run">Skipped and failed</h2>']
    if missing.empty:
        return parts[0] + "<p>Every case ran.</p>"
    header = ["machine", "backend", "reason", "benchmarks", "dtypes", "sizes", "cases"]
    for status in ("failed", "skipped"):
        chosen = missing[missing.status == status]
        if chosen.empty:
            parts.append(f"<p>No case {status}.</p>")
            continue
        rows = [
            [
                r.machine,
                r.backend,
                r.reason,
                r.benchmarks,
                r.dtypes,
                r.sizes,
                Cell(str(r.cases), "num"),
            ]
            for r in chosen.itertuples()
        ]
        count = int(chosen.cases.sum())
        summary = f"{count} {status} result{'s' if count > 1 else ''} in {len(chosen)} group"
        summary += "s" if len(chosen) > 1 else ""
        if status == "failed":
            parts.append(f'<h3 class="fail">{summary}</h3>{table(header, rows)}')
        else:
            parts.append(
                f"<details><summary><b>{summary}</b>: backends missing on a machine and cases "
                f"the suite leaves out by design (show)</summary>{table(header, rows)}</details>"
            )
    return "".join(parts)


def page(data: ReportData) -> str:
    """The whole ``index.html``."""
    machines = sorted(data.results.machine.unique())
    colors = plots.backend_colors(data.results.backend.dropna())
    fixture = [env["fixture"] for env in data.environments.values() if env.get("fixture")]
    banner = f'<p class="fixture">{html.escape(fixture[0])}</p>' if fixture else ""
    nav = "".join(f'<a href="#m-{html.escape(m)}">{html.escape(m)}</a>' for m in machines)
    nav += '<a href="#gpu">CPU vs GPU</a><a href="#settings">settings</a>'
    nav += '<a href="#agreement">agreement</a>'
    nav += '<a href="#environment">environments</a><a href="#not-run">skipped/failed</a>'
    body = [
        "<h1>convbench report</h1>",
        f'<p class="sub">2-D convolution, correlate mode="same", zero padding; '
        f"{len(machines)} machine(s) from {html.escape(data.source)}; generated "
        f"{html.escape(data.generated)}. History per commit: <code>asv publish</code>.</p>",
        banner,
        f"<nav>{nav}</nav>",
        "<h2>At a glance</h2>",
        glance(data),
        *(machine_section(data, m, colors) for m in machines),
        gpu_section(data, colors),
        settings_section(data),
        agreement_section(data),
        environment_section(data),
        not_run_section(data),
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>convbench report</title><style>{CSS}</style></head><body>"
        + "\n".join(body)
        + "</body></html>\n"
    )
