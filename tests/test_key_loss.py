"""Lost keys: wallets locked for want of a quorum, and lock-outs as a loss apart from theft."""

from __future__ import annotations

import copy
import itertools
import math
from typing import Any

import numpy as np
import pytest
from conftest import BASE, build, load, losses
from hypothesis import given, settings
from hypothesis import strategies as st

from custodysim.errors import ScenarioError
from custodysim.simulation.engine import simulate_trial
from custodysim.simulation.keyloss import _group_locked, locks, may_lock
from custodysim.simulation.model import compile_scenario
from custodysim.simulation.randomness import TrialRandom

BALANCE = 1000.0


def _vault(m: int, n: int, key_loss: dict[str, Any] | None, attacker: bool = False,
           transfers: bool = False) -> dict[str, Any]:
    """A 1,000 BTC vault signed m-of-n by keys on their own servers, losing keys as ``key_loss`` says."""
    doc = build(copy.deepcopy(BASE), settings={"horizon_days": 365, "trials": 2000, "seed": 3})
    doc["systems"].update({f"ks{i}": {"kind": "server", "owner": "ex"} for i in range(n)})
    custody: dict[str, Any] = {"scheme": "multisig", "threshold": m,
                               "signers": [{"id": f"k{i}", "key_store": f"ks{i}"} for i in range(n)]}
    if key_loss is not None:
        custody["key_loss"] = key_loss
    doc["wallets"]["vault"]["custody"] = custody
    if not transfers:
        doc["operations"] = {"transfers": []}
    if attacker:  # the attacker copies every key at day 0 and drains at once
        doc["access"] = [{"from": "laptop", "to": f"ks{i}", "p_success": 1.0, "time_days": 0.0} for i in range(n)]
        doc["threats"]["apt"].update(campaigns_per_year=0.0, forced_campaign_days=[0.0])
    else:
        doc["threats"]["apt"]["campaigns_per_year"] = 0.0
    return doc


def _binomial_tail(n: int, k: int, p: float) -> float:
    """P(at least k of n independent events of probability p)."""
    return sum(math.comb(n, j) * p**j * (1 - p) ** (n - j) for j in range(k, n + 1))


@pytest.mark.parametrize("m", [1, 2, 3, 4, 5])
def test_lock_out_matches_the_binomial_closed_form(m):
    """With no attacker and no recovery, a 1,000 BTC m-of-5 vault loses its balance with P(more than 5 - m of 5 keys lost)."""
    rate, trials = 0.3, 4000
    rows = losses(_vault(m, 5, {"rate_per_year": rate}), trials=trials)["baseline"]
    p_key = 1 - math.exp(-rate)  # a key is lost within the year
    exact = BALANCE * _binomial_tail(5, 5 - m + 1, p_key)
    lost = rows.numbers["loss_usd_lock_out"]
    se = float(np.std(lost, ddof=1)) / math.sqrt(trials)
    assert abs(float(np.mean(lost)) - exact) <= 4 * se + 1e-9
    assert set(np.unique(lost)) <= {0.0, BALANCE}  # all or nothing: the vault has no flows
    assert np.array_equal(rows.loss, lost)  # nothing else is lost: there is no attacker


def test_lock_out_loss_rises_with_the_threshold_in_every_trial():
    """At fixed n, the same key losses lock out every trial a lower threshold locks out, and more (common random numbers)."""
    kl = {"rate_per_year": 0.5, "recovery_days": 20, "unrecoverable_probability": 0.5}
    lost = [losses(_vault(m, 5, kl), trials=1500)["baseline"].numbers["loss_usd_lock_out"] for m in range(1, 6)]
    for lower, higher in itertools.pairwise(lost):
        assert np.all(higher >= lower)
    assert lost[-1].mean() > lost[0].mean()


def test_keys_restored_in_time_lock_nothing_for_good():
    """Keys that always come back lock the wallet for a while (outflows wait) and lose nothing."""
    doc = _vault(3, 3, {"rate_per_year": 2.0, "recovery_days": 10}, transfers=True)
    rows = losses(doc, trials=400)["baseline"]
    quiet = losses(_vault(3, 3, None, transfers=True), trials=1)["baseline"].numbers["transfers_signed"][0]
    assert rows.loss.max() == 0
    locked = rows.numbers["locks"] > 0
    assert locked.mean() > 0.9
    # the daily transfer out of the vault waits out each lock: fewer are made in the year, more so with more locks
    signed = rows.numbers["transfers_signed"]
    assert np.all(signed[locked] < quiet) and np.all(signed[~locked] == quiet)
    assert np.corrcoef(rows.numbers["locks"], signed)[0, 1] < -0.5


