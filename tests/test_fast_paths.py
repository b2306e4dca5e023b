"""The engine's shortcuts give exactly what the plain simulation gives.

A run avoids work in six ways: whole chunks of trials in which nobody gets a foothold are screened with
numpy; trials whose campaigns never reach a wallet skip SimPy (and variants that would replay such a
trial alike share the replay); a trial's ledger starts from the quiet timeline at the attacker's first
contact; requests to an empty wallet that would send nothing are skipped; once the attacker is done,
recurring transfers a wallet surely pays in full are settled at once. Each test here runs the same
trials with and without a shortcut and compares the results.
"""

from __future__ import annotations

import dataclasses
import math
import re
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
from conftest import load
from hypothesis import given
from hypothesis import strategies as st
from test_properties import PROPERTY, scenarios

from custodysim.running.runner import columns_for, quiet_result, row_of, run_trials
from custodysim.scenario.distributions import poisson_quantile, poisson_quantiles
from custodysim.scenario.loader import load_scenario
from custodysim.simulation.campaigns import sample_campaigns, screen_trials
from custodysim.simulation.engine import TrialResult, World, replay_harmless, simulate_trial
from custodysim.simulation.keyloss import locks
from custodysim.simulation.model import CompiledScenario, compile_scenario
from custodysim.simulation.randomness import TrialRandom, uniform, uniform_array
from custodysim.simulation.treasury import QuietTimeline, Treasury, quiet_timeline

REGRESSIONS = Path(__file__).parent / "regressions"
BUNDLED = ["scenarios/dmm-2024.yaml", "scenarios/hot-wallet-key-theft.yaml", "scenarios/key-concentration.yaml"]
# Incident replays force a campaign at day 0 in every trial: every trial reaches the engine, none is screened.
REPLAYS = sorted(str(p.relative_to(Path(__file__).parent.parent)) for p in (Path(__file__).parent.parent / "scenarios" / "incidents").glob("*.yaml"))


def _plain_world(model: CompiledScenario, seed: int, trial: int) -> TrialResult:
    """Simulate a trial the long way, with none of the shortcuts.

    SimPy always, a fresh ledger from day 0, every daily request, an operations clock that wakes at
    every event while a campaign can rewrite transfers (waiting to be ready or not), and every event to the
    horizon run one by one.
    """
    rnd = TrialRandom(seed, trial)
    world = World(model, rnd, sample_campaigns(model, rnd), locks=locks(model, rnd))
    with mock.patch.object(QuietTimeline, "at", lambda self, t: Treasury(model)), \
            mock.patch.object(Treasury, "_skip_dry", lambda self, limit: False), \
            mock.patch.object(World, "_finish_operations", lambda self: self.treasury.advance(model.horizon)), \
            mock.patch.object(World, "_waits", staticmethod(lambda c, wid, t: False)), \
            mock.patch.object(Treasury, "next_transfer_time", lambda self, sources: self._next_event()[0]):
        result = world.run()
        if world._treasury is None:  # never touched: the plain ledger runs the whole year at the end
            ledger = Treasury(model)
            ledger.advance(model.horizon)
            result.ops = ledger.tally
    return result


def _assert_same(fast: TrialResult, plain: TrialResult) -> None:
    """Paths and stops identical; money figures equal up to float rounding (flows summed in other pieces)."""
    close = {"rel": 1e-9, "abs": 1e-9}
    assert fast.loss_usd == pytest.approx(plain.loss_usd, **close)
    assert fast.loss_by_asset == pytest.approx(plain.loss_by_asset, **close)
    assert fast.loss_usd_by_wallet == pytest.approx(plain.loss_usd_by_wallet, **close)
    assert (fast.campaigns, fast.footholds, fast.stops) == (plain.campaigns, plain.footholds, plain.stops)
    # The path is the worst campaign's; two campaigns can lose the same up to rounding, so compare its nodes.
    assert [re.sub(r"@[0-9.]+d", "", chain) for chain in fast.attack_path] == \
        [re.sub(r"@[0-9.]+d", "", chain) for chain in plain.attack_path]
    for a, b in [(fast.t_first_access, plain.t_first_access), (fast.t_first_theft, plain.t_first_theft),
                 (fast.t_first_alarm, plain.t_first_alarm)]:
        assert a == b or (math.isinf(a) and math.isinf(b))
    for field in ("withdrawals_usd", "delayed_withdrawals_usd", "wait_usd_days", "transfer_delay_days"):
        assert getattr(fast.ops, field) == pytest.approx(getattr(plain.ops, field), **close), field
    assert (fast.ops.transfers_signed, fast.ops.transfers_delayed) == \
        (plain.ops.transfers_signed, plain.ops.transfers_delayed)


@PROPERTY
@given(doc=scenarios(), trial=st.integers(0, 10_000))
def test_shortcuts_change_no_result_in_random_scenarios(doc, trial):
    """On generated scenarios, a trial run with every shortcut equals the plain simulation of it."""
    model = compile_scenario(load(doc).baseline)
    quiet = quiet_result(model, 11)
    _assert_same(simulate_trial(model, 11, trial, quiet), _plain_world(model, 11, trial))


@pytest.mark.parametrize("path", sorted(REGRESSIONS.glob("*.yaml")), ids=lambda p: p.stem)
def test_shortcuts_change_no_result_in_found_examples(path):
    """Scenarios hypothesis once found breaking a shortcut: 30 trials each equal their plain simulation."""
    model = compile_scenario(load_scenario(path).baseline)
    quiet = quiet_result(model, 11)
    for trial in range(30):
        _assert_same(simulate_trial(model, 11, trial, quiet), _plain_world(model, 11, trial))


