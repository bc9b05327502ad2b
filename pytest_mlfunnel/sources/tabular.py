"""Tables as evidence: files (DuckDB), user frames (narwhals), databases (SQL in the database).

A check never touches rows. It asks a ``Table`` for aggregates, all of one pass at once:

    table = open_table(spec, ctx)                 # cached per session, per source
    rows, nulls = table.aggregate([Agg("rows"), Agg("nulls", "age")])
    per_group = table.grouped("period", [Agg("count", "minutes"), Agg("mean", "minutes"),
                                         Agg("var", "minutes")])

Aggregate vocabulary (``Agg.op``; ``column`` and ``arg`` as noted):

| op | column | arg | result |
|---|---|---|---|
| ``rows`` | - | - | int: number of rows |
| ``count`` | col | - | int: non-null values |
| ``nulls`` | col | - | int: null values (NaN counts as null for floats) |
| ``min`` / ``max`` | col | - | smallest / largest non-null value (number, str or datetime) |
| ``sum`` / ``mean`` | col | - | float |
| ``var`` | col | - | float: sample variance (ddof=1), None when n < 2 |
| ``distinct`` | col | - | int: exact number of distinct non-null values |
| ``duplicate_rows`` | - | - | int: rows that repeat an earlier row (all columns) |
| ``quantiles`` | col | list of q in [0, 1] | list[float] (exact, or the engine's documented approximation) |
| ``histogram`` | col | sorted edges e0 < ... < ek | list[int] of k+2 counts: (< e0), [e0, e1), ..., [ek-1, ek), (>= ek); nulls not counted |
| ``value_counts`` | col | int cap (max distinct values kept) | dict[value, int], most frequent first |
| ``not_in`` | col | list of allowed values | int: non-null values outside the list |
| ``offending`` | col | ("not_in", values) / ("below", x) / ("above", x) / ("null", None) | list of up to 5 example values |

``Table.schema()`` maps column -> ``int | float | string | bool | datetime | date | other``.
``Table.sample(columns, limit, seed)`` returns ``dict[column, list]`` of at most ``limit`` rows
(all rows when there are fewer), chosen reproducibly from ``seed``; used only by tests that need
samples (Mann-Whitney, bootstrap) and for capped examples of offending rows.
``Table.join_match(on, other, other_on)`` returns (rows, rows whose key is found in other).
``Table.group_sizes(by, stats)`` returns dict of ``median``/``mean``/``min``/``max`` group size.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from pytest_mlfunnel.kinds.base import EvalContext
from pytest_mlfunnel.sources.spec import SourceSpec


@dataclass(frozen=True)
class Agg:
    op: str
    column: str | None = None
    arg: Any = None

    def key(self) -> tuple[Any, ...]:
        arg = tuple(self.arg) if isinstance(self.arg, list) else self.arg
        return (self.op, self.column, arg)


class Table(Protocol):
    display: str

    def schema(self) -> dict[str, str]: ...

    def aggregate(self, aggs: list[Agg]) -> list[Any]: ...

    def grouped(self, by: str, aggs: list[Agg]) -> dict[Any, list[Any]]: ...

    def sample(self, columns: list[str], limit: int, seed: int = 0) -> dict[str, list[Any]]: ...

    def join_match(self, on: list[str], other: Table, other_on: list[str]) -> tuple[int, int]: ...

    def group_sizes(self, by: list[str], stats: list[str]) -> dict[str, float]: ...


def open_table(spec: SourceSpec, ctx: EvalContext) -> Table:
    """The table behind a source, opened once per session (per xdist worker)."""
    raise NotImplementedError("tabular sources arrive with the data gate")
