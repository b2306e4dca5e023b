"""Monte Carlo runs: many trials of every variant on common random numbers, as tidy rows.

Trial ``k`` of every variant uses the same named streams, so variants differ only where their
structure differs (common random numbers), and the paired difference between two variants is far more
precise than either estimate alone.

Trials are simulated in chunks of :data:`CHUNK`, one task per chunk (every variant of it), by an
executor (this process, local worker processes, or a Dask cluster). Every variant of a chunk in one task,
because variants with the same attack surface share their campaigns trial for trial (common random
numbers), so a task samples each trial's campaigns once and replays them in every variant. The
checkpoint store keeps each variant-chunk as the task returns it, and a resumed run simulates only the
missing ones. Chunks are submitted in trial order, so the in-order prefix (what a precision rule looks
at) grows steadily. A trial's numbers depend only on the seed, the trial number and the stream names,
and chunks are put back in trial order as they complete, so the rows (and every figure computed from
them) are the same whatever the executor and the number of workers.
"""

from __future__ import annotations

import math
import pickle
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass
from typing import Any

import numpy as np

from custodysim.errors import TrialTooCostly
from custodysim.running.checkpoints import ChunkStore
from custodysim.running.executors import Executor, InProcess
from custodysim.running.losses import LossesBuilder, VariantLosses
from custodysim.running.precision import MIN_TRIALS, PrecisionCheck, StopRule, relative_half_width
from custodysim.running.rows import LOSS_USD, Chunk, Columns, EventRow, RowsBuilder, VariantRows
from custodysim.scenario.loader import LoadedScenario
from custodysim.scenario.schema import Scenario
from custodysim.simulation.campaigns import Campaign, sample_campaigns, screen_trials
from custodysim.simulation.engine import World
from custodysim.simulation.harmless import Harmless, replay_harmless
from custodysim.simulation.keyloss import locks, may_lock
from custodysim.simulation.model import CompiledScenario, compile_scenario
from custodysim.simulation.randomness import TrialRandom
from custodysim.simulation.results import PATH_TYPES, TrialResult, outcome

__all__ = ["CHUNK", "Chunk", "ChunkJob", "Columns", "Progress", "Simulated", "VariantRows", "chunks",
           "columns_for", "pack_specs", "quiet_result", "row_of", "run_trials", "run_variants", "simulate",
           "simulate_chunk"]

Plans = dict[int, list[Campaign]]
"""Campaigns sampled for the trials of a chunk, by trial number, before any simulation changed them."""
Screen = tuple[np.ndarray, np.ndarray]
"""A chunk's campaign counts and which trials need simulating (see :func:`screen_trials`)."""
Replays = dict[int, Harmless | None]
"""Harmless replays of the trials of a chunk, by trial number (None: the trial needs the full world)."""

Progress = Callable[[str, int], None]
"""Called with (variant, trials just finished)."""

CHUNK = 1000
FINE_TAIL = 4
"""How many pieces' worth of trials at the end of a run are cut into quarter pieces (see :func:`chunks`)."""


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
        float(ops.ceremonies), float(ops.transfers_blocked), float(r.locks),
    ]
    texts = [
        r.path_type, r.outcome, ";".join(sorted(r.loss_usd_by_wallet)),
        _stops_text(r.stops), "; ".join(r.attack_path),
    ]
    return numbers, texts


def _stops_text(stops: Sequence[str]) -> str:
    """Return the ``stopped_by`` text: what stopped the campaigns, each once, in the order they did."""
    return ";".join(dict.fromkeys(stops))


def _nan(t: float) -> float:
    return math.nan if math.isinf(t) else t


def quiet_result(model: CompiledScenario, seed: int) -> TrialResult:
    """Return the result of a trial without campaigns: operations only, identical in every such trial."""
    return World(model, TrialRandom(seed, -1), []).run()


