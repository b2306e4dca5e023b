"""Invariants that hold in every trial of every scenario (hypothesis-generated scenarios)."""

from __future__ import annotations

import copy
import os
from unittest import mock

from conftest import BASE, load
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from custodysim.simulation.campaigns import sample_campaigns
from custodysim.simulation.engine import World
from custodysim.simulation.keyloss import locks
from custodysim.simulation.model import compile_scenario
from custodysim.simulation.randomness import TrialRandom
from custodysim.simulation.treasury import Treasury

amount = st.floats(min_value=0.0, max_value=1000.0, allow_nan=False)
balance = st.floats(min_value=1.0, max_value=1000.0)
prob = st.floats(min_value=0.0, max_value=1.0)
likely = st.floats(min_value=0.3, max_value=1.0)  # edges and campaigns that often get somewhere
hours = st.floats(min_value=0.0, max_value=72.0)
key_loss = st.one_of(st.none(), st.fixed_dictionaries(
    {"rate_per_year": st.floats(0.0, 20.0)},
    optional={"recovery_days": st.floats(0.5, 400.0), "unrecoverable_probability": prob}).filter(
    lambda k: "recovery_days" in k or "unrecoverable_probability" not in k))


@st.composite
def scenarios(draw):
    """A hot wallet fed from a vault, a cold wallet, random flows, policies, custody, threats and controls."""
    doc = copy.deepcopy(BASE)
    cap = draw(st.floats(min_value=1.0, max_value=500.0))
    low = cap * draw(st.floats(min_value=0.0, max_value=0.9))
    policy = {}
    if draw(st.booleans()):
        policy["per_transfer_limit"] = {"amount": draw(amount), "enforced_by": draw(st.sampled_from([None, "policy_engine", "ui", "chain"]))}
    if draw(st.booleans()):
        policy["daily_limit"] = {"amount": draw(amount), "enforced_by": draw(st.sampled_from([None, "policy_engine", "chain"]))}
    if draw(st.booleans()):
        policy["delay"] = {"hours": draw(hours),
                           "enforced_by": draw(st.sampled_from([None, "policy_engine", "ui", "chain", "guard"]))}
    if draw(st.booleans()):
        policy["whitelist"] = {"enforced_by": draw(st.sampled_from([None, "policy_engine", "ui", "chain", "guard"]))}
    if draw(st.booleans()):
        policy["no_logic_changes"] = {"enforced_by": draw(st.sampled_from([None, "policy_engine", "ui", "guard"]))}
    k = draw(st.integers(min_value=1, max_value=3))
    holders = ["alice", "bob", "carol"][:k]
    doc["wallets"] = {
        "hot": {"asset": "BTC", "tier": "hot", "balance": draw(balance),
                "custody": {"scheme": "single", "signers": [{"id": "h", "key_store": "hot_server"}]},
                "flows": {"withdrawals_per_day": draw(amount), "deposits_per_day": draw(amount)},
                "topup": {"source": "vault", "cap": cap, "low_water": low, "signing_hours": draw(hours)},
                "policy": dict(policy)},
        "vault": {"asset": "BTC", "tier": "warm", "balance": draw(balance) * 10,
                  "custody": {"scheme": "multisig", "threshold": draw(st.integers(1, k)),
                              "signers": [{"id": f"v{i}", "holder": h, "key_store": "vault_hsm"}
                                          for i, h in enumerate(holders)],
                              "key_loss": draw(key_loss)},
                  "pipeline": ["ui"], "policy": dict(policy)},
        "cold": {"asset": "BTC", "tier": "cold", "balance": draw(amount),
                 "custody": {"scheme": "single", "signers": [{"id": "c", "holder": "alice", "key_store": "dev_alice"}]}},
    }
    for h in holders:
        if draw(st.booleans()):
            doc["people"][h].update(verifies_on=f"dev_{h}", verification_probability=draw(prob))
    doc["operations"] = {"transfers": [
        {"from": "vault", "to": draw(st.sampled_from(["cold", "external", "hot"])), "amount": draw(amount),
         "every_days": draw(st.floats(min_value=0.5, max_value=60))},
    ]}
    doc["access"] = [
        {"from": "laptop", "to": "ui", "p_success": draw(likely), "time_days": draw(st.floats(0, 100))},
        {"from": "laptop", "to": "hot_server", "p_success": draw(likely), "time_days": draw(st.floats(0, 100))},
        {"from": "ui", "to": "vault_hsm", "p_success": draw(likely), "time_days": draw(st.floats(0, 100))},
        {"from": "ui", "to": "policy_engine", "p_success": draw(likely), "time_days": draw(st.floats(0, 100))},
        # a door the insider bob opens from the vendor's laptop to his own verification device
        {"from": "laptop", "to": "dev_bob", "p_success": draw(likely), "time_days": draw(st.floats(0, 30)),
         "opened_by": "bob"},
    ]
    doc["people"]["carol"]["exposure"] = {"phish": draw(prob)}  # a second target of the same lure
    doc["threats"]["apt"]["initial_access"] = [{"technique": "phish", "targets": ["eng", "carol"],
                                                "delay_days": draw(st.floats(0, 30)), "common_mode": draw(prob)}]
    doc["threats"]["apt"]["strike"] = {
        "aim": draw(st.sampled_from(["first", "largest", ["vault"], ["hot", "vault"]])),
        "wait_until_ready": draw(st.booleans()), "max_wait_days": draw(st.floats(0, 200)),
        "after_max_wait": draw(st.sampled_from(["fire", "give_up"])), "once": draw(st.booleans())}
    doc["organisations"]["vendor"]["notified"] = draw(st.sampled_from([
        None, {"after_hours": draw(hours), "finds_probability": draw(prob)}]))
    doc["organisations"]["ex"]["notified"] = {"after_hours": draw(hours), "finds_probability": draw(prob)}
    doc["threats"]["apt"].update(campaigns_per_year=draw(st.floats(0.5, 6)),
                                 tampering=draw(st.sampled_from(["redirect", "amount", "takeover"])),
                                 drain_interval_minutes=draw(st.floats(1, 600)))
    doc["people"]["bob"]["insider_rate_per_year"] = draw(st.sampled_from([0.0, 0.5]))
    doc["controls"] = {
        "detection": {"edr": {"watches": ["laptop", "ui"], "time_to_detect_days": {"dist": "exponential", "mean": draw(st.floats(0.5, 200))}}},
        "outflow_monitoring": {"watch": {"probability": draw(prob), "delay_hours": draw(hours)}},
        "response": {"freeze_delay_hours": draw(hours), "revoke_delay_hours": draw(hours),
                     "key_rotation_hours": draw(hours)},
        "verification": {"common_mode": draw(prob)},
    }
    return doc


