"""Cases -> outcomes -> records: the sweep behind ``convbench run`` and ``convbench compare``.

A sweep times each case with ``convbench.timing`` and checks its result against the float64
reference; one failing case never stops the others, and nothing a backend does loses a case that
finished before it.

How:

- **Isolation.** Backends run in one worker process (a child Python interpreter, never a fork
  of a process holding threads or a device, talking to the driver over a socket), reused from
  case to case so that a framework is imported once per sweep, not once per case. A segfault,
  ``sys.exit``, ``os._exit``, a KeyboardInterrupt raised by a backend, an out-of-memory kill or a
  hang loses that case only: it becomes the case's ``error`` with the reason ("worker process
  died with signal SIGSEGV", "exceeded the per-case time limit of 300 s"), and the next case
  starts a new worker. The worker ignores SIGINT (a terminal's Ctrl-C reaches the whole process
  group): the driver decides what an interruption stops. On Linux the worker dies with its
  driver (``PR_SET_PDEATHSIG``), so a kill -9 of the driver leaves no backend running on.
- **The worker does the work of a case**: it makes the inputs and the float64 reference (once
  for the consecutive cases sharing them), tells the driver the backend's facts
  (``convbench.records.backend_facts``) before the backend starts, then times the backend and
  judges its result (``convbench.agreement.agreement_for``), and answers with the case's record
  (and the host result, when asked). A case too large for this machine's memory
  (``convbench.memory``) is refused before anything is allocated for it. The driver (the
  calling process) only sends cases, keeps time and writes records, and imports no framework,
  so it stays small: the out-of-memory killer picks the largest process, the worker.
- **Nothing lost.** ``run_sweep`` appends each finished case's record to a JSON-lines *stream*
  beside the requested output (``<output>.partial.jsonl``: one JSON object per line, as Python's
  ``json`` writes it, NaN and Infinity included) as it finishes, and writes the requested CSV,
  JSON, JSON-lines or Parquet file once at the end, atomically (``convbench.atomic``); then the
  stream, whose records the output now holds, is removed. A stream is left behind only when the
  run could not write its output (the driver was killed, the disk is full): it holds every case
  that finished. SIGINT and SIGTERM stop a sweep between two waits of the driver: the case in
  flight is abandoned, every finished one is written.
- **Fair threads.** A case of a CPU backend runs with a stated thread count (``Case.threads``;
  None: every core this process may use, ``convbench.threads.default_threads``), the same for
  every CPU backend: the worker is started with that count in its environment
  (``convbench.threads.thread_env``: TensorFlow and XLA fix theirs when they start, so each
  thread count has a worker of its own) and sets it through the backend's library before
  ``prepare`` (``convbench.threads.set_threads``); the count read back is what the timing
  records. A GPU backend's host threads are not what is measured: no count is set or recorded.
- **Trust.** Every timing carries the facts of ``convbench.timing.Measurement.facts``: its
  spread, confidence interval and sample count, the load other processes put on the machine
  meanwhile, the threads given and those kept busy, and ``noisy`` with the reasons. With
  ``remeasure``, ``run_sweep`` times the noisy cases once more after the others (``merge_passes``
  says which pass is reported and keeps both).

Record fields (one flat row per case): the case (``backend``, ``size``, ``kernel``, ``dtype``,
``batch``, ``op``, ``mode``, ``boundary``), ``status`` (``STATUSES``), ``reason`` (why a case is
not ok; None when it is), the facts of ``convbench.records.FACTS`` (None where the backend could
not give them), ``threads_asked`` (the thread count the case asked of a CPU backend; None on a
GPU), and for a case that ran: the facts of ``Measurement.facts`` (``median_s``, ``q25_s``,
``q75_s``, ``spread``, ``ci_low_s``, ``ci_high_s``, ``samples``, ``number``, ``overhead``,
``threads`` (in force, read back from the library; None where it has no thread control),
``busy_threads``, ``other_cores``, ``cores``, ``load_average_start``, ``load_average_end``,
``noisy``, ``noisy_reasons`` ('; '-joined, '' when trusted)), ``gb_per_s``, ``max_rel``,
``max_abs``, ``rel_l2``, ``ok``, ``warning`` (the noisy reasons and a thread count the op
exceeded), and ``passes`` (1, or 2 when re-measured; ``merge_passes`` names the fields of each).
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import itertools
import json
import math
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np

from convbench import atomic
from convbench.agreement import Agreement, agreement_for
from convbench.backends.base import Backend, BackendUnavailable
from convbench.failures import describe
from convbench.memory import memory_refusal
from convbench.records import FACTS, backend_facts
from convbench.reference import reference
from convbench.registry import get_backend
from convbench.spec import ConvSpec, numpy_dtype
from convbench.suite import make_inputs
from convbench.threads import default_threads, set_threads, thread_env
from convbench.timing import Measurement, Task, Timer

# "unsupported": the backend (or this machine) cannot do the case: a dtype it lacks, an absent
# device, inputs too large to hold; "error": anything else went wrong, the worker's death
# included; "mismatch": it ran, outside tolerance.
STATUSES = ("ok", "mismatch", "unsupported", "error")
FAILED = ("error", "mismatch")
STREAM_SUFFIX = ".partial.jsonl"
# Long enough for a framework's first import and a large CPU case; a hang is still found.
DEFAULT_CASE_TIMEOUT = 300.0
# How often the driver, waiting for the worker, looks at the time limit and at a stop signal.
POLL_SECONDS = 0.1
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


@dataclass(frozen=True)
class Case:
    """One combination of the sweep, for one backend; ``threads``: the thread count a CPU
    backend is given (None: ``default_threads()``; a GPU backend ignores it)."""

    backend: str
    size: int
    kernel: int
    dtype: str
    batch: int
    spec: ConvSpec
    threads: int | None = None

    def __str__(self) -> str:
        batch = f",batch={self.batch}" if self.batch > 1 else ""
        threads = "" if self.threads is None else f",threads={self.threads}"
        return (
            f"{self.backend}[size={self.size},kernel={self.kernel},dtype={self.dtype}"
            f"{batch}{threads}]"
        )

    @property
    def inputs_key(self) -> tuple:
        """What the inputs and the reference depend on: cases sharing it share them."""
        return (self.size, self.kernel, self.dtype, self.batch, self.spec)

    @property
    def image_shape(self) -> tuple[int, ...]:
        square = (self.size, self.size)
        return square if self.batch == 1 else (self.batch, *square)

    @property
    def kernel_shape(self) -> tuple[int, int]:
        return (self.kernel, self.kernel)

    def fields(self) -> dict[str, Any]:
        """The case's part of its record."""
        return {
            "backend": self.backend,
            "size": self.size,
            "kernel": self.kernel,
            "dtype": self.dtype,
            "batch": self.batch,
            "op": self.spec.op,
            "mode": self.spec.mode,
            "boundary": self.spec.boundary,
        }


