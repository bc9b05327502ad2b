"""The configuration reference cannot drift from the config models."""

from __future__ import annotations

import importlib
import re
import shlex
import typing
from pathlib import Path

import pytest
from pydantic import BaseModel

from pytest_mlfunnel.config import TOP_LEVEL_KEYS
from pytest_mlfunnel.kinds import BUILTIN_KINDS
from pytest_mlfunnel.kinds.base import CheckConfig
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


def documented(key: str, text: str = REFERENCE) -> bool:
    return re.search(rf"`{re.escape(key)}`", text) is not None


def section(heading: str, text: str = REFERENCE) -> str:
    """The reference from ``heading`` to the next heading of the same level (or the end)."""
    start = text.index(f"\n{heading}\n")
    level = heading.split(" ", 1)[0]
    following = text.find(f"\n{level} ", start + len(heading) + 2)
    return text[start:following if following != -1 else len(text)]


@pytest.mark.parametrize("kind", sorted(BUILTIN_KINDS))
def test_every_key_of_every_kind_is_in_the_reference(kind: str) -> None:
    assert f"\n## `{kind}`\n" in REFERENCE
    module_name, _, class_name = BUILTIN_KINDS[kind].partition(":")
    kind_class = getattr(importlib.import_module(module_name), class_name)
    own = section(f"## `{kind}`")
    keys = model_keys(kind_class.config_model) - model_keys(CheckConfig)
    missing = sorted(k for k in keys if not documented(k, own))
    assert not missing, f"docs/configuration.md's {kind} section does not document {missing}"


def test_the_keys_every_check_accepts_are_in_their_section() -> None:
    common = section("## Keys every check accepts")
    assert not sorted(k for k in model_keys(CheckConfig) if not documented(k, common))


def test_a_key_counts_as_documented_only_in_its_kind_s_section() -> None:
    page = "# Reference\n\n## `a`\n\n| `rows` | ... |\n\n## `b`\n\n| `bins` | ... |\n"
    assert documented("rows", section("## `a`", page))
    assert not documented("rows", section("## `b`", page))
    assert documented("bins", section("## `b`", page))


def test_top_level_and_source_keys_are_in_the_reference() -> None:
    keys = set(TOP_LEVEL_KEYS) | set(spec.SOURCE_KEYS) | set(spec._OPTIONAL_KEYS)
    assert not sorted(k for k in keys if not documented(k))


def readme_commands() -> list[list[list[str]]]:
    """The README's ``bash`` blocks, each a list of ``&&``-separated steps as tokens."""
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)```", readme, re.S)
    return [[shlex.split(step) for step in block.strip().split(" && ")] for block in blocks]


def words(step: list[str]) -> set[str]:
    """A step's tokens without those that only change how it is run (quiet, via python -m)."""
    return set(step) - {"python", "python3", "-m", "-q"}


def test_the_readme_s_test_command_is_what_ci_runs() -> None:
    setup, tests = readme_commands()
    script = (ROOT / ".ci" / "run").read_text().replace("\\\n", " ")  # continued lines
    ci = [shlex.split(line) for line in script.splitlines()
          if line.strip() and not line.lstrip().startswith("#")]
    for step in tests:
        assert any(words(step) <= words(line) for line in ci), f"not in .ci/run: {step}"
    assert "pytest" in tests[-1]
    assert setup[-1] == ["pytest", "--funnel"]


def test_the_readme_s_example_command_names_files_that_exist() -> None:
    setup, _ = readme_commands()
    folder = ROOT
    for step in setup:
        if step[0] == "cd":
            folder = folder / step[1]
            assert folder.is_dir(), folder
        for token in step:
            if token.endswith(".py") or token == "tests":
                assert (folder / token).exists(), f"README: {folder / token} does not exist"


def toml_snippets() -> list[tuple[str, str]]:
    """Every ``toml`` block of the README and docs/ as (``file:line``, text)."""
    snippets: list[tuple[str, str]] = []
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]:
        text = page.read_text()
        for match in re.finditer(r"```toml\n(.*?)```", text, re.S):
            where = f"{page.relative_to(ROOT)}:{text.count(chr(10), 0, match.start()) + 1}"
            snippets.append((where, match.group(1)))
    return snippets


@pytest.mark.parametrize(("where", "snippet"), toml_snippets(),
                         ids=[where for where, _ in toml_snippets()])
def test_every_toml_snippet_in_the_docs_is_a_valid_config(
        where: str, snippet: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pytest_mlfunnel.config import ConfigError, load_config
    from pytest_mlfunnel.kinds import KindRegistry

    for name in re.findall(r"\$\{([A-Z_][A-Z0-9_]*)", snippet):
        monkeypatch.setenv(name, "sqlite:///ops.db" if "DB" in name or "WAREHOUSE" in name
                           else "http://127.0.0.1:9" if name.endswith("URL") else "secret")
    (tmp_path / "pyproject.toml").write_text(snippet)
    try:
        load_config(tmp_path / "pyproject.toml", tmp_path, KindRegistry())
    except ConfigError as exc:
        problems = exc.lines()
        if where.startswith("docs/extending.md"):  # the kinds that page registers itself
            problems = [line for line in problems if "no check kind" not in line]
        assert not problems, f"{where}: " + "\n".join(problems)
