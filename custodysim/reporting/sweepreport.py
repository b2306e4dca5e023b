"""A sweep's reports, rendered from templates: report.md and the self-contained report.html."""

from __future__ import annotations

from typing import Any

from markupsafe import Markup

# The reports' shared Jinja environment (filters usd, pct, amount), so that both read the same.
from custodysim.reporting.report import frontier_context, template_env, utc_stamp
from custodysim.scenario.grids import frontier_figures, point_figures, swept, varying


def _context(summary: dict[str, Any], manifest: dict[str, Any]) -> dict[str, Any]:
    """Return what both sweep templates need: the points' figures, the frontier rows and the columns shown.

    The frontier is over the baseline and the points (:func:`~custodysim.scenario.grids.frontier_figures`).
    """
    variants = summary["variants"]
    grid = point_figures(summary)
    named_by = swept(summary["axes"])
    frontier = frontier_context(frontier_figures(summary), summary["baseline"], "grid point")
    return {
        "s": summary,
        "m": manifest,
        "points": [(p, variants[p["name"]]) for p in summary["points"]],
        "base": variants[summary["baseline"]],
        **frontier,
        "best": [(n, variants[n]) for n in frontier["efficient_mean"][:MAX_ANSWER_ROWS]],
        "swept_paths": [a["path"] for a in named_by],
        "costs": any("costs" in v for v in grid.values()),
        "created": utc_stamp(manifest.get("created_utc", "")),
    }


MAX_ANSWER_ROWS = 8
"""Efficient settings shown with their figures in the answer at the top (the frontier section lists them all)."""



def render_sweep_markdown(summary: dict[str, Any], manifest: dict[str, Any]) -> str:
    """Render a sweep's report.md from sweep.json's content and its manifest."""
    return template_env().get_template("sweep.md.j2").render(**_context(summary, manifest))


def render_sweep_html(summary: dict[str, Any], manifest: dict[str, Any]) -> str:
    """Render a sweep's report.html: one self-contained page (inline CSS and SVG charts, nothing loaded).

    It holds a chart of the figures against each swept path, a heat map when exactly two paths take more
    than one value, and the frontier of the grid points.
    """
    from custodysim.reporting import (  # matplotlib is imported only when an HTML report is made
        frontierchart,
        sweepcharts,
    )

    charted = varying(summary["axes"])
    charts = {
        "values": [(a, Markup(sweepcharts.value_chart_svg(summary, k))) for k, a in enumerate(charted)],
        "heat": Markup(sweepcharts.heatmap_svg(summary)) if len(charted) == 2 else None,
        "frontier": Markup(frontierchart.frontier_svg(frontier_figures(summary), summary["baseline"], "grid points")),
    }
    template = template_env(autoescape=True).get_template("sweep.html.j2")
    return template.render(charts=charts, **_context(summary, manifest))
