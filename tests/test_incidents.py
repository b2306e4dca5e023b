"""Incident replays (scenarios/incidents/): each reproduces the observed loss, and its counterfactuals stop or cap it.

A replay forces the real campaign at day 0 against the real entry point, so the attack succeeds unless
the weak detection the victim really had catches it first. In the trials where it succeeds, the baseline
must lose exactly what the victim lost, in native units, for the reason it lost it. Each counterfactual
of the domain notes must then stop the attack (no loss in any trial) or cap it (a bound that follows from
the architecture and the response times in the file); the ones that honestly cannot are shown to change
nothing, trial by trial.

The cap bounds hold in every trial, also in the few where endpoint detection raised an alarm before the
attacker reached a wallet: the theft's own alarm then freezes the wallet it drains (docs/model.md,
"Detection and response").
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import pytest

from custodysim.running.rows import VariantRows
from custodysim.running.runner import run_variants
from custodysim.scenario.loader import load_scenario

INCIDENTS = Path(__file__).resolve().parent.parent / "scenarios" / "incidents"
REL = 1e-6


@cache
def _rows(name: str) -> dict[str, VariantRows]:
    """Every variant's rows of one replay, at the file's trials and seed (run once per test session)."""
    rows, _ = run_variants(load_scenario(INCIDENTS / f"{name}.yaml"))
    return {r.name: r for r in rows}


def _hit(rows: VariantRows) -> np.ndarray:
    return rows.loss > 0


def _native(rows: VariantRows, asset: str) -> np.ndarray:
    return rows.numbers[f"loss_{asset}"]


def _early(rows: VariantRows) -> np.ndarray:
    """Trials whose first alarm came before their first theft: the response was already under way."""
    return rows.numbers["t_first_alarm_days"] < rows.numbers["t_first_theft_days"]


def _assert_exact(rows: VariantRows, amounts: dict[str, float]) -> None:
    """Every trial with a loss loses exactly ``amounts`` (native units), asset by asset."""
    hit = _hit(rows)
    assert hit.any()
    for asset, amount in amounts.items():
        np.testing.assert_allclose(_native(rows, asset)[hit], amount, rtol=REL)


def _assert_stopped(rows: VariantRows) -> None:
    """No trial loses anything."""
    assert not _hit(rows).any(), f"{rows.name}: {int(_hit(rows).sum())} trials lost"


def _assert_capped(rows: VariantRows, asset: str, cap: float, floor: float) -> None:
    """Every theft takes at least ``floor`` and at most ``cap``, whenever the first alarm came."""
    hit, loss = _hit(rows), _native(rows, asset)
    assert hit.any()
    assert loss[hit].min() >= floor * (1 - REL)
    assert loss[hit].max() <= cap * (1 + REL)


def _same_as_baseline(name: str, variant: str) -> None:
    """The variant loses exactly what the baseline loses, trial by trial."""
    rows = _rows(name)
    np.testing.assert_array_equal(rows[variant].loss, rows["baseline"].loss)


# ---------------------------------------------------------------------------------------------- every replay
REPLAYS = {
    # replay: (observed loss in native units, floor on the share of trials where the attack succeeds)
    # Floors: P(weak detection, mean 365 days, misses the dwell), minus about 5 binomial standard deviations
    # of 1,000 trials. DMM: about 64 days from the laptop to the theft, exp(-64/365) = 0.84. Coincheck:
    # about 25 days on the PC and minutes on the server, exp(-25/365) = 0.93. Ronin: about 87 days on the
    # laptop and 2 on the servers, exp(-87/365) * exp(-2/365) = 0.79. Binance: nothing watches
    # before the withdrawal, which is requested the moment the accounts are usable: every trial.
    "dmm-2024": ({"BTC": 4502.9}, 0.78),
    "coincheck-2018": ({"XEM": 523_000_000}, 0.88),
    "ronin-2022": ({"ETH": 173_600, "USDC": 25_500_000}, 0.72),
    "binance-2019": ({"BTC": 7000}, 1.0),
}


@pytest.mark.parametrize("name", REPLAYS)
def test_replay_loses_exactly_the_observed_amounts(name):
    """In every baseline trial where the attack succeeds, the loss is the incident's, asset by asset."""
    _assert_exact(_rows(name)["baseline"], REPLAYS[name][0])


