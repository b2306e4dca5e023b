"""Variants derived from a loaded scenario (the basis of sweeps and attribution)."""

from __future__ import annotations

import pytest
import yaml
from conftest import build

from custodysim.errors import ScenarioError
from custodysim.running.runner import run_variants
from custodysim.scenario.loader import derive, load_scenario_text


def test_derived_variant_equals_the_same_variant_written_in_the_file(base):
    """A variant derived from overrides gives the figures of the same overrides written as a file variant."""
    doc = build(base)
    doc["variants"] = {"small": {"set": {"wallets.vault.balance": 10.0}}}
    written = load_scenario_text(yaml.safe_dump(doc))
    derived = derive(written, {"small-too": {"wallets.vault.balance": 10.0}})
    assert list(derived.variants) == ["small-too"]
    a, _ = run_variants(written, trials=200)
    b, _ = run_variants(derived, trials=200)
    assert (a[1].loss == b[1].loss).all()
    assert derived.sha256 != written.sha256


def test_derived_override_of_an_unknown_field_names_it(base):
    """A derived override that names no field is refused with its path."""
    loaded = load_scenario_text(yaml.safe_dump(build(base)))
    with pytest.raises(ScenarioError, match=r"wallets\.nosuch"):
        derive(loaded, {"x": {"wallets.nosuch.balance": 1.0}})
