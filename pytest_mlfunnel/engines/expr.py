"""Row expressions and the two grouped queries built on them: ``crosstab`` and ``score_ranks``.

A check that needs more than one column at a time (a confusion matrix, a sum of log losses,
the ordering of scores behind an AUC) describes rows with a small expression vocabulary; each
engine renders it in its own language, so nothing but grouped totals leaves the engine.

| ``Expr`` op | args | value |
|---|---|---|
| ``col`` | name | the column (NaN read as null) |
| ``lit`` | number | the number |
| ``+ - * /`` | a, b | arithmetic (``/`` in floating point) |
| ``abs`` / ``ln`` | a | absolute value / natural logarithm |
| ``clip`` | a, low, high | a held within [low, high] (either may be None) |
| ``eq`` | column expr, value | 1 when equal to value, else 0 |
| ``isnull`` | a | 1 when null (or NaN), else 0 |
| ``outside`` | a, low, high | 1 when a < low or a > high, else 0 |
| ``bin`` | a, edges e0 < .. < ek-1 | i of the first edge with a <= e_i, k when above all |
| ``all`` | a, b, ... | 1 when every argument is 1, else 0 |

Null propagates through every op except ``isnull`` and ``all`` (a null argument counts as
"not 1").

``Table.crosstab(keys, values)`` answers ``SELECT keys, count(*), values GROUP BY keys``: a
list of ``(key tuple, rows, [value, ...])`` where each value is ``("sum" | "max" | "median",
expr)`` over the group's non-null values (None when there are none). Null keys form groups of
their own, so a caller can count what it leaves out.

``Table.score_ranks(label, scores, rankings, where)`` answers, for each ``Ranking`` (per value
of its ``by``, or once under the key None), the rank sums behind ROC AUC, its DeLong variance
and average precision, for rows where ``where`` is 1 (and ``by`` is not null); ``label`` is 1
for a positive row, 0 for a negative. See ``ScoreRanks``. The tie rule is the Mann-Whitney one:
a tie counts one half.

SQL engines answer each ranking with one query: one sort of the rows per score, and no
GROUP BY over scores and no join back. Over that order, per row: ``rs = rank()``,
``le = count(*)`` and ``pl = sum(label)`` (rows and positives at or below its score) and
``pq = sum(label)`` over its peers (positives tied with it) give one number ``v``:

    positive row: 2 * (negatives below + half the tied ones) = (le - pl) + (rs - 1 - pl + pq)
    negative row: 2 * (positives below + half the tied ones) = 2 * pl - pq

computed before the next score's sort, so that the sort carries one column per score. A group
whose values are known (``Ranking.values``, a string or integer column of a few values) is
ordered by (its value's index, score) in one unpartitioned sort: the running counts then
include the rows of the groups before, a constant per group that is taken off the sums of v,
v^2 and v0 * v1 afterwards. Other groups, and average precision (which needs each group's
totals beside every row), partition the windows by the group.

Halved, these are DeLong's structural components times the size of the other class (V10 *
negatives for a positive row; positives - V01 * positives for a negative row), so their sums,
squares and products across two scores come from one aggregate over the rows grouped by
(group, label). Average precision adds, per positive row, the precision at its score,
(positives >= score) / (rows >= score), from the same windows and the group's totals.
The frame engines reach the same v from ranks over the group and over (group, label) (see
``_narwhals_ranking``), with no join back for the products of two scores.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from pytest_mlfunnel.engines.dialects import plain

VALUE_OPS = ("sum", "max", "median")


@dataclass(frozen=True)
class Expr:
    op: str
    args: tuple[Any, ...] = ()

    def __add__(self, other: Expr | float) -> Expr:
        return Expr("+", (self, as_expr(other)))

    def __sub__(self, other: Expr | float) -> Expr:
        return Expr("-", (self, as_expr(other)))

    def __rsub__(self, other: Expr | float) -> Expr:
        return Expr("-", (as_expr(other), self))

    def __mul__(self, other: Expr | float) -> Expr:
        return Expr("*", (self, as_expr(other)))

    def __truediv__(self, other: Expr | float) -> Expr:
        return Expr("/", (self, as_expr(other)))

    def columns(self) -> Iterator[str]:
        """Every column the expression reads."""
        if self.op == "col":
            yield str(self.args[0])
            return
        for arg in self.args:
            if isinstance(arg, Expr):
                yield from arg.columns()


def col(name: str) -> Expr:
    return Expr("col", (name,))


def lit(value: float) -> Expr:
    return Expr("lit", (value,))


def as_expr(value: Expr | float) -> Expr:
    return value if isinstance(value, Expr) else lit(value)


def clip(a: Expr, low: float | None, high: float | None) -> Expr:
    return Expr("clip", (a, low, high))


def ln(a: Expr) -> Expr:
    return Expr("ln", (a,))


def absolute(a: Expr) -> Expr:
    return Expr("abs", (a,))


def equals(column: str, value: Any) -> Expr:
    return Expr("eq", (col(column), value))


def is_null(a: Expr) -> Expr:
    return Expr("isnull", (a,))


def outside(a: Expr, low: float, high: float) -> Expr:
    return Expr("outside", (a, low, high))


def binned(a: Expr, edges: list[float]) -> Expr:
    return Expr("bin", (a, tuple(float(e) for e in edges)))


def all_of(*conditions: Expr) -> Expr:
    return Expr("all", tuple(conditions))


@dataclass
class ScoreRank:
    """One score's rank sums in one group (counts, not yet divided).

    ``below``: for each positive, the negatives scored lower plus half the tied ones, summed
    (the Mann-Whitney U; AUC = below / (positives * negatives)); ``below_sq``: the same terms
    squared. ``above`` / ``above_sq``: for each negative, the positives scored higher plus half
    the tied ones. ``precision_sum``: over distinct scores t, positives at t times the
    precision of "score >= t" (average precision = precision_sum / positives).
    """

    below: float = 0.0
    below_sq: float = 0.0
    above: float = 0.0
    above_sq: float = 0.0
    precision_sum: float | None = None  # None: not asked for


@dataclass(frozen=True)
class Ranking:
    """Rank the rows within each value of ``by`` (all rows together when None), by the first
    ``scores`` scores (1, or 2 to pair them)."""

    by: Expr | None = None
    scores: int = 1
    precision: bool = False  # also the sums behind average precision (of the first score)
    #: the values of ``by`` to rank (when known, e.g. from a crosstab): a string or integer
    #: column with a few values is then ranked in one sort by (value, score), not partitioned
    values: tuple[Any, ...] = ()


@dataclass
class ScoreRanks:
    positives: int = 0
    negatives: int = 0
    scores: list[ScoreRank] = field(default_factory=list)
    #: two scores: sum over positives of below_0 * below_1, over negatives of above_0 * above_1
    cross_below: float = 0.0
    cross_above: float = 0.0


# --------------------------------------------------------------------------- SQL
class SqlRendering:
    """Renders expressions for a ``SqlEngine`` (its dialect, literals and NaN cleaning)."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.dialect: Any = engine.dialect  # an engines.dialects.Dialect

    @property
    def double(self) -> str:
        return str(self.dialect.float_type)

    def number(self, value: float) -> str:
        number = float(value)
        if number != number:  # no value to compare with: as a null would be
            return "NULL"
        return str(self.dialect.double(number))  # infinities as the database spells them

    def render(self, expr: Expr) -> str:
        op, args = expr.op, expr.args
        if op == "col":
            return str(self.engine._clean(str(args[0])))
        if op == "lit":
            return self.number(args[0])
        if op in ("+", "-", "*"):
            return f"({self.render(args[0])} {op} {self.render(args[1])})"
        if op == "/":
            return f"(CAST({self.render(args[0])} AS {self.double}) / {self.render(args[1])})"
        if op == "abs":
            return f"abs({self.render(args[0])})"
        if op == "ln":
            return f"ln({self.render(args[0])})"
        if op == "clip":
            a, low, high = self.render(args[0]), args[1], args[2]
            cases = []
            if low is not None:
                cases.append(f"WHEN {a} < {self.number(low)} THEN {self.number(low)}")
            if high is not None:
                cases.append(f"WHEN {a} > {self.number(high)} THEN {self.number(high)}")
            return f"(CASE {' '.join(cases)} ELSE {a} END)" if cases else a
        if op == "eq":
            column = args[0].args[0]
            a = self.render(args[0])
            value = self.engine.literal(args[1], self.engine.schema()[column])
            return f"(CASE WHEN {a} IS NULL THEN NULL WHEN {a} = {value} THEN 1 ELSE 0 END)"
        if op == "isnull":
            return f"(CASE WHEN {self.render(args[0])} IS NULL THEN 1 ELSE 0 END)"
        if op == "outside":
            a = self.render(args[0])
            return (f"(CASE WHEN {a} IS NULL THEN NULL WHEN {a} < {self.number(args[1])} OR "
                    f"{a} > {self.number(args[2])} THEN 1 ELSE 0 END)")
        if op == "bin":
            a = self.render(args[0])
            steps = " ".join(f"WHEN {a} <= {self.number(e)} THEN {i}"
                             for i, e in enumerate(args[1]))
            return f"(CASE WHEN {a} IS NULL THEN NULL {steps} ELSE {len(args[1])} END)"
        if op == "all":
            conditions = " AND ".join(f"{self.render(a)} = 1" for a in args)
            return f"(CASE WHEN {conditions} THEN 1 ELSE 0 END)"
        raise ValueError(f"unknown expression {op!r}")

    def value(self, op: str, expr: Expr) -> str:
        x = self.render(expr)
        if op == "median":
            return str(self.dialect.median(x) or "")  # "": per-group window query
        return f"{op}({x})"


