"""Hostile config values are refused when the config is read: exit 4 with the key path, never a
traceback or a crash later in the run."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_mlfunnel.config import ConfigError, load_config
from pytest_mlfunnel.kinds import KindRegistry

EFFECT = '[tool.mlfunnel.effectiveness.lift]\neffect = "kpi.csv"\nmetric = "m"\nby = "p"\n' \
         'expect = "decrease"\n'
HTTP = '[tool.mlfunnel.deployment.health]\nhttp = "http://127.0.0.1:9/health"\n'
DATA = '[tool.mlfunnel.data.train]\ndataset = "train.parquet"\n'
METRICS = '[tool.mlfunnel.model.quality]\nmetrics = "eval.json"\n'


def problems(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "pyproject.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path, tmp_path, KindRegistry())
    return caught.value.lines()


HOSTILE = [
    pytest.param('[tool.mlfunnel]\nhistory = "h\\u0000.jsonl"\n',
                 "pyproject.toml: tool.mlfunnel.history: contains a NUL character (\\0), which "
                 "no path, URL or name may hold", id="nul-in-history"),
    pytest.param(DATA.replace("train.parquet", "tr\\u0000ain.parquet") + 'rows = ">= 1"\n',
                 "pyproject.toml: tool.mlfunnel.data.train.dataset: contains a NUL character "
                 "(\\0), which no path, URL or name may hold", id="nul-in-a-source-path"),
    pytest.param(HTTP + "timeout = \"1e300 s\"\n",
                 "pyproject.toml: tool.mlfunnel.deployment.health.timeout: duration out of "
                 "range: '1e300 s' (at most 100 years)",
                 id="timeout-1e300"),
    pytest.param(HTTP + "timeout = inf\n",
                 "pyproject.toml: tool.mlfunnel.deployment.health.timeout: expected a finite "
                 "number, got inf", id="timeout-inf"),
    pytest.param(EFFECT + "seed = 1000000000000000000000000000000\n",
                 "pyproject.toml: tool.mlfunnel.effectiveness.lift.seed: number out of range "
                 "(TOML integers are 64-bit: at most 9223372036854775807 either way)",
                 id="seed-10**30"),
    pytest.param(EFFECT + "seed = 4294967296\n",
                 "pyproject.toml: tool.mlfunnel.effectiveness.lift.seed: Input should be less "
                 "than or equal to 2147483647 (got 4294967296)", id="seed-beyond-31-bits"),
    pytest.param(EFFECT + "max_rows = 1000000000000\n",
                 "pyproject.toml: tool.mlfunnel.effectiveness.lift.max_rows: Input should be "
                 "less than or equal to 1000000000 (got 1000000000000)", id="max-rows"),
    pytest.param(METRICS + 'expect = { accuracy = ">= 1_000_" }\n',
                 "pyproject.toml: tool.mlfunnel.model.quality.expect.accuracy: not a valid "
                 "expectation: '>= 1_000_' (VALUE must be a number, a percentage, a duration or "
                 "baseline arithmetic; _ goes only between digits, as in 1_000; e.g. '>= 0.8', "
                 "'<= 5%', '<= 30 days', '>= baseline + 0.01')", id="trailing-underscore"),
    pytest.param(METRICS + 'expect = { accuracy = ">= 1e999" }\n',
                 "pyproject.toml: tool.mlfunnel.model.quality.expect.accuracy: number out of "
                 "range: '1e999' (a finite number, at most about 1.8e308)",
                 id="expectation-overflows"),
    pytest.param(DATA + 'columns.seen = { max_age = "1e300 days" }\n',
                 "pyproject.toml: tool.mlfunnel.data.train.columns.seen.max_age: duration out "
                 "of range: '1e300 days' (at most 100 years)", id="duration-1e300-days"),
    pytest.param(DATA + "columns.age = { min = nan }\n",
                 "pyproject.toml: tool.mlfunnel.data.train.columns.age.min: expected a finite "
                 "number, got nan", id="nan-bound"),
    pytest.param(HTTP + "requests = 1000000000000000000000000000000\n",
                 "pyproject.toml: tool.mlfunnel.deployment.health.requests: number out of range "
                 "(TOML integers are 64-bit: at most 9223372036854775807 either way)",
                 id="huge-count"),
]


@pytest.mark.parametrize(("text", "expected"), HOSTILE)
def test_a_hostile_value_is_refused_at_load_naming_its_key(tmp_path: Path, text: str,
                                                           expected: str) -> None:
    assert problems(tmp_path, text) == [expected]


def test_a_value_no_key_can_mean_is_reported_once(tmp_path: Path) -> None:
    """NaN in a check: one line for the value, none more from the check it breaks."""
    lines = problems(tmp_path, METRICS + "expect = { accuracy = nan }\n")
    assert lines == ["pyproject.toml: tool.mlfunnel.model.quality.expect.accuracy: expected a "
                     "finite number, got nan"]


def test_underscores_between_digits_still_read_as_numbers(tmp_path: Path) -> None:
    path = tmp_path / "pyproject.toml"
    path.write_text(METRICS + 'expect = { rows = ">= 1_000_000", share = "<= 0.000_5" }\n')
    (entry,) = load_config(path, tmp_path, KindRegistry()).checks
    assert {k: e.value for k, e in entry.config.expect.items()} == {  # type: ignore[attr-defined]
        "rows": 1_000_000.0, "share": 0.0005}


def test_invalid_utf8_in_the_config_file_is_exit_4_naming_the_byte(
        pytester: pytest.Pytester) -> None:
    pytester.makepyprojecttoml("[tool.pytest.ini_options]\n")
    (pytester.path / "funnel.toml").write_bytes(b'[tool.mlfunnel]\nproject = "caf\xe9"\n')
    result = pytester.runpytest("--funnel", "--funnel-config", "funnel.toml")
    assert result.ret == 4
    result.stderr.fnmatch_lines(["ERROR: funnel.toml: not valid UTF-8: byte 0xe9 at line 2, "
                                 "column 15 (TOML files are UTF-8; save the file as UTF-8)"])
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()


def test_mlfunnel_history_says_the_config_is_not_utf8(tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]
                                                       ) -> None:
    from pytest_mlfunnel.cli import main

    (tmp_path / "funnel.toml").write_bytes(b'[tool.mlfunnel]\nhistory = "h\xff.jsonl"\n')
    assert main(["history", "--config", str(tmp_path / "funnel.toml")]) == 2
    assert capsys.readouterr().err.strip() == (
        f"mlfunnel: error: {tmp_path / 'funnel.toml'}: cannot read: not valid UTF-8: byte 0xff "
        "at line 2, column 13 (TOML files are UTF-8; save the file as UTF-8)")


def test_a_check_name_with_a_newline_or_escape_is_refused_on_one_line(
        pytester: pytest.Pytester) -> None:
    # a quoted TOML key may hold anything: the message named it raw, so a newline forged a
    # second error line and an escape sequence recoloured the terminal
    pytester.makepyprojecttoml('[tool.mlfunnel.data."a\\nERROR: forged\\u001b[31m"]\n'
                               'dataset = "t.csv"\nrows = ">= 1"\n')
    result = pytester.runpytest("--funnel")
    assert result.ret == 4
    assert result.stderr.lines[0] == (
        "ERROR: pyproject.toml: tool.mlfunnel.data.a\\nERROR: forged\\x1b[31m: a check name "
        "may use only ASCII letters, digits and _ . - (not first: . -)")
    assert "\x1b" not in result.stderr.str()
    assert not any(line.startswith("ERROR: forged") for line in result.stderr.lines)


def test_a_nul_in_history_stops_the_run_before_it_starts(pytester: pytest.Pytester) -> None:
    pytester.makepyprojecttoml('[tool.mlfunnel]\nhistory = "h\\u0000.jsonl"\n'
                               '[tool.mlfunnel.data.train]\ndataset = "t.csv"\nrows = ">= 1"\n')
    result = pytester.runpytest("--funnel", "--funnel-record")
    assert result.ret == 4
    result.stderr.fnmatch_lines(["ERROR: pyproject.toml: tool.mlfunnel.history: contains a NUL "
                                 "character (\\0), which no path, URL or name may hold"])
    assert "Traceback" not in result.stdout.str() + result.stderr.str()


def test_each_check_points_at_the_line_it_is_written_on(tmp_path: Path) -> None:
    """Lines come from one index of the file's headers and keys (loading stays linear in the
    number of checks); a blank line before a header no longer shifts it by one."""
    path = tmp_path / "pyproject.toml"
    path.write_text(
        '[project]\nname = "demo"\n\n'                                          # 1-3
        '[tool.mlfunnel.model]\n'                                               # 4
        'inline = { metrics = "r.json", expect = { a = ">= 1" } }\n'            # 5
        'dotted.metrics = "r.json"\n'                                           # 6
        'dotted.expect = { a = ">= 1" }\n\n\n'                                  # 7-9
        '[tool.mlfunnel.model.quality]\n'                                       # 10
        'metrics = "r.json"\n\n'                                                # 11-12
        '[ tool . mlfunnel . "deployment" . \'health\' ]\n'                     # 13
        'http = "http://127.0.0.1:9/h"\n\n'                                     # 14-15
        '[tool.mlfunnel.model.quality.expect]\n'                                # 16
        'a = ">= 1"\n\n'                                                        # 17-18
        '[tool.mlfunnel.data.sub.columns.age]\n'                                # 19
        'nulls = "== 0"\n'                                                      # 20
        '[tool.mlfunnel.data.sub]\n'                                            # 21
        'dataset = "t.csv"\n')                                                  # 22
    lines = {e.key_path.rsplit(".", 2)[-2] + "." + e.name: e.line
             for e in load_config(path, tmp_path, KindRegistry()).checks}
    assert lines == {"model.inline": 5, "model.dotted": 6, "model.quality": 10,
                     "deployment.health": 13, "data.sub": 21}
