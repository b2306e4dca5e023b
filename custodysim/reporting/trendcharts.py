"""The trend page's charts: a figure of a scenario's variants run after run, with 95% CIs, as inline SVG.

One slot per run, oldest on the left, labelled with the run's date; each variant's point sits in its own
place within the slot (the baseline first), with its 95% CI as an error bar. A dashed vertical line
between two runs marks where the scenario file changed (its sha256 differs from the run before).
"""

from __future__ import annotations

from typing import Any

from matplotlib.axes import Axes
from matplotlib.ticker import FuncFormatter

from custodysim.reporting.charts import chart_style, new_figure, svg_element, titled, usd_tick, variant_colours

MEASURES = {
    "expected_loss_usd": ("Expected loss a year", "expected_loss_ci95_usd"),
    "p_any_loss": ("P(loss > 0): the chance of a losing year", "p_any_loss_ci95"),
    "es99_usd": ("ES 99: the mean of the worst 1% of years", None),
}
"""The figures charted: title and the key of the 95% CI (None: the summary holds no CI of it)."""
CHANGE_COLOUR = "#a4161a"
CHANGE_LABEL = "scenario file changed"
MARKERS = ("o", "s", "D", "^", "v", "P", "X", "*")


def date_label(stamp: str) -> str:
    """Return a run's time stamp as a two-line axis label: ``2026-12-04`` over ``17:41``."""
    return f"{stamp[:10]}\n{stamp[11:16]}" if len(stamp) >= 16 else stamp


def trend_svg(trend: dict[str, Any], measure: str) -> str:
    """Return the chart of one figure (a key of :data:`MEASURES`) over the runs of the trend."""
    title, ci_key = MEASURES[measure]
    points = trend["points"]
    names = trend["variants"]
    colours = variant_colours(names, trend["baseline"])
    n = len(names)
    width = 0.7 / max(n, 1)
    with chart_style():
        fig = new_figure(3.3)
        ax = fig.add_subplot()
        for k, name in enumerate(names):
            xs, ys, low, high = [], [], [], []
            for i, p in enumerate(points):
                v = p["variants"].get(name)
                if v is None or v.get(measure) is None:
                    continue
                x = i - 0.35 + width * (k + 0.5)
                y = float(v[measure])
                ci = v.get(ci_key) if ci_key else None
                xs.append(x)
                ys.append(y)
                low.append(max(0.0, y - ci[0]) if ci else 0.0)  # a CI that misses its point is not drawn inside out
                high.append(max(0.0, ci[1] - y) if ci else 0.0)
            if not xs:
                continue
            baseline = name == trend["baseline"]
            label = f"{name} (baseline)" if baseline and name != "baseline" else name
            ax.errorbar(xs, ys, yerr=[low, high] if ci_key else None, fmt=MARKERS[k % len(MARKERS)],
                        color=colours[name], markersize=6 if baseline else 4.5, capsize=2.5,
                        elinewidth=1.4 if baseline else 1.0, linestyle="-" if baseline else ":",
                        linewidth=1.2 if baseline else 0.8, label=label, zorder=3 if baseline else 4)
        _changes(ax, points)
        ax.set_xlim(-0.6, len(points) - 0.4)
        ax.set_xticks(range(len(points)), [date_label(p["created_utc"]) for p in points])
        if len(points) > 8:
            ax.tick_params(axis="x", labelrotation=90)
        ax.yaxis.set_major_formatter(FuncFormatter(_pct_tick if measure == "p_any_loss" else usd_tick))
        ax.set_ylim(bottom=0)
        ax.set_title(title, loc="left")
        ax.grid(axis="y", color="#e6e6e6", linewidth=0.6)
        ax.set_axisbelow(True)
        handles, labels = ax.get_legend_handles_labels()
        order = sorted(range(len(labels)), key=lambda i: labels[i] == CHANGE_LABEL)  # the mark after the variants
        handles, labels = [handles[i] for i in order], [labels[i] for i in order]
        fig.legend(handles, labels, loc="outside lower center", ncols=min(4, max(1, len(labels))))
        prefix = f"trend-{measure.replace('_', '-')}"
        svg = svg_element(fig, prefix)
    return titled(svg, prefix, f"{title} of {trend['scenario']}, one point per run and variant, with 95% CIs")


def _pct_tick(p: float, _pos: object = None) -> str:
    return f"{100 * p:.3g}%"


def _changes(ax: Axes, points: list[dict[str, Any]]) -> None:
    """Draw a dashed line before each run whose scenario file differs from the run before's."""
    first = True
    for i, p in enumerate(points):
        if p["scenario_changed"]:
            ax.axvline(i - 0.5, color=CHANGE_COLOUR, linestyle=(0, (4, 3)), linewidth=1.1, zorder=1,
                       label=CHANGE_LABEL if first else None)
            first = False
