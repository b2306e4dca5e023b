"""Accounts: one address holding several assets, reached all at once by a takeover or a quorum of keys."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pytest
from conftest import BASE, build, load, losses

from custodysim.errors import ScenarioError
from custodysim.simulation.engine import simulate_trial
from custodysim.simulation.model import compile_scenario

BALANCES = {"vault": 1000.0, "vault_eth": 5000.0, "vault_usdc": 2_000_000.0}
PRICES = {"BTC": 60_000.0, "ETH": 3_000.0, "USDC": 1.0}


def _safe(account: bool, tampering: str = "takeover", keys: bool = False) -> dict[str, Any]:
    """A smart-contract safe holding BTC, ETH and USDC (one wallet per asset), as one account or three addresses.

    The attacker reaches the signing UI on day 1 and rewrites the next daily transfer out of the BTC
    wallet; with ``keys`` it steals the safe's only key instead, and strikes once, at the largest wallet.
    """
    doc = build(copy.deepcopy(BASE), settings={"horizon_days": 365, "trials": 20, "seed": 3,
                                              "max_campaigns_per_threat": 1})
    doc["assets"] = {a: {"price_usd": p} for a, p in PRICES.items()}
    vault = doc["wallets"]["vault"]
    vault["balance"] = BALANCES["vault"]
    for wid, asset in (("vault_eth", "ETH"), ("vault_usdc", "USDC")):
        doc["wallets"][wid] = {**copy.deepcopy(vault), "asset": asset, "balance": BALANCES[wid]}
    if account:
        for wid in BALANCES:
            doc["wallets"][wid]["account"] = "safe"
    threat = doc["threats"]["apt"]
    threat.update(campaigns_per_year=0.0, forced_campaign_days=[0.0], tampering=tampering)
    if keys:
        doc["access"] = [{"from": "laptop", "to": "vault_hsm", "p_success": 1.0, "time_days": 1.0}]
        doc["systems"]["vault_hsm"]["kind"] = "server"  # a key that can be copied
        threat["strike"] = {"aim": "largest", "wait_until_ready": False, "once": True}
    return doc


def _lost_by_wallet(doc: dict[str, Any]) -> dict[str, np.ndarray]:
    rows = losses(doc, trials=20)["baseline"]
    return {wid: rows.numbers[f"loss_usd_wallet_{wid}"] for wid in BALANCES}


def test_a_takeover_of_a_three_asset_account_loses_all_three_at_once():
    """Taking over the account's logic takes every asset at its address, in one event of the trial."""
    lost = _lost_by_wallet(_safe(account=True))
    sent = {"vault": 2.0}  # the daily 1 BTC transfers of days 0 and 1 left before the attacker was ready
    for wid, asset in (("vault", "BTC"), ("vault_eth", "ETH"), ("vault_usdc", "USDC")):
        np.testing.assert_allclose(lost[wid], (BALANCES[wid] - sent.get(wid, 0.0)) * PRICES[asset], rtol=1e-9)
    model = compile_scenario(load(_safe(account=True)).baseline)
    story = simulate_trial(model, 7, 0, tell=True).story
    taken = [t for t, line in story if "takes over" in line]
    assert len(taken) == 3 and len(set(taken)) == 1


def test_three_addresses_lose_only_the_one_taken_over():
    """The same wallets as three addresses: the takeover of the BTC wallet's logic takes the BTC only."""
    lost = _lost_by_wallet(_safe(account=False))
    assert (lost["vault"] > 0).all()
    assert lost["vault_eth"].max() == 0 and lost["vault_usdc"].max() == 0


@pytest.mark.parametrize(("account", "drained"), [(True, {"vault", "vault_eth", "vault_usdc"}), (False, {"vault"})])
def test_a_one_shot_key_theft_drains_every_asset_of_the_account(account, drained):
    """A campaign that strikes once with the account's keys drains every asset there; at three addresses only the largest."""
    lost = _lost_by_wallet(_safe(account=account, keys=True))
    assert {wid for wid, x in lost.items() if (x > 0).all()} == drained
    assert {wid for wid, x in lost.items() if x.max() == 0} == set(BALANCES) - drained


def test_an_account_of_one_asset_changes_nothing():
    """A wallet naming an account of its own (no key loss) gives the rows of the wallet without one."""
    doc = build(copy.deepcopy(BASE), settings={"horizon_days": 365, "trials": 300, "seed": 3})
    plain = losses(doc, trials=300)["baseline"]
    doc["wallets"]["vault"]["account"] = "safe"
    named = losses(doc, trials=300)["baseline"]
    for column in plain.numbers:
        np.testing.assert_array_equal(named.numbers[column], plain.numbers[column])


def test_an_account_is_locked_out_all_at_once():
    """Lost keys lock every asset of the account together: each is locked out at the same trials."""
    doc = _safe(account=True)
    doc["threats"]["apt"]["forced_campaign_days"] = []
    doc["operations"] = {"transfers": []}
    for wid in BALANCES:
        doc["wallets"][wid]["custody"] = {"scheme": "multisig", "threshold": 2, "key_loss": {"rate_per_year": 0.8},
                                          "signers": [{"id": f"k{i}", "key_store": "vault_hsm"} for i in range(3)]}
    rows = losses(doc, trials=400)["baseline"]
    out = {wid: rows.numbers[f"loss_usd_wallet_{wid}"] > 0 for wid in BALANCES}
    assert 0 < out["vault"].mean() < 1
    assert np.array_equal(out["vault"], out["vault_eth"]) and np.array_equal(out["vault"], out["vault_usdc"])


@pytest.mark.parametrize(("change", "message"), [
    ({"vault_eth": {"pipeline": []}}, r"wallets\.vault_eth\.pipeline: differs from that of wallet 'vault'"),
    ({"vault_usdc": {"asset": "ETH"}}, r"wallets\.vault_usdc\.asset: ETH is held by wallet 'vault_eth'"),
    ({"vault_eth": {"account": "vault_usdc"}, "vault_usdc": {"account": None}},
     r"wallets\.vault_eth\.account: 'vault_usdc' is the id of a wallet outside this account"),
])
def test_wallets_of_one_account_share_what_an_address_shares(change, message):
    """Wallets of one account must share custody, pipeline and requesters, and hold different assets."""
    doc = _safe(account=True)
    for wid, fields in change.items():
        doc["wallets"][wid].update(fields)
        if doc["wallets"][wid].get("account", "") is None:
            del doc["wallets"][wid]["account"]
    with pytest.raises(ScenarioError, match=message):
        load(doc)
