"""One atomic writer for every output: whole files, their permissions, no temp file left."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from pytest_mlfunnel.atomic import read_regular, write_atomic


def test_a_file_is_replaced_whole_and_keeps_its_permissions(tmp_path: Path) -> None:
    target = tmp_path / "out" / "report.json"
    write_atomic(target, '{"a": 1}\n')
    os.chmod(target, 0o600)
    write_atomic(target, b'{"a": 2}\n')
    assert target.read_text() == '{"a": 2}\n'
    assert target.stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in target.parent.iterdir()) == ["report.json"]


def test_a_failed_write_leaves_no_temp_file_and_the_old_file_alone(tmp_path: Path) -> None:
    target = tmp_path / "history.jsonl"
    target.write_text("old\n")
    (tmp_path / "history.jsonl.d").mkdir()
    with pytest.raises(OSError):
        write_atomic(tmp_path / "history.jsonl.d", "new\n")  # a folder cannot be replaced
    assert target.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["history.jsonl", "history.jsonl.d"]


@pytest.mark.skipif(os.name != "posix", reason="no /dev/null or named pipes")
def test_a_device_or_a_pipe_is_neither_replaced_nor_read(tmp_path: Path) -> None:
    null = tmp_path / "null"
    null.symlink_to(os.devnull)
    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    for target, what in ((null, "a character device"), (pipe, "a FIFO (named pipe)")):
        with pytest.raises(OSError, match=rf"^\[Errno \d+\] {re.escape(what)}, not a regular file"):
            write_atomic(target, "report\n")
        # opening the FIFO would wait for a writer forever; /dev/zero would never end
        with pytest.raises(OSError, match=rf"^\[Errno \d+\] {re.escape(what)}, not a regular file"):
            read_regular(target)
    assert null.is_symlink() and pipe.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["null", "pipe"]
    with pytest.raises(IsADirectoryError):
        read_regular(tmp_path)
    (tmp_path / "fine.txt").write_bytes(b"ok\n")
    assert read_regular(tmp_path / "fine.txt") == b"ok\n"


@pytest.mark.skipif(os.name != "posix", reason="symbolic links need privileges on Windows")
def test_a_symlinked_output_is_written_through_the_link(tmp_path: Path) -> None:
    published = tmp_path / "site" / "report.html"
    published.parent.mkdir()
    published.write_text("old\n")
    os.chmod(published, 0o640)
    link = tmp_path / "report.html"
    link.symlink_to(published)
    write_atomic(link, "new\n")
    assert link.is_symlink() and published.read_text() == "new\n"
    assert published.stat().st_mode & 0o777 == 0o640
    assert sorted(p.name for p in published.parent.iterdir()) == ["report.html"]
    dangling = tmp_path / "later.json"
    dangling.symlink_to(tmp_path / "site" / "later.json")
    write_atomic(dangling, "{}\n")
    assert dangling.is_symlink() and (tmp_path / "site" / "later.json").read_text() == "{}\n"
