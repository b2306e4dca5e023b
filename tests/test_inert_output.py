"""What a scenario says reaches its readers as text: no HTML, links, markup or escape sequences act."""

from __future__ import annotations

import re
from pathlib import Path

from conftest import MINI, edit
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from custodysim.cli import app
from custodysim.formatting import markdown_text, terminal_text
from custodysim.studies.run import execute_run

HOSTILE = "<script>alert(1)</script> [click](javascript:alert(1)) <img src=x onerror=alert(1)> a|b [/x]"


def _hostile(tmp_path: Path) -> Path:
    """MINI with a description that is HTML, a script link and rich markup, and a technique that clears the screen."""
    text = edit("name: mini\n", f'name: mini\ndescription: "{HOSTILE}"\n')
    text = edit("technique: session_cookie_theft", 'technique: "cookie\\e[2J\\e[31m[/x]"', text)
    path = tmp_path / "hostile.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_report_md_shows_html_and_links_as_text(tmp_path):
    """report.md escapes a description's tags and link, so a Markdown renderer shows them instead of running them."""
    execute_run(_hostile(tmp_path), trials=50, out=tmp_path / "run")
    report = (tmp_path / "run" / "report.md").read_text(encoding="utf-8")
    for active in (r"(?<!\\)<script", r"(?<!\\)<img", r"(?<!\\)\]\(javascript:"):
        assert not re.search(active, report), active
    assert r"\<script\>alert(1)\</script\>" in report and r"\[click\](javascript:alert(1))" in report


def test_trace_prints_no_escape_sequence(tmp_path):
    """`custodysim trace` prints a technique's escape sequences as nothing: the terminal is not cleared or recoloured."""
    result = CliRunner().invoke(app, ["trace", str(_hostile(tmp_path)), "--trial", "0"])
    assert result.exit_code == 0, result.output
    assert "cookie[/x] from eng" in result.stdout
    assert "\x1b" not in result.stdout


def test_rich_markup_in_a_set_value_is_printed_as_text(tmp_path):
    """A --set value that reads as rich markup (`[/x]`) is printed as written; the sweep does not crash."""
    scenario = tmp_path / "mini.yaml"
    scenario.write_text(MINI, encoding="utf-8")
    result = CliRunner().invoke(app, ["sweep", str(scenario), "--set", "people.eng.role=a[/x],b", "--trials", "20",
                                      "--workers", "1", "--out", str(tmp_path / "sweep")])
    assert result.exit_code == 0, result.output
    assert "role=a[/x]" in result.stdout


@given(st.text())
def test_escaped_markdown_has_no_active_character_left_bare(text):
    """After escaping, every character that could start a tag, link, entity, code span or cell is backslashed."""
    escaped = markdown_text(text)
    i = 0
    while i < len(escaped):
        if escaped[i] == "\\":
            i += 2  # an escape and what it escapes
            continue
        assert escaped[i] not in "<>[]&|`", (text, escaped)
        i += 1


@given(st.text())
def test_terminal_text_has_no_control_character_but_newlines_and_tabs(text):
    """Terminal text keeps newlines and tabs and nothing else below the space (or in C1)."""
    shown = terminal_text(text)
    assert all(c in "\n\t" or not (ord(c) < 32 or 0x7F <= ord(c) <= 0x9F) for c in shown)
