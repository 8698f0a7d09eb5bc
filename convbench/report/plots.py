"""Figures as inline SVG strings (matplotlib, Agg): the page needs no files and no network.

Labels carry results text (backend and machine names): it goes through ``plain``, so a ``$`` in
a name is a dollar sign, not mathtext, and TeX is off while a figure is drawn. matplotlib's SVG
writer escapes the text itself, which is why the page can insert these figures as markup.

Every point that is a noisy timing (``tables.trust``) is drawn hollow, in every figure.
"""

from __future__ import annotations

import functools
import io

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pandas as pd

DTYPE_STYLE = {"float32": "-", "float64": ":", "float16": "--", "bfloat16": "-."}
# Line style per arithmetic the records give (None: not recorded).
METHOD_STYLE = {"direct": "-", "fft": "--", None: ":"}
METHOD_MARKER = {"direct": "o", "fft": "^", None: "s"}
STYLE = {
    "svg.fonttype": "none",
    "font.size": 9,
    "axes.grid": True,
    "text.usetex": False,
}


def plain(text: object) -> str:
    """Results text for a label, shown as written: ``$`` escaped so mathtext leaves it alone."""
    return str(text).replace("$", r"\$")


def backend_colors(backends) -> dict[str, str]:
    """One colour per backend, the same in every figure of a page."""
    palette = plt.get_cmap("tab10").colors
    return {
        name: matplotlib.colors.to_hex(palette[i % len(palette)])
        for i, name in enumerate(sorted(set(backends)))
    }


def to_svg(figure) -> str:
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight")
    plt.close(figure)
    svg = buffer.getvalue()
    return svg[svg.index("<svg") :]


def quiet_minor_ticks(ax) -> None:
    """Label a log axis at its decades only: minor labels (2x10^0, 3x10^0, ...) crowd it."""
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())


def size_ticks(ax, sizes) -> None:
    """Tick the log x axis at the measured image sizes, written out (64, 256, 1024)."""
    ax.set_xticks(sorted(set(sizes)))
    ax.get_xaxis().set_major_formatter(matplotlib.ticker.ScalarFormatter())
    ax.get_xaxis().set_minor_locator(matplotlib.ticker.NullLocator())


def styled(draw):
    """Run a figure function under ``STYLE``, leaving the caller's rcParams as they were."""

    @functools.wraps(draw)
    def wrapper(*args, **kwargs):
        with plt.rc_context(STYLE):
            return draw(*args, **kwargs)

    return wrapper