def run_trials(model: CompiledScenario, seed: int, first: int, count: int, cols: Columns,
               quiet: TrialResult, plans: Plans | None = None, screen: Screen | None = None,
               replays: Replays | None = None,
               randoms: dict[int, TrialRandom] | None = None) -> tuple[np.ndarray, list[list[str]], list[EventRow]]:
    """Simulate trials ``first .. first+count-1`` of one variant; return their rows and their loss events.

    Trials in which nobody gets a foothold (most of them, at realistic rates) are found for the whole
    chunk at once (see :func:`screen_trials`): their rows are the quiet row with their
    campaign count. Trials whose campaigns never reach a wallet are replayed without SimPy
    (:func:`~custodysim.simulation.harmless.replay_harmless`): their rows are the quiet row with the replay's figures.
    Only the others are simulated, and the trials that lose enough keys to lock a wallet (found for the
    chunk at once too: :func:`~custodysim.simulation.keyloss.may_lock`).

    Args:
        model: the variant.
        seed: the run's master seed.
        first: the chunk's first trial.
        count: how many trials.
        cols: the run's column layout.
        quiet: the variant's result with no campaign (see :func:`quiet_result`).
        plans: campaigns already sampled for these trials by a variant with the same attack surface
            (:attr:`~custodysim.simulation.model.CompiledScenario.attack_surface`); filled in as trials are sampled.
        screen: these trials' screen (see :func:`screen_trials`), if such a variant
            made it already: it reads the attack surface only.
        replays: the harmless replays of these trials (None where declined) by variants with the same
            attack surface and the same :attr:`~custodysim.simulation.model.CompiledScenario.harmless_surface`;
            filled in as trials are replayed.
        randoms: the trials' random streams, by trial number, shared with the chunk's other variants so
            that each draw is computed once; filled in as trials need them.
    """
    trials = np.arange(first, first + count)
    campaigns, needed = screen if screen is not None else screen_trials(model, seed, trials)
    quiet_numbers, quiet_texts = row_of(0, quiet, cols)
    numbers = np.tile(np.array(quiet_numbers), (count, 1))
    numbers[:, 0] = trials
    numbers[:, cols.numeric.index("campaigns")] = campaigns
    at = Columns.text.index("outcome")
    no_foothold = [*quiet_texts[:at], "no_foothold", *quiet_texts[at + 1:]]
    texts = [no_foothold if k else quiet_texts for k in campaigns.tolist()]  # shared: rows are replaced, not changed
    plans = {} if plans is None else plans
    replays = {} if replays is None else replays
    randoms = {} if randoms is None else randoms
    harmless_at: list[int] = []
    harmless_figures: list[tuple[float, float, float]] = []
    world_at: list[int] = []
    world_rows: list[list[float]] = []
    events: list[EventRow] = []
    lockable = may_lock(model, seed, trials) if model.losing_keys else None
    for i in np.flatnonzero(needed if lockable is None else needed | lockable).tolist():
        trial = first + i
        rnd = randoms.get(trial)
        if rnd is None:
            rnd = randoms[trial] = TrialRandom(seed, trial)
        locked = locks(model, rnd) if lockable is not None and lockable[i] else []
        if not locked:  # a trial that locks a wallet is simulated whatever its campaigns do
            if not needed[i]:
                continue  # it might have locked a wallet, but did not: the quiet row stands
            if trial in replays:
                harmless = replays[trial]
            else:
                harmless = replays[trial] = replay_harmless(model, rnd, _sampled(model, rnd, plans))
            if harmless is not None:
                harmless_at.append(i)
                harmless_figures.append((harmless.footholds, _nan(harmless.first_access),
                                         _nan(harmless.first_alarm)))
                texts[i] = _harmless_texts(harmless, quiet_texts)
                continue
        fresh = [c.fresh(model.node_org) for c in _sampled(model, rnd, plans)]  # the world changes its campaigns
        result = World(model, rnd, fresh, locks=locked).run()
        row, texts[i] = row_of(trial, result, cols)
        world_at.append(i)
        world_rows.append(row)
        events += [(trial, e.event, e.peril, e.day, e.loss_usd, e.path, e.wallet) for e in result.events]
    if harmless_at:  # rows are filled in at once: numpy is slow one element at a time
        columns = [cols.numeric.index(c) for c in ("footholds", "t_first_access_days", "t_first_alarm_days")]
        numbers[np.ix_(harmless_at, columns)] = harmless_figures
    if world_at:
        numbers[world_at] = world_rows
    return numbers, texts, events


