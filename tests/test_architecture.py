"""The package's layers: every stage imports only the stages below it, and nothing imports in a circle.

The contracts are in pyproject.toml (``[tool.importlinter]``) and docs/architecture.md draws them.
"""

from __future__ import annotations

import importlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import custodysim

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = Path(custodysim.__file__).resolve().parent
LINT = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which("lint-imports")
SUBPACKAGES = ("scenario", "simulation", "running", "analysis", "reporting", "studies")


def lint(package_parent: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run import-linter with the project's contracts on the package (or on a copy under ``package_parent``)."""
    assert LINT is not None, "lint-imports is not installed (pip install -e '.[test]')"
    # import-linter puts its working folder first on the path: run it beside the package it is to read.
    return subprocess.run([LINT, str(ROOT / "pyproject.toml"), "--no-cache"], cwd=package_parent or ROOT,
                          capture_output=True, text=True, timeout=120)


def test_every_contract_is_kept() -> None:
    """The package keeps every import contract: layers point down, no circles anywhere."""
    result = lint()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(("module", "upward", "message"), [
    ("simulation/model.py", "custodysim.reporting.report", "custodysim.simulation is not allowed to import"),
    ("scenario/schema.py", "custodysim.simulation.engine", "custodysim.scenario is not allowed to import"),
    ("simulation/treasury.py", "custodysim.simulation.engine", "is not allowed to import"),
])
def test_an_upward_import_breaks_a_contract(tmp_path: Path, module: str, upward: str, message: str) -> None:
    """A module that imports a layer above it (in a copy of the package) fails the check, naming the import."""
    shutil.copytree(PACKAGE, tmp_path / "custodysim", ignore=shutil.ignore_patterns("__pycache__"))
    with (tmp_path / "custodysim" / module).open("a", encoding="utf-8") as f:
        f.write(f"\nimport {upward}  # an upward import\n")
    result = lint(tmp_path)
    assert result.returncode != 0
    assert message in result.stdout
    assert upward in result.stdout


@pytest.mark.parametrize("name", SUBPACKAGES)
def test_each_subpackage_says_what_it_owns_and_may_import(name: str) -> None:
    """Each subpackage's docstring says what it owns and which layers it may import."""
    doc = importlib.import_module(f"custodysim.{name}").__doc__ or ""
    assert "Owns" in doc and "May import" in doc


def test_the_library_api_keeps_its_names() -> None:
    """``custodysim`` still exports the names a library user imports."""
    from custodysim.running.runner import run_variants
    from custodysim.scenario.loader import LoadedScenario, load_scenario
    from custodysim.studies.run import RunOutcome, execute_run

    assert (custodysim.load_scenario, custodysim.LoadedScenario) == (load_scenario, LoadedScenario)
    assert (custodysim.execute_run, custodysim.RunOutcome, custodysim.run_variants) == (
        execute_run, RunOutcome, run_variants)
    assert set(custodysim.__all__) == {"LoadedScenario", "RunOutcome", "__version__", "execute_run",
                                        "load_scenario", "run_variants"}
