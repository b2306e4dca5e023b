"""Charts of a run as inline SVG strings: loss exceedance, loss histogram, where the loss comes from.

Every function returns an ``<svg>`` element ready to paste into HTML: no XML prolog, no namespace
URLs, no metadata, text as text (searchable, printable), and ids prefixed per chart so several charts
can share one page. The same data always gives the same bytes.
"""

from __future__ import annotations

import io
import itertools
import math
import re
import textwrap
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.text import Text
from matplotlib.ticker import FixedLocator, FuncFormatter, LogLocator, NullFormatter
from matplotlib.transforms import Bbox

from custodysim.formatting import usd
from custodysim.running.losses import VariantLosses
from custodysim.simulation.results import PATH_TYPES

BASELINE_COLOUR = "#000000"
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#999999")
"""Okabe-Ito colours, distinguishable with the common colour-vision deficiencies."""
PARTS = ("#66C2A5", "#FC8D62", "#8DA0CB", "#E78AC3", "#A6D854", "#FFD92F", "#E5C494", "#B3B3B3")
"""ColorBrewer Set2: the segments of the breakdown bars, lighter than the variants' colours to tell them apart."""
STYLES = ("-", "--", "-.", ":")
MAX_WALLETS = 7
"""Wallets shown one by one in the breakdown; the rest are summed as 'other wallets'."""
FONT = "font-family: 'DejaVu Sans', 'Liberation Sans', Arial, Helvetica, sans-serif"
RC: dict[str, Any] = {
    "svg.hashsalt": "custodysim",
    "svg.fonttype": "none",
    "font.size": 9.0,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.titlesize": 10.0,
    "axes.titleweight": "bold",
    "legend.fontsize": 8.0,
    "legend.frameon": False,
}
SMALL_RC: dict[str, Any] = {"axes.titlesize": 9.5, "legend.fontsize": 9.0}
"""A small chart's text: 9 points (8.5 for notes) on a figure 4.6 inches wide, so that shown one column wide
on a phone or a third of a screen wide it is never under 9 pixels."""
SMALL_WIDTH, SMALL_HEIGHT = 4.6, 3.6
"""A small chart's size, inches."""


def variant_colours(names: list[str], baseline: str) -> dict[str, str]:
    """Return each variant's chart colour: black for the baseline, Okabe-Ito colours in order for the rest.

    Args:
        names: variant names in run order.
        baseline: the baseline's name.
    """
    others = [n for n in names if n != baseline]
    colours = {n: PALETTE[i % len(PALETTE)] for i, n in enumerate(others)}
    return {n: BASELINE_COLOUR if n == baseline else colours[n] for n in names}


def short_number(x: float) -> str:
    """Return a compact tick label: ``5M``, ``2.5k``, ``0.25``, ``48``."""
    for limit, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= limit:
            return f"{x / limit:.3g}{suffix}"
    return f"{x:.3g}"


def usd_tick(x: float, _pos: object = None) -> str:
    """Return a short USD axis label: ``$300M``, ``$1.5k``, ``$0``."""
    return "$" + short_number(x)


def _pct_tick(p: float, _pos: object = None) -> str:
    return f"{100 * p:.3g}%"


class Curve(Protocol):
    """What an exceedance curve or histogram draws: a name and a loss per trial."""

    @property
    def name(self) -> str:
        """The curve's name (a variant, a run)."""

    @property
    def loss(self) -> np.ndarray:
        """The loss of each trial."""

    def __len__(self) -> int:
        """Return the number of trials."""


@dataclass(frozen=True)
class LossCurve:
    """A named loss per trial that is not a variant's annual loss (its largest event, say)."""

    name: str
    loss: np.ndarray

    def __len__(self) -> int:
        return len(self.loss)


def _style(rows: Sequence[Curve], baseline: str) -> dict[str, dict[str, object]]:
    """Return line keyword arguments per variant: the baseline thick and underneath, the rest thinner on top."""
    colours = variant_colours([r.name for r in rows], baseline)
    others = [r.name for r in rows if r.name != baseline]
    out: dict[str, dict[str, object]] = {}
    for r in rows:
        if r.name == baseline:
            out[r.name] = {"color": colours[r.name], "linewidth": 3.5, "zorder": 2}
        else:
            style = STYLES[others.index(r.name) % len(STYLES)]
            out[r.name] = {"color": colours[r.name], "linewidth": 1.6, "linestyle": style, "zorder": 3}
    return out