@pytest.mark.parametrize("name", REPLAYS)
def test_replay_attack_succeeds_in_most_trials(name):
    """The forced real campaign succeeds in at least the share the victim's weak detection allows."""
    assert _hit(_rows(name)["baseline"]).mean() >= REPLAYS[name][1]


@pytest.mark.parametrize("name", REPLAYS)
def test_replay_forces_exactly_one_campaign_per_trial(name):
    """campaigns_per_year is 0 and one campaign is forced at day 0: every trial has exactly one campaign."""
    loaded = load_scenario(INCIDENTS / f"{name}.yaml")
    assert all(t.campaigns_per_year == 0 and t.forced_campaign_days == [0] for t in loaded.baseline.threats.values())
    assert (_rows(name)["baseline"].numbers["campaigns"] == 1).all()


# ---------------------------------------------------------------------------------------------- DMM Bitcoin
def test_dmm_theft_is_one_rewritten_transfer():
    """DMM: every loss is carried by tampering with one legitimate transfer on day 67 (31 May)."""
    base = _rows("dmm-2024")["baseline"]
    hit = _hit(base)
    np.testing.assert_allclose(base.numbers["loss_usd_tampering"][hit], base.loss[hit])
    assert set(base.numbers["t_first_theft_days"][hit].tolist()) == {67.0}


@pytest.mark.parametrize("variant", ["independent-whitelist", "authenticated-channel"])
def test_dmm_counterfactuals_that_stop_it(variant):
    """DMM: a whitelist outside the vendor's systems, or a vendor channel a stolen cookie cannot open, stops it."""
    _assert_stopped(_rows("dmm-2024")[variant])


def test_dmm_more_signers_on_the_same_screen_change_nothing():
    """DMM: 3 of 5 people who all look through the vendor's system lose exactly what one signer lost."""
    _same_as_baseline("dmm-2024", "more-signers-same-screen")


@pytest.mark.parametrize(("variant", "checkers"), [("independent-check", 1), ("independent-signers", 2)])
def test_dmm_independent_verification_lets_through_what_correlated_checkers_miss(variant, checkers):
    """DMM: k checkers catching 9 in 10 miss together with the common mode c: c(0.1) + (1-c)(0.1^k) of thefts pass.

    The patient attacker never holds a checker's own device, so it waits out its longest wait and then
    strikes: what gets through is the whole wallet, less the legitimate weekly transfers made meanwhile.
    """
    rows = _rows("dmm-2024")
    common = load_scenario(INCIDENTS / "dmm-2024.yaml").baseline.controls.verification.common_mode
    p_pass = common * 0.1 + (1 - common) * 0.1**checkers
    base, hit = _hit(rows["baseline"]), _hit(rows[variant])
    assert not (hit & ~base).any()  # only where the baseline lost
    share = hit.sum() / base.sum()
    sd = (p_pass * (1 - p_pass) / base.sum()) ** 0.5
    assert share <= p_pass + 4 * sd
    assert share < 0.5 * REPLAYS["dmm-2024"][1]  # far below the baseline's rate
    lost = _native(rows[variant], "BTC")[hit]
    weekly = np.round((4502.9 - lost) / 10, 6)  # legitimate 10 BTC transfers made before the strike
    assert (weekly == np.floor(weekly)).all() and (weekly >= 0).all() and (weekly <= 10).all()


def test_dmm_split_wallets_cap_the_loss_at_one_wallet():
    """DMM: five wallets of 900.58 BTC: the rewrite takes one; the alarm freezes the rest before their turn."""
    _assert_exact(_rows("dmm-2024")["split-wallets"], {"BTC": 900.58})


