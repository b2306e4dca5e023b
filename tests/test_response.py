"""Detection and response, organisation by organisation, and what a response cancels."""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import BASE, build, load, losses
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from custodysim.scenario.loader import load_scenario
from custodysim.simulation.campaigns import sample_campaigns
from custodysim.simulation.engine import World, simulate_trial
from custodysim.simulation.model import compile_scenario
from custodysim.simulation.randomness import TrialRandom

REGRESSIONS = Path(__file__).parent / "regressions"


def _vendor_path(notified: dict[str, Any] | None) -> dict[str, Any]:
    """The vendor's laptop leads to the vendor's signing interface; the exchange's monitor sees each theft."""
    doc = build(copy.deepcopy(BASE), settings={"horizon_days": 365, "trials": 100, "seed": 9,
                                              "max_campaigns_per_threat": 1})
    doc["organisations"]["vendor"]["notified"] = notified
    doc["threats"]["apt"]["campaigns_per_year"] = 0.0
    doc["threats"]["apt"]["forced_campaign_days"] = [0.0]
    doc["threats"]["apt"]["tampering"] = "redirect"  # each rewrite takes one transfer: there is more to take
    doc["access"] = [{"from": "laptop", "to": "ui", "p_success": 1.0, "time_days": 1.0}]
    doc["controls"] = {"outflow_monitoring": {"watch": {"probability": 1.0, "delay_hours": 0.5}},
                       "response": {"freeze_delay_hours": 1.0, "revoke_delay_hours": 24.0}}
    return doc


def _trial(doc: dict[str, Any], trial: int = 0) -> tuple[World, list[str]]:
    model = compile_scenario(load(doc).baseline)
    rnd = TrialRandom(9, trial)
    world = World(model, rnd, sample_campaigns(model, rnd), tell=True)
    world.run()
    return world, [line for _, line in world.story]


def test_an_alarm_at_the_exchange_leaves_the_vendor_foothold_when_the_vendor_is_never_told():
    """The exchange's alarm revokes what the exchange owns; the vendor's foothold stays and strikes again."""
    world, story = _trial(_vendor_path(None))
    (c,) = world.campaigns
    assert any(line.startswith("alarm: monitoring:watch") and "raised by ex" in line for line in story)
    assert "vendor" not in c.closed
    assert c.holds("ui", world.model.horizon - 1e-9)  # still the attacker's at the end of the year
    assert not any("vendor revokes" in line for line in story)
    assert sum("rewrites a" in line for line in story) > 1  # it struck again once the freeze was over


def test_a_vendor_that_is_told_revokes_its_footholds_and_the_trace_says_when():
    """Told two hours after the alarm and finding what is there, the vendor revokes the campaign's footholds."""
    world, story = _trial(_vendor_path({"after_hours": 2.0, "finds_probability": 1.0}))
    (c,) = world.campaigns
    told = next(t for t, line in world.story if line.startswith("vendor is told"))
    alarm = next(t for t, line in world.story if line.startswith("alarm:"))
    revoked = c.closed["vendor"]
    assert told == pytest.approx(alarm + 2 / 24)
    assert revoked == pytest.approx(told + 1.0)  # its own revoke delay, 24 h
    assert not c.holds("ui", revoked)
    assert any(line.startswith("vendor revokes apt#0's footholds") for line in story)
    rewrites = [t for t, line in world.story if "rewrites a" in line]
    assert rewrites and max(rewrites) < revoked  # no rewrite once the vendor has revoked


def test_a_vendor_that_finds_nothing_keeps_the_attacker():
    """Told but finding nothing (finds_probability 0), the vendor revokes nothing."""
    world, story = _trial(_vendor_path({"after_hours": 2.0, "finds_probability": 0.0}))
    assert "vendor" not in world.campaigns[0].closed
    assert any(line.startswith("vendor finds nothing") for line in story)


