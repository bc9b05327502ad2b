"""The configuration reference cannot drift from the config models."""

from __future__ import annotations

import importlib
import re
import typing
from pathlib import Path

import pytest
from pydantic import BaseModel

from pytest_mlfunnel.config import TOP_LEVEL_KEYS
from pytest_mlfunnel.kinds import BUILTIN_KINDS
from pytest_mlfunnel.sources import spec

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = (ROOT / "docs" / "configuration.md").read_text()


def model_keys(model: type[BaseModel], seen: set[type] | None = None) -> set[str]:
    seen = seen if seen is not None else set()
    if model in seen:
        return set()
    seen.add(model)
    keys: set[str] = set()
    for name, field in model.model_fields.items():
        keys.add(field.alias or name)
        for inner in nested_models(field.annotation):
            keys |= model_keys(inner, seen)
    return keys


def nested_models(annotation: object) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found: list[type[BaseModel]] = []
    for arg in typing.get_args(annotation):
        found += nested_models(arg)
    return found


def documented(key: str) -> bool:
    return re.search(rf"`{re.escape(key)}`", REFERENCE) is not None


@pytest.mark.parametrize("kind", sorted(BUILTIN_KINDS))
def test_every_key_of_every_kind_is_in_the_reference(kind: str) -> None:
    module_name, _, class_name = BUILTIN_KINDS[kind].partition(":")
    kind_class = getattr(importlib.import_module(module_name), class_name)
    missing = sorted(k for k in model_keys(kind_class.config_model) if not documented(k))
    assert not missing, f"docs/configuration.md does not document {kind} keys: {missing}"
    assert f"## `{kind}`" in REFERENCE


def test_top_level_and_source_keys_are_in_the_reference() -> None:
    keys = set(TOP_LEVEL_KEYS) | set(spec.SOURCE_KEYS) | set(spec._OPTIONAL_KEYS)
    assert not sorted(k for k in keys if not documented(k))


def test_the_readme_names_the_two_commands() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "pytest --funnel" in readme
    assert "python -m pytest" in readme
