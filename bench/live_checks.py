"""Benchmark: what the live-system checks add on top of the work they cannot avoid.

    python bench/live_checks.py [--probes 1000] [--series 20000] [--repeat 5]

(a) http: ``--probes`` sequential probes of a local server through the ``http`` kind's call
    (each on its own deadline thread, body read, judged) against a bare ``http.client`` loop
    doing the same requests. Target: <= 1.3x.
(b) Prometheus: reading a ``--series``-series exposition and evaluating 20 selectors (sums,
    regex matchers, a ratio) against prometheus_client's parser alone on the same text.
    Target: <= 1.5x.

The two sides alternate, ``--repeat`` times each; medians are compared. Prints the ratios.
"""

from __future__ import annotations

import argparse
import http.client
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from pytest_mlfunnel.kinds.http import HttpConfig, run_probes
from pytest_mlfunnel.sources.prometheus import parse_exposition


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    body = b'{"status": "ok", "score": 0.42}'

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)


def serve() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    print(server.server_address[1], flush=True)
    server.serve_forever()


def bare_loop(port: int, probes: int) -> None:
    for _ in range(probes):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        connection.request("GET", "/health", headers={"Connection": "close"})
        response = connection.getresponse()
        assert response.status == 200
        response.read()
        connection.close()


def exposition(series: int) -> str:
    lines = ["# HELP http_requests_total Requests", "# TYPE http_requests_total counter"]
    codes = ["200", "201", "404", "422", "500", "503"]
    for i in range(series):
        lines.append(f'http_requests_total{{code="{codes[i % 6]}",handler="h{i % 50}",'
                     f'pod="pod-{i // 300}"}} {i % 977}')
    return "\n".join(lines) + "\n"


SELECTORS = (
    ['http_requests_total{code=~"5.."} / http_requests_total', "http_requests_total"]
    + [f'http_requests_total{{handler="h{i}", code!="404"}}' for i in range(18)]
)


def median_pair(first: Callable[[], None], second: Callable[[], None], repeat: int
                ) -> tuple[float, float]:
    a, b = [], []
    for _ in range(repeat):
        for fn, out in ((first, a), (second, b)):
            started = time.perf_counter()
            fn()
            out.append(time.perf_counter() - started)
    return statistics.median(a), statistics.median(b)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--probes", type=int, default=1000)
    parser.add_argument("--series", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve()
        return

    # the service runs in its own process, as a real one does: no GIL shared with the probes
    server = subprocess.Popen([sys.executable, __file__, "--serve"], stdout=subprocess.PIPE,
                              text=True)
    assert server.stdout is not None
    port = int(server.stdout.readline())
    check = HttpConfig.model_validate({"http": f"http://127.0.0.1:{port}/health",
                                       "requests": args.probes, "response": ["score"]})

    def ours() -> None:
        run = run_probes(check)
        assert not run.failed

    bare, kind = median_pair(lambda: bare_loop(port, args.probes), ours, args.repeat)
    server.terminate()
    server.wait()
    print(f"(a) http: {args.probes} probes: bare http.client {bare:.3f} s, http kind "
          f"{kind:.3f} s -> {kind / bare:.2f}x (target <= 1.3x)")

    text = exposition(args.series)

    def parser_only() -> None:
        for family in text_string_to_metric_families(text):
            for _ in family.samples:
                pass

    def read_and_resolve() -> None:
        metrics = parse_exposition(text, "bench")
        for selector in SELECTORS:
            assert metrics.resolve(selector)

    floor, ours_prom = median_pair(parser_only, read_and_resolve, args.repeat)
    print(f"(b) prometheus: {args.series} series, {len(SELECTORS)} selectors: parser alone "
          f"{floor:.3f} s, read + resolve {ours_prom:.3f} s -> {ours_prom / floor:.2f}x "
          "(target <= 1.5x)")


if __name__ == "__main__":
    main()
