"""How a campaign strikes: the wallet it aims at, whether it waits until ready, whether it strikes once."""

from __future__ import annotations

import copy
from typing import Any

from conftest import BASE, build, load, losses, signers
from hypothesis import given
from hypothesis import strategies as st
from test_properties import PROPERTY, scenarios

from custodysim.simulation.campaigns import sample_campaigns
from custodysim.simulation.engine import World
from custodysim.simulation.model import compile_scenario
from custodysim.simulation.randomness import TrialRandom


def _two_wallets_behind_one_screen(aim: Any) -> dict[str, Any]:
    """A small and a big wallet signed through the same compromised interface; the small one moves first."""
    doc = build(copy.deepcopy(BASE), settings={"horizon_days": 365, "trials": 300, "seed": 1,
                                              "max_campaigns_per_threat": 1})
    single = {"scheme": "single", "signers": [{"id": "k", "holder": "alice", "key_store": "vault_hsm"}]}
    doc["wallets"] = {
        "small": {"asset": "BTC", "tier": "warm", "balance": 100.0, "custody": single, "pipeline": ["ui"]},
        "big": {"asset": "BTC", "tier": "warm", "balance": 10_000.0, "custody": single, "pipeline": ["ui"]},
    }
    doc["operations"] = {"transfers": [
        {"from": "small", "to": "external", "amount": 1.0, "every_days": 20.0, "first_day": 0.0},
        {"from": "big", "to": "external", "amount": 1.0, "every_days": 20.0, "first_day": 10.0},
    ]}
    doc["threats"]["apt"]["campaigns_per_year"] = 20.0
    doc["threats"]["apt"]["strike"] = {"aim": aim, "wait_until_ready": True, "once": True}
    # the alarm after a theft would freeze the other wallet: only the first strike can count
    doc["controls"] = {"outflow_monitoring": {"watch": {"probability": 1.0, "delay_hours": 0.1}}}
    return doc


def test_a_largest_attacker_takes_the_big_wallet_although_the_small_one_moves_first():
    """Behind one poisoned screen, a `largest` attacker takes the big wallet; a `first` one the small one."""
    largest = losses(_two_wallets_behind_one_screen("largest"), trials=300, seed=1)["baseline"]
    first = losses(_two_wallets_behind_one_screen("first"), trials=300, seed=1)["baseline"]
    hit = largest.loss > 0
    assert hit.sum() > 100
    assert (largest.numbers["loss_usd_wallet_big"][hit] > 9000).all()
    assert (largest.numbers["loss_usd_wallet_small"] == 0).all()
    # the same campaigns: where the patient one took the big wallet, the impatient one took the small one
    # first and the alarm saved the big one (it also strikes where the big one moves too late in the year)
    assert not (hit & (first.loss == 0)).any()
    assert (first.numbers["loss_usd_wallet_small"][hit] > 0).mean() > 0.3
    assert largest.loss.mean() > 1.5 * first.loss.mean()


def test_named_wallets_are_the_only_ones_struck():
    """A campaign aimed at named wallets leaves the others alone, whatever it could reach."""
    rows = losses(_two_wallets_behind_one_screen(["small"]), trials=300, seed=1)["baseline"]
    assert (rows.loss > 0).sum() > 100
    assert (rows.numbers["loss_usd_wallet_big"] == 0).all()


