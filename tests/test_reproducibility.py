"""scripts/reproducibility.py's figure: the run-to-run difference of each case, the median over
the cases held to the goal, and the record the report reads."""

from __future__ import annotations

import json

import pytest

from convbench.environment import REPRODUCIBILITY_FILE
from convbench.report import read_results
from tests.scripts import load_script

reproducibility = load_script("reproducibility")


def record(median: float, other: float | None = 0.01, noisy: bool = False) -> dict:
    return {"status": "ok", "median_s": median, "other_cores": other, "noisy": noisy}


def test_the_figure_is_the_median_of_each_long_case_s_largest_over_smallest():
    runs = [
        {"a": record(10e-3), "b": record(2e-3), "short": record(1e-4), "gone": record(5e-3)},
        {"a": record(10.5e-3), "b": record(2.02e-3, noisy=True), "short": record(3e-4)},
        {"a": record(10.2e-3, other=0.4), "b": record(2e-3), "short": record(2e-4)},
    ]
    runs[0]["gone"] = {"status": "skipped", "reason": "tensorflow is not installed"}
    found = reproducibility.summary(runs, threads=2)
    by_case = {case["case"]: case for case in found["cases"]}
    assert by_case["a"]["difference"] == pytest.approx(0.05)
    assert by_case["b"]["difference"] == pytest.approx(0.01)
    # Ops under a millisecond are listed but not held to the goal.
    assert by_case["short"]["difference"] == pytest.approx(2.0)
    assert not by_case["short"]["held_to_goal"]
    assert by_case["gone"] == {
        "case": "gone",
        "measured": False,
        "reason": "tensorflow is not installed",
    }
    assert found["cases_held"] == 2
    assert found["median_difference"] == pytest.approx(0.03)
    assert found["largest_difference"] == pytest.approx(0.05)
    assert found["largest_case"] == "a"
    assert found["most_other_cores"] == pytest.approx(0.4)
    assert found["noisy"] == 1
    assert found["runs"] == 3 and found["threads"] == 2


def test_without_a_long_case_there_is_no_figure():
    found = reproducibility.summary([{"s": record(1e-4)}, {"s": record(1e-4)}], threads=1)
    assert found["cases_held"] == 0
    assert found["median_difference"] is None and found["largest_case"] is None


def test_the_saved_figure_reads_back_as_the_report_s(tmp_path):
    runs = [{"a": record(10e-3)}, {"a": record(10.3e-3)}]
    found = reproducibility.summary(runs, threads=2)
    machine = tmp_path / "results" / "some-machine"
    machine.mkdir(parents=True)
    (machine / REPRODUCIBILITY_FILE).write_text(json.dumps(found))
    read = read_results(tmp_path / "results").reproducibility["some-machine"]
    assert read["median_difference"] == pytest.approx(0.03)
    assert read["runs"] == 2 and read["largest_case"] == "a"
