"""One way to register a named piece: a lazy table.

Check kinds and metrics readers both live in one. The built-ins are a literal table of
``key -> "module:attribute"``, imported on first use, so a run imports only what its config
names and nothing registers itself by being imported. Plugins add objects through a hook
(``pytest_mlfunnel_check_kinds``, ``pytest_mlfunnel_metric_readers``); a key that is already
taken is refused with the origin named.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Generic, TypeVar

T = TypeVar("T")


class LazyTable(Generic[T]):
    """``key -> T``: built-ins by import path, loaded on first use; plugins' additions as
    objects, which ``forget_added`` drops (a later run in the same process adds its own)."""

    def __init__(self, what: str, builtin: Mapping[str, str],
                 build: Callable[[object], T]) -> None:
        self.what = what  # "check kind", "metrics reader": how an error names an entry
        self._paths = dict(builtin)
        self._build = build  # the imported attribute -> the entry (a class -> an instance)
        self._loaded: dict[str, T] = {}
        self._added: set[str] = set()

    def add(self, key: str, value: T, origin: str) -> None:
        if key in self:
            raise ValueError(f"{self.what} {key!r} from {origin} is already registered")
        self._loaded[key] = value
        self._added.add(key)

    def forget_added(self) -> None:
        for key in self._added:
            del self._loaded[key]
        self._added.clear()

    def __contains__(self, key: object) -> bool:
        return key in self._paths or key in self._loaded

    @property
    def keys(self) -> list[str]:
        return sorted(set(self._paths) | set(self._loaded))

    def get(self, key: str) -> T:
        """The entry for ``key``, imported the first time (KeyError when there is none)."""
        if key not in self._loaded:
            module_name, _, attribute = self._paths[key].partition(":")
            self._loaded[key] = self._build(
                getattr(importlib.import_module(module_name), attribute))
        return self._loaded[key]

    def find(self, key: str) -> T | None:
        return self.get(key) if key in self else None
