"""Trial stories: one trial's timeline in plain language, reproducing exactly that trial of a run.

Telling a story re-simulates the trial with tracing on; tracing draws no random numbers, so the story's
loss is the loss in that trial's row of ``trials.csv``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from custodysim.formatting import amount, clip
from custodysim.running.losses import VariantLosses
from custodysim.scenario.loader import LoadedScenario
from custodysim.simulation.engine import simulate_trial
from custodysim.simulation.model import compile_scenario
from custodysim.simulation.results import TrialResult

WORST = 5
STORY_LINES = 300
"""Most lines of a story in stories.json and the reports (``custodysim trace`` tells all of it)."""
LINE_CHARS = 300
"""Most characters in a line of a story: the rest of a long name is cut."""
_TAIL = 20
"""Lines kept at the end of a story that is cut: how the trial ended."""


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
    lines = [clip(f"day {t:7.2f}  {text}", LINE_CHARS) for t, text in r.story]
    if not r.campaigns:
        lines.append("no attacker campaign arrived this year")
    native = ", ".join(f"{amount(x)} {a}" for a, x in r.loss_by_asset.items() if x > 0)
    lines.append(f"outcome: {r.outcome}; loss {native or 'none'} (USD {r.loss_usd:,.0f})")
    return Story(variant, trial, r.loss_usd, {a: x for a, x in r.loss_by_asset.items() if x > 0}, r.outcome, lines)


def worst_trials(rows: VariantLosses, k: int = WORST) -> list[int]:
    """Return the trial numbers of the ``k`` largest losses (ties by trial number), losses only."""
    order = np.argsort(-rows.loss, kind="stable")  # a trial's number is its position
    return [int(i) for i in order[:k] if rows.loss[i] > 0]


def worst_stories(loaded: LoadedScenario, rows: list[VariantLosses], seed: int, k: int = WORST) -> list[Story]:
    """Return the stories of each variant's ``k`` worst trials."""
    stories = [tell(loaded, r.name, trial, seed) for r in rows for trial in worst_trials(r, k)]
    return [replace(st, lines=bounded(st.lines)) for st in stories]


def bounded(lines: list[str]) -> list[str]:
    """Return a story's lines, at most :data:`STORY_LINES`: its beginning and its end, the middle left out."""
    if len(lines) <= STORY_LINES:
        return lines
    head = STORY_LINES - _TAIL - 1
    gap = f"... {len(lines) - head - _TAIL:,} lines left out here (custodysim trace tells the whole story) ..."
    return [*lines[:head], gap, *lines[-_TAIL:]]
