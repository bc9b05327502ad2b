"""Per-row DeLong placements of several paired scores, summed per combination of labels.

``Table.placement_sums(labels, scores, by, where)`` serves comparisons whose variance needs the
placements of one row under several rankings at once (the mean of one-vs-rest AUCs: a row is a
positive of its own class and a negative of every other). For each k, ``labels[k]`` is 1 or 0
per row and ``scores[k]`` is a pair of scores (the model's, the baseline's) ranked against it.
The placement of a row under score j = (k, m) counts the rows of the other label scored lower,
ties one half:

    label_k = 1: u = negatives of k below + half the tied ones
    label_k = 0: u = positives of k below + half the tied ones

(DeLong's structural components times the size of the other class:
V10 = u / negatives, V01 = 1 - u / positives). Rows are grouped by ``by`` (once, under the key
None, when it is None) and by the tuple of their labels; each group answers its rows, the sum
of every u and the sums of the products d_k * d_l (k <= l) of the paired differences
d_k = u_(k, model) - u_(k, baseline). No row leaves the engine.

SQL engines read, as ``score_ranks`` does, a rank and running counts over one sort of the rows
per score (``rank()``, rows and positives at or below the score, positives tied with it);
2u = (le - pl) + (rs - 1 - pl + pq) for a positive and 2 pl - pq for a negative, all in one
query. The frame engines group by (group, score), run sums in score order and join back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pytest_mlfunnel.engines.dialects import plain
from pytest_mlfunnel.engines.expr import Expr, SqlRendering, narwhals_expr, narwhals_rows


@dataclass
class PlacementSums:
    """One group's rows of one combination of labels."""

    rows: int = 0
    #: per score (k, m) at index 2k + m: the sum of the rows' placements u
    placed: list[float] = field(default_factory=list)
    #: (k, l), k <= l: the sum of d_k * d_l, d = u_model - u_baseline
    crossed: dict[tuple[int, int], float] = field(default_factory=dict)


Placements = dict[Any, dict[tuple[int, ...], PlacementSums]]


def _pairs(count: int) -> list[tuple[int, int]]:
    return [(k, m) for k in range(count) for m in range(k, count)]


def sql_placement_sums(engine: Any, labels: list[Expr], scores: list[tuple[Expr, Expr]],
                       by: Expr | None, where: Expr | None) -> Placements:
    rendering = SqlRendering(engine)
    double = rendering.double
    count = len(labels)
    flat = [s for pair in scores for s in pair]
    conditions = [f"{rendering.render(e)} IS NOT NULL" for e in [*labels, *flat]]
    if by is not None:
        conditions.append(f"{rendering.render(by)} IS NOT NULL")
    if where is not None:
        conditions.append(f"{rendering.render(where)} = 1")
    keys = ["g"] if by is not None else []
    ys = [f"y{k}" for k in range(count)]
    inner = [f"{rendering.render(by)} AS g"] if by is not None else []
    inner += [f"{rendering.render(e)} AS y{k}" for k, e in enumerate(labels)]
    inner += [f"{rendering.render(e)} AS s{j}" for j, e in enumerate(flat)]
    partition = "PARTITION BY g " if keys else ""
    ties = "RANGE BETWEEN CURRENT ROW AND CURRENT ROW"
    windows: list[str] = []
    placed: list[str] = []
    for j in range(len(flat)):
        order = f"{partition}ORDER BY s{j}"
        y = f"y{j // 2}"
        windows += [f"rank() OVER ({order}) AS rs{j}", f"count(*) OVER ({order}) AS le{j}",
                    f"sum({y}) OVER ({order}) AS pl{j}", f"sum({y}) OVER ({order} {ties}) AS pq{j}"]
        # twice the placement: an integer
        placed.append(f"CASE WHEN {y} = 1 THEN le{j} - pl{j} + rs{j} - 1 - pl{j} + pq{j} "
                      f"ELSE 2 * pl{j} - pq{j} END AS u{j}")
    differences = [f"u{2 * k} - u{2 * k + 1} AS d{k}" for k in range(count)]
    sums = ["count(*)", *(f"sum(u{j})" for j in range(len(flat)))]
    sums += [f"sum(CAST(d{k} AS {double}) * d{m})" for k, m in _pairs(count)]
    group = ", ".join([*keys, *ys])
    sql = (f"SELECT {group}, {', '.join(sums)} FROM (SELECT {group}, "
           f"{', '.join([f'u{j}' for j in range(len(flat))] + differences)} FROM "
           f"(SELECT {group}, {', '.join(placed)} FROM (SELECT {group}, "
           f"{', '.join(f's{j}' for j in range(len(flat)))}, {', '.join(windows)} FROM "
           f"(SELECT {', '.join(inner)} FROM {engine._from()} WHERE {' AND '.join(conditions)})"
           f" AS r) AS w) AS p) AS d GROUP BY {group}")
    found: Placements = {}
    width = len(keys) + count
    for row in engine.run_seeing_nan(sql, "placements"):
        values = [plain(v) for v in row]
        key = values[0] if keys else None
        pattern = tuple(int(v) for v in values[len(keys):width])
        rest = [0.0 if v is None else float(v) for v in values[width:]]
        sums_u = [v / 2 for v in rest[1:1 + len(flat)]]
        crossed = {pair: v / 4 for pair, v in zip(_pairs(count), rest[1 + len(flat):],
                                                   strict=True)}
        found.setdefault(key, {})[pattern] = PlacementSums(int(rest[0]), sums_u, crossed)
    return found


