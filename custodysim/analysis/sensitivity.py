"""The uncertain inputs of a scenario and the tornado of the loss's sensitivity to them.

Each uncertain input is a field path (as in a variant's ``set``) with a low and a high estimate. The
scenario may list them in its ``uncertainty`` section; without one, the key probabilities and rates of
:func:`custodysim.analysis.assumptions.key_inputs` are taken over the library's plausible range where the value
is a library default, and otherwise at half and twice their value (probabilities clipped to [0, 1]): a
default spread to show which inputs matter, not an estimate of anyone's.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import BaseModel

from custodysim.analysis.assumptions import key_inputs
from custodysim.running.losses import VariantLosses
from custodysim.running.precision import mean_ci
from custodysim.scenario import library
from custodysim.scenario.schema import OutflowMonitor, Person, Scenario, Threat

SCENARIO = "scenario"
"""The ``source`` of inputs listed in the scenario's ``uncertainty`` section."""
DEFAULT = "default x0.5 / x2"
"""The ``source`` of inputs taken from the key inputs at half and twice their value."""
LIBRARY = "library range"
"""The ``source`` of inputs at a library default, taken over the library's plausible range."""
DEFAULT_NOTE = ("The scenario has no 'uncertainty' section, so each key probability and rate is taken over "
                "the library's plausible range where it is a library default (custodysim library), and "
                "otherwise at x0.5 and x2 of its value (probabilities clipped to [0, 1]): a default spread to "
                "show which inputs the loss is sensitive to, not an estimate of their uncertainty. List your "
                "own [low, high] estimates under 'uncertainty' in the scenario.")


@dataclass(frozen=True)
class UncertainInput:
    """One uncertain input: what it is, where it lives, its value and its low and high estimates.

    Attributes:
        input: what the input is, in words.
        path: its field path (``access.0.p_success``), as in a variant's ``set``.
        value: its value in the scenario (as the scenario file would write it).
        low: its low estimate.
        high: its high estimate.
        source: :data:`SCENARIO` or :data:`DEFAULT`.
    """

    input: str
    path: str
    value: Any
    low: Any
    high: Any
    source: str


def uncertain_inputs(spec: Scenario) -> list[UncertainInput]:
    """Return the scenario's uncertain inputs: its ``uncertainty`` section, or the default ones.

    Args:
        spec: the validated baseline (its ``uncertainty`` was checked at load).
    """
    if spec.uncertainty:
        data = spec.model_dump(mode="json", by_alias=True)
        labels = {dotted_path(item["where"]): item["input"] for item in key_inputs(spec)}
        return [UncertainInput(labels.get(path, path), path, value_at(data, path), low, high, SCENARIO)
                for path, (low, high) in spec.uncertainty.items()]
    return default_inputs(spec)


def default_inputs(spec: Scenario) -> list[UncertainInput]:
    """Return the key probabilities and rates at x0.5 and x2 of their value (inputs at 0 are left out).

    Probabilities are clipped to [0, 1] and rates to their field's upper bound.
    """
    data = spec.model_dump(mode="json", by_alias=True)
    out: list[UncertainInput] = []
    seen: set[str] = set()
    for item in key_inputs(spec):
        path = dotted_path(item["where"])
        if path in seen:
            continue
        value = value_at(data, path)
        prior = library_prior(spec, path)
        if prior is not None and value == prior.value:
            seen.add(path)
            out.append(UncertainInput(item["input"], path, value, prior.low, prior.high, LIBRARY))
            continue
        upper = _upper_bound(path)
        if upper is None or not isinstance(value, (int, float)) or value <= 0:
            continue  # not a probability or rate, or nothing to scale
        seen.add(path)
        out.append(UncertainInput(item["input"], path, value, value / 2, min(value * 2, upper), DEFAULT))
    return out


