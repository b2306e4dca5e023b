"""Summary figures of a run, every one computed from its trials (see :mod:`custodysim.running.losses`)."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from typing import Any

import numpy as np

from custodysim.analysis.economics import (
    DAYS_PER_YEAR,
    VariantEconomics,
    annualised,
    cost_difference,
    cost_figures,
    survival_figures,
    tail_figures,
    upper_quantile,
)
from custodysim.running.losses import VariantLosses
from custodysim.running.precision import Z95, mean_ci
from custodysim.simulation.results import PATH_TYPES


def variant_figures(rows: VariantLosses, assets: list[str], wallets: list[str],
                    horizon_days: float = DAYS_PER_YEAR) -> dict[str, Any]:
    """Return the summary figures of one variant (costs and survival are added by :func:`summarise`)."""
    loss = rows.loss
    n = len(loss)
    mean, low, high = mean_ci(loss)
    stops: Counter[str] = Counter()  # counted per distinct cell: a million rows share a few dozen cells
    for cell, k in rows.counts("stopped_by").items():
        for control in filter(None, cell.split(";")):
            stops[control] += k
    delays = rows.sorted_values("withdrawal_delay_mean_hours")
    return {
        "trials": n,
        "expected_loss_usd": mean,
        "expected_loss_ci95_usd": [low, high],
        "std_loss_usd": float(np.std(loss, ddof=1)) if n > 1 else 0.0,
        "p_any_loss": float(np.mean(loss > 0)) if n else 0.0,
        "loss_given_loss_usd": severity_figures(loss),
        **tail_figures(loss),
        "expected_loss_native": {a: rows.mean(f"loss_{a}") for a in assets},
        "max_loss_native": {a: float(np.max(rows.column(f"loss_{a}"), initial=0.0)) for a in assets},
        "loss_by_path_usd": {p: rows.mean(f"loss_usd_{p}") for p in PATH_TYPES},
        "loss_by_wallet_usd": {w: rows.mean(f"loss_usd_wallet_{w}") for w in wallets},
        "key_loss": key_loss_figures(rows.column("loss_usd_lock_out"), rows.column("locks")),
        "stops_by_control": {k: {"trials": v, "share": v / n} for k, v in stops.most_common()},
        "outcomes": dict(Counter(rows.counts("outcome")).most_common()),
        "operations": {
            "withdrawal_delay_mean_hours": rows.mean("withdrawal_delay_mean_hours"),
            "withdrawals_delayed_share": rows.mean("withdrawals_delayed_share"),
            "transfers_signed_mean": rows.mean("transfers_signed"),
            "transfers_delayed_mean": rows.mean("transfers_delayed"),
            "transfer_delay_hours_mean": rows.mean("transfer_delay_hours"),
            "withdrawal_delay_mean_hours_p95": upper_quantile(delays, 0.95),
            "transfers_blocked_mean": _none_if_missing(rows.mean("transfers_blocked")),
            "signing_ceremonies_per_year": _per_year(_none_if_missing(rows.mean("signing_ceremonies")), horizon_days),
        },
    }


def occurrence_figures(rows: VariantLosses, horizon_days: float = DAYS_PER_YEAR) -> dict[str, Any] | None:
    """Return the per-event view of a variant's losses, beside the per-year (aggregate) one.

    A year's *aggregate* loss is the sum of its loss events (the year loss table, trials.csv); its
    *occurrence* loss is its largest single event (from the event loss table, events.csv). VaR and ES here
    are those of the occurrence loss: the points of the occurrence exceedance curve (OEP), as the
    aggregate figures are of the aggregate one (AEP). None for rows whose events were not kept (a run
    folder written before them).
    """
    events = rows.events
    if events is None:
        return None
    n = len(rows)
    largest = events.largest(rows.trials)
    tail = tail_figures(largest)
    return {
        "events_per_year": annualised(len(events) / n, horizon_days) if n else 0.0,
        "p_any_event": float(np.mean(largest > 0)) if n else 0.0,
        "mean_event_usd": float(np.mean(events.loss_usd)) if len(events) else None,
        "var99_usd": tail["var99_usd"],
        "var999_usd": tail["var999_usd"],
        "es99_usd": tail["es99_usd"],
        "max_usd": tail["max_loss_usd"],
        "events_by_peril": events.texts["peril"].counts(),
    }


def severity_figures(loss: np.ndarray) -> dict[str, float] | None:
    """Return how much a losing year loses: the mean, median and p90 of the loss in years that lose (None if none does).

    Beside P(loss > 0) (how often), this is the other half of expected loss: frequency times magnitude.
    """
    losing = loss[loss > 0]
    if len(losing) == 0:
        return None
    return {"mean": float(np.mean(losing)), "median": float(np.median(losing)),
            "p90": upper_quantile(losing, 0.9)}


RULE_OF_THREE = 3.0
"""With no event in n trials, 3/n bounds the event's chance from above at 95% confidence (the rule of three)."""


def share_ci95(p: float, n: int) -> tuple[float, float]:
    """Return the 95% Wilson score interval of a share ``p`` seen in ``n`` trials (P(loss > 0), say).

    Unlike the normal approximation it stays within [0, 1] and is not empty at 0 or 1: no loss in 2,000
    trials gives 0 to 0.19%.
    """
    if n <= 0:
        return 0.0, 1.0
    z2 = Z95 * Z95
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = Z95 * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return (0.0 if p <= 0 else max(0.0, centre - half)), (1.0 if p >= 1 else min(1.0, centre + half))


