"""The fastest way to compute a user's convolution: which backend, how fast, and the call.

A question is a ``Convolution``: image and kernel shapes, the dtype, the ``ConvSpec`` and the
device (cpu, gpu or any). Its candidates are the backends that can compute it; each becomes a
``Candidate``: its time, its agreement with the float64 reference and the arithmetic it used
(direct sums or FFT), or why it has no time. ``recommend`` ranks them, picks the fastest whose
result agrees with the reference (never one that mismatches), says which others are tied with it
(their interquartile ranges overlap) and writes that backend's library call
(``Backend.call_source``).

Where the times come from:

- ``measure``: timed on this machine through the sweep (``convbench.sweep``: every case in the
  worker process, judged against the reference there). The sweep times square cases, so an
  H x W image is timed as the square of the same pixel count, and a kernel likewise, and the
  answer says so. For a large image each candidate is first timed on a smaller case of the same
  kernel, dtype and spec (``estimate_size``); that time, scaled to the asked size by the
  candidate's arithmetic (outputs for direct sums, n log n for FFTs), estimates one call.
  Timing a case takes about ``MEASURED_CALLS`` calls, and checking its result a pass as long
  as the float64 reference (``check_seconds``): the worker makes the reference once, with the
  first case timed, and judges a direct-sum result against ``error_scale``, a pass as long
  again. The candidates are timed fastest estimated first while their timing and check fit in
  what is left of the ``budget``, seconds for the whole answer, the estimates included; one
  that would overrun it is not timed, and says so with its estimate (the fastest estimate is
  always timed).
- ``from_results``: the case nearest the question in stored asv results (``convbench report``'s
  reader): same dtype, nearest image and kernel size on a log scale, one machine; the answer
  names that case and machine. Agreement comes from the same case or, where it was not tracked
  (large cases), the backend's nearest tracked size with the same kernel and dtype; where no
  tolerance was recorded it is unknown, and a choice among unknown verdicts says it is
  unverified.
"""

from __future__ import annotations

import math
import signal
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from convbench.agreement import fft_points
from convbench.reference import reference
from convbench.registry import available_backends, get_backend
from convbench.spec import FLOAT_DTYPES, ConvSpec
from convbench.suite import make_inputs
from convbench.sweep import Case, Outcome, Stop, SweepOptions, stop_signals, sweep
from convbench.timing import MIN_SAMPLES, format_seconds

DEVICES = ("cpu", "gpu", "any")
DEFAULT_BUDGET = 120.0
# Calls a timing takes when one call lasts 10 ms or more: a warm-up, the autorange's first
# sample, and MIN_SAMPLES samples of one call each.
MEASURED_CALLS = MIN_SAMPLES + 2
# The estimate's image: about this many pixels, at least twice the kernel a side; made for
# asked images at least ESTIMATE_RATIO times larger. Smaller estimates read high: a framework's
# cost per output falls as the image grows (up to 3x from 256² to 2048² for torch-cpu).
ESTIMATE_PIXELS = 512 * 512
ESTIMATE_RATIO = 16
# The side of the image on which the reference's speed is measured (at least twice the kernel).
CALIBRATION_SIDE = 96
# A case may run past the budget (estimates can be off several times over); a hang is still cut
# off, after what is left of the budget or this many seconds, whichever is longer, beside its
# check.
MIN_CASE_TIMEOUT = 60.0
# Seconds of samples per timing at the asked size; an estimate takes MIN_SAMPLES samples only.
MIN_RUN_TIME = 0.2


class RecommendError(ValueError):
    """The question cannot be answered from what is available; the message says why."""


@dataclass(frozen=True)
class Convolution:
    """What the user computes: an ``image_shape`` (H, W) image and a ``kernel_shape`` kernel in
    ``dtype``, as ``spec`` says, on ``device`` ('cpu', 'gpu' or 'any')."""

    image_shape: tuple[int, int]
    kernel_shape: tuple[int, int]
    dtype: str
    spec: ConvSpec = field(default_factory=ConvSpec)
    device: str = "any"

    def __post_init__(self) -> None:
        for name, shape in (("image_shape", self.image_shape), ("kernel_shape", self.kernel_shape)):
            if len(shape) != 2 or not all(isinstance(n, int) and n >= 1 for n in shape):
                raise ValueError(f"{name}={shape!r} must be two positive integers")
        if self.dtype not in FLOAT_DTYPES:
            raise ValueError(f"dtype {self.dtype!r} is not one of {list(FLOAT_DTYPES)}")
        if self.device not in DEVICES:
            raise ValueError(f"device {self.device!r} is not one of {list(DEVICES)}")
        if self.spec.mode == "valid" and any(
            k > n for k, n in zip(self.kernel_shape, self.image_shape, strict=True)
        ):
            raise ValueError(
                f"kernel {shape_words(self.kernel_shape)} is larger than the image "
                f"{shape_words(self.image_shape)} in mode 'valid'"
            )

    def __str__(self) -> str:
        device = "any device" if self.device == "any" else self.device
        return (
            f"{shape_words(self.image_shape)} image, {shape_words(self.kernel_shape)} kernel, "
            f"{self.dtype}, {self.spec}, {device}"
        )


