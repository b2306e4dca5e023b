"""Rules scoped to transaction types: transfers, or administrative actions (a takeover is one)."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pytest
import yaml
from conftest import BASE, build, load, losses
from test_takeover import _takeover

from custodysim.analysis.economics import scenario_economics
from custodysim.analysis.stats import summarise
from custodysim.errors import ScenarioError
from custodysim.running.runner import simulate
from custodysim.studies.run import execute_run

OPERATIONS = ("withdrawal_delay_mean_hours", "withdrawals_delayed_share", "transfers_signed", "transfers_delayed",
              "transfer_delay_hours", "signing_ceremonies", "transfers_blocked")


def _flowing(delay: dict[str, Any] | None) -> dict[str, Any]:
    """A hot wallet with customer flows, topped up from the vault, under ``delay``; no attacker."""
    doc = build(copy.deepcopy(BASE), settings={"horizon_days": 365, "trials": 20, "seed": 2})
    doc["threats"]["apt"]["campaigns_per_year"] = 0.0
    doc["wallets"]["hot"] = {
        "asset": "BTC", "tier": "hot", "balance": 10.0,
        "custody": {"scheme": "single", "signers": [{"id": "h", "key_store": "hot_server"}]},
        "flows": {"withdrawals_per_day": 3.0, "deposits_per_day": 1.0},
        "topup": {"source": "vault", "cap": 10.0, "low_water": 4.0, "signing_hours": 1.0}}
    if delay is not None:
        for wallet in ("vault", "hot"):
            doc["wallets"][wallet]["policy"] = {"delay": delay}
    return doc


def _operations(doc: dict[str, Any]) -> dict[str, np.ndarray]:
    rows = losses(doc, trials=20)["baseline"]
    return {column: rows.numbers[column] for column in OPERATIONS}


def test_a_time_lock_on_administrative_actions_adds_no_waiting_to_withdrawals():
    """A 48 h lock scoped to administrative actions leaves every operational figure as with no lock at all."""
    free = _operations(_flowing(None))
    admin = _operations(_flowing({"hours": 48.0, "enforced_by": "guard", "applies_to": "admin"}))
    every = _operations(_flowing({"hours": 48.0, "enforced_by": "guard"}))
    for column in OPERATIONS:
        np.testing.assert_array_equal(admin[column], free[column], err_msg=column)
    assert every["transfer_delay_hours"].mean() > free["transfer_delay_hours"].mean()


@pytest.mark.parametrize(("applies_to", "enforced_by", "hours_a_year"),
                         [("admin", "guard", 2 * 48.0), ("all", "guard", 2 * 48.0), ("transfers", "guard", 0.0),
                          ("admin", None, 0.0)])
def test_legitimate_administrative_actions_wait_only_on_locks_that_hold_them(applies_to, enforced_by, hours_a_year):
    """Two upgrades a year under a 48 h lock wait 96 h a year if an enforced lock holds admin actions, else none."""
    doc = _flowing({"hours": 48.0, "enforced_by": enforced_by, "applies_to": applies_to})
    doc["operations"]["admin_actions"] = [{"wallet": "vault", "per_year": 2}]
    ops = simulate(load(doc), 20, 2).losses[0]
    summary = summarise([ops], "baseline", ["BTC"], ["hot", "vault"],
                        economics=scenario_economics(load(doc).baseline, load(doc).specs()))["baseline"]["operations"]
    assert summary["admin_actions_per_year"] == 2
    assert summary["admin_wait_hours_per_year"] == hours_a_year


def test_the_reports_say_what_administrative_actions_wait(tmp_path):
    """A run with two upgrades a year under a 48 h admin lock says so under the operations table of both reports."""
    doc = _flowing({"hours": 48.0, "enforced_by": "guard", "applies_to": "admin"})
    doc["operations"]["admin_actions"] = [{"wallet": "vault", "per_year": 2}]
    path = tmp_path / "admin.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    execute_run(path, trials=20, out=tmp_path / "run")
    for report in ("report.md", "report.html"):
        text = (tmp_path / "run" / report).read_text(encoding="utf-8")
        assert "wait on time-locks that hold them: baseline 2 a year, 96 h." in " ".join(text.split()), report


def test_administrative_actions_name_a_wallet():
    """An administrative action on a wallet the scenario lacks is refused, naming the field."""
    doc = _flowing(None)
    doc["operations"]["admin_actions"] = [{"wallet": "nowhere", "per_year": 1}]
    with pytest.raises(ScenarioError, match=r"operations\.admin_actions\[0\]\.wallet: .*nowhere"):
        load(doc)


def test_a_time_lock_on_administrative_actions_still_queues_a_takeover():
    """The admin-only lock holds the takeover 24 h, where the monitor's alarm and freeze cancel it."""
    rows = losses(_takeover({"delay": {"hours": 24.0, "enforced_by": "guard", "applies_to": "admin"}},
                            monitor=1.0))["baseline"]
    assert rows.loss.max() == 0
    assert all("delay:vault" in s for s in rows.text("stopped_by"))


