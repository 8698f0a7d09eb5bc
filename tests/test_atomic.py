"""convbench.atomic: a reader sees the old file or the whole new one, never a torn one."""

from __future__ import annotations

import os
import stat

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
