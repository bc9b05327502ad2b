"""What a check kind and a source see of the run: the planning and the evaluation contexts.

Below both ``kinds/`` and ``sources/`` so a source can take a context without importing the
kinds.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


class _Shared:
    shared: dict[Any, Any]
    key_path: str

    def shared_value(self, key: Any, factory: Callable[[], T]) -> T:
        """The value stored under ``key`` for this process, made by ``factory`` the first time
        (any check may ask the same key: share a file read by several checks)."""
        if key not in self.shared:
            self.shared[key] = factory()
        value: T = self.shared[key]
        return value

    def per_check(self, factory: Callable[[], T], part: str = "") -> T:
        """The value this check made with ``factory``, made once per process and shared by
        the check's criteria (``part`` tells apart two values of one check)."""
        return self.shared_value(("per-check", self.key_path, part), factory)


@dataclass
class PlanContext(_Shared):
    """What a kind may use while planning (collection time)."""

    rootdir: Path
    config_path: Path
    gate: str
    check: str
    key_path: str  # e.g. "tool.mlfunnel.data.train"
    shared: dict[Any, Any]  # per-process store shared by all checks of the session


@dataclass
class EvalContext(_Shared):
    """What a criterion receives when its item runs."""

    rootdir: Path
    fixtures: dict[str, Any]  # the values of the fixtures the criterion asked for
    shared: dict[Any, Any]
    now: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.timezone.utc))
    key_path: str = ""  # the check's, e.g. "tool.mlfunnel.data.train"