def library_prior(spec: Scenario, path: str) -> library.Prior | None:
    """Return the library prior behind the number at ``path``, if the library has one for it.

    That is a targeted person's exposure to a library technique, an access edge's ``p_success`` with a
    library technique, or a numeric parameter of a library measure.
    """
    parts = path.split(".")
    name, field = None, parts[-1]
    if parts[0] == "people" and len(parts) == 4 and parts[2] == "exposure":
        name, field = parts[3], "exposure"
    elif path == "controls.verification.common_mode":
        name = "verification_common_mode"
    elif parts[0] == "threats" and parts[-2:] == ["strike", "max_wait_days"]:
        name = "patient_strike"
    elif parts[0] == "threats" and len(parts) == 5 and parts[2] == "initial_access" and field == "common_mode":
        name = "lure_common_mode"
    elif parts[0] == "organisations" and parts[-2] == "notified":
        name = "organisation_notification"
    elif parts[0] == "access" and len(parts) == 3 and parts[1].isdigit() and int(parts[1]) < len(spec.access):
        name = spec.access[int(parts[1])].technique
    elif parts[:2] == ["controls", "measures"] and len(parts) == 4:
        name = parts[2]
    found = library.entry(name) if name is not None else None
    prior = found.prior(field) if found is not None else None
    return prior if prior is not None and not isinstance(prior.value, dict) else None


def _upper_bound(path: str) -> float | None:
    """Return the upper bound of a key probability or rate at ``path``, or None for other inputs."""
    parts = path.split(".")
    if parts[0] == "threats" and parts[-1] == "campaigns_per_year":
        return _field_le(Threat, "campaigns_per_year")
    if parts[0] == "people" and parts[-1] == "insider_rate_per_year":
        return _field_le(Person, "insider_rate_per_year")
    if parts[0] == "people" and len(parts) == 4 and parts[2] == "exposure":
        return 1.0
    if parts[0] == "access" and parts[-1] == "p_success":
        return 1.0
    if parts[:2] == ["controls", "outflow_monitoring"] and parts[-1] == "probability":
        return _field_le(OutflowMonitor, "probability")
    if parts[-1] in ("common_mode", "finds_probability"):
        return 1.0
    return None


def _field_le(model: type[BaseModel], name: str) -> float:
    for meta in model.model_fields[name].metadata:
        le = getattr(meta, "le", None)
        if le is not None:
            return float(le)
    return math.inf


def dotted_path(where: str) -> str:
    """Return a report path (``access[0].p_success``) as a field path (``access.0.p_success``)."""
    return re.sub(r"\[(\d+)\]", r".\1", where)


def value_at(data: Any, path: str) -> Any:
    """Return the value at a field path of a scenario's data (None where the path leads nowhere)."""
    node = data
    for part in path.split("."):
        if isinstance(node, list) and part.isascii() and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            return None
    return node


def tornado(inputs: list[UncertainInput], baseline: VariantLosses, low: list[VariantLosses],
            high: list[VariantLosses]) -> list[dict[str, Any]]:
    """Return one row per input: expected loss at its low and high estimates, sorted by swing.

    Each row has the expected loss at each end with its 95% CI, the paired difference against the
    baseline with its CI (common random numbers), and the swing ``|loss at high - loss at low|``. Ties
    keep the inputs' order.

    Args:
        inputs: the uncertain inputs.
        baseline: the baseline's rows.
        low: the rows of each input at its low estimate (same order as ``inputs``).
        high: the rows at each high estimate.
    """
    base = float(np.mean(baseline.loss))
    rows = []
    for item, lo, hi in zip(inputs, low, high, strict=True):
        row: dict[str, Any] = {"input": item.input, "path": item.path, "value": item.value, "low": item.low,
                               "high": item.high, "source": item.source, "baseline_loss_usd": base}
        for end, r in (("low", lo), ("high", hi)):
            mean, ci_low, ci_high = mean_ci(r.loss)
            diff, d_low, d_high = mean_ci(r.loss - baseline.loss)
            row[f"loss_at_{end}_usd"] = mean
            row[f"loss_at_{end}_ci95_usd"] = [ci_low, ci_high]
            row[f"diff_at_{end}_usd"] = diff
            row[f"diff_at_{end}_ci95_usd"] = [d_low, d_high]
        row["swing_usd"] = abs(row["loss_at_high_usd"] - row["loss_at_low_usd"])
        rows.append(row)
    order = sorted(range(len(rows)), key=lambda i: (-rows[i]["swing_usd"], i))
    return [rows[i] for i in order]
