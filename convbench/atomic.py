"""Writing a file so that a reader sees the old file or the whole new one, never a torn one.

A writer killed mid-way (kill -9, Ctrl-C, a full disk) must not destroy the previous valid file:
the new content goes to a temporary file in the same folder, is flushed to disk, and replaces the
target with one ``os.replace`` (atomic on POSIX and Windows within one file system).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path


@contextlib.contextmanager
def replacing(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary path beside ``path`` to write to; on success it replaces ``path``, on any
    error (or interruption) it is removed and ``path`` is left as it was."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
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


def write_with(path: str | os.PathLike, write: Callable[[Path], object]) -> Path:
    """Call ``write(temporary_path)``, then move the result onto ``path`` atomically."""
    with replacing(path) as temporary:
        write(temporary)
    return Path(path)


def write_text(path: str | os.PathLike, text: str) -> Path:
    """``Path.write_text`` (UTF-8), atomically."""
    return write_with(path, lambda temporary: temporary.write_text(text, encoding="utf-8"))