def sql_crosstab(engine: Any, keys: list[Expr], values: list[tuple[str, Expr]]
                 ) -> list[tuple[tuple[Any, ...], int, list[Any]]]:
    rendering = SqlRendering(engine)
    parts = [rendering.value(op, expr) or "NULL" for op, expr in values]
    names = [f"k{i}" for i in range(len(keys))]
    selected = [f"{rendering.render(k)} AS {n}" for k, n in zip(keys, names, strict=True)]
    selected += ["count(*)", *parts]
    group = f" GROUP BY {', '.join(names)}" if names else ""
    rows = engine.run_seeing_nan(f"SELECT {', '.join(selected)} FROM {engine._from()}{group}",
                                 "crosstab")
    width = len(keys)
    found = [(tuple(plain(v) for v in row[:width]), int(row[width]),
              [None if v is None else float(plain(v)) for v in row[width + 1:]])
             for row in rows]
    for i, (op, expr) in enumerate(values):
        if op == "median" and not rendering.value(op, expr):
            medians = _window_medians(engine, rendering, keys, expr)
            for key, _, answers in found:
                answers[i] = medians.get(key)
    return found


def _window_medians(engine: Any, rendering: SqlRendering, keys: list[Expr], expr: Expr
                    ) -> dict[tuple[Any, ...], float]:
    """Medians per group with window functions, for databases without a median (SQLite)."""
    x = rendering.render(expr)
    names = [f"k{i}" for i in range(len(keys))]
    selected = "".join(f"{rendering.render(k)} AS {n}, " for k, n in zip(keys, names,
                                                                        strict=True))
    partition = f"PARTITION BY {', '.join(names)} " if names else ""
    sql = (f"SELECT {''.join(n + ', ' for n in names)}avg(v) FROM (SELECT *, row_number() OVER "
           f"({partition}ORDER BY v) AS r, count(*) OVER ({partition.strip()}) AS c FROM "
           f"(SELECT {selected}{x} AS v FROM {engine._from()}) AS d WHERE v IS NOT NULL) AS w "
           f"WHERE r IN ((c + 1) / 2, (c + 2) / 2)"
           f"{' GROUP BY ' + ', '.join(names) if names else ''}")
    return {tuple(plain(v) for v in row[:-1]): float(plain(row[-1]))
            for row in engine.run_seeing_nan(sql, "medians")}


