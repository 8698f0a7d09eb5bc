"""``convbench list``: every known backend, whether it runs here and why not."""

from __future__ import annotations

import platform

import click
from rich.console import Console
from rich.table import Table

from convbench.registry import list_backends


@click.command("list")
@click.option(
    "--deep/--cheap",
    default=True,
    show_default=True,
    help="Ask each framework whether its device is really usable (imports it), "
    "or judge only from installed packages and device nodes.",
)
def list_command(deep: bool) -> None:
    """List every known backend, available or not, with the reason and its versions."""
    from convbench.registry import get_backend

    table = Table(
        title=f"convbench backends on {platform.node()} (Python {platform.python_version()})"
    )
    for column in ("backend", "library", "device", "available", "versions / reason"):
        table.add_column(column)
    for status in list_backends(deep=deep):
        if status.available and deep:
            settings = get_backend(status.name).settings()
            detail = ", ".join(f"{k}={v}" for k, v in settings.items())
        else:
            detail = status.reason or ""
        mark = "[green]yes[/]" if status.available else "[red]no[/]"
        table.add_row(status.name, status.library, status.device, mark, detail)
    Console().print(table)
