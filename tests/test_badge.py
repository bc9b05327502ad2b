"""The SVG badge: valid SVG, the stage in words, the colour of the verdict."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from pytest_mlfunnel.cli import main
from pytest_mlfunnel.render.badge import COLOURS, render_badge

SVG = "{http://www.w3.org/2000/svg}"
FUNNEL = ["data", "problem", "model", "organization", "deployment", "usage", "effectiveness",
          "maintenance"]


def report(stage: int, ok: bool, partial: bool = False) -> dict[str, Any]:
    return {"schema": "mlfunnel-report/1", "release": "v1", "funnel": FUNNEL,
            "reached": FUNNEL[stage - 1] if stage else None, "stage": stage, "ok": ok,
            "partial": partial, "gates": [{"name": g, "status": "passed", "passed": 1,
                                           "total": 1} for g in FUNNEL]}


def parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    return root


def texts(root: ET.Element) -> list[str]:
    return [t.text or "" for t in root.iter(f"{SVG}text")]


def fill_of_message(root: ET.Element) -> str:
    rects = [r for r in root.iter(f"{SVG}rect") if r.get("x")]
    return rects[0].get("fill", "")


def test_the_badge_is_valid_svg_saying_the_stage() -> None:
    root = parse(render_badge(report(3, ok=True)))
    assert texts(root) == ["funnel", "funnel", "model 3/8", "model 3/8"]
    assert root.find(f"{SVG}title").text == "funnel: model 3/8 (ok)"  # type: ignore[union-attr]
    assert root.get("aria-label") == "funnel: model 3/8 (ok)"
    assert int(root.get("width", "0")) > 80


@pytest.mark.parametrize(("stage", "ok", "partial", "colour", "word"), [
    (3, True, False, COLOURS["ok"], "ok"),
    (8, True, False, COLOURS["complete"], "every gate passed"),
    (2, False, False, COLOURS["failed"], "failing"),
    (2, True, True, COLOURS["partial"], "partial run"),
])
def test_the_colour_follows_the_verdict(stage: int, ok: bool, partial: bool, colour: str,
                                        word: str) -> None:
    root = parse(render_badge(report(stage, ok, partial)))
    assert fill_of_message(root) == colour
    assert root.get("aria-label", "").endswith(f"({word})")


def test_no_stage_reached_reads_none() -> None:
    root = parse(render_badge(report(0, ok=False)))
    assert "none 0/8" in texts(root)


def test_a_longer_message_makes_a_wider_badge_and_labels_are_escaped() -> None:
    short = parse(render_badge(report(1, ok=True)))
    long = parse(render_badge(report(7, ok=True), label="<ml & funnel>"))
    assert int(long.get("width", "0")) > int(short.get("width", "0"))
    assert texts(long)[0] == "<ml & funnel>"


def test_mlfunnel_badge_reads_the_latest_history_line(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    history = tmp_path / ".mlfunnel" / "history.jsonl"
    history.parent.mkdir()
    history.write_text(json.dumps(report(2, ok=False)) + "\n"
                       + json.dumps(dict(report(3, ok=True), release="v2")) + "\n")
    assert main(["badge"]) == 0
    assert capsys.readouterr().out == "wrote funnel-badge.svg\n"
    root = parse((tmp_path / "funnel-badge.svg").read_text())
    assert "model 3/8" in texts(root)
    assert fill_of_message(root) == COLOURS["ok"]


def test_mlfunnel_badge_reads_a_json_report(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "report.json"
    path.write_text(json.dumps(report(1, ok=False)))
    out = tmp_path / "badges" / "funnel.svg"
    assert main(["badge", "--report", str(path), "-o", str(out)]) == 0
    root = parse(out.read_text())
    assert "data 1/8" in texts(root)
    assert fill_of_message(root) == COLOURS["failed"]
    assert capsys.readouterr().out == f"wrote {out}\n"
    assert main(["badge", "--report", str(path), "-o", "-"]) == 0
    assert "data 1/8" in texts(parse(capsys.readouterr().out))


def test_mlfunnel_badge_without_history_is_a_one_line_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["badge"]) == 2
    err = capsys.readouterr().err
    assert err == ("mlfunnel: error: .mlfunnel/history.jsonl: no history yet (record a run "
                   "with 'pytest --funnel --funnel-record')\n")
    assert not (tmp_path / "funnel-badge.svg").exists()
