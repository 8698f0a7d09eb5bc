"""Figures as inline SVG strings (matplotlib, Agg): the page needs no files and no network.

Labels carry results text (backend and machine names): it goes through ``plain``, so a ``$`` in
a name is a dollar sign, not mathtext, and TeX is off while a figure is drawn. matplotlib's SVG
writer escapes the text itself, which is why the page can insert these figures as markup.
"""

from __future__ import annotations

import functools
import io

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pandas as pd

DTYPE_STYLE = {"float32": "-", "float64": ":", "float16": "--", "bfloat16": "-."}
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
            ax.plot(
                line["size"],
                line["seconds"],
                DTYPE_STYLE.get(dtype, "-"),
                marker="o",
                markersize=3,
                color=colors[backend],
                label=plain(f"{backend} {dtype}"),
            )
        ax.set(xscale="log", yscale="log", title=f"{kernel}x{kernel} kernel", xlabel="image size")
        ax.tick_params(labelleft=True)
        size_ticks(ax, panel["size"])
    for ax in axes[::ncols]:
        ax.set_ylabel("seconds per op")
    handles, labels = axes[0].get_legend_handles_labels()
    for ax in axes[1 : len(kernels)]:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            if label not in labels:
                handles.append(handle)
                labels.append(label)
    figure.legend(handles, labels, loc="outside right center", frameon=False)
    figure.suptitle(plain(title), fontweight="bold")
    return to_svg(figure)


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
            ax.plot(case["size"], case["speedup"], "-", marker=marker, color=color, label=label)
            ax.plot(case["size"], case["speedup_end_to_end"], "--", marker=marker, color=color)
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set(xscale="log", yscale="log", xlabel="image size", ylabel="speedup (CPU time / GPU time)")
    size_ticks(ax, pairs["size"])
    ax.set_title("GPU speedup: solid = op alone, dashed = with host/device transfers")
    figure.legend(loc="outside right center", frameon=False, fontsize=7)
    return to_svg(figure)
