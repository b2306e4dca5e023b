"""`custodysim schema` (a JSON Schema editors can use, true to the loader) and `custodysim new` (a starter)."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml
from conftest import BASE, build, load
from typer.testing import CliRunner

from custodysim.cli import app
from custodysim.scenario.schema import json_schema

ROOT = Path(__file__).parent.parent
SCENARIO_FILES = (sorted((ROOT / "scenarios").glob("*.yaml")) + sorted((ROOT / "scenarios" / "incidents").glob("*.yaml"))
                  + sorted((ROOT / "tests" / "regressions").glob("*.yaml")))


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    """A validator for the exported schema (itself checked against the 2020-12 meta-schema)."""
    schema = json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


@pytest.mark.parametrize("path", SCENARIO_FILES, ids=lambda p: p.name)
def test_every_valid_scenario_file_passes_the_schema(validator, path):
    """Every bundled and regression scenario, which the loader accepts, passes the schema."""
    errors = [f"{list(e.path)}: {e.message}" for e in validator.iter_errors(yaml.safe_load(path.read_text()))]
    assert errors == []


def test_bare_numbers_stand_for_fixed_distributions(validator):
    """A time given as a plain number (a fixed value) is valid for the schema, as for the loader."""
    assert list(validator.iter_errors(BASE)) == []
    assert BASE["access"][0]["time_days"] == 1.0


@pytest.mark.parametrize(("changes", "where"), [
    ({"wallets__vault__custody__thresold": 2}, ["wallets", "vault", "custody"]),
    ({"access": [{"from": "laptop", "to": "ui", "p_success": 1.8, "time_days": 1.0}]}, ["access", 0, "p_success"]),
    ({"wallets__vault__balance": -5}, ["wallets", "vault", "balance"]),
])
def test_schema_flags_what_the_editor_should_underline(validator, changes, where):
    """A typo'd field, a probability above 1 and a negative balance each fail the schema at their path."""
    errors = list(validator.iter_errors(build(**changes)))
    assert any(list(e.path) == where for e in errors), [list(e.path) for e in errors]


def test_cli_prints_the_schema_as_json():
    """`custodysim schema` prints exactly the library's schema, as JSON, and exits 0."""
    result = CliRunner().invoke(app, ["schema"])
    assert result.exit_code == 0
    assert json.loads(result.stdout) == json_schema()


def test_new_writes_a_starter_that_validates_and_runs(tmp_path):
    """`custodysim new` writes a commented scenario that validates and runs as written."""
    from custodysim.studies.run import execute_run

    path = tmp_path / "mine.yaml"
    result = CliRunner().invoke(app, ["new", str(path)])
    assert result.exit_code == 0, result.output
    text = path.read_text()
    assert text.startswith("# A starter scenario") and "custodysim validate" in text
    assert list(validator_for().iter_errors(yaml.safe_load(text))) == []
    outcome = execute_run(path, trials=300, out=tmp_path / "run")
    figures = outcome.summary["variants"]
    assert set(figures) == {"baseline", "independent-verification", "independent-whitelist", "device-bound-sessions"}
    assert figures["baseline"]["expected_loss_usd"] > 0  # the threat does reach the wallets
    assert "default" in text and "measures:" in text  # it shows how the library is used


def test_the_starters_commented_custody_and_policy_examples_validate_when_used(tmp_path):
    """Uncommented as their comments say, the starter's structured quorum and scoped, rolling policy validate."""
    from custodysim.scenario.starter import starter_text

    text = starter_text().replace("      threshold: 2\n      signers:\n        - {id: c1", "      signers:\n        - {id: c1")
    text = text.replace("        - {id: c3, holder: signer_b, key_store: cold_vault}\n",
                        "        - {id: c3, holder: signer_b, key_store: cold_vault}\n"
                        "        - {id: custodian_cosigner, key_store: policy_engine}\n")
    block = text[text.index("      # groups:"):text.index("\noperations:")]
    # the YAML lines of the examples (the prose comments above them start with a capital or a word)
    used = "\n".join(line.replace("# ", "", 1) if line.lstrip().startswith(("# groups", "# policy", "#   "))
                     else line for line in block.splitlines())
    doc = yaml.safe_load(text.replace(block, used))
    vault = doc["wallets"]["cold"]
    assert [g["threshold"] for g in vault["custody"]["groups"]] == [2, 1]
    assert vault["policy"]["delay"]["applies_to"] == "admin" and vault["policy"]["rolling_limits"]
    assert list(validator_for().iter_errors(doc)) == []
    load(doc)  # the loader accepts it too


def test_new_never_overwrites_a_file(tmp_path):
    """`custodysim new` on an existing file exits 1, says why, and leaves the file as it was."""
    path = tmp_path / "mine.yaml"
    path.write_text("my notes")
    result = CliRunner().invoke(app, ["new", str(path)])
    assert result.exit_code == 1
    assert "exists already" in result.output
    assert path.read_text() == "my notes"


def validator_for() -> jsonschema.Draft202012Validator:
    """The exported schema's validator (outside fixtures)."""
    return jsonschema.Draft202012Validator(json_schema())