def _label(r: Curve, baseline: str, tag: str = "baseline") -> str:
    name = f"{r.name} ({tag})" if r.name == baseline else r.name
    return name if np.any(r.loss > 0) else f"{name}: no loss in {len(r):,} trials"


def _positive_range(rows: Sequence[Curve]) -> tuple[float, float] | None:
    """Return the smallest and largest positive loss over all variants, or None if nothing was lost."""
    positive = [r.loss[r.loss > 0] for r in rows]
    values = np.concatenate(positive) if positive else np.empty(0)
    if values.size == 0:
        return None
    return float(values.min()), float(values.max())


def svg_element(fig: Figure, prefix: str) -> str:
    """Return the figure as an inline ``<svg>`` element with ids prefixed by ``prefix``."""
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None, "Format": None, "Type": None})
    text = buf.getvalue()
    text = text[text.index("<svg"):]
    text = re.sub(r'\s+xmlns(:xlink)?="[^"]*"', "", text)
    text = text.replace("xlink:href=", "href=")
    text = re.sub(r'(\bid="|\bhref="#|url\(#)', rf"\g<1>{prefix}-", text)
    text = text.replace("font-family: 'DejaVu Sans'", FONT)
    return text.replace("<svg ", f'<svg class="chart" role="img" aria-labelledby="{prefix}-title" ', 1)


def _usd_log_x(ax: Axes) -> None:
    """Make the x axis logarithmic with USD labels at 1, 2 and 5 times each power of ten."""
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(FuncFormatter(usd_tick))
    ax.xaxis.set_minor_formatter(NullFormatter())


def _legend_below(ax: Axes) -> None:
    """Put the axes' legend under the figure, in up to three columns, clear of the curves."""
    handles, labels = ax.get_legend_handles_labels()
    ax.figure.legend(handles, labels, loc="outside lower center", ncols=min(3, max(1, len(labels))))


def chart_style(small: bool = False) -> AbstractContextManager[None]:
    """Return a context with the charts' settings: fixed SVG hash salt (reproducible ids), text as text.

    Args:
        small: the text of a small chart (:data:`SMALL_RC`).
    """
    settings: dict[str, Any] = {**RC, **SMALL_RC} if small else RC
    return matplotlib.rc_context(settings)  # type: ignore[arg-type]


def new_figure(height: float, width: float = 9.0) -> Figure:
    """Return a new figure on the Agg canvas, outside pyplot, so no global backend is touched."""
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _no_loss(ax: Axes, n: int, noun: str = "variant") -> None:
    ax.text(0.5, 0.5, f"No {noun} lost anything in {n:,} trials", ha="center", va="center",
            transform=ax.transAxes)
    ax.set_xticks([])
    ax.set_yticks([])


def titled(svg: str, prefix: str, title: str) -> str:
    """Insert an accessible ``<title>`` as the first child of the ``<svg>`` element."""
    head_end = svg.index(">") + 1
    return f'{svg[:head_end]}\n <title id="{prefix}-title">{title}</title>{svg[head_end:]}'


class Mark(NamedTuple):
    """A loss the exceedance curve marks with a vertical line: where the insurance or the capital runs out."""

    loss_usd: float
    label: str
    colour: str


MARK_REACH = 30.0
"""A mark is drawn if it lies within this multiple of the largest simulated loss (the axis stretches to it)."""


def loss_exceedance_svg(rows: Sequence[Curve], baseline: str, marks: Sequence[Mark] = (), *, prefix: str = "lec",
                        heading: str = "Loss exceedance: how often a year loses more than x",
                        tag: str = "baseline", noun: str = "variant", small: bool = False) -> str:
    """Return the loss exceedance curves of all variants on one chart, as an inline SVG.

    x is the loss in USD (log axis), y the share of trials (years) whose loss exceeds x (log axis).
    Variants without any loss cannot be drawn on a log axis; the legend says so.

    Args:
        rows: every variant's trial rows, baseline included.
        baseline: the baseline's name (drawn thick and underneath).
        marks: losses to mark with a labelled vertical line (the capital, the insurance limit); one beyond
            :data:`MARK_REACH` times the largest loss is left out (the caption says where it lies).
        prefix: the chart's id prefix, unique on its page.
        heading: the title drawn above the chart.
        tag: what the legend calls the baseline's curve.
        noun: what one curve is (a variant; a run, when the curves are one variant's in several runs).
        small: a small chart (:data:`SMALL_WIDTH`), for a grid of them.
    """
    return _exceedance_svg(rows, baseline, marks, prefix, heading, "annual loss x (USD, log scale)",
                           "P(annual loss > x)", f"Loss exceedance curves, one per {noun}", tag, noun, small)


