"""The ``convbench`` command. Each subcommand lives in its own module of this package, imported
only when that subcommand runs (``convbench list`` need not import the report's plotting stack).

Exit codes: 0 ok, 1 a failure in the work, 2 bad usage (click's own code for usage errors),
128 + the signal's number when SIGINT (130) or SIGTERM (143) stopped a sweep.
"""

from __future__ import annotations

import importlib

import click

from convbench import __version__

# name -> "module:attribute" of the click command
COMMANDS = {
    "list": "convbench.cli.list_cmd:list_command",
    "explain": "convbench.cli.explain_cmd:explain_command",
    "run": "convbench.cli.run_cmd:run_command",
    "compare": "convbench.cli.compare_cmd:compare_command",
    "report": "convbench.cli.report_cmd:report_command",
    "env": "convbench.cli.env_cmd:env_command",
    "recommend": "convbench.cli.recommend_cmd:recommend_command",
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported by name when asked for (click's documented
    pattern for lazy subcommands)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *COMMANDS])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return super().get_command(ctx, cmd_name)
        module, _, attribute = COMMANDS[cmd_name].partition(":")
        return getattr(importlib.import_module(module), attribute)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="convbench")
def main() -> None:
    """Benchmark 2-D convolution across libraries and devices: speed and numerical agreement."""