@pytest.mark.parametrize("path", BUNDLED + REPLAYS)
def test_shortcuts_change_no_result_in_bundled_scenarios(path):
    """In every variant of every bundled scenario, 150 trials with shortcuts equal their plain simulation."""
    for spec in load_scenario(path).specs().values():
        model = compile_scenario(spec)
        quiet = quiet_result(model, 3)
        for trial in range(150):
            _assert_same(simulate_trial(model, 3, trial, quiet), _plain_world(model, 3, trial))


@pytest.mark.parametrize("path", BUNDLED + REPLAYS)
def test_screened_chunk_equals_trial_by_trial_rows(path):
    """A chunk's rows, screened with numpy, equal the rows of its trials simulated one by one."""
    specs = load_scenario(path).specs()
    models = {name: compile_scenario(spec) for name, spec in specs.items()}
    cols = columns_for(models)
    for model in models.values():
        quiet = quiet_result(model, 5)
        numbers, texts, _ = run_trials(model, 5, 1000, 300, cols, quiet)
        for i in range(300):
            row, text = row_of(1000 + i, simulate_trial(model, 5, 1000 + i, quiet), cols)
            np.testing.assert_array_equal(numbers[i], np.array(row))
            assert texts[i] == text


def test_harmless_replay_declines_trials_that_reach_a_wallet():
    """The SimPy-free replay takes exactly the trials in which no campaign takes a node that acts on a wallet."""
    model = compile_scenario(load_scenario(BUNDLED[0]).baseline)
    declined = caught_early = 0
    for trial in range(400):
        rnd = TrialRandom(1, trial)
        campaigns = sample_campaigns(model, rnd)
        if not campaigns:
            continue
        world = World(model, rnd, [c.fresh() for c in campaigns])
        world.run()
        reached = any(node in model.capability_nodes for c in world.campaigns for node in c.held)
        assert (replay_harmless(model, rnd, campaigns) is None) == reached
        declined += reached
        caught_early += not reached and any(step.node in model.capability_nodes for c in campaigns for step in c.plan)
    assert declined > 20  # the scenario does reach its wallets in a good share of trials
    assert caught_early > 5  # and it catches some campaigns before they reach the wallets they would have


@given(seed=st.integers(0, 2**63), index=st.integers(0, 5000), first=st.integers(0, 10**9))
def test_array_draws_equal_scalar_draws(seed, index, first):
    """uniform_array gives, trial for trial, the numbers uniform gives."""
    trials = np.arange(first, first + 50)
    expected = [uniform(seed, "stream/x", int(t), index) for t in trials]
    assert uniform_array(seed, "stream/x", trials, index).tolist() == expected


@given(lam=st.floats(0.0, 60.0), cap=st.integers(0, 60))
def test_array_poisson_quantiles_equal_scalar_ones(lam, cap):
    """poisson_quantiles gives the integers poisson_quantile gives, at the cap too."""
    u = uniform_array(1, "p", np.arange(400))
    assert poisson_quantiles(lam, u, cap).tolist() == [poisson_quantile(lam, float(x), cap) for x in u]


def test_screen_counts_campaigns_like_the_sampler():
    """The screen's campaign counts equal the sampler's, and every trial it lets pass has no foothold."""
    model = compile_scenario(load_scenario(BUNDLED[0]).baseline)
    counts, needed = screen_trials(model, 9, np.arange(2000))
    for trial in range(2000):
        campaigns = sample_campaigns(model, TrialRandom(9, trial))
        assert counts[trial] == len(campaigns)
        if not needed[trial]:
            assert all(not c.plan and c.insider is None for c in campaigns)


def _fields(obj: object) -> dict[str, object]:
    return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}  # type: ignore[arg-type]


def test_ledger_copy_is_independent():
    """A copied ledger equals its original and shares no mutable state with it."""
    model = compile_scenario(load_scenario(BUNDLED[1]).baseline)
    ledger = Treasury(model)
    ledger.advance(100.0)
    ledger.freeze("hot", 100.0, 101.0)
    twin = ledger.copy()
    assert _fields(twin.tally) == _fields(ledger.tally)
    assert {w: _fields(s) for w, s in twin.wallets.items()} == {w: _fields(s) for w, s in ledger.wallets.items()}
    twin.advance(200.0)
    twin.freeze("hot", 150.0, 151.0)
    assert ledger.now == 100.0 and ledger.wallets["hot"].freezes == [(100.0, 101.0)]


def test_an_alarm_before_any_wallet_is_reached_leaves_operations_untouched():
    """A campaign caught before it holds a key, a pipeline or a request account never copies the ledger."""
    model = compile_scenario(load_scenario(BUNDLED[0]).baseline)
    untouched = 0
    for trial in range(600):
        rnd = TrialRandom(2, trial)
        world = World(model, rnd, sample_campaigns(model, rnd))
        result = world.run()
        reached = any(node in model.capability_nodes for c in world.campaigns for node in c.held)
        if not reached and result.stops:
            assert world._treasury is None
            assert result.ops == quiet_timeline(model).final.tally
            untouched += 1
    assert untouched > 10  # the scenario's endpoint detection catches campaigns early in a good share of trials
