"""One atomic writer for every output: whole files, their permissions, no temp file left."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pytest_mlfunnel.atomic import write_atomic


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
