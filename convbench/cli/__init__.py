"""The ``convbench`` command. Each subcommand lives in its own module of this package.

Exit codes: 0 ok, 1 a failure in the work, 2 bad usage (click's own code for usage errors).
"""

from __future__ import annotations

import click

from convbench import __version__
from convbench.cli.compare_cmd import compare_command
from convbench.cli.env_cmd import env_command
from convbench.cli.explain_cmd import explain_command
from convbench.cli.list_cmd import list_command
from convbench.cli.report_cmd import report_command
from convbench.cli.run_cmd import run_command


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="convbench")
def main() -> None:
    """Benchmark 2-D convolution across libraries and devices: speed and numerical agreement."""


main.add_command(list_command)
main.add_command(explain_command)
main.add_command(run_command)
main.add_command(compare_command)
main.add_command(report_command)
main.add_command(env_command)
