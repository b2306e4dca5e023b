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
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.axes import Axes

WAIT = "withdrawal_delay_mean_hours"
"""The operational axis: the mean delay of a customer withdrawal, in hours (in ``figures["operations"]``)."""
MEASURES = {"expected_loss_usd": "expected annual loss", "var99_usd": "VaR 99 (1-in-100 year loss)"}
"""The loss axes of the frontier, by summary key."""
EFFICIENT_COLOUR = "#0072B2"
DOMINATED_COLOUR = "#999999"
LABEL_ALL_UP_TO = 8
"""Every point is labelled up to this many; beyond it only the efficient ones."""


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


def frontier_svg(variants: dict[str, dict[str, Any]], what: str = "variants") -> str:
    """Return the frontier as an inline SVG: loss against waiting, expected loss left and VaR 99 right.

    Efficient points are filled and joined by the frontier's staircase; dominated points are hollow and grey.

    Args:
        variants: figures by variant name, as in summary.json's ``variants``.
        what: what the points are, for the title (``variants`` or ``grid points``).
    """
    # matplotlib is imported only when a chart is drawn: runs, sweeps and the CLI start without it. The
    # charts' shared settings and SVG clean-up make every chart of a report look and render alike.
    from custodysim.charts import chart_style, new_figure, svg_element, titled

    with chart_style():
        fig = new_figure(4.0)
        axes = fig.subplots(1, 2)
        for ax, measure in zip(axes, MEASURES, strict=True):
            _panel(ax, frontier(variants, measure), MEASURES[measure])
        fig.suptitle(f"Loss against customer waiting: the efficient {what} (filled) and the dominated ones "
                     "(hollow)", x=0.01, ha="left", fontsize=10, fontweight="bold")
        svg = svg_element(fig, "frontier")
    return titled(svg, "frontier", f"Frontier of expected loss and VaR 99 against mean withdrawal delay, per "
                                    f"{what[:-1]}")


def _panel(ax: Axes, points: list[FrontierPoint], title: str) -> None:
    """Draw one measure's points, the efficient staircase and the labels."""
    from matplotlib.ticker import FuncFormatter

    from custodysim.charts import usd_tick

    front = sorted((p for p in points if p.efficient), key=lambda p: (p.wait_hours, p.loss_usd))
    if len(front) > 1:
        ax.step([p.wait_hours for p in front], [p.loss_usd for p in front], where="post",
                color=EFFICIENT_COLOUR, linewidth=1.0, zorder=2)
    same_place: dict[tuple[float, float], list[FrontierPoint]] = {}
    for p in points:
        same_place.setdefault((p.wait_hours, p.loss_usd), []).append(p)
    for (x, y), here in same_place.items():
        efficient = here[0].efficient  # points at one place are all efficient or all dominated
        face = EFFICIENT_COLOUR if efficient else "none"
        edge = EFFICIENT_COLOUR if efficient else DOMINATED_COLOUR
        ax.scatter([x], [y], s=36, facecolors=face, edgecolors=edge, linewidths=1.2, zorder=3)
        if efficient or len(points) <= LABEL_ALL_UP_TO:
            ax.annotate(", ".join(p.name for p in here), (x, y), xytext=(4, 3), textcoords="offset points",
                        fontsize=7, color="#1a1a1a" if efficient else "#666666")
    ax.yaxis.set_major_formatter(FuncFormatter(usd_tick))
    ax.set_xlabel("mean customer withdrawal delay (hours)")
    ax.set_ylabel("USD")
    ax.set_title(title, loc="left")
    ax.margins(x=0.15, y=0.1)
    ax.grid(True, color="#eeeeee", linewidth=0.6)


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