def occurrence_exceedance_svg(rows: Sequence[VariantLosses], baseline: str, marks: Sequence[Mark] = ()) -> str:
    """Return the occurrence exceedance curves (OEP): how often a year's largest single loss event exceeds x.

    Beside the aggregate curve (:func:`loss_exceedance_svg`, the year's total), this is the curve a policy
    with terms per occurrence answers to. Variants whose events were not kept are left out.

    Args:
        rows: every variant's trial rows, baseline included.
        baseline: the baseline's name (drawn thick and underneath).
        marks: event losses to mark (where an insurance's per-occurrence limit is reached).
    """
    largest = [LossCurve(r.name, r.events.largest(r.trials)) for r in rows if r.events is not None]
    return _exceedance_svg(largest, baseline, marks, "oep",
                           "Occurrence exceedance: how often a year's largest loss event exceeds x",
                           "largest single loss event of a year x (USD, log scale)", "P(largest event > x)",
                           "Occurrence exceedance curves, one per variant")


def _exceedance_svg(rows: Sequence[Curve], baseline: str, marks: Sequence[Mark], prefix: str, title: str,
                    xlabel: str, ylabel: str, alt: str, tag: str = "baseline", noun: str = "variant",
                    small: bool = False) -> str:
    with chart_style(small):
        fig = new_figure(SMALL_HEIGHT, SMALL_WIDTH) if small else new_figure(4.2)
        ax = fig.add_subplot()
        span = _positive_range(rows)
        n = max((len(r) for r in rows), default=0)
        if span is None or n == 0:
            _no_loss(ax, n, noun)
        else:
            _exceedance_lines(ax, rows, baseline, span, n, marks, tag, 8.5 if small else 7.0)
            ax.set_xlabel(xlabel)
            ax.set_ylabel(ylabel)
            if small:
                _fewer_usd_ticks(ax)
        ax.set_title(title, loc="left")
        svg = svg_element(fig, prefix)
    return titled(svg, prefix, alt)


TICK_STEPS = ((1.0, 2.0, 5.0), (1.0,), (1.0, 2.0, 3.0, 5.0), (1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 7.0))
"""Multiples of each power of ten that may label a small chart's log axis, in order of preference."""


def _fewer_usd_ticks(ax: Axes, most: int = 5) -> None:
    """Label a small chart's log USD axis at three to ``most`` round amounts, so that no two labels touch."""
    low, high = ax.get_xlim()
    decades = range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1)
    best: list[float] = []
    for steps in TICK_STEPS:
        ticks = [m * 10.0**k for k in decades for m in steps if low <= m * 10.0**k <= high]
        if 3 <= len(ticks) <= most:
            best = ticks
            break
        if len(best) < len(ticks) <= most:
            best = ticks
    ax.xaxis.set_major_locator(FixedLocator(best))


def _exceedance_lines(ax: Axes, rows: Sequence[Curve], baseline: str, span: tuple[float, float],
                      n: int, marks: Sequence[Mark], tag: str = "baseline", note_size: float = 7.0) -> None:
    floor = 0.5 / n
    shown = [m for m in marks if span[0] / 2 < m.loss_usd <= span[1] * MARK_REACH]
    left, right = span[0] / 2, max([span[1] * 1.5, *(m.loss_usd * 1.4 for m in shown)])
    styles = _style(rows, baseline)
    for r in rows:
        positive = np.sort(r.loss[r.loss > 0])
        if positive.size == 0:
            ax.plot([], [], label=_label(r, baseline, tag), **styles[r.name])  # type: ignore[arg-type]
            continue
        values, counts = np.unique(positive, return_counts=True)
        above = (positive.size - np.cumsum(counts)) / len(r)
        values, above = _thinned(values, above)
        xs = np.concatenate(([left], values))
        ys = np.concatenate(([positive.size / len(r)], np.maximum(above, floor)))
        ax.step(xs, ys, where="post", label=_label(r, baseline, tag), **styles[r.name])  # type: ignore[arg-type]
    for p, text in ((0.1, "1 year in 10"), (0.01, "1 in 100"), (0.001, "1 in 1,000")):
        if p >= floor:
            ax.axhline(p, color="#bbbbbb", linewidth=0.6, zorder=1)
            ax.text(right, p, f" {text}", va="center", ha="left", fontsize=note_size, color="#666666")
    for m in shown:
        ax.axvline(m.loss_usd, color=m.colour, linewidth=1.0, linestyle=(0, (4, 3)), zorder=1)
        ax.text(m.loss_usd, 0.9, f"{m.label} ", rotation=90, ha="right", va="top", fontsize=note_size + 0.5,
                color=m.colour, bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8, "pad": 1.0})
    ax.set_yscale("log")
    _usd_log_x(ax)
    ax.set_xlim(left, right)
    ax.set_ylim(floor, 1.0)
    ax.yaxis.set_major_locator(LogLocator(base=10))
    ax.yaxis.set_major_formatter(FuncFormatter(_pct_tick))
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.grid(True, which="major", axis="x", color="#eeeeee", linewidth=0.6)
    _legend_below(ax)


