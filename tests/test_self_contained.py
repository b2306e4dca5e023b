"""The product stands alone: what users get never points to a file outside the repository."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# What a user reads or runs: the package (code, templates, the starter), the docs, the scenarios, the READMEs,
# and the reports of the reference run (its trials.csv holds numbers only).
USER_FILES = sorted(
    p for pattern in ("custodysim/**/*.py", "custodysim/**/*.yaml", "custodysim/**/*.j2", "docs/*.md",
                      "scenarios/**/*.yaml", "scenarios/**/*.md", "*.md", "benchmarks/*.md", "benchmarks/*.py",
                      "results/*.md", "results/dmm-2024/*.md", "results/dmm-2024/*.html", "results/dmm-2024/*.yaml",
                      "results/dmm-2024/*.json")
    for p in ROOT.glob(pattern)
)
# Material of the team's workspace that users do not have, named in any way.
OUTSIDE = re.compile(r"shared/(domain|hooks)|\b(MODEL|STYLE|incidents|controls)\.md\b|domain notes|\.\./shared\b|/work/")
LINK = re.compile(r"\]\(([^)\s#]+)(?:#[^)\s]*)?\)")


def _relative(path: Path) -> str:
    return str(path.relative_to(ROOT))


def test_the_user_files_are_found():
    """The scan covers the package, the docs, the scenarios and the READMEs (it cannot pass by finding nothing)."""
    names = {_relative(p) for p in USER_FILES}
    assert {"README.md", "docs/model.md", "docs/sources.md", "custodysim/scenario/library.py",
            "scenarios/dmm-2024.yaml", "scenarios/incidents/README.md", "results/dmm-2024/report.html"} <= names


@pytest.mark.parametrize("path", USER_FILES, ids=_relative)
def test_no_user_file_names_a_path_outside_the_repository(path):
    """No file of the package, docs, scenarios or READMEs names the team's workspace material."""
    hits = [f"{_relative(path)}:{n}: {line.strip()}"
            for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if OUTSIDE.search(line)]
    assert not hits, "\n".join(hits)


@pytest.mark.parametrize("path", [p for p in USER_FILES if p.suffix == ".md"], ids=_relative)
def test_every_relative_link_stays_inside_the_repository_and_exists(path):
    """Each Markdown link that is not a web address leads to a file of the repository."""
    broken = []
    for target in LINK.findall(path.read_text(encoding="utf-8")):
        if re.match(r"[a-z]+:", target):
            continue  # https:, mailto:
        resolved = (path.parent / target).resolve()
        if not resolved.is_relative_to(ROOT) or not resolved.exists():
            broken.append(target)
    assert not broken, f"{_relative(path)} links outside the repository or to nothing: {broken}"
