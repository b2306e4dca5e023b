"""The frontier chart: loss against customer waiting, the efficient points joined, the dominated ones grey.

Imported only when an HTML report is drawn (it imports matplotlib, as :mod:`~custodysim.reporting.charts`
does), so runs, sweeps and the CLI start without it.
"""

from __future__ import annotations

from typing import Any

from matplotlib.axes import Axes
from matplotlib.ticker import FuncFormatter

from custodysim.analysis.frontier import MEASURES, FrontierPoint, frontier
from custodysim.reporting.charts import chart_style, new_figure, svg_element, titled, usd_tick

EFFICIENT_COLOUR = "#0072B2"
DOMINATED_COLOUR = "#999999"
LABEL_ALL_UP_TO = 8
"""Every point is labelled up to this many; beyond it only the efficient ones."""


def frontier_svg(variants: dict[str, dict[str, Any]], what: str = "variants") -> str:
    """Return the frontier as an inline SVG: loss against waiting, expected loss left and VaR 99 right.

    Efficient points are filled and joined by the frontier's staircase; dominated points are hollow and grey.

    Args:
        variants: figures by variant name, as in summary.json's ``variants``.
        what: what the points are, for the title (``variants`` or ``grid points``).
    """
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
