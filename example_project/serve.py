"""The churn model behind HTTP: what the deployment gate probes.

    python serve.py --port 8000        # then: curl localhost:8000/health

Routes:
  GET  /health    {"status": "ok", "model": ...}
  POST /predict   {"age": 41, "plan": "pro", ...} -> {"score": 0.31, "churn": false, ...}
  GET  /metrics   Prometheus text: requests by route and status code, latency histogram

The model is the logistic regression ``train.py`` writes to models/churn.json; before it has
been trained the server scores with fixed coefficients and says so on /health.
Standard library HTTP server; prometheus_client for /metrics.
"""

from __future__ import annotations

import argparse
import json
import math
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client import generate_latest as prometheus_text

HERE = Path(__file__).resolve().parent
MODEL_PATH = HERE / "models" / "churn.json"
PLANS = ("basic", "pro", "team")
NUMERIC = ("age", "tenure_months", "monthly_spend", "support_calls")

#: Used until train.py has written models/churn.json: signs from domain knowledge
#: (support calls raise churn risk, tenure lowers it), not fitted to data.
FALLBACK_MODEL: dict[str, Any] = {
    "features": [*NUMERIC, *(f"plan_{p}" for p in PLANS)],
    "coef": [-0.10, -0.90, 0.20, 0.80, 0.30, -0.10, -0.20],
    "intercept": -1.2,
    "means": [40.0, 18.0, 45.0, 1.5, 0.5, 0.3, 0.2],
    "scales": [12.0, 14.0, 20.0, 1.4, 0.5, 0.46, 0.4],
    "threshold": 0.5,
    "source": "fallback",
}


class BadRequest(ValueError):
    """The request body cannot be scored; the message says why (answered as 422)."""


def load_model(path: Path = MODEL_PATH) -> dict[str, Any]:
    if not path.is_file():
        return dict(FALLBACK_MODEL)
    model: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    missing = [k for k in ("features", "coef", "intercept", "means", "scales") if k not in model]
    if missing:
        raise ValueError(f"{path}: not a churn model, missing {', '.join(missing)}")
    model.setdefault("threshold", 0.5)
    model.setdefault("source", str(path.relative_to(HERE)) if path.is_relative_to(HERE)
                     else str(path))
    return model


def features_of(model: dict[str, Any], row: dict[str, Any]) -> list[float]:
    """One request body -> the model's feature vector; absent numbers take the training mean."""
    if not isinstance(row, dict):
        raise BadRequest("expected a JSON object such as {\"age\": 41, \"plan\": \"pro\"}")
    plan = row.get("plan")
    if plan is not None and plan not in PLANS:
        raise BadRequest(f"unknown plan {plan!r} (plans: {', '.join(PLANS)})")
    values = []
    for name, mean in zip(model["features"], model["means"], strict=True):
        if name.startswith("plan_"):
            values.append(float(plan == name.removeprefix("plan_")) if plan else float(mean))
            continue
        value = row.get(name, mean)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise BadRequest(f"{name} must be a number, got {value!r}")
        values.append(float(value))
    return values


def score(model: dict[str, Any], row: dict[str, Any]) -> float:
    """The churn probability for one customer."""
    z = model["intercept"] + sum(
        c * (x - m) / s for c, x, m, s in zip(model["coef"], features_of(model, row),
                                              model["means"], model["scales"], strict=True))
    return 1.0 / (1.0 + math.exp(-z))


class ModelServer:
    """The model and its HTTP server; ``port=0`` picks a free port."""

    def __init__(self, model: dict[str, Any] | None = None, host: str = "127.0.0.1",
                 port: int = 0) -> None:
        self.model = model or load_model()
        self.registry = CollectorRegistry()
        self.requests = Counter("http_requests", "HTTP requests answered",
                                ["handler", "code"], registry=self.registry)
        self.latency = Histogram("http_request_duration_seconds", "Time to answer",
                                 ["handler"], registry=self.registry,
                                 buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0))
        self.httpd = ThreadingHTTPServer((host, port), self._handler())
        self.httpd.daemon_threads = True
        self.url = f"http://{host}:{self.httpd.server_address[1]}"
        self._thread: threading.Thread | None = None

    def start(self) -> ModelServer:
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True,
                                        name="churn-model-server")
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass  # the metrics are the access log

            def answer(self, handler: str, status: int, body: bytes,
                       content_type: str = "application/json", started: float = 0.0) -> None:
                # counted before the client can read the answer, so a scrape right after
                # an answer always includes it
                server.requests.labels(handler, str(status)).inc()
                if started:
                    server.latency.labels(handler).observe(time.perf_counter() - started)
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def answer_json(self, handler: str, status: int, data: Any, started: float) -> None:
                self.answer(handler, status, json.dumps(data).encode(), started=started)

            def do_GET(self) -> None:
                started = time.perf_counter()
                path = self.path.split("?", 1)[0]
                if path == "/health":
                    self.answer_json("health", 200, {
                        "status": "ok", "model": server.model.get("source", "models/churn.json"),
                        "features": len(server.model["features"])}, started)
                elif path == "/metrics":
                    self.answer("metrics", 200, prometheus_text(server.registry),
                                CONTENT_TYPE_LATEST)
                else:
                    self.answer_json("other", 404, {"error": f"no route {path}"}, started)

            def do_POST(self) -> None:
                started = time.perf_counter()
                path = self.path.split("?", 1)[0]
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                if path != "/predict":
                    self.answer_json("other", 404, {"error": f"no route {path}"}, started)
                    return
                try:
                    row = json.loads(raw or b"null")
                    probability = score(server.model, row)
                except (json.JSONDecodeError, UnicodeDecodeError):
                    self.answer_json("predict", 400, {"error": "the body is not JSON"}, started)
                    return
                except BadRequest as exc:
                    self.answer_json("predict", 422, {"error": str(exc)}, started)
                    return
                except Exception as exc:  # a scoring bug is a 500, counted like any other
                    self.answer_json("predict", 500, {"error": type(exc).__name__}, started)
                    return
                self.answer_json("predict", 200, {
                    "score": round(probability, 6),
                    "churn": probability >= server.model["threshold"],
                    "model": server.model.get("source", "models/churn.json")}, started)

        return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    server = ModelServer(host=args.host, port=args.port)
    print(f"serving {server.model.get('source')} on {server.url}")
    try:
        server.httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.httpd.server_close()


if __name__ == "__main__":
    main()
