"""``Agg``: the argument each aggregate takes is typed and checked when the Agg is made."""

from __future__ import annotations

import datetime as dt

import pytest

from pytest_mlfunnel.api import Agg, CellGrid


def test_each_op_takes_its_own_argument_and_reads_it_back_typed() -> None:
    assert Agg("quantiles", "age", [0.5, 1]).numbers() == [0.5, 1.0]
    assert Agg("histogram", "age", (0, 10.5)).numbers() == [0.0, 10.5]
    grid = CellGrid(low=0.0)
    assert Agg("cells", "age", grid).grid() is grid
    assert Agg("value_counts", "plan", 5).cap(10_000) == 5
    assert Agg("value_counts", "plan").cap(10_000) == 10_000
    day = dt.date(2026, 1, 1)
    assert Agg("not_in", "plan", ["basic", 3, day]).allowed() == ["basic", 3, day]
    assert Agg("offending", "age", ("above", 85)).offending() == ("above", 85)
    assert Agg("offending", "age", ("null", None)).offending() == ("null", None)
    assert Agg("rows").arg is None


def test_equal_asks_share_a_key_whatever_sequence_holds_them() -> None:
    assert Agg("quantiles", "age", [0.5]).key() == Agg("quantiles", "age", (0.5,)).key()
    assert hash(Agg("not_in", "plan", ["a", "b"]).key())


@pytest.mark.parametrize(("op", "arg", "problem"), [
    ("quantiles", 0.5, "quantiles takes a list of numbers"),
    ("quantiles", ["0.5"], "quantiles takes a list of numbers"),
    ("histogram", [True, 2], "histogram takes a list of numbers"),
    ("cells", [1, 2], "cells takes a CellGrid"),
    ("value_counts", "10", "value_counts takes a whole number (the cap) or None"),
    ("value_counts", True, "value_counts takes a whole number (the cap) or None"),
    ("not_in", "basic", "not_in takes a list of allowed values"),
    ("not_in", [["nested"]], "not_in takes a list of allowed values"),
    ("offending", ("sideways", 1), "offending takes (mode, x) with a mode in not_in, below, "
                                   "above, duplicated, null"),
    ("mean", 3, "mean takes no argument"),
])
def test_a_wrong_argument_names_the_op_and_what_it_takes(op: str, arg: object,
                                                         problem: str) -> None:
    with pytest.raises(TypeError) as raised:
        Agg(op, "x", arg)  # type: ignore[arg-type]
    assert str(raised.value) == f"Agg({op!r}, 'x', {arg!r}): {problem}"