def test_a_lock_does_not_hold_an_attacker_with_its_own_keys():
    """A wallet locked by lost keys is still drained by an attacker holding a quorum of copied keys."""
    locked_for_good = {"rate_per_year": 100.0, "recovery_days": 300}  # every key lost within days, back late
    rows = losses(_vault(2, 3, locked_for_good, attacker=True), trials=50)["baseline"]
    assert (rows.numbers["loss_usd_key_theft"] > 0).all()


def test_a_lock_out_leaves_nothing_to_steal():
    """Once a wallet is locked out its balance is lost, not stolen again: theft and lock-out never add past the balance."""
    doc = _vault(2, 3, {"rate_per_year": 50.0}, attacker=True)
    doc["access"] = [{**e, "time_days": 30.0} for e in doc["access"]]  # the attacker comes a month later
    rows = losses(doc, trials=200)["baseline"]
    assert (rows.numbers["loss_usd_lock_out"] > 0).mean() > 0.9
    np.testing.assert_allclose(rows.loss, BALANCE, rtol=1e-12)


def test_a_signer_may_lose_its_key_at_its_own_rate():
    """A signer's own key_loss replaces the custody's: a key that is never lost keeps a 1-of-2 wallet open."""
    doc = _vault(1, 2, {"rate_per_year": 100.0})
    doc["wallets"]["vault"]["custody"]["signers"][1]["key_loss"] = {"rate_per_year": 0.0}
    rows = losses(doc, trials=200)["baseline"]
    assert rows.loss.max() == 0 and rows.numbers["locks"].max() == 0


def test_without_key_loss_no_trial_locks():
    """A custody without key_loss never locks: the lock-out column is zero and the rows are those of no key loss at all."""
    rows = losses(_vault(2, 3, {"rate_per_year": 0.0}), trials=300)["baseline"]
    plain = losses(_vault(2, 3, None), trials=300)["baseline"]
    for column in plain.numbers:
        np.testing.assert_array_equal(rows.numbers[column], plain.numbers[column])
    assert rows.numbers["locks"].max() == 0


def test_the_trial_told_alone_gives_the_rows_of_the_run():
    """simulate_trial (trace, stories) finds the same lock-outs as a run of many trials."""
    doc = _vault(3, 5, {"rate_per_year": 0.8, "recovery_days": 30, "unrecoverable_probability": 0.3}, transfers=True)
    rows = losses(doc, trials=300)["baseline"]
    model = compile_scenario(load(doc).baseline)
    for trial in range(0, 300, 7):
        result = simulate_trial(model, 7, trial, tell=True)
        assert result.loss_usd_by_path["lock_out"] == pytest.approx(rows.numbers["loss_usd_lock_out"][trial], abs=1e-9)
        assert result.locks == rows.numbers["locks"][trial]


@settings(max_examples=60, deadline=None)
@given(m=st.integers(1, 4), extra=st.integers(0, 3), rate=st.floats(0.05, 30.0),
       recovery=st.one_of(st.none(), st.floats(0.1, 200.0)), unrecoverable=st.floats(0.0, 1.0))
def test_every_trial_that_locks_is_found_by_the_chunk_screen(m, extra, rate, recovery, unrecoverable):
    """may_lock flags every trial in which locks() finds a lock (it may flag more)."""
    kl: dict[str, Any] = {"rate_per_year": rate}
    if recovery is not None:
        kl.update(recovery_days=recovery, unrecoverable_probability=unrecoverable)
    model = compile_scenario(load(_vault(m, m + extra, kl)).baseline)
    trials = np.arange(200)
    flagged = may_lock(model, 5, trials)
    for trial in trials.tolist():
        if locks(model, TrialRandom(5, trial)):
            assert flagged[trial]


spans = st.lists(st.tuples(st.floats(0, 100), st.one_of(st.floats(0.01, 50), st.just(math.inf))), max_size=6)


@given(lost=spans, need=st.integers(1, 4), extra=st.integers(0, 3))
def test_a_group_is_locked_exactly_while_too_many_keys_are_away(lost, need, extra):
    """At any instant, a group lies in a locked span if and only if more keys are away than it can spare."""
    size = need + extra
    away = [(a, a + d) for a, d in lost]
    locked = _group_locked(need, size, away)
    for t in sorted({a for a, _ in away} | {b for _, b in away if b < math.inf} | {0.0, 1e3}):
        for probe in (t, t + 1e-7):
            out = sum(a <= probe < b for a, b in away)
            assert any(a <= probe < b for a, b in locked) == (out > size - need)


def test_unrecoverable_share_needs_a_recovery():
    """unrecoverable_probability without recovery_days is refused with the field named."""
    doc = _vault(2, 3, {"rate_per_year": 0.1, "unrecoverable_probability": 0.2})
    with pytest.raises(ScenarioError, match=r"wallets\.vault\.custody\.key_loss.*recovery_days"):
        load(doc)
