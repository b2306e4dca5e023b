"""The unit of a scenario field, read from its path: what a sweep's axis or a chart's axis title says.

A field's name says its unit (``freeze_delay_hours``, ``annual_cost_usd``, ``campaigns_per_year``), or its
kind does (a ``probability``, a ``threshold`` of keys, a wallet's ``balance`` in the wallet's asset). A
field inside a distribution (``controls.response.freeze_delay_hours.median``) has the unit of the field
the distribution is for, so the path is read from its last part back to the first part that says one.
"""

from __future__ import annotations

import re

from custodysim.scenario.schema import Scenario

SHARE = "0 to 1"
"""The unit of a probability or a share."""

_BY_NAME: dict[str, str] = {
    "threshold": "keys", "skill": SHARE, "factor": "x the value", "parts": "wallets",
    "max_campaigns_per_threat": "campaigns", "first_day": "day of the horizon", "trials": "trials",
    "seed": "seed", "exposure": SHARE, "p_success": SHARE, "probability": SHARE, "common_mode": SHARE,
    "covered_share": SHARE, "recovered_fraction": SHARE,
}
"""Units of fields whose name does not end in one."""
_BY_SUFFIX: tuple[tuple[str, str], ...] = (
    ("_usd", "USD"), ("_hours", "hours"), ("hours", "hours"), ("_minutes", "minutes"), ("_days", "days"),
    ("per_year", "per year"), ("_probability", SHARE),
)
"""Units of fields by how their name ends (the first match wins)."""
_IN_ASSET = {"balance", "cap", "low_water", "amount", "per_transfer_limit", "daily_limit"}
"""Fields that hold an amount of the wallet's asset."""
_IN_ASSET_PER_DAY = {"withdrawals_per_day", "deposits_per_day"}


def field_unit(path: str, spec: Scenario | None = None) -> str | None:
    """Return the unit of the field at ``path`` (``hours``, ``USD``, ``BTC``, ``0 to 1``), or None if unknown.

    Args:
        path: a dotted field path, as in a variant's ``set`` (``wallets.hot.topup.cap``).
        spec: the scenario, to name the asset of a wallet's amounts (without it: ``asset units``).
    """
    parts = path.split(".")
    for name in reversed(parts):
        if re.fullmatch(r"\d+", name):
            continue
        if name in _IN_ASSET:
            return _asset(parts, spec)
        if name in _IN_ASSET_PER_DAY:
            return f"{_asset(parts, spec)} per day"
        if name in _BY_NAME:
            return _BY_NAME[name]
        for suffix, unit in _BY_SUFFIX:
            if name.endswith(suffix):
                return unit
    return None


def _asset(parts: list[str], spec: Scenario | None) -> str:
    """Return the asset of the wallet a path leads into (a wallet's field, or a scheduled transfer's amount)."""
    wallet = None
    if len(parts) > 1 and parts[0] == "wallets":
        wallet = parts[1]
    elif spec is not None and len(parts) > 2 and parts[:2] == ["operations", "transfers"] and parts[2].isdigit():
        transfers = spec.operations.transfers
        wallet = transfers[int(parts[2])].from_wallet if int(parts[2]) < len(transfers) else None
    if spec is not None and wallet is not None and wallet in spec.wallets:
        return spec.wallets[wallet].asset
    return "asset units"


def with_unit(label: str, unit: str | None) -> str:
    """Return an axis title: ``label (unit)``, or the label alone when the unit is unknown."""
    return f"{label} ({unit})" if unit else label