def narwhals_placement_sums(engine: Any, labels: list[Expr], scores: list[tuple[Expr, Expr]],
                            by: Expr | None, where: Expr | None) -> Placements:
    import narwhals.stable.v2 as nw

    count = len(labels)
    flat = [s for pair in scores for s in pair]
    key = narwhals_expr(engine, by) if by is not None else nw.lit(0)
    columns = [key.alias("g")]
    columns += [narwhals_expr(engine, e).alias(f"y{k}") for k, e in enumerate(labels)]
    columns += [narwhals_expr(engine, e).cast(nw.Float64).alias(f"s{j}")
                for j, e in enumerate(flat)]
    rows = narwhals_rows(engine, columns, where)
    for j in range(len(flat)):
        y = nw.col(f"y{j // 2}")
        groups = rows.group_by("g", f"s{j}").agg(y.sum().alias("p"), (1 - y).sum().alias("n"))
        p, n = nw.col("p").cast(nw.Float64), nw.col("n").cast(nw.Float64)
        ranked = groups.select(
            "g", f"s{j}",
            (n.cum_sum().over("g", order_by=f"s{j}") - n / 2.0).alias(f"lo{j}"),
            (p.cum_sum().over("g", order_by=f"s{j}") - p / 2.0).alias(f"pb{j}"))
        rows = rows.join(ranked, on=["g", f"s{j}"]).with_columns(
            nw.when(y == 1).then(nw.col(f"lo{j}")).otherwise(nw.col(f"pb{j}")).alias(f"u{j}")
        ).drop(f"lo{j}", f"pb{j}")
    rows = rows.with_columns(*[(nw.col(f"u{2 * k}") - nw.col(f"u{2 * k + 1}")).alias(f"d{k}")
                               for k in range(count)])
    aggs = [nw.len().alias("rows")]
    aggs += [nw.col(f"u{j}").sum().alias(f"su{j}") for j in range(len(flat))]
    aggs += [(nw.col(f"d{k}") * nw.col(f"d{m}")).sum().alias(f"dd{k}_{m}")
             for k, m in _pairs(count)]
    found: Placements = {}
    for row in engine._collect(rows.group_by("g", *[f"y{k}" for k in range(count)]).agg(*aggs),
                               "placements"):
        group = None if by is None else row[0]
        pattern = tuple(int(v) for v in row[1:1 + count])
        rest = [0.0 if v is None else float(v) for v in row[1 + count:]]
        found.setdefault(group, {})[pattern] = PlacementSums(
            int(rest[0]), rest[1:1 + len(flat)],
            dict(zip(_pairs(count), rest[1 + len(flat):], strict=True)))
    return found