def test_a_time_lock_on_transfers_only_lets_a_takeover_through():
    """Scoped to transfers, the same lock does not hold the takeover: the vault is lost."""
    rows = losses(_takeover({"delay": {"hours": 24.0, "enforced_by": "guard", "applies_to": "transfers"}},
                            monitor=1.0))["baseline"]
    assert (rows.loss > 0).all()


def _co_signed(tampering: str, rule: bool, attack: bool = True) -> dict[str, Any]:
    """The vault signed by alice AND a policy co-signer that may forbid logic changes; the UI is the attacker's."""
    doc = _takeover({"no_logic_changes": {"enforced_by": "policy_engine"}} if rule else None)
    doc["threats"]["apt"]["tampering"] = tampering
    doc["people"]["alice"]["verification_probability"] = 0.0
    doc["wallets"]["vault"]["custody"] = {
        "scheme": "multisig",
        "signers": [{"id": "k1", "holder": "alice", "key_store": "vault_hsm"},
                    {"id": "co", "key_store": "policy_engine", "views_through": []}],
        "groups": [{"threshold": 1, "signers": ["k1"]}, {"threshold": 1, "signers": ["co"]}]}
    if not attack:
        doc["threats"]["apt"]["forced_campaign_days"] = []
    return doc


def test_a_co_signer_forbidding_logic_changes_stops_a_takeover():
    """An uncompromised co-signer that decodes the payload refuses the takeover and raises the alarm."""
    rows = losses(_co_signed("takeover", rule=True))["baseline"]
    assert rows.loss.max() == 0
    assert all("no_logic_changes:vault" in s for s in rows.text("stopped_by"))


def test_forbidding_logic_changes_never_blocks_a_transfer():
    """The same rule lets a rewritten transfer through (it checks administrative actions only) ..."""
    assert (losses(_co_signed("amount", rule=True))["baseline"].loss > 0).all()


def test_forbidding_logic_changes_never_blocks_a_legitimate_transfer():
    """... and with no attacker, every legitimate transfer is signed as without the rule, none blocked."""
    with_rule = losses(_co_signed("amount", rule=True, attack=False), trials=20)["baseline"].numbers
    without = losses(_co_signed("amount", rule=False, attack=False), trials=20)["baseline"].numbers
    assert with_rule["transfers_blocked"].max() == 0
    np.testing.assert_array_equal(with_rule["transfers_signed"], without["transfers_signed"])


def test_a_whitelist_scoped_to_administrative_actions_blocks_the_takeover_not_a_rewrite():
    """A guard that checks only administrative actions' targets stops a takeover but not a redirected transfer."""
    rule = {"whitelist": {"enforced_by": "guard", "applies_to": "admin"}}
    assert losses(_takeover(rule))["baseline"].loss.max() == 0
    rewrite = _takeover(rule)
    rewrite["threats"]["apt"]["tampering"] = "amount"
    assert (losses(rewrite)["baseline"].loss > 0).all()


@pytest.mark.parametrize(("policy", "message"), [
    ({"daily_limit": {"amount": 5.0, "enforced_by": "guard", "applies_to": "admin"}}, "moves none"),
    ({"no_logic_changes": {"enforced_by": "guard", "applies_to": "transfers"}}, "administrative actions only"),
])
def test_a_scope_a_rule_cannot_have_is_refused(policy, message):
    """A limit scoped to administrative actions, or a rule against logic changes scoped to transfers, is refused."""
    with pytest.raises(ScenarioError, match=message):
        load(_takeover(policy))