@dataclass(frozen=True)
class Outcome:
    """A case's record (one flat row for pandas) and its host result when it ran."""

    record: dict[str, Any]
    output: np.ndarray | None = None


@dataclass(frozen=True)
class SweepOptions:
    """How each case is measured: seconds of samples, the input seed, and the per-case time
    limit (seconds the worker may take for one case, its framework's first import and the
    inputs and reference of the first case of a group included)."""

    min_run_time: float = 0.2
    seed: int = 0
    case_timeout: float = DEFAULT_CASE_TIMEOUT


def build_cases(
    backends: Iterable[str],
    sizes: Iterable[int],
    kernels: Iterable[int],
    dtypes: Iterable[str],
    batch: int,
    spec: ConvSpec,
    threads: Sequence[int] = (),
) -> list[Case]:
    """Cases ordered so that those sharing inputs (and the reference) are adjacent. With
    ``threads``, every CPU backend's case once per thread count (a worker each: grouped by
    count, in the order given) and a GPU backend's once, in the first group, without one;
    without, every case has ``threads`` None."""
    backends = list(backends)
    combos = list(itertools.product(sizes, kernels, dtypes))
    if not threads:
        return [Case(b, s, k, d, batch, spec) for s, k, d in combos for b in backends]
    on_cpu = {name: get_backend(name).device_kind == "cpu" for name in backends}
    return [
        Case(b, s, k, d, batch, spec, count if on_cpu[b] else None)
        for group, count in enumerate(threads)
        for s, k, d in combos
        for b in backends
        if on_cpu[b] or group == 0
    ]


