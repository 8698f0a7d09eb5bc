"""``convbench compare``: two backends, two run files, two asv machine folders; the speed column's
words and its within-the-spread mark; unreadable and corrupt inputs."""

from __future__ import annotations

from collections import namedtuple
from pathlib import Path

import pytest
from click.testing import CliRunner

from convbench.cli import main
from convbench.cli.compare_cmd import WITHIN_SPREAD, speed_cell
from convbench.sweep import STREAM_SUFFIX, WRITERS

FIXTURE = Path(__file__).parent / "data" / "results"
QUICK = ["--min-run-time", "0.01"]
TINY = ["--size", "16", "--size", "24", "--kernel-size", "3"]
Row = namedtuple("Row", "median_s_a q25_s_a q75_s_a median_s_b q25_s_b q75_s_b")


def invoke(*args: str):
    return CliRunner().invoke(main, list(args))


def said(result) -> str:
    """The command's output with line wrapping undone."""
    return " ".join(result.output.split())


@pytest.mark.parametrize(
    ("times_a", "times_b", "cell"),
    [
        ((1.0, 0.9, 1.1), (12.0, 11.0, 13.0), "12x faster"),
        ((12.0, 11.0, 13.0), (1.0, 0.9, 1.1), "12x slower"),
        ((2.0, 1.9, 2.1), (3.0, 2.9, 3.1), "1.5x faster"),
        ((1.0, 0.9, 1.1), (1.05, 1.0, 1.2), "~1.05x faster"),  # the quartiles overlap
        ((1.05, 1.0, 1.2), (1.0, 0.9, 1.1), "~1.05x slower"),
        ((1.0, 1.0, 1.0), (1.0, 1.0, 1.0), "~same"),
        ((float("nan"),) * 3, (1.0, 0.9, 1.1), "-"),
    ],
)
def test_speed_cell_says_how_many_times_faster_or_slower_a_is(times_a, times_b, cell):
    assert speed_cell(Row(*times_a, *times_b)) == cell


def test_compare_two_backends_reports_speed_and_agreement():
    result = invoke("compare", "scipy-correlate2d", "torch-cpu", "--size", "16", "-k", "3",
                    "-k", "4", *QUICK)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "A = scipy-correlate2d B = torch-cpu (A vs B: how many times faster or slower A is" in (
        said(result)
    )
    lines = [line for line in result.output.splitlines() if "float32" in line]
    assert len(lines) == 2
    assert all(line.count(" ok ") >= 3 for line in lines)  # A, B and A-vs-B agreement
    assert all(("x faster" in line) != ("x slower" in line) for line in lines)


def test_compare_exits_1_when_one_backend_cannot_run_the_case():
    # scipy has no float16: nothing to compare torch-cpu with.
    result = invoke("compare", "torch-cpu", "scipy-correlate2d", "--size", "16", "-k", "3",
                    "--dtype", "float16", *QUICK)  # fmt: skip
    assert result.exit_code == 1, result.output
    assert "unsupported" in result.output


@pytest.fixture(scope="module")
def run_files(tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("runs")
    first, second = folder / "a.csv", folder / "b.json"
    for backends, out in ((["scipy-correlate2d", "torch-cpu"], first), (["torch-cpu"], second)):
        chosen = [arg for name in backends for arg in ("-b", name)]
        result = invoke("run", *chosen, *TINY, *QUICK, "-o", str(out))
        assert result.exit_code == 0, result.output
    return first, second


def test_compare_two_result_files(run_files):
    result = invoke("compare", *map(str, run_files))
    assert result.exit_code == 0, result.output
    rows = [line for line in result.output.splitlines() if "torch-cpu" in line]
    assert len(rows) == 2  # the cases both files hold


def test_compare_reads_the_stream_of_a_run_that_did_not_end(run_files, tmp_path):
    first, _ = run_files
    stream = tmp_path / f"killed.csv{STREAM_SUFFIX}"
    records = invoke("run", "-b", "torch-cpu", "--size", "16", "-k", "3", *QUICK,
                     "-o", str(tmp_path / "done.jsonl"))  # fmt: skip
    assert records.exit_code == 0, records.output
    stream.write_text((tmp_path / "done.jsonl").read_text() + '{"backend": "torch-')
    result = invoke("compare", str(first), str(stream))
    assert result.exit_code == 0, result.output
    assert len([line for line in result.output.splitlines() if "torch-cpu" in line]) == 1


def test_compare_two_machine_folders():
    result = invoke("compare", str(FIXTURE / "fixture-cpu"), str(FIXTURE / "fixture-gpu"))
    assert result.exit_code == 0, result.output
    rows = [line for line in result.output.splitlines() if "torch-cpu" in line]
    assert len(rows) == 12  # torch-cpu is on both machines: 3 sizes x 2 kernels x 2 dtypes
    # The fixture's two machines hold the same numbers: every difference is within the spread.
    assert all("~same" in row for row in rows)
    assert WITHIN_SPREAD in said(result)


def test_compare_a_results_root_with_two_machines_is_bad_usage():
    result = invoke("compare", str(FIXTURE), str(FIXTURE / "fixture-gpu"))
    assert result.exit_code == 2
    assert "point at one machine's folder" in result.output


CORRUPT = {
    ".csv": b"\x00\xff\xfe not a table \x00",
    ".json": b'{"backend": "torch-cpu", "size":',
    ".jsonl": b'{"no": "case fields"}\n',
    ".parquet": b"PAR1 truncated",
}


@pytest.mark.parametrize("suffix", sorted(WRITERS))
def test_a_corrupt_results_file_is_bad_usage_with_its_name(run_files, tmp_path, suffix):
    bad = tmp_path / f"bad{suffix}"
    bad.write_bytes(CORRUPT[suffix])
    result = invoke("compare", str(run_files[0]), str(bad))
    assert result.exit_code == 2, result.output
    assert f"cannot read '{bad}' as convbench results" in said(result)
    assert "Traceback" not in result.output


def test_a_results_file_of_unknown_format_is_bad_usage(run_files, tmp_path):
    bad = tmp_path / "results.xlsx"
    bad.write_text("x")
    result = invoke("compare", str(run_files[0]), str(bad))
    assert result.exit_code == 2
    assert "must end in one of ['.csv', '.json', '.jsonl', '.parquet']" in said(result)


def test_a_folder_without_results_is_bad_usage(run_files, tmp_path):
    result = invoke("compare", str(run_files[0]), str(tmp_path))
    assert result.exit_code == 2
    assert "holds 0 machines" in said(result)


@pytest.mark.parametrize(
    "args", [["compare", "torch-cpu"], ["compare", "torch-cpu", "not-a-backend-or-path"]]
)
def test_bad_usage_exits_2(args):
    assert invoke(*args).exit_code == 2
