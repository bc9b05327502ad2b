"""The check-kind registry: kind key -> CheckKind, a lazy table (``registry.LazyTable``):
built-ins load on first use, plugins add theirs through ``pytest_mlfunnel_check_kinds``."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pytest_mlfunnel.kinds.base import CheckKind
from pytest_mlfunnel.registry import LazyTable

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


def _instance(found: object) -> CheckKind[Any]:
    kind = found() if isinstance(found, type) else found
    assert isinstance(kind, CheckKind), found
    return kind


class KindRegistry:
    """Maps kind keys to kinds; third-party kinds join through the same door (the
    ``pytest_mlfunnel_check_kinds`` hook) and the same lazy table as the built-ins."""

    def __init__(self) -> None:
        self._table: LazyTable[CheckKind[Any]] = LazyTable("check kind", BUILTIN_KINDS,
                                                           _instance)

    def add(self, kind: type[CheckKind[Any]] | CheckKind[Any], origin: str = "a plugin") -> None:
        try:
            instance = kind() if isinstance(kind, type) else kind
        except Exception as exc:
            raise ValueError(f"check kind {kind!r} from {origin} cannot be made without "
                             f"arguments: {type(exc).__name__}: {exc}") from None
        if not isinstance(instance, CheckKind):
            raise ValueError(f"check kind {kind!r} from {origin} is not a CheckKind "
                             "(from pytest_mlfunnel.api)")
        key = getattr(instance, "key", None)
        if not isinstance(key, str) or not key:
            raise ValueError(f"check kind {kind!r} from {origin} has no 'key'")
        if not hasattr(instance, "config_model"):
            raise ValueError(f"check kind {key!r} from {origin} has no 'config_model'")
        self._table.add(key, instance, origin)

    def extend(self, kinds: Iterable[type[CheckKind[Any]] | CheckKind[Any]], origin: str) -> None:
        if isinstance(kinds, str | bytes | dict) or not isinstance(kinds, Iterable):
            raise ValueError(f"{origin} returned {kinds!r}: return a list of CheckKind "
                             "classes")
        for kind in kinds:
            self.add(kind, origin)

    @property
    def keys(self) -> list[str]:
        return self._table.keys

    def get(self, key: str) -> CheckKind[Any]:
        return self._table.get(key)
