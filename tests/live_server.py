"""A real HTTP server on 127.0.0.1 for the live-system tests (stdlib http.server).

Routes: ``/fast`` (JSON at once), ``/slow?ms=N`` (JSON after N ms), ``/flaky?every=N`` (every
N-th request of the server's life answers 500, or with ``&slow_ms=M`` answers after M ms),
``/predict`` (POST JSON -> a score),
``/text`` (HTML, not JSON), ``/metrics`` (Prometheus text from prometheus_client),
``/metrics/openmetrics`` (the same as OpenMetrics), ``/metrics.json`` (JSON metrics),
``/status/N`` (answers status N), ``/nested?depth=N`` (a JSON object N levels deep), ``/digits?n=N`` (an integer
of N digits),
``/sso`` (302 to a login page, as a health URL behind single sign-on answers), ``/moved``
(301 to a Location that is not a URL), ``/latin1`` (JSON encoded as Latin-1),
``/echo`` (the request's headers as text, as a debug page shows them), ``/gzipped``
(JSON gzip-compressed whatever the request accepted). The ``closed_port`` fixture is a port nobody listens on.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that gave up (a timeout test) breaks the pipe; that is expected


class LiveServer:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests_total = Counter("http_requests", "Requests answered, by code and path",
                                      ["code", "path"], registry=self.registry)
        self.flaky_count = 0
        self.lock = threading.Lock()
        self.seen_headers: list[dict[str, str]] = []
        self.seen_bodies: list[Any] = []
        handler = self._handler()
        self.server = _QuietServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> LiveServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def count(self, code: int, path: str, n: int = 1) -> None:
        self.requests_total.labels(str(code), path).inc(n)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        live = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

            def send(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def send_json(self, status: int, data: Any) -> None:
                self.send(status, json.dumps(data).encode(), "application/json")

            def do_HEAD(self) -> None:
                self.do_GET()

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                with live.lock:
                    live.seen_headers.append({k.lower(): v for k, v in self.headers.items()})
                try:
                    body = json.loads(raw or b"null")
                except json.JSONDecodeError:
                    self.send_json(400, {"error": "not JSON"})
                    return
                with live.lock:
                    live.seen_bodies.append(body)
                path = urlsplit(self.path).path
                if path == "/predict":
                    if not isinstance(body, dict) or "age" not in body:
                        self.send_json(422, {"error": "age is required"})
                        return
                    score = min(1.0, max(0.0, float(body["age"]) / 100.0))
                    self.send_json(200, {"score": score, "model": {"version": "1.4.0"},
                                         "labels": ["stay", "churn"]})
                    return
                self.send_json(404, {"error": "no such route"})

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                with live.lock:
                    live.seen_headers.append({k.lower(): v for k, v in self.headers.items()})
                path = parts.path
                if path == "/fast":
                    self.send_json(200, {"status": "ok", "score": 0.7,
                                         "model": {"version": "1.4.0"}})
                elif path == "/slow":
                    time.sleep(float(query.get("ms", "300")) / 1000.0)
                    self.send_json(200, {"status": "ok", "score": 0.7})
                elif path == "/flaky":
                    every = int(query.get("every", "4"))
                    with live.lock:
                        live.flaky_count += 1
                        fail = live.flaky_count % every == 0
                    if fail and "slow_ms" in query:  # a stall instead of an error
                        time.sleep(float(query["slow_ms"]) / 1000.0)
                        self.send_json(200, {"status": "late", "score": 0.7})
                    elif fail:
                        self.send_json(500, {"error": "internal"})
                    else:
                        self.send_json(200, {"status": "ok", "score": 0.7})
                elif path == "/latin1":  # JSON in another encoding than UTF-8
                    self.send(200, '{"status": "café"}'.encode("latin-1"), "application/json")
                elif path == "/text":
                    self.send(200, b"<html>hello</html>", "text/html; charset=utf-8")
                elif path == "/gzipped":
                    import gzip

                    body = gzip.compress(json.dumps({"status": "ok", "requests": 1}).encode())
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Encoding", "gzip")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                elif path == "/echo":
                    echoed = "".join(f"{k}: {v}\n" for k, v in sorted(
                        self.headers.items(), key=lambda kv: kv[0] != "Authorization"))
                    self.send(200, echoed.encode(), "text/plain; charset=utf-8")
                elif path == "/sso":
                    self.send_response(302)
                    self.send_header("Location", "https://sso.example.com/login?state="
                                     "st-8c1d5e0f77a2&next=%2Fhealth")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                elif path == "/moved":  # a Location no URL parser reads
                    self.send_response(301)
                    self.send_header("Location", "http://[::1/login?token=tk-9a8b7c6d")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                elif path == "/nested":
                    depth = int(query.get("depth", "100000"))
                    body = ('{"a": ' * depth + "1" + "}" * depth).encode()
                    self.send(200, body, "application/json")
                elif path == "/digits":  # an integer of more digits than Python reads
                    digits = int(query.get("n", "5000"))
                    self.send(200, ('{"score": 1, "requests": ' + "7" * digits + "}").encode(),
                              "application/json")
                elif path.startswith("/status/"):
                    self.send_json(int(path.rsplit("/", 1)[1]), {"status": "as asked"})
                elif path == "/metrics":
                    self.send(200, generate_latest(live.registry),
                              "text/plain; version=0.0.4; charset=utf-8")
                elif path == "/metrics/openmetrics":
                    self.send(200, generate_openmetrics(live.registry),
                              "application/openmetrics-text; version=1.0.0; charset=utf-8")
                elif path == "/metrics.json":
                    self.send_json(200, {"requests": 1200, "users": 31,
                                         "latency": {"p95_ms": 84.5}})
                else:
                    self.send_json(404, {"error": "no such route"})

        return Handler


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port on 127.0.0.1 where nobody listens, for as long as the test runs.

    The socket stays bound but never listens: connecting is refused, and no other server
    started meanwhile can be given the same port.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as held:
        held.bind(("127.0.0.1", 0))
        yield int(held.getsockname()[1])


@pytest.fixture
def live_server() -> Iterator[LiveServer]:
    server = LiveServer().start()
    try:
        yield server
    finally:
        server.stop()