def _run_checked(doc, trial):
    """Run one trial; return (world, initial balances), failing if a balance ever goes negative."""
    model = compile_scenario(load(doc).baseline)
    rnd = TrialRandom(11, trial)
    world = World(model, rnd, sample_campaigns(model, rnd), locks=locks(model, rnd))
    original = Treasury.advance

    def checked(self, t):
        original(self, t)
        for w in self.wallets.values():
            assert w.balance >= -1e-6, f"{w.spec.id} went negative: {w.balance}"
            assert w.queue >= -1e-6

    with mock.patch.object(Treasury, "advance", checked):
        world.run()
    return world, {w.id: w.balance for w in model.wallets.values()}


# STRESS_EXAMPLES=2000 explores far more scenarios (a stress run before changing the engine; minutes).
PROPERTY = settings(max_examples=int(os.environ.get("STRESS_EXAMPLES", "60")), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(doc=scenarios(), trial=st.integers(0, 10_000))
def test_funds_are_conserved(doc, trial):
    """Wallets at the end + in flight + withdrawn + sent out + stolen + locked out - deposited = wallets at the start."""
    world, initial = _run_checked(doc, trial)
    t = world.treasury
    end = (t.total("BTC") + t.withdrawn["BTC"] + t.sent_out["BTC"] + t.stolen["BTC"] + t.locked["BTC"]
           - t.deposited["BTC"])
    start = sum(initial.values())
    assert abs(end - start) <= 1e-6 * max(1.0, start, t.deposited["BTC"])


@PROPERTY
@given(doc=scenarios(), trial=st.integers(0, 10_000))
def test_loss_never_exceeds_what_the_attacker_could_reach(doc, trial):
    """Each wallet loses at most its starting balance plus everything that flowed into it."""
    world, initial = _run_checked(doc, trial)
    for wid, lost in world.loss_by_wallet.items():  # price 1 USD: USD loss = native units
        state = world.treasury.wallets[wid]
        assert lost <= initial[wid] + state.credited + 1e-6
    assert abs(sum(world.loss.values()) - world.treasury.stolen["BTC"] - world.treasury.locked["BTC"]) < 1e-6


@PROPERTY
@given(doc=scenarios(), trial=st.integers(0, 10_000))
def test_cold_wallet_out_of_reach_is_never_hit(doc, trial):
    """A wallet whose only key is on a device no edge leads to, and which no pipeline touches, loses nothing."""
    world, _ = _run_checked(doc, trial)
    assert world.loss_by_wallet.get("cold", 0.0) == 0.0
