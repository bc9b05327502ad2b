"""The model's own tests; marked into the model gate of the funnel."""

from __future__ import annotations

import math

import pytest

pytestmark = pytest.mark.funnel("model")


def score(model: dict, **row: float) -> float:
    values = {"age": 40.0, "tenure_months": 12.0, "monthly_spend": 30.0, "support_calls": 1.0,
              "plan_basic": 1.0, "plan_pro": 0.0, "plan_team": 0.0, **row}
    z = sum(c * (values[f] - m) / s for f, c, m, s in
            zip(model["features"], model["coef"], model["means"], model["scales"], strict=True))
    return 1 / (1 + math.exp(-(z + model["intercept"])))


def test_scores_are_probabilities(churn_model: dict) -> None:
    for calls in (0, 3, 10):
        assert 0.0 < score(churn_model, support_calls=calls) < 1.0


def test_more_support_calls_mean_more_risk(churn_model: dict) -> None:
    assert score(churn_model, support_calls=8) > score(churn_model, support_calls=0)


def test_loyal_customers_are_less_at_risk(churn_model: dict) -> None:
    assert score(churn_model, tenure_months=48) < score(churn_model, tenure_months=2)


def test_the_label_is_not_a_feature(churn_model: dict) -> None:
    assert "churned" not in churn_model["features"]
