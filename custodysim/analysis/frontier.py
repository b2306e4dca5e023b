"""The security/operations frontier: which variants (or sweep points) buy less loss for less customer waiting.

Each variant is a point (customer waiting time, loss): the mean withdrawal delay in hours against the
expected annual loss or VaR 99. A point is *dominated* when another has no more waiting and no more loss,
and less of one of them; the points no other point dominates are *Pareto-efficient*. A dominated setting
is never worth it on these two figures: another one is at least as good on both. The comparison is on the
estimates; a difference within the Monte Carlo noise can change which points are listed (see
docs/model.md, "The frontier").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

WAIT = "withdrawal_delay_mean_hours"
"""The operational axis: the mean delay of a customer withdrawal, in hours (in ``figures["operations"]``)."""
MEASURES = {"expected_loss_usd": "expected annual loss", "var99_usd": "VaR 99 (1-in-100 year loss)"}
"""The loss axes of the frontier, by summary key."""


@dataclass(frozen=True)
class FrontierPoint:
    """One variant on the frontier chart.

    Attributes:
        name: the variant (or grid point).
        wait_hours: mean customer withdrawal delay, hours.
        loss_usd: the loss measure (expected loss or VaR 99).
        efficient: no other point dominates it.
        dominated_by: for a dominated point, an efficient point that dominates it (the one with the least
            waiting); None for an efficient point.
    """

    name: str
    wait_hours: float
    loss_usd: float
    efficient: bool
    dominated_by: str | None = None


def dominates(a: tuple[float, float], b: tuple[float, float]) -> bool:
    """Return whether ``a`` dominates ``b``: no worse on both coordinates (both minimised), better on one."""
    return a[0] <= b[0] and a[1] <= b[1] and (a[0] < b[0] or a[1] < b[1])


def pareto_efficient(points: Sequence[tuple[float, float]]) -> list[bool]:
    """Return, for each point (both coordinates minimised), whether no other point dominates it.

    Equal points do not dominate each other: both are efficient, or neither.
    """
    return [not any(dominates(other, p) for other in points) for p in points]


def frontier(variants: dict[str, dict[str, Any]], measure: str = "expected_loss_usd") -> list[FrontierPoint]:
    """Return every variant as a frontier point, in the given order.

    Args:
        variants: figures by variant name, as in summary.json's ``variants``.
        measure: the loss axis, a key of :data:`MEASURES`.
    """
    names = list(variants)
    xy = [(float(variants[n]["operations"][WAIT]), float(variants[n][measure])) for n in names]
    efficient = pareto_efficient(xy)
    out = []
    for name, p, eff in zip(names, xy, efficient, strict=True):
        by = None
        if not eff:
            dominators = [(q[0], q[1], k) for k, (q, e) in enumerate(zip(xy, efficient, strict=True))
                          if e and dominates(q, p)]
            by = names[min(dominators)[2]]
        out.append(FrontierPoint(name, p[0], p[1], eff, by))
    return out


def efficient_names(variants: dict[str, dict[str, Any]], measure: str = "expected_loss_usd") -> list[str]:
    """Return the Pareto-efficient variants, least waiting first (ties: least loss, then given order)."""
    points = [p for p in frontier(variants, measure) if p.efficient]
    order = sorted(range(len(points)), key=lambda i: (points[i].wait_hours, points[i].loss_usd, i))
    return [points[i].name for i in order]


def frontier_rows(variants: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Return one row per variant for the reports' frontier tables, in the given order.

    Each row has the variant's ``name``, ``wait_hours``, ``expected_loss_usd`` and ``var99_usd``, and per
    measure whether it is efficient and, if not, what dominates it (``efficient``/``dominated_by`` on
    expected loss, ``efficient_var99``/``dominated_by_var99`` on VaR 99).
    """
    on_mean = {p.name: p for p in frontier(variants, "expected_loss_usd")}
    on_var = {p.name: p for p in frontier(variants, "var99_usd")}
    return [{
        "name": n,
        "wait_hours": on_mean[n].wait_hours,
        "expected_loss_usd": on_mean[n].loss_usd,
        "var99_usd": on_var[n].loss_usd,
        "efficient": on_mean[n].efficient,
        "dominated_by": on_mean[n].dominated_by,
        "efficient_var99": on_var[n].efficient,
        "dominated_by_var99": on_var[n].dominated_by,
    } for n in variants]
