"""Structured quorums: every group of a custody scheme signs with its own threshold."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from conftest import BASE, build, load, losses
from hypothesis import given
from hypothesis import strategies as st

from custodysim.errors import ScenarioError
from custodysim.simulation.model import SignerModel, WalletModel, compile_scenario
from custodysim.simulation.theft import choose_quorum

EXCHANGE_KEYS = [f"ks{i}" for i in range(1, 6)]


def _three_of_five_and_custodian(reached: list[str], groups: bool = True) -> dict[str, Any]:
    """A vault signed by 3 of the exchange's 5 keys AND the custodian's key; the attacker reaches ``reached``."""
    doc = build(copy.deepcopy(BASE), settings={"horizon_days": 365, "trials": 50, "seed": 3,
                                              "max_campaigns_per_threat": 1})
    doc["organisations"]["custodian"] = {"kind": "custody_provider"}
    doc["systems"].update({ks: {"kind": "server", "owner": "ex"} for ks in EXCHANGE_KEYS})
    doc["systems"]["custodian_hsm"] = {"kind": "server", "owner": "custodian"}
    signers = [{"id": ks, "key_store": ks} for ks in EXCHANGE_KEYS] + [{"id": "co", "key_store": "custodian_hsm"}]
    custody: dict[str, Any] = {"scheme": "multisig", "signers": signers}
    if groups:
        custody["groups"] = [{"threshold": 3, "signers": EXCHANGE_KEYS}, {"threshold": 1, "signers": ["co"]}]
    else:
        custody["threshold"] = 4
    doc["wallets"]["vault"]["custody"] = custody
    doc["access"] = [{"from": "laptop", "to": node, "p_success": 1.0, "time_days": 1.0} for node in reached]
    doc["threats"]["apt"].update(campaigns_per_year=0.0, forced_campaign_days=[0.0])
    return doc


def test_four_exchange_keys_without_the_co_signer_cannot_sign():
    """An attacker holding 4 of the exchange's 5 keys but not the custodian's cannot sign a '3 of 5 AND co-signer' wallet."""
    rows = losses(_three_of_five_and_custodian(EXCHANGE_KEYS[:4]), trials=50)["baseline"]
    assert rows.loss.max() == 0


def test_three_exchange_keys_and_the_co_signer_can_sign():
    """An attacker holding 3 of the exchange's keys and the custodian's drains the '3 of 5 AND co-signer' wallet."""
    rows = losses(_three_of_five_and_custodian([*EXCHANGE_KEYS[:3], "custodian_hsm"]), trials=50)["baseline"]
    assert (rows.loss > 0).all()
    np.testing.assert_allclose(rows.numbers["loss_BTC"], 1000.0 - 2.0, rtol=1e-9)  # all but the transfers of days 0 and 1


def test_plain_four_of_six_falls_to_the_same_four_keys():
    """The same six keys as a plain 4-of-6 fall to the 4 exchange keys the structure resists."""
    doc = _three_of_five_and_custodian(EXCHANGE_KEYS[:4], groups=False)
    assert (losses(doc, trials=50)["baseline"].loss > 0).all()


def _rewritten_vault(groups: bool) -> dict[str, Any]:
    """Three officers who do not check, and a co-signer whose engine keeps a whitelist; the UI is the attacker's."""
    doc = build(copy.deepcopy(BASE), settings={"horizon_days": 365, "trials": 50, "seed": 5,
                                              "max_campaigns_per_threat": 1})
    for person in ("alice", "bob", "carol"):
        doc["people"][person]["verification_probability"] = 0.0
    officers = [{"id": f"o_{p}", "holder": p, "key_store": f"dev_{p}"} for p in ("alice", "bob", "carol")]
    custody: dict[str, Any] = {"scheme": "multisig",
                               "signers": [*officers, {"id": "co", "key_store": "policy_engine"}]}
    if groups:  # 2 of 3 officers AND the co-signer
        custody["groups"] = [{"threshold": 2, "signers": [o["id"] for o in officers]},
                             {"threshold": 1, "signers": ["co"]}]
    else:  # 3 of 4, the co-signer listed last: the officers alone make a quorum
        custody["threshold"] = 3
    doc["wallets"]["vault"].update(custody=custody, policy={"whitelist": {"enforced_by": "policy_engine"}})
    doc["threats"]["apt"].update(campaigns_per_year=0.0, forced_campaign_days=[0.0])
    return doc


@pytest.mark.parametrize(("groups", "binds"), [(True, True), (False, False)])
def test_a_co_signers_policy_binds_exactly_when_its_group_is_required(groups, binds):
    """A rewritten transfer meets the co-signer's whitelist when the co-signer's group must sign, and only then."""
    rows = losses(_rewritten_vault(groups), trials=50)["baseline"]
    if binds:
        assert rows.loss.max() == 0
        assert all("whitelist:vault" in s for s in rows.text("stopped_by"))
    else:
        assert (rows.loss > 0).all()