def shape_words(shape: Sequence[int]) -> str:
    return "x".join(str(n) for n in shape)


@dataclass(frozen=True)
class Candidate:
    """One backend's answer: ``status`` is a sweep status ('ok', 'mismatch', 'unsupported',
    'error') or 'skipped' (not timed: more than was left of the budget); times in seconds per call
    (``estimate_s``: estimated from the smaller case); ``ok``: agreement with the reference
    (None: not known); ``method``: 'direct' or 'fft'; ``agreement_case``: where the verdict
    comes from when not from the timed case itself."""

    backend: str
    status: str
    median_s: float | None = None
    q25_s: float | None = None
    q75_s: float | None = None
    estimate_s: float | None = None
    max_rel: float | None = None
    tolerance: float | None = None
    ok: bool | None = None
    method: str | None = None
    reason: str | None = None
    noisy: bool = False
    agreement_case: str | None = None

    @property
    def timed(self) -> bool:
        return _finite(self.median_s)

    @property
    def seconds(self) -> float | None:
        """The time this candidate is ranked by: its median, else its estimate."""
        if self.timed:
            return self.median_s
        return self.estimate_s if _finite(self.estimate_s) else None


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


@dataclass(frozen=True)
class Recommendation:
    """The answer: the candidates ranked, the choice (None when no timed candidate agrees),
    the others tied with it, the baseline speed-ups are given over, and the choice's call."""

    convolution: Convolution
    source: str
    candidates: tuple[Candidate, ...]
    choice: Candidate | None
    verified: bool
    tied: tuple[str, ...]
    baseline: Candidate | None
    call: str | None
    call_error: str | None
    notes: tuple[str, ...] = ()

    def speedup(self, candidate: Candidate) -> float | None:
        """How many times faster ``candidate`` is than the baseline (its median or estimate)."""
        if self.baseline is None:
            return None
        base, this = self.baseline.seconds, candidate.seconds
        if base is None or this is None or this <= 0:
            return None
        return base / this

    def to_json(self) -> dict[str, Any]:
        """``backend``, ``median_s`` and ``call`` of the choice (None without one), then the
        rest; JSON-ready (no NaN)."""
        choice = self.choice
        spec = self.convolution.spec
        return {
            "backend": None if choice is None else choice.backend,
            "median_s": None if choice is None else choice.median_s,
            "call": self.call,
            "call_error": self.call_error,
            "verified": self.verified,
            "tied": list(self.tied),
            "baseline": None if self.baseline is None else self.baseline.backend,
            "source": self.source,
            "convolution": {
                "image_shape": list(self.convolution.image_shape),
                "kernel_shape": list(self.convolution.kernel_shape),
                "dtype": self.convolution.dtype,
                "device": self.convolution.device,
                "spec": {
                    "op": spec.op,
                    "mode": spec.mode,
                    "boundary": spec.boundary,
                    "fillvalue": spec.fillvalue,
                },
            },
            "candidates": [
                {**_json_ready(asdict(c)), "speedup": self.speedup(c)} for c in self.candidates
            ],
            "notes": list(self.notes),
        }


def _json_ready(values: dict[str, Any]) -> dict[str, Any]:
    return {
        key: None if isinstance(value, float) and not math.isfinite(value) else value
        for key, value in values.items()
    }


def rank(candidates: Iterable[Candidate]) -> tuple[Candidate, ...]:
    """Timed candidates fastest first, then those with an estimate only, then the rest by
    name."""

    def key(candidate: Candidate) -> tuple:
        if candidate.timed:
            return (0, candidate.median_s, candidate.backend)
        if candidate.seconds is not None:
            return (1, candidate.seconds, candidate.backend)
        return (2, 0.0, candidate.backend)

    return tuple(sorted(candidates, key=key))


