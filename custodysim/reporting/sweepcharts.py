"""Charts of a sweep as inline SVG: each figure against each swept value, and a heat map of two swept paths.

Like :mod:`custodysim.reporting.charts`, every function returns an ``<svg>`` element with ids prefixed per chart,
and the same data always gives the same bytes.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.ticker import FuncFormatter

from custodysim.formatting import usd
from custodysim.reporting.charts import PALETTE, chart_style, new_figure, short_number, svg_element, titled, usd_tick
from custodysim.scenario.grids import varying

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
        titles = ("Expected annual loss (95% CI)", "VaR 99 (1-in-100 year)", "Mean withdrawal delay (hours)")
        for ax, title in zip(panels, titles, strict=True):
            _x_axis(ax, axis, numeric, xs)
            ax.set_title(title, loc="left")
            ax.grid(True, color="#eeeeee", linewidth=0.6)
        panels[0].yaxis.set_major_formatter(FuncFormatter(usd_tick))
        panels[1].yaxis.set_major_formatter(FuncFormatter(usd_tick))
        if others:
            handles, names_ = panels[0].get_legend_handles_labels()
            fig.legend(handles, names_, loc="outside lower center", ncols=min(4, len(names_)))
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
    """Label the x axis with the swept path and its values; a log scale for positive numbers spanning 4x or more."""
    if numeric:
        if xs.min() > 0 and xs.max() / xs.min() >= 4:
            ax.set_xscale("log")
        ax.set_xticks(xs, [short_number(float(x)) for x in xs])
        ax.minorticks_off()
        ax.margins(x=0.08)
    else:
        ax.set_xticks(xs, axis["texts"], rotation=30, ha="right")
    ax.set_xlabel(axis["label"])


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
        fig = new_figure(1.6 + 0.45 * len(rows_axis["values"]))
        left, right = fig.subplots(1, 2)
        _heat(left, loss, "Blues", usd, "Expected annual loss", rows_axis, cols_axis)
        _heat(right, wait, "Oranges", lambda x: f"{x:.3g} h", "Mean withdrawal delay", rows_axis, cols_axis)
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
        ax.text(j, i, fmt(float(x)), ha="center", va="center", fontsize=7, color="#ffffff" if dark else "#1a1a1a")
    ax.set_xticks(range(len(cols_axis["texts"])), _tick_texts(cols_axis), rotation=30, ha="right")
    ax.set_yticks(range(len(rows_axis["texts"])), _tick_texts(rows_axis))
    ax.set_xlabel(cols_axis["label"])
    ax.set_ylabel(rows_axis["label"])
    ax.set_title(title, loc="left")
    for side in ("top", "right", "bottom", "left"):
        ax.spines[side].set_visible(False)
