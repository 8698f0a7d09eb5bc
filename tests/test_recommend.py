"""``convbench recommend``: the choice is the fastest candidate that agrees, never one that
mismatches; timing within a budget (a fake sweep); the nearest case of stored results; the JSON;
bad usage."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

import convbench
from convbench.agreement import agreement_for
from convbench.cli import main
from convbench.recommend import (
    MEASURED_CALLS,
    Candidate,
    Convolution,
    RecommendError,
    choose,
    cost,
    estimate_size,
    from_results,
    measure,
    measured_case,
    nearest_verdict,
    rank,
    recommend,
    tied_with,
)
from convbench.report import load_results, tables
from convbench.spec import ConvSpec
from convbench.sweep import Case, Outcome, Stop, SweepOptions

FIXTURE = Path(__file__).parent / "data" / "results"
COMMITTED = Path(__file__).parent.parent / "results"


def invoke(*args: str):
    return CliRunner().invoke(main, ["recommend", *args])


def timed(name: str, seconds: float, ok: bool | None = True, spread: float = 0.02) -> Candidate:
    return Candidate(
        name,
        "ok" if ok is not False else "mismatch",
        median_s=seconds,
        q25_s=seconds * (1 - spread),
        q75_s=seconds * (1 + spread),
        ok=ok,
        method="direct",
    )


# --- choosing ------------------------------------------------------------------------------------


@st.composite
def candidate_lists(draw) -> list[Candidate]:
    count = draw(st.integers(1, 8))
    found = []
    for number in range(count):
        seconds = draw(st.floats(1e-6, 10.0))
        verdict = draw(st.sampled_from([True, False, None]))
        spread = draw(st.floats(0.0, 0.5))
        candidate = timed(f"b{number}", seconds, verdict, spread)
        if draw(st.booleans()):
            found.append(candidate)
        else:
            found.append(Candidate(f"b{number}", "skipped", estimate_s=seconds))
    return found


@given(candidate_lists())
def test_the_choice_is_the_fastest_that_agrees_and_never_a_mismatch(candidates) -> None:
    choice, verified = choose(candidates)
    ran = [c for c in candidates if c.timed]
    agreeing = [c for c in ran if c.ok is True]
    unknown = [c for c in ran if c.ok is None]
    if agreeing:
        assert verified and choice.median_s == min(c.median_s for c in agreeing)
    elif unknown:
        assert not verified and choice.median_s == min(c.median_s for c in unknown)
    else:
        assert choice is None
    assert choice is None or (choice.ok is not False and choice.timed)


@given(candidate_lists())
def test_tied_candidates_overlap_the_choice_with_the_same_verdict(candidates) -> None:
    choice, _ = choose(candidates)
    if choice is None:
        return
    tied = tied_with(choice, candidates)
    assert choice.backend not in tied
    for c in candidates:
        overlaps = c.timed and c.ok is choice.ok and c.q25_s <= choice.q75_s
        assert (c.backend in tied) == (overlaps and c is not choice)


def test_a_faster_mismatch_is_ranked_but_not_chosen() -> None:
    conv = Convolution((64, 64), (3, 3), "float32")
    answer = recommend(
        conv, [timed("torch-cpu", 0.02), timed("scipy-ndimage", 0.001, ok=False)], "here"
    )
    assert [c.backend for c in answer.candidates] == ["scipy-ndimage", "torch-cpu"]
    assert answer.choice.backend == "torch-cpu" and answer.verified
    assert answer.baseline.backend == "torch-cpu"  # the slowest timed
    assert answer.call.startswith("import numpy as np\nimport torch\n")


def test_rank_puts_timed_then_estimated_then_the_rest() -> None:
    ranked = rank(
        [
            Candidate("e", "error", reason="boom"),
            Candidate("s", "skipped", estimate_s=0.5),
            timed("t2", 0.2),
            timed("t1", 0.9),
            Candidate("u", "unsupported", reason="no float16"),
        ]
    )
    assert [c.backend for c in ranked] == ["t2", "t1", "s", "e", "u"]


def test_speedups_are_over_the_current_backend_even_when_only_estimated() -> None:
    conv = Convolution((64, 64), (3, 3), "float32")
    candidates = [
        timed("torch-cpu", 0.01),
        Candidate("scipy-convolve2d", "skipped", estimate_s=2.0),
    ]
    answer = recommend(conv, candidates, "here", current="scipy-convolve2d")
    assert answer.baseline.backend == "scipy-convolve2d"
    assert answer.speedup(candidates[0]) == pytest.approx(200)
    missing = recommend(conv, candidates, "here", current="jax-cpu")
    assert missing.baseline.backend == "torch-cpu"
    assert "jax-cpu has no time here" in missing.notes[0]


def test_ties_are_named() -> None:
    conv = Convolution((64, 64), (3, 3), "float32")
    answer = recommend(
        conv,
        [timed("opencv-cpu", 1.00, spread=0.1), timed("torch-cpu", 1.05), timed("jax-cpu", 2.0)],
        "here",
    )
    assert answer.choice.backend == "opencv-cpu"
    assert answer.tied == ("torch-cpu",)


def test_no_agreeing_candidate_means_no_choice_and_no_call() -> None:
    conv = Convolution((64, 64), (3, 3), "float32")
    answer = recommend(conv, [timed("torch-cpu", 0.1, ok=False)], "here")
    assert answer.choice is None and answer.call is None
    assert answer.to_json()["backend"] is None


# --- the timed case and its estimate -------------------------------------------------------------


@pytest.mark.parametrize(
    ("image", "kernel", "mode", "expected"),
    [
        ((4096, 4096), (15, 15), "same", (4096, 15)),
        ((4096, 1024), (3, 5), "same", (2048, 4)),
        ((30, 300), (30, 30), "valid", (95, 30)),
    ],
)
def test_the_timed_case_is_square_with_the_same_pixels_and_taps(image, kernel, mode, expected):
    assert measured_case(Convolution(image, kernel, "float32", ConvSpec(mode=mode))) == expected


def test_a_valid_kernel_larger_than_the_image_is_refused() -> None:
    with pytest.raises(ValueError, match="kernel 40x40 is larger than the image 3x300"):
        Convolution((3, 300), (40, 40), "float32", ConvSpec(mode="valid"))


def test_the_estimate_is_made_for_large_cases_only() -> None:
    assert estimate_size(4096, 15) == 512
    assert estimate_size(2048, 3) == 512
    assert estimate_size(2047, 3) is None
    assert estimate_size(8192, 300) == 600  # twice the kernel a side


def test_cost_follows_the_arithmetic() -> None:
    spec = ConvSpec()
    assert cost(4096, 15, spec, "direct") / cost(512, 15, spec, "direct") == 64
    fft = cost(4096, 15, spec, "fft") / cost(512, 15, spec, "fft")
    assert 64 < fft < 64 * 1.5  # n log n: a little more than the pixels


# --- timing within a budget, with a fake sweep ---------------------------------------------------


class FakeSweep:
    """Answers cases as the sweep would: seconds per call = ``per_pixel`` x pixels, a status per
    backend; its clock advances by the calls a timing takes."""

    def __init__(
        self,
        per_pixel: dict[str, float],
        statuses: dict[str, str] | None = None,
        check: float = 0.0,
    ):
        self.per_pixel = per_pixel
        self.statuses = statuses or {}
        self.check = check  # seconds of the reference, and again of a direct result's scale
        self.now = 0.0
        self.cases: list[tuple[str, int]] = []
        self.limits: list[float] = []
        self.stop_after: int | None = None

    def clock(self) -> float:
        return self.now

    def __call__(self, case: Case, options: SweepOptions, stop: Stop) -> Outcome | None:
        if self.stop_after is not None and len(self.cases) == self.stop_after:
            stop.signal = signal.SIGINT
            return None
        self.cases.append((case.backend, case.size))
        self.limits.append(options.case_timeout)
        if case.size == BIG.image_shape[0]:
            first = [size for _, size in self.cases].count(case.size) == 1
            self.now += self.check * (first + 1)
        status = self.statuses.get(case.backend, "ok")
        record = {**case.fields(), "status": status, "arithmetic": "direct", "tolerance": 1e-6}
        if status in ("unsupported", "error"):
            return Outcome({**record, "reason": f"{case.backend} cannot"})
        seconds = self.per_pixel[case.backend] * case.size**2
        self.now += seconds * MEASURED_CALLS
        ok = status == "ok"
        return Outcome(
            {
                **record,
                "median_s": seconds,
                "q25_s": seconds * 0.99,
                "q75_s": seconds * 1.01,
                "max_rel": 1e-7 if ok else 1.0,
                "ok": ok,
                "reason": None if ok else "MISMATCH",
                "warning": "",
            }
        )


BIG = Convolution((4096, 4096), (15, 15), "float32", device="cpu")


def NO_CHECK(convolution, size, kernel) -> float:
    return 0.0


CPU_NAMES = ["torch-cpu", "tensorflow-cpu", "scipy-correlate2d"]


def test_each_candidate_is_estimated_then_timed_fastest_first() -> None:
    fake = FakeSweep({"torch-cpu": 3e-9, "tensorflow-cpu": 1e-9, "scipy-correlate2d": 2e-9})
    found = measure(BIG, 100.0, backends=CPU_NAMES, runner=fake, clock=fake.clock, check=NO_CHECK)
    assert fake.cases == [
        ("torch-cpu", 512),
        ("tensorflow-cpu", 512),
        ("scipy-correlate2d", 512),
        ("tensorflow-cpu", 4096),
        ("scipy-correlate2d", 4096),
        ("torch-cpu", 4096),
    ]
    by_name = {c.backend: c for c in found.candidates}
    assert by_name["torch-cpu"].estimate_s == pytest.approx(3e-9 * 4096**2)
    assert found.source == "timed on this machine: 4096x4096, 15x15, float32"
    answer = recommend(BIG, found.candidates, found.source)
    assert answer.choice.backend == "tensorflow-cpu"


def test_a_candidate_over_what_is_left_of_the_budget_is_not_timed_but_estimated() -> None:
    fake = FakeSweep({"torch-cpu": 1e-9, "tensorflow-cpu": 2e-9, "scipy-correlate2d": 1e-6})
    found = measure(BIG, 10.0, backends=CPU_NAMES, runner=fake, clock=fake.clock, check=NO_CHECK)
    assert ("scipy-correlate2d", 4096) not in fake.cases
    slow = {c.backend: c for c in found.candidates}["scipy-correlate2d"]
    assert slow.status == "skipped" and not slow.timed
    assert slow.estimate_s == pytest.approx(1e-6 * 4096**2)
    assert slow.reason == (
        "not timed: a call is estimated at 16.8 s; timing it (about 8 calls) and checking its "
        "result would take about 134 s, more than the 7.49 s left of the budget"
    )
    answer = recommend(BIG, found.candidates, found.source, current="scipy-correlate2d")
    assert answer.speedup(answer.choice) == pytest.approx(1000)


def test_the_fastest_estimate_is_timed_whatever_the_budget() -> None:
    fake = FakeSweep({"torch-cpu": 1e-9, "tensorflow-cpu": 2e-9, "scipy-correlate2d": 3e-9})
    found = measure(BIG, 1e-6, backends=CPU_NAMES, runner=fake, clock=fake.clock, check=NO_CHECK)
    statuses = {c.backend: c.status for c in found.candidates}
    assert statuses == {
        "torch-cpu": "ok",
        "tensorflow-cpu": "skipped",
        "scipy-correlate2d": "skipped",
    }


def test_the_reference_and_error_scale_count_in_the_budget_and_extend_the_time_limit() -> None:
    speeds = {"torch-cpu": 1e-9, "tensorflow-cpu": 2e-9, "scipy-correlate2d": 1e-6}
    fake = FakeSweep(speeds, check=50.0)
    found = measure(
        BIG, 10.0, backends=CPU_NAMES, runner=fake, clock=fake.clock, check=lambda *a: 50.0
    )
    statuses = {c.backend: c.status for c in found.candidates}
    assert statuses == {
        "torch-cpu": "ok",
        "tensorflow-cpu": "skipped",
        "scipy-correlate2d": "skipped",
    }
    # The first case makes the reference and checks a direct-sum result against its scale.
    assert fake.limits[3:] == [60.0 + 2 * 100.0]
    skipped = {c.backend: c for c in found.candidates}["tensorflow-cpu"]
    assert skipped.reason.endswith("would take about 50.3 s, more than all of the budget")
    assert any("the float64 reference takes about 50 s here" in note for note in found.notes)


def test_a_mismatch_is_timed_but_not_chosen() -> None:
    fake = FakeSweep(
        {"torch-cpu": 3e-9, "tensorflow-cpu": 1e-9, "scipy-correlate2d": 2e-9},
        {"tensorflow-cpu": "mismatch"},
    )
    found = measure(BIG, 100.0, backends=CPU_NAMES, runner=fake, clock=fake.clock, check=NO_CHECK)
    answer = recommend(BIG, found.candidates, found.source)
    assert answer.candidates[0].backend == "tensorflow-cpu"
    assert answer.choice.backend == "scipy-correlate2d"


def test_a_candidate_that_fails_its_estimate_is_not_timed_again() -> None:
    fake = FakeSweep(
        {"torch-cpu": 3e-9, "tensorflow-cpu": 1e-9, "scipy-correlate2d": 2e-9},
        {"torch-cpu": "error"},
    )
    found = measure(BIG, 100.0, backends=CPU_NAMES, runner=fake, clock=fake.clock, check=NO_CHECK)
    failed = {c.backend: c for c in found.candidates}["torch-cpu"]
    assert failed.status == "error"
    assert failed.reason == "torch-cpu cannot (on the 512x512 estimate)"
    assert ("torch-cpu", 4096) not in fake.cases


def test_a_dtype_a_backend_lacks_makes_it_unsupported_without_running() -> None:
    fake = FakeSweep({"torch-cpu": 1e-9})
    conv = Convolution((64, 64), (3, 3), "float16")
    found = measure(conv, backends=["torch-cpu", "scipy-correlate2d"], runner=fake, check=NO_CHECK)
    assert fake.cases == [("torch-cpu", 64)]  # small: timed at once, no estimate
    refused = found.candidates[-1]
    assert refused.backend == "scipy-correlate2d" and refused.status == "unsupported"
    assert "float16" in refused.reason


def test_no_candidate_on_the_device_is_an_error() -> None:
    with pytest.raises(RecommendError, match="no backend available here computes float32 on gpu"):
        measure(Convolution((64, 64), (3, 3), "float32", device="gpu"), backends=CPU_NAMES)


def test_a_signal_stops_the_timing_with_what_finished() -> None:
    fake = FakeSweep({"torch-cpu": 1e-9, "tensorflow-cpu": 2e-9, "scipy-correlate2d": 3e-9})
    fake.stop_after = 4  # three estimates and the first timing
    found = measure(BIG, 100.0, backends=CPU_NAMES, runner=fake, clock=fake.clock, check=NO_CHECK)
    assert found.stopped_by == signal.SIGINT
    assert [c.backend for c in found.candidates] == ["torch-cpu"]


def test_progress_counts_every_step() -> None:
    fake = FakeSweep({"torch-cpu": 1e-9, "tensorflow-cpu": 2e-9, "scipy-correlate2d": 1e-6})
    seen = []
    measure(
        BIG,
        10.0,
        backends=CPU_NAMES,
        runner=fake,
        clock=fake.clock,
        check=NO_CHECK,
        announce=lambda done, steps, text: seen.append((done, steps, text)),
    )
    assert seen[0] == (0, 6, "torch-cpu on 512x512")
    assert seen[-1] == (4, 6, "tensorflow-cpu on 4096x4096")


def test_a_real_measurement_chooses_its_own_fastest_agreeing_candidate() -> None:
    conv = Convolution((40, 36), (4, 3), "float32", ConvSpec("convolve", "same", "symm"))
    names = ["scipy-correlate2d", "scipy-ndimage", "scipy-fftconvolve"]
    found = measure(conv, 30.0, backends=names)
    assert found.stopped_by is None
    assert {c.backend for c in found.candidates} == set(names)
    assert all(c.timed and c.ok for c in found.candidates)
    answer = recommend(conv, found.candidates, found.source)
    assert answer.choice.median_s == min(c.median_s for c in found.candidates)
    assert "38x38 with a 3x3 kernel" in found.notes[0]
    # The call computes the asked (rectangular) case, not the square one timed.
    image, kernel = np.random.default_rng(1).standard_normal((2, 40, 36)).astype(np.float32)
    kernel = kernel[:4, :3]
    scope = {"image": image, "kernel": kernel}
    exec(answer.call, scope)
    backend = convbench.get_backend(answer.choice.backend)
    expected = convbench.reference(image, kernel, conv.spec)
    assert agreement_for(backend, scope["out"], expected, image, kernel, conv.spec).ok


# --- stored results ------------------------------------------------------------------------------


def test_results_answer_from_the_nearest_case_and_say_so() -> None:
    conv = Convolution((1000, 1000), (7, 7), "float16", device="gpu")
    found = from_results(conv, FIXTURE)
    assert found.source == "nearest measured case: 1024x1024, 7x7, float16 on machine fixture-gpu"
    by_name = {c.backend: c for c in found.candidates}
    assert set(by_name) == {"torch-cuda", "tensorflow-gpu"}
    assert by_name["tensorflow-gpu"].status == "mismatch"
    assert "is over the tolerance" in by_name["tensorflow-gpu"].reason
    answer = recommend(conv, found.candidates, found.source)
    assert answer.choice.backend == "torch-cuda" and answer.verified
    assert any("copies the image there" in note for note in answer.notes)


def nearest_rows(source: str):
    """The stored times of the case an answer's source names."""
    case, machine = source.removeprefix("nearest measured case: ").split(" on machine ")
    size, kernel, dtype = case.split(", ")
    times = tables.op_times(load_results(FIXTURE))
    return times[
        (times.machine == machine)
        & (times["size"] == int(size.split("x")[0]))
        & (times.kernel == int(kernel.split("x")[0]))
        & (times.dtype == dtype)
        & (times.batch == 1)
    ]