@styled
def time_vs_size(times: pd.DataFrame, colors: dict[str, str], title: str) -> str:
    """Seconds per op against image size, log-log: a panel per kernel size, a line per backend
    (line style per dtype)."""
    kernels = sorted(times.kernel.unique())
    # Two panels a row keeps the text legible on a page 1200 px wide.
    ncols = min(2, len(kernels))
    nrows = -(-len(kernels) // ncols)
    figure, axes = plt.subplots(
        nrows,
        ncols,
        figsize=(4.6 * ncols + 1.8, 3.0 * nrows + 0.4),
        sharey=True,
        squeeze=False,
        layout="constrained",
    )
    axes = axes.ravel()
    for ax in axes[len(kernels) :]:
        ax.set_visible(False)
    for ax, kernel in zip(axes, kernels, strict=False):
        panel = times[times.kernel == kernel]
        for (backend, dtype), line in panel.groupby(["backend", "dtype"]):
            line = line.sort_values("size")
            color = colors[backend]
            ax.plot(
                line["size"],
                line["seconds"],
                DTYPE_STYLE.get(dtype, "-"),
                color=color,
                label=plain(f"{backend} {dtype}"),
            )
            points(ax, line["size"], line["seconds"], line["noisy"], color)
        ax.set(xscale="log", yscale="log", title=f"{kernel}x{kernel} kernel", xlabel="image size")
        ax.tick_params(labelleft=True)
        size_ticks(ax, panel["size"])
    for ax in axes[::ncols]:
        ax.set_ylabel("seconds per op")
    legend_beside(figure, axes[: len(kernels)])
    figure.suptitle(plain(title), fontweight="bold")
    return to_svg(figure)


def points(ax, x, y, noisy, color: str, marker: str = "o", size: float = 3.5) -> None:
    """Markers at (x, y): filled, or hollow where ``noisy`` (a noisy timing)."""
    noisy = pd.Series(list(noisy), dtype=bool).to_numpy()
    x, y = pd.Series(list(x)).to_numpy(), pd.Series(list(y)).to_numpy()
    style = {"linestyle": "none", "marker": marker, "markersize": size, "color": color}
    if (~noisy).any():
        ax.plot(x[~noisy], y[~noisy], **style)
    if noisy.any():
        ax.plot(x[noisy], y[noisy], markerfacecolor="white", markeredgewidth=1.2, **style)


def legend_beside(figure, axes, **style) -> None:
    """One legend at the right of ``figure``: each label of ``axes`` once, in the order they
    first appear, then the hollow markers' entry; ``style`` goes to ``figure.legend``."""
    handles, labels = [], []
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            if label not in labels:
                handles.append(handle)
                labels.append(label)
    note = hollow_note()
    figure.legend(
        [*handles, note],
        [*labels, note.get_label()],
        loc="outside right center",
        frameon=False,
        **style,
    )


def hollow_note() -> matplotlib.lines.Line2D:
    """A legend entry for the hollow markers."""
    return matplotlib.lines.Line2D(
        [],
        [],
        linestyle="none",
        marker="o",
        color="gray",
        markerfacecolor="white",
        label="hollow: noisy timing",
    )


@styled
def speedups(pairs: pd.DataFrame, colors: dict[str, str]) -> str:
    """CPU time / GPU time against image size: solid for the op alone, dashed end to end."""
    figure, ax = plt.subplots(figsize=(10.5, 3.4), layout="constrained")
    for key, line in pairs.groupby(["cpu_machine", "cpu_backend", "gpu_machine", "gpu_backend"]):
        cpu_machine, cpu_backend, gpu_machine, gpu_backend = key
        for (kernel, dtype), case in line.groupby(["kernel", "dtype"]):
            case = case.sort_values("size")
            label = plain(
                f"{gpu_backend}@{gpu_machine} vs {cpu_backend}@{cpu_machine}, k={kernel} {dtype}"
            )
            color = colors[gpu_backend]
            marker = "o" if kernel == line.kernel.min() else "s"
            ax.plot(case["size"], case["speedup"], "-", color=color, label=label)
            ax.plot(case["size"], case["speedup_end_to_end"], "--", color=color)
            points(ax, case["size"], case["speedup"], case["noisy"], color, marker)
            points(
                ax,
                case["size"],
                case["speedup_end_to_end"],
                case["noisy_end_to_end"],
                color,
                marker,
            )
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set(xscale="log", yscale="log", xlabel="image size", ylabel="speedup (CPU time / GPU time)")
    size_ticks(ax, pairs["size"])
    ax.set_title("GPU speedup: solid = op alone, dashed = with host/device transfers")
    legend_beside(figure, [ax], fontsize=7)
    return to_svg(figure)


@styled
def roofline(placed: pd.DataFrame, limits: pd.DataFrame, colors: dict[str, str], title: str):
    """Achieved GFLOP/s (the direct method's work over the time) against arithmetic intensity,
    log-log, a panel per dtype: every result (``tables.roofline_points``; marker per
    arithmetic, hollow when noisy) under the memory-bandwidth line and the peak rate
    (``limits``: ``tables.ceilings``), each drawn where known."""
    dtypes = sorted(placed.dtype.unique())
    figure, axes = plt.subplots(
        1,
        len(dtypes),
        figsize=(4.8 * len(dtypes) + 2.2, 3.4),
        squeeze=False,
        layout="constrained",
    )
    known = limits.set_index("dtype")
    for ax, dtype in zip(axes[0], dtypes, strict=True):
        panel = placed[placed.dtype == dtype]
        for (backend, method), group in panel.groupby(
            ["backend", panel.arithmetic.fillna("")], sort=True
        ):
            points(
                ax,
                group.intensity,
                group.gflops,
                group.noisy,
                colors[backend],
                METHOD_MARKER.get(method or None, "s"),
                size=4.5,
            )
        low, high = panel.intensity.min() / 2, panel.intensity.max() * 2
        peak, floor = (
            known.loc[dtype, ["peak_gflops", "bandwidth_gbs"]]
            if dtype in known.index
            else (float("nan"), float("nan"))
        )
        if peak == peak:
            low, high = min(low, peak / floor / 4), max(high, peak / floor * 4)
        if floor == floor:
            reach = [low, high] if peak != peak else [low, min(high, peak / floor)]
            ax.plot(reach, [i * floor for i in reach], "k-", linewidth=1)
            ax.annotate(
                f"{floor:.3g} GB/s",
                (low, low * floor),
                fontsize=7,
                xytext=(4, 6),
                textcoords="offset points",
                rotation=0,
            )
        if peak == peak:
            ax.plot([peak / floor, high], [peak, peak], "k-", linewidth=1)
            ax.annotate(
                f"peak {peak:.3g} GFLOP/s",
                (high, peak),
                fontsize=7,
                ha="right",
                xytext=(0, 4),
                textcoords="offset points",
            )
        ax.set(
            xscale="log",
            yscale="log",
            xlabel="arithmetic intensity (flop/byte, direct method)",
            title=plain(dtype if peak == peak else f"{dtype}: no peak recorded"),
        )
        quiet_minor_ticks(ax)
    axes[0][0].set_ylabel("GFLOP/s (direct-method work / time)")
    backends = sorted(placed.backend.unique())
    handles = [
        matplotlib.lines.Line2D(
            [], [], linestyle="none", marker="o", color=colors[b], label=plain(b)
        )
        for b in backends
    ]
    methods = [
        m for m in ("direct", "fft", None) if (placed.arithmetic.fillna("") == (m or "")).any()
    ]
    handles += [
        matplotlib.lines.Line2D(
            [],
            [],
            linestyle="none",
            marker=METHOD_MARKER[m],
            color="gray",
            label=m or "arithmetic not recorded",
        )
        for m in methods
    ]
    handles.append(hollow_note())
    figure.legend(handles=handles, loc="outside right center", frameon=False, fontsize=7)
    figure.suptitle(plain(title), fontweight="bold")
    return to_svg(figure)


@styled
def crossover(times: pd.DataFrame, sizes, colors: dict[str, str], title: str) -> str:
    """Seconds per op against kernel size, log-log, a panel per image size of ``sizes``: a line
    per backend, solid for direct sums, dashed for FFTs, dotted where the arithmetic was not
    recorded; hollow points are noisy."""
    figure, axes = plt.subplots(
        1,
        len(sizes),
        figsize=(4.8 * len(sizes) + 2.2, 3.2),
        squeeze=False,
        sharey=False,
        layout="constrained",
    )
    for ax, size in zip(axes[0], sizes, strict=True):
        panel = times[times["size"] == size]
        for backend, line in panel.groupby("backend", sort=True):
            line = line.sort_values("kernel")
            method = line.arithmetic.dropna().iloc[0] if line.arithmetic.notna().any() else None
            color = colors[backend]
            label = plain(f"{backend} ({method or 'arithmetic not recorded'})")
            ax.plot(
                line.kernel, line.seconds, METHOD_STYLE.get(method, ":"), color=color, label=label
            )
            points(ax, line.kernel, line.seconds, line.noisy, color, METHOD_MARKER.get(method, "s"))
        ax.set(xscale="log", yscale="log", xlabel="kernel size", title=f"{size}x{size} image")
        quiet_minor_ticks(ax)
        ax.set_xticks(sorted(panel.kernel.unique()))
        ax.get_xaxis().set_major_formatter(matplotlib.ticker.ScalarFormatter())
        ax.get_xaxis().set_minor_locator(matplotlib.ticker.NullLocator())
    axes[0][0].set_ylabel("seconds per op")
    legend_beside(figure, axes[0], fontsize=7)
    figure.suptitle(plain(title), fontweight="bold")
    return to_svg(figure)
