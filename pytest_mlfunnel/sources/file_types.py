"""What is behind a path, asked before anything opens it.

Opening a FIFO for reading waits for a writer, forever; a character device may never end; a
socket cannot be read at all. DuckDB, SQLite and ``open()`` give no timeout for any of them, so
a source path must be a regular file (or a directory, which readers refuse on their own) before
a reader touches it. ``os.stat`` answers without opening.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from pytest_mlfunnel.atomic import special_kind
from pytest_mlfunnel.outcome import CriterionError


def special_file(path: str | Path) -> str | None:
    """What the path is when it is neither a regular file nor a directory ("a FIFO (named
    pipe)", "a socket", ...); None for files, directories and paths that do not exist."""
    try:
        mode = os.stat(path).st_mode  # follows symlinks: a link to a FIFO is a FIFO
    except (OSError, ValueError):
        return None
    return special_kind(mode)


def refuse_special_files(paths: Iterable[str | Path], display: str,
                         rootdir: Path | None = None) -> None:
    """Raise a CriterionError naming the first path that is not a regular file (shown
    relative to ``rootdir`` when it lies inside)."""
    for path in paths:
        what = special_file(path)
        if what is not None:
            shown = _shown(Path(path), rootdir)
            subject = "" if shown == display else f"{shown} "
            raise CriterionError(f"{display}: {subject}is {what}, not a regular file; refused "
                                 "before opening it (reading it could wait forever)")


#: the most a file read whole into memory (a metrics file, a document) may hold: a metrics file
#: is a few kilobytes; a sparse 30 GiB file or a link to a huge one must not exhaust memory
MAX_WHOLE_FILE_BYTES = 64 * 2**20


def read_whole(path: Path, display: str, what: str = "a metrics file") -> bytes:
    """The bytes of a small file, at most ``MAX_WHOLE_FILE_BYTES`` (a CriterionError naming
    the size beyond that). Read up to the limit, not by the size the file claims: a file of
    ``/proc`` says 0 and holds more."""
    limit = MAX_WHOLE_FILE_BYTES
    with path.open("rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        data = handle.read(limit + 1) if size <= limit else b""
    if size > limit or len(data) > limit:
        held = f"{size / 2**30:.1f} GiB" if size >= 2**30 else (
            f"{size // 2**20} MiB" if size > limit else f"more than {limit // 2**20} MiB")
        raise CriterionError(f"{display}: holds {held}; {what} is read whole, up to "
                             f"{limit // 2**20} MiB (is it the right file?)")
    return data


def _shown(path: Path, rootdir: Path | None) -> str:
    if rootdir is not None:
        try:
            return path.absolute().relative_to(rootdir.absolute()).as_posix()
        except ValueError:
            pass
    return str(path)
