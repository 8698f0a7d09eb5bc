"""Writing a file so that a reader sees the old file or the whole new one, never a torn one.

A writer killed mid-way (kill -9, Ctrl-C, a full disk) must not destroy the previous valid file:
the new content goes to a temporary file in the same folder, is flushed to disk, and replaces the
target with one ``os.replace`` (atomic on POSIX and Windows within one file system).

A writer killed outright (kill -9) cannot remove its temporary file: each one's name holds its
writer's process id (``.<name>.<pid>.<random>.tmp``), and the next write of the same target
removes those whose writer is no longer running. A temporary of a writer still running (two
writers of one target) is left alone.
"""

from __future__ import annotations

import contextlib
import glob
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path


@contextlib.contextmanager
def replacing(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary path beside ``path`` to write to; on success it replaces ``path``, on any
    error (or interruption) it is removed and ``path`` is left as it was."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_orphans(target)
    fd, name = tempfile.mkstemp(
        prefix=f".{target.name}.{os.getpid()}.", suffix=".tmp", dir=target.parent
    )
    os.close(fd)
    # mkstemp creates the file readable by its owner only; a replaced file gets the mode any new
    # file would (0666 less the umask), so a report stays readable by a web server, say.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(name, 0o666 & ~umask)
    temporary = Path(name)
    try:
        yield temporary
        with open(temporary, "rb+") as written:
            os.fsync(written.fileno())
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _remove_orphans(target: Path) -> None:
    """Remove the temporaries of ``target`` left by writers that are no longer running."""
    # mkstemp's random part has no dot: another target's temporaries never match.
    pattern = re.compile(rf"\.{re.escape(target.name)}\.(\d+)\.[^.]+\.tmp")
    for temporary in target.parent.glob(f".{glob.escape(target.name)}.*.tmp"):
        found = pattern.fullmatch(temporary.name)
        if found and not _running(int(found.group(1))):
            temporary.unlink(missing_ok=True)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


def write_with(path: str | os.PathLike, write: Callable[[Path], object]) -> Path:
    """Call ``write(temporary_path)``, then move the result onto ``path`` atomically."""
    with replacing(path) as temporary:
        write(temporary)
    return Path(path)


def write_text(path: str | os.PathLike, text: str) -> Path:
    """``Path.write_text`` (UTF-8), atomically."""
    return write_with(path, lambda temporary: temporary.write_text(text, encoding="utf-8"))
