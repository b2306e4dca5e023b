"""Limits over rolling windows: a stolen-key drain goes out in pieces that respect every window."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from conftest import BASE, build, load, losses
from hypothesis import given, settings
from hypothesis import strategies as st

from custodysim.errors import ScenarioError
from custodysim.simulation.campaigns import sample_campaigns
from custodysim.simulation.engine import World
from custodysim.simulation.model import compile_scenario
from custodysim.simulation.randomness import TrialRandom


def _stolen_key(limits: list[dict[str, Any]], interval_minutes: float = 10.0) -> dict[str, Any]:
    """The vault's one key lives on a server the attacker reaches on day 1; nothing detects it."""
    doc = build(copy.deepcopy(BASE), settings={"horizon_days": 365, "trials": 20, "seed": 9,
                                              "max_campaigns_per_threat": 1})
    doc["wallets"]["vault"].update(
        custody={"scheme": "single", "signers": [{"id": "k1", "key_store": "hot_server"}]},
        pipeline=[], policy={"rolling_limits": limits})
    doc["access"] = [{"from": "laptop", "to": "hot_server", "p_success": 1.0, "time_days": 1.0}]
    doc["threats"]["apt"].update(campaigns_per_year=0.0, forced_campaign_days=[0.0],
                                 drain_interval_minutes=interval_minutes)
    return doc


def _drain(doc: dict[str, Any]) -> World:
    model = compile_scenario(load(doc).baseline)
    rnd = TrialRandom(9, 0)
    world = World(model, rnd, sample_campaigns(model, rnd), tell=True)
    world.run()
    return world


def _most_in_any_window(outflows: list[tuple[float, float]], window_days: float) -> float:
    """Return the most that went out in any window of that length (each window starting at an outflow)."""
    return max(sum(a for t, a in outflows if t0 <= t < t0 + window_days - 1e-9) for t0, _ in outflows)


@settings(max_examples=25, deadline=None)
@given(limit=st.floats(0.5, 50.0), hours=st.floats(0.1, 48.0), interval=st.floats(1.0, 180.0))
def test_no_window_of_the_attackers_outflows_exceeds_the_rolling_limit(limit, hours, interval):
    """With a rolling limit L per H hours, no H-hour window of the drain's outflows exceeds L, and it still drains."""
    world = _drain(_stolen_key([{"amount": limit, "hours": hours, "enforced_by": "chain"}], interval))
    outflows = world.outflows["vault"]
    assert _most_in_any_window(outflows, hours / 24) <= limit * (1 + 1e-9)
    assert len(outflows) > 1  # it went out in pieces
    assert sum(a for _, a in outflows) == pytest.approx(world.loss["BTC"])


def test_the_tightest_of_several_windows_binds():
    """An hourly and a 24-hour rolling limit together: each holds over its own window."""
    world = _drain(_stolen_key([{"amount": 10.0, "hours": 1.0, "enforced_by": "chain"},
                                {"amount": 100.0, "hours": 24.0, "enforced_by": "chain"}]))
    outflows = world.outflows["vault"]
    assert _most_in_any_window(outflows, 1 / 24) <= 10.0 + 1e-9
    assert _most_in_any_window(outflows, 1.0) <= 100.0 + 1e-9
    assert _most_in_any_window(outflows, 1.0) == pytest.approx(100.0)  # the daily window fills up


def test_the_story_shows_each_piece():
    """Every piece of the drain is a line of the trial's story."""
    world = _drain(_stolen_key([{"amount": 50.0, "hours": 6.0, "enforced_by": "chain"}]))
    pieces = [line for _, line in world.story if "leave vault for the attacker" in line]
    assert len(pieces) == len(world.outflows["vault"]) > 1


def test_a_rolling_limit_caps_the_year_as_its_windows_allow():
    """Undetected from day 1 to the year's end, a 5 BTC per 24 h rolling limit lets out 5 BTC a day: 364 pieces."""
    doc = _stolen_key([{"amount": 5.0, "hours": 24.0, "enforced_by": "chain"}])
    doc["wallets"]["vault"]["balance"] = 10_000.0
    rows = losses(doc, trials=20)["baseline"]
    assert rows.numbers["loss_BTC"] == pytest.approx(5.0 * 364)


def test_a_rolling_limit_whose_enforcer_is_the_attackers_binds_nothing():
    """Enforced by the very server whose key is stolen, the limit is gone: the vault empties at once."""
    rows = losses(_stolen_key([{"amount": 5.0, "hours": 24.0, "enforced_by": "hot_server"}]), trials=20)["baseline"]
    assert rows.numbers["loss_BTC"].min() > 990.0


@pytest.mark.parametrize("hours", [0.0, -1.0])
def test_a_window_of_no_length_is_refused(hours):
    """A rolling window must last some time."""
    with pytest.raises(ScenarioError, match="rolling_limits"):
        load(_stolen_key([{"amount": 5.0, "hours": hours, "enforced_by": "chain"}]))
