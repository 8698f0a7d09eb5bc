"""``convbench list``: every known backend, whether it runs here and why not."""

from __future__ import annotations

import functools
import platform
from importlib import metadata

import click
from rich.markup import escape
from rich.table import Table

from convbench.cli.common import console_for_tables
from convbench.failures import describe
from convbench.registry import BackendStatus, get_backend, list_backends

CHECKS = {
    False: "cheap check: installed packages and GPU device nodes, no framework imported "
    "(--deep asks each framework)",
    True: "deep check: each framework imported and asked for its device",
}


@functools.cache
def _distributions() -> dict[str, list[str]]:
    return metadata.packages_distributions()


def installed_versions(modules: tuple[str, ...]) -> str:
    """``torch 2.5.1``, read from the installed packages' metadata (nothing imported)."""
    found = []
    for module in modules:
        for distribution in _distributions().get(module, []):
            found.append(f"{distribution} {metadata.version(distribution)}")
    return ", ".join(found)


def detail(status: BackendStatus, deep: bool) -> str:
    """The last column: why not, or the versions (and with --deep, the settings)."""
    if not status.available:
        return status.reason or ""
    backend = get_backend(status.name)
    if not deep:
        return installed_versions(backend.requires)
    try:
        settings = backend.settings()
    except Exception as error:  # a backend that cannot report is shown, not fatal
        return f"settings() failed: {describe(error)}"
    return ", ".join(f"{k}={v}" for k, v in settings.items())


@click.command("list")
@click.option(
    "--deep",
    is_flag=True,
    help="Ask each framework whether its device is really usable (imports it: seconds) instead "
    "of judging from installed packages and device nodes.",
)
def list_command(deep: bool) -> None:
    """List every known backend, available or not, with the reason and its versions."""
    table = Table(
        title=f"convbench backends on {escape(platform.node())} "
        f"(Python {platform.python_version()})",
        caption=CHECKS[deep],
    )
    for column in ("backend", "library", "device", "available", "versions / reason"):
        table.add_column(column)
    for status in list_backends(deep=deep):
        mark = "[green]yes[/]" if status.available else "[red]no[/]"
        cells = (status.name, status.library, status.device)
        table.add_row(*map(escape, cells), mark, escape(detail(status, deep)))
    console_for_tables().print(table)