def choose(candidates: Iterable[Candidate]) -> tuple[Candidate | None, bool]:
    """The fastest timed candidate that agrees with the reference, and True; without one, the
    fastest whose agreement is unknown, and False (unverified); never one that mismatches."""
    timed = [c for c in candidates if c.timed]
    for verdict, verified in ((True, True), (None, False)):
        agreeing = [c for c in timed if c.ok is verdict]
        if agreeing:
            return min(agreeing, key=lambda c: c.median_s), verified
    return None, False


def tied_with(choice: Candidate, candidates: Iterable[Candidate]) -> tuple[str, ...]:
    """The other timed candidates with the choice's verdict whose times' interquartile ranges
    overlap the choice's: the difference lies within the measurements' spread."""
    if not (_finite(choice.q25_s) and _finite(choice.q75_s)):
        return ()
    return tuple(
        c.backend
        for c in candidates
        if c is not choice
        and c.timed
        and c.ok is choice.ok
        and _finite(c.q25_s)
        and c.q25_s <= choice.q75_s
    )


def recommend(
    convolution: Convolution,
    candidates: Iterable[Candidate],
    source: str,
    current: str | None = None,
    notes: Sequence[str] = (),
) -> Recommendation:
    """Rank ``candidates``, choose, and write the choice's call; speed-ups over ``current``
    when it has a time, else over the slowest timed candidate."""
    ranked = rank(candidates)
    choice, verified = choose(ranked)
    notes = list(notes)
    baseline = next((c for c in ranked if c.backend == current and c.seconds is not None), None)
    if current is not None and baseline is None:
        notes.append(f"{current} has no time here; speed-ups are over the slowest candidate")
    if baseline is None:
        baseline = next((c for c in reversed(ranked) if c.timed), None)
    call = call_error = None
    if choice is not None:
        call, call_error = call_for(choice.backend, convolution)
        if get_device(choice.backend) == "gpu":
            notes.append(
                "a GPU time is the op alone on data already on the device; the call also copies "
                "the image there and the result back"
            )
    return Recommendation(
        convolution=convolution,
        source=source,
        candidates=ranked,
        choice=choice,
        verified=verified,
        tied=() if choice is None else tied_with(choice, ranked),
        baseline=baseline,
        call=call,
        call_error=call_error,
        notes=tuple(notes),
    )


def get_device(name: str) -> str | None:
    """'cpu' or 'gpu' as the backend object says; None for a backend not installed here."""
    try:
        return get_backend(name).device_kind
    except Exception:  # a name from stored results that no plugin here provides
        return None


def call_for(name: str, convolution: Convolution) -> tuple[str | None, str | None]:
    """The backend's call for ``convolution`` (``Backend.call_source``), or None and why not."""
    try:
        backend = get_backend(name)
        return (
            backend.call_source(
                convolution.spec,
                convolution.image_shape,
                convolution.kernel_shape,
                convolution.dtype,
            ),
            None,
        )
    except Exception as error:  # no such backend here, or one that gives no call
        return None, f"{name} gives no call: {error}"


# --- Timing on this machine ------------------------------------------------------------------


def candidate_names(
    convolution: Convolution, backends: Iterable[str] | None = None
) -> tuple[list[str], list[Candidate]]:
    """Of ``backends`` (default: those available here), the ones on the device asked for that
    accept the dtype, and those on the device that refuse it (as 'unsupported' candidates, with
    their reason). Cheap: no framework is imported (a device that turns out absent, or a
    framework that is not installed, is found by the sweep)."""
    names, refused = [], []
    size = measured_case(convolution)
    for name in available_backends() if backends is None else backends:
        backend = get_backend(name)
        if convolution.device not in ("any", backend.device_kind):
            continue
        reason = backend.dtype_unsupported(convolution.dtype) or backend.case_unsupported(
            (size[0], size[0]), (size[1], size[1]), convolution.dtype
        )
        if reason:
            refused.append(Candidate(name, "unsupported", reason=reason))
        else:
            names.append(name)
    return names, refused


def measured_case(convolution: Convolution) -> tuple[int, int]:
    """(image side, kernel side) of the square case timed for ``convolution``: the same pixel
    count and kernel taps, rounded (the sweep times square cases)."""
    size = max(1, round(math.sqrt(math.prod(convolution.image_shape))))
    kernel = max(1, round(math.sqrt(math.prod(convolution.kernel_shape))))
    if convolution.spec.mode == "valid":
        kernel = min(kernel, size)
    return size, kernel