def test_results_times_are_the_stored_ones() -> None:
    conv = Convolution((300, 200), (3, 3), "float32", device="cpu")
    found = from_results(conv, FIXTURE)
    assert found.source.startswith("nearest measured case: 256x256, 3x3, float32 on machine ")
    stored = nearest_rows(found.source)
    assert {c.backend: c.median_s for c in found.candidates} == dict(
        zip(stored.backend, stored.seconds, strict=True)
    )
    answer = recommend(conv, found.candidates, found.source)
    verified = [c for c in found.candidates if c.ok]
    expected = verified or [c for c in found.candidates if c.ok is None]
    assert answer.verified == bool(verified)
    assert answer.choice.median_s == min(c.median_s for c in expected)


def test_a_verdict_comes_from_the_nearest_tracked_size() -> None:
    rows = pd.DataFrame(
        {"size": [64, 256], "ok": [True, False], "max_rel": [1e-7, 2e-5], "tolerance": [1e-6] * 2}
    )
    assert nearest_verdict(rows, 256) == {
        "ok": False,
        "max_rel": 2e-5,
        "reason": ("max_rel 2e-05 is over the tolerance 1e-06"),
    }
    assert nearest_verdict(rows, 1024) == {
        "ok": False,
        "max_rel": 2e-5,
        "agreement_case": "256x256",
        "reason": "max_rel 2e-05 is over the tolerance 1e-06 at 256x256",
    }
    assert nearest_verdict(rows, 80) == {"ok": True, "max_rel": 1e-7, "agreement_case": "64x64"}
    assert nearest_verdict(rows.iloc[:0], 80) == {}


