"""One way to register: kinds and metrics readers share the lazy table of registry.py."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pytest_mlfunnel.kinds import KindRegistry
from pytest_mlfunnel.registry import LazyTable


def test_a_builtin_is_imported_on_first_use_and_only_then(tmp_path: Path) -> None:
    (tmp_path / "eval.json").write_text('{"accuracy": 0.9}')
    code = textwrap.dedent(f"""
        import sys
        from pathlib import Path
        from pytest_mlfunnel.sources.metrics import load_metrics
        from pytest_mlfunnel.sources.spec import SourceSpec
        readers = ("prometheus", "sql", "http_metrics", "mlflow_reader")
        loaded = lambda: [m for m in readers if "pytest_mlfunnel.sources." + m in sys.modules]
        assert loaded() == [], loaded()
        found = load_metrics(SourceSpec(path="eval.json"), Path({str(tmp_path)!r}))
        assert found.values == {{"accuracy": 0.9}}, found.values
        assert loaded() == [], loaded()
        (Path({str(tmp_path)!r}) / "m.prom").write_text("up 1\\n")
        load_metrics(SourceSpec(path="m.prom"), Path({str(tmp_path)!r}))
        assert loaded() == ["prometheus"], loaded()
        print("ok")
        """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert done.stdout.strip() == "ok", done.stderr


def test_a_taken_key_is_refused_with_the_origin_named() -> None:
    table: LazyTable[str] = LazyTable("widget", {"a": "os.path:sep"}, str)
    with pytest.raises(ValueError, match=r"^widget 'a' from my plugin is already registered$"):
        table.add("a", "x", "my plugin")
    table.add("b", "x", "my plugin")
    with pytest.raises(ValueError, match=r"^widget 'b' from another is already registered$"):
        table.add("b", "y", "another")


def test_forgetting_the_additions_keeps_the_builtins() -> None:
    table: LazyTable[str] = LazyTable("widget", {"sep": "os:sep"}, str)
    table.add("mine", "x", "a plugin")
    assert table.keys == ["mine", "sep"]
    assert table.get("sep") in ("/", "\\")
    table.forget_added()
    assert table.keys == ["sep"]
    assert table.find("mine") is None
    assert table.get("sep") in ("/", "\\")  # a loaded built-in stays loaded
    table.add("mine", "y", "the next run")
    assert table.get("mine") == "y"


def test_a_kind_whose_key_a_builtin_has_is_refused() -> None:
    from pytest_mlfunnel.kinds.files import FilesKind

    registry = KindRegistry()
    with pytest.raises(ValueError, match=r"^check kind 'files' from a conftest\.py is already "
                                         r"registered$"):
        registry.add(FilesKind, "a conftest.py")
