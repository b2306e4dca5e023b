"""The truths the model must show (docs/model.md states the rules), each on a purpose-built scenario."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import assert_same, build, losses, signers

from custodysim.errors import ScenarioError
from custodysim.running.runner import quiet_result
from custodysim.scenario.loader import load_scenario_text
from custodysim.simulation.campaigns import sample_campaigns
from custodysim.simulation.engine import simulate_trial
from custodysim.simulation.model import compile_scenario
from custodysim.simulation.randomness import TrialRandom


def test_threshold_does_not_help_when_all_signers_share_a_compromised_view(base):
    """Raising 1-of-1 to 2-of-3 and 3-of-5 leaves tampering losses unchanged when all view through one UI."""
    doc = build(base, variants={
        "2of3": {"set": {"wallets.vault.custody": {
            "scheme": "multisig", "threshold": 2, "signers": signers("alice", "bob", "carol")}}},
        "3of5": {"set": {"wallets.vault.custody": {
            "scheme": "multisig", "threshold": 3, "signers": signers("alice", "bob", "carol", "dave", "erin")}}},
    })
    rows = losses(doc)
    assert rows["baseline"].loss.sum() > 0
    assert_same(rows["2of3"].loss, rows["baseline"].loss)
    assert_same(rows["3of5"].loss, rows["baseline"].loss)


def test_independent_whitelist_blocks_and_alarms(base):
    """A whitelist enforced by an uncompromised policy engine stops every rewritten transfer and raises the alarm."""
    doc = build(base, variants={"wl": {"set": {"wallets.vault.policy.whitelist": {"enforced_by": "policy_engine"}}}})
    rows = losses(doc)
    attacked = rows["baseline"].loss > 0
    assert attacked.sum() > 20
    assert rows["wl"].loss.max() == 0
    stopped = np.array(["whitelist:vault" in s for s in rows["wl"].text("stopped_by")])
    assert stopped[attacked].all()


def test_whitelist_enforced_by_the_compromised_component_is_no_control(base):
    """The same whitelist enforced by the compromised UI lets every theft through."""
    doc = build(base, variants={"wl-in-ui": {"set": {"wallets.vault.policy.whitelist": {"enforced_by": "ui"}}}})
    rows = losses(doc)
    assert rows["baseline"].loss.sum() > 0
    assert_same(rows["wl-in-ui"].loss, rows["baseline"].loss)


def _hot_theft_doc(base, cap: float, deposits: float):
    """A hot wallet whose key sits on a server the attacker reaches; fixed, fast detection and response."""
    doc = build(base)
    doc["wallets"] = {
        "hot": {"asset": "BTC", "tier": "hot", "balance": cap,
                "custody": {"scheme": "single", "signers": [{"id": "h", "key_store": "hot_server"}]},
                "flows": {"withdrawals_per_day": deposits, "deposits_per_day": deposits},
                "topup": {"source": "cold", "cap": cap, "low_water": cap / 2, "signing_hours": 1}},
        "cold": {"asset": "BTC", "tier": "cold", "balance": 100_000.0,
                 "custody": {"scheme": "single", "signers": [{"id": "c", "holder": "alice", "key_store": "vault_hsm"}]}},
    }
    doc["operations"] = {"transfers": []}
    doc["access"] = [{"from": "laptop", "to": "hot_server", "p_success": 1.0, "time_days": 1.0}]
    doc["controls"] = {
        "outflow_monitoring": {"watch": {"probability": 1.0, "delay_hours": 1.0}},
        "response": {"freeze_delay_hours": 1.0, "revoke_delay_hours": 2.0},
    }
    return doc


@pytest.mark.parametrize("cap", [10.0, 100.0])
def test_hot_wallet_cap_bounds_key_theft(base, cap):
    """Hot-key theft loses at most the cap plus the inflows that land before the response."""
    deposits = 24.0  # 1 BTC an hour
    # The alarm comes 1 h after the first theft and the freeze 1 h later: a 2 h window. A top-up takes
    # 1 h to sign and refills the whole cap, so at most 2 land inside the window (requested at 0 h, 1 h).
    window_days, topups_in_window = 2.0 / 24, 2
    rows = losses(_hot_theft_doc(base, cap, deposits))["baseline"]
    per_trial = rows.numbers["loss_BTC"]
    assert per_trial.max() > cap  # the inflows are really taken
    campaigns = rows.numbers["campaigns"]
    bound = campaigns * (cap + topups_in_window * cap + deposits * window_days) + 1e-6
    assert (per_trial <= bound).all()


def test_larger_cap_means_larger_key_theft_loss(base):
    """With everything else equal, a larger hot-wallet cap loses more to key theft."""
    small = losses(_hot_theft_doc(base, 10.0, 24.0))["baseline"].loss.mean()
    large = losses(_hot_theft_doc(base, 100.0, 24.0))["baseline"].loss.mean()
    assert large > 5 * small > 0


def _delay_doc(base, delay_hours: float | None):
    """Hot-key theft from a wallet without top-ups (one theft transfer per campaign), optionally time-locked."""
    doc = _hot_theft_doc(base, 100.0, 0.0)
    del doc["wallets"]["hot"]["topup"], doc["wallets"]["hot"]["flows"]
    if delay_hours is not None:
        doc["wallets"]["hot"]["policy"] = {"delay": {"hours": delay_hours, "enforced_by": "policy_engine"}}
    return doc


def test_delay_helps_when_detection_and_response_beat_it(base):
    """A 24 h time-lock with detection + freeze in 2 h cancels every theft transfer."""
    no_delay = losses(_delay_doc(base, None))["baseline"]
    delayed = losses(_delay_doc(base, 24.0))["baseline"]
    assert no_delay.loss.sum() > 0
    assert delayed.loss.max() == 0
    assert any("delay:hot" in s for s in delayed.text("stopped_by"))


def test_delay_does_not_help_when_slower_than_detection_plus_response(base):
    """A 1 h time-lock, shorter than the 2 h to detect and freeze, leaves the loss unchanged."""
    no_delay = losses(_delay_doc(base, None))["baseline"]
    short = losses(_delay_doc(base, 1.0))["baseline"]
    assert short.loss.sum() > 0
    assert_same(short.loss, no_delay.loss)


def _verifiers_doc(base, holders: list[str], p: float, common_mode: float, seed: int):
    """One rewrite per trial (one one-shot campaign) of a vault whose signers each verify on their own device."""
    doc = build(base, settings={"horizon_days": 365, "trials": 3000, "seed": seed, "max_campaigns_per_threat": 1})
    doc["wallets"]["vault"]["custody"] = {"scheme": "multisig" if len(holders) > 1 else "single",
                                          "threshold": len(holders), "signers": signers(*holders)}
    for h in holders:
        doc["people"][h].update(verifies_on=f"dev_{h}", verification_probability=p)
    doc["threats"]["apt"]["campaigns_per_year"] = 50.0  # nearly every trial has its one campaign
    doc["threats"]["apt"]["strike"]["once"] = True
    doc["controls"] = {"verification": {"common_mode": common_mode}}
    return doc


@pytest.mark.parametrize(("k", "p", "common_mode"), [(1, 0.5, 0.0), (2, 0.5, 0.0), (3, 0.4, 0.0), (3, 0.4, 1.0),
                                                     (3, 0.4, 0.5)])
def test_verification_by_k_signers_passes_with_the_common_mode_formula(base, k, p, common_mode):
    """K verifiers catching with p let a rewrite through with c(1-p) + (1-c)(1-p)^k: (1-p)^k only if independent."""
    doc = _verifiers_doc(base, ["alice", "bob", "carol"][:k], p, common_mode, seed=3)
    rows = losses(doc, trials=3000, seed=3)["baseline"]
    attempted = np.array([o in ("loss", "stopped") for o in rows.text("outcome")])
    passed = (rows.loss > 0)[attempted].mean()
    expected = common_mode * (1 - p) + (1 - common_mode) * (1 - p) ** k
    se = math.sqrt(expected * (1 - expected) / attempted.sum())
    assert attempted.sum() > 2500
    assert abs(passed - expected) < 4 * se


def test_fully_correlated_verifiers_catch_exactly_as_often_as_one(base):
    """With full correlation, three verifying signers catch a rewrite in exactly the trials one of them does."""
    one = losses(_verifiers_doc(base, ["alice"], 0.5, 1.0, seed=4), trials=1000, seed=4)["baseline"]
    three = losses(_verifiers_doc(base, ["alice", "bob", "carol"], 0.5, 1.0, seed=4), trials=1000, seed=4)["baseline"]
    assert 0 < (one.loss > 0).sum() < len(one.loss)
    assert_same(three.loss, one.loss)


def test_one_person_holding_several_keys_checks_once(base):
    """Three keys held by one verifying person catch a rewrite with p, not 1-(1-p)^3."""
    doc = _verifiers_doc(base, ["alice", "alice", "alice"], 0.5, 0.0, seed=5)
    rows = losses(doc, trials=3000, seed=5)["baseline"]
    attempted = np.array([o in ("loss", "stopped") for o in rows.text("outcome")])
    assert abs((rows.loss > 0)[attempted].mean() - 0.5) < 0.05


def test_no_campaigns_means_no_loss(base):
    """With a campaign rate of zero nothing is lost."""
    doc = build(base)
    doc["threats"]["apt"]["campaigns_per_year"] = 0.0
    rows = losses(doc)["baseline"]
    assert rows.loss.max() == 0
    assert set(rows.text("outcome")) == {"no_campaign"}


def test_no_path_to_keys_or_pipeline_means_no_loss(base):
    """When no access edge leads from the entry point to a key store or pipeline component, nothing is lost."""
    doc = build(base, access=[{"from": "laptop", "to": "policy_engine", "p_success": 1.0, "time_days": 1.0}])
    rows = losses(doc)["baseline"]
    assert rows.numbers["footholds"].sum() > 0
    assert rows.loss.max() == 0


def test_forced_campaign_starts_in_every_trial_at_its_day(base):
    """A campaign forced at day 0 comes in every trial, whatever the Poisson rate, and starts the attack then."""
    doc = build(base)
    doc["threats"]["apt"]["campaigns_per_year"] = 0.0
    doc["threats"]["apt"]["forced_campaign_days"] = [0.0]
    rows = losses(doc)["baseline"]
    assert (rows.numbers["campaigns"] == 1).all()
    assert (rows.numbers["t_first_access_days"] == 0.0).all()  # exposure 1, no delay: the victim falls at once
    assert (rows.loss > 0).all()


def test_forced_campaign_outside_the_horizon_is_refused(base):
    """A forced campaign day beyond the horizon is a validation error naming the field."""
    doc = build(base)
    doc["threats"]["apt"]["forced_campaign_days"] = [400.0]
    with pytest.raises(ScenarioError, match=r"forced_campaign_days"):
        load_scenario_text(yaml.safe_dump(doc))


def test_a_theft_seen_during_an_earlier_response_freezes_its_wallet(base):
    """An alarm raised before the attacker reached any wallet does not let a later theft drain on unfrozen."""
    doc = _hot_theft_doc(base, cap=100.0, deposits=0.0)
    doc["wallets"]["hot"]["policy"] = {"daily_limit": {"amount": 10.0, "enforced_by": "chain"}}
    doc["controls"]["detection"] = {"edr": {"watches": ["laptop"], "time_to_detect_days": 0.5}}
    doc["controls"]["response"] = {"freeze_delay_hours": 1.0, "revoke_delay_hours": 24 * 10}
    doc["threats"]["apt"]["campaigns_per_year"] = 0.0
    doc["threats"]["apt"]["forced_campaign_days"] = [0.0]
    rows = losses(doc, trials=50)["baseline"]
    # EDR alarms at 12 h, before the key is reached at 24 h: the first response can freeze nothing. The
    # first theft (10 BTC, the day's limit) is seen 1 h later and the wallet is frozen 1 h after that,
    # before the next day's limit: without that freeze the drain would go on for the 9 days to revocation.
    assert (rows.numbers["t_first_alarm_days"] == 0.5).all()
    assert (rows.numbers["loss_BTC"] == 10.0).all()


def test_no_theft_at_the_horizon_itself():
    """A legitimate transfer due exactly at the horizon is not rewritten: only thefts inside the year count."""
    doc = yaml.safe_load((Path(__file__).resolve().parent.parent / "scenarios" / "dmm-2024.yaml").read_text())
    doc.pop("variants")
    doc["operations"]["transfers"] = [{"from": "main", "to": "external", "amount": 10, "every_days": 5,
                                       "first_day": 0}]  # one falls on day 365
    doc["controls"]["detection"] = {}
    doc["controls"]["outflow_monitoring"]["dmm_outflow_watch"]["probability"] = 0.0  # never revoked
    doc["threats"]["tradertraitor"]["campaigns_per_year"] = 5
    model = compile_scenario(load_scenario_text(yaml.safe_dump(doc), source="horizon.yaml").baseline)
    quiet = quiet_result(model, 1)
    thefts = [simulate_trial(model, 1, trial, quiet).t_first_theft for trial in range(40)]
    assert all(t < model.horizon or math.isinf(t) for t in thefts)
    assert sum(math.isfinite(t) for t in thefts) > 10  # thefts do happen inside the year


@pytest.mark.parametrize("common_mode", [0.0, 1.0])
def test_a_lure_fools_a_team_together_as_far_as_its_common_mode_says(base, common_mode):
    """Two targets of one lure, each falling with 0.3: together always (common mode 1) or as 0.3^2 (0)."""
    doc = build(base)
    doc["people"]["carol"]["exposure"] = {"phish": 0.3}
    doc["people"]["eng"]["exposure"] = {"phish": 0.3}
    doc["threats"]["apt"]["initial_access"] = [{"technique": "phish", "targets": ["eng", "carol"],
                                                "common_mode": common_mode}]
    model = compile_scenario(load_scenario_text(yaml.safe_dump(doc)).baseline)
    falls = np.array([[s.via.startswith("falls") for s in c.plan if s.node in ("eng", "carol")].count(True)
                      for trial in range(3000) for c in sample_campaigns(model, TrialRandom(1, trial))])
    both, one = (falls == 2).mean(), (falls == 1).mean()
    if common_mode:
        assert one == 0 and abs(both - 0.3) < 0.03
    else:
        assert abs(both - 0.09) < 0.015 and abs(one - 2 * 0.3 * 0.7) < 0.03
