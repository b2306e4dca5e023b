"""What security costs and whether the owner survives a bad year: control costs, cost of risk, capital, insurance.

Everything here is computed from a variant's resolved spec (what its controls cost a year, what capital
and insurance stand behind it) and its tidy trial rows (the loss of each trial). Nothing is simulated:
control costs are stated in the scenario, and the insurance layer is applied to each trial's loss after
the fact, so these figures never change the losses themselves.

Conventions (docs/costs.md):
- A variant's **control cost** is the sum of ``annual_cost_usd`` over the controls present in its
  resolved spec (detection, outflow monitors, the response, library measures, every policy rule of every
  wallet) plus the variant's own ``annual_cost_usd`` (a structural change: splitting a wallet).
- **Expected annual loss** is the mean trial loss scaled to a year: ``mean x 365 / horizon_days``.
  **Total cost of risk** is that plus the control cost.
- The **insurance** layer applies to a trial's whole loss (one policy period per trial): it pays
  ``covered_share`` of the loss above ``deductible_usd``, at most ``limit_usd``; the rest is *retained*.
- **Capital needed** for the 1-in-100 (1-in-1000) trial is the 99% (99.9%) upper quantile of the
  retained loss: with that much capital, at most 1% (0.1%) of the simulated trials lose more.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from custodysim.scenario.measures import effective
from custodysim.scenario.schema import Delay, Finance, Insurance, Scenario

DAYS_PER_YEAR = 365.0


@dataclass(frozen=True)
class VariantEconomics:
    """What a variant's controls cost a year, itemised, and the capital and insurance behind it.

    Attributes:
        control_cost_usd: the variant's yearly control cost (the sum of ``items``).
        items: each cost by the field path that states it (``controls.detection.edr``,
            ``wallets.hot.policy.whitelist``, ``variants.split-wallets``), zero costs left out.
        finance: the capital and insurance section of the variant's resolved spec, if any.
        admin_actions_per_year: the legitimate administrative actions a year (``operations.admin_actions``).
        admin_wait_hours_per_year: the hours they wait on time-locks, a year (see :func:`admin_waits`).
    """

    control_cost_usd: float
    items: dict[str, float]
    finance: Finance | None
    admin_actions_per_year: float = 0.0
    admin_wait_hours_per_year: float = 0.0


def control_costs(spec: Scenario, own_cost_usd: float = 0.0, variant: str | None = None) -> dict[str, float]:
    """Return the yearly cost of every control present in ``spec`` that states one, by field path.

    Args:
        spec: a resolved scenario (the baseline, or a variant with its overrides applied).
        own_cost_usd: the variant's own ``annual_cost_usd`` (a structural change it makes).
        variant: the variant's name, for the item of its own cost.
    """
    items: dict[str, float] = {}
    controls = spec.controls
    for cid, det in controls.detection.items():
        items[f"controls.detection.{cid}"] = det.annual_cost_usd
    for mid, mon in controls.outflow_monitoring.items():
        items[f"controls.outflow_monitoring.{mid}"] = mon.annual_cost_usd
    items["controls.response"] = controls.response.annual_cost_usd
    for name, measure in controls.measures.switched_on().items():
        items[f"controls.measures.{name}"] = measure.annual_cost_usd
    for wid, wallet in spec.wallets.items():
        for where, enforced in wallet.policy.rules():
            items[".".join(map(str, ("wallets", wid, "policy", *where)))] = enforced.annual_cost_usd
    if variant is not None:
        items[f"variants.{variant}"] = own_cost_usd
    return {path: cost for path, cost in items.items() if cost > 0}


def variant_economics(spec: Scenario, own_cost_usd: float = 0.0, variant: str | None = None) -> VariantEconomics:
    """Return the economics of one resolved variant (see :func:`control_costs` for the arguments)."""
    items = control_costs(spec, own_cost_usd, variant)
    return VariantEconomics(math.fsum(items.values()), items, spec.finance, *admin_waits(spec))


def admin_waits(spec: Scenario) -> tuple[float, float]:
    """Return the legitimate administrative actions a year and the hours they wait on time-locks, a year.

    Each action on a wallet waits the longest enforced time-lock that holds administrative actions there
    (``applies_to: admin`` or ``all``, the library's time-delay measure included); a lock scoped to
    administrative actions holds no transfer, so this is all it costs operations.
    """
    s = effective(spec)
    actions = waits = 0.0
    for action in s.operations.admin_actions:
        policy = s.wallets[action.wallet].policy
        lock = max((rule.hours for _, rule in policy.rules()
                    if isinstance(rule, Delay) and rule.enforced_by is not None and rule.applies_to != "transfers"),
                   default=0.0)
        actions += action.per_year
        waits += action.per_year * lock
    return actions, waits


def scenario_economics(baseline: Scenario, specs: Mapping[str, Scenario]) -> dict[str, VariantEconomics]:
    """Return the economics of every variant in ``specs`` (the baseline's own name included).

    Args:
        baseline: the scenario as written: its ``variants`` give each variant's own cost.
        specs: the resolved specs by variant name (:meth:`custodysim.scenario.loader.LoadedScenario.specs`).
    """
    out = {}
    for name, spec in specs.items():
        own = baseline.variants.get(name)
        out[name] = variant_economics(spec, own.annual_cost_usd if own else 0.0, name if own else None)
    return out


def annualised(x: float, horizon_days: float) -> float:
    """Return a loss over ``horizon_days`` scaled to 365 days."""
    return x * DAYS_PER_YEAR / horizon_days


Occurrences = tuple[np.ndarray, np.ndarray]
"""The loss events of a set of trials: per event, the position of its trial, and its loss (USD)."""


def insured_part(loss: np.ndarray, insurance: Insurance | None, events: Occurrences | None = None) -> np.ndarray:
    """Return what the insurance layer pays of each trial's loss (0 without insurance).

    Per year, the policy pays ``covered_share`` of the trial's loss above the deductible, at most
    ``limit_usd``. Per occurrence, it pays so of each loss event, and the year's payouts at most
    ``annual_limit_usd``. It never pays more than the loss, nor less than nothing.

    Raises:
        ValueError: per-occurrence terms without the trials' events.
    """
    if insurance is None:
        return np.zeros_like(loss)
    if insurance.per == "year":
        paid = _layer(loss, insurance)
    else:
        if events is None:
            raise ValueError("per-occurrence insurance needs the trials' loss events")
        where, event_loss = events
        paid = np.zeros_like(loss)
        np.add.at(paid, where, _layer(event_loss, insurance))
        if insurance.annual_limit_usd is not None:
            paid = np.minimum(paid, insurance.annual_limit_usd)
    capped: np.ndarray = np.minimum(paid, loss)  # float rounding of share x (loss - deductible) must not exceed it
    return capped


def _layer(loss: np.ndarray, insurance: Insurance) -> np.ndarray:
    """Return the policy's payout on each of ``loss``: its share above the deductible, at most the limit."""
    paid: np.ndarray = np.minimum(insurance.covered_share * np.maximum(loss - insurance.deductible_usd, 0.0),
                                  insurance.limit_usd)
    return paid


def retained_loss(loss: np.ndarray, insurance: Insurance | None, events: Occurrences | None = None) -> np.ndarray:
    """Return each trial's loss after insurance: what the owner's capital has to absorb."""
    kept: np.ndarray = np.maximum(loss - insured_part(loss, insurance, events), 0.0)
    return kept


def cover_exhausted_loss(insurance: Insurance) -> float | None:
    """Return the loss at which the insurance layer pays its limit: ``deductible + limit / covered_share``.

    A year's loss for terms per year, one event's loss for terms per occurrence; None if it covers nothing.
    """
    if insurance.covered_share == 0:
        return None
    return insurance.deductible_usd + insurance.limit_usd / insurance.covered_share


def ruin_loss(finance: Finance) -> float | None:
    """Return the year's loss above which the retained loss exceeds the capital.

    None without a stated capital, or with insurance per occurrence (the retained loss then depends on how
    the year's loss splits into events, not on its total alone). The retained loss rises with the loss (one
    for one below the deductible and above the cover, ``1 - covered_share`` to one in between), so it
    crosses the capital once: below the deductible at the capital itself, inside the covered band where
    ``(1 - share) x loss + share x deductible`` reaches it, above the band at ``capital + limit``.
    """
    capital, insurance = finance.capital_usd, finance.insurance
    if capital is None:
        return None
    if insurance is None or capital < insurance.deductible_usd:
        return capital
    if insurance.per == "occurrence":
        return None
    share, deductible = insurance.covered_share, insurance.deductible_usd
    if share < 1.0:
        inside = (capital - share * deductible) / (1.0 - share)
        exhausted = cover_exhausted_loss(insurance)
        if exhausted is None or inside <= exhausted:
            return inside
    return capital + insurance.limit_usd


def upper_quantile(x: np.ndarray, q: float) -> float:
    """Return the ``q`` quantile taken upward (a value of ``x``): at most a share ``1 - q`` of ``x`` exceeds it."""
    return float(np.quantile(x, q, method="higher")) if len(x) else 0.0


def tail_figures(loss: np.ndarray) -> dict[str, float]:
    """Return VaR 95/99/99.9 (upper quantiles of the loss), ES 99 (mean of the worst 1%), and max."""
    if len(loss) == 0:
        return {"var95_usd": 0.0, "var99_usd": 0.0, "var999_usd": 0.0, "es99_usd": 0.0, "max_loss_usd": 0.0}
    ordered = np.sort(loss)
    n = len(ordered)
    tail = ordered[n - max(1, math.ceil(n * 0.01)):]
    return {
        "var95_usd": upper_quantile(ordered, 0.95),
        "var99_usd": upper_quantile(ordered, 0.99),
        "var999_usd": upper_quantile(ordered, 0.999),
        "es99_usd": float(np.mean(tail)),
        "max_loss_usd": float(ordered[-1]),
    }


def cost_figures(mean: float, ci95: tuple[float, float], horizon_days: float,
                 economics: VariantEconomics | None) -> dict[str, Any]:
    """Return the ``costs`` figures of one variant.

    Args:
        mean: the mean trial loss over the horizon, USD.
        ci95: the 95% CI of that mean.
        horizon_days: the trial's horizon.
        economics: the variant's control costs (None when unknown: the control cost is then null).
    """
    annual = annualised(mean, horizon_days)
    low, high = (annualised(x, horizon_days) for x in ci95)
    cost = economics.control_cost_usd if economics is not None else None
    return {
        "control_cost_usd": cost,
        "expected_annual_loss_usd": annual,
        "expected_annual_loss_ci95_usd": [low, high],
        "total_cost_of_risk_usd": annual + cost if cost is not None else None,
        "total_cost_of_risk_ci95_usd": [low + cost, high + cost] if cost is not None else None,
        "control_costs_usd": dict(economics.items) if economics is not None else {},
    }


def cost_difference(variant: dict[str, Any], baseline: dict[str, Any], diff_ci95_usd: list[float],
                    horizon_days: float) -> dict[str, Any]:
    """Return the paired difference of total cost of risk (variant - baseline) and its 95% CI.

    The control costs are stated, not sampled, so the CI is that of the paired loss difference
    (annualised), shifted by the difference in control cost.
    """
    if variant["control_cost_usd"] is None or baseline["control_cost_usd"] is None:
        return {"total_cost_of_risk_diff_vs_baseline_usd": None, "total_cost_of_risk_diff_ci95_usd": None}
    dcost = variant["control_cost_usd"] - baseline["control_cost_usd"]
    dloss = variant["expected_annual_loss_usd"] - baseline["expected_annual_loss_usd"]
    low, high = (annualised(x, horizon_days) + dcost for x in diff_ci95_usd)
    return {"total_cost_of_risk_diff_vs_baseline_usd": dloss + dcost, "total_cost_of_risk_diff_ci95_usd": [low, high]}


def survival_figures(loss: np.ndarray, finance: Finance, events: Occurrences | None = None) -> dict[str, Any]:
    """Return the ``survival`` figures of one variant: ruin, retained loss, insurer's payout, capital needed.

    Args:
        loss: each trial's USD loss over the horizon.
        finance: the capital and insurance behind the variant.
        events: the trials' loss events (needed by insurance per occurrence).
    """
    insurance = finance.insurance
    paid = insured_part(loss, insurance, events)
    kept = np.maximum(loss - paid, 0.0)
    n = len(kept)
    tail = tail_figures(kept)
    capital = finance.capital_usd
    return {
        "capital_usd": capital,
        "insurance": insurance.model_dump() if insurance is not None else None,
        "p_retained_loss_exceeds_capital": float(np.mean(kept > capital)) if capital is not None and n else None,
        "retained_expected_loss_usd": float(np.mean(kept)) if n else 0.0,
        "retained_var99_usd": tail["var99_usd"],
        "retained_var999_usd": tail["var999_usd"],
        "retained_es99_usd": tail["es99_usd"],
        "retained_max_usd": tail["max_loss_usd"],
        "insurer_expected_payout_usd": float(np.mean(paid)) if n else 0.0,
        "p_insurance_pays": float(np.mean(paid > 0)) if n else 0.0,
        "p_insurance_exhausted": (float(np.mean(paid >= (insurance.annual_limit_usd or insurance.limit_usd)))
                                  if insurance is not None and n else None),
        "capital_needed_1_in_100_usd": tail["var99_usd"],
        "capital_needed_1_in_1000_usd": tail["var999_usd"],
        "cover_exhausted_loss_usd": cover_exhausted_loss(insurance) if insurance is not None else None,
        "ruin_loss_usd": ruin_loss(finance),
    }