#: a slice column with at most this many values is ranked in one sort of (slice code, score):
#: a CASE over more values would cost more per row than the partitioned windows it replaces
MAX_CODED_VALUES = 64


def sql_score_ranks(engine: Any, label: Expr, scores: list[Expr], rankings: list[Ranking],
                    where: Expr | None) -> list[dict[Any, ScoreRanks]]:
    """One query per ranking: one sort of the rows per score, read by a rank and running
    counts over it (see the module's docstring). All rankings in one query took as long and
    twice the memory: each window carries the columns of the ones before."""
    return [_sql_ranking(engine, label, scores[:ranking.scores], ranking, where)
            for ranking in rankings]


def _slice_code(engine: Any, rendering: SqlRendering, ranking: Ranking) -> str | None:
    """The slice as a dense integer (its index in ``ranking.values``), or None to partition by
    the slice itself: ordering by an integer code and the score is one unpartitioned sort, many
    times cheaper than partitions keyed by strings."""
    by = ranking.by
    if (by is None or by.op != "col" or not ranking.values or ranking.precision
            or len(ranking.values) > MAX_CODED_VALUES):
        return None
    dtype = engine.schema().get(str(by.args[0]))
    if dtype not in ("string", "int"):
        return None
    k = rendering.render(by)
    steps = " ".join(f"WHEN {engine.literal(v, dtype)} THEN {i}"
                     for i, v in enumerate(ranking.values))
    return f"(CASE {k} {steps} END)"


