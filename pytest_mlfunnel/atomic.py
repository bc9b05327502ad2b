"""Writing a whole file so that a reader never sees half of it: the one writer every output
(JSON report, HTML page, history, drift reference cache) goes through; and reading back a file
of ours only when it is a regular file."""

from __future__ import annotations

import contextlib
import errno
import os
import re
import stat
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

_SPECIAL = (
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


def special_kind(mode: int) -> str | None:
    """What a file of this ``st_mode`` is when it is neither a regular file nor a directory
    ("a FIFO (named pipe)", "a character device" ...), else None."""
    for test, what in _SPECIAL:
        if test(mode):
            return what
    return None


#: What a TOML file saved with a byte order mark (some Windows editors do) is told: the TOML
#: parser's own "Invalid statement (at line 1, column 1)" points at nothing visible.
BOM_IN_TOML = ("the file starts with a byte order mark (BOM), which TOML does not allow; save "
               "it as UTF-8 without BOM")
UTF8_BOM = b"\xef\xbb\xbf"


def not_utf8(blob: bytes, exc: UnicodeDecodeError) -> str:
    """``not valid UTF-8: byte 0xff at line 3, column 9`` (TOML files are UTF-8)."""
    line = blob.count(b"\n", 0, exc.start) + 1
    column = exc.start - (blob.rfind(b"\n", 0, exc.start) + 1) + 1
    return (f"not valid UTF-8: byte 0x{blob[exc.start]:02x} at line {line}, column {column} "
            "(TOML files are UTF-8; save the file as UTF-8)")


def _same_path(one: Path, other: Path) -> bool:
    try:
        return one.samefile(other)
    except OSError:  # one of them does not exist (yet)
        return one.resolve() == other.resolve()


def overwrite_problem(outputs: Mapping[str, str | None],
                      inputs: Sequence[tuple[str, Path | None]], reader: str = "command"
                      ) -> tuple[str, str] | None:
    """(target, why) when an output (option -> target, ``-`` for stdout) may not be written:
    it is a file the ``reader`` reads (``inputs``: what it is, its path), two outputs are one
    file, or it holds a file the funnel did not write (``foreign_output``). Checked before
    anything is written, so nothing read is lost."""
    given = {option: target for option, target in outputs.items()
             if target is not None and target != "-"}
    for option, target in given.items():
        for what, source in inputs:
            if source is not None and _same_path(Path(target), source):
                return target, (f"the {what}, which this {reader} reads; give the output a "
                                "path of its own")
        for other, other_target in given.items():
            if other < option and _same_path(Path(target), Path(other_target)):
                return target, (f"given for both {other} and {option}; give the output a "
                                "path of its own")
    for option, target in given.items():  # nor over a file the funnel did not write
        foreign = foreign_output(Path(target), OUTPUT_KINDS[option])
        if foreign is not None:
            return target, foreign
        locked = read_only(Path(target))
        if locked is not None:
            return target, locked
    return None


def read_only(path: Path) -> str | None:
    """Why a regular file made read-only (``chmod 444``) is not replaced, else None: the
    rename an atomic write ends with would replace it all the same, as it does for root."""
    try:
        found = path.stat().st_mode
    except OSError:
        return None
    if not stat.S_ISREG(found) or stat.S_IMODE(found) & 0o222:
        return None
    return (f"is read-only (mode {stat.S_IMODE(found):04o}): make it writable to replace it, "
            "or give another path")


def cannot_write(path: Path, exc: OSError) -> str:
    """Why writing ``path`` failed, for a message: the file in the way of its folder, or
    the system's reason."""
    blocking = file_in_the_way(path)
    return f"{blocking} is not a directory" if blocking else str(exc.strerror or exc)


def read_regular(path: Path) -> bytes:
    """The bytes of a regular file. Anything else is an ``OSError`` before a byte is read:
    opening a FIFO waits for a writer forever and ``/dev/zero`` never ends, so a history or
    report path pointing at one would hang the run or fill the memory. The file is opened
    without blocking and then asked what it is, so nothing can swap it in between."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
        what = special_kind(mode)
        if what is not None:
            raise OSError(errno.EINVAL, f"{what}, not a regular file", str(path))
        with os.fdopen(os.dup(fd), "rb") as handle:
            return handle.read()
    finally:
        os.close(fd)


def file_in_the_way(path: Path) -> Path | None:
    """The first folder of ``path`` that is a file (``report.html`` of
    ``report.html/x.svg``), as given, or None: what a write under it is told."""
    for folder in reversed(path.parents):
        if folder.exists() and not folder.is_dir():
            return folder
    return None


def write_atomic(path: Path, data: str | bytes) -> None:
    """Write through a temp file of a name of its own in the same directory, then
    ``os.replace``: concurrent writers (xdist workers, two runs) never mix, a failure leaves
    no temp file behind, the file keeps its permissions, and a symbolic link stays a link
    (its target is replaced)."""
    blob = data.encode("utf-8") if isinstance(data, str) else data
    # os.replace on a symbolic link would put a file in the link's place: a history or report
    # kept elsewhere and linked in would stop getting what is written
    path = Path(os.path.realpath(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        found = path.stat().st_mode
    except FileNotFoundError:
        mode = 0o644
    else:
        # os.replace would put a regular file in the place of /dev/null (as root, for the
        # whole machine) or of a FIFO another program reads
        what = special_kind(found)
        if what is not None:
            raise OSError(errno.EINVAL, f"{what}, not a regular file", str(path))
        locked = read_only(path)
        if locked is not None:
            raise PermissionError(errno.EACCES, locked.removeprefix("is "), str(path))
        mode = found & 0o7777
    # the pid in the name lets a later writer tell a killed run's leftover (history.py)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}.",
                               suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(blob)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


#: What an output of the funnel's says of itself, by kind: a JSON report or portfolio starts
#: with its schema; a page names its generator (or, written before it did, ends with its
#: footer); a Markdown report starts with its title; a badge is the one SVG shape it writes.
_OURS = {
    "JSON report": (re.compile(rb'^\s*\{\s*"schema"\s*:\s*"mlfunnel-'),),
    "HTML report": (re.compile(rb'<meta name="generator" content="pytest-mlfunnel">'),
                    re.compile(rb"written by pytest-mlfunnel</footer>")),
    "Markdown report": (re.compile(rb"^### ml funnel"),),
    "SVG badge": (re.compile(rb'^<svg xmlns="http://www.w3.org/2000/svg" width="\d+" '
                             rb'height="\d+" role="img" aria-label='),),
}
#: The kind of output each option writes.
OUTPUT_KINDS = {"--funnel-json": "JSON report", "--funnel-html": "HTML report",
                "--json": "JSON report", "--html": "HTML report",
                "--markdown": "Markdown report", "-o": "SVG badge"}


def foreign_output(path: Path, kind: str) -> str | None:
    """Why the file at ``path`` may not be replaced by an output of this ``kind`` (a key of
    ``_OURS``): it holds something the funnel did not write, such as a metrics file the run
    reads or the project's README. Nothing, an empty file, an output of an earlier run, or
    what is not a regular file (the writer says why it cannot write there): None."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError:  # missing (the usual case), or unreadable: writing it will tell
        return None
    with os.fdopen(fd, "rb") as handle:
        size = os.fstat(fd)
        if not stat.S_ISREG(size.st_mode):
            return None
        head = handle.read(4096)
        handle.seek(max(0, size.st_size - 4096))
        tail = handle.read(4096)
    if not head.strip() or any(p.search(head.lstrip()) or p.search(tail) for p in _OURS[kind]):
        return None
    return (f"holds a file the funnel did not write (not an mlfunnel {kind}); it is left as "
            "it is: give the output a path of its own, or remove the file")
