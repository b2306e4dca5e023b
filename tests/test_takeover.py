"""A takeover is a change of owner: the wallet is the attacker's for the rest of the trial."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pytest
from conftest import BASE, build, load, losses

from custodysim.errors import ScenarioError
from custodysim.simulation.campaigns import sample_campaigns
from custodysim.simulation.engine import World
from custodysim.simulation.model import compile_scenario
from custodysim.simulation.randomness import TrialRandom


def _takeover(policy: dict[str, Any] | None = None, monitor: float = 0.0) -> dict[str, Any]:
    """The vendor's signing interface turns the vault's next transfer into a takeover of the vault."""
    doc = build(copy.deepcopy(BASE), settings={"horizon_days": 365, "trials": 100, "seed": 4,
                                              "max_campaigns_per_threat": 1})
    doc["threats"]["apt"].update(tampering="takeover", campaigns_per_year=0.0, forced_campaign_days=[0.0])
    doc["threats"]["apt"]["strike"]["once"] = True
    doc["access"] = [{"from": "laptop", "to": "ui", "p_success": 1.0, "time_days": 10.0}]
    if policy:
        doc["wallets"]["vault"]["policy"] = policy
    doc["controls"] = {"outflow_monitoring": {"watch": {"probability": monitor, "delay_hours": 1.0}},
                       "response": {"freeze_delay_hours": 1.0, "revoke_delay_hours": 24.0}}
    return doc


def _with_sweeping_hot_wallet(doc: dict[str, Any]) -> dict[str, Any]:
    """Add a hot wallet at its cap whose deposits exceed withdrawals: the excess is swept into the vault."""
    doc["wallets"]["hot"] = {
        "asset": "BTC", "tier": "hot", "balance": 10.0,
        "custody": {"scheme": "single", "signers": [{"id": "h", "key_store": "hot_server"}]},
        "flows": {"withdrawals_per_day": 1.0, "deposits_per_day": 3.0},
        "topup": {"source": "vault", "cap": 10.0, "low_water": 2.0, "signing_hours": 1.0}}
    return doc


def test_a_chain_daily_limit_does_not_cap_a_takeover():
    """A daily limit inside the wallet's logic caps transfers, not a transaction that replaces that logic."""
    rows = losses(_takeover({"daily_limit": {"amount": 10.0, "enforced_by": "chain"}}))["baseline"]
    assert (rows.loss > 0).all()
    np.testing.assert_allclose(rows.numbers["loss_BTC"], 1000.0 - 1.0 * 11)  # all that is left on day 11


def test_a_guard_forbidding_logic_changes_stops_a_takeover():
    """A guard that checks every transaction before it executes blocks the takeover and raises the alarm."""
    rows = losses(_takeover({"no_logic_changes": {"enforced_by": "guard"}}))["baseline"]
    assert rows.loss.max() == 0
    assert all("no_logic_changes:vault" in s for s in rows.text("stopped_by"))


@pytest.mark.parametrize(("enforcer", "stops"), [("policy_engine", True), ("ui", False), (None, False)])
def test_a_policy_engine_that_decodes_the_payload_stops_it_only_while_it_is_not_compromised(enforcer, stops):
    """The same rule kept by an uncompromised policy engine stops the takeover; by the compromised UI, not."""
    rows = losses(_takeover({"no_logic_changes": {"enforced_by": enforcer}}))["baseline"]
    assert bool(rows.loss.max() == 0) is stops


def test_a_rule_inside_the_logic_cannot_forbid_its_own_replacement():
    """`no_logic_changes` enforced by `chain` is refused: the takeover replaces the rule it would check."""
    with pytest.raises(ScenarioError, match="guard"):
        load(_takeover({"no_logic_changes": {"enforced_by": "chain"}}))


def test_a_guard_time_lock_queues_the_takeover_where_an_alarm_cancels_it():
    """A time-lock module holds the takeover 24 h; the monitor's alarm and freeze cancel it in time."""
    rows = losses(_takeover({"delay": {"hours": 24.0, "enforced_by": "guard"}}, monitor=1.0))["baseline"]
    assert rows.loss.max() == 0
    assert all("delay:vault" in s for s in rows.text("stopped_by"))


def test_sweeps_into_a_taken_over_wallet_are_lost_until_the_exchange_stops_sending():
    """Unnoticed, every sweep into the taken-over vault is lost to the horizon; noticed, until the freeze."""
    unseen = losses(_with_sweeping_hot_wallet(_takeover()))["baseline"]
    # The hot wallet sweeps 2 BTC a day into the vault all year. The vault is taken over at day 11's
    # transfer (day 10's had passed) holding its 1,000 BTC less 11 daily transfers plus 11 days of sweeps;
    # every sweep after that is lost as it lands: the whole year's sweeps are lost.
    np.testing.assert_allclose(unseen.numbers["loss_BTC"], 989.0 + 2.0 * 365, rtol=1e-9)
    seen = losses(_with_sweeping_hot_wallet(_takeover(monitor=1.0)))["baseline"]
    # the monitor sees the takeover within an hour and the freeze comes an hour later: two hours of sweeps
    np.testing.assert_allclose(seen.numbers["loss_BTC"], 989.0 + 2.0 * 11 + 2.0 * 2 / 24, rtol=1e-6)


def _one_world(doc: dict[str, Any]) -> World:
    model = compile_scenario(load(doc).baseline)
    rnd = TrialRandom(4, 0)
    world = World(model, rnd, sample_campaigns(model, rnd))
    world.run()
    return world


def test_a_taken_over_wallet_is_not_handed_back_when_the_footholds_go():
    """The vendor revokes the campaign's footholds; the wallet stays the attacker's, its sweeps lost.

    The exchange is never told of the vendor's alarm here, so nothing stops the sweeps into the vault.
    """
    doc = _with_sweeping_hot_wallet(_takeover())
    doc["organisations"]["ex"]["notified"] = None
    doc["controls"]["detection"] = {"edr": {"watches": ["laptop"], "time_to_detect_days": 20.0}}
    world = _one_world(doc)
    c = world.campaigns[0]
    assert c.closed["vendor"] < 30  # detected on day 20, revoked a day later
    assert not c.holds("ui", 100.0)
    assert world.loss_by_wallet["vault"] > 989.0 + 2.0 * 300  # sweeps all year long  # sweeps are still lost long after


def test_the_exchange_never_signs_out_of_a_taken_over_wallet_again():
    """After the takeover the vault's scheduled transfers stop for good, and the hot wallet's customers wait."""
    doc = _with_sweeping_hot_wallet(_takeover())
    doc["wallets"]["hot"]["flows"] = {"withdrawals_per_day": 3.0, "deposits_per_day": 1.0}  # now it needs top-ups
    world = _one_world(doc)
    ledger = world.treasury
    assert ledger.wallets["vault"].balance == 0
    assert ledger.tally.transfers_signed <= 11 + 5  # a daily transfer until day 10, a few top-ups
    assert ledger.wallets["hot"].queue > 300  # customers still waiting at the end of the year
