"""``convbench compare``: two backends, two run files, two asv machine folders; the speed column's
words and its within-the-spread mark; unreadable and corrupt inputs."""

from __future__ import annotations

from collections import namedtuple
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from convbench.cli import main
from convbench.cli.compare_cmd import (
    WITHIN_SPREAD,
    ResultsSet,
    compare_sets,
    conclusion,
    speed_cell,
)
from convbench.sweep import STREAM_SUFFIX, WRITERS

FIXTURE = Path(__file__).parent / "data" / "results"
QUICK = ["--min-run-time", "0.01", "--no-wait"]
TINY = ["--size", "16", "--size", "24", "--kernel-size", "3"]
Row = namedtuple("Row", "seconds_a seconds_b tied noisy")


def invoke(*args: str):
    return CliRunner().invoke(main, list(args))


def said(result) -> str:
    """The command's output with line wrapping undone."""
    return " ".join(result.output.split())


@pytest.mark.parametrize(
    ("row", "cell"),
    [
        (Row(1.0, 12.0, False, False), "12x faster"),
        (Row(12.0, 1.0, False, False), "12x slower"),
        (Row(2.0, 3.0, False, False), "1.5x faster"),
        (Row(1.0, 1.05, True, False), "~1.05x faster"),  # the quartiles overlap
        (Row(1.05, 1.0, True, False), "~1.05x slower"),
        (Row(1.0, 1.0, True, False), "~same"),
        (Row(1.0, 12.0, False, True), "12x faster !"),  # either time is noisy
        (Row(1.0, 1.05, True, True), "~1.05x faster !"),
        (Row(1.0, 12.0, pd.NA, False), "12x faster"),  # no quartiles: not known to overlap
        (Row(float("nan"), 1.0, None, False), "-"),
    ],
)
def test_speed_cell_says_how_many_times_faster_or_slower_a_is(row, cell):
    assert speed_cell(row) == cell


def times(threads: list[int | None], seconds: float, noisy: bool = False) -> pd.DataFrame:
    """A results set's times: torch-cpu on one case at each thread count."""
    rows = [
        {"backend": "torch-cpu", "batch": 1, "size": 64, "kernel": 3, "dtype": "float32",
         "threads": count, "seconds": seconds / (count or 1), "q25": seconds / (count or 1) * 0.99,
         "q75": seconds / (count or 1) * 1.01, "spread": 0.02, "noisy": noisy,
         "why_noisy": "wide spread: IQR is 30% of the median (> 10%)" if noisy else "", "ok": True}
        for count in threads
    ]  # fmt: skip
    return pd.DataFrame(rows)


def test_two_thread_sweeps_are_lined_up_count_by_count():
    frame = compare_sets(ResultsSet(times([1, 2, 4], 1.0)), ResultsSet(times([1, 2], 2.0)))
    assert frame.threads.tolist() == [1, 2]
    assert frame.ratio.tolist() == [0.5, 0.5]
    assert frame.threads_a.tolist() == frame.threads_b.tolist() == [1, 2]


def test_one_count_against_a_sweep_takes_each_sides_largest():
    frame = compare_sets(ResultsSet(times([8], 1.0)), ResultsSet(times([1, 2], 2.0)))
    assert (frame.threads_a.tolist(), frame.threads_b.tolist()) == ([8], [2])
    assert frame.ratio.tolist() == [0.125] and frame.tied.tolist() == [False]


def test_results_sets_without_a_shared_case_give_no_rows():
    other = times([1], 1.0).assign(size=128)
    assert compare_sets(ResultsSet(times([1], 1.0)), ResultsSet(other)).empty


def test_the_conclusion_counts_wins_ties_and_noisy_rows():
    rows = pd.DataFrame(
        {"seconds_a": [1.0, 3.0, 1.0, 1.0], "seconds_b": [2.0, 1.0, 1.01, float("nan")],
         "ratio": [0.5, 3.0, 1 / 1.01, float("nan")], "tied": [False, False, True, None],
         "noisy": [True, False, False, False]}
    )  # fmt: skip
    assert conclusion(rows) == (
        "of 3 cases timed on both, A is faster in 1, slower in 1, and within the spread (~) in "
        "1; 1 rest on a noisy time (!): they may say more of the machine"
    )


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
    rows = [line for line in result.output.splitlines() if "torch-cpu │" in line]
    assert len(rows) == 12  # torch-cpu is on both machines: 3 sizes x 2 kernels x 2 dtypes
    # What differs between the two environment records comes first.
    assert "what differs between the two machines" in result.output
    (threads,) = [line for line in result.output.splitlines() if "torch-cpu: torch.threads" in line]
    assert [cell.strip() for cell in threads.split("│")[2:4]] == ["2", "16"]
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