@st.composite
def _vendor_borne_theft(draw: Any) -> dict[str, Any]:
    """A theft that runs through the vendor alone, and an exchange engineer the same lure may fool.

    One forced campaign, a three-year horizon (the first-year horizon would cut thefts an alarm only
    delays), one strike, no time-lock, no signer who checks: what the exchange engineer's foothold can
    do is raise the exchange's alarm.
    """
    doc = copy.deepcopy(BASE)
    doc["settings"] = {"horizon_days": 1095, "trials": 60, "seed": 5, "max_campaigns_per_threat": 1}
    doc["organisations"]["vendor"]["notified"] = None
    doc["people"]["ops"] = {"organisation": "ex", "devices": ["pc_ops"], "exposure": {"phish": 0.0}}
    doc["systems"]["pc_ops"] = {"kind": "workstation", "owner": "ex"}
    doc["wallets"]["vault"]["balance"] = draw(st.floats(10, 1000))
    doc["wallets"]["cold"] = {"asset": "BTC", "tier": "cold", "balance": 100.0, "custody": {
        "scheme": "single", "signers": [{"id": "c", "holder": "bob", "key_store": "dev_bob"}]}}
    doc["operations"] = {"transfers": [
        {"from": "vault", "to": "external", "amount": draw(st.floats(0.1, 5)), "every_days": draw(st.floats(1, 60))},
        {"from": "cold", "to": "vault", "amount": draw(st.floats(0.1, 5)), "every_days": draw(st.floats(1, 60))}]}
    doc["access"] = [{"from": "laptop", "to": "ui", "p_success": 1.0, "time_days": draw(st.floats(0, 100))},
                     {"from": "pc_ops", "to": "policy_engine", "p_success": draw(st.floats(0, 1)),
                      "time_days": draw(st.floats(0, 100))}]
    doc["threats"]["apt"].update(campaigns_per_year=0.0, forced_campaign_days=[0.0],
                                 tampering=draw(st.sampled_from(["amount", "redirect"])))
    doc["threats"]["apt"]["initial_access"] = [{"technique": "phish", "targets": ["eng", "ops"],
                                                "delay_days": draw(st.floats(0, 30)),
                                                "common_mode": draw(st.floats(0, 1))}]
    doc["threats"]["apt"]["strike"] = {"aim": draw(st.sampled_from(["first", "largest"])),
                                       "wait_until_ready": draw(st.booleans()),
                                       "max_wait_days": draw(st.floats(0, 200)), "once": True}
    hours = st.floats(0, 72)
    doc["controls"] = {
        "detection": {"edr": {"watches": ["pc_ops", "policy_engine"],
                              "time_to_detect_days": {"dist": "exponential", "mean": draw(st.floats(0.5, 100))}}},
        "outflow_monitoring": {"watch": {"probability": draw(st.floats(0, 1)), "delay_hours": draw(hours)}},
        "response": {"freeze_delay_hours": draw(hours), "revoke_delay_hours": draw(hours),
                     "key_rotation_hours": draw(hours)},
    }
    low, high = sorted([draw(st.floats(0, 1)), draw(st.floats(0, 1))])
    doc["people"]["ops"]["exposure"]["phish"] = low
    doc["variants"] = {"exposed": {"set": {"people.ops.exposure.phish": high}}}
    return doc


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=_vendor_borne_theft())
def test_a_more_exposed_exchange_never_lowers_a_loss_that_runs_through_an_untold_vendor(doc):
    """With the vendor never told, raising an exchange engineer's exposure loses no less, trial by trial."""
    rows = losses(doc, trials=60, seed=5)
    assert (rows["exposed"].loss >= rows["baseline"].loss - 1e-9).all()


@pytest.mark.parametrize("path", sorted(REGRESSIONS.glob("delay-*.yaml")), ids=lambda p: p.stem)
def test_a_queued_theft_is_cancelled_by_any_alarm_whose_freeze_comes_before_it_is_due(path):
    """The three time-locked thefts that slipped out after an alarm are cancelled (hot-wallet-key-theft)."""
    model = compile_scenario(load_scenario(path).baseline)
    for trial in range(5):
        result = simulate_trial(model, 1, trial)
        assert result.loss_usd == 0
        assert "delay:hot" in result.stops


def test_the_freeze_begins_with_what_the_campaign_can_act_on_then():
    """An alarm before the attacker reaches a wallet still freezes the wallet it reaches before the freeze."""
    model = compile_scenario(load_scenario(REGRESSIONS / "delay-alarm-before-the-key-1636.yaml").baseline)
    rnd = TrialRandom(1, 0)
    world = World(model, rnd, sample_campaigns(model, rnd))
    world.run()
    alarm = world.first_alarm
    freezes = world.treasury.wallets["hot"].freezes
    assert freezes and all(start > alarm for start, _ in freezes)
    assert math.isfinite(world.campaigns[0].held["hot_key_server"])
    assert world.campaigns[0].held["hot_key_server"] < min(start for start, _ in freezes)


def test_revocation_cuts_the_plan_short_and_a_later_path_may_still_arrive():
    """An organisation that revokes cuts the steps attempted from its nodes; another path may still arrive."""
    doc = build(copy.deepcopy(BASE))
    doc["systems"]["ex_box"] = {"kind": "server", "owner": "ex"}
    doc["access"] = [{"from": "laptop", "to": "ex_box", "p_success": 1.0, "time_days": 1.0},
                     {"from": "ex_box", "to": "policy_engine", "p_success": 1.0, "time_days": 10.0},
                     {"from": "laptop", "to": "hot_server", "p_success": 1.0, "time_days": 20.0}]
    doc["organisations"]["vendor"]["notified"] = None
    doc["controls"] = {"detection": {"edr": {"watches": ["ex_box"], "time_to_detect_days": 1.0}},
                       "response": {"revoke_delay_hours": 24.0}}
    doc["threats"]["apt"].update(campaigns_per_year=0.0, forced_campaign_days=[0.0])
    world, _ = _trial(doc)
    (c,) = world.campaigns
    assert c.closed["ex"] == pytest.approx(3.0)  # detected on day 2, revoked a day later
    assert "policy_engine" not in c.held  # attempted from ex_box, due on day 11: cut
    assert "hot_server" not in c.held  # the exchange's own node: closed to the campaign after day 3
    assert c.holds("laptop", 364.0)  # the vendor never told: its laptop stays the attacker's
    np.testing.assert_array_equal(sorted(c.held), ["eng", "ex_box", "laptop"])


def test_without_an_exchange_organisation_a_stand_in_raises_wallet_alarms_and_freezes():
    """No organisation of kind exchange: a warning, and the wallets' alarms still freeze them."""
    import yaml

    from custodysim.scenario.loader import load_scenario_text

    doc = _vendor_path(None)
    doc["organisations"]["ex"]["kind"] = "other"
    loaded = load_scenario_text(yaml.safe_dump(doc, sort_keys=False))
    assert any("none is of kind 'exchange'" in w for w in loaded.warnings)
    world, story = _trial(doc)
    assert any("raised by (the exchange)" in line for line in story)
    assert world.treasury.wallets["vault"].freezes  # the stand-in exchange froze the wallet
