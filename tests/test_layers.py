"""Imports run one way: plugin -> session -> items/config -> kinds -> sources -> engines -> core."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import textwrap
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "pytest_mlfunnel"
CORE = ("funnel", "expectations", "stats", "report", "outcome", "history", "context", "atomic")
UPPER = ("kinds", "items", "session", "plugin", "config")


def import_graph(package: Path) -> dict[str, set[str]]:
    """Module -> the package's modules it imports, at any depth (lazy and TYPE_CHECKING
    imports count: they are the same dependency)."""
    root = package.parent
    modules = {".".join(p.relative_to(root).with_suffix("").parts).removesuffix(".__init__"): p
               for p in package.rglob("*.py")}
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for module, path in modules.items():
        here = module if path.name == "__init__.py" else module.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = here.split(".")[: len(here.split(".")) - node.level + 1]
                    base = ".".join([*parts, base] if base else parts)
                names = [base] + [f"{base}.{alias.name}" for alias in node.names]
            else:
                continue
            for name in names:
                while name and name not in modules:
                    name = name.rpartition(".")[0]
                if name and name != module and not name.startswith(module + "."):
                    graph[module].add(name)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module, a package's own modules aside
    (a package ``__init__`` may gather its submodules)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                group.append(w)
                if w == v:
                    break
            head = min(group, key=len)
            if len(group) > 1 and not all(m == head or m.startswith(head + ".") for m in group):
                found.append(sorted(group))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def layer_of(module: str) -> str:
    return module.split(".")[1] if "." in module else module


def test_there_is_no_import_cycle_inside_the_package() -> None:
    assert cycles(import_graph(PACKAGE)) == []


def test_the_cycle_check_finds_a_cycle(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("from pkg.sub import a\n")
    (package / "sub" / "a.py").write_text("from pkg import b\n")
    (package / "b.py").write_text("from .sub.a import x\n")
    (package / "c.py").write_text("from pkg import b\n")
    assert cycles(import_graph(package)) == [["pkg.b", "pkg.sub.a"]]


def test_sources_engines_and_the_core_never_import_upward() -> None:
    graph = import_graph(PACKAGE)
    lower = [m for m in graph if layer_of(m) in ("sources", "engines", *CORE)]
    upward = sorted(f"{m} -> {t}" for m in lower for t in graph[m] if layer_of(t) in UPPER)
    assert len(lower) > 15
    assert upward == []


def test_the_core_never_imports_a_source() -> None:
    graph = import_graph(PACKAGE)
    core = [m for m in graph if layer_of(m) in CORE]
    assert sorted(f"{m} -> {t}" for m in core for t in graph[m]
                  if layer_of(t) == "sources") == []


def test_the_engines_import_no_source_and_nothing_above() -> None:
    graph = import_graph(PACKAGE)
    engines = [m for m in graph if layer_of(m) == "engines"]
    assert len(engines) >= 7  # the package and protocol, expr, dialects, sql, frames, connections
    assert sorted(f"{m} -> {t}" for m in engines for t in graph[m]
                  if layer_of(t) in ("sources", "api", *UPPER)) == []


def test_the_core_never_imports_an_engine() -> None:
    graph = import_graph(PACKAGE)
    core = [m for m in graph if layer_of(m) in CORE]
    assert sorted(f"{m} -> {t}" for m in core for t in graph[m]
                  if layer_of(t) == "engines") == []


def test_the_layer_check_sees_an_engine_importing_a_source(tmp_path: Path) -> None:
    package = tmp_path / "pytest_mlfunnel"
    (package / "engines").mkdir(parents=True)
    (package / "sources").mkdir()
    for init in (package, package / "engines", package / "sources"):
        (init / "__init__.py").write_text("")
    (package / "sources" / "spec.py").write_text("X = 1\n")
    (package / "engines" / "sql.py").write_text("def f():\n    from ..sources.spec import X\n")
    graph = import_graph(package)
    assert graph["pytest_mlfunnel.engines.sql"] == {"pytest_mlfunnel.sources.spec"}


def test_importing_a_source_loads_no_check_kind() -> None:
    sources = sorted(m for m in import_graph(PACKAGE) if m.startswith("pytest_mlfunnel.sources"))
    script = textwrap.dedent(f"""
        import importlib, json, sys
        loaded = {{}}
        for name in {sources!r}:
            importlib.import_module(name)
            loaded[name] = sorted(m for m in sys.modules
                                  if m.startswith(("pytest_mlfunnel.kinds",
                                                   "pytest_mlfunnel.items",
                                                   "pytest_mlfunnel.session")))
        print(json.dumps(loaded))
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    loaded = json.loads(done.stdout)
    assert set(loaded) == set(sources)
    assert {name: kinds for name, kinds in loaded.items() if kinds} == {}