# What the worker knows of a case before the backend starts: the backend's facts and the thread
# count the case asks of it.
CASE_FACTS = (*FACTS, "threads_asked")


def not_run(case: Case, status: str, reason: str, facts: dict | None = None) -> Outcome:
    """The record of a case that did not run to the end, with why."""
    known = {name: (facts or {}).get(name) for name in CASE_FACTS}
    return Outcome({**case.fields(), **known, "status": status, "reason": reason})


def failure(case: Case, error: BaseException, facts: dict | None = None) -> Outcome:
    """The record of a case that raised: 'unsupported' when the backend declined it (a dtype it
    lacks, a device that is absent), otherwise 'error' with the error's first line (named 'out of
    memory' when it is one, whichever framework raised it)."""
    if isinstance(error, (NotImplementedError, BackendUnavailable)):
        return not_run(case, "unsupported", str(error), facts)
    if isinstance(error, SystemExit):
        return not_run(case, "error", f"the backend called sys.exit({error.code!r})", facts)
    if isinstance(error, KeyboardInterrupt):
        return not_run(case, "error", "the backend raised KeyboardInterrupt", facts)
    return not_run(case, "error", describe(error), facts)


def refusal(backend: Backend, case: Case) -> str | None:
    """Why ``case`` is refused before anything is allocated for it, or None: the one place a
    case is turned down up front. A case whose inputs, reference, output and the backend's
    workspace outgrow this machine's available memory (``convbench.memory``) would meet the
    kernel's out-of-memory killer halfway through."""
    return memory_refusal(case.image_shape, case.kernel_shape, case.dtype, case.spec, backend)


@dataclass(frozen=True)
class Job:
    """What the driver sends the worker: one case, how to make its inputs and measure it, the
    thread count a CPU backend gets (the worker's), and whether to send the host result back."""

    case: Case
    seed: int
    min_run_time: float
    keep_output: bool
    threads: int


@dataclass(frozen=True)
class Facts:
    """The worker's first answer to a job, sent before the backend starts work, so that a case
    whose worker dies still records them."""

    facts: dict[str, Any]


_INPUTS: dict[tuple, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}


