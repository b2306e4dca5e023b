"""Tail figures that cannot mislead: ES 99 beside VaR 99, losses rarer than 1 in 100, bounds for no loss."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from custodysim.analysis.stats import severity_figures, summarise
from custodysim.reporting.report import rare_losses
from custodysim.running.losses import losses_of
from custodysim.running.rows import Chunk, Columns

COLS = Columns(("BTC",), ("vault",))
TEXTS = ["none", "no_campaign", "", "", ""]


def _rows(name: str, loss: np.ndarray):
    """Rows of a variant whose trials lose ``loss`` (USD), all from the vault."""
    numbers = np.zeros((len(loss), len(COLS.numeric)))
    numbers[:, 0] = np.arange(len(loss))
    for column in ("loss_usd", "loss_BTC", "loss_usd_tampering", "loss_usd_wallet_vault"):
        numbers[:, COLS.numeric.index(column)] = loss
    return losses_of([Chunk.from_texts(numbers, [TEXTS] * len(loss))], name, COLS)


def _summary(**losses: np.ndarray) -> dict:
    rows = [_rows(name, loss) for name, loss in losses.items()]
    return {"baseline": "baseline", "variants": summarise(rows, "baseline", ["BTC"], ["vault"])}


def test_a_variant_rarer_than_one_in_a_hundred_is_told_with_its_es99():
    """Losing in 6 of 1,000 years gives VaR 99 $0; the report says so and points to ES 99, which shows the loss."""
    loss = np.zeros(1000)
    loss[:6] = 5e8
    s = _summary(baseline=np.full(1000, 1e6), rare=loss)
    rare = s["variants"]["rare"]
    assert rare["var99_usd"] == 0 and rare["es99_usd"] == pytest.approx(6 * 5e8 / 10)
    lines = rare_losses(s)
    assert lines == ["rare: loses in 0.6% of years, rarer than 1 in 100: see ES 99 ($300.00M) and the exceedance curve"]


def test_no_loss_is_bounded_by_the_rule_of_three_not_zero():
    """A variant with no loss in 2,000 years is bounded at 3/2,000 times the baseline's mean losing year."""
    base = np.zeros(2000)
    base[:200] = np.linspace(1e6, 3e6, 200)  # a mean losing year of 2M
    s = _summary(baseline=base, safe=np.zeros(2000))
    safe = s["variants"]["safe"]
    assert safe["p_any_loss_upper95"] == pytest.approx(3 / 2000)
    assert safe["expected_loss_upper95_usd"] == pytest.approx(3 / 2000 * 2e6)
    assert rare_losses(s) == ["safe: no loss in 2,000 years: P(loss>0) below 0.15% and expected loss below $3.00k "
                              "(95%, rule of three)"]
    assert "p_any_loss_upper95" not in s["variants"]["baseline"]


def test_with_no_loss_anywhere_only_the_chance_is_bounded():
    """When no variant ever loses, the chance of a losing year is bounded but no size is invented."""
    s = _summary(baseline=np.zeros(500), other=np.zeros(500))
    assert s["variants"]["other"]["expected_loss_upper95_usd"] is None
    assert "expected loss" not in rare_losses(s)[1] and "below 0.6%" in rare_losses(s)[1]


@given(st.lists(st.floats(0, 1e9), min_size=1, max_size=300))
def test_frequency_times_severity_is_expected_loss(values):
    """P(loss > 0) times the mean losing year is the expected loss; the median and p90 are losing years' values."""
    loss = np.array(values)
    sev = severity_figures(loss)
    if not (loss > 0).any():
        assert sev is None
        return
    assert sev is not None
    assert np.mean(loss > 0) * sev["mean"] == pytest.approx(np.mean(loss), rel=1e-9, abs=1e-6)
    losing = loss[loss > 0]
    assert losing.min() <= sev["median"] <= sev["p90"] <= losing.max()
    assert sev["p90"] in losing
