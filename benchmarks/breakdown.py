"""Where a run's time goes: for each variant, how many trials take each path, and what the worlds cost.

Usage::

    python benchmarks/breakdown.py scenarios/dmm-2024.yaml                 # 20,000 trials, 3 repeats
    python benchmarks/breakdown.py scenarios/dmm-2024.yaml --modules       # ... and the worlds' time by module

A trial takes one of three paths (see docs/model.md, "How a run avoids work"): nobody falls for the
campaigns (the screen finds it, a chunk at a time), the campaigns never reach a wallet (a replay without
SimPy), or a SimPy world. This prints, per variant, how many trials take each path and what a world
costs, and the worlds' share of the whole simulation, all in this one process:

* ``simulate s``: the median wall time of :func:`custodysim.running.runner.simulate` in this process, every
  variant, after a first warm-up call (models compiled and quiet years reckoned once, as a worker would);
* ``worlds s``: the median over repeats of running just the world trials of each variant again, with
  the same seed; as in a run, a trial's random draws are shared by the variants, and campaigns are
  sampled and replayed first (untimed). Time outside the worlds (screening, sampling, replays, rows) is
  the difference.

``--modules`` runs the worlds once more under cProfile and adds up their own time (excluding calls to
other functions) by module: custodysim's modules, SimPy, and built-in functions. cProfile charges every
call a fixed overhead, so modules of many short calls look costlier than they are: read it for where
the time is spread, not as exact shares.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from custodysim.errors import ScenarioError
from custodysim.running.runner import simulate
from custodysim.scenario.loader import LoadedScenario, load_scenario
from custodysim.simulation.campaigns import sample_campaigns, screen_trials
from custodysim.simulation.engine import World, replay_harmless
from custodysim.simulation.model import CompiledScenario, compile_scenario
from custodysim.simulation.randomness import TrialRandom


@dataclass
class Paths:
    """How the trials of one variant are answered."""

    screened: int  # nobody fell for any campaign: the quiet row
    replayed: int  # the campaigns never reached a wallet (or there were none): no SimPy
    worlds: list[int]  # the trials that need a SimPy world


def classify(models: dict[str, CompiledScenario], trials: int, seed: int) -> dict[str, Paths]:
    """Return, per variant, which path each of trials 0 .. trials-1 takes."""
    out: dict[str, Paths] = {}
    for name, model in models.items():
        _, needed = screen_trials(model, seed, np.arange(trials))
        worlds = []
        for trial in np.flatnonzero(needed).tolist():
            rnd = TrialRandom(seed, trial)
            campaigns = sample_campaigns(model, rnd)
            if campaigns and replay_harmless(model, rnd, campaigns) is None:
                worlds.append(trial)
        out[name] = Paths(trials - int(needed.sum()), int(needed.sum()) - len(worlds), worlds)
    return out


def run_worlds(models: dict[str, CompiledScenario], paths: dict[str, Paths], seed: int) -> dict[str, float]:
    """Run every variant's world trials once; return the seconds each variant's worlds took.

    As in a run, a trial's random streams are shared by the variants, and each variant samples its
    campaigns and tries the replay before its world (untimed), so the world finds the draws they made.
    """
    randoms: dict[int, TrialRandom] = {}
    took: dict[str, float] = {}
    for name, model in models.items():
        todo = []
        for trial in paths[name].worlds:
            rnd = randoms.setdefault(trial, TrialRandom(seed, trial))
            campaigns = sample_campaigns(model, rnd)
            replay_harmless(model, rnd, campaigns)
            todo.append((rnd, campaigns))
        started = time.perf_counter()
        for rnd, campaigns in todo:
            World(model, rnd, campaigns).run()
        took[name] = time.perf_counter() - started
    return took


def by_module(stats: pstats.Stats) -> Counter[str]:
    """Return cProfile's own time per module (custodysim.x, simpy, builtins, other)."""
    seconds: Counter[str] = Counter()
    for (path, _line, _fn), (_cc, _nc, own, _cum, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        if path == "~":
            module = "built-in functions"
        elif "/simpy/" in path:
            module = "simpy"
        elif "/custodysim/" in path:
            inside = Path(path.rsplit("/custodysim/", 1)[1]).with_suffix("")
            module = "custodysim." + ".".join(inside.parts)
        else:
            module = "other"
        seconds[module] += own
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("scenario", type=Path)
    parser.add_argument("--trials", type=int, default=20_000, help="trials per variant (default 20,000)")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats, medians quoted (default 3)")
    parser.add_argument("--modules", action="store_true", help="also the worlds' own time by module (cProfile)")
    args = parser.parse_args(argv)
    if args.trials < 1 or args.repeats < 1:
        parser.error("--trials and --repeats must be 1 or more")

    try:
        loaded: LoadedScenario = load_scenario(args.scenario)
    except ScenarioError as exc:
        parser.exit(1, f"{exc}\n")
    seed = loaded.baseline.settings.seed
    simulate(loaded, trials=min(args.trials, 1000), seed=seed)  # warm-up: compile, quiet years
    sim_s = statistics.median(_timed(lambda: simulate(loaded, trials=args.trials, seed=seed))
                              for _ in range(args.repeats))
    models = {name: compile_scenario(spec) for name, spec in loaded.specs().items()}
    classified = classify(models, args.trials, seed)
    runs = [run_worlds(models, classified, seed) for _ in range(args.repeats)]
    world_s = {name: statistics.median(r[name] for r in runs) for name in classified}

    print(f"{args.scenario.name}: {args.trials:,} trials per variant, seed {seed}, medians of {args.repeats}")
    print(f"{'variant':28s} {'screened':>9s} {'replayed':>9s} {'worlds':>7s} {'us/world':>9s} {'worlds s':>9s}")
    for name, v in classified.items():
        per = world_s[name] / len(v.worlds) * 1e6 if v.worlds else 0.0
        print(f"{name:28s} {v.screened:9,d} {v.replayed:9,d} {len(v.worlds):7,d} {per:9.1f} {world_s[name]:9.2f}")
    total_worlds = sum(world_s.values())
    variants_trials = args.trials * len(classified)
    print(f"simulate: {sim_s:.2f} s ({variants_trials / sim_s:,.0f} trial-variants/s); "
          f"worlds: {total_worlds:.2f} s ({total_worlds / sim_s:.0%} of it) for "
          f"{sum(len(v.worlds) for v in classified.values()):,} of {variants_trials:,} trial-variants")

    if args.modules:
        profiler = cProfile.Profile()
        profiler.runcall(run_worlds, models, classified, seed)
        seconds = by_module(pstats.Stats(profiler))
        total = sum(seconds.values())
        print("\nworlds' own time by module (cProfile; its per-call overhead inflates many-call modules):")
        for module, s in seconds.most_common():
            if s / total >= 0.005:
                print(f"  {s / total:6.1%}  {module}")
    return 0


def _timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


if __name__ == "__main__":
    sys.exit(main())
