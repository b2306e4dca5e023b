"""An insider who opens a door for an outside campaign: an access edge that exists once they have acted."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from conftest import BASE, build, load

from custodysim.errors import ScenarioError
from custodysim.scenario.loader import load_scenario_text
from custodysim.simulation.campaigns import insider_acts, sample_campaigns
from custodysim.simulation.model import compile_scenario
from custodysim.simulation.randomness import TrialRandom


def _door(rate: float) -> dict[str, Any]:
    """The vendor's laptop reaches the hot wallet's key server only through a door the insider bob opens."""
    doc = build(copy.deepcopy(BASE))
    doc["people"]["bob"]["insider_rate_per_year"] = rate
    doc["threats"]["apt"]["campaigns_per_year"] = 6.0
    doc["access"] = [{"from": "laptop", "to": "hot_server", "technique": "insider_door", "opened_by": "bob"}]
    return doc


def test_a_door_nobody_opens_is_never_crossed():
    """With no insider act in a trial, the edge the insider would open does not exist."""
    model = compile_scenario(load(_door(0.0)).baseline)
    for trial in range(200):
        for c in sample_campaigns(model, TrialRandom(3, trial)):
            assert "hot_server" not in {s.node for s in c.plan}


def test_a_door_is_crossed_only_after_the_insider_has_acted():
    """The campaign reaches the node behind the door no sooner than the insider's first act, and says so."""
    model = compile_scenario(load(_door(2.0)).baseline)
    crossed = 0
    for trial in range(300):
        rnd = TrialRandom(3, trial)
        acts = insider_acts(model, rnd, "bob")
        for c in sample_campaigns(model, rnd):
            for step in c.plan:
                if step.node == "hot_server":
                    crossed += 1
                    assert acts and step.time >= min(acts)
                    laptop = next(s.time for s in c.plan if s.node == "laptop")
                    assert step.time >= laptop
                    assert step.via.endswith("(opened by bob)")
    assert crossed > 50


def test_the_door_uses_the_library_defaults_of_insider_door():
    """An edge with the insider_door technique and no numbers takes the library's p_success and time."""
    edge = load(_door(1.0)).baseline.access[0]
    assert edge.p_success == 0.9
    assert edge.opened_by == "bob"


def test_a_door_opened_by_nobody_known_is_refused():
    """`opened_by` must name a person: an unknown id is refused with its path."""
    doc = _door(1.0)
    doc["access"][0]["opened_by"] = "mallory"
    with pytest.raises(ScenarioError, match=r"access\[0\]\.opened_by: no person with id 'mallory'"):
        load(doc)


def test_a_door_whose_opener_never_acts_is_warned_about():
    """A door opened by a person without an insider rate gets a warning at validation."""
    import yaml

    loaded = load_scenario_text(yaml.safe_dump(_door(0.0), sort_keys=False))
    assert any("never opens" in w for w in loaded.warnings)
