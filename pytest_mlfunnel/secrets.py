"""The secrets of this process, and ``redact``: the one way text leaves it.

CI systems mask registered secrets by value; so does this module. The set is filled while
the config is read (``config.expand_env`` hands every string over), so every process that
reads the same config -- the controller, each xdist worker, the ``mlfunnel`` command --
holds the same set. What is registered (docs/configuration.md, "Secrets"):

- a value substituted from ``${NAME}`` into a URL or DSN (a string that starts with
  ``scheme://``), into any string under a ``headers``, ``options``, ``json`` or ``env``
  table, or into the value of a ``url`` or ``http`` key;
- a credential written under a ``headers``, ``env`` or ``options`` table whose name says it
  is one (``credentials``), literal or not;
- every URL's password, and its user and query values, as written and percent-decoded
  (a part also written in the URL's scheme, host or path, such as the user ``postgres`` of
  ``postgresql://``, is masked only in place);
- a URL that cannot be parsed, whole.

Each URL of the config is also registered whole, to be shown with its user, password and
query values as ``***`` wherever it appears. Values shorter than ``MIN_LENGTH`` characters
are masked only inside their URL: replacing every ``80`` or ``dev`` in every output would
garble the output without hiding anything a person could not guess.

Standard library only, and nothing of the plugin: the core layer.
"""

from __future__ import annotations

import base64
import contextlib
import html
import json
import re
import shlex
from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import quote, quote_plus, unquote, unquote_plus, urlsplit

MASK = "***"
#: Values shorter than this are not masked by value (see the module docstring).
MIN_LENGTH = 4
#: Literal user names and query values are masked by value only from this length on:
#: ``?format=json`` must not turn every ``eval.json`` into ``eval.***``.
MIN_LITERAL_LENGTH = 8
#: Tables whose strings are secret when they hold a substituted value.
SECRET_TABLES = frozenset({"headers", "options", "json", "env"})
#: Keys whose value is secret when it holds a substituted value (``command``: a service's
#: arguments, which its log and the tail under a failure show).
SECRET_KEYS = frozenset({"url", "http", "command"})

#: Tables whose entries are credentials when their names say so, even written literally.
CREDENTIAL_TABLES = frozenset({"headers", "env", "options"})
#: A header or environment variable name that says its value is a credential.
_CREDENTIAL_NAME_RE = re.compile(
    r"authori[sz]ation|auth(?!or)|cookie|token|secret|passw|pwd|credential|signature"
    r"|(?:^|[-_])(?:api[-_]?)?key(?:$|[-_])|apikey", re.IGNORECASE)
_URL_RE = re.compile(r"^\s*[A-Za-z][A-Za-z0-9+.\-]*://")
_KEY_PATH_PART_RE = re.compile(r"\[[^\]]*\]")
_UNSAFE_IN_URL_RE = re.compile(r"[\s\x00-\x1f\x7f#]")

_values: set[str] = set()
_urls: set[str] = set()
_compiled: tuple[re.Pattern[str], dict[str, str]] | None = None


def clear() -> None:
    """Forget every secret (a new pytest run in the same process starts empty)."""
    global _compiled
    _values.clear()
    _urls.clear()
    _compiled = None


def registered() -> frozenset[str]:
    """The values masked by value (for tests and for passing the set on)."""
    return frozenset(_values)


def is_url(text: str) -> bool:
    return bool(_URL_RE.match(text))


def counts_as_secret(key_path: str, text: str) -> bool:
    """Whether a value substituted into ``text`` at ``key_path`` is a secret."""
    if is_url(text):
        return True
    parts = [part for part in _KEY_PATH_PART_RE.sub("", key_path).split(".") if part]
    if parts and parts[-1] in SECRET_KEYS:
        return True
    return any(part in SECRET_TABLES for part in parts)


