"""Reading and validating ``[tool.mlfunnel]``: every problem at once, each with its key path."""

from __future__ import annotations

import functools
import math
import os
import re
import stat
import sys
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from pytest_mlfunnel import secrets
from pytest_mlfunnel.atomic import BOM_IN_TOML, UTF8_BOM, not_utf8, read_regular, special_kind
from pytest_mlfunnel.funnel import DEFAULT_FUNNEL, REPORT_ONLY, Required
from pytest_mlfunnel.history import DEFAULT_HISTORY
from pytest_mlfunnel.kinds import KindRegistry
from pytest_mlfunnel.kinds.base import CheckConfig, slug
from pytest_mlfunnel.render.escape import one_line
from pytest_mlfunnel.services import (
    ServiceSpec,
    check_references,
    parse_services,
    placeholder,
    substitute,
    unplaceholder,
)
from pytest_mlfunnel.sources.spec import SourceSpec, declare_sources
from pytest_mlfunnel.suggest import did_you_mean

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

SECTION = "tool.mlfunnel"
TOP_LEVEL_KEYS = ("require", "funnel", "history", "project", "sources", "services")
_ENV_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-(.*?))?\}")
#: A ``${`` that starts neither ``${NAME}`` nor ``${services.<name>.url}`` (shown up to here)
_NOT_A_REFERENCE_RE = re.compile(r"\$\{(?!services\.)[^}\s/@:?#]{0,40}\}?")
_UNIONS = (typing.Union, types.UnionType)
_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")


class ConfigError(Exception):
    """One or more problems in the config; each is (key path, message)."""

    def __init__(self, file_label: str, problems: list[tuple[str, str]]) -> None:
        self.file_label = file_label
        self.problems = problems
        super().__init__("\n".join(self.lines()))

    def lines(self) -> list[str]:
        """A line per problem, the first ``MAX_PROBLEMS_SHOWN`` of them, then how many more:
        a config generated wrong can hold thousands."""
        # a NUL (from a key or a value) would cut the line short in a terminal: spell it; a
        # newline or an escape sequence in a quoted key would forge lines or recolour it
        shown = [one_line(secrets.redact(f"{self.file_label}: {path}: {message}" if path
                                         else f"{self.file_label}: {message}"
                                         ).replace("\0", "\\0"))
                 for path, message in self.problems[:MAX_PROBLEMS_SHOWN]]
        hidden = len(self.problems) - len(shown)
        if hidden > 0:
            shown.append(f"{self.file_label}: and {hidden} more problems "
                         f"({len(self.problems)} in all)")
        return shown


#: config problems shown one per line; the rest are counted (see ``ConfigError.lines``)
MAX_PROBLEMS_SHOWN = 50


@dataclass(frozen=True)
class CheckEntry:
    gate: str
    name: str  # as written
    kind: str  # the kind key
    config: CheckConfig
    key_path: str
    line: int  # 1-based line of the check in the file, 0 when unknown

    @property
    def slug(self) -> str:
        return slug(self.name)


@dataclass
class FunnelConfig:
    path: Path
    file_label: str
    funnel: list[str]
    require: Required
    history: Path
    project: str
    sources: dict[str, SourceSpec]
    checks: list[CheckEntry] = field(default_factory=list)
    services: dict[str, ServiceSpec] = field(default_factory=dict)
    #: check key path -> the services its strings (or its declared sources) refer to
    service_uses: dict[str, tuple[str, ...]] = field(default_factory=dict)
    #: what ${services.<name>.url} is resolved in when the services run: raw tables
    raw_sources: dict[str, Any] = field(default_factory=dict)
    raw_checks: dict[str, Any] = field(default_factory=dict)


