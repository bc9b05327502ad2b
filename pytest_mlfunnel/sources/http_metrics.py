"""Metrics over HTTP, and the one HTTP call every live check makes.

An ``http(s)`` metrics source is read by what the server says it sent: Prometheus text
exposition (``text/plain; version=0.0.4``) or OpenMetrics go to the Prometheus reader, JSON
is flattened into dotted names like a metrics file. Only the standard library speaks HTTP here.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

from pytest_mlfunnel import secrets
from pytest_mlfunnel.expectations import ExpectationError, format_duration, parse_duration
from pytest_mlfunnel.jsontext import JsonTextError, parse_json
from pytest_mlfunnel.outcome import CriterionError
from pytest_mlfunnel.sources.metrics import MetricSet, flatten
from pytest_mlfunnel.sources.spec import SourceSpec

DEFAULT_TIMEOUT_S = 10.0
MAX_BODY_BYTES = 32 * 1024 * 1024
#: How OpenSSL ends a handshake with a server that answered in plain HTTP.
_PLAIN_HTTP_REASONS = frozenset({"WRONG_VERSION_NUMBER", "UNEXPECTED_EOF_WHILE_READING",
                                 "HTTP_REQUEST", "PACKET_LENGTH_TOO_LONG",
                                 "RECORD_LAYER_FAILURE"})
_ACCEPT_METRICS = "text/plain;version=0.0.4;q=0.9, application/json;q=0.8, */*;q=0.1"


@dataclass
class HttpAnswer:
    """What one HTTP call gave back: an answer (any status), or why there was none."""

    status: int | None = None
    reason: str = ""
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names
    body: bytes = b""
    elapsed_s: float = 0.0
    failure: str | None = None  # "connection refused", "no answer within 5 s", ...
    timed_out: bool = False

    @property
    def answered(self) -> bool:
        return self.failure is None

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").lower()

    def encoding_problem(self) -> str | None:
        """Why the body cannot be read as sent: a compression the request did not accept
        (http.client asks for ``Accept-Encoding: identity`` and decodes nothing)."""
        encoding = self.headers.get("content-encoding", "").strip()
        if not encoding or encoding.lower() == "identity":
            return None
        return (f"the answer is compressed (Content-Encoding: {encoding[:40]}) though the "
                "request accepted only uncompressed answers (Accept-Encoding: identity)")


def http_call(method: str, url: str, *, body: bytes | None = None,
              headers: Mapping[str, str] | None = None, timeout: float = DEFAULT_TIMEOUT_S
              ) -> HttpAnswer:
    """One request, bounded by ``timeout`` seconds from start to the last body byte."""
    return http_calls(method, url, count=1, body=body, headers=headers, timeout=timeout)[0]


def http_calls(method: str, url: str, *, count: int, body: bytes | None = None,
               headers: Mapping[str, str] | None = None, timeout: float = DEFAULT_TIMEOUT_S
               ) -> list[HttpAnswer]:
    """``count`` requests one after the other, all done within ``count x timeout`` seconds.

    Each request has its own socket deadline; the calls run on one daemon thread so that
    nothing the sockets do not cover -- a DNS lookup that stalls -- can hold the test run
    past the total. Requests the deadline cut off count as timed out.
    """
    answers: list[HttpAnswer] = []
    stop = threading.Event()

    def work() -> None:
        for _ in range(count):
            if stop.is_set():
                return
            try:
                answer = _call(method, url, body, dict(headers or {}), timeout)
            except Exception as exc:  # never let the thread die silently: say what happened
                answer = HttpAnswer(failure=f"the request failed: {type(exc).__name__}: {exc}")
            answers.append(answer)

    worker = threading.Thread(target=work, daemon=True, name="mlfunnel-http")
    worker.start()
    worker.join(count * timeout + 0.25)
    stop.set()
    done = answers[:count]
    return done + [HttpAnswer(failure=f"no answer within {format_duration(timeout)}",
                              elapsed_s=timeout, timed_out=True)
                   for _ in range(count - len(done))]


#: characters of an HTTP token (RFC 9110): what a header name may hold
_TOKEN = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyz"
                   "ABCDEFGHIJKLMNOPQRSTUVWXYZ")


def header_problem(name: str, value: str) -> str | None:
    """Why a header cannot be sent as written, else None. The value is never repeated (it may
    hold a secret); a character that does not fit is named by its code point."""
    if not name or any(c not in _TOKEN for c in name):
        return (f"header {name!r}: a header name is letters, digits and ! # $ % & ' * + - . ^ _ "
                "` | ~ only")
    for position, char in enumerate(value, 1):
        if char in "\r\n\0":
            return (f"header {name!r}: the value holds a line break or NUL (U+{ord(char):04X} "
                    f"at character {position}), which a header cannot carry")
        if ord(char) > 0xFF:
            return (f"header {name!r}: the value holds U+{ord(char):04X} at character "
                    f"{position}, outside Latin-1: HTTP header values are Latin-1 text "
                    "(percent-encode or base64 it)")
    return None


def _call(method: str, url: str, body: bytes | None, headers: dict[str, str],
          timeout: float) -> HttpAnswer:
    for name, value in headers.items():
        problem = header_problem(name, value)
        if problem is not None:
            return HttpAnswer(failure=f"not sent: {problem}")
    parts = urlsplit(url)
    host = parts.hostname or ""
    target = parts.path or "/"
    if parts.query:
        target += f"?{parts.query}"
    deadline_text = f"no answer within {format_duration(timeout)}"
    started = time.perf_counter()
    connection: http.client.HTTPConnection
    try:
        port = parts.port
    except ValueError:
        return HttpAnswer(failure="the URL has an invalid port")
    if parts.scheme.lower() == "https":
        connection = http.client.HTTPSConnection(host, port, timeout=timeout,
                                                 context=ssl.create_default_context())
    else:
        connection = http.client.HTTPConnection(host, port, timeout=timeout)
    headers.setdefault("Connection", "close")
    headers.setdefault("User-Agent", "pytest-mlfunnel")
    if parts.username is not None:
        headers.setdefault("Authorization", secrets.basic_auth(parts.username, parts.password))
    try:
        connection.request(method, target, body=body, headers=headers)
        response = connection.getresponse()
        chunks: list[bytes] = []
        size = 0
        while True:
            remaining = timeout - (time.perf_counter() - started)
            if remaining <= 0:
                raise TimeoutError
            if connection.sock is not None:
                connection.sock.settimeout(remaining)
            chunk = response.read1(65536) if method != "HEAD" else b""
            if not chunk:
                break
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                return HttpAnswer(failure=f"answer larger than {MAX_BODY_BYTES // 2**20} MiB",
                                  elapsed_s=time.perf_counter() - started)
            chunks.append(chunk)
        elapsed = time.perf_counter() - started
        return HttpAnswer(status=response.status, reason=response.reason,
                          headers={k.lower(): v for k, v in response.getheaders()},
                          body=b"".join(chunks), elapsed_s=elapsed)
    except TimeoutError:
        return HttpAnswer(failure=deadline_text, elapsed_s=timeout, timed_out=True)
    except ConnectionRefusedError:
        return HttpAnswer(failure="connection refused", elapsed_s=time.perf_counter() - started)
    except socket.gaierror:
        return HttpAnswer(failure=f"cannot resolve host {host!r}",
                          elapsed_s=time.perf_counter() - started)
    except ssl.SSLError as exc:
        hint = (" (is it a plain HTTP server? its URL starts with http://)"
                if exc.reason in _PLAIN_HTTP_REASONS else "")
        return HttpAnswer(failure=f"TLS error: {exc.reason or exc}{hint}",
                          elapsed_s=time.perf_counter() - started)
    except (ConnectionError, http.client.HTTPException, OSError) as exc:
        words = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        return HttpAnswer(failure=f"connection failed: {words}",
                          elapsed_s=time.perf_counter() - started)
    finally:
        connection.close()


def redirect_target(url: str, answer: HttpAnswer) -> str | None:
    """Where a redirect leads, masked (its query may hold a token), or None for an answer
    that is no redirect: it says why (a login page, https)."""
    location = answer.headers.get("location", "").strip()
    if answer.status is None or not 300 <= answer.status < 400 or not location:
        return None
    try:
        return secrets.mask_url(urljoin(url, location))
    except ValueError:  # "http://[::1/login": the server's Location is no URL
        return "a Location that is not a URL"


def source_timeout(spec: SourceSpec) -> float:
    """``options = { timeout = "5 s" }`` on a URL source; 10 s when not given."""
    raw = spec.timeout_option("metrics URL", "5 s")
    if raw is None:
        return DEFAULT_TIMEOUT_S
    if isinstance(raw, int | float) and not isinstance(raw, bool) and 0 < raw <= 3600:
        return float(raw)
    if isinstance(raw, str):
        try:
            seconds = parse_duration(raw)
        except ExpectationError:
            pass
        else:
            if 0 < seconds <= 3600:
                return seconds
    raise CriterionError(f"{spec.display()}: options.timeout must be seconds or a duration "
                         f"such as '5 s', at most 1 h, got {raw!r}")


def read_http_metrics(spec: SourceSpec, rootdir: Path) -> MetricSet:
    """GET the URL; Prometheus text or OpenMetrics -> series, JSON -> dotted names."""
    assert spec.url is not None
    problem = secrets.ambiguous_url(spec.url)
    if problem is not None:
        raise CriterionError(f"{spec.display()}: {problem}")
    answer = http_call("GET", spec.url, headers={"Accept": _ACCEPT_METRICS},
                       timeout=source_timeout(spec))
    where = spec.display()
    if not answer.answered:
        raise CriterionError(f"{where}: {answer.failure}")
    if answer.status is None or not 200 <= answer.status < 300:
        target = redirect_target(spec.url, answer)
        raise CriterionError(f"{where}: HTTP {answer.status} {answer.reason}".rstrip() + (
            f" to {target} (redirects are not followed)" if target else ""))
    problem = answer.encoding_problem()
    if problem is not None:
        raise CriterionError(f"{where}: {problem}")
    content_type = answer.content_type
    text = answer.body.decode("utf-8", errors="replace")
    forced = (spec.format or "").lower()
    if forced == "json" or (not forced and "json" in content_type):
        try:
            data: Any = parse_json(text)
        except JsonTextError as exc:
            if exc.too_deep:
                raise CriterionError(f"{where}: the JSON is nested too deeply to read") from None
            if exc.column is None:  # an integer of more digits than Python reads
                raise CriterionError(f"{where}: the answer's JSON cannot be read: "
                                     f"{exc.reason}") from None
            raise CriterionError(f"{where}: the answer is not valid JSON "
                                 f"({exc.describe()})") from None
        if not isinstance(data, Mapping):
            raise CriterionError(f"{where}: expected a JSON object of metrics, got "
                                 f"{type(data).__name__}")
        try:
            return MetricSet(flatten(data), where)
        except RecursionError:  # flatten runs out before the decoder does
            raise CriterionError(f"{where}: the JSON is nested too deeply to read") from None
    if forced in ("prom", "openmetrics") or (not forced and (
            "text/plain" in content_type or "openmetrics" in content_type)):
        from pytest_mlfunnel.sources.prometheus import parse_exposition

        openmetrics = forced == "openmetrics" or "openmetrics" in content_type
        return parse_exposition(text, where, openmetrics=openmetrics)
    shown = content_type or "no Content-Type"
    raise CriterionError(f"{where}: answered {shown}; expected Prometheus text exposition "
                         "(text/plain; version=0.0.4), OpenMetrics or JSON")
