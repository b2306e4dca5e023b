"""Operations without an attacker: top-ups from running totals, waiting customers, closed-form checks."""

from __future__ import annotations

import copy
from unittest import mock

import pytest
from conftest import BASE, load

from custodysim.simulation.model import compile_scenario
from custodysim.simulation.treasury import Treasury


def _doc(withdrawals: float, deposits: float, cap: float, low: float, signing_hours: float,
         vault: float = 1e9) -> dict:
    """A scenario of a hot wallet with customer flows, topped up from a vault holding ``vault``."""
    doc = copy.deepcopy(BASE)
    doc["wallets"] = {
        "hot": {"asset": "BTC", "tier": "hot", "balance": cap,
                "custody": {"scheme": "single", "signers": [{"id": "h", "key_store": "hot_server"}]},
                "flows": {"withdrawals_per_day": withdrawals, "deposits_per_day": deposits},
                "topup": {"source": "vault", "cap": cap, "low_water": low, "signing_hours": signing_hours}},
        "vault": {"asset": "BTC", "tier": "warm", "balance": vault,
                  "custody": {"scheme": "single", "signers": [{"id": "v", "holder": "alice", "key_store": "vault_hsm"}]}},
    }
    doc["operations"] = {"transfers": []}
    return doc


def _treasury(withdrawals: float, deposits: float, cap: float, low: float, signing_hours: float) -> Treasury:
    return Treasury(compile_scenario(load(_doc(withdrawals, deposits, cap, low, signing_hours)).baseline))


def test_no_waiting_when_low_water_covers_the_signing_time():
    """If low-water lasts longer than a top-up takes, no customer ever waits."""
    t = _treasury(10.0, 0.0, cap=100.0, low=30.0, signing_hours=48.0)  # 30 BTC last 3 days > 2 days
    t.advance(365.0)
    assert t.tally.delayed_withdrawals_usd == 0.0
    assert t.tally.transfers_signed == pytest.approx(365 * 10 / 70, abs=1.5)  # one top-up per 70 BTC used


def test_waiting_matches_the_closed_form():
    """With top-ups slower than low-water lasts, each cycle has (delay - low/rate) days of waiting."""
    rate, cap, low, delay_days = 10.0, 100.0, 10.0, 3.0
    t = _treasury(rate, 0.0, cap=cap, low=low, signing_hours=delay_days * 24)
    t.advance(3650.0)
    # Steady cycle: a top-up of (cap - low) is requested at low water and lands `delay` later, when the
    # level is low - rate*delay (customers have waited since it hit zero); after landing the level is
    # cap - rate*delay, which lasts (cap - rate*delay - low)/rate until the next request.
    short = delay_days - low / rate  # 2 days a cycle without funds
    cycle = delay_days + (cap - rate * delay_days - low) / rate  # 3 + 6 = 9 days
    expected_share = short / cycle
    assert t.tally.delayed_withdrawals_usd / t.tally.withdrawals_usd == pytest.approx(expected_share, rel=0.02)
    mean_wait_days = t.tally.wait_usd_days / t.tally.withdrawals_usd
    assert mean_wait_days == pytest.approx(expected_share * short / 2, rel=0.02)


def test_deposits_above_cap_are_swept():
    """Net deposits never push the hot wallet above its cap: the excess goes to the sweep wallet."""
    t = _treasury(5.0, 15.0, cap=100.0, low=30.0, signing_hours=1.0)
    t.advance(100.0)
    assert t.balance("hot") == pytest.approx(100.0)
    assert t.balance("vault") == pytest.approx(1e9 + 10.0 * 100)


def test_freeze_makes_customers_wait_then_pays_them():
    """During a freeze withdrawals queue; when it ends, the queue is paid from the balance."""
    t = _treasury(24.0, 0.0, cap=1000.0, low=100.0, signing_hours=1.0)
    t.freeze("hot", 10.0, 11.0)
    t.advance(10.9)
    assert t.wallets["hot"].queue == pytest.approx(24 * 0.9)
    t.advance(11.5)
    assert t.wallets["hot"].queue == 0.0
    assert t.tally.delayed_withdrawals_usd == pytest.approx(24.0)


