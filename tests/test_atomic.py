"""convbench.atomic: a reader sees the old file or the whole new one, never a torn one."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import pytest

from convbench import atomic


def test_write_text_replaces_the_file_whole(tmp_path):
    target = tmp_path / "deep" / "index.html"
    atomic.write_text(target, "first")
    atomic.write_text(target, "second")
    assert target.read_text() == "second"
    assert sorted(p.name for p in target.parent.iterdir()) == ["index.html"]


def test_an_interrupted_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "out.csv"
    target.write_text("old, valid")
    with pytest.raises(KeyboardInterrupt), atomic.replacing(target) as temporary:
        temporary.write_text("half of the new")
        raise KeyboardInterrupt
    assert target.read_text() == "old, valid"
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]


def test_a_full_disk_keeps_the_old_file(tmp_path):
    target = tmp_path / "out.json"
    target.write_text("{}")

    def fill(temporary):
        with open("/dev/full", "w") as full:
            full.write("x" * 65536)
            full.flush()

    with pytest.raises(OSError):
        atomic.write_with(target, fill)
    assert target.read_text() == "{}"


def test_the_new_file_gets_the_mode_of_any_new_file(tmp_path):
    umask = os.umask(0o022)
    try:
        path = atomic.write_text(tmp_path / "report.html", "<p>")
    finally:
        os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_a_temporary_of_a_killed_writer_is_removed_by_the_next_write(tmp_path):
    target = tmp_path / "out.csv"
    target.write_text("old")
    # A writer that was killed outright: its process has ended, its temporary is left.
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    orphan = tmp_path / f".out.csv.{child.pid}.abc123.tmp"
    orphan.write_text("half")
    # A writer still running (this test's parent process, say) keeps its temporary.
    alive = tmp_path / f".out.csv.{os.getppid()}.def456.tmp"
    alive.write_text("writing")
    other = tmp_path / f".other.csv.{child.pid}.abc123.tmp"
    other.write_text("another target's")
    # Nor one of a target whose name begins with this one's.
    longer = tmp_path / f".out.csv.5.{child.pid}.abc123.tmp"
    longer.write_text("out.csv.5's")
    atomic.write_text(target, "new")
    assert target.read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["out.csv", alive.name, other.name, longer.name]
    )


def test_the_temporary_names_its_writer(tmp_path):
    with atomic.replacing(tmp_path / "a.json") as temporary:
        assert temporary.name.startswith(f".a.json.{os.getpid()}.")
        assert temporary.name.endswith(".tmp")
