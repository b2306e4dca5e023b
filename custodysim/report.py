"""Human-readable reports rendered from templates."""

from __future__ import annotations

from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined


def _usd(x: float | None) -> str:
    if x is None:
        return "n/a"
    sign = "-" if x < 0 else ""
    x = abs(x)
    for limit, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if x >= limit:
            return f"{sign}${x / limit:,.2f}{suffix}"
    return f"{sign}${x:,.0f}"


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _env() -> Environment:
    env = Environment(loader=PackageLoader("custodysim", "templates"), undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    env.filters["usd"] = _usd
    env.filters["pct"] = _pct
    return env


def render_markdown(summary: dict[str, Any], manifest: dict[str, Any]) -> str:
    """Render report.md from a run's summary and manifest."""
    return _env().get_template("report.md.j2").render(s=summary, m=manifest)