def _sql_ranking(engine: Any, label: Expr, scores: list[Expr], ranking: Ranking,
                 where: Expr | None) -> dict[Any, ScoreRanks]:
    rendering = SqlRendering(engine)
    double = rendering.double
    y = rendering.render(label)
    conditions = [f"{y} IS NOT NULL"]
    conditions += [f"{rendering.render(s)} IS NOT NULL" for s in scores]
    if where is not None:
        conditions.append(f"{rendering.render(where)} = 1")
    code = _slice_code(engine, rendering, ranking)
    keys = ["k"] if ranking.by is not None else []
    k = code or (rendering.render(ranking.by) if ranking.by is not None else "")
    inner = [f"{k} AS k"] if keys else []
    inner += [f"{y} AS y"]
    inner += [f"{rendering.render(s)} AS s{j}" for j, s in enumerate(scores)]
    # coded: one order by (slice code, score); the counts then run over the slices before
    # too, and are taken back per slice from the totals (see _uncoded)
    partition = "PARTITION BY k " if keys and code is None else ""
    first = "k, " if code is not None else ""
    ties = "RANGE BETWEEN CURRENT ROW AND CURRENT ROW"
    query = f"SELECT {', '.join(inner)} FROM {engine._from()} WHERE {' AND '.join(conditions)}"
    if code is not None:  # a value not listed has no code, and no place in the order
        query = f"SELECT * FROM ({query}) AS c WHERE k IS NOT NULL"

    kept = [*keys, "y"]
    for j in range(len(scores)):
        order = f"{partition}ORDER BY {first}s{j}"
        later = [f"s{i}" for i in range(j + 1, len(scores))]
        windows = [f"rank() OVER ({order}) AS rs", f"count(*) OVER ({order}) AS le",
                   f"sum(y) OVER ({order}) AS pl", f"sum(y) OVER ({order} {ties}) AS pq"]
        if j == 0 and ranking.precision:
            windows += [f"sum(y) OVER ({partition.strip()}) AS pe",
                        f"count(*) OVER ({partition.strip()}) AS te"]
        # v: for a positive row 2 * (negatives below + half the tied ones), for a negative
        # row 2 * (positives below + half the tied ones); one column, so that the next sort
        # carries one number per score
        placed = [f"CASE WHEN y = 1 THEN le - pl + rs - 1 - pl + pq ELSE 2 * pl - pq END "
                  f"AS v{j}"]
        if j == 0 and ranking.precision:
            placed.append(f"CASE WHEN y = 1 THEN CAST(pe - pl + pq AS {double}) / "
                          "(te - rs + 1) END AS ap")
        query = (f"SELECT {', '.join([*kept, *later, *placed])} FROM (SELECT "
                 f"{', '.join([*kept, *later, *windows])} FROM ({query}) AS r{j}) AS w{j}")
        kept += [f"v{j}", *(["ap"] if j == 0 and ranking.precision else [])]
    sums = ["count(*)", "sum(ap)" if ranking.precision else "0"]
    for j in range(len(scores)):
        sums += [f"sum(v{j})", f"sum(CAST(v{j} AS {double}) * v{j})"]
    if len(scores) == 2:
        sums.append(f"sum(CAST(v0 AS {double}) * v1)")
    group = ", ".join([*keys, "y"])
    sql = f"SELECT {group}, {', '.join(sums)} FROM ({query}) AS v GROUP BY {group}"
    parts: dict[Any, dict[int, list[float]]] = {}
    for row in engine.run_in_bounded_memory(sql, "score ranks"):
        values = [plain(v) for v in row]
        key = values[0] if keys else None
        if keys and key is None:
            continue
        rest = values[len(keys):]
        parts.setdefault(key, {})[int(rest[0])] = [_number(v) for v in rest[1:]]
    if code is not None:
        parts = _uncoded(parts, ranking.values, len(scores))
    return {key: rank_sums(len(scores), ranking.precision, by_label)
            for key, by_label in parts.items()}


