"""How money, shares and asset amounts are written in every report and table."""

from __future__ import annotations


def usd(x: float | None) -> str:
    """Format USD compactly: ``$36.89M``, ``-$945.16k``, ``$0``; ``n/a`` for None."""
    if x is None:
        return "n/a"
    sign = "-" if x < 0 else ""
    x = abs(x)
    for limit, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if x >= limit:
            return f"{sign}${x / limit:,.2f}{suffix}"
    return f"{sign}${x:,.0f}"


def pct(x: float) -> str:
    """Format a share as a percentage with one decimal: ``13.2%`` (never ``-0.0%``)."""
    return f"{round(100 * x, 1) + 0.0:.1f}%"  # + 0.0 turns -0.0 into 0.0


def amount(x: float) -> str:
    """Format an amount in an asset's own units: whole units when large, 4 significant digits when small."""
    if x == 0:
        return "0"
    return f"{x:,.0f}" if abs(x) >= 1000 else f"{x:,.4g}"