def read_toml(path: Path, file_label: str) -> dict[str, Any]:
    try:
        blob = read_regular(path)
        return tomllib.loads(blob.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(file_label, [("", not_utf8(blob, exc))]) from None
    except FileNotFoundError:
        raise ConfigError(file_label, [("", f"file not found (looked for {path}; pytest's "
                                            "rootdir decides where, or give "
                                            "--funnel-config=PATH)")]) from None
    except OSError as exc:
        raise ConfigError(file_label, [("", f"cannot read: {exc.strerror or exc}")]) from None
    except tomllib.TOMLDecodeError as exc:
        problem = BOM_IN_TOML if blob.startswith(UTF8_BOM) else str(exc)
        raise ConfigError(file_label, [("", f"not valid TOML: {problem}")]) from None
    except ValueError as exc:  # e.g. an integer of more digits than Python converts
        raise ConfigError(file_label, [("", f"not valid TOML: {exc}")]) from None
    except RecursionError:
        raise ConfigError(file_label, [("", "not valid TOML: arrays or tables nested too "
                                            "deeply to read")]) from None


def not_a_file(path: Path) -> str:
    """Why ``path`` is no file to read a config from: missing, a directory, a FIFO ..."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return "file not found"
    if stat.S_ISDIR(mode):
        return "is a directory: give the TOML file in it"
    return f"is {special_kind(mode) or 'not a regular file'}, expected a TOML file"


#: the largest integer TOML holds (64-bit signed)
MAX_INTEGER = 2**63 - 1


def unsound_values(value: Any, key_path: str) -> list[tuple[str, str]]:
    """Values no key can mean, wherever they are: a NUL in a string (no path, URL or name
    holds one; the operating system refuses it), NaN or infinity, an integer beyond 64 bits.
    Found before any check is validated, so nothing later trips over them."""
    if isinstance(value, str):
        if "\0" in value:
            return [(key_path, "contains a NUL character (\\0), which no path, URL or name "
                               "may hold")]
        return []
    if isinstance(value, bool):
        return []
    if isinstance(value, float) and not math.isfinite(value):
        return [(key_path, f"expected a finite number, got {value}")]
    if isinstance(value, int) and abs(value) > MAX_INTEGER:
        return [(key_path, "number out of range (TOML integers are 64-bit: at most "
                           "9223372036854775807 either way)")]
    found: list[tuple[str, str]] = []
    if isinstance(value, dict):
        for key, inner in value.items():
            if "\0" in str(key):
                found.append((f"{key_path}.{str(key).replace(chr(0), '?')}",
                              "a key contains a NUL character (\\0)"))
                continue
            found.extend(unsound_values(inner, f"{key_path}.{key}"))
    elif isinstance(value, list):
        for i, inner in enumerate(value):
            found.extend(unsound_values(inner, f"{key_path}[{i}]"))
    return found


def without_nul_keys(value: Any) -> Any:
    """The tables without the keys ``unsound_values`` reported (a NUL in a key)."""
    if isinstance(value, dict):
        return {k: without_nul_keys(v) for k, v in value.items() if "\0" not in str(k)}
    if isinstance(value, list):
        return [without_nul_keys(v) for v in value]
    return value


def expand_env(value: Any, key_path: str, problems: list[tuple[str, str]],
               environ: dict[str, str] | os._Environ[str] = os.environ) -> Any:
    """Replace ``${NAME}`` / ``${NAME:-default}`` in every string, recording unset names.

    Every string is also shown to ``secrets``: the values it must mask from now on.
    """
    if isinstance(value, str):
        substituted: list[str] = []
        unset: list[str] = []

        def replace(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if name in environ:
                substituted.append(environ[name])
                return environ[name]
            if default is not None:
                return default
            unset.append(name)
            return match.group(0)
        text = _ENV_RE.sub(replace, value)
        # a typo such as "${DB_URL" or "${MODEL URL}" would otherwise stay in the value as
        # text; a service's command line may hold the shell's own "${VAR:?}" for sh -c
        shell = re.match(rf"{re.escape(SECTION)}\.services\.[^.]+\.command\[", key_path)
        for broken in dict.fromkeys(() if shell else _NOT_A_REFERENCE_RE.findall(
                _ENV_RE.sub("", value))):
            problems.append((key_path, f"{broken!r} is not a ${{NAME}} reference (write "
                                       "${NAME} or ${NAME:-default}; a name is letters, "
                                       "digits and _)"))
        if substituted and secrets.counts_as_secret(key_path, text):
            for secret in substituted:
                secrets.register_value(secret)
        for credential in secrets.credentials(key_path, text):
            secrets.register_value(credential, secrets.MIN_LITERAL_LENGTH)
        secrets.register_url(text)
        for name in dict.fromkeys(unset):
            problems.append((key_path, f"environment variable {name} is not set "
                                       f"(write ${{{name}:-default}} to give a default)"))
        return text
    if isinstance(value, dict):
        return {k: expand_env(v, f"{key_path}.{k}", problems, environ) for k, v in value.items()}
    if isinstance(value, list):
        expanded = [expand_env(v, f"{key_path}[{i}]", problems, environ)
                    for i, v in enumerate(value)]
        if re.fullmatch(rf"{re.escape(SECTION)}\.services\.[^.]+\.command", key_path):
            # a token written on a service's command line, after --token or --api-key=
            for credential in secrets.command_credentials(
                    [arg for arg in expanded if isinstance(arg, str)]):
                secrets.register_value(credential, secrets.MIN_LITERAL_LENGTH)
        return expanded
    return value


NO_KIND = "no check kind:"


def _same_file(one: Path, other: Path) -> bool:
    """Whether two paths name one file (a path that cannot be resolved names none)."""
    try:
        return one.resolve() == other.resolve()
    except (OSError, RuntimeError, ValueError):  # a NUL byte, a link loop
        return False


def load_config(path: Path, rootdir: Path, registry: KindRegistry,
                file_label: str | None = None) -> FunnelConfig:
    label = file_label or _label(path, rootdir)
    document = read_toml(path, label)
    section = document.get("tool", {}).get("mlfunnel") if isinstance(
        document.get("tool"), dict) else None
    if section is None:
        raise ConfigError(label, [("", f"no [{SECTION}] section (run 'mlfunnel init' to "
                                       "write a starter one, or give --funnel-config=PATH)")])
    if not isinstance(section, dict):
        raise ConfigError(label, [(SECTION, "expected a table")])
    problems: list[tuple[str, str]] = []
    section = expand_env(section, SECTION, problems)
    problems.extend(unsound_values(section, SECTION))
    section = without_nul_keys(section)
    # a value with an unset variable, an unknown service (or one no key can mean) is reported
    # once, not again by the check it breaks
    causes = list(problems)
    text = _read_text(path)

    funnel = _parse_funnel(section.get("funnel"), problems)
    require = _parse_require(section.get("require"), funnel, problems)
    history = section.get("history", DEFAULT_HISTORY)
    if not isinstance(history, str) or not history.strip():
        problems.append((f"{SECTION}.history", "expected a path string"))
        history = DEFAULT_HISTORY
    elif _same_file(rootdir / history, path):
        problems.append((f"{SECTION}.history", f"{history!r} is this config file: recording "
                         f"would write JSON lines into it; give the history a file of its own "
                         f"(e.g. {DEFAULT_HISTORY!r})"))
    project = section.get("project")
    if project is not None and not isinstance(project, str):
        problems.append((f"{SECTION}.project", "expected a string"))
        project = None
    if project is None:
        meta = document.get("project")
        project = meta.get("name") if isinstance(meta, dict) else None
    if not isinstance(project, str) or not project:
        project = rootdir.name

    raw_services = section.get("services", {})
    services, service_problems = parse_services(raw_services, f"{SECTION}.services")
    problems.extend(service_problems)
    # declared, even when broken: its own problems are reported, not each reference to it
    declared = list(raw_services) if isinstance(raw_services, dict) else []
    # ${services.<name>.url} is validated with a stand-in URL and resolved when it is used
    stand_ins = {name: placeholder(name) for name in declared}
    raw_sources = section.get("sources", {})
    sources: dict[str, SourceSpec] = {}
    source_uses: dict[str, set[str]] = {}
    if not isinstance(raw_sources, dict):
        problems.append((f"{SECTION}.sources", "expected a table of named sources"))
        raw_sources = {}
    else:
        for source_name, source_table in raw_sources.items():
            used, reference_problems = check_references(
                source_table, f"{SECTION}.sources.{source_name}", declared)
            source_uses[source_name] = used
            problems.extend(reference_problems)
            causes.extend(reference_problems)
        sources, source_problems = declare_sources(substitute(raw_sources, stand_ins),
                                                   f"{SECTION}.sources")
        problems.extend(source_problems)
    service_uses: dict[str, tuple[str, ...]] = {}
    raw_checks: dict[str, Any] = {}

    checks: list[CheckEntry] = []
    for key, value in section.items():
        if key in TOP_LEVEL_KEYS:
            continue
        if key not in funnel:
            if isinstance(value, dict):
                problems.append((f"{SECTION}.{key}", f"unknown gate {key!r} (the funnel is: "
                                                     f"{', '.join(funnel)})"
                                                     f"{did_you_mean(key, funnel)}"))
            else:
                allowed = ", ".join(TOP_LEVEL_KEYS)
                hint = did_you_mean(key, TOP_LEVEL_KEYS)
                problems.append((f"{SECTION}.{key}", f"unknown key{hint}" if hint else
                                 f"unknown key (allowed: {allowed}, or a gate table)"))
            continue
        if not isinstance(value, dict):
            problems.append((f"{SECTION}.{key}", "expected a table of checks, e.g. "
                                                 f"[{SECTION}.{key}.<check-name>]"))
            continue
        for name, check_table in value.items():
            key_path = f"{SECTION}.{key}.{name}"
            used, reference_problems = check_references(check_table, key_path, declared)
            problems.extend(reference_problems)
            causes.extend(reference_problems)
            used |= {service for source_name in _strings_in(check_table)
                     for service in source_uses.get(source_name, ())}
            if used:
                service_uses[key_path] = tuple(sorted(used))
                raw_checks[key_path] = check_table
                check_table = substitute(check_table, stand_ins)
            entry = _parse_check(key, name, check_table, registry, sources, text, problems)
            if entry is not None:
                checks.append(entry)

    if problems:
        problems = _one_per_broken_value(problems, causes)
        if any(message.startswith(NO_KIND) for _, message in problems):
            hint = _late_kinds_hint(rootdir)
            problems = [(where, message + hint if message.startswith(NO_KIND) else message)
                        for where, message in problems]
        raise ConfigError(label, [(where, unplaceholder(message, declared))
                                  for where, message in problems])
    return FunnelConfig(path=path, file_label=label, funnel=funnel, require=require,
                        history=(rootdir / history), project=project, sources=sources,
                        checks=checks, services=services, service_uses=service_uses,
                        raw_sources=raw_sources, raw_checks=raw_checks)


def _strings_in(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [text for item in value.values() for text in _strings_in(item)]
    if isinstance(value, list):
        return [text for item in value for text in _strings_in(item)]
    return []


def resolve_services(config: FunnelConfig, entry: CheckEntry, urls: dict[str, str],
                     registry: KindRegistry) -> CheckEntry:
    """The check validated again with the services' real URLs in place of the stand-ins."""
    problems: list[tuple[str, str]] = []
    sources, source_problems = declare_sources(substitute(config.raw_sources, urls),
                                               f"{SECTION}.sources")
    problems.extend(source_problems)
    table = substitute(config.raw_checks[entry.key_path], urls)
    resolved = _parse_check(entry.gate, entry.name, table, registry, sources, "", problems)
    if problems or resolved is None:
        raise ConfigError(config.file_label, problems)
    return CheckEntry(gate=entry.gate, name=entry.name, kind=entry.kind,
                      config=resolved.config, key_path=entry.key_path, line=entry.line)


#: Folders never searched for a conftest.py defining check kinds.
_NOT_SEARCHED = frozenset({"node_modules", "__pycache__", "venv", "site-packages", "build",
                           "dist"})
#: Folders searched at most (the search runs only when a check has no known kind).
_SEARCH_LIMIT = 2000


def _late_kinds_hint(rootdir: Path) -> str:
    """Why a kind may be unknown: a conftest.py below the rootdir defines the hook, but pytest
    reads it during collection, after the config (at startup pytest reads only the rootdir's
    conftest.py and those of ``test*`` folders right below it)."""
    seen = 0
    for folder, subfolders, files in os.walk(rootdir):
        subfolders[:] = sorted(d for d in subfolders
                               if not d.startswith(".") and d not in _NOT_SEARCHED)
        seen += 1
        if seen > _SEARCH_LIMIT:
            break
        here = Path(folder)
        read_at_startup = here == rootdir or (here.parent == rootdir
                                              and here.name.startswith("test"))
        if "conftest.py" not in files or read_at_startup:
            continue
        conftest = Path(folder) / "conftest.py"
        try:
            defines = "def pytest_mlfunnel_check_kinds" in conftest.read_text(
                encoding="utf-8", errors="replace")
        except OSError:
            continue
        if defines:
            return (f" ({conftest.relative_to(rootdir).as_posix()} defines "
                    "pytest_mlfunnel_check_kinds, but a conftest.py in a subfolder is read "
                    "after the config: move the hook to the rootdir's conftest.py or a plugin)")
    return ""


def _one_per_broken_value(problems: list[tuple[str, str]], causes: list[tuple[str, str]]
                          ) -> list[tuple[str, str]]:
    """Drop the other problems of a value whose variable is unset or whose service is
    unknown: they follow from it."""
    paths = tuple(path for path, _ in causes)
    return [(path, message) for path, message in problems
            if (path, message) in causes
            or not any(path == cause or path.startswith((f"{cause}.", f"{cause}["))
                       for cause in paths)]


def _label(path: Path, rootdir: Path) -> str:
    try:
        return str(path.resolve().relative_to(rootdir.resolve()))
    except ValueError:
        return str(path)


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def _parse_funnel(raw: Any, problems: list[tuple[str, str]]) -> list[str]:
    if raw is None:
        return list(DEFAULT_FUNNEL)
    where = f"{SECTION}.funnel"
    if not isinstance(raw, list) or not raw or not all(isinstance(g, str) for g in raw):
        problems.append((where, "expected a non-empty list of gate names"))
        return list(DEFAULT_FUNNEL)
    seen: set[str] = set()
    for gate in raw:
        if gate in seen:
            problems.append((where, f"gate {gate!r} appears twice"))
        elif not _NAME_RE.match(gate) or gate in TOP_LEVEL_KEYS or gate == REPORT_ONLY:
            problems.append((where, f"{gate!r} cannot be a gate name (only ASCII letters, "
                                    "digits and _ . -, not first: . -; not a reserved key)"))
        seen.add(gate)
    return list(dict.fromkeys(raw))


def _parse_require(raw: Any, funnel: list[str], problems: list[tuple[str, str]]) -> Required:
    if raw is None:
        return Required()
    if not isinstance(raw, str) or (raw != REPORT_ONLY and raw not in funnel):
        hint = did_you_mean(raw, [*funnel, REPORT_ONLY]) if isinstance(raw, str) else ""
        problems.append((f"{SECTION}.require",
                         f"expected a gate name or '{REPORT_ONLY}', got {raw!r} (gates: "
                         f"{', '.join(funnel)}){hint}"))
        return Required()
    return Required.parse(raw)


def _parse_check(gate: str, name: str, table: Any, registry: KindRegistry,
                 sources: dict[str, SourceSpec], text: str,
                 problems: list[tuple[str, str]]) -> CheckEntry | None:
    key_path = f"{SECTION}.{gate}.{name}"
    if not isinstance(table, dict):
        problems.append((key_path, f"expected a check table with one kind key "
                                   f"({', '.join(registry.keys)})"))
        return None
    if not _NAME_RE.match(name):
        problems.append((key_path, "a check name may use only ASCII letters, digits and "
                                   "_ . - (not first: . -)"))
        return None
    kinds = [k for k in table if k in registry.keys]
    if not kinds:
        problems.extend(_no_kind(key_path, table, registry))
        return None
    if len(kinds) > 1:
        problems.append((key_path, f"two kind keys in one check: {', '.join(kinds)} "
                                   "(split it into two checks)"))
        return None
    kind_key = kinds[0]
    try:
        kind = registry.get(kind_key)
    except Exception as exc:  # a broken third-party kind must not crash collection
        problems.append((key_path, f"check kind {kind_key!r} cannot be loaded: {exc}"))
        return None
    loose = _loose_booleans(kind.config_model, table, key_path)
    try:
        config = kind.config_model.model_validate(
            table, context={"sources": sources, "key_path": key_path})
    except ValidationError as exc:
        problems.extend(loose)
        problems.extend(p for p in _pydantic_problems(exc, key_path, kind.config_model)
                        if p not in loose)
        return None
    if loose:
        problems.extend(loose)
        return None
    return CheckEntry(gate=gate, name=name, kind=kind_key, config=config, key_path=key_path,
                      line=find_line(text, gate, name))


def _pydantic_problems(exc: ValidationError, key_path: str, model: type[CheckConfig]
                       ) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    for error in exc.errors(include_url=False):
        loc = [str(part) for part in error["loc"] if not _is_union_tag(part)]
        path = key_path
        for part in loc:
            path += f"[{part}]" if part.isdigit() else f".{part}"
        kind = error["type"]
        message = str(error["msg"])
        shown = kind in ("extra_forbidden", "missing", "value_error")  # the input, if any
        if kind == "extra_forbidden":
            allowed = _allowed_keys(model, loc[:-1])
            hint = did_you_mean(loc[-1], allowed) if loc else ""
            message = f"unknown key{hint}" + (f" (allowed: {', '.join(allowed)})"
                                              if allowed else "")
        elif kind == "missing":
            message = "missing required key"
        elif kind in ("model_type", "dict_type", "list_type"):
            # pydantic's wording names the model class ('instance of ColumnRules'), not TOML
            allowed = _allowed_keys(model, loc) if kind == "model_type" else []
            message = ("expected a list" if kind == "list_type" else "expected a table"
                       + (f" (keys: {', '.join(allowed)})" if allowed else ""))
            if "input" in error:
                message += f", got {error['input']!r}"
            shown = True
        elif message.startswith("Value error, "):
            message = message[len("Value error, "):]
        elif message.startswith("Assertion failed, "):
            message = message[len("Assertion failed, "):]
        if loc and message.startswith(f"{loc[-1]}: "):  # the key path names it already
            message = message[len(loc[-1]) + 2:]
        if "input" in error and not shown:
            message += f" (got {error['input']!r})"
        entry = (path, message)
        if entry not in problems:
            problems.append(entry)
    return problems


def _is_union_tag(part: Any) -> bool:
    # pydantic puts the union member's name in the loc (e.g. "str", "list[str]")
    return isinstance(part, str) and (part in {"str", "int", "float", "bool"}
                                      or "[" in part or part.startswith(("function-", "lax-")))


def _allowed_keys(model: type[CheckConfig], loc: list[str]) -> list[str]:
    current: Any = model
    mapping = False  # the last field was a table of named entries (columns.<col>)
    for part in loc:
        fields = getattr(current, "model_fields", None)
        if mapping and (not fields or part not in fields):
            mapping = False
            continue
        if not fields or part not in fields:
            return []
        annotation = fields[part].annotation
        mapping = _is_mapping(annotation)
        current = _model_in(annotation)
        if current is None:
            return []
    fields = getattr(current, "model_fields", None)
    return [field.alias or name for name, field in fields.items()] if fields else []


def _is_mapping(annotation: Any) -> bool:
    if typing.get_origin(annotation) is dict:
        return True
    return typing.get_origin(annotation) in _UNIONS and any(
        _is_mapping(arg) for arg in typing.get_args(annotation))


def _no_kind(key_path: str, table: dict[str, Any], registry: KindRegistry
             ) -> list[tuple[str, str]]:
    """A check without a kind key: a misspelled kind gets a did-you-mean, else the keys seen."""
    kinds = registry.keys
    others = [key for key in table if key not in CheckConfig.model_fields]
    known: set[str] = set()  # keys some kind accepts (expect, rows ...) are not typos of kinds
    for name in kinds:
        try:
            fields = registry.get(name).config_model.model_fields
        except Exception:  # a broken third-party kind is reported where it is used
            continue
        known.update(info.alias or field for field, info in fields.items())
    typos = [(key, did_you_mean(key, kinds)) for key in others if key not in known]
    found = [(f"{key_path}.{key}", f"unknown key{hint}") for key, hint in typos if hint]
    if found:
        return found
    seen = ""
    if others:
        one = len(others) == 1
        seen = (f"; found {', '.join(others)}, which "
                f"{'is not a kind key' if one else 'are not kind keys'}")
    return [(key_path, f"{NO_KIND} give exactly one of {', '.join(kinds)}{seen}")]


def _is_bool(annotation: Any) -> bool:
    if annotation is bool:
        return True
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    return typing.get_origin(annotation) in _UNIONS and args == [bool]


def _loose_booleans(model: Any, table: Any, key_path: str) -> list[tuple[str, str]]:
    """``unique = "yes"`` is not a boolean: pydantic would accept it, the config does not."""
    fields = getattr(model, "model_fields", None)
    if not fields or not isinstance(table, dict):
        return []
    problems: list[tuple[str, str]] = []
    for name, info in fields.items():
        key = info.alias or name
        if key not in table:
            continue
        value, here = table[key], f"{key_path}.{key}"
        if _is_bool(info.annotation):
            if not isinstance(value, bool):
                problems.append((here, f"expected true or false, got {value!r}"))
            continue
        inner = _model_in(info.annotation)
        if inner is None or not isinstance(value, dict):
            continue
        if _is_mapping(info.annotation):
            for entry, rules in value.items():
                problems.extend(_loose_booleans(inner, rules, f"{here}.{entry}"))
        else:
            problems.extend(_loose_booleans(inner, value, here))
    return problems


def _model_in(annotation: Any) -> Any:
    if isinstance(annotation, type) and hasattr(annotation, "model_fields"):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def find_line(text: str, gate: str, name: str) -> int:
    """The 1-based line where a check is written (its table header, else its key), 0 when
    unknown. The file is indexed once (not searched once per check: that made loading
    thousands of checks quadratic)."""
    return _line_index(text).line(gate, name)


_KEY_PART = r"""[A-Za-z0-9_\-]+|"(?:[^"\\\n]|\\.)*"|'[^'\n]*'"""
_DOTTED = rf"(?:{_KEY_PART})(?:\s*\.\s*(?:{_KEY_PART}))*"
_HEADER_RE = re.compile(rf"^\s*\[\s*({_DOTTED})\s*(\]|\.)")
_KEY_RE = re.compile(rf"^\s*({_DOTTED})\s*[.=]")
_PART_RE = re.compile(_KEY_PART)


def _parts(dotted: str) -> tuple[str, ...]:
    # quoted parts compare by what is between the quotes, as written
    return tuple(p[1:-1] if p[0] in "\"'" else p for p in _PART_RE.findall(dotted))


class _LineIndex:
    """First lines of table headers and dotted keys, by the key parts that locate a check."""

    def __init__(self, text: str) -> None:
        self.header: dict[tuple[str, str], int] = {}  # [tool.mlfunnel.<gate>.<name>]
        self.subtable: dict[tuple[str, str], int] = {}  # [tool.mlfunnel.<gate>.<name>.x]
        self.dotted: dict[tuple[str, str], int] = {}  # <gate>.<name> = / <gate>.<name>.x =
        self.key: dict[str, int] = {}  # <name> = / <name>.x =
        for number, line in enumerate(text.splitlines(), 1):
            header = _HEADER_RE.match(line)
            if header:
                parts = _parts(header.group(1))
                if len(parts) >= 4 and parts[:2] == ("tool", "mlfunnel"):
                    place = (parts[2], parts[3])
                    if len(parts) == 4 and header.group(2) == "]":
                        self.header.setdefault(place, number)
                    else:
                        self.subtable.setdefault(place, number)
                continue
            key = _KEY_RE.match(line)
            if key:
                parts = _parts(key.group(1))
                self.key.setdefault(parts[0], number)
                if len(parts) >= 2:
                    self.dotted.setdefault((parts[0], parts[1]), number)

    def line(self, gate: str, name: str) -> int:
        place = (gate, name)
        return (self.header.get(place) or self.subtable.get(place) or self.dotted.get(place)
                or self.key.get(name) or 0)


@functools.lru_cache(maxsize=4)
def _line_index(text: str) -> _LineIndex:
    return _LineIndex(text)
