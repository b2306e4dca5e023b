"""What a person most likely meant: the hints that turn a refused value or key into its fix.

A number written the way people write numbers (``24h``, ``65,000``, ``90%``) is refused where a plain
number belongs; :func:`plain_number` says which plain number to write. A key a distribution does not
take is answered by :func:`unknown_parameter`, which names what that family does take and suggests a
key only when it is a real match (``min`` is a uniform's ``low``), never the key itself or another
family's.
"""

from __future__ import annotations

import difflib
import re

from custodysim.errors import PathT
from custodysim.scenario.distributions import FAMILIES, parameters


def did_you_mean(word: str, options: list[str]) -> str:
    """Return `` (did you mean 'X'?)`` for the closest of ``options`` to ``word``, or nothing if none is close."""
    close = difflib.get_close_matches(word, [o for o in options if o != word], n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


_SYNONYMS = {"min": "low", "minimum": "low", "lower": "low", "max": "high", "maximum": "high", "upper": "high",
             "likely": "mode", "most_likely": "mode", "peak": "mode", "p50": "median", "average": "mean",
             "avg": "mean", "fixed": "value"}
"""Names people give a family's fields, by the field they mean (used only where the family has that field)."""


def unknown_parameter(family: str, key: str) -> str:
    """Return the message for ``key`` in a distribution of ``family`` that takes no such field.

    A key another family takes is no misspelling: it is said whose it is (a lognormal's ``mean`` is not
    its ``median``). Nor is another percentile (``p95`` is not ``p90``).

    Example: ``unknown field 'min': dist: uniform takes low and high (did you mean 'low'?)``.
    """
    takes = parameters(family)
    listed = takes[0] if len(takes) == 1 else f"{', '.join(takes[:-1])} and {takes[-1]}"
    message = f"unknown field {key!r}: dist: {family} takes {listed}"
    synonym = _SYNONYMS.get(key.lower())
    owners = [f for f in FAMILIES if key in parameters(f)]
    if synonym in takes:
        return f"{message} (did you mean {synonym!r}?)"
    if owners:
        return f"{message}; {key!r} belongs to dist: {' and '.join(owners)}"
    if re.fullmatch(r"p\d+", key, re.IGNORECASE):
        return f"{message} (p90 is the 90th percentile; no other percentile is taken)" if "p90" in takes else message
    return message + did_you_mean(key, takes)


_NUMBER = re.compile(
    r"\s*(?P<currency>\$|usd\s)?\s*"
    r"(?P<number>[+-]?(?:\d{1,3}(?:[,_' ]\d{3})+|\d+)(?:\.\d+)?(?:e[+-]?\d+)?|[+-]?\.\d+)"
    r"\s*(?P<unit>(?:/|per\s+|an?\s+)?[a-z%$]+)?\.?\s*", re.IGNORECASE)
_TIME = {"minutes": 1 / 1440, "hours": 1 / 24, "days": 1.0, "weeks": 7.0, "years": 365.0}
"""Time units, in days."""
_WORDS = {
    **dict.fromkeys(("min", "mins", "minute", "minutes"), "minutes"),
    **dict.fromkeys(("h", "hr", "hrs", "hour", "hours"), "hours"),
    **dict.fromkeys(("d", "day", "days"), "days"),
    **dict.fromkeys(("w", "wk", "wks", "week", "weeks"), "weeks"),
    **dict.fromkeys(("y", "yr", "yrs", "year", "years"), "years"),
    **dict.fromkeys(("usd", "$", "dollars"), "USD"),
}
_MULTIPLIERS = {"k": 1e3, "K": 1e3, "M": 1e6, "mn": 1e6, "bn": 1e9}
_DISTRIBUTION_FIELDS = {"value", "low", "high", "mode", "median", "p90", "mean"}
_AMOUNTS = {"balance", "cap", "low_water", "amount"}


def _field_unit(loc: PathT) -> tuple[str | None, str]:
    """Return the unit of the field at ``loc`` (a time unit, ``per year``, ``USD``, ...) and how to say it."""
    names = [p for p in loc if isinstance(p, str)]
    if len(names) >= 2 and names[-1] in _DISTRIBUTION_FIELDS:
        names.pop()  # a distribution's median is in its field's unit
    name = names[-1] if names else ""
    for suffix, unit in (("minutes", "minutes"), ("hours", "hours"), ("days", "days"), ("_day", "days"),
                         ("_usd", "USD")):
        if name.endswith(suffix):
            return unit, f"in {unit}"
    if name.endswith("_per_year"):
        return "per year", "a rate per year"
    if name.endswith("_per_day"):
        return "per day", "in the wallet's asset per day"
    if name in _AMOUNTS:
        return None, "in the wallet's asset"
    return None, ""


def _shown(value: float) -> str:
    """Write a converted ``value`` as a person would type it: ``48``, ``1500000``, ``0.5``, ``0.000694444``."""
    return str(int(value)) if value == int(value) else f"{value:.6g}"


def plain_number(text: str, loc: PathT, whole: bool = False) -> str | None:
    """Return how to write ``text`` (refused where a number belongs) as the plain number meant, or None.

    ``24h`` in a field in hours is ``24``, in a field in days ``1``; ``65,000`` is ``65000``; ``90%`` is
    ``0.9``; ``"5"`` (quoted) is ``5``. None: ``text`` is not a number with a unit or separators.

    Args:
        text: the refused text.
        loc: the field's path (its name gives its unit: ``_hours``, ``_days``, ``_usd``, ...).
        whole: the field takes whole numbers.
    """
    match = _NUMBER.fullmatch(text)
    if match is None:
        return None
    digits = re.sub(r"[,_' ]", "", match["number"])
    value = float(digits)
    if abs(value) >= 1e15:
        return None  # beyond what any field takes: no number to suggest
    raw_unit = match["unit"] or ("$" if match["currency"] else "")
    unit = _WORDS.get(re.sub(r"^(?:/|per\s+|an?\s+)", "", raw_unit).lower())
    field_unit, in_unit = _field_unit(loc)
    takes = f"this field takes a plain {'whole ' if whole else ''}number" + (f", {in_unit}" if in_unit else "")
    if raw_unit == "%":
        return f"write {_shown(value / 100)}: {takes}; shares and probabilities go from 0 to 1, not percentages"
    if not raw_unit:  # separators, or a number in quotes
        how = "without separators" if digits != match["number"] else "without quotes"
        return f"write {digits} {how}: {takes}"
    if raw_unit in _MULTIPLIERS:
        return f"write {_shown(value * _MULTIPLIERS[raw_unit])}: {takes}"
    if unit is not None and (unit == field_unit or f"per {unit.rstrip('s')}" == field_unit):
        return f"write {digits}: {takes}"
    if unit in _TIME and field_unit in _TIME:
        return f"write {_shown(value * _TIME[unit] / _TIME[field_unit])}: {takes}"
    return f"write {digits}, without {raw_unit!r}: {takes}"