def credentials(key_path: str, text: str) -> list[str]:
    """The credential a string written in the config holds, substituted or not: a value under
    a ``headers``, ``env`` or ``options`` table whose name says it is one (``Authorization``,
    ``Cookie``, ``X-Api-Key``, ``MODEL_TOKEN``, ``password``): the value, or what follows an
    auth scheme (``Bearer``) or a cookie's name."""
    parts = [part for part in _KEY_PATH_PART_RE.sub("", key_path).split(".") if part]
    names = [parts[i + 1] for i in range(len(parts) - 1) if parts[i] in CREDENTIAL_TABLES]
    if not names or not _CREDENTIAL_NAME_RE.search(names[-1]) or not text.strip():
        return []
    value = text.strip()
    scheme, _, credential = value.partition(" ")
    if credential.strip() and scheme.isalpha():  # "Bearer <token>" reads "Bearer ***"
        return [credential.strip()]
    name, equals, cookie = value.partition("=")
    if equals and cookie.strip() and " " not in name:  # "session=<value>"
        return [cookie.strip()]
    return [value]


def command_credentials(args: Sequence[str]) -> list[str]:
    """The credentials written on a command line, substituted or not: what follows a flag
    whose name says it is one (``--token X``, ``--api-key=X``, ``-password X``), also inside
    an argument that is a shell command line of its own (``sh -c "serve --token X"``)."""
    found: list[str] = []
    for i, arg in enumerate(args):
        if any(c.isspace() for c in arg.strip()):
            # an unclosed quote: not a command line of its own
            with contextlib.suppress(ValueError):
                found += command_credentials(shlex.split(arg))
        if not arg.startswith("-"):
            continue
        name, equals, value = arg.lstrip("-").partition("=")
        if not name or not _CREDENTIAL_NAME_RE.search(name):
            continue
        if equals:
            found.append(value)
        elif i + 1 < len(args) and not args[i + 1].startswith("-"):
            found.append(args[i + 1])
    return [value for value in found if value.strip()]


def register_value(value: str, min_length: int = MIN_LENGTH) -> None:
    """Mask ``value`` (and its encoded forms) in every output from now on."""
    global _compiled
    value = value.strip() if value.strip() else value
    if len(value) < max(min_length, 1) or value in _values:
        return
    _values.add(value)
    _compiled = None


def register_url(url: str) -> None:
    """Register a URL of the config: whole, and its user, password and query values."""
    global _compiled
    text = url.strip()
    if not is_url(text):
        return
    if text not in _urls:
        _urls.add(text)
        _compiled = None
    if _split(_by_value(text)) is None:
        register_value(text, min_length=1)
        return
    parts = _split(text)
    if parts is None:  # ambiguous only where a registered value sits: that one is masked
        return
    netloc, rest = parts[1], f"{parts[0]}://{parts[1].rpartition('@')[2]}{parts[2]}"
    user_info = netloc.rpartition("@")[0] if "@" in netloc else ""
    user, _, password = user_info.partition(":")
    for written in (password, unquote(password)):
        if written not in rest:
            register_value(written)
    # the Authorization header an http check sends, which a server may echo; a user alone
    # (https://TOKEN@host) when it is as long as a literal secret is
    if password or len(unquote(user)) >= MIN_LITERAL_LENGTH:
        register_value(basic_auth(user, password).split()[1])
    pieces = [user] + [value for _, value in _query_pairs(parts[3])]
    for piece in pieces:
        for written in (piece, unquote(piece), unquote_plus(piece)):
            if written and written not in rest:
                register_value(written, MIN_LITERAL_LENGTH)


def basic_auth(user: str, password: str | None) -> str:
    """The ``Authorization`` value for a URL's user and password as written in it: userinfo is
    percent-encoded (``p%40ss`` for ``p@ss``), the header carries the decoded text."""
    pair = f"{unquote(user)}:{unquote(password or '')}"
    return "Basic " + base64.b64encode(pair.encode("utf-8")).decode("ascii")


def ambiguous_url(url: str) -> str | None:
    """Why a URL cannot be used as written (a password with ``#`` unescaped), or None."""
    text = url.strip()
    if not is_url(text) or _split(text) is not None:
        return None
    if "@" not in text.split("://", 1)[1] and not _UNSAFE_IN_URL_RE.search(text):
        # no user or password to blame
        return ("the URL's host or port cannot be read (a port is a number such as :8000; "
                "an IPv6 address is written in brackets: http://[::1]:8000/)")
    return ("the URL cannot be read with certainty (percent-encode a user or password: "
            "# as %23, @ as %40, / as %2F, ? as %3F, a space as %20)")