def test_results_without_the_dtype_say_what_they_hold() -> None:
    with pytest.raises(RecommendError, match="hold no time of a float64 image"):
        from_results(Convolution((64, 64), (3, 3), "float64"), FIXTURE)


@pytest.mark.skipif(not COMMITTED.is_dir(), reason="no committed results")
def test_the_committed_results_name_their_nearest_case() -> None:
    result = invoke("--shape", "4096x4096", "--kernel", "15x15", "--results", str(COMMITTED))
    assert result.exit_code == 0, result.output
    line = next(s for s in result.output.splitlines() if "nearest measured case:" in s)
    size, kernel, dtype = line.split(":")[1].split(" on machine")[0].split(", ")
    side = int(size.strip().split("x")[0])
    times = tables.op_times(load_results(COMMITTED))
    stored = times[(times["size"] == side) & (times.kernel == int(kernel.split("x")[0]))]
    assert not stored[stored.dtype == dtype].empty
    assert "the call (with numpy arrays image and kernel in scope" in result.output


# --- the command ---------------------------------------------------------------------------------


def test_json_gives_the_choice_its_call_and_every_candidate() -> None:
    result = invoke(
        "--shape", "1024x1024", "--kernel", "7x7", "--device", "cpu", "--results", str(FIXTURE),
        "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    answer = json.loads(result.output)
    assert {"backend", "median_s", "call", "candidates", "source", "tied", "verified"} <= set(
        answer
    )
    candidates = answer["candidates"]
    stored = nearest_rows(answer["source"])
    assert sorted(c["backend"] for c in candidates) == sorted(stored.backend)
    for candidate in candidates:
        assert {"backend", "status", "median_s", "ok", "method", "speedup"} <= set(candidate)
    times = [c["median_s"] for c in candidates]
    assert times == sorted(times)  # ranked
    assert candidates[-1]["speedup"] == 1.0  # over the slowest
    eligible = [c for c in candidates if c["ok"] is (True if answer["verified"] else None)]
    assert answer["median_s"] == min(c["median_s"] for c in eligible)
    assert answer["backend"] == next(c["backend"] for c in eligible)
    image, kernel = np.random.default_rng(2).standard_normal((2, 64, 64)).astype(np.float32)
    kernel = kernel[:7, :7]
    scope = {"image": image, "kernel": kernel}
    exec(answer["call"], scope)
    backend = convbench.get_backend(answer["backend"])
    expected = convbench.reference(image, kernel)
    assert agreement_for(backend, scope["out"], expected, image, kernel).ok


def test_the_table_names_the_choice_and_prints_the_call() -> None:
    result = invoke(
        "--shape", "1000", "--kernel", "7", "--dtype", "float16", "--device", "gpu",
        "--results", str(FIXTURE), "--current", "tensorflow-gpu",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    out = result.output
    assert "nearest measured case: 1024x1024, 7x7, float16 on machine fixture-gpu" in out
    assert (
        "fastest agreeing backend: torch-cuda, 162 us per call (direct), 2.09x faster than " in out
    )
    assert "MISMATCH [1]" in out and "[1] max_rel 0.171 is over the tolerance 0.0273" in out
    assert out.endswith("out = y[0, 0].cpu().numpy()\n")


def test_timing_here_with_chosen_backends() -> None:
    result = invoke(
        "--shape", "32x32", "--kernel", "3x3", "-b", "scipy-correlate2d", "-b", "scipy-ndimage",
        "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    answer = json.loads(result.output)
    ran = {c["backend"]: c["median_s"] for c in answer["candidates"]}
    assert set(ran) == {"scipy-correlate2d", "scipy-ndimage"}
    assert answer["median_s"] == min(ran.values())
    assert answer["source"] == "timed on this machine: 32x32, 3x3, float32"


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--shape", "0x5", "--kernel", "3"], "'0x5' is not a size N or HxW"),
        (["--shape", "64", "--kernel", "abc"], "'abc' is not a size N or HxW"),
        (["--shape", "64", "--kernel", "3", "--dtype", "float8"], "'float8' is not one of"),
        (["--shape", "64", "--kernel", "3", "--current", "numpy-magic"], "unknown backend"),
        (["--shape", "64", "--kernel", "3", "--budget", "0"], "'0' is not a finite number"),
        (["--shape", "4", "--kernel", "5", "--mode", "valid"], "larger than the image"),
        (["--shape", "64", "--kernel", "3", "--boundary", "wrap", "--fillvalue", "1"], "only"),
        (["--shape", "64", "--kernel", "3", "-b", "numpy-magic"], "unknown backend"),
    ],
)
def test_bad_input_is_a_one_line_usage_error(args, words) -> None:
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and words in errors[0], result.output
    assert "Traceback" not in result.output
