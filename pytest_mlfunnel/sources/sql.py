"""Metrics from a database: ``{ url, query }``, the first row's columns become metric names.

    usage = { url = "sqlite:///ops/usage.db", query = "select count(*) as requests from calls" }

The query runs in the database (SQLite through the standard library, everything else through
SQLAlchemy, the ``sql`` extra); only the first row comes back.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

from pytest_mlfunnel.outcome import CriterionError
from pytest_mlfunnel.sources.database import run_query
from pytest_mlfunnel.sources.metrics import MetricSet
from pytest_mlfunnel.sources.spec import SourceSpec


def read_sql_metrics(spec: SourceSpec, rootdir: Path) -> MetricSet:
    where = spec.display()
    if not spec.query:
        hint = f" (it names table {spec.table!r}: that is a tabular source)" if spec.table else ""
        raise CriterionError(f"{where}: a metrics source from a database needs a query whose "
                             f"first row holds the numbers{hint}, e.g. query = \"select "
                             "count(*) as requests from calls\"")
    # the first row is the metrics: a query of millions of rows is not fetched whole
    columns, rows = run_query(spec, spec.query, rootdir, max_rows=1)
    if not columns:
        raise CriterionError(f"{where}: the query returned no columns (is it a SELECT?)")
    if not rows:
        raise CriterionError(f"{where}: the query returned no rows; metrics come from the "
                             f"first row's columns ({', '.join(columns)})")
    values: dict[str, Any] = {}
    for column, value in zip(columns, rows[0], strict=False):
        if column in values:
            raise CriterionError(f"{where}: two columns are named {column!r}; give each an "
                                 "alias (select count(*) as requests ...)")
        values[column] = metric_value(value)
    return MetricSet(values, where)


def metric_value(value: Any) -> Any:
    """Database numbers as Python numbers (Decimal from ``sum()``, booleans).

    Anything else is kept as it is: the ``metrics`` kind turns a NULL or a text value into an
    error criterion for that one metric, naming the column, and the others still count.
    """
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dt.date | dt.datetime | dt.time):
        return value.isoformat()
    if isinstance(value, bytes | memoryview):
        return f"<{len(value)} bytes>"
    return value