def estimate_size(size: int, kernel: int) -> int | None:
    """The image side of the case that estimates each call (about ``ESTIMATE_PIXELS``, at
    least twice the kernel), or None when the asked case is no more than ``ESTIMATE_RATIO``
    times larger: timing it at once costs little more than the estimate would."""
    side = max(round(math.sqrt(ESTIMATE_PIXELS)), 2 * kernel)
    return side if side * side * ESTIMATE_RATIO <= size * size else None


def cost(size: int, kernel: int, spec: ConvSpec, method: str | None) -> float:
    """What a call's time grows with: outputs x taps for direct sums, n log2 n of the transform
    for an FFT."""
    if method == "fft":
        points = fft_points((size, size), (kernel, kernel))
        return points * math.log2(max(points, 2))
    outputs = math.prod(spec.output_shape((size, size), (kernel, kernel)))
    return outputs * kernel * kernel


def from_record(record: dict[str, Any]) -> Candidate:
    """A candidate from a sweep record."""
    return Candidate(
        backend=record["backend"],
        status=record["status"],
        median_s=record.get("median_s"),
        q25_s=record.get("q25_s"),
        q75_s=record.get("q75_s"),
        max_rel=record.get("max_rel"),
        tolerance=record.get("tolerance"),
        ok=record.get("ok"),
        method=record.get("arithmetic"),
        reason=record.get("reason"),
        noisy=bool(record.get("warning")),
    )


Runner = Callable[[Case, SweepOptions, Stop], Outcome | None]
# announce(steps done, steps in all, what starts now)
Announce = Callable[[int, int, str], object]


def run_case(case: Case, options: SweepOptions, stop: Stop) -> Outcome | None:
    """One case through the sweep (in its worker process); None when ``stop`` ended it."""
    for _, outcome in sweep([case], options, stop=stop):
        return outcome
    return None


@dataclass(frozen=True)
class Measured:
    """What ``measure`` or ``from_results`` found: the candidates, where their times come
    from, notes, and the signal that stopped a measurement (None when it ran to the end)."""

    candidates: tuple[Candidate, ...]
    source: str
    notes: tuple[str, ...] = ()
    stopped_by: signal.Signals | None = None


@dataclass
class _Timing:
    """One ``measure``: the case timed, the runner and the stop, the progress, the findings."""

    convolution: Convolution
    names: list[str]
    runner: Runner
    stop: Stop
    announce: Announce
    steps: int
    found: dict[str, Candidate]
    done: int = 0

    def run(self, name: str, size: int, kernel: int, options: SweepOptions) -> Candidate | None:
        """Time ``name`` on a ``size``² image and ``kernel``² kernel; None when stopped."""
        self.announce(self.done, self.steps, f"{name} on {size}x{size}")
        conv = self.convolution
        case = Case(name, size, kernel, conv.dtype, 1, conv.spec)
        outcome = self.runner(case, options, self.stop)
        self.done += 1
        return None if outcome is None else from_record(outcome.record)

    def estimates(self, small: int, size: int, kernel: int) -> dict[str, Candidate] | None:
        """Each candidate at ``small``, its time scaled to ``size`` in ``estimate_s`` (by its
        arithmetic); a candidate that cannot run there is found as it failed. None when
        stopped."""
        spec = self.convolution.spec
        found = {}
        for name in self.names:
            estimated = self.run(name, small, kernel, SweepOptions(min_run_time=0.0))
            if estimated is None:
                return None
            if estimated.status in ("unsupported", "error"):
                where = f"on the {small}x{small} estimate"
                self.found[name] = replace(estimated, reason=f"{estimated.reason} ({where})")
            elif estimated.timed:
                method = estimated.method
                scale = cost(size, kernel, spec, method) / cost(small, kernel, spec, method)
                found[name] = replace(estimated, estimate_s=estimated.median_s * scale)
        return found

    def times(
        self,
        size: int,
        kernel: int,
        estimates: dict[str, Candidate],
        deadline: float,
        check: float,
        clock: Callable[[], float],
    ) -> None:
        """Time the candidates at ``size``, fastest estimated first, while each one's estimated
        timing and check fit before ``deadline`` (on ``clock``); the first whatever its
        estimate. ``check``: seconds of one reference-sized pass (``check_seconds``), which the
        worker spends beside the timing."""
        queue = sorted(
            (n for n in self.names if n not in self.found),
            key=lambda n: estimates[n].estimate_s if n in estimates else 0.0,
        )
        self.done += len(self.names) - len(queue)
        for position, name in enumerate(queue):
            estimated = estimates.get(name)
            estimate = None if estimated is None else estimated.estimate_s
            # The first case makes the reference; a direct-sum result is judged against
            # error_scale, a pass as long again (an FFT's scale is one pass over the image).
            fft = estimated is not None and estimated.method == "fft"
            beside = check * ((position == 0) + (not fft))
            needed = beside + (estimate or 0.0) * MEASURED_CALLS
            left = deadline - clock()
            if position > 0 and estimate is not None and needed > left:
                self.found[name] = Candidate(
                    name,
                    "skipped",
                    estimate_s=estimate,
                    method=estimated.method,
                    reason=(
                        f"not timed: a call is estimated at {format_seconds(estimate)}; timing "
                        f"it (about {MEASURED_CALLS} calls) and checking its result would take "
                        f"about {format_seconds(needed)}, more than "
                        + (f"the {format_seconds(left)} left of" if left > 0 else "all of")
                        + " the budget"
                    ),
                )
                self.done += 1
                continue
            # Estimates can be several times off: a case runs past the budget, and a hang is
            # still cut off.
            limit = max(left, MIN_CASE_TIMEOUT) + 2 * beside
            timed = self.run(name, size, kernel, SweepOptions(MIN_RUN_TIME, case_timeout=limit))
            if timed is None:
                return
            self.found[name] = replace(timed, estimate_s=estimate)