def _uncoded(parts: dict[Any, dict[int, list[float]]], values: tuple[Any, ...], scores: int
             ) -> dict[Any, dict[int, list[float]]]:
    """Sums per slice code over one order by (code, score) -> the sums each slice would give
    alone. A row's running counts include the rows of the slices before it: its v is
    v + 2 * (negatives before) for a positive row, v + 2 * (positives before) for a negative
    one, so the sums of v, v^2 and v0 * v1 are shifted back by that constant."""
    found: dict[Any, dict[int, list[float]]] = {}
    rows_before = positives_before = 0
    for code in sorted(parts):
        by_label = parts[code]
        shifted: dict[int, list[float]] = {}
        for label, sums in by_label.items():
            n = sums[0]
            o = 2 * ((rows_before - positives_before) if label == 1 else positives_before)
            out = sums[:2]
            for j in range(scores):
                s1, s2 = sums[2 + 2 * j], sums[3 + 2 * j]
                out += [s1 - n * o, s2 - 2 * o * s1 + n * o * o]
            if scores == 2:
                out.append(sums[6] - o * (sums[2] + sums[4]) + n * o * o)
            shifted[label] = out
        found[values[int(code)]] = shifted
        rows_before += int(sum(s[0] for s in by_label.values()))
        positives_before += int(by_label.get(1, [0])[0])
    return found


def _number(value: Any) -> float:
    return 0.0 if value is None else float(value)


