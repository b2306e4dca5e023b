"""Charts of a sweep as inline SVG: each figure against each swept value, and a heat map of two swept paths.

Like :mod:`custodysim.reporting.charts`, every function returns an ``<svg>`` element with ids prefixed per chart,
and the same data always gives the same bytes.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.ticker import FuncFormatter

from custodysim.reporting.charts import (
    PALETTE,
    chart_style,
    new_figure,
    short_number,
    svg_element,
    thin_tick_labels,
    titled,
    usd_tick,
)
from custodysim.scenario.grids import varying
from custodysim.scenario.units import with_unit

MAX_LINES = len(PALETTE)
"""Lines per chart: one per combination of the other swept values, at most one per colour."""


def _numeric(values: list[Any]) -> bool:
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


def value_chart_svg(summary: dict[str, Any], index: int) -> str:
    """Return expected loss (with its 95% CI), VaR 99 and mean withdrawal delay against one swept path.

    With other swept paths, each combination of their values is a line (at most :data:`MAX_LINES`).

    Args:
        summary: sweep.json's content.
        index: which of the axes that take more than one value (:func:`custodysim.scenario.grids.varying`) to put on
            the x axis.
    """
    axes = varying(summary["axes"])
    axis = axes[index]
    others = [a for a in axes if a is not axis]
    groups = _groups(summary, axis, others)
    numeric = _numeric(axis["values"])
    xs = np.asarray(axis["values"], dtype=float) if numeric else np.arange(len(axis["values"]), dtype=float)
    v = summary["variants"]
    prefix = f"sweep{index}"
    with chart_style():
        fig = new_figure(3.4)
        panels = fig.subplots(1, 3)
        for k, (label, names) in enumerate(groups[:MAX_LINES]):
            colour = PALETTE[k % len(PALETTE)]
            mean = np.array([v[n]["expected_loss_usd"] for n in names])
            low = np.array([v[n]["expected_loss_ci95_usd"][0] for n in names])
            high = np.array([v[n]["expected_loss_ci95_usd"][1] for n in names])
            panels[0].errorbar(xs, mean, yerr=[mean - low, high - mean], color=colour, marker="o", markersize=3.5,
                               linewidth=1.4, capsize=2.5, label=label)
            panels[1].plot(xs, [v[n]["var99_usd"] for n in names], color=colour, marker="o", markersize=3.5,
                           linewidth=1.4)
            panels[2].plot(xs, [v[n]["operations"]["withdrawal_delay_mean_hours"] for n in names], color=colour,
                           marker="o", markersize=3.5, linewidth=1.4)
        titles = ("Expected loss (95% CI)", "VaR 99 (1-in-100 year)", "Mean withdrawal delay")
        for ax, title, unit in zip(panels, titles, Y_UNITS, strict=True):
            _x_axis(ax, axis, numeric, xs)
            ax.set_title(title, loc="left")
            ax.set_ylabel(unit)
            ax.grid(True, color="#eeeeee", linewidth=0.6)
        panels[0].yaxis.set_major_formatter(FuncFormatter(usd_tick))
        panels[1].yaxis.set_major_formatter(FuncFormatter(usd_tick))
        if others:
            handles, names_ = panels[0].get_legend_handles_labels()
            fig.legend(handles, names_, loc="outside lower center", ncols=min(3, len(names_)))
        thin_tick_labels(fig, list(panels))
        svg = svg_element(fig, prefix)
    return titled(svg, prefix, f"Expected loss, VaR 99 and withdrawal delay against {axis['path']}")


def _groups(summary: dict[str, Any], axis: dict[str, Any], others: list[dict[str, Any]]) -> list[tuple[str, list[str]]]:
    """Return (label, point names in the axis's value order) per combination of the other axes' values."""
    by_key: dict[tuple[str, ...], dict[str, str]] = {}
    for p in summary["points"]:
        key = tuple(repr(p["inputs"][o["path"]]) for o in others)
        by_key.setdefault(key, {})[repr(p["inputs"][axis["path"]])] = p["name"]
    out = []
    for key, by_value in by_key.items():
        texts = [o["texts"][[repr(x) for x in o["values"]].index(k)] for o, k in zip(others, key, strict=True)]
        label = ", ".join(f"{o['label']}={t}" for o, t in zip(others, texts, strict=True)) or axis["label"]
        out.append((label, [by_value[repr(x)] for x in axis["values"]]))
    return out


def _x_axis(ax: Axes, axis: dict[str, Any], numeric: bool, xs: np.ndarray) -> None:
    """Put the swept values on the x axis, titled with the swept path's label and unit.

    Positive numbers spanning 4x or more get a log scale; with 0 among them, a scale that is linear from 0 to
    the smallest positive value and logarithmic above it, so that 0, 0.1 and 1 stand apart. Labels that would
    still overlap are left out (:func:`~custodysim.reporting.charts.thin_tick_labels`).
    """
    if numeric:
        positive = xs[xs > 0]
        spread = len(positive) > 1 and positive.max() / positive.min() >= 4
        if spread and xs.min() > 0:
            ax.set_xscale("log")
        elif spread and xs.min() == 0:
            ax.set_xscale("symlog", linthresh=float(positive.min()), linscale=0.5)
        ax.set_xticks(xs, [short_number(float(x)) for x in xs])
        ax.minorticks_off()
        ax.margins(x=0.08)
    else:
        long = max(len(t) for t in axis["texts"]) > 6
        ax.set_xticks(xs, axis["texts"], rotation=30 if long else 0, ha="right" if long else "center")
    ax.set_xlabel(_title(axis))


Y_UNITS = ("USD per year", "USD lost in the year", "hours")
"""The y axes' titles (units) of a sweep's value chart: expected loss, VaR 99, withdrawal delay."""


def _title(axis: dict[str, Any]) -> str:
    """Return an axis title: the swept path's label, with its unit when its values are numbers."""
    return with_unit(axis["label"], axis.get("unit")) if _numeric(axis["values"]) else axis["label"]


def _tick_texts(axis: dict[str, Any]) -> list[str]:
    """Return an axis's values as tick labels: compact numbers, or the texts as typed."""
    return [short_number(float(x)) for x in axis["values"]] if _numeric(axis["values"]) else list(axis["texts"])


def heatmap_svg(summary: dict[str, Any]) -> str:
    """Return heat maps of expected loss and mean withdrawal delay over two swept paths, each cell labelled.

    Raises:
        ValueError: the sweep does not have exactly two paths with more than one value.
    """
    axes = varying(summary["axes"])
    if len(axes) != 2:
        raise ValueError("a heat map needs exactly two swept paths with more than one value")
    rows_axis, cols_axis = axes
    where = {(repr(p["inputs"][rows_axis["path"]]), repr(p["inputs"][cols_axis["path"]])): p["name"]
             for p in summary["points"]}
    names = [[where[(repr(r), repr(c))] for c in cols_axis["values"]] for r in rows_axis["values"]]
    v = summary["variants"]
    loss = np.array([[v[n]["expected_loss_usd"] for n in row] for row in names])
    wait = np.array([[v[n]["operations"]["withdrawal_delay_mean_hours"] for n in row] for row in names])
    with chart_style():
        fig = new_figure(2.0 + 0.4 * len(rows_axis["values"]))
        left, right = fig.subplots(1, 2)
        _heat(left, loss, "Blues", usd_tick, "Expected loss (USD per year)", rows_axis, cols_axis)
        _heat(right, wait, "Oranges", lambda x: f"{x:.3g} h", "Mean withdrawal delay (hours)", rows_axis, cols_axis)
        thin_tick_labels(fig, [left, right], ("x", "y"))
        svg = svg_element(fig, "heat")
    return titled(svg, "heat", f"Heat maps of expected loss and withdrawal delay over {rows_axis['path']} and "
                                f"{cols_axis['path']}")


def _heat(ax: Axes, values: np.ndarray, cmap: str, fmt: Any, title: str, rows_axis: dict[str, Any],
          cols_axis: dict[str, Any]) -> None:
    """Draw one heat map with every cell's value written in it."""
    ax.imshow(values, cmap=cmap, aspect="auto")
    top = float(values.max()) if values.size else 0.0
    for (i, j), x in np.ndenumerate(values):
        dark = top > 0 and x > 0.6 * top
        ax.text(j, i, fmt(float(x)), ha="center", va="center", fontsize=8, color="#ffffff" if dark else "#1a1a1a")
    columns = _tick_texts(cols_axis)
    long = max(len(t) for t in columns) > 6
    ax.set_xticks(range(len(columns)), columns, rotation=30 if long else 0, ha="right" if long else "center")
    ax.set_yticks(range(len(rows_axis["texts"])), _tick_texts(rows_axis))
    ax.set_xlabel(_title(cols_axis))
    ax.set_ylabel(_title(rows_axis))
    ax.set_title(title, loc="left")
    for side in ("top", "right", "bottom", "left"):
        ax.spines[side].set_visible(False)
