"""Trial stories: one trial's timeline in plain language, reproducing exactly that trial of a run.

Telling a story re-simulates the trial with tracing on; tracing draws no random numbers, so the story's
loss is the loss in that trial's row of ``trials.csv``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from custodysim.formatting import amount
from custodysim.running.rows import VariantRows
from custodysim.scenario.loader import LoadedScenario
from custodysim.simulation.engine import simulate_trial
from custodysim.simulation.model import compile_scenario
from custodysim.simulation.results import TrialResult

WORST = 5


@dataclass(frozen=True)
class Story:
    """One trial's timeline and outcome."""

    variant: str
    trial: int
    loss_usd: float
    loss_by_asset: dict[str, float]
    outcome: str
    lines: list[str]

    def as_dict(self) -> dict[str, object]:
        """Return the story as JSON-ready data."""
        return {"variant": self.variant, "trial": self.trial, "loss_usd": self.loss_usd,
                "loss_by_asset": self.loss_by_asset, "outcome": self.outcome, "lines": self.lines}


def tell(loaded: LoadedScenario, variant: str, trial: int, seed: int) -> Story:
    """Re-simulate trial ``trial`` of ``variant`` and return its story."""
    spec = loaded.specs([variant])[variant]
    result = simulate_trial(compile_scenario(spec), seed, trial, tell=True)
    return _story(variant, trial, result)


def _story(variant: str, trial: int, r: TrialResult) -> Story:
    lines = [f"day {t:7.2f}  {text}" for t, text in r.story]
    if not r.campaigns:
        lines.append("no attacker campaign arrived this year")
    native = ", ".join(f"{amount(x)} {a}" for a, x in r.loss_by_asset.items() if x > 0)
    lines.append(f"outcome: {r.outcome}; loss {native or 'none'} (USD {r.loss_usd:,.0f})")
    return Story(variant, trial, r.loss_usd, {a: x for a, x in r.loss_by_asset.items() if x > 0}, r.outcome, lines)


def worst_trials(rows: VariantRows, k: int = WORST) -> list[int]:
    """Return the trial numbers of the ``k`` largest losses (ties by trial number), losses only."""
    order = np.lexsort((rows.numbers["trial"], -rows.loss))
    return [int(rows.numbers["trial"][i]) for i in order[:k] if rows.loss[i] > 0]


def worst_stories(loaded: LoadedScenario, rows: list[VariantRows], seed: int, k: int = WORST) -> list[Story]:
    """Return the stories of each variant's ``k`` worst trials."""
    return [tell(loaded, r.name, trial, seed) for r in rows for trial in worst_trials(r, k)]