def rank_sums(scores: int, precision: bool, by_label: dict[int, list[float]]) -> ScoreRanks:
    """One group's ``ScoreRanks`` from the query's sums per label: [rows, precision sum, then
    per score sum v, sum v^2, then sum v0 * v1]. A positive's placement (negatives below +
    half the tied ones) is v / 2; a negative's (positives above + half the tied ones) is
    positives - v / 2."""
    width = 2 + 2 * scores + (scores == 2)
    pos = by_label.get(1, [0.0] * width)
    neg = by_label.get(0, [0.0] * width)
    p, n = int(pos[0]), int(neg[0])
    ranks = ScoreRanks(p, n, [ScoreRank() for _ in range(scores)])
    for j in range(scores):
        a, a2 = pos[2 + 2 * j], pos[3 + 2 * j]
        c, c2 = neg[2 + 2 * j], neg[3 + 2 * j]
        ranks.scores[j] = ScoreRank(
            below=a / 2, below_sq=a2 / 4, above=n * p - c / 2,
            above_sq=n * p * p - p * c + c2 / 4,
            precision_sum=pos[1] if j == 0 and precision else None)
    if scores == 2:
        ranks.cross_below = pos[6] / 4
        ranks.cross_above = n * p * p - p * (neg[2] + neg[4]) / 2 + neg[6] / 4
    return ranks


# --------------------------------------------------------------------------- narwhals
def narwhals_rows(engine: Any, columns: list[Any], where: Expr | None) -> Any:
    """A narwhals engine's rows as these named columns, those holding a null left out, and
    only the rows ``where`` holds."""
    import narwhals.stable.v2 as nw

    if where is not None:
        columns = [*columns, narwhals_expr(engine, where).alias("mlfunnel_w")]
    rows = engine.frame.select(*columns).drop_nulls()
    if where is not None:
        rows = rows.filter(nw.col("mlfunnel_w") == 1).drop("mlfunnel_w")
    return rows


def narwhals_expr(engine: Any, expr: Expr) -> Any:
    import narwhals.stable.v2 as nw

    op, args = expr.op, expr.args

    def sub(e: Any) -> Any:
        return narwhals_expr(engine, e)

    if op == "col":
        return engine._clean(str(args[0]))
    if op == "lit":
        return nw.lit(float(args[0]))
    if op == "+":
        return sub(args[0]) + sub(args[1])
    if op == "-":
        return sub(args[0]) - sub(args[1])
    if op == "*":
        return sub(args[0]) * sub(args[1])
    if op == "/":
        return sub(args[0]).cast(nw.Float64) / sub(args[1])
    if op == "abs":
        return sub(args[0]).abs()
    if op == "ln":
        return sub(args[0]).log()
    if op == "clip":
        a = sub(args[0])
        low, high = args[1], args[2]
        out = a
        if high is not None:
            out = nw.when(a > high).then(nw.lit(float(high))).otherwise(out)
        if low is not None:
            out = nw.when(a < low).then(nw.lit(float(low))).otherwise(out)
        return out
    if op == "eq":
        column = str(args[0].args[0])
        (value,) = engine._values(column, [args[1]]) or [None]
        return (sub(args[0]) == value).cast(nw.Int64)
    if op == "isnull":
        return sub(args[0]).is_null().cast(nw.Int64)
    if op == "outside":
        a = sub(args[0])
        return ((a < float(args[1])) | (a > float(args[2]))).cast(nw.Int64)
    if op == "bin":
        a = sub(args[0])
        total = None
        for edge in args[1]:
            above = (a > float(edge)).cast(nw.Int64)
            total = above if total is None else total + above
        return total if total is not None else a * 0
    if op == "all":
        both = nw.lit(True)
        for a in args:
            both = both & (sub(a) == 1).fill_null(False)
        return nw.when(both).then(nw.lit(1)).otherwise(nw.lit(0))
    raise ValueError(f"unknown expression {op!r}")