def _split(text: str) -> tuple[str, str, str, str] | None:
    """(scheme, netloc, path, query) of a URL, None when it cannot be read with certainty.

    A password holding ``#``, ``/``, ``?`` or ``@`` unescaped makes the URL ambiguous:
    where the host starts is a guess, so the whole URL counts as secret.
    """
    if _UNSAFE_IN_URL_RE.search(text):
        return None
    try:
        parts = urlsplit(text)
        parts.hostname  # noqa: B018 - raises on a bad IPv6 literal
    except ValueError:
        return None
    if "@" in parts.path or "@" in parts.query or parts.netloc.count("@") > 1:
        return None
    host = parts.netloc.rpartition("@")[2]
    port = host.rpartition("]")[2].rpartition(":")[2] if ":" in host.rpartition("]")[2] else ""
    # a service's URL holds "{port}" until the service runs
    if port and not port.isdigit() and MASK not in port and port != "{port}":
        return None
    if "@" in parts.netloc and not host:
        return None
    return parts.scheme, parts.netloc, parts.path, parts.query


def _query_pairs(query: str) -> list[tuple[str, str]]:
    pairs = []
    for piece in re.split(r"[&;]", query):
        if piece:
            name, sep, value = piece.partition("=")
            pairs.append((name, value) if sep else ("", name))
    return pairs


def _forms(value: str) -> Iterable[str]:
    """How a value can appear in text: as is, percent-encoded, quoted by repr, JSON, HTML."""
    yield value
    yield quote(value, safe="")
    yield quote(value)
    yield quote_plus(value)
    yield repr(value)[1:-1]
    yield json.dumps(value)[1:-1]
    yield json.dumps(value, ensure_ascii=False)[1:-1]
    yield html.escape(value)
    yield html.escape(value, quote=False)


def mask_url(url: str) -> str:
    """A URL with its user, password and query values shown as ``***`` (the whole URL when
    it cannot be read with certainty), registered values masked too."""
    text = _by_value(url.strip())
    if not is_url(text):  # a registered value held the scheme and host
        return text
    parts = _split(text)
    if parts is None:
        return MASK
    scheme, netloc, path, query = parts
    if "@" in netloc:
        user_info, _, host = netloc.rpartition("@")
        netloc = (f"{MASK}:{MASK}" if ":" in user_info else MASK) + "@" + host
    shown = f"{scheme}://{netloc}{path}"
    if query:
        shown += "?" + "&".join(f"{name}={MASK}" if name else MASK
                                for name, _ in _query_pairs(query))
    return shown


def _by_value(text: str) -> str:
    """``text`` with registered values masked (not registered URLs)."""
    if not _values:
        return text
    keys = sorted({form for value in _values for form in _forms(value) if form},
                  key=len, reverse=True)
    pattern = re.compile("|".join(re.escape(key) for key in keys))
    return pattern.sub(MASK, text)


def _pattern() -> tuple[re.Pattern[str], dict[str, str]]:
    global _compiled
    if _compiled is None:
        replacements: dict[str, str] = {}
        for value in _values:
            for form in _forms(value):
                if form:
                    replacements[form] = MASK
        for url in _urls:
            masked = mask_url(url)
            if masked != url:
                replacements[url] = masked
        keys = sorted(replacements, key=len, reverse=True)
        pattern = re.compile("|".join(re.escape(key) for key in keys) or r"(?!x)x")
        _compiled = (pattern, replacements)
    return _compiled


def redact(text: str) -> str:
    """``text`` with every registered secret replaced by ``***``."""
    if not text or not (_values or _urls):
        return text
    pattern, replacements = _pattern()
    return pattern.sub(lambda match: replacements[match.group(0)], text)


def redact_data(value: Any) -> Any:
    """A JSON-like value (dicts, lists, strings) with every string redacted, keys too."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {redact_data(key): redact_data(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [redact_data(item) for item in value]
    return value