def test_legitimate_transfers_are_signed_by_the_first_of_each_group():
    """The operational quorum is the first ``threshold`` signers listed of each group, in the order listed."""
    doc = _rewritten_vault(groups=True)
    doc["wallets"]["vault"]["custody"]["groups"][0]["signers"] = ["o_carol", "o_bob", "o_alice"]
    model = compile_scenario(load(doc).baseline)
    assert [s.id for s in model.wallets["vault"].operational_quorum] == ["o_alice", "o_bob", "co"]


def test_one_group_of_every_signer_is_plain_m_of_n():
    """A custody with one group of all its signers gives the same rows as the same m-of-n without groups."""
    plain = build(copy.deepcopy(BASE))
    plain["wallets"]["vault"]["custody"] = {"scheme": "multisig", "threshold": 2, "signers": [
        {"id": "k1", "holder": "alice", "key_store": "vault_hsm"},
        {"id": "k2", "holder": "bob", "key_store": "dev_bob"},
        {"id": "k3", "holder": "carol", "key_store": "dev_carol"}]}
    grouped = copy.deepcopy(plain)
    custody = grouped["wallets"]["vault"]["custody"]
    del custody["threshold"]
    custody["groups"] = [{"threshold": 2, "signers": ["k1", "k2", "k3"]}]
    a, b = losses(plain, trials=200)["baseline"], losses(grouped, trials=200)["baseline"]
    assert a.numbers.keys() == b.numbers.keys()
    for column in a.numbers:
        np.testing.assert_array_equal(a.numbers[column], b.numbers[column], err_msg=column)


@pytest.mark.parametrize(("groups", "threshold", "message"), [
    ([{"threshold": 1, "signers": ["k0", "k1"]}], 1, "remove the custody's threshold"),
    ([{"threshold": 1, "signers": ["k0", "kx"]}], None, "do(es)? not have: kx"),
    ([{"threshold": 1, "signers": ["k0", "k1"]}, {"threshold": 1, "signers": ["k1"]}], None, "in several: k1"),
    ([{"threshold": 1, "signers": ["k0"]}], None, "in none: k1"),
    ([{"threshold": 3, "signers": ["k0", "k1"]}], None, "exceeds the group's 2 signers"),
])
def test_a_structure_that_cannot_sign_as_written_is_refused(groups, threshold, message):
    """Groups that name unknown or shared signers, leave one out, ask too much, or clash with a threshold are refused."""
    custody: dict[str, Any] = {"scheme": "multisig", "groups": groups, "signers": [
        {"id": "k0", "holder": "alice", "key_store": "vault_hsm"},
        {"id": "k1", "holder": "bob", "key_store": "dev_bob"}]}
    if threshold is not None:
        custody["threshold"] = threshold
    with pytest.raises(ScenarioError, match=message) as caught:
        load(build(copy.deepcopy(BASE), wallets__vault__custody=custody))
    assert "wallets.vault.custody" in str(caught.value)


@dataclass
class _Holder:
    """A stand-in campaign that can sign with exactly the given signer indices."""

    usable: frozenset[int]

    def usable_signers(self, wallet: WalletModel, t: float) -> list[SignerModel]:
        return [s for s in wallet.signers if s.index in self.usable]


@st.composite
def _structures(draw: st.DrawFn) -> tuple[WalletModel, frozenset[int]]:
    sizes = draw(st.lists(st.integers(1, 4), min_size=1, max_size=4))
    groups, start = [], 0
    for size in sizes:
        groups.append((draw(st.integers(1, size)), frozenset(range(start, start + size))))
        start += size
    signers = tuple(SignerModel(i, f"k{i}", None, f"ks{i}", (), True) for i in range(start))
    wallet = WalletModel("w", "BTC", 1.0, 1.0, sum(need for need, _ in groups), signers, tuple(groups),
                         frozenset(), frozenset(), (), (), None, None, None, "w")
    held = frozenset(draw(st.sets(st.integers(0, start - 1))))
    return wallet, held


@given(_structures())
def test_the_attacker_signs_exactly_when_every_group_has_its_threshold(case):
    """Held keys make a quorum iff each group's threshold is met from its own keys; the quorum is that many keys."""
    wallet, held = case
    quorum = choose_quorum(_Holder(held), wallet, 0.0)  # type: ignore[arg-type]
    enough = all(len(held & members) >= need for need, members in wallet.groups)
    assert (quorum is not None) == enough
    if quorum is not None:
        assert len(quorum) == wallet.threshold
        for need, members in wallet.groups:
            assert sum(s.index in members for s in quorum) == need
        assert all(s.index in held for s in quorum)
