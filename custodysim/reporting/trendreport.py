"""A scenario's trend page, rendered from templates: trend.md and the self-contained trend.html.

The trend is what :func:`custodysim.studies.catalog.trend` returns: the scenario's complete runs, oldest
first, each with every variant's expected loss, P(loss > 0) (each with its 95% CI) and ES 99, and
whether the scenario file changed since the run before.
"""

from __future__ import annotations

from typing import Any

from markupsafe import Markup

from custodysim.reporting.charts import variant_colours
from custodysim.reporting.report import template_env, utc_stamp


def _context(trend: dict[str, Any]) -> dict[str, Any]:
    """Return what both templates need: the rows of the table (run by run, variant by variant) and the changes."""
    points = trend["points"]
    rows: list[dict[str, Any]] = []
    for i, p in enumerate(points):
        names = [n for n in trend["variants"] if n in p["variants"]]
        rows.extend({"run": i + 1, "p": p, "name": n, "v": p["variants"][n], "first": k == 0}
                    for k, n in enumerate(names))
    versions = {p["version"] for p in points}
    return {
        "t": trend,
        "rows": rows,
        "when": {p["folder"]: utc_stamp(p["created_utc"]) for p in points},
        "changes": [(i + 1, p) for i, p in enumerate(points) if p["scenario_changed"]],
        "hashes": len({p["scenario_sha256"] for p in points}),
        "versions": sorted(v for v in versions if v),
        "settings_differ": len({(p["seed"], p["trials"]) for p in points}) > 1,
        "colours": variant_colours(trend["variants"], trend["baseline"]),
    }


def render_trend_markdown(trend: dict[str, Any]) -> str:
    """Render trend.md: the points of every run and variant, and where the scenario file changed."""
    return template_env().get_template("trend.md.j2").render(**_context(trend))


def render_trend_html(trend: dict[str, Any]) -> str:
    """Render trend.html: one self-contained page (inline CSS and SVG charts, nothing loaded from anywhere)."""
    from custodysim.reporting import trendcharts  # matplotlib is imported only when a page is drawn

    charts = [(m, Markup(trendcharts.trend_svg(trend, m))) for m in trendcharts.MEASURES]
    return template_env(autoescape=True).get_template("trend.html.j2").render(charts=charts, **_context(trend))
