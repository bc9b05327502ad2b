"""Mistakes that can only be seen once pytest knows its fixtures and tests.

A misspelled fixture name in the config, or an unknown gate in ``@pytest.mark.funnel``, is a
usage error (exit 4) found at collection -- not a failure of the criterion or test it names.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pytest
from pydantic import BaseModel

from pytest_mlfunnel.config import CheckEntry
from pytest_mlfunnel.sources.spec import SourceSpec
from pytest_mlfunnel.suggest import did_you_mean


def fixture_key_path(entry: CheckEntry, name: str) -> str:
    """Where in the config the fixture ``name`` of this check is written."""
    for key, value in entry.config:
        found = _fixture_in(value, f"{entry.key_path}.{key}", name, key == entry.kind)
        if found:
            return found
    return entry.key_path


def _fixture_in(value: Any, here: str, name: str, kind_key: bool) -> str | None:
    if isinstance(value, SourceSpec):
        if value.fixture != name:
            return None
        return f"{value.key_path}.fixture" if value.name else f"{here}.fixture"
    if isinstance(value, str):
        return here if kind_key and value == name else None
    if isinstance(value, BaseModel):
        pairs: Iterable[tuple[str, Any]] = iter(value)
    elif isinstance(value, dict):
        pairs = value.items()
    else:
        return None
    for key, inner in pairs:
        found = _fixture_in(inner, f"{here}.{key}", name, False)
        if found:
            return found
    return None


def visible_fixtures(session: pytest.Session, node: pytest.Item | pytest.Session) -> list[str]:
    """Every fixture name ``node`` can ask for (for did-you-mean)."""
    manager = getattr(session, "_fixturemanager", None)
    if manager is None:
        return []
    names: set[str] = set()
    for store in ("_arg2fixturedefs", "_arg2node2fixturedefs", "_arg2nodeid2fixturedefs"):
        names.update(getattr(manager, store, None) or ())
    return sorted(n for n in names if manager.getfixturedefs(n, node))


def fixture_problem(session: pytest.Session, node: pytest.Item | pytest.Session,
                    name: str) -> str | None:
    """What keeps a criterion from reading fixture ``name``: none by that name, or one with
    ``params`` (a criterion reads one frame; pytest would fail its setup with "The
    requested fixture has no parameter defined")."""
    manager = getattr(session, "_fixturemanager", None)
    if manager is None:  # pragma: no cover - pytest always has one during collection
        return None
    definitions = manager.getfixturedefs(name, node)
    if not definitions:
        return f"no fixture {name!r}{did_you_mean(name, visible_fixtures(session, node))}"
    found = _parametrized(manager, node, name, definitions[-1], {name})
    if found is None:
        return None
    which, count = found
    where = (f"fixture {name!r} is parametrized" if which == name
             else f"fixture {name!r} depends on the parametrized fixture {which!r}")
    return (f"{where} ({count} values): a criterion reads one frame, so give it a fixture "
            "without params (one per value if each needs checking)")


def _parametrized(manager: Any, node: pytest.Item | pytest.Session, name: str,
                  definition: Any, seen: set[str]) -> tuple[str, int] | None:
    """The first fixture with params among ``name`` (defined by ``definition``) and the
    fixtures it asks for."""
    params = getattr(definition, "params", None)
    if params is not None:
        return name, len(params)
    for argname in getattr(definition, "argnames", ()):
        if argname in seen or argname == "request":
            continue
        seen.add(argname)
        definitions = manager.getfixturedefs(argname, node)
        found = (_parametrized(manager, node, argname, definitions[-1], seen)
                 if definitions else None)
        if found is not None:
            return found
    return None


def unknown_fixture_lines(file_label: str, session: pytest.Session,
                          wanted: Iterable[tuple[CheckEntry, str, pytest.Item | pytest.Session]]
                          ) -> list[str]:
    """``pyproject.toml: <key path>: no fixture 'x'; did you mean 'y'?`` per unknown name
    (and per parametrized one)."""
    lines: list[str] = []
    for entry, name, node in wanted:
        problem = fixture_problem(session, node, name)
        if problem is None:
            continue
        line = f"{file_label}: {fixture_key_path(entry, name)}: {problem}"
        if line not in lines:
            lines.append(line)
    return lines
