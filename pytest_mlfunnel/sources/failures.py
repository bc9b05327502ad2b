"""A source that failed to open fails once per session.

A missing file gave one identical failure per criterion, and a file that takes 11 s to fail
(a 150 MB single-line CSV) was opened again for each. ``open_once`` remembers the failure under
the source's display name, and every later criterion gets the same ``SourceUnavailable``
without the source being tried again::

    table = open_once(ctx.shared, "table", spec.display(), lambda: open_file(spec, ...))

``reader`` keeps apart two readings of one path (a JSON file may be a fine table and a bad
metrics file). ``identity`` is what the source reads (``SourceSpec.cache_key()``): two sources
can be shown alike -- URLs that differ in a masked query value, two queries on one database --
and one's failure is not the other's.

Failures met while planning (collection) are not remembered: a file that a test of the same
run writes may not exist yet then. The items mark the shared store once they run.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any, TypeVar

from pytest_mlfunnel.outcome import CriterionError, SourceUnavailable

T = TypeVar("T")

#: set in the shared store by the first criterion that runs: failures are remembered from then
RUNNING = ("mlfunnel", "criteria running")


def _key(reader: str, source: str, identity: Hashable) -> tuple[str, str, Hashable]:
    return ("source failed", reader, source if identity is None else identity)


def remembered_failure(shared: dict[Any, Any], reader: str, source: str,
                       identity: Hashable = None) -> SourceUnavailable | None:
    found = shared.get(_key(reader, source, identity))
    return found if isinstance(found, SourceUnavailable) else None


def remember_failure(shared: dict[Any, Any], reader: str, source: str,
                     error: CriterionError, identity: Hashable = None) -> SourceUnavailable:
    """The error as a SourceUnavailable, kept for the session once criteria run."""
    failure = SourceUnavailable.from_error(source, error)
    if shared.get(RUNNING):
        shared.setdefault(_key(reader, source, identity), failure)
    return failure


def open_once(shared: dict[Any, Any], reader: str, source: str, opener: Callable[[], T],
              identity: Hashable = None) -> T:
    """``opener()``, unless the source already failed this session: then its failure again."""
    failure = remembered_failure(shared, reader, source, identity)
    if failure is not None:
        raise failure
    try:
        return opener()
    except CriterionError as exc:
        raise remember_failure(shared, reader, source, exc, identity) from None
