"""The check-kind registry: kind key -> CheckKind. Built-ins load on first use."""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from typing import Any

from pytest_mlfunnel.kinds.base import CheckKind

#: One line per built-in kind: the key only that kind has -> "module:Class".
BUILTIN_KINDS: dict[str, str] = {
    "dataset": "pytest_mlfunnel.kinds.dataset:DatasetKind",
    "document": "pytest_mlfunnel.kinds.document:DocumentKind",
    "files": "pytest_mlfunnel.kinds.files:FilesKind",
    "owners": "pytest_mlfunnel.kinds.owners:OwnersKind",
    "metrics": "pytest_mlfunnel.kinds.metrics:MetricsKind",
    "coverage": "pytest_mlfunnel.kinds.coverage:CoverageKind",
    "timing": "pytest_mlfunnel.kinds.timing:TimingKind",
    "http": "pytest_mlfunnel.kinds.http:HttpKind",
    "effect": "pytest_mlfunnel.kinds.effect:EffectKind",
    "drift": "pytest_mlfunnel.kinds.drift:DriftKind",
    "predictions": "pytest_mlfunnel.kinds.predictions:PredictionsKind",
}


class KindRegistry:
    """Maps kind keys to kinds; third-party kinds join through the same door."""

    def __init__(self) -> None:
        self._paths: dict[str, str] = dict(BUILTIN_KINDS)
        self._kinds: dict[str, CheckKind[Any]] = {}

    def add(self, kind: type[CheckKind[Any]] | CheckKind[Any], origin: str = "a plugin") -> None:
        instance = kind() if isinstance(kind, type) else kind
        key = getattr(instance, "key", None)
        if not isinstance(key, str) or not key:
            raise ValueError(f"check kind {kind!r} from {origin} has no 'key'")
        if not hasattr(instance, "config_model"):
            raise ValueError(f"check kind {key!r} from {origin} has no 'config_model'")
        if key in self._paths or key in self._kinds:
            raise ValueError(f"check kind {key!r} from {origin} is already registered")
        self._kinds[key] = instance

    def extend(self, kinds: Iterable[type[CheckKind[Any]] | CheckKind[Any]], origin: str) -> None:
        for kind in kinds:
            self.add(kind, origin)

    @property
    def keys(self) -> list[str]:
        return sorted(set(self._paths) | set(self._kinds))

    def get(self, key: str) -> CheckKind[Any]:
        if key not in self._kinds:
            module_name, _, class_name = self._paths[key].partition(":")
            cls = getattr(importlib.import_module(module_name), class_name)
            self._kinds[key] = cls()
        return self._kinds[key]