def check_seconds(convolution: Convolution, size: int, kernel: int) -> float:
    """Seconds the float64 reference takes for a ``size``² image and ``kernel``² kernel on this
    machine now: timed on a small case of the same kernel, dtype and spec, scaled by outputs."""
    side = max(CALIBRATION_SIDE, 2 * kernel)
    image, weights = make_inputs(side, kernel, convolution.dtype)
    started = time.perf_counter()
    reference(image, weights, convolution.spec)
    elapsed = time.perf_counter() - started
    spec = convolution.spec
    return elapsed * cost(size, kernel, spec, "direct") / cost(side, kernel, spec, "direct")


def measure(
    convolution: Convolution,
    budget: float = DEFAULT_BUDGET,
    *,
    backends: Sequence[str] | None = None,
    announce: Announce | None = None,
    runner: Runner = run_case,
    clock: Callable[[], float] = time.monotonic,
    check: Callable[[Convolution, int, int], float] = check_seconds,
) -> Measured:
    """Time the candidates (``candidate_names`` of ``backends``) on this machine as the module
    docstring says. SIGINT and SIGTERM stop it between two waits for the worker: what
    was found so far comes back, with the signal."""
    names, refused = candidate_names(convolution, backends)
    if not names:
        where = "any device" if convolution.device == "any" else convolution.device
        raise RecommendError(
            f"no backend available here computes {convolution.dtype} on {where}"
            + "".join(f"; {c.backend}: {c.reason}" for c in refused)
        )
    size, kernel = measured_case(convolution)
    notes = []
    if (size, size) != convolution.image_shape or (kernel, kernel) != convolution.kernel_shape:
        notes.append(
            f"timed as the square case of about the same pixels and taps, {size}x{size} with a "
            f"{kernel}x{kernel} kernel: the sweep times square images and kernels"
        )
    small = estimate_size(size, kernel)
    started = clock()
    with stop_signals() as stop:
        timing = _Timing(
            convolution,
            names,
            runner,
            stop,
            announce or (lambda done, steps, text: None),
            steps=len(names) * (1 if small is None else 2),
            found={c.backend: c for c in refused},
        )
        estimates: dict[str, Candidate] | None = {}
        if small is not None:
            notes.append(f"each candidate was first timed on {small}x{small} to estimate a call")
            estimates = timing.estimates(small, size, kernel)
        if estimates is not None:
            checking = check(convolution, size, kernel)
            if checking >= 1:
                notes.append(
                    f"the float64 reference takes about {format_seconds(checking)} here (made "
                    "once, with the first timed candidate), and checking a direct-sum result "
                    "as long again"
                )
            timing.times(size, kernel, estimates, started + budget, checking, clock)
    ordered = [*names, *(c.backend for c in refused)]
    return Measured(
        tuple(timing.found[n] for n in ordered if n in timing.found),
        f"timed on this machine: {size}x{size}, {kernel}x{kernel}, {convolution.dtype}",
        tuple(notes),
        stop.signal,
    )


# --- Stored results ----------------------------------------------------------------------------


