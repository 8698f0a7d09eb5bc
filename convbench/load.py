"""How busy the machine was while something was measured, and what else is using its CPUs.

A timing taken while another process competes for the cores measures the competition as much
as the op (a torch-cpu 64x64 float64 case read 7.18 ms on a 2-core machine running other work,
against 40.8 us quiet). ``LoadProbe`` reads, over the interval it encloses:

- ``other_cores``: the CPU time taken by everything but this process tree on the CPUs this
  process may run on (``cores`` of them), as a mean number of cores (0 = none, ``cores`` = all
  of them). From ``/proc/stat``, the time not idle is ``cores x wall time - idle - iowait`` (on
  a tickless kernel idle time is kept to the nanosecond, and the all-CPU line is rounded to a
  clock tick once, so the figure is good to about 2 ticks over the interval: 20 ms at the usual
  100 Hz, +-0.1 core over 0.2 s; with an affinity to some CPUs only, 2 ticks per CPU). This
  process's own time (``time.process_time``, every thread), its reaped children's
  (``getrusage``) and its live descendants' (``/proc/<pid>/stat``) are taken away. Time the
  hypervisor gave to other guests (steal) is not idle, so it counts as other load: it is.
- the 1-minute load average at the start and the end (``os.getloadavg``; it counts this
  process's own running threads too, so it is context, not the verdict);
- ``busy_threads``: how many of this process's threads ran at least a quarter as long as its
  busiest one, i.e. the threads the measured op really kept busy, whatever the library says.

``busy_processes`` lists the processes using the CPU now, for a warning before a run, and
``machine_state`` puts both together. Outside Linux (no ``/proc``) a figure that cannot be read
is None: unknown, never zero.
"""

from __future__ import annotations

import os
import resource
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from types import TracebackType

PROC = Path("/proc")
# Other processes busy for more than a quarter of a core on average mark a measurement noisy:
# each preemption stalls the op's thread (and a parallel op waits for its slowest thread), and
# on a small machine running the op on every core a quarter core takes about 1/8 of its CPU
# time, far more than the few percent a repeated run should differ by. It is also 2.5x the
# probe's resolution over a 0.2 s measurement, so a quiet machine does not trip it.
BUSY_CORES = 0.25
# A thread that ran at least this share of the busiest thread's time counts as one the op
# used: a parallel op splits its work about evenly, so its threads run alike (each less on a
# busy machine, all alike), while idle pool threads and bookkeeping threads run far less.
BUSY_THREAD_SHARE = 0.25
# Below two clock ticks a thread's time is rounding, not work.
MIN_BUSY_TICKS = 2


def _tick() -> int:
    try:
        return os.sysconf("SC_CLK_TCK")
    except (ValueError, OSError, AttributeError):  # no sysconf outside Unix
        return 100


# /proc counts time in clock ticks of this length (USER_HZ, 100 per second nearly everywhere).
TICK = _tick()


@dataclass(frozen=True)
class Load:
    """The machine's load over one interval (see the module docstring); None where unknown."""

    seconds: float
    cores: int | None
    other_cores: float | None
    load_average_start: float | None
    load_average_end: float | None
    busy_threads: int | None

    @property
    def other_share(self) -> float | None:
        """``other_cores`` as a share of the machine's cores (0..1)."""
        if self.other_cores is None or not self.cores:
            return None
        return self.other_cores / self.cores

    @property
    def busy(self) -> bool:
        """Whether other processes took more than ``BUSY_CORES`` (False when unknown)."""
        return self.other_cores is not None and self.other_cores > BUSY_CORES

    def __str__(self) -> str:
        if self.other_cores is None:
            return "other load unknown"
        return f"other processes used {self.other_cores:.2f} of {self.cores} cores"


@dataclass(frozen=True)
class PidStat:
    """The fields of ``/proc/<pid>/stat`` this module needs; times in clock ticks."""

    pid: int
    name: str
    ppid: int
    own_ticks: int  # utime + stime: the process's own threads
    children_ticks: int  # cutime + cstime: its children that it has waited for
    started: int  # clock ticks after boot: tells a reused pid from the process it had before


def parse_pid_stat(text: str) -> PidStat:
    """Parse one ``/proc/<pid>/stat`` (or ``/proc/<pid>/task/<tid>/stat``) line.

    The name sits in parentheses and may itself hold spaces and parentheses, so the fields are
    counted from the last ')'; see proc(5) for their order."""
    head, _, tail = text.rpartition(")")
    pid, _, name = head.partition(" (")
    fields = tail.split()
    # fields[0] is the state (field 3 in proc(5)): ppid is field 4, utime..cstime 14..17,
    # starttime 22.
    utime, stime, cutime, cstime = (int(f) for f in fields[11:15])
    return PidStat(int(pid), name, int(fields[1]), utime + stime, cutime + cstime, int(fields[19]))


