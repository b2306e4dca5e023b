"""The operational figures of a run: withdrawal waits, signing ceremonies, legitimate transfers blocked."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from conftest import BASE, load, losses

from custodysim.running.runner import simulate
from custodysim.simulation.model import compile_scenario
from custodysim.simulation.treasury import Treasury
from custodysim.studies.run import summarise_run


def _hot_and_vault(cap: float, low: float, signing_hours: float, limit: float | None = None) -> dict:
    """Return a scenario with no attacker: a hot wallet paying 10 BTC a day, topped up from a vault."""
    doc = copy.deepcopy(BASE)
    vault_policy = {"per_transfer_limit": {"amount": limit, "enforced_by": "chain"}} if limit else {}
    doc["wallets"] = {
        "hot": {"asset": "BTC", "tier": "hot", "balance": cap,
                "custody": {"scheme": "single", "signers": [{"id": "h", "key_store": "hot_server"}]},
                "flows": {"withdrawals_per_day": 10.0, "deposits_per_day": 0.0},
                "topup": {"source": "vault", "cap": cap, "low_water": low, "signing_hours": signing_hours}},
        "vault": {"asset": "BTC", "tier": "warm", "balance": 1e9, "policy": vault_policy,
                  "custody": {"scheme": "single", "signers": [{"id": "v", "holder": "alice", "key_store": "vault_hsm"}]}},
    }
    doc["operations"] = {"transfers": []}
    doc["threats"] = {}
    return doc


def test_smaller_hot_wallet_cap_raises_waiting_time():
    """Capping the hot wallet lower (top-ups as slow) makes customers wait longer and more often."""
    doc = _hot_and_vault(cap=100.0, low=30.0, signing_hours=48.0)  # 30 BTC last 3 days: nobody waits
    doc["variants"] = {"small-cap": {"set": {"wallets.hot.balance": 25.0, "wallets.hot.topup.cap": 25.0,
                                             "wallets.hot.topup.low_water": 5.0}}}  # 5 BTC last half a day
    loaded = load(doc)
    result = simulate(loaded, 20, 1)
    rows, cols = result.losses, result.columns
    ops = {name: v["operations"] for name, v in summarise_run(loaded, rows, cols, 20, 1)["variants"].items()}
    assert ops["baseline"]["withdrawal_delay_mean_hours"] == 0.0
    assert ops["baseline"]["withdrawals_delayed_share"] == 0.0
    # a top-up of 20 BTC is asked at 5 BTC and lands 2 days (20 BTC of withdrawals) later, back at 5 BTC:
    # in every 2-day cycle the first half day is paid at once and the next 1.5 days wait
    assert ops["small-cap"]["withdrawals_delayed_share"] == pytest.approx(1.5 / 2, abs=0.01)
    assert ops["small-cap"]["withdrawal_delay_mean_hours"] > 10.0
    assert ops["small-cap"]["withdrawal_delay_mean_hours_p95"] == pytest.approx(
        ops["small-cap"]["withdrawal_delay_mean_hours"])  # no attacker: every trial is the same year
    assert ops["small-cap"]["signing_ceremonies_per_year"] > ops["baseline"]["signing_ceremonies_per_year"]


def test_a_signing_ceremony_signs_all_pieces_of_a_split_transfer():
    """Above a per-transfer limit a top-up is signed as several transfers in one ceremony."""
    doc = _hot_and_vault(cap=100.0, low=30.0, signing_hours=1.0, limit=10.0)
    t = Treasury(compile_scenario(load(doc).baseline))
    t.advance(365.0)
    assert t.tally.ceremonies == pytest.approx(365 * 10 / 70, abs=1.5)  # one top-up per 70 BTC withdrawn
    assert t.tally.transfers_signed == 7 * t.tally.ceremonies  # each 70 BTC top-up in 7 pieces of 10
    assert t.tally.transfers_blocked == 0


def test_vetoed_rewrites_count_as_blocked_legitimate_transfers():
    """A verifying signer who catches every rewrite blocks the legitimate transfer it rode on, once per catch."""
    doc = copy.deepcopy(BASE)
    doc["people"]["alice"].update({"verifies_on": "dev_alice", "verification_probability": 1.0})
    rows = losses(doc, trials=200)["baseline"]
    blocked = rows.numbers["transfers_blocked"]
    vetoed = np.array(["verification:" in s for s in rows.text("stopped_by")])
    assert vetoed.any()
    assert np.all(rows.loss == 0)
    assert np.all(blocked[vetoed] >= 1)
    assert np.all(blocked[~vetoed] == 0)
    assert np.all(rows.numbers["signing_ceremonies"] == rows.numbers["transfers_signed"])  # no limit: 1 piece each


@pytest.mark.parametrize("hours", [6.0, 24.0])
def test_a_time_lock_on_the_hot_wallet_holds_every_customer_withdrawal(hours):
    """A time-lock on a wallet with customer flows adds its hours to every withdrawal and delays them all."""
    doc = _hot_and_vault(cap=100.0, low=30.0, signing_hours=48.0)  # no wait for funds
    doc["variants"] = {"lock": {"set": {"wallets.hot.policy.delay": {"hours": hours, "enforced_by": "chain"}}}}
    loaded = load(doc)
    result = simulate(loaded, 20, 1)
    rows, cols = result.losses, result.columns
    ops = {name: v["operations"] for name, v in summarise_run(loaded, rows, cols, 20, 1)["variants"].items()}
    assert ops["baseline"]["withdrawal_delay_mean_hours"] == 0.0
    assert ops["lock"]["withdrawal_delay_mean_hours"] == pytest.approx(hours)
    assert ops["lock"]["withdrawals_delayed_share"] == pytest.approx(1.0)
    assert ops["lock"]["transfers_signed_mean"] == ops["baseline"]["transfers_signed_mean"]  # balances as before
