from __future__ import annotations

import pytest

from pytest_mlfunnel.expectations import (
    Expectation,
    ExpectationError,
    format_value,
    parse_duration,
    parse_share,
)


@pytest.mark.parametrize(
    ("text", "observed", "holds"),
    [
        (">= 0.8", 0.8, True),
        (">= 0.8", 0.79, False),
        ("> 0.8", 0.8, False),
        ("<= 5%", 0.05, True),
        ("<= 5%", 0.0501, False),
        ("< 5000", 4999, True),
        ("== 0", 0, True),
        ("!= 0", 0, False),
        (">= 5_000", 5000, True),
        ("<= 30 days", 29 * 86400, True),
        ("<= 30 days", 31 * 86400, False),
        ("<= 500 ms", 0.4, True),
        ("<= 12 h", 13 * 3600, False),
        (">= 1e-3", 0.002, True),
    ],
)
def test_plain_expectations_compare_as_written(text: str, observed: float, holds: bool) -> None:
    assert Expectation.parse(text).holds(observed) is holds


@pytest.mark.parametrize(
    ("text", "baseline", "threshold"),
    [
        (">= baseline", 0.8, 0.8),
        (">= baseline + 0.01", 0.8, 0.81),
        (">= baseline - 0.02", 0.8, 0.78),
        ("<= baseline * 1.1", 100.0, 110.0),
        (">= baseline + 5%", 200.0, 210.0),
        ("<= baseline - 10%", 200.0, 180.0),
    ],
)
def test_baseline_arithmetic(text: str, baseline: float, threshold: float) -> None:
    expectation = Expectation.parse(text)
    assert expectation.uses_baseline
    assert expectation.threshold(baseline) == pytest.approx(threshold)


def test_a_baseline_expectation_without_a_baseline_says_so() -> None:
    with pytest.raises(ExpectationError, match="needs a baseline"):
        Expectation.parse(">= baseline").threshold(None)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("0.8", "not a valid expectation"),
        (">= ", "not a valid expectation"),
        ("=> 0.8", "not a valid expectation"),
        (">= eighty", "VALUE must be"),
        (">= 30 fortnights", "VALUE must be"),
        (">= baseline ** 2", "baseline arithmetic"),
        (">= baseline * 5%", "baseline * N%"),
    ],
)
def test_malformed_expectations_are_rejected_with_a_reason(text: str, fragment: str) -> None:
    with pytest.raises(ExpectationError, match=fragment.replace("*", r"\*")):
        Expectation.parse(text)


def test_non_string_expectation_names_its_type() -> None:
    with pytest.raises(ExpectationError, match="got int 5"):
        Expectation.parse(5)


def test_nan_never_meets_an_expectation() -> None:
    assert not Expectation.parse(">= 0").holds(float("nan"))
    assert not Expectation.parse("!= 1").holds(float("nan"))


def test_durations_and_shares() -> None:
    assert parse_duration("90 days") == 90 * 86400
    assert parse_duration("2 weeks") == 14 * 86400
    assert parse_share("5%") == pytest.approx(0.05)
    assert parse_share(0.2) == 0.2
    with pytest.raises(ExpectationError, match="not a duration"):
        parse_duration("soon")
    with pytest.raises(ExpectationError, match="not a share"):
        parse_share("lots")


def test_values_are_formatted_for_people() -> None:
    assert format_value(0.74) == "0.74"
    assert format_value(52011) == "52011"
    assert format_value(1e308) == "1e+308"
    assert format_value(-2.5e20) == "-2.5e+20"
    assert format_value(123456789012.25) == "123456789012.2"
    assert format_value(0.073, "percent") == "7.3%"
    assert format_value(3 * 86400.0, "duration") == "3 days"
