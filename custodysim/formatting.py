"""How money, shares and asset amounts are written in every report and table, and user text made inert."""

from __future__ import annotations

import re


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


def signed_usd(x: float | None) -> str:
    """Format a change in USD with its sign: ``+$1.20M`` (more), ``-$945.16k`` (less), ``$0``; ``n/a`` for None."""
    if x is None:
        return "n/a"
    text = usd(x)
    if text in ("$0", "-$0"):  # a change that rounds to nothing has no sign
        return "$0"
    return "+" + text if x > 0 else text


def pct(x: float) -> str:
    """Format a share as a percentage with one decimal: ``13.2%`` (never ``-0.0%``).

    A share above 0 that would round to 0 is ``<0.1%``: a rare event is not a zero.
    """
    if 0 < x < 0.0005:
        return "<0.1%"
    return f"{round(100 * x, 1) + 0.0:.1f}%"  # + 0.0 turns -0.0 into 0.0


def amount(x: float) -> str:
    """Format an amount in an asset's own units: whole units when large, 4 significant digits when small."""
    if x == 0:
        return "0"
    return f"{x:,.0f}" if abs(x) >= 1000 else f"{x:,.4g}"


def narrowing(paired: list[float], unpaired: list[float]) -> str:
    """Say how many times narrower the paired CI of a difference is than the unpaired one.

    ``4.2x narrower``; ``exact`` when the paired difference is the same in every trial (its CI has no
    width) while the unpaired one has; an empty string when neither has a width.
    """
    width_p, width_u = paired[1] - paired[0], unpaired[1] - unpaired[0]
    if width_p > 0:
        return f"{width_u / width_p:,.1f}x narrower"
    return "exact (the same difference in every trial)" if width_u > 0 else ""


def number(x: float | None, digits: int = 1) -> str:
    """Format a plain figure with ``digits`` decimals and thousands separators; ``n/a`` for None."""
    return "n/a" if x is None else f"{x:,.{digits}f}"


_MARKDOWN_ACTIVE = str.maketrans({c: "\\" + c for c in "\\<>[]&|`"})
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b[@-Z\\-_]")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def clip(text: str, most: int = 300) -> str:
    """Return ``text`` cut to ``most`` characters, the cut marked with an ellipsis (a table cell stays short)."""
    return text if len(text) <= most else text[:most - 1] + "…"


def markdown_text(value: object) -> str:
    """Return ``value`` as Markdown that shows its text and does nothing else.

    Every character through which text becomes markup, a link or HTML in a Markdown renderer (``<``,
    ``>``, ``[``, ``]``, ``&``, backquotes, table pipes, backslashes) is backslash-escaped: a scenario's
    ``<script>`` or ``[x](javascript:...)`` is shown as written, never run or linked.
    """
    return str(value).translate(_MARKDOWN_ACTIVE)


def terminal_text(value: object) -> str:
    """Return ``value`` without terminal escape sequences or control characters (newlines and tabs stay).

    What a scenario names is printed as text: it can neither clear nor recolour the reader's terminal.
    """
    return _CONTROL.sub("", _ANSI.sub("", str(value)))