def test_top_up_survives_an_alarm_raised_while_it_is_intercepted():
    """A vetoed rewrite of a top-up raises the alarm mid-transfer; no coin vanishes (a bug hypothesis found)."""
    from custodysim.simulation.campaigns import sample_campaigns
    from custodysim.simulation.engine import World
    from custodysim.simulation.randomness import TrialRandom

    doc = copy.deepcopy(BASE)
    doc["wallets"] = {
        "hot": {"asset": "BTC", "tier": "hot", "balance": 1.0,
                "custody": {"scheme": "single", "signers": [{"id": "h", "key_store": "hot_server"}]},
                "flows": {"withdrawals_per_day": 0.0, "deposits_per_day": 0.0},
                "topup": {"source": "vault", "cap": 1.0, "low_water": 0.0, "signing_hours": 1.0}},
        "vault": {"asset": "BTC", "tier": "warm", "balance": 10.0, "pipeline": ["ui"],
                  "custody": {"scheme": "single", "signers": [{"id": "v", "holder": "alice", "key_store": "vault_hsm"}]}},
    }
    doc["people"]["alice"].update(verifies_on="dev_alice", verification_probability=1.0)
    doc["operations"] = {"transfers": []}
    doc["access"] = [{"from": "laptop", "to": node, "p_success": 1.0, "time_days": 0.0} for node in ("ui", "hot_server")]
    doc["access"].append({"from": "ui", "to": "vault_hsm", "p_success": 1.0, "time_days": 0.0})
    doc["threats"]["apt"]["tampering"] = "redirect"
    doc["controls"] = {"response": {"freeze_delay_hours": 0.0, "revoke_delay_hours": 0.0, "key_rotation_hours": 0.0}}
    model = compile_scenario(load(doc).baseline)
    rnd = TrialRandom(11, 0)
    world = World(model, rnd, sample_campaigns(model, rnd), tell=True)
    result = world.run()
    assert any("refuses to sign" in line for _, line in result.story)  # the veto happened mid-top-up
    t = world.treasury
    assert t.total("BTC") + t.withdrawn["BTC"] + t.sent_out["BTC"] + t.stolen["BTC"] == pytest.approx(11.0)
    assert result.loss_by_asset["BTC"] == pytest.approx(11.0)  # both wallets, every coin accounted for


def _with_transfers(vault_balance: float) -> Treasury:
    """A hot wallet topped up from a vault that also pays a weekly transfer out and a fortnightly one in-house."""
    doc = _doc(10.0, 8.0, cap=100.0, low=30.0, signing_hours=6.0, vault=vault_balance)
    doc["wallets"]["cold"] = {
        "asset": "BTC", "tier": "cold", "balance": 0.0,
        "custody": {"scheme": "single", "signers": [{"id": "c", "holder": "alice", "key_store": "vault_hsm"}]}}
    doc["operations"] = {"transfers": [
        {"from": "vault", "to": "external", "amount": 7.0, "every_days": 7, "first_day": 3},
        {"from": "vault", "to": "cold", "amount": 5.0, "every_days": 14, "first_day": 1, "signing_hours": 30},
    ]}
    return Treasury(compile_scenario(load(doc).baseline))


@pytest.mark.parametrize("vault_balance", [1e6, 900.0, 300.0])
def test_finish_equals_the_event_loop(vault_balance):
    """Settling recurring transfers at once after the attack gives what the event loop gives, rich or short."""
    fast, slow = _with_transfers(vault_balance), _with_transfers(vault_balance)
    fast.advance(40.0)
    slow.advance(40.0)
    fast.finish(365.0)
    slow.advance(365.0)
    for field in ("withdrawals_usd", "delayed_withdrawals_usd", "wait_usd_days", "transfer_delay_days"):
        assert getattr(fast.tally, field) == pytest.approx(getattr(slow.tally, field), rel=1e-9, abs=1e-9)
    for field in ("transfers_signed", "transfers_delayed", "ceremonies", "transfers_blocked"):
        assert getattr(fast.tally, field) == getattr(slow.tally, field)
    for wallet in ("hot", "vault", "cold"):
        assert fast.balance(wallet) == pytest.approx(slow.balance(wallet), rel=1e-9, abs=1e-9)
    assert fast.total("BTC") == pytest.approx(slow.total("BTC"), rel=1e-12)


def test_finish_settles_only_a_wallet_that_surely_pays():
    """A rich vault's transfers are settled at once; one that could run short goes through the event loop."""
    made = {}
    for vault_balance in (1e6, 300.0):
        ledger = _with_transfers(vault_balance)
        ledger.advance(40.0)
        with mock.patch.object(Treasury, "_scheduled", autospec=True, side_effect=Treasury._scheduled) as loop:
            ledger.finish(365.0)
        made[vault_balance] = loop.call_count
    assert made[1e6] == 0  # every occurrence settled at once
    assert made[300.0] > 0  # one by one, in time order, until the vault runs dry