def case_inputs(inputs_key: tuple, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Image, kernel and float64 reference of a ``Case.inputs_key``, made once for the
    consecutive cases sharing them (``build_cases`` keeps them adjacent), the previous ones
    dropped first. Backends cannot change them: ``prepare`` works on its own copy."""
    if (inputs_key, seed) not in _INPUTS:
        _INPUTS.clear()
        size, kernel, dtype, batch, spec = inputs_key
        image, weights = make_inputs(size, kernel, dtype, batch, seed=seed)
        _INPUTS[inputs_key, seed] = (image, weights, reference(image, weights, spec))
    return _INPUTS[inputs_key, seed]


def case_facts(backend: Backend, case: Case, threads: int) -> dict[str, Any]:
    """``backend_facts`` of this case (its tolerance depends on the backend's arithmetic, direct
    or FFT, and on the shapes) and ``threads_asked``: ``threads`` for a CPU backend, None for a
    GPU one."""
    on_cpu = backend.device_kind == "cpu"
    return {
        **backend_facts(backend, case.dtype, case.image_shape, case.kernel_shape),
        "threads_asked": threads if on_cpu else None,
    }


def give_threads(backend: Backend, threads: int | None) -> int | None:
    """Run ``backend``'s library with ``threads`` threads (``convbench.threads.set_threads``);
    the count in force, read back. None when no count is asked (a GPU backend) or the library
    has no thread control here (a plugin's own library): then the count is not known."""
    from convbench.backends.threads import CONTROLS  # the worker's: it imports frameworks

    if threads is None or backend.library not in CONTROLS:
        return None
    return set_threads(backend.library, threads)


def ran(case: Case, facts: dict, measurement: Measurement, agree: Agreement, outputs: int) -> dict:
    """The record of a case that ran: the case, the backend's facts, the measurement's facts
    (``Measurement.facts``, its noisy reasons '; '-joined for a flat table) and the agreement."""
    # The least traffic any implementation has: read image and kernel once, write the output.
    itemsize = numpy_dtype(case.dtype).itemsize
    moved = itemsize * (math.prod(case.image_shape) + case.kernel**2 + outputs)
    timing = measurement.facts()
    return {
        **case.fields(),
        **facts,
        "tolerance": agree.tolerance,
        "status": "ok" if agree.ok else "mismatch",
        "reason": None if agree.ok else str(agree),
        **timing,
        "noisy_reasons": "; ".join(timing["noisy_reasons"]),
        "gb_per_s": moved / measurement.median / 1e9 if measurement.median > 0 else None,
        "max_rel": agree.max_rel,
        "max_abs": agree.max_abs,
        "rel_l2": agree.rel_l2,
        "ok": bool(agree.ok),
        "warning": "; ".join(measurement.warnings),
        "passes": 1,
    }


def attempt(job: Job, tell: Callable[[Facts], object]) -> Outcome:
    """Run ``job`` (in the worker): inputs, the backend's timing and result, its agreement with
    the reference. Whatever the backend raises, even ``SystemExit`` or ``KeyboardInterrupt``,
    is the case's failure."""
    case = job.case
    try:
        backend = get_backend(case.backend)
    except Exception as error:  # a plugin that fails to load fails its cases only
        return failure(case, error)
    facts = case_facts(backend, case, job.threads)
    tell(Facts(facts))
    try:
        refused = refusal(backend, case)
        if refused:
            return not_run(case, "unsupported", refused, facts)
        image, kernel, ref = case_inputs(case.inputs_key, job.seed)
        # Before prepare: TensorFlow fixes its count at its first op.
        given = give_threads(backend, facts["threads_asked"])
        prepared = backend.prepare(image, kernel, case.spec)
        timer = Timer.of(prepared, Task(case.backend, str(case), threads=given))
        measurement = timer.blocked_autorange(job.min_run_time)
        output = prepared.result()
        agree = agreement_for(backend, output, ref, image, kernel, case.spec)
    except BaseException as error:  # a case's failure (OOM, a library bug) is that case's result
        return failure(case, error, facts)
    record = ran(case, facts, measurement, agree, output.size)
    return Outcome(record, output if job.keep_output else None)


def die_with(parent: int) -> None:
    """Make this process end when ``parent`` does, so that a killed driver leaves no backend
    running (Linux; elsewhere the worker ends at its next read of the closed socket)."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the driver died before the request above was made
        os._exit(1)


def serve(fd: int, parent: int) -> None:
    """The worker's loop: answer jobs on the socket ``fd`` until the driver closes it."""
    die_with(parent)
    connection = Connection(fd)
    while True:
        try:
            job = connection.recv()
        except EOFError:
            return
        connection.send(attempt(job, connection.send))


# The worker's program. SIGINT is ignored before anything else: a terminal's Ctrl-C signals the
# whole process group, and the driver decides what it stops.
WORKER = (
    "import signal; signal.signal(signal.SIGINT, signal.SIG_IGN); "
    "import sys, convbench.sweep; convbench.sweep.serve(int(sys.argv[1]), int(sys.argv[2]))"
)


def death(exitcode: int) -> str:
    """Why the worker is gone, from its exit code (negative: the signal that killed it)."""
    if exitcode < 0:
        name = signal.Signals(-exitcode).name
        # The out-of-memory killer sends SIGKILL; nothing else in a sweep does.
        extra = " (the system's out-of-memory killer sends it)" if name == "SIGKILL" else ""
        return f"worker process died with signal {name}{extra}"
    return f"worker process exited with status {exitcode} while running the case"


class Stop:
    """Set by SIGINT or SIGTERM (``stop_signals``): the sweep ends before its next case."""

    def __init__(self) -> None:
        self.signal: signal.Signals | None = None

    def __call__(self, signum: int, frame: object) -> None:
        self.signal = signal.Signals(signum)


@contextlib.contextmanager
def stop_signals() -> Iterator[Stop]:
    """SIGINT and SIGTERM set the yielded ``Stop`` instead of raising, while inside; the
    previous handlers are restored after. Outside the main thread (where Python cannot set
    handlers) the ``Stop`` is never set."""
    stop = Stop()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    previous = {number: signal.signal(number, stop) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


class Worker:
    """The process that runs backends: started on first use and again after it dies.

    A plain child interpreter (``WORKER``) rather than a multiprocessing one: it never imports
    the caller's main module, so a script without a ``__main__`` guard can run a sweep, and it
    starts without the caller's imports. It gets the caller's ``sys.path`` (kept in
    ``started_with``) and environment as they were at its start, with every library's start-up
    thread count set to ``threads`` (``thread_env``)."""

    def __init__(self, threads: int) -> None:
        self.started_with = tuple(sys.path)
        self.threads = threads
        self._process: subprocess.Popen | None = None
        self._connection: Connection | None = None
        self._lock = threading.Lock()

    def _start(self) -> None:
        ours, theirs = socket.socketpair()
        path = os.pathsep.join(entry or os.getcwd() for entry in sys.path)
        with theirs:
            self._process = subprocess.Popen(
                [sys.executable, "-c", WORKER, str(theirs.fileno()), str(os.getpid())],
                pass_fds=[theirs.fileno()],
                stdin=subprocess.DEVNULL,
                env=thread_env(self.threads, {**os.environ, "PYTHONPATH": path}),
            )
        self._connection = Connection(ours.detach())

    def _gone(self) -> str:
        """Reap a dead (or hopeless) worker and say why it is gone."""
        self._connection.close()
        try:
            self._process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        reason = death(self._process.returncode)
        self._process = self._connection = None
        return reason

    def kill(self) -> None:
        """End the worker at once: it holds nothing that is not already sent."""
        if self._process is not None:
            self._process.kill()
            self._gone()

    def run(self, job: Job, case_timeout: float, stop: Stop) -> Outcome | None:
        """The outcome of ``job``; None when ``stop`` was set meanwhile (the worker is then
        killed and the case abandoned, as on any exception in the driver)."""
        with self._lock:
            if self._process is None:
                self._start()
            try:
                return self._answer(job, case_timeout, stop)
            except BaseException:  # never leave a worker busy with a case nobody waits for
                self.kill()
                raise

    def _answer(self, job: Job, case_timeout: float, stop: Stop) -> Outcome | None:
        facts = None
        deadline = time.monotonic() + case_timeout
        try:
            self._connection.send(job)
            while True:
                if stop.signal is not None:
                    self.kill()
                    return None
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    self.kill()
                    limit = f"exceeded the per-case time limit of {case_timeout:g} s"
                    return not_run(job.case, "error", limit, facts)
                if not self._connection.poll(min(remaining, POLL_SECONDS)):
                    continue
                message = self._connection.recv()
                if not isinstance(message, Facts):
                    return message
                facts = message.facts
        except (EOFError, OSError):  # the socket closed under us: the worker died
            reason = self._gone()
        if stop.signal is not None:
            # Killed by the signal that stops the sweep (SIGTERM to the whole process group):
            # the case is abandoned, not failed.
            return None
        return not_run(job.case, "error", reason, facts)


_WORKER: Worker | None = None


@atexit.register
def _end_shared_worker() -> None:
    if _WORKER is not None:
        _WORKER.kill()


def shared_worker(threads: int) -> Worker:
    """This process's worker for ``threads`` threads, kept from one case and one sweep to the
    next (a framework is imported once per process, as it would be without isolation) while
    ``sys.path`` is as it was at its start (a plugin added to the path needs a new worker); a
    new one otherwise, and for another thread count (the one before is ended: one at a time)."""
    global _WORKER
    if _WORKER is None or (_WORKER.started_with, _WORKER.threads) != (tuple(sys.path), threads):
        if _WORKER is not None:
            _WORKER.kill()
        _WORKER = Worker(threads)
    return _WORKER


def sweep(
    cases: Sequence[Case],
    options: SweepOptions | None = None,
    *,
    stop: Stop | None = None,
    announce: Callable[[Case], object] | None = None,
    keep_output: bool = False,
) -> Iterator[tuple[Case, Outcome]]:
    """Each case and its outcome, in order, as each finishes; ``announce(case)`` is called as a
    case starts. Ends early, without the case in flight, when ``stop`` is set. The backends run
    in ``shared_worker`` of the case's thread count (``default_threads()`` when it has none);
    ``keep_output``: each outcome carries the backend's host result."""
    options = options or SweepOptions()
    stop = stop or Stop()
    for case in cases:
        if stop.signal is not None:
            return
        if announce is not None:
            announce(case)
        threads = case.threads or default_threads()
        job = Job(case, options.seed, options.min_run_time, keep_output, threads)
        outcome = shared_worker(threads).run(job, options.case_timeout, stop)
        if outcome is None:
            return
        yield case, outcome


def load_stream(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The records of a JSON-lines file (a stream or a ``.jsonl`` output), in order. A line that
    is not a JSON object (the torn last line of a killed writer) is skipped."""
    found = []
    with open(path, encoding="utf-8", errors="replace") as lines:
        for line in lines:
            with contextlib.suppress(json.JSONDecodeError):
                record = json.loads(line)
                if isinstance(record, dict):
                    found.append(record)
    return found


def _json_lines(records: Iterable[dict[str, Any]]) -> str:
    return "".join(json.dumps(record, default=str) + "\n" for record in records)


# pandas is imported where a table is written or read, not at module level: the worker imports
# this module and has no use for it.
def _frame(records: Iterable[dict[str, Any]]):
    import pandas as pd

    return pd.DataFrame(list(records))


WRITERS: dict[str, Callable[[list[dict[str, Any]], Path], object]] = {
    ".csv": lambda records, path: _frame(records).to_csv(path, index=False),
    ".json": lambda records, path: _frame(records).to_json(path, orient="records", indent=1),
    ".jsonl": lambda records, path: path.write_text(_json_lines(records), encoding="utf-8"),
    ".parquet": lambda records, path: _frame(records).to_parquet(path, index=False),
}


def read_records(path: str | os.PathLike):
    """The records of a file written by one of ``WRITERS`` (or a stream), as a DataFrame; the
    format is the suffix. OSError or ValueError when the file cannot be read as one."""
    import pandas as pd

    path = Path(path)
    suffix = ".jsonl" if path.name.endswith(STREAM_SUFFIX) else path.suffix.lower()
    if suffix == ".csv":
        return pd.read_csv(path)
    if suffix == ".json":
        return pd.read_json(path, orient="records")
    if suffix == ".jsonl":
        return pd.DataFrame(load_stream(path))
    if suffix == ".parquet":
        return pd.read_parquet(path)
    raise ValueError(f"{str(path)!r} must end in one of {sorted(WRITERS)}")


class OutputError(Exception):
    """An output path that cannot be written; the message names it and why."""


def _why(error: OSError) -> str:
    return error.strerror or str(error)


def check_folder(folder: Path) -> None:
    """OutputError unless ``folder`` exists (or can be made) and takes a new file: found before
    any work, not after it."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        raise OutputError(f"cannot write in folder {str(folder)!r}: {_why(error)}") from error


@dataclass(frozen=True)
class Output:
    """Where a sweep's records go: ``path`` (its suffix picks the format, ``WRITERS``), written
    once at the end, atomically; ``stream`` beside it gets each record as its case finishes."""

    path: Path

    @property
    def stream(self) -> Path:
        return self.path.with_name(self.path.name + STREAM_SUFFIX)

    def check(self) -> None:
        """OutputError unless the records can be written: a known suffix, a folder that exists
        (or can be made) and takes a new file, and no stream of an earlier run that did not
        end holding cases (it is not overwritten)."""
        if self.path.suffix.lower() not in WRITERS:
            raise OutputError(
                f"{str(self.path)!r} must end in one of {sorted(WRITERS)}: the suffix is the format"
            )
        if self.path.is_dir():
            raise OutputError(f"{str(self.path)!r} is a folder; give a file name")
        check_folder(self.path.parent)
        # Only a regular file can hold records (a device such as /dev/full reads forever).
        kept = len(load_stream(self.stream)) if self.stream.is_file() else 0
        if kept:
            raise OutputError(
                f"{str(self.stream)!r} holds {kept} finished cases of an earlier run that did not "
                "end; keep them (rename the file; `convbench compare` reads it) or delete it"
            )

    def open_stream(self) -> None:
        """Start an empty stream (after ``check``)."""
        try:
            self.stream.write_text("", encoding="utf-8")
        except OSError as error:
            raise OutputError(f"cannot write {str(self.stream)!r}: {_why(error)}") from error

    def append(self, record: dict[str, Any]) -> None:
        """Add one finished case to the stream, in one write."""
        with open(self.stream, "a", encoding="utf-8") as stream:
            stream.write(_json_lines([record]))

    def finish(self, records: list[dict[str, Any]]) -> None:
        """Write ``records`` to ``path`` atomically, then drop the stream they came through."""
        try:
            atomic.write_with(
                self.path, lambda temporary: WRITERS[self.path.suffix.lower()](records, temporary)
            )
        except OSError as error:
            raise OutputError(f"cannot write {str(self.path)!r}: {_why(error)}") from error
        self.stream.unlink(missing_ok=True)


# What each pass of a re-measured case keeps, as ``pass1_<name>`` and ``pass2_<name>``.
PASS_FIELDS = (
    "status",
    "median_s",
    "q25_s",
    "q75_s",
    "spread",
    "samples",
    "other_cores",
    "noisy",
    "noisy_reasons",
)


def needs_remeasure(record: dict[str, Any]) -> bool:
    """Whether a case's record is a timing marked noisy: worth a second pass."""
    return record["status"] in ("ok", "mismatch") and bool(record.get("noisy"))


def merge_passes(first: dict[str, Any], second: dict[str, Any]) -> dict[str, Any]:
    """One record of a case timed twice. Its own fields are those of the pass reported: the
    second when it ran and is not noisy, or when both are noisy and it is the faster
    (interference from other work only ever adds time, so the faster median is the nearer to
    the op's own); else the first. Both passes' timings are kept as ``pass1_<name>`` and
    ``pass2_<name>`` (``PASS_FIELDS``), ``passes`` is 2 and ``reported_pass`` says which pass
    the record's own fields are."""
    second_ran = second["status"] in ("ok", "mismatch")
    faster = second_ran and second["median_s"] < first["median_s"]
    reported, number = (second, 2) if second_ran and (not second["noisy"] or faster) else (first, 1)
    passes = {
        f"pass{n}_{name}": record.get(name)
        for n, record in ((1, first), (2, second))
        for name in PASS_FIELDS
    }
    return {**reported, **passes, "passes": 2, "reported_pass": number}


@dataclass(frozen=True)
class Step:
    """A case starting in ``run_sweep``: ``done`` cases have finished before it (in both
    passes), ``planned`` are planned so far (the first pass, then the re-measured cases too)
    and ``remeasure`` is True in the second pass."""

    case: Case
    done: int
    planned: int
    remeasure: bool = False


@dataclass(frozen=True)
class SweepRun:
    """What ``run_sweep`` left: the finished cases' outcomes, how many cases were planned, the
    signal that stopped it (None when it ran to the end), and what could not be written."""

    outcomes: tuple[Outcome, ...]
    planned: int
    stopped_by: signal.Signals | None = None
    write_error: str | None = None

    @property
    def records(self) -> list[dict[str, Any]]:
        return [outcome.record for outcome in self.outcomes]


def run_sweep(
    cases: Sequence[Case],
    options: SweepOptions | None = None,
    output: Output | None = None,
    announce: Callable[[Step], object] | None = None,
    keep_output: bool = False,
    remeasure: bool = False,
) -> SweepRun:
    """``sweep`` with nothing lost: each finished case streamed to ``output.stream``, all of them
    written to ``output.path`` at the end (also after SIGINT or SIGTERM, which stop the sweep
    cleanly). A stream that cannot be appended to stops the sweep: what finished is still
    written to the output if it can be. OutputError when the stream cannot even be started.

    ``remeasure``: once every case has run, the cases whose timing is noisy run once more, and
    each record becomes ``merge_passes`` of its two (streamed again: in a stream, a case's later
    line is the one that counts). ``announce(step)`` is called as each case starts."""
    outcomes: list[Outcome] = []
    problems: list[str] = []
    finished = 0

    def keep(record: dict[str, Any]) -> bool:
        """Stream ``record``; False (and the problem said) when the stream cannot take it."""
        nonlocal finished
        finished += 1
        if output is None:
            return True
        try:
            output.append(record)
        except OSError as error:
            problems.append(
                f"cannot append to {str(output.stream)!r}: {_why(error)}; "
                f"the sweep stopped after {finished} cases"
            )
            return False
        return True

    def steps(planned: int, second: bool) -> Callable[[Case], object] | None:
        if announce is None:
            return None
        return lambda case: announce(Step(case, finished, planned, second))

    with stop_signals() as stop:
        if output is not None:
            output.open_stream()
        first = sweep(
            cases, options, stop=stop, announce=steps(len(cases), False), keep_output=keep_output
        )
        for _, outcome in first:
            outcomes.append(outcome)
            if not keep(outcome.record):
                break
        noisy = [i for i, o in enumerate(outcomes) if needs_remeasure(o.record)]
        if remeasure and noisy and not problems and stop.signal is None:
            again = [cases[i] for i in noisy]
            second = sweep(again, options, stop=stop, announce=steps(len(cases) + len(noisy), True))
            for i, (_, outcome) in zip(noisy, second, strict=False):
                earlier = outcomes[i]
                outcomes[i] = Outcome(merge_passes(earlier.record, outcome.record), earlier.output)
                if not keep(outcomes[i].record):
                    break
        if output is not None:
            try:
                output.finish([outcome.record for outcome in outcomes])
            except OutputError as error:
                kept = "" if problems else f"; the finished cases are in {str(output.stream)!r}"
                problems.append(f"{error}{kept}")
    return SweepRun(tuple(outcomes), len(cases), stop.signal, "; ".join(problems) or None)
