"""convbench.quiet: waiting for a quiet machine, on looks and a clock the test gives it."""

from __future__ import annotations

import pytest

from convbench import quiet
from convbench.load import BusyProcess, Load, MachineState
from convbench.quiet import PAUSE_SECONDS, Waited, wait_for_quiet


def state(other_cores: float) -> MachineState:
    load = Load(0.5, 2, other_cores, 1.0, 1.0, 1)
    return MachineState(load, (BusyProcess(42, "burn", other_cores),) if other_cores else ())


class Machine:
    """Looks that return ``loads`` in turn, each taking ``look`` seconds of a fake clock."""

    def __init__(self, *loads: float, look: float = 0.5) -> None:
        self.loads = list(loads)
        self.now = 0.0
        self.look_seconds = look
        self.pauses: list[float] = []
        self.told: list[tuple[float, float]] = []

    def look(self) -> MachineState:
        self.now += self.look_seconds
        return state(self.loads.pop(0))

    def pause(self, seconds: float) -> None:
        self.pauses.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now

    def busy(self, seen: MachineState, left: float) -> None:
        self.told.append((seen.load.other_cores, left))

    def wait(self, timeout: float) -> Waited:
        return wait_for_quiet(
            timeout, look=self.look, pause=self.pause, clock=self.clock, busy=self.busy
        )


def test_a_quiet_machine_is_looked_at_once():
    machine = Machine(0.1)
    waited = machine.wait(60)
    assert waited.quiet and waited.looks == 1 and waited.seconds == 0.5
    assert machine.pauses == [] and machine.told == []


def test_the_wait_ends_when_the_machine_turns_quiet():
    machine = Machine(1.5, 1.0, 0.1)
    waited = machine.wait(60)
    assert waited.quiet and waited.looks == 3
    assert machine.pauses == [PAUSE_SECONDS, PAUSE_SECONDS]
    assert machine.told == [(1.5, 59.5), (1.0, 55.0)]


def test_the_wait_ends_at_its_bound_on_a_machine_that_stays_busy():
    machine = Machine(*[2.0] * 10)
    waited = machine.wait(10)
    assert not waited.quiet
    # look 0.5 s, pause 4, look, pause 4, look (9.5 s), pause the 0.5 s left, a last look.
    assert machine.pauses == [PAUSE_SECONDS, PAUSE_SECONDS, 0.5]
    assert waited.looks == 4 and waited.seconds == 10.5


def test_no_wait_looks_once():
    waited = Machine(2.0).wait(0)
    assert not waited.quiet and waited.looks == 1


@pytest.mark.parametrize("timeout", [-1.0, -0.001])
def test_a_negative_wait_is_refused(timeout):
    with pytest.raises(ValueError, match=f"timeout={timeout!r} must be a number of seconds >= 0"):
        wait_for_quiet(timeout)


def test_the_summary_says_how_the_wait_ended():
    assert Waited(state(0.1), 0.5, 1).summary() == (
        "the machine is quiet: other processes used 0.10 of 2 cores"
    )
    assert Waited(state(0.1), 9.0, 3).summary() == (
        "the machine is quiet after 9 s of waiting: other processes used 0.10 of 2 cores"
    )
    busy = Waited(state(1.5), 61.0, 14).summary()
    assert busy.startswith("after 61 s of waiting, the machine is not quiet: other processes")
    assert "burn (pid 42) 1.50 cores" in busy


@pytest.mark.parametrize(("other_cores", "status"), [(0.1, 0), (1.5, 1)])
def test_the_command_exits_0_when_quiet_and_1_when_busy(monkeypatch, capsys, other_cores, status):
    seen = []

    def wait(timeout, busy):
        seen.append(timeout)
        return Waited(state(other_cores), timeout, 1)

    monkeypatch.setattr(quiet, "wait_for_quiet", wait)
    assert quiet.main(["--wait", "7"]) == status
    assert seen == [7.0]
    said = capsys.readouterr().out
    assert said.startswith("the machine is quiet" if status == 0 else "the machine is not quiet")


@pytest.mark.parametrize("value", ["-1", "nan", "inf"])
def test_the_command_refuses_a_wait_that_is_no_finite_time(capsys, value):
    with pytest.raises(SystemExit) as stopped:
        quiet.main(["--wait", value])
    assert stopped.value.code == 2
    assert "must be a finite number of seconds >= 0" in capsys.readouterr().err
