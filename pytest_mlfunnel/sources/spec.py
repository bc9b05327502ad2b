"""Where evidence comes from: a file, a fixture, a database, a Spark table, an HTTP endpoint.

A ``SourceSpec`` is only a description; readers live in sibling modules (``metrics`` for
named numbers, ``tabular`` for tables) so a check never knows which engine answers.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pytest_mlfunnel import secrets
from pytest_mlfunnel.outcome import CriterionError
from pytest_mlfunnel.sources.mlflow_spec import MlflowSelector, MlflowSpecError, parse_mlflow
from pytest_mlfunnel.suggest import did_you_mean

SOURCE_KEYS = ("path", "fixture", "url", "spark")
#: the fixture a ``spark`` source takes its SparkSession from (the plugin's default gives the
#: active session; a conftest.py fixture of this name overrides it)
SPARK_SESSION_FIXTURE = "mlfunnel_spark_session"
_OPTIONAL_KEYS = ("query", "table", "format", "options", "description")
_EXTENSION_RE = re.compile(r"\.[A-Za-z0-9]{1,8}(\.gz)?$")


@dataclass(frozen=True)
class SourceSpec:
    """One source of evidence. Exactly one of ``path``, ``fixture``, ``url``, ``spark``,
    ``mlflow`` is set."""

    name: str | None = None  # the declared name in [tool.mlfunnel.sources], None when inline
    path: str | None = None
    fixture: str | None = None
    url: str | None = None
    query: str | None = None
    table: str | None = None
    format: str | None = None  # overrides the format guessed from the extension
    options: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    key_path: str = ""  # where it was declared, for messages
    mlflow: MlflowSelector | None = None  # a run in an MLflow tracking store
    spark: str | None = None  # a table or view in the SparkSession's catalog

    def timeout_option(self, what: str, example: str) -> Any:
        """The source's ``options.timeout`` (None when not given), for a source whose one
        option it is: any other key is an error naming it, since a typo (or ``headers`` on a
        metrics URL) would otherwise be ignored in silence."""
        for key in self.options:
            if key != "timeout":
                raise CriterionError(f"{self.display()}: options.{key}: not an option of a "
                                     f"{what} (its one option is timeout = \"{example}\")"
                                     f"{did_you_mean(key, ['timeout'])}")
        return self.options.get("timeout")

    @property
    def kind(self) -> str:
        if self.fixture is not None:
            return "fixture"
        if self.mlflow is not None:
            return "mlflow"
        if self.spark is not None:
            return "spark"
        if self.url is not None:
            return "url"
        return "path"

    @property
    def fixtures(self) -> tuple[str, ...]:
        if self.spark is not None:
            return (SPARK_SESSION_FIXTURE,)
        return (self.fixture,) if self.fixture else ()

    @property
    def url_scheme(self) -> str:
        return urlsplit(self.url).scheme.lower() if self.url else ""

    def resolve_path(self, rootdir: Path) -> Path:
        assert self.path is not None
        path = Path(self.path).expanduser()
        return path if path.is_absolute() else rootdir / path

    @property
    def suffix(self) -> str:
        """Lower-case format: ``csv``, ``parquet``, ``json``, ``csv.gz`` ... (``format`` wins)."""
        if self.format:
            return self.format.lower().lstrip(".")
        target = self.path or (urlsplit(self.url).path if self.url else "") or ""
        match = _EXTENSION_RE.search(target)
        return match.group(0).lower().lstrip(".") if match else ""

    def display(self) -> str:
        """How the source is named in every output: secrets masked."""
        if self.fixture is not None:
            where = f"fixture {self.fixture!r}"
        elif self.mlflow is not None:
            where = f"mlflow {secrets.mask_url(self.mlflow.uri)} {self.mlflow.describe()}"
        elif self.spark is not None:
            where = f"spark {self.spark}"
        elif self.url is not None:
            where = secrets.mask_url(self.url)
            if self.table:
                where += f" table {self.table}"
        else:
            where = str(self.path)
        return f"{self.name} ({where})" if self.name and self.name != where else where

    def cache_key(self) -> tuple[Any, ...]:
        """What the source reads: two specs with equal keys read the same thing (reader
        options included: the same file read with other options is another table)."""
        return (self.path, self.fixture, self.url, self.query, self.table, self.format,
                self.mlflow, self.spark, self.options_key())

    def options_key(self) -> str:
        """The reader options as one comparable text ("" without any)."""
        return json.dumps(self.options, sort_keys=True, default=repr) if self.options else ""


class SourceError(ValueError):
    """A source value that cannot be understood; the message names the problem, ``key`` the
    key inside the source table it is about (``run.order_by``), when there is one."""

    def __init__(self, message: str, key: str = "") -> None:
        super().__init__(f"{key}: {message}" if key else message)
        self.message = message
        self.key = key


def looks_like_path(text: str) -> bool:
    return "/" in text or "\\" in text or bool(_EXTENSION_RE.search(text)) or "*" in text


def parse_source(value: Any, declared: dict[str, SourceSpec], key_path: str = "") -> SourceSpec:
    """Turn a config value into a SourceSpec.

    A string is a declared source name, a URL (``scheme://``) or a path (has a ``/`` or a file
    extension). A bare word that is none of these is a typo, not a file.
    """
    if isinstance(value, SourceSpec):
        return value
    if isinstance(value, str):
        text = value.strip()
        if not text:
            raise SourceError("empty source")
        if text in declared:
            return declared[text]
        if "://" in text:
            return SourceSpec(url=text, key_path=key_path)
        if looks_like_path(text):
            return SourceSpec(path=text, key_path=key_path)
        names = ", ".join(sorted(declared)) or "none declared"
        raise SourceError(
            f"unknown source {text!r}: not a declared source and not a path "
            f"(declared sources: {names}){did_you_mean(text, declared)}"
        )
    if isinstance(value, dict):
        return source_from_table(value, key_path)
    raise SourceError(
        f"expected a source name, a path, a URL or a table such as {{ path = ... }}, "
        f"got {type(value).__name__}"
    )


def source_from_table(table: dict[str, Any], key_path: str = "", name: str | None = None
                      ) -> SourceSpec:
    if "mlflow" in table:
        try:
            return SourceSpec(name=name, mlflow=parse_mlflow(table), key_path=key_path)
        except MlflowSpecError as exc:
            raise SourceError(str(exc), exc.key) from None
    unknown = sorted(set(table) - set(SOURCE_KEYS) - set(_OPTIONAL_KEYS))
    if unknown:
        allowed = ", ".join(SOURCE_KEYS + _OPTIONAL_KEYS)
        hint = did_you_mean(unknown[0], SOURCE_KEYS + _OPTIONAL_KEYS)
        raise SourceError(f"unknown key {unknown[0]!r} in source (allowed: {allowed}){hint}")
    given = [k for k in SOURCE_KEYS if k in table]
    if len(given) != 1:
        raise SourceError(
            "a source needs exactly one of path, fixture, url, spark"
            + (f" (got {', '.join(given)})" if given else "")
        )
    for key, value in table.items():
        if key == "options":
            if not isinstance(value, dict):
                raise SourceError("options must be a table")
        elif not isinstance(value, str) or not value.strip():
            raise SourceError(f"{key} must be a non-empty string")
    if "spark" in table and set(table) - {"spark", "description"}:
        extra = sorted(set(table) - {"spark", "description"})[0]
        raise SourceError(f"{extra} does not go with spark (a table of the SparkSession's "
                          "catalog: { spark = \"catalog.schema.table\" })")
    if ("query" in table or "table" in table) and "url" not in table:
        raise SourceError("query and table go with url (a database)")
    if "query" in table and "table" in table:
        raise SourceError("give either query or table, not both")
    spec = SourceSpec(
        name=name,
        path=table.get("path"),
        fixture=table.get("fixture"),
        url=table.get("url"),
        query=table.get("query"),
        table=table.get("table"),
        spark=table.get("spark"),
        format=table.get("format"),
        options=dict(table.get("options", {})),
        key_path=key_path,
    )
    return spec


def declare_sources(raw: dict[str, Any], key_path: str) -> tuple[dict[str, SourceSpec],
                                                                 list[tuple[str, str]]]:
    """Parse ``[tool.mlfunnel.sources]``; returns the sources and (key_path, message) errors."""
    sources: dict[str, SourceSpec] = {}
    errors: list[tuple[str, str]] = []
    for name, value in raw.items():
        here = f"{key_path}.{name}"
        try:
            if isinstance(value, str):
                spec = parse_source(value, {}, here) if (
                    "://" in value or looks_like_path(value)) else SourceSpec(path=value)
                sources[name] = replace(spec, name=name, key_path=here)
            elif isinstance(value, dict):
                sources[name] = source_from_table(value, here, name=name)
            else:
                raise SourceError(
                    f"expected a path, a URL or a table such as {{ path = ... }}, "
                    f"got {type(value).__name__}"
                )
        except SourceError as exc:
            errors.append((f"{here}.{exc.key}" if exc.key else here, exc.message))
    return sources, errors