def _harmless_texts(harmless: Harmless, quiet_texts: list[str]) -> list[str]:
    """Return the text row of a harmless trial (see :func:`row_of`) in a variant whose quiet row is ``quiet_texts``."""
    path_type, _, wallets, _, path = quiet_texts  # no loss: no path type, wallet or attack path
    return [path_type, outcome(0.0, harmless.stops, harmless.footholds, harmless.campaigns), wallets,
            _stops_text(harmless.stops), path]


def _sampled(model: CompiledScenario, rnd: TrialRandom, plans: Plans) -> list[Campaign]:
    """Return the trial's campaigns as sampled (do not change them): from ``plans``, or sampled and kept there."""
    kept = plans.get(rnd.trial)
    if kept is None:
        kept = plans[rnd.trial] = sample_campaigns(model, rnd)
    return kept


def chunks(trials: int, size: int = CHUNK) -> Iterator[tuple[int, int]]:
    """Yield (first trial, count) pieces covering ``trials``: pieces of ``size``, the last few finer.

    The last :data:`FINE_TAIL` pieces' worth of trials come in quarter pieces, so that the workers of a
    parallel run run out of work at nearly the same time (whoever takes the last whole piece would
    otherwise keep the others waiting for most of one). The pieces depend on ``trials`` only, and a
    trial's numbers not even on that.
    """
    coarse = max(0, trials - FINE_TAIL * size) // size * size
    fine = max(1, size // 4)
    for first in range(0, coarse, size):
        yield first, size
    for first in range(coarse, trials, fine):
        yield first, min(fine, trials - first)


@dataclass(frozen=True)
class ChunkJob:
    """One task: trials ``first .. first+count-1`` of some variants, with all a worker needs to run them.

    It carries the run's validated specs (a few kilobytes a variant), not their compiled models: a worker
    compiles each variant once and keeps it (see :func:`simulate_chunk`). The specs travel pickled once
    for the whole run (:func:`pack_specs`), and a worker unpacks them only for a variant it has not
    compiled yet, so that later tasks cost neither side a pickling.
    """

    variants: tuple[str, ...]
    """The variants to simulate (those the checkpoint store does not have yet)."""
    specs: bytes
    """Every variant's spec, by name, as :func:`pack_specs` packed them."""
    scenario_sha256: str
    seed: int
    first: int
    count: int
    columns: Columns
    index: int
    """The chunk's position in the run (0, 1, ...)."""

    def __str__(self) -> str:
        """Say which trials of which variants the job holds (``trials 3000-3999 of variant vault``), for messages."""
        names = ", ".join(self.variants[:3]) + (f" and {len(self.variants) - 3} more" if len(self.variants) > 3 else "")
        return f"trials {self.first}-{self.first + self.count - 1} of variant{'s' * (len(self.variants) > 1)} {names}"


_COMPILED: dict[tuple[str, str, int], tuple[CompiledScenario, TrialResult]] = {}
"""This process's compiled variants and their quiet trials, so a worker compiles each variant once.

A cache, not state: an entry is a pure function of its key (scenario hash, variant, seed)."""
_COMPILED_MAX = 32


def compiled_variant(scenario_sha256: str, variant: str, seed: int,
                     spec: Scenario | bytes) -> tuple[CompiledScenario, TrialResult]:
    """Return the variant's compiled model and quiet trial, compiled once per process.

    ``spec`` is the variant's spec, or the run's specs as :func:`pack_specs` packed them: they are then
    unpacked only if this process has not compiled the variant yet.
    """
    key = (scenario_sha256, variant, seed)
    compiled = _COMPILED.get(key)
    if compiled is None:
        scenario: Scenario = pickle.loads(spec)[variant] if isinstance(spec, bytes) else spec  # our own bytes
        model = compile_scenario(scenario)
        compiled = (model, quiet_result(model, seed))
        if len(_COMPILED) >= _COMPILED_MAX:
            del _COMPILED[next(iter(_COMPILED))]
        _COMPILED[key] = compiled
    return compiled


def pack_specs(specs: dict[str, Scenario]) -> bytes:
    """Return the variants' specs, by name, packed for :class:`ChunkJob` (once per run)."""
    return pickle.dumps(specs, protocol=pickle.HIGHEST_PROTOCOL)


def simulate_chunk(job: ChunkJob) -> dict[str, Chunk]:
    """Simulate one chunk of the job's variants (in whatever process runs it) and return their rows."""
    # Variants with the same attack surface share the chunk's screen and sampled campaigns, and those
    # that also share a harmless surface share the harmless replays.
    shared: dict[object, tuple[Screen, Plans, dict[object, Replays]]] = {}
    randoms: dict[int, TrialRandom] = {}  # every variant draws the same numbers at the same addresses
    out: dict[str, Chunk] = {}
    for variant in job.variants:
        model, quiet = compiled_variant(job.scenario_sha256, variant, job.seed, job.specs)
        try:
            if model.attack_surface not in shared:
                trials = np.arange(job.first, job.first + job.count)
                shared[model.attack_surface] = (screen_trials(model, job.seed, trials), {}, {})
            screen, plans, replays = shared[model.attack_surface]
            numbers, texts, events = run_trials(model, job.seed, job.first, job.count, job.columns, quiet, plans,
                                                screen, replays.setdefault(model.harmless_surface, {}), randoms)
        except TrialTooCostly as exc:
            raise TrialTooCostly(exc.trial, exc.cause, variant) from None
        out[variant] = Chunk.from_texts(numbers, texts, events)
    return out


@dataclass(frozen=True)
class Simulated:
    """A finished simulation: every variant's losses (and rows, if kept) and how many trials it took.

    Attributes:
        losses: one :class:`~custodysim.running.losses.VariantLosses` per variant, the baseline first:
            what the figures need.
        rows: one :class:`VariantRows` per variant, the baseline first, if they were kept (else empty).
        columns: their column layout.
        trials: trials per variant.
        pieces: the chunks (first trial, count) the trials were simulated in, in order.
        precision: with a :class:`StopRule`, its target, the relative CI half-width achieved per
            variant, and what stopped the run (``precision`` or ``max_trials``); otherwise None.
    """

    losses: list[VariantLosses]
    rows: list[VariantRows]
    columns: Columns
    trials: int
    pieces: list[tuple[int, int]]
    precision: dict[str, Any] | None = None


def simulate(loaded: LoadedScenario, trials: int | None = None, seed: int | None = None,
             only: list[str] | None = None, progress: Progress | None = None, store: ChunkStore | None = None,
             executor: Executor | None = None, stop: StopRule | None = None, keep_rows: bool = True) -> Simulated:
    """Simulate every selected variant (the baseline first), chunk by chunk, and return their losses and rows.

    Chunks are taken in trial order into each variant's losses (what the figures need), and into its
    rows only with ``keep_rows``: a run that writes its rows from the checkpoint ``store`` instead holds
    no row in memory, so its memory does not grow with the rows' many columns.

    Args:
        loaded: the validated scenario.
        trials: trials per variant (default: the scenario's setting); ignored with ``stop``.
        seed: master seed (default: the scenario's setting).
        only: variant names to run besides the baseline (default: all).
        progress: called with (variant, trials) as each chunk completes (in completion order).
        store: where completed chunks are kept; chunks already there are read instead of simulated.
        executor: where chunks are simulated (default: in this process).
        stop: run until this precision is reached (checked after every chunk, in trial order) instead
            of a fixed number of trials.
        keep_rows: hold every variant's rows in memory (:attr:`Simulated.rows`).
    """
    specs = loaded.specs(only)
    s = seed if seed is not None else loaded.baseline.settings.seed
    names = list(specs)
    # Compiled here once: worker processes forked from this one inherit the models (and the quiet trials).
    cols = columns_for({name: compiled_variant(loaded.sha256, name, s, spec)[0] for name, spec in specs.items()})
    planned = stop.max_trials if stop is not None else (trials if trials is not None
                                                        else loaded.baseline.settings.trials)
    pieces = list(chunks(planned))
    room = planned if stop is None else min(planned, 16 * CHUNK)  # grown as needed
    builders = {name: LossesBuilder(name, cols, room) for name in names}
    kept = {name: RowsBuilder(name, cols, room) for name in names} if keep_rows else {}
    check = PrecisionCheck(stop, names) if stop is not None else None
    done: dict[tuple[int, str], Chunk] = {}

    packed = pack_specs(specs)

    def jobs() -> Iterator[ChunkJob]:
        for k, (first, count) in enumerate(pieces):
            missing: list[str] = []
            for name in names:
                saved = store.load(name, first, count, cols.widths) if store is not None else None
                if saved is None:
                    missing.append(name)
                    continue
                done[(k, name)] = saved
                if progress is not None:
                    progress(name, count)
            if missing:
                yield ChunkJob(tuple(missing), packed, loaded.sha256, s, first, count, cols, k)

    state = _Assembly(pieces, names, builders, kept, check)
    with closing((executor or InProcess()).map_unordered(simulate_chunk, jobs())) as results:
        for job, simulated in results:
            for name, chunk in simulated.items():
                if store is not None:
                    store.save(name, job.first, chunk)
                done[(job.index, name)] = chunk
                if progress is not None:
                    progress(name, job.count)
            if state.advance(done):
                break
        else:
            state.advance(done)  # chunks read from the store after the last one simulated
    precision = None
    if stop is not None:
        precision = {"target": stop.target, "max_trials": stop.max_trials,
                     "achieved": state.achieved or {}, "stopped_by": state.stopped_by}
    return Simulated([builders[name].finish() for name in names], [kept[name].finish() for name in kept], cols,
                     state.trials, pieces[:state.next], precision)


class _Assembly:
    """Puts completed chunks into the variants' losses (and rows) in trial order and applies the stopping rule."""

    def __init__(self, pieces: list[tuple[int, int]], names: list[str], builders: dict[str, LossesBuilder],
                 kept: dict[str, RowsBuilder], check: PrecisionCheck | None) -> None:
        self.pieces, self.names, self.builders, self.kept, self.check = pieces, names, builders, kept, check
        self.next = 0
        self.trials = 0
        self.achieved: dict[str, float] | None = None
        self.stopped_by = "max_trials"

    def advance(self, done: dict[tuple[int, str], Chunk]) -> bool:
        """Take in every chunk that continues the trials in order; return True once the run may stop."""
        while self.next < len(self.pieces) and all((self.next, n) in done for n in self.names):
            for name in self.names:
                chunk = done.pop((self.next, name))
                self.builders[name].add(chunk)
                if self.kept:
                    self.kept[name].add(chunk)
                if self.check is not None:
                    self.check.add(name, chunk.numbers[:, LOSS_USD])
            self.trials += self.pieces[self.next][1]
            self.next += 1
            if self.check is None:
                continue
            last = self.next == len(self.pieces)
            if self.trials >= MIN_TRIALS or last:
                achieved = self.check.met({n: b.loss() for n, b in self.builders.items()})
                if achieved is not None:
                    self.achieved, self.stopped_by = achieved, "precision"
                    return True
                if last:
                    self.achieved = {n: relative_half_width(b.loss()) for n, b in self.builders.items()}
                    return True
        return self.next == len(self.pieces)


def run_variants(loaded: LoadedScenario, trials: int | None = None, seed: int | None = None,
                 only: list[str] | None = None, progress: Progress | None = None,
                 store: ChunkStore | None = None,
                 executor: Executor | None = None) -> tuple[list[VariantRows], Columns]:
    """Run every selected variant (the baseline first) and return their rows and column layout.

    See :func:`simulate`, which also says how many trials a run took.
    """
    result = simulate(loaded, trials, seed, only, progress, store, executor)
    return result.rows, result.columns