def narwhals_crosstab(engine: Any, keys: list[Expr], values: list[tuple[str, Expr]]
                      ) -> list[tuple[tuple[Any, ...], int, list[Any]]]:
    import narwhals.stable.v2 as nw

    names = [f"mlfunnel_k{i}" for i in range(len(keys))]
    frame = engine.frame.select(
        *[narwhals_expr(engine, k).alias(n) for k, n in zip(keys, names, strict=True)],
        *[narwhals_expr(engine, e).alias(f"mlfunnel_v{i}") for i, (_, e) in enumerate(values)])
    aggs = [nw.len().alias("mlfunnel_n")]
    for i, (op, _) in enumerate(values):
        column = nw.col(f"mlfunnel_v{i}")
        aggs.append((column.median() if op == "median" else getattr(column, op)()
                     ).alias(f"mlfunnel_a{i}"))
    # a sum over no values is 0 in some engines: None, as in SQL, when nothing was summed
    aggs += [nw.col(f"mlfunnel_v{i}").count().alias(f"mlfunnel_c{i}")
             for i in range(len(values))]
    lazy = frame.group_by(*names).agg(*aggs) if names else frame.select(*aggs)
    width, count = len(keys), len(values)
    return [(tuple(row[:width]), int(row[width]),
             [None if v is None or not seen else float(v) for v, seen in zip(
                 row[width + 1:width + 1 + count], row[width + 1 + count:], strict=True)])
            for row in engine._collect(lazy, "crosstab")]


def narwhals_score_ranks(engine: Any, label: Expr, scores: list[Expr], rankings: list[Ranking],
                         where: Expr | None) -> list[dict[Any, ScoreRanks]]:
    return [_narwhals_ranking(engine, label, scores[:r.scores], r, where) for r in rankings]


def _narwhals_ranking(engine: Any, label: Expr, scores: list[Expr], ranking: Ranking,
                      where: Expr | None) -> dict[Any, ScoreRanks]:
    """One ranking, the SQL engines' v per row from ranks alone: over the group, rank "min"
    is 1 + the rows below a score and rank "max" the rows at or below it; the same within
    (group, label) counts the row's own class, so their differences count the other class:

        v = (rank max - rank max in its class) + (rank min - rank min in its class)

    which is 2 * (negatives below + half the tied ones) for a positive row and 2 * (positives
    below + half the tied ones) for a negative row. Every sum then comes from one aggregate
    per (group, label), with no join back."""
    import narwhals.stable.v2 as nw

    by = ranking.by
    key = narwhals_expr(engine, by) if by is not None else nw.lit(0)
    columns = [key.alias("k"), narwhals_expr(engine, label).alias("y")]
    columns += [narwhals_expr(engine, s).cast(nw.Float64).alias(f"s{i}")
                for i, s in enumerate(scores)]
    rows = narwhals_rows(engine, columns, where)

    def rank(score: str, method: Literal["min", "max"], *over: str) -> Any:
        return nw.col(score).rank(method).over(*over).cast(nw.Int64)

    placed = [(rank(f"s{i}", "max", "k") - rank(f"s{i}", "max", "k", "y")
               + rank(f"s{i}", "min", "k") - rank(f"s{i}", "min", "k", "y")).alias(f"v{i}")
              for i in range(len(scores))]
    if ranking.precision:
        # a positive row: (positives >= its score) / (rows >= its score)
        y = nw.col("y").cast(nw.Float64)
        placed.append(nw.when(nw.col("y") == 1).then(
            (y.sum().over("k") - rank("s0", "min", "k", "y") + 1)
            / (nw.len().over("k") - rank("s0", "min", "k") + 1)).alias("ap"))
    ranked = rows.with_columns(*placed)
    v = [nw.col(f"v{i}").cast(nw.Float64) for i in range(len(scores))]
    sums = [nw.len().alias("n"),
            (nw.col("ap") if ranking.precision else nw.col("y") * 0.0).sum().alias("ap")]
    for i, value in enumerate(v):
        sums += [value.sum().alias(f"a{i}"), (value * value).sum().alias(f"b{i}")]
    if len(scores) == 2:
        sums.append((v[0] * v[1]).sum().alias("x"))
    parts: dict[Any, dict[int, list[float]]] = {}
    for row in engine._collect(ranked.group_by("k", "y").agg(*sums), "score ranks"):
        k = None if by is None else row[0]
        parts.setdefault(k, {})[int(row[1])] = [_number(value) for value in row[2:]]
    return {k: rank_sums(len(scores), ranking.precision, by_label)
            for k, by_label in parts.items()}