def _thinned(values: np.ndarray, above: np.ndarray, body: int = 1000, tail: int = 500) -> tuple[np.ndarray, np.ndarray]:
    """Return at most ``body + tail`` steps of an exceedance curve: every step of its tail, a sample of the rest.

    A million-trial run has a hundred thousand distinct losses; the chart cannot show more than a few
    hundred steps, and the file would grow by megabytes. The ``tail`` largest losses (the rare years) are
    all kept; below them, ``body`` steps evenly spaced in rank keep the curve's shape to within a pixel.
    """
    if len(values) <= body + tail:
        return values, above
    keep = np.union1d(np.linspace(0, len(values) - tail - 1, body).round().astype(int),
                      np.arange(len(values) - tail, len(values)))
    return values[keep], above[keep]


def loss_histogram_svg(rows: Sequence[Curve], baseline: str, bins: int = 40) -> str:
    """Return a histogram of the losses above zero, one step outline per variant, as an inline SVG.

    Bins are log-spaced and shared by every variant; y counts trials, so areas compare across variants.

    Args:
        rows: every variant's trial rows, baseline included.
        baseline: the baseline's name (drawn thick and underneath).
        bins: number of log-spaced bins.
    """
    with chart_style():
        fig = new_figure(3.6)
        ax = fig.add_subplot()
        span = _positive_range(rows)
        n = max((len(r) for r in rows), default=0)
        if span is None:
            _no_loss(ax, n)
        else:
            low, high = span if span[1] > span[0] * 1.01 else (span[0] / 2, span[1] * 2)
            edges = np.geomspace(low, high * 1.0001, bins + 1)
            styles = _style(rows, baseline)
            for r in rows:
                positive = r.loss[r.loss > 0]
                if positive.size == 0:
                    ax.plot([], [], label=_label(r, baseline), **styles[r.name])  # type: ignore[arg-type]
                    continue
                counts, _ = np.histogram(positive, bins=edges)
                ax.stairs(counts, edges, label=_label(r, baseline), **styles[r.name])  # type: ignore[arg-type]
            _usd_log_x(ax)
            ax.set_xlabel("annual loss (USD, log scale); trials without loss are left out")
            ax.set_ylabel(f"trials (of {n:,})")
            _legend_below(ax)
        ax.set_title("Size of the losses: trials by annual loss", loc="left")
        svg = svg_element(fig, "hist")
    return titled(svg, "hist", "Histogram of annual losses above zero, per variant")


def loss_breakdown_svg(rows: list[VariantLosses], baseline: str) -> str:
    """Return horizontal bars of each variant's expected loss split by attack path and by wallet.

    Args:
        rows: every variant's trial rows, baseline included (drawn top to bottom in this order).
        baseline: the baseline's name.
    """
    paths = {p.replace("_", " "): [r.mean(f"loss_usd_{p}") for r in rows] for p in PATH_TYPES}
    wallets = _wallet_means(rows)
    with chart_style():
        fig = new_figure(1.2 + 0.42 * max(len(rows), 1))
        left, right = fig.subplots(1, 2)
        names = [f"{r.name} (baseline)" if r.name == baseline else r.name for r in rows]
        _stacked(left, names, paths, "Expected loss by attack path")
        _stacked(right, names, wallets, "Expected loss by wallet")
        right.tick_params(labelleft=False)
        svg = svg_element(fig, "bars")
    return titled(svg, "bars", "Expected loss per variant, by attack path and by wallet")