def parse_cpu_lines(stat_text: str, allowed: set[int] | None = None) -> tuple[int, int]:
    """(number of CPUs, their idle + iowait clock ticks) from ``/proc/stat``, over the CPUs in
    ``allowed`` (default: all). Work on a CPU this process may not use does not compete with it.
    """
    per_cpu = {}
    total = None
    for line in stat_text.splitlines():
        if not line.startswith("cpu"):
            continue
        name, *fields = line.split()
        # user nice system idle iowait ...: a CPU waiting on I/O is free to run other work.
        idle = int(fields[3]) + int(fields[4])
        if name == "cpu":
            total = idle
        else:
            per_cpu[int(name[3:])] = idle
    if allowed is None or set(per_cpu) <= allowed:
        # The all-CPU line is rounded to a tick once; the per-CPU lines once each.
        return len(per_cpu), total
    mine = [idle for cpu, idle in per_cpu.items() if cpu in allowed]
    return len(mine), sum(mine)


def descendants(parents: Mapping[int, int], root: int) -> set[int]:
    """The processes below ``root`` in a pid -> parent pid map (``root`` not included)."""
    children: dict[int, list[int]] = {}
    for pid, ppid in parents.items():
        children.setdefault(ppid, []).append(pid)
    found: set[int] = set()
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), ()):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _read(path: Path) -> str | None:
    try:
        return path.read_text(errors="replace")
    except OSError:  # the process ended between listing and reading, or no /proc here
        return None


def _all_processes() -> dict[int, PidStat]:
    found = {}
    try:
        entries = [p for p in PROC.iterdir() if p.name.isdigit()]
    except OSError:
        return {}
    for entry in entries:
        text = _read(entry / "stat")
        if text:
            found[int(entry.name)] = parse_pid_stat(text)
    return found


def _thread_ticks() -> dict[int, int] | None:
    """Clock ticks each thread of this process has run, by thread id; None without /proc."""
    try:
        tids = [p for p in (PROC / "self" / "task").iterdir() if p.name.isdigit()]
    except OSError:
        return None
    found = {}
    for tid in tids:
        text = _read(tid / "stat")
        if text:
            found[int(tid.name)] = parse_pid_stat(text).own_ticks
    return found


def _allowed_cpus() -> set[int] | None:
    try:
        return os.sched_getaffinity(0)
    except AttributeError:  # no affinity outside Linux
        return None


def _load_average() -> float | None:
    try:
        return os.getloadavg()[0]
    except (OSError, AttributeError):  # Windows has no load average
        return None


@dataclass(frozen=True)
class _Reading:
    """What the probe reads at each end of its interval."""

    wall: float
    cores: int | None
    idle_seconds: float | None
    own_seconds: float
    threads: dict[int, int] | None
    load_average: float | None

    @classmethod
    def now(cls) -> _Reading:
        stat = _read(PROC / "stat")
        cores, idle = parse_cpu_lines(stat, _allowed_cpus()) if stat else (None, None)
        return cls(
            wall=time.perf_counter(),
            cores=cores or os.cpu_count(),
            idle_seconds=None if idle is None else idle / TICK,
            own_seconds=_own_tree_seconds(),
            threads=_thread_ticks(),
            load_average=_load_average(),
        )


def _own_tree_seconds() -> float:
    """CPU seconds of this process (all threads), its waited-for children and its live
    descendants (with what they waited for in turn)."""
    reaped = resource.getrusage(resource.RUSAGE_CHILDREN)
    seconds = time.process_time() + reaped.ru_utime + reaped.ru_stime
    processes = _all_processes()
    below = descendants({pid: s.ppid for pid, s in processes.items()}, os.getpid())
    return seconds + sum(processes[p].own_ticks + processes[p].children_ticks for p in below) / TICK


def busy_thread_count(start: Mapping[int, int], end: Mapping[int, int]) -> int:
    """Threads that ran at least ``BUSY_THREAD_SHARE`` of the busiest one's time and at least
    ``MIN_BUSY_TICKS``, from two readings of clock ticks by thread id (a thread born in between
    started from zero)."""
    ran = [ticks - start.get(tid, 0) for tid, ticks in end.items()]
    floor = max(BUSY_THREAD_SHARE * max(ran, default=0), MIN_BUSY_TICKS)
    return sum(1 for ticks in ran if ticks >= floor)


