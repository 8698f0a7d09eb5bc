"""``convbench env``: record this machine's hardware, versions and backend settings as JSON."""

from __future__ import annotations

import json
from pathlib import Path

import click

from convbench import atomic
from convbench.environment import collect_environment, default_machine_name, environment_path
from convbench.sweep import OutputError, check_folder


def writable(path: Path) -> Path:
    """``path`` if a file can be written there, checked before the environment is collected."""
    if path.is_dir():
        raise click.BadParameter(
            f"{str(path)!r} is a folder; give a file name", param_hint="--output"
        )
    try:
        check_folder(path.parent)
    except OutputError as error:
        raise click.BadParameter(str(error), param_hint="--output") from error
    return path


@click.command("env")
@click.option(
    "--machine",
    default=None,
    help="Machine name, the same as asv's (default: <gpu or cpu>-<cores>core-<cpu model>).",
)
@click.option(
    "--output",
    type=click.Path(path_type=Path),
    default=None,
    help="Where to write the JSON (default: results/<machine>/convbench-environment.json).",
)
def env_command(machine: str | None, output: Path | None) -> None:
    """Write what asv's machine.json leaves out: GPU, driver, CUDA, cuDNN, versions, settings.

    The file is replaced atomically: a reader sees the old record or the new one, never a part.
    Exit status: 0 when written; 1 when writing failed; 2 on bad usage (an output that cannot be
    written there, found before anything is collected).
    """
    machine = machine or default_machine_name()
    output = writable(output or environment_path("results", machine))
    record = collect_environment(machine)
    try:
        atomic.write_text(output, json.dumps(record, indent=2, sort_keys=False) + "\n")
    except OSError as error:
        raise click.ClickException(
            f"cannot write {str(output)!r}: {error.strerror or error}"
        ) from error
    available = [name for name, backend in record["backends"].items() if backend["available"]]
    click.echo(f"{output}: {record['cpu']}, gpu {record['gpu']}; backends: {', '.join(available)}")
