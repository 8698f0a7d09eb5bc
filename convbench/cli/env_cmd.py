"""``convbench env``: record this machine's hardware, versions and backend settings as JSON."""

from __future__ import annotations

import json
from pathlib import Path

import click

from convbench.environment import collect_environment, default_machine_name, environment_path


@click.command("env")
@click.option(
    "--machine",
    default=None,
    help="Machine name, the same as asv's (default: <gpu or cpu>-<cores>core-<cpu model>).",
)
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Where to write the JSON (default: results/<machine>/convbench-environment.json).",
)
def env_command(machine: str | None, output: Path | None) -> None:
    """Write what asv's machine.json leaves out: GPU, driver, CUDA, cuDNN, versions, settings."""
    machine = machine or default_machine_name()
    output = output or environment_path("results", machine)
    record = collect_environment(machine)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(record, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    available = [name for name, backend in record["backends"].items() if backend["available"]]
    click.echo(f"{output}: {record['cpu']}, gpu {record['gpu']}; backends: {', '.join(available)}")