def _wallet_means(rows: list[VariantLosses]) -> dict[str, list[float]]:
    """Return expected loss per wallet per variant: the largest wallets by name, the rest as 'other wallets'."""
    prefix = "loss_usd_wallet_"
    names = sorted({c[len(prefix):] for r in rows for c in r.columns if c.startswith(prefix)})
    means = {w: [r.mean(prefix + w) for r in rows] for w in names}
    ranked = sorted((w for w in names if max(means[w], default=0.0) > 0), key=lambda w: -sum(means[w]))
    shown = {w: means[w] for w in sorted(ranked[:MAX_WALLETS])}
    rest = ranked[MAX_WALLETS:]
    if rest:
        shown["other wallets"] = [sum(means[w][i] for w in rest) for i in range(len(rows))]
    return shown


def _stacked(ax: Axes, names: list[str], parts: dict[str, list[float]], title: str) -> None:
    """Draw one stacked horizontal bar per variant, segments by part, total at the bar's end."""
    y = np.arange(len(names))
    start = np.zeros(len(names))
    colours = iter(PARTS)
    for part, values in parts.items():
        if not any(v > 0 for v in values):
            continue
        ax.barh(y, values, left=start, height=0.6, label=part, color=next(colours, "#777777"))
        start += np.asarray(values)
    top = float(start.max()) if len(start) else 0.0
    for yi, total in zip(y, start, strict=True):
        ax.text(float(total) + top * 0.01, float(yi), usd(float(total)), va="center", fontsize=8)
    ax.set_xlim(0, top * 1.2 if top > 0 else 1.0)
    ax.set_yticks(y, names)
    ax.invert_yaxis()
    ax.xaxis.set_major_formatter(FuncFormatter(usd_tick))
    ax.set_title(title, loc="left")
    if top > 0:
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=4)


MAX_TORNADO = 15
"""Inputs drawn in the tornado chart (largest swing first); the table lists them all."""
LOW_COLOUR, HIGH_COLOUR = PALETTE[0], PALETTE[1]


def tornado_svg(tornado: list[dict[str, Any]], baseline_loss: float) -> str:
    """Return the tornado chart: expected loss at each input's low and high estimate, around the baseline.

    Args:
        tornado: rows of :func:`custodysim.analysis.sensitivity.tornado`, largest swing first.
        baseline_loss: the baseline's expected loss (the vertical line the bars start from).
    """
    shown = tornado[:MAX_TORNADO]
    labels = [wrapped(t["input"]) for t in shown]
    with chart_style():
        fig = new_figure(1.4 + _row_height(labels) * max(len(shown), 1))
        ax = fig.add_subplot()
        if not shown:
            ax.text(0.5, 0.5, "No uncertain inputs", ha="center", va="center", transform=ax.transAxes)
            ax.set_xticks([])
            ax.set_yticks([])
        else:
            y = np.arange(len(shown))
            for end, colour in (("low", LOW_COLOUR), ("high", HIGH_COLOUR)):
                losses = np.array([t[f"loss_at_{end}_usd"] for t in shown])
                ax.barh(y, losses - baseline_loss, left=baseline_loss, height=0.6, color=colour, alpha=0.85,
                        label=f"at its {end} estimate")
            ax.axvline(baseline_loss, color=BASELINE_COLOUR, linewidth=1.2)
            ax.set_yticks(y, labels)
            ax.invert_yaxis()
            ax.xaxis.set_major_formatter(FuncFormatter(usd_tick))
            ax.set_xlabel(f"expected loss (USD per year); the line is the baseline's {usd(baseline_loss)}")
            _legend_below(ax)
        ax.set_title("Expected loss at each input's low and high estimate", loc="left")
        svg = svg_element(fig, "tornado")
    return titled(svg, "tornado", "Tornado chart: expected loss at each uncertain input's low and high estimate")