# ---------------------------------------------------------------------------------------------- Coincheck
def test_coincheck_multisig_stops_it():
    """Coincheck: with 2 of 3 keys and the other two out of the attacker's reach, nothing leaves."""
    _assert_stopped(_rows("coincheck-2018")["multisig"])


def test_coincheck_cold_storage_caps_the_loss_at_the_float():
    """Coincheck: 95% cold, a 26.15M float refilled in 48 h: the theft takes the float; the refill lands frozen.

    The freeze comes within 14.5 h of the theft (alarm 9-13 h, freeze 0.25-1.5 h), before the refill.
    """
    _assert_capped(_rows("coincheck-2018")["cold-storage"], "XEM", cap=26.15e6, floor=26.15e6)


def test_coincheck_hot_wallet_cap_bounds_the_loss_by_the_cap_plus_refills_before_the_response():
    """Coincheck: a 26.15M cap refilled within 4 h loses the cap plus the refills picked up before the freeze.

    The drain comes back at a landing or when the day turns; before a freeze 14.5 h after the theft that is
    at most one more refill.
    """
    rows = _rows("coincheck-2018")["hot-wallet-cap"]
    _assert_capped(rows, "XEM", cap=2 * 26.15e6, floor=26.15e6)
    assert (_hit(rows) & _early(rows)).any()  # the bound also covers thefts after an earlier alarm
    assert (_native(rows, "XEM") > 26.15e6 * (1 + REL)).any()  # refills are really taken: a cap, not a stop


def test_coincheck_balance_alert_alone_changes_nothing():
    """Coincheck: an alert within minutes cannot undo a first transfer that already emptied the wallet."""
    _same_as_baseline("coincheck-2018", "balance-alert")


def test_coincheck_balance_alert_with_a_daily_limit_caps_the_loss():
    """Coincheck: a 10M XEM daily limit slows the drain; the alert freezes within 2 h: two days' limits at most."""
    _assert_capped(_rows("coincheck-2018")["balance-alert-daily-limit"], "XEM", cap=2e7, floor=1e7)


# ---------------------------------------------------------------------------------------------- Binance
@pytest.mark.parametrize(("variant", "btc"), [("hot-1pct", 3500), ("no-cold-storage", 350_000)])
def test_binance_loss_is_what_the_hot_wallet_holds(variant, btc):
    """Binance: the one forged withdrawal takes the hot wallet: half the cap halves it, no cold storage takes all."""
    rows = _rows("binance-2019")
    _assert_exact(rows[variant], {"BTC": btc})
    np.testing.assert_array_equal(_hit(rows[variant]), _hit(rows["baseline"]))


def test_binance_theft_is_one_forged_request():
    """Binance: the whole loss is carried by a forged withdrawal request, not by stolen keys."""
    base = _rows("binance-2019")["baseline"]
    np.testing.assert_allclose(base.numbers["loss_usd_forged_request"], base.loss)


# ---------------------------------------------------------------------------------------------- Ronin
@pytest.mark.parametrize("variant", ["independent-validators", "revoke-stale-delegation", "threshold-8of9"])
def test_ronin_counterfactuals_that_stop_it(variant):
    """Ronin: independent validators, a revoked delegation or 8 of 9 leave the attacker short of a quorum."""
    _assert_stopped(_rows("ronin-2022")[variant])


def test_ronin_outflow_monitoring_alone_changes_nothing():
    """Ronin: an alarm within 2 hours comes after the 2 transfers that emptied both bridge wallets."""
    _same_as_baseline("ronin-2022", "outflow-monitoring")


@pytest.mark.parametrize(("asset", "limit"), [("ETH", 10_000), ("USDC", 2_000_000)])
def test_ronin_monitoring_with_an_on_chain_daily_limit_caps_the_loss(asset, limit):
    """Ronin: on-chain daily limits and an alarm within 2 h (freeze within 8 h more): two days' limits at most."""
    rows = _rows("ronin-2022")["outflow-monitoring-daily-limit"]
    _assert_capped(rows, asset, cap=2 * limit, floor=limit)
    assert (_hit(rows) & _early(rows)).any()  # the bound also covers thefts after an earlier alarm
