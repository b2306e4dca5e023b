"""Monte Carlo runs: many trials of every variant on common random numbers, as tidy rows.

Trial ``k`` of every variant uses the same named streams, so variants differ only where their
structure differs (common random numbers), and the paired difference between two variants is far more
precise than either estimate alone.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from custodysim.campaigns import screen_trials
from custodysim.checkpoints import ChunkStore
from custodysim.engine import PATH_TYPES, TrialResult, World, simulate_trial
from custodysim.loader import LoadedScenario
from custodysim.model import CompiledScenario, compile_scenario
from custodysim.randomness import TrialRandom

Progress = Callable[[str, int], None]
"""Called with (variant, trials just finished)."""

CHUNK = 1000


@dataclass(frozen=True)
class Columns:
    """The column layout shared by every variant of a run."""

    assets: tuple[str, ...]
    wallets: tuple[str, ...]

    @property
    def numeric(self) -> list[str]:
        """Return the names of the numeric columns, in order."""
        return [
            "trial", "loss_usd", *(f"loss_{a}" for a in self.assets),
            *(f"loss_usd_{p}" for p in PATH_TYPES), *(f"loss_usd_wallet_{w}" for w in self.wallets),
            "campaigns", "footholds", "t_first_access_days", "t_first_theft_days", "t_first_alarm_days",
            "withdrawal_delay_mean_hours", "withdrawals_delayed_share", "transfers_signed",
            "transfers_delayed", "transfer_delay_hours",
        ]

    text = ("path_type", "outcome", "wallets_hit", "stopped_by", "attack_path")


@dataclass
class VariantRows:
    """All trial rows of one variant: numeric columns as arrays, text columns as lists."""

    name: str
    numbers: dict[str, np.ndarray]
    texts: dict[str, list[str]]

    @property
    def loss(self) -> np.ndarray:
        """Return the per-trial USD loss."""
        return self.numbers["loss_usd"]

    def __len__(self) -> int:
        return len(self.loss)


def columns_for(models: dict[str, CompiledScenario]) -> Columns:
    """Return the columns that cover every variant's assets and wallets."""
    assets = sorted({a for m in models.values() for a in m.assets})
    wallets = sorted({w for m in models.values() for w in m.wallets})
    return Columns(tuple(assets), tuple(wallets))


def row_of(trial: int, r: TrialResult, cols: Columns) -> tuple[list[float], list[str]]:
    """Flatten one trial's result into a numeric row and a text row (in the column order)."""
    ops = r.ops
    price_w = ops.withdrawals_usd
    numbers = [
        float(trial), r.loss_usd, *(r.loss_by_asset.get(a, 0.0) for a in cols.assets),
        *(r.loss_usd_by_path[p] for p in PATH_TYPES),
        *(r.loss_usd_by_wallet.get(w, 0.0) for w in cols.wallets),
        float(r.campaigns), float(r.footholds), _nan(r.t_first_access), _nan(r.t_first_theft),
        _nan(r.t_first_alarm),
        ops.wait_usd_days * 24 / price_w if price_w > 0 else 0.0,
        ops.delayed_withdrawals_usd / price_w if price_w > 0 else 0.0,
        float(ops.transfers_signed), float(ops.transfers_delayed), ops.transfer_delay_days * 24,
    ]
    texts = [
        r.path_type, r.outcome, ";".join(sorted(r.loss_usd_by_wallet)),
        ";".join(dict.fromkeys(r.stops)), " > ".join(r.attack_path),
    ]
    return numbers, texts


def _nan(t: float) -> float:
    return math.nan if math.isinf(t) else t


def quiet_result(model: CompiledScenario, seed: int) -> TrialResult:
    """Return the result of a trial without campaigns: operations only, identical in every such trial."""
    return World(model, TrialRandom(seed, -1), []).run()


def run_trials(model: CompiledScenario, seed: int, first: int, count: int, cols: Columns,
               quiet: TrialResult) -> tuple[np.ndarray, list[list[str]]]:
    """Simulate trials ``first .. first+count-1`` of one variant; return their rows.

    Trials in which nobody gets a foothold (most of them, at realistic rates) are found for the whole
    chunk at once (:func:`~custodysim.campaigns.screen_trials`): their rows are the quiet row with their
    campaign count. Only the others are simulated one by one.
    """
    trials = np.arange(first, first + count)
    campaigns, needed = screen_trials(model, seed, trials)
    quiet_numbers, quiet_texts = row_of(0, quiet, cols)
    numbers = np.tile(np.array(quiet_numbers), (count, 1))
    numbers[:, 0] = trials
    numbers[:, cols.numeric.index("campaigns")] = campaigns
    outcome = Columns.text.index("outcome")
    no_foothold = [*quiet_texts[:outcome], "no_foothold", *quiet_texts[outcome + 1:]]
    texts = [list(no_foothold) if k else list(quiet_texts) for k in campaigns.tolist()]
    for i in np.flatnonzero(needed).tolist():
        row, text = row_of(first + i, simulate_trial(model, seed, first + i, quiet), cols)
        numbers[i] = row
        texts[i] = text
    return numbers, texts


def chunks(trials: int, size: int = CHUNK) -> Iterator[tuple[int, int]]:
    """Yield (first trial, count) pieces covering ``trials``."""
    for first in range(0, trials, size):
        yield first, min(size, trials - first)


def run_variants(loaded: LoadedScenario, trials: int | None = None, seed: int | None = None,
                 only: list[str] | None = None, progress: Progress | None = None,
                 store: ChunkStore | None = None) -> tuple[list[VariantRows], Columns]:
    """Run every selected variant (the baseline first) and return their rows and column layout.

    Args:
        loaded: the validated scenario.
        trials: trials per variant (default: the scenario's setting).
        seed: master seed (default: the scenario's setting).
        only: variant names to run besides the baseline (default: all).
        progress: called after each chunk.
        store: where completed chunks are kept; chunks already there are read instead of simulated.
    """
    specs = loaded.specs(only)
    n = trials if trials is not None else loaded.baseline.settings.trials
    s = seed if seed is not None else loaded.baseline.settings.seed
    models = {name: compile_scenario(spec) for name, spec in specs.items()}
    cols = columns_for(models)
    out: list[VariantRows] = []
    for name, model in models.items():
        quiet = quiet_result(model, s)
        blocks: list[np.ndarray] = []
        texts: list[list[str]] = []
        width = (len(cols.numeric), len(Columns.text))
        for first, count in chunks(n):
            saved = store.load(name, first, count, width) if store is not None else None
            if saved is None:
                numbers, text = run_trials(model, s, first, count, cols, quiet)
                if store is not None:
                    store.save(name, first, numbers, text)
            else:
                numbers, text = saved
            blocks.append(numbers)
            texts += text
            if progress is not None:
                progress(name, count)
        matrix = np.vstack(blocks) if blocks else np.empty((0, len(cols.numeric)))
        out.append(VariantRows(
            name,
            {c: matrix[:, j].copy() for j, c in enumerate(cols.numeric)},
            {c: [t[j] for t in texts] for j, c in enumerate(Columns.text)},
        ))
    return out, cols