def _load_between(start: _Reading, end: _Reading) -> Load:
    seconds = end.wall - start.wall
    other = None
    if start.idle_seconds is not None and end.idle_seconds is not None and seconds > 0:
        not_idle = start.cores * seconds - (end.idle_seconds - start.idle_seconds)
        own = end.own_seconds - start.own_seconds
        # Rounding to clock ticks can put a quiet machine a hair below zero.
        other = max(0.0, (not_idle - own) / seconds)
    threads = None
    if start.threads is not None and end.threads is not None:
        threads = busy_thread_count(start.threads, end.threads)
    return Load(
        seconds=seconds,
        cores=start.cores,
        other_cores=other,
        load_average_start=start.load_average,
        load_average_end=end.load_average,
        busy_threads=threads,
    )


class LoadProbe:
    """``with LoadProbe() as probe: ...`` then ``probe.result`` is the ``Load`` of the block."""

    def __init__(self) -> None:
        self._start: _Reading | None = None
        self.result: Load | None = None

    def __enter__(self) -> LoadProbe:
        self._start = _Reading.now()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.result = _load_between(self._start, _Reading.now())


@dataclass(frozen=True)
class BusyProcess:
    """A process outside this process tree and the cores it kept busy over a short window."""

    pid: int
    name: str
    cores: float

    def __str__(self) -> str:
        return f"{self.name} (pid {self.pid}) {self.cores:.2f} cores"


def busy_processes(
    window: float = 0.5, top: int = 5, min_cores: float = 0.05
) -> tuple[BusyProcess, ...]:
    """The ``top`` processes, outside this process tree, that used at least ``min_cores`` of
    CPU over the next ``window`` seconds, busiest first (empty without ``/proc``). A process
    that ended within the window is missed; its parent is not charged for it, since a child
    reaped now would add its whole life to the window."""
    before = _all_processes()
    start = time.perf_counter()
    time.sleep(window)
    after = _all_processes()
    seconds = time.perf_counter() - start
    return _with_commands(busiest(before, after, seconds, top, min_cores))


def busiest(
    before: Mapping[int, PidStat],
    after: Mapping[int, PidStat],
    seconds: float,
    top: int,
    min_cores: float,
    me: int | None = None,
) -> tuple[BusyProcess, ...]:
    """The processes of two readings ``seconds`` apart, busiest first, leaving out ``me``
    (default: this process) and its descendants."""
    me = os.getpid() if me is None else me
    mine = descendants({pid: s.ppid for pid, s in after.items()}, me) | {me}
    found = []
    for pid, stat in after.items():
        if pid in mine:
            continue
        earlier = before.get(pid)
        # A process born within the window (or a reused pid) started from zero. Kernel
        # workers rename themselves after their current work: the name tells nothing.
        ticks = stat.own_ticks
        if earlier is not None and earlier.started == stat.started:
            ticks -= earlier.own_ticks
        cores = ticks / TICK / seconds
        if cores >= min_cores:
            found.append(BusyProcess(pid, stat.name, cores))
    return tuple(sorted(found, key=lambda p: -p.cores)[:top])


def _with_commands(processes: tuple[BusyProcess, ...]) -> tuple[BusyProcess, ...]:
    """The processes named by their command lines (``python -m pytest`` says more than
    ``python``), cut to 60 characters; kernel threads have none and keep their names."""
    named = []
    for process in processes:
        text = _read(PROC / str(process.pid) / "cmdline") or ""
        command = " ".join(text.replace("\0", " ").split())
        name = command if len(command) <= 60 else command[:57] + "..."
        named.append(replace(process, name=name) if command else process)
    return tuple(named)


@dataclass(frozen=True)
class MachineState:
    """How busy the machine is now: for a warning before measuring."""

    load: Load
    busy: tuple[BusyProcess, ...]

    @property
    def quiet(self) -> bool:
        """True unless other processes are known to take more than ``BUSY_CORES``."""
        return not self.load.busy

    def warning(self) -> str | None:
        """A sentence for the user when the machine is not quiet, naming what keeps it busy."""
        if self.quiet:
            return None
        names = ", ".join(str(p) for p in self.busy) or "short-lived processes"
        return (
            f"the machine is not quiet: {self.load} over {self.load.seconds:.1f} s "
            f"(threshold {BUSY_CORES} cores), busiest: {names}; timings taken now will be "
            "marked noisy"
        )


def machine_state(window: float = 0.5, top: int = 5) -> MachineState:
    """Watch the machine for ``window`` seconds: the other load and the busiest processes."""
    before = _all_processes()
    with LoadProbe() as probe:
        time.sleep(window)
    after = _all_processes()
    load = probe.result
    return MachineState(
        load, _with_commands(busiest(before, after, load.seconds, top, min_cores=0.05))
    )