def _signers_on_their_own_machines(wait: bool) -> dict[str, Any]:
    """Three signers, each viewing transfers on a machine of their own that the attacker takes one by one."""
    doc = build(copy.deepcopy(BASE), settings={"horizon_days": 365, "trials": 400, "seed": 2,
                                              "max_campaigns_per_threat": 1})
    doc["systems"].update({f"pc_{h}": {"kind": "workstation", "owner": "ex"} for h in ("alice", "bob", "carol")})
    doc["wallets"]["vault"]["custody"] = {
        "scheme": "multisig", "threshold": 3,
        "signers": [{**s, "views_through": [f"pc_{h}"]} for s, h in zip(signers("alice", "bob", "carol"),
                                                                         ("alice", "bob", "carol"), strict=True)]}
    doc["access"] = [{"from": "laptop", "to": "ui", "p_success": 1.0, "time_days": 1.0}] + [
        {"from": "laptop", "to": f"pc_{h}", "p_success": 0.8, "time_days": {"dist": "exponential", "mean": 30}}
        for h in ("alice", "bob", "carol")]
    doc["threats"]["apt"]["campaigns_per_year"] = 20.0
    doc["threats"]["apt"]["strike"] = {"aim": "first", "wait_until_ready": wait, "max_wait_days": 60, "once": True}
    doc["controls"] = {"verification": {"common_mode": 0.0}}
    return doc


def test_a_patient_attacker_is_never_vetoed_by_a_signer_whose_view_it_could_have_taken():
    """A patient campaign vetoed by a signer never had that signer's machine in its plan within its wait."""
    model = compile_scenario(load(_signers_on_their_own_machines(wait=True)).baseline)
    vetoes = 0
    for trial in range(300):
        rnd = TrialRandom(2, trial)
        world = World(model, rnd, sample_campaigns(model, rnd))
        world.run()
        for c in world.campaigns:
            for stop in c.stops:
                if stop.startswith("verification:"):
                    vetoes += 1
                    person = stop.split(":", 1)[1]
                    deadline = c.first_chance + 60
                    taken = [s.time for s in c.plan if s.node == f"pc_{person}"]
                    assert not taken or taken[0] > deadline, (trial, person, taken, deadline)
    assert vetoes > 10  # machines the plan never reaches in time still leave checks to veto


def test_waiting_until_ready_loses_more_than_striking_at_once():
    """Signers compromised one by one veto an early rewrite that a patient attacker would never have sent."""
    patient = losses(_signers_on_their_own_machines(wait=True), trials=400, seed=2)["baseline"]
    eager = losses(_signers_on_their_own_machines(wait=False), trials=400, seed=2)["baseline"]
    eager_vetoes = sum("verification:" in s for s in eager.text("stopped_by"))
    patient_vetoes = sum("verification:" in s for s in patient.text("stopped_by"))
    assert eager_vetoes > 1.5 * patient_vetoes
    assert (patient.loss > 0).mean() > 10 * (eager.loss > 0).mean() > 0


def _strikes_told(world: World, label: str) -> int:
    """Count the strikes the story tells of for one campaign: rewrites, forged requests, drains started."""
    marks = (f"{label} rewrites a", f"{label} submits a forged", f"{label} signs for")
    return sum(line.startswith(marks) for _, line in world.story)


@PROPERTY
@given(doc=scenarios(), trial=st.integers(0, 10_000))
def test_a_one_shot_attacker_never_strikes_twice(doc, trial):
    """A campaign whose threat strikes once rewrites, forges or starts draining at most once in any trial."""
    doc["threats"]["apt"]["strike"]["once"] = True
    model = compile_scenario(load(doc).baseline)
    rnd = TrialRandom(13, trial)
    world = World(model, rnd, sample_campaigns(model, rnd), tell=True)
    world.run()
    for c in world.campaigns:
        if c.threat is not None:
            assert len(c.struck) <= 1
            assert _strikes_told(world, c.label) <= 1


def test_give_up_never_strikes_after_the_wait():
    """A campaign that gives up after its longest wait makes no theft past it."""
    doc = _signers_on_their_own_machines(wait=True)
    doc["threats"]["apt"]["strike"]["after_max_wait"] = "give_up"
    model = compile_scenario(load(doc).baseline)
    for trial in range(200):
        rnd = TrialRandom(2, trial)
        world = World(model, rnd, sample_campaigns(model, rnd))
        result = world.run()
        for c in world.campaigns:
            if c.loss_usd > 0:
                assert result.t_first_theft < c.first_chance + 60
