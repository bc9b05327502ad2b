"""The model server's own tests: scoring, and every route over real HTTP."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from serve import FALLBACK_MODEL, BadRequest, ModelServer, load_model, score

pytestmark = pytest.mark.funnel("model")

CUSTOMER = {"age": 41, "plan": "pro", "tenure_months": 7, "monthly_spend": 49.0,
            "support_calls": 3}


@pytest.fixture(scope="module")
def server() -> Iterator[ModelServer]:
    running = ModelServer(dict(FALLBACK_MODEL)).start()
    yield running
    running.stop()


def call(url: str, body: Any = None) -> tuple[int, bytes, str]:
    data = None if body is None else (body if isinstance(body, bytes)
                                      else json.dumps(body).encode())
    request = urllib.request.Request(url, data=data, method="POST" if data else "GET")
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return answer.status, answer.read(), answer.headers["Content-Type"]
    except urllib.error.HTTPError as error:
        return error.code, error.read(), error.headers["Content-Type"]


def requests_counted(exposition: bytes) -> dict[tuple[str, str], float]:
    """``http_requests_total`` by (handler, code), read with prometheus_client's parser."""
    return {(s.labels["handler"], s.labels["code"]): s.value
            for family in text_string_to_metric_families(exposition.decode())
            for s in family.samples if s.name == "http_requests_total"}


def test_scores_are_probabilities_that_rise_with_support_calls() -> None:
    calm = score(FALLBACK_MODEL, {**CUSTOMER, "support_calls": 0})
    upset = score(FALLBACK_MODEL, {**CUSTOMER, "support_calls": 8})
    assert 0.0 < calm < upset < 1.0


def test_missing_numbers_take_the_training_mean() -> None:
    assert score(FALLBACK_MODEL, {}) == pytest.approx(score(FALLBACK_MODEL, {
        name: mean for name, mean in zip(FALLBACK_MODEL["features"], FALLBACK_MODEL["means"],
                                         strict=True) if not name.startswith("plan_")}))


@pytest.mark.parametrize(("row", "message"), [
    ({"plan": "gold"}, "unknown plan 'gold'"),
    ({"age": "forty"}, "age must be a number"),
    ({"age": True}, "age must be a number"),
    ([1, 2], "expected a JSON object"),
])
def test_rows_that_cannot_be_scored_say_why(row: Any, message: str) -> None:
    with pytest.raises(BadRequest, match=message):
        score(FALLBACK_MODEL, row)


def test_the_trained_model_is_loaded_when_it_exists(tmp_path: Path) -> None:
    path = tmp_path / "churn.json"
    path.write_text(json.dumps({**FALLBACK_MODEL, "intercept": 2.0, "source": "trained"}))
    model = load_model(path)
    assert model["source"] == "trained"
    assert score(model, CUSTOMER) > score(FALLBACK_MODEL, CUSTOMER)
    assert load_model(tmp_path / "absent.json")["source"] == "fallback"


def test_a_file_that_is_not_a_model_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "churn.json"
    path.write_text(json.dumps({"features": []}))
    with pytest.raises(ValueError, match="missing coef, intercept, means, scales"):
        load_model(path)


def test_health_and_predict_over_http(server: ModelServer) -> None:
    status, body, _ = call(f"{server.url}/health")
    assert status == 200 and json.loads(body)["status"] == "ok"
    status, body, _ = call(f"{server.url}/predict", CUSTOMER)
    answer = json.loads(body)
    assert status == 200
    assert answer["score"] == pytest.approx(score(FALLBACK_MODEL, CUSTOMER), abs=1e-6)
    assert answer["churn"] is (answer["score"] >= 0.5)


@pytest.mark.parametrize(("path", "body", "status"), [
    ("/predict", {"plan": "gold"}, 422),
    ("/predict", b"{not json", 400),
    ("/nowhere", {"age": 1}, 404),
    ("/nowhere", None, 404),
])
def test_bad_requests_get_the_right_status(server: ModelServer, path: str, body: Any,
                                           status: int) -> None:
    assert call(f"{server.url}{path}", body)[0] == status


def test_a_scoring_bug_is_a_500_and_is_counted() -> None:
    broken = ModelServer({**FALLBACK_MODEL, "coef": [1.0]}).start()  # wrong length
    try:
        assert call(f"{broken.url}/predict", CUSTOMER)[0] == 500
        _, metrics, _ = call(f"{broken.url}/metrics")
        assert requests_counted(metrics)[("predict", "500")] == 1.0
    finally:
        broken.stop()


def test_metrics_count_requests_by_handler_and_code(server: ModelServer) -> None:
    call(f"{server.url}/health")
    status, body, content_type = call(f"{server.url}/metrics")
    assert status == 200 and content_type.startswith("text/plain")
    assert requests_counted(body)[("health", "200")] >= 1
    _, again, _ = call(f"{server.url}/metrics")  # a scrape is counted once it is answered
    assert requests_counted(again)[("metrics", "200")] >= 1