def control_worth_svg(controls: list[dict[str, Any]]) -> str:
    """Return bars of each control's loss avoided alone and in the full set (paired 95% CIs), and its cost a year.

    Args:
        controls: the ``controls`` of an attribution summary, in order (the cost alone is drawn when present).
    """
    labels = [wrapped(c["control"]) for c in controls]
    costed = any("annual_cost_usd" in c["alone"] for c in controls)
    bars = [(-0.27 if costed else -0.18, "alone", "worth alone (from the baseline)", PALETTE[2]),
            (0.0 if costed else 0.18, "in_full_set", "worth in the full set (its marginal worth)", PALETTE[3])]
    with chart_style():
        fig = new_figure(1.5 + max(_row_height(labels), 0.8 if costed else 0.6) * max(len(controls), 1))
        ax = fig.add_subplot()
        y = np.arange(len(controls))
        for offset, measure, label, colour in bars:
            values = np.array([c[measure]["avoided_usd"] for c in controls])
            cis = np.array([c[measure]["ci95_usd"] for c in controls]).reshape(-1, 2)
            errors = np.abs(np.vstack([values - cis[:, 0], cis[:, 1] - values]))
            ax.barh(y + offset, values, height=0.26 if costed else 0.34, color=colour, label=label, xerr=errors,
                    error_kw={"ecolor": "#333333", "elinewidth": 0.8, "capsize": 2})
        if costed:
            ax.barh(y + 0.27, [c["alone"].get("annual_cost_usd", 0.0) for c in controls], height=0.26,
                    color="#999999", label="its cost a year")
        ax.axvline(0, color=BASELINE_COLOUR, linewidth=0.8)
        ax.set_yticks(y, labels)
        ax.invert_yaxis()
        ax.xaxis.set_major_formatter(FuncFormatter(usd_tick))
        ax.set_xlabel("expected loss avoided and cost (USD per year); loss avoided with its paired 95% CI")
        ax.set_title("What each control is worth, and what it costs", loc="left")
        _legend_below(ax)
        svg = svg_element(fig, "worth")
    return titled(svg, "worth", "Loss avoided by each control alone and in the full set, and its cost a year")


LABEL_WIDTH = 42
"""Characters per line of a bar chart's category label; a longer label wraps, never cut."""


def wrapped(text: str, width: int = LABEL_WIDTH) -> str:
    """Return a category label wrapped onto lines of at most ``width`` characters (a long word stays whole)."""
    return "\n".join(textwrap.wrap(text, width, break_long_words=False, break_on_hyphens=True)) or text


def _row_height(labels: list[str]) -> float:
    """Return the height (inches) of one bar's row: room for its label's lines at 9 pt."""
    lines = max((label.count("\n") + 1 for label in labels), default=1)
    return max(0.36, 0.17 * lines + 0.1)


def laid_out(fig: Figure) -> Any:
    """Run the figure's layout (without drawing it) and return the renderer that measures its text."""
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    engine = fig.get_layout_engine()
    if engine is not None:
        engine.execute(fig)
    return renderer


def thin_tick_labels(fig: Figure, axes: list[Axes], which: tuple[str, ...] = ("x",)) -> None:
    """Blank the tick labels that would overlap a neighbour, keeping the first and the last.

    Lays the figure out (:func:`laid_out`) to measure the labels where they are drawn. Rotated labels are apart
    when their baselines are: when the ticks are further apart than a line of text over the sine of the angle.

    Args:
        fig: the figure.
        axes: its axes whose tick labels to thin.
        which: ``"x"`` and/or ``"y"``: the tick labels of which axis.
    """
    renderer = laid_out(fig)
    for ax, name in itertools.product(axes, which):
        axis = ax.xaxis if name == "x" else ax.yaxis
        texts = [t.label1 for t in axis.get_major_ticks() if t.label1.get_visible() and t.label1.get_text()]
        kept: list[Text] = []
        for text in texts:
            if not kept or _apart(kept[-1], text, renderer, name == "x", fig.dpi):
                kept.append(text)
            elif text is texts[-1] and len(kept) > 1:
                kept[-1] = text  # the last value is worth more than the one before it
        for text in texts:
            if text not in kept:
                text.set_visible(False)


def _apart(a: Text, b: Text, renderer: Any, horizontal: bool, dpi: float) -> bool:
    """Return whether two tick labels do not overlap (rotated ones: whether their baselines are a line apart)."""
    angle = math.radians(abs(a.get_rotation()) % 180)
    box_a, box_b = a.get_window_extent(renderer), b.get_window_extent(renderer)
    if angle and horizontal:
        def anchor(t: Text, box: Bbox) -> float:
            return float(box.x1 if t.get_horizontalalignment() == "right" else box.x0)
        gap = abs(anchor(a, box_a) - anchor(b, box_b))
        return gap * math.sin(angle) >= 1.15 * float(a.get_fontsize()) * dpi / 72
    return not box_a.padded(2.0).overlaps(box_b)
