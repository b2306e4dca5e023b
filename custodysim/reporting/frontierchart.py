"""The frontier chart: loss against customer waiting, the efficient points joined, the dominated ones grey.

Imported only when an HTML report is drawn (it imports matplotlib, as :mod:`~custodysim.reporting.charts`
does), so runs, sweeps and the CLI start without it.
"""

from __future__ import annotations

from typing import Any

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter
from matplotlib.transforms import Bbox

from custodysim.analysis.frontier import MEASURES, FrontierPoint, frontier
from custodysim.reporting.charts import (
    BASELINE_COLOUR,
    chart_style,
    laid_out,
    new_figure,
    svg_element,
    titled,
    usd_tick,
)

EFFICIENT_COLOUR = "#0072B2"
DOMINATED_COLOUR = "#999999"
LABEL_ALL_UP_TO = 8
"""Every point is labelled (where there is room) up to this many; beyond it the baseline and the efficient ones."""
LABEL_SIZE = 8.0
"""Point labels, in points: 10 px on a chart drawn 52rem wide (the narrowest the reports draw it)."""
Y_TITLES = {"expected_loss_usd": "expected loss (USD per year)", "var99_usd": "VaR 99 (USD lost in the year)"}
"""The loss axis's title, with its unit, per measure."""
PLACES = ((5, 4, "left", "bottom"), (5, -4, "left", "top"), (-5, 4, "right", "bottom"), (-5, -4, "right", "top"),
          (0, 9, "center", "bottom"), (0, -9, "center", "top"), (5, 15, "left", "bottom"), (5, -15, "left", "top"),
          (-5, 15, "right", "bottom"), (-5, -15, "right", "top"))
"""Where a label may go around its point (offset in points, alignment), tried in this order."""


def frontier_svg(variants: dict[str, dict[str, Any]], baseline: str | None = None, what: str = "variants") -> str:
    """Return the frontier as an inline SVG: loss against waiting, expected loss left and VaR 99 right.

    Efficient points are filled and joined by the frontier's staircase; dominated points are hollow and grey;
    the baseline is black (filled if efficient). Labels never overlap each other or a point: a label with no
    room is left out (the reports' table lists every point).

    Args:
        variants: figures by variant name, as in summary.json's ``variants`` (a sweep: the baseline and its points).
        baseline: the baseline's name, drawn in black and always labelled first (None: no baseline among them).
        what: what the points are, for the title (``variants`` or ``grid points``).
    """
    with chart_style():
        svg = svg_element(frontier_figure(variants, baseline, what), "frontier")
    return titled(svg, "frontier", f"Frontier of expected loss and VaR 99 against mean withdrawal delay, per "
                                    f"{what[:-1]}")


def frontier_figure(variants: dict[str, dict[str, Any]], baseline: str | None = None,
                    what: str = "variants") -> Figure:
    """Return the frontier chart of :func:`frontier_svg` as a laid-out, labelled figure (call inside chart_style)."""
    fig = new_figure(4.2)
    axes = fig.subplots(1, 2)
    wanted = [_panel(ax, frontier(variants, measure), measure, baseline)
              for ax, measure in zip(axes, MEASURES, strict=True)]
    fig.suptitle(f"Loss against customer waiting: the efficient {what} (filled) and the dominated ones "
                 "(hollow)", x=0.01, ha="left", fontsize=10, fontweight="bold")
    _place_labels(fig, list(zip(axes, wanted, strict=True)))
    return fig


Label = tuple[float, float, str, str]
"""A point's label to place: x, y (data), text, colour."""
Labels = tuple[list[Label], list[tuple[float, float]]]
"""A panel's labels to place, most important first, and the places of all its points (data)."""


def _panel(ax: Axes, points: list[FrontierPoint], measure: str, baseline: str | None) -> Labels:
    """Draw one measure's points and the efficient staircase; return the labels wanted and where the points are."""
    front = sorted((p for p in points if p.efficient), key=lambda p: (p.wait_hours, p.loss_usd))
    if len(front) > 1:
        ax.step([p.wait_hours for p in front], [p.loss_usd for p in front], where="post",
                color=EFFICIENT_COLOUR, linewidth=1.0, zorder=2)
    same_place: dict[tuple[float, float], list[FrontierPoint]] = {}
    for p in points:
        same_place.setdefault((p.wait_hours, p.loss_usd), []).append(p)
    first: list[tuple[tuple[int, float], Label]] = []
    for (x, y), here in same_place.items():
        efficient = here[0].efficient  # points at one place are all efficient or all dominated
        names = [p.name for p in here]
        colour = EFFICIENT_COLOUR if efficient else DOMINATED_COLOUR
        if baseline in names:
            names.remove(baseline)
            names.insert(0, baseline if baseline == "baseline" else f"{baseline} (baseline)")
            colour = BASELINE_COLOUR
        ax.scatter([x], [y], s=36, facecolors=colour if efficient else "none", edgecolors=colour, linewidths=1.4,
                   zorder=4 if colour == BASELINE_COLOUR else 3)
        rank = 0 if colour == BASELINE_COLOUR else (1 if efficient else 2)
        if rank < 2 or len(points) <= LABEL_ALL_UP_TO:
            text = ", ".join(names) if len(names) <= 2 else f"{names[0]} and {len(names) - 1} more"
            first.append(((rank, x), (x, y, text, "#1a1a1a" if rank < 2 else "#666666")))
    ax.yaxis.set_major_formatter(FuncFormatter(usd_tick))
    ax.set_xlabel("mean customer withdrawal delay (hours)")
    ax.set_ylabel(Y_TITLES[measure])
    ax.set_title(MEASURES[measure], loc="left")
    ax.margins(x=0.15, y=0.12)
    ax.grid(True, color="#eeeeee", linewidth=0.6)
    return [label for _, label in sorted(first, key=lambda item: item[0])], list(same_place)


def _place_labels(fig: Figure, panels: list[tuple[Axes, Labels]]) -> None:
    """Write each label at the first place around its point where it overlaps no label and no point.

    The layout is settled first and then fixed, so that the places found are where the labels are drawn.
    """
    renderer = laid_out(fig)
    fig.set_layout_engine("none")
    points = fig.dpi / 72
    for ax, (labels, places) in panels:
        frame = ax.get_window_extent(renderer)
        dots = {xy: _dot(ax, *xy) for xy in places}
        taken: list[Bbox] = []
        for x, y, text, colour in labels:
            others = taken + [box for xy, box in dots.items() if xy != (x, y)]
            probe = ax.annotate(text, (x, y), fontsize=LABEL_SIZE)
            size = probe.get_window_extent(renderer)
            probe.remove()
            px, py = ax.transData.transform((x, y))
            for dx, dy, ha, va in PLACES:
                left = px + dx * points - {"left": 0.0, "center": size.width / 2, "right": size.width}[ha]
                bottom = py + dy * points - (size.height if va == "top" else 0.0)
                box = Bbox.from_bounds(left, bottom, size.width, size.height).padded(1.5)
                inside = frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1
                if inside and not any(box.overlaps(other) for other in others):
                    ax.annotate(text, (x, y), xytext=(dx, dy), textcoords="offset points", ha=ha, va=va,
                                fontsize=LABEL_SIZE, color=colour, annotation_clip=False)
                    taken.append(box)
                    break


def _dot(ax: Axes, x: float, y: float) -> Bbox:
    """Return the box a marker covers on the canvas (display pixels)."""
    px, py = ax.transData.transform((x, y))
    r = 4.0 * ax.figure.dpi / 72
    return Bbox.from_extents(px - r, py - r, px + r, py + r)