def _distance(size: int, kernel: int, convolution: Convolution) -> float:
    """How far a measured case is from the question: log ratios of pixels and of taps."""
    pixels, taps = math.prod(convolution.image_shape), math.prod(convolution.kernel_shape)
    return abs(math.log(size * size / pixels)) + abs(math.log(kernel * kernel / taps))


def from_results(convolution: Convolution, results_dir: str | Path) -> Measured:
    """The candidates of the nearest case in the asv results under ``results_dir``."""
    # The results' reader needs pandas and asv; imported here, when asked for.
    from convbench.report import tables
    from convbench.report.results import load_results

    frame = load_results(results_dir)
    times = tables.op_times(frame)
    times = times[(times.dtype == convolution.dtype) & (times.batch == 1)].copy()
    times["device"] = [
        device if isinstance(device, str) else get_device(backend)
        for device, backend in zip(times.device, times.backend, strict=True)
    ]
    if convolution.device != "any":
        times = times[times.device == convolution.device]
    if times.empty:
        held = sorted(set(tables.op_times(frame).dtype.dropna()))
        raise RecommendError(
            f"the results under {str(results_dir)!r} hold no time of a {convolution.dtype} "
            f"image on {convolution.device} (they hold {', '.join(held) or 'none'})"
        )
    keys = ["machine", "size", "kernel"]
    cases = times.groupby(keys).backend.count().reset_index()
    cases["distance"] = [
        _distance(s, k, convolution) for s, k in zip(cases["size"], cases.kernel, strict=True)
    ]
    best = cases.sort_values(["distance", "backend", "machine"], ascending=[True, False, True])
    machine, size, kernel = best.iloc[0][keys]
    rows = times[(times.machine == machine) & (times["size"] == size) & (times.kernel == kernel)]
    methods = _methods(frame, machine, size, kernel, convolution.dtype)
    verdicts = tables.agreement(frame)
    verdicts = verdicts[
        (verdicts.machine == machine)
        & (verdicts.dtype == convolution.dtype)
        & (verdicts.kernel == kernel)
        & (verdicts.batch == 1)
        & verdicts.ok.notna()
    ]
    candidates = []
    for row in rows.itertuples():
        verdict = nearest_verdict(verdicts[verdicts.backend == row.backend], int(size))
        candidates.append(
            Candidate(
                backend=row.backend,
                status="mismatch" if verdict.get("ok") is False else "ok",
                median_s=float(row.seconds),
                q25_s=_float(row.q25),
                q75_s=_float(row.q75),
                tolerance=_float(row.tolerance),
                method=methods.get(row.backend),
                **verdict,
            )
        )
    source = (
        f"nearest measured case: {size}x{size}, {kernel}x{kernel}, {convolution.dtype} "
        f"on machine {machine}"
    )
    notes = []
    if convolution.spec != ConvSpec():
        notes.append(
            f"the results time {ConvSpec()}; {convolution.spec} pads differently, which some "
            "backends do with an extra copy of the image"
        )
    return Measured(tuple(candidates), source, tuple(notes))


def _float(value: object) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _methods(frame, machine: str, size: int, kernel: int, dtype: str) -> dict[str, str]:
    """The arithmetic ('direct' or 'fft') each backend's record gives for the case."""
    rows = frame[
        (frame.suite == "Conv")
        & (frame.metric == "time_op")
        & (frame.machine == machine)
        & (frame["size"] == size)
        & (frame.kernel == kernel)
        & (frame.dtype == dtype)
        & frame.arithmetic.notna()
    ]
    return dict(zip(rows.backend, rows.arithmetic, strict=True))


def nearest_verdict(rows, size: int) -> dict[str, Any]:
    """A backend's agreement verdict from its tracked case nearest ``size`` (same machine,
    kernel and dtype): ok, max_rel, which case it is when not ``size`` itself, and why it is
    not ok."""
    if rows.empty:
        return {}
    nearest = rows.iloc[
        min(range(len(rows)), key=lambda i: abs(math.log(rows["size"].iloc[i] / size)))
    ]
    found = {"ok": bool(nearest.ok), "max_rel": _float(nearest.max_rel)}
    where = ""
    if int(nearest["size"]) != size:
        found["agreement_case"] = f"{nearest['size']}x{nearest['size']}"
        where = f" at {found['agreement_case']}"
    if not found["ok"]:
        found["reason"] = (
            f"max_rel {nearest.max_rel:.3g} is over the tolerance {nearest.tolerance:.3g}{where}"
        )
    return found
