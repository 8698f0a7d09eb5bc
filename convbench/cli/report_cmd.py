"""``convbench report``: asv results of every machine -> one self-contained ``index.html``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click
from asv import util

from convbench.report import NoResults, Problem, read_model, write_page
from convbench.timing import copy_bandwidth


@click.command("report")
@click.argument(
    "results_dir",
    default="results",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
)
@click.option(
    "--output",
    "-o",
    default="site",
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for index.html.",
)
@click.option(
    "--measure-bandwidth/--no-measure-bandwidth",
    default=True,
    show_default=True,
    help="For a machine whose name is this host's and that recorded no memory bandwidth, "
    "measure a numpy copy now (about a second).",
)
@click.option(
    "--asv-publish",
    is_flag=True,
    help="Also run `asv publish` (needs asv.conf.json here) for asv's history site.",
)
def report_command(
    results_dir: Path, output: Path, measure_bandwidth: bool, asv_publish: bool
) -> None:
    """Write OUTPUT/index.html from the asv results of all machines under RESULTS_DIR.

    The page opens from disk and works offline (figures are inline SVG, no scripts): per machine
    time against image size, throughput and the CPU's roofline; the backend to use per case and
    where FFT methods overtake direct sums; CPU vs GPU speedups with and without transfers;
    every pair of machines side by side with what differs between their environments;
    agreement with the float64 reference against the tolerances the run recorded, each
    backend's library, device and precision as recorded, each machine's environment, and every
    skipped or failed result with the reason its record gives. A noisy time (wide spread, too
    few samples, a busy machine) is marked ! and drawn hollow; ~ marks two times tied within
    their spread.

    asv's own site (history per commit) is separate: `asv publish` writes it to asv.conf.json's
    html_dir (run here with --asv-publish), `asv preview` serves it.

    Results are not taken on trust: a file that cannot be read, a benchmark whose values do not
    fit its parameters and a value no measurement can have (a negative time, say) are each
    named in a warning on standard error, left out of the page's results and listed at its top.

    Exit status: 0 when the page was written (warnings or not), 1 when none could be (no
    readable results, output folder not writable), 2 on bad usage.
    """
    try:
        model = read_model(results_dir, copy_bandwidth if measure_bandwidth else None)
    except NoResults as error:
        _warn(error.problems)
        raise click.ClickException(str(error)) from error
    except (ValueError, OSError) as error:
        raise click.ClickException(str(error)) from error
    _warn(model.problems)
    try:
        index = write_page(model, output)
    except ImportError as error:  # the page's matplotlib or Jinja2
        raise click.ClickException(
            f"the report needs {error.name or error}: pip install 'convbench[report]'"
        ) from error
    except OSError as error:
        raise click.ClickException(f"cannot write {output / 'index.html'}: {error}") from error
    click.echo(f"report: {index.resolve()}")
    config = Path("asv.conf.json")
    if not asv_publish:
        click.echo("history per commit: `asv publish && asv preview` (asv's own site)")
        return
    if not config.is_file():
        raise click.ClickException("--asv-publish needs asv.conf.json in the current folder")
    html_dir = util.load_json(str(config), js_comments=True).get("html_dir", "html")
    done = subprocess.run([sys.executable, "-m", "asv", "publish"], check=False)
    if done.returncode:
        raise click.ClickException(f"`asv publish` failed with status {done.returncode}")
    click.echo(f"asv site: {Path(html_dir).resolve() / 'index.html'} (serve: asv preview)")


def _warn(problems: tuple[Problem, ...]) -> None:
    for problem in problems:
        click.echo(f"warning: {problem}", err=True)