def rare_loss_bound(figures: Mapping[str, dict[str, Any]], baseline: str) -> None:
    """Give each variant that lost nothing an upper bound on its chance of a losing year and on its expected loss.

    No loss in n years bounds P(loss > 0) below 3/n (95%, the rule of three), not at zero. Times a
    plausible size of a losing year (the baseline's mean losing year, or else the largest mean losing
    year of any variant), that bounds the expected loss. Without any losing year in the run there is no
    size to go by: only the chance is bounded. Adds ``p_any_loss_upper95`` and ``expected_loss_upper95_usd``
    (null when no size is known) to each such variant, in place.
    """
    sizes = [v["loss_given_loss_usd"]["mean"] for v in figures.values() if v.get("loss_given_loss_usd")]
    base = figures[baseline].get("loss_given_loss_usd")
    plausible = base["mean"] if base else max(sizes, default=None)
    for v in figures.values():
        if v["p_any_loss"] == 0 and v["trials"] > 0:
            p = min(1.0, RULE_OF_THREE / v["trials"])
            v["p_any_loss_upper95"] = p
            v["expected_loss_upper95_usd"] = None if plausible is None else p * plausible


def key_loss_figures(lost_usd: np.ndarray, locks: np.ndarray) -> dict[str, Any]:
    """Return what lost keys cost a variant, apart from theft.

    ``p_locked`` is the share of years in which some wallet is locked at least once (too few keys to sign,
    for a while or for good), ``p_lock_out`` the share in which one is locked for good, and
    ``expected_loss_usd`` the expected loss of those lock-outs (part of the variant's expected loss).
    """
    mean, low, high = mean_ci(lost_usd)
    n = len(lost_usd)
    return {
        "p_locked": float(np.mean(locks > 0)) if n else 0.0,
        "locks_mean": float(np.mean(locks)) if n else 0.0,
        "p_lock_out": float(np.mean(lost_usd > 0)) if n else 0.0,
        "expected_loss_usd": mean,
        # a loss is never negative, whatever the normal approximation says of a rare one
        "expected_loss_ci95_usd": [max(low, 0.0), high],
    }


def _none_if_missing(mean: float) -> float | None:
    """Return a column's mean, or None for a column a run written before it existed lacks (read back as NaN)."""
    return None if math.isnan(mean) else mean


def _per_year(x: float | None, horizon_days: float) -> float | None:
    return None if x is None else annualised(x, horizon_days)


def paired_difference(variant: VariantLosses, baseline: VariantLosses) -> dict[str, Any]:
    """Return the paired difference of expected loss (variant - baseline) with its CI.

    Trials are paired by trial number: both ran on the same named random streams. The unpaired CI is
    given beside it to show what common random numbers buy.
    """
    d = variant.loss - baseline.loss
    mean, low, high = mean_ci(d)
    n = len(d)
    unpaired = Z95 * math.sqrt(float(np.var(variant.loss, ddof=1) + np.var(baseline.loss, ddof=1)) / n) \
        if n > 1 else 0.0
    return {
        "diff_vs_baseline_usd": mean,
        "diff_ci95_usd": [low, high],
        "diff_ci95_unpaired_usd": [mean - unpaired, mean + unpaired],
    }


def summarise(rows: list[VariantLosses], baseline: str, assets: list[str], wallets: list[str],
              horizon_days: float = DAYS_PER_YEAR,
              economics: Mapping[str, VariantEconomics] | None = None) -> dict[str, Any]:
    """Return the ``variants`` mapping of summary.json.

    Args:
        rows: every variant's rows; ``baseline`` names one of them.
        baseline: the baseline's name.
        assets: the run's assets.
        wallets: the run's wallets.
        horizon_days: the trials' horizon (figures "per year" are scaled from it).
        economics: each variant's control costs, capital and insurance
            (:func:`custodysim.analysis.economics.scenario_economics`); a variant missing from it gets a null
            control cost and no survival figures.
    """
    by_name = {r.name: r for r in rows}
    base = by_name[baseline]
    known = economics or {}
    out: dict[str, Any] = {}
    for r in rows:
        figures = variant_figures(r, assets, wallets, horizon_days)
        occurrence = occurrence_figures(r, horizon_days)
        if occurrence is not None:
            figures["occurrence"] = occurrence
        if r.name != baseline:
            figures.update(paired_difference(r, base))
        econ = known.get(r.name)
        if econ is not None:
            figures["operations"].update(admin_actions_per_year=econ.admin_actions_per_year,
                                         admin_wait_hours_per_year=econ.admin_wait_hours_per_year)
        low, high = figures["expected_loss_ci95_usd"]
        figures["costs"] = cost_figures(figures["expected_loss_usd"], (low, high), horizon_days, econ)
        if econ is not None and econ.finance is not None:
            insurance = econ.finance.insurance
            if r.events is not None:
                figures["survival"] = survival_figures(r.loss, econ.finance,
                                                       (r.events.trial, r.events.loss_usd))
            elif insurance is None or insurance.per == "year":
                figures["survival"] = survival_figures(r.loss, econ.finance)
        out[r.name] = figures
    rare_loss_bound(out, baseline)
    for name, figures in out.items():
        if name != baseline:
            figures["costs"].update(cost_difference(figures["costs"], out[baseline]["costs"],
                                                    figures["diff_ci95_usd"], horizon_days))
    return out
