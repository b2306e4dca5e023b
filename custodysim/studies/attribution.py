"""What each control is worth: the loss it avoids alone and in the full set, and the tornado of inputs.

The *controls* are the scenario's variants (each one change an architect considers), or the ones named.
One simulation on common random numbers runs every combination needed:
- the baseline, and each control alone (its own overrides): the loss a control avoids **alone** is
  ``baseline - alone``;
- the **full set** (every chosen control's overrides together) and the full set without each control:
  a control's **marginal worth** in the full set is ``full without it - full``;
- each uncertain input at its low and at its high estimate (:mod:`custodysim.analysis.sensitivity`).

Both worths carry paired 95% CIs (trial by trial, on the same random streams). They differ when
controls overlap: two controls that stop the same theft are each worth much alone and little on top of
the other, and the worths alone then add up to more than the full set avoids. Combinations are simulated
once each (with one or two controls some coincide).

Each worth comes with what the control costs a year at that step (the control costs of docs/costs.md: the
combination with it minus the combination without it, its own ``annual_cost_usd`` included) and the **net
benefit**: the worth, annualised, minus that cost; the cost is stated, not sampled, so the net benefit's CI
is the worth's shifted by it.
"""

from __future__ import annotations

import difflib
import json
import math
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from custodysim.analysis.economics import annualised, control_costs
from custodysim.analysis.sensitivity import DEFAULT, DEFAULT_NOTE, LIBRARY, UncertainInput, tornado, uncertain_inputs
from custodysim.errors import OptionError, Problem, ScenarioError
from custodysim.reporting.report import render_attribution_html, render_attribution_markdown
from custodysim.running.executors import Executor, open_executor
from custodysim.running.losses import VariantLosses
from custodysim.running.outputs import default_run_dir, staged_folder, write_json, write_rows
from custodysim.running.precision import mean_ci
from custodysim.running.rows import check_size
from custodysim.running.runner import Progress, Simulated, simulate
from custodysim.scenario.loader import LoadedScenario, derive, load_scenario
from custodysim.studies.provenance import SCENARIO_COPY, Command, as_typed, build_manifest, provenance, write_manifest


@dataclass(frozen=True)
class AttributionPlan:
    """The simulations an attribution needs, as variants derived from the scenario.

    Attributes:
        loaded: the scenario with one derived variant per distinct combination (and tornado end).
        controls: the controls, in the scenario's order.
        alone: each control's variant with that control only.
        full: the variant with every control (the baseline's name when there are none).
        without: each control's variant with every other control.
        inputs: the uncertain inputs of the tornado.
        low: the variant of each input at its low estimate (same order as ``inputs``).
        high: the variant of each input at its high estimate.
        described: what each variant is, in words.
    """

    loaded: LoadedScenario
    controls: list[str]
    alone: dict[str, str]
    full: str
    without: dict[str, str]
    inputs: list[UncertainInput]
    low: list[str]
    high: list[str]
    described: dict[str, str]


def choose_controls(loaded: LoadedScenario, names: list[str] | None) -> list[str]:
    """Return the controls to attribute: the named variants (in the scenario's order), or all of them.

    Raises:
        OptionError: no variant to attribute, a name that is no variant, or a name given twice.
    """
    known = list(loaded.variants)
    if not known:
        raise OptionError(f"{loaded.source}: attribution needs at least one control, and the scenario has no "
                          "variants; describe each control you consider as a variant")
    if not names:
        return known
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise OptionError(f"--controls names {', '.join(map(repr, repeated))} more than once")
    unknown = [n for n in names if n not in known]
    if unknown:
        close = difflib.get_close_matches(unknown[0], known, n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise OptionError(f"--controls: no variant named {', '.join(map(repr, unknown))}{hint} in {loaded.source}; "
                          f"variants: {', '.join(known)}")
    return [n for n in known if n in names]


def check_overlaps(loaded: LoadedScenario, controls: list[str]) -> None:
    """Refuse controls that set the same field, or one a field inside the other's: they cannot be combined.

    Raises:
        ScenarioError: one problem per overlap, at the later control's ``set`` entry, naming both.
    """
    problems = []
    sets = {c: loaded.baseline.variants[c].set for c in controls}
    for i, a in enumerate(controls):
        for b in controls[i + 1:]:
            for path_a in sets[a]:
                for path_b in sets[b]:
                    pa, pb = path_a.split("."), path_b.split(".")
                    if pa[:len(pb)] == pb or pb[:len(pa)] == pa:
                        problems.append(Problem(
                            ("variants", b, "set", path_b),
                            f"controls {a!r} and {b!r} overlap: {a!r} sets {path_a!r} and {b!r} sets {path_b!r}, "
                            "so they cannot be combined into the full set; choose controls that change different "
                            "fields (--controls)"))
    if problems:
        raise ScenarioError(loaded.source, problems)


def plan_attribution(loaded: LoadedScenario, controls: list[str] | None = None) -> AttributionPlan:
    """Return the variants to simulate for the attribution of ``controls`` (default: every variant).

    Raises:
        OptionError: as :func:`choose_controls`.
        ScenarioError: controls that overlap, or whose combination does not validate.
    """
    chosen = choose_controls(loaded, controls)
    check_overlaps(loaded, chosen)
    baseline = loaded.baseline.baseline_name
    runs: dict[str, dict[str, Any]] = {}
    by_key: dict[str, str] = {}
    described: dict[str, str] = {baseline: "baseline"}

    def add(name: str, overrides: dict[str, Any], what: str) -> str:
        if not overrides:
            return baseline
        key = json.dumps(overrides, sort_keys=True, default=str)
        if key not in by_key:
            by_key[key] = name
            runs[name] = overrides
            described[name] = what
        return by_key[key]

    def combination(members: list[str]) -> str:
        overrides = {path: value for c in members for path, value in loaded.baseline.variants[c].set.items()}
        what = "with " + ", ".join(members) if members else "baseline"
        return add("+".join(members), overrides, what)

    alone = {c: combination([c]) for c in chosen}
    full = combination(chosen)
    without = {c: combination([o for o in chosen if o != c]) for c in chosen}
    inputs = uncertain_inputs(loaded.baseline)
    low = [add(f"low:{x.path}", {x.path: x.low}, f"{x.path} at its low estimate") for x in inputs]
    high = [add(f"high:{x.path}", {x.path: x.high}, f"{x.path} at its high estimate") for x in inputs]
    try:
        derived = derive(loaded, runs)
    except ScenarioError as exc:
        raise ScenarioError(exc.source, [_combined(p, described) for p in exc.problems]) from None
    return AttributionPlan(derived, chosen, alone, full, without, inputs, low, high, described)


def _combined(problem: Problem, described: dict[str, str]) -> Problem:
    """Restate a derived variant's problem as one of the combination of controls it stands for."""
    name = str(problem.path[1]) if len(problem.path) > 1 else ""
    rest = problem.path[3:]
    what = described.get(name, name)
    return Problem(rest, f"the scenario {what} does not validate: {problem.message}")


def attribute(loaded: LoadedScenario, controls: list[str] | None = None, trials: int | None = None,
              seed: int | None = None, executor: Executor | None = None,
              progress: Progress | None = None) -> dict[str, Any]:
    """Simulate the attribution of ``controls`` and return its figures (summary.json's content).

    Args:
        loaded: the validated scenario.
        controls: the variants to treat as controls (default: all of them).
        trials: trials per combination (default: the scenario's setting).
        seed: the master seed (default: the scenario's setting).
        executor: where the chunks of trials run (default: this process).
        progress: called with (variant, trials) as chunks complete.

    Raises:
        OptionError, ScenarioError: as :func:`plan_attribution`.
    """
    plan = plan_attribution(loaded, controls)
    s = seed if seed is not None else loaded.baseline.settings.seed
    result = simulate(plan.loaded, trials, s, None, progress, None, executor, keep_rows=False)
    return summarise_attribution(plan, result, s)


def summarise_attribution(plan: AttributionPlan, result: Simulated, seed: int) -> dict[str, Any]:
    """Return the attribution's figures from the simulated rows of every variant of ``plan``."""
    rows = {r.name: r for r in result.losses}
    loaded = plan.loaded
    baseline = loaded.baseline.baseline_name
    base, full = rows[baseline], rows[plan.full]
    descriptions = {c: loaded.baseline.variants[c].description.strip() for c in plan.controls}
    controls: list[dict[str, Any]] = []
    for c in plan.controls:
        alone, without = rows[plan.alone[c]], rows[plan.without[c]]
        controls.append({
            "control": c,
            "description": descriptions[c],
            "sets": sorted(loaded.baseline.variants[c].set),
            "alone": _avoided(base, alone),
            "in_full_set": _avoided(without, full),
        })
    costs = _annual_costs(plan)
    horizon = loaded.baseline.settings.horizon_days
    for entry in controls:
        name = entry["control"]
        others = tuple(o for o in plan.controls if o != name)
        _net(entry["alone"], costs[plan.alone[name], (name,)] - costs[baseline, ()], horizon)
        _net(entry["in_full_set"], costs[plan.full, tuple(plan.controls)] - costs[plan.without[name], others],
             horizon)
    full_avoided = _net(_avoided(base, full), costs[plan.full, tuple(plan.controls)] - costs[baseline, ()], horizon)
    full_loss = _loss(full)
    inputs = plan.inputs
    return {
        "scenario": loaded.name,
        "baseline": baseline,
        "trials": result.trials,
        "seed": seed,
        "horizon_days": loaded.baseline.settings.horizon_days,
        "units": "USD per horizon (the first year of exposure when horizon_days is 365)",
        "baseline_loss": _loss(base),
        "full_set": {"controls": plan.controls, "loss": full_loss, "avoided": full_avoided},
        "controls": controls,
        "sum_alone_usd": sum(c["alone"]["avoided_usd"] for c in controls),
        "sum_in_full_set_usd": sum(c["in_full_set"]["avoided_usd"] for c in controls),
        "tornado": tornado(inputs, base, [rows[n] for n in plan.low], [rows[n] for n in plan.high]),
        "tornado_note": DEFAULT_NOTE if any(x.source in (DEFAULT, LIBRARY) for x in inputs) else "",
        "runs": {name: {"what": plan.described[name], **_loss(r)} for name, r in rows.items()},
    }


def _annual_costs(plan: AttributionPlan) -> dict[tuple[str, tuple[str, ...]], float]:
    """Return the yearly control cost of each combination an attribution compares, by (variant, controls in it).

    A combination costs what the controls present in its resolved spec state (:func:`control_costs`) plus the
    own ``annual_cost_usd`` of each control (variant) in it: a structural change states its cost there.
    """
    loaded = plan.loaded
    specs = loaded.specs()
    own = {c: loaded.baseline.variants[c].annual_cost_usd for c in plan.controls}
    combinations = [(loaded.baseline.baseline_name, ()), (plan.full, tuple(plan.controls))]
    for c in plan.controls:
        combinations += [(plan.alone[c], (c,)), (plan.without[c], tuple(o for o in plan.controls if o != c))]
    return {(name, members): math.fsum([*control_costs(specs[name]).values(), *(own[m] for m in members)])
            for name, members in combinations}


def _net(worth: dict[str, Any], cost: float, horizon_days: float) -> dict[str, Any]:
    """Add to a worth its yearly cost and its net benefit (the worth a year minus the cost, with its CI)."""
    worth["annual_cost_usd"] = cost
    worth["net_benefit_usd"] = annualised(worth["avoided_usd"], horizon_days) - cost
    worth["net_benefit_ci95_usd"] = [annualised(x, horizon_days) - cost for x in worth["ci95_usd"]]
    return worth


def _loss(r: VariantLosses) -> dict[str, Any]:
    mean, low, high = mean_ci(r.loss)
    return {"expected_loss_usd": mean, "ci95_usd": [low, high],
            "p_any_loss": float(np.mean(r.loss > 0)) if len(r) else 0.0}


def _avoided(before: VariantLosses, after: VariantLosses) -> dict[str, Any]:
    """Return the loss avoided going from ``before`` to ``after``, paired trial by trial, with its CI."""
    mean, low, high = mean_ci(before.loss - after.loss)
    return {"avoided_usd": mean, "ci95_usd": [low, high], "loss_before_usd": float(np.mean(before.loss)),
            "loss_after_usd": float(np.mean(after.loss))}


@dataclass(frozen=True)
class AttributionOutcome:
    """A finished attribution: where it was written and its figures."""

    folder: Path
    summary: dict[str, Any]
    files: tuple[str, ...]
    """The files written into the folder (the manifest's ``files``)."""


FILES = ("report.html", "report.md", "attribution.csv", "tornado.csv", "summary.json", SCENARIO_COPY,
         "manifest.json")
"""The files of an attribution folder, in the order a reader wants them (``manifest.json`` is written last:
it marks completeness)."""


def execute_attribution(scenario: str | Path, controls: list[str] | None = None, trials: int | None = None,
                        seed: int | None = None, out: Path | None = None, replace: bool = False,
                        workers: int = 1, progress: Progress | None = None,
                        command: Command | None = None) -> AttributionOutcome:
    """Load a scenario, simulate the attribution of its controls and write the attribution folder.

    The folder appears only when complete (see :func:`custodysim.running.outputs.staged_folder`); an interrupted
    attribution leaves nothing behind (it is quick to redo).

    Args:
        scenario: the scenario file.
        controls: the variants to treat as controls (default: all of them).
        trials: trials per combination (default: the scenario's setting).
        seed: the master seed (default: the scenario's setting).
        out: the folder to create (default: ``results/<scenario>-attribution-<UTC time>``).
        replace: replace ``out`` if it holds a previous complete run, once the new one is complete.
        workers: local worker processes (1 runs in this process); the figures do not depend on it.
        progress: called with (variant, trials) as chunks complete.
        command: the command line as typed, recorded in the manifest (None, for a call from Python: the
            manifest's ``command`` is null and its ``wall_seconds`` times this call).

    Raises:
        ScenarioError: the file is not a valid scenario, or the controls overlap or do not combine.
        OptionError: unknown controls or options out of range.
        LimitError: the simulation would hold more than :data:`custodysim.studies.run.MAX_ROWS` rows.
        RunFolderError: ``out`` exists (and may not be replaced) or cannot be created.
    """
    started = time.perf_counter()
    loaded = load_scenario(scenario)
    plan = plan_attribution(loaded, controls)
    n = trials if trials is not None else loaded.baseline.settings.trials
    s = seed if seed is not None else loaded.baseline.settings.seed
    check_size(n, len(plan.loaded.specs()), cost="time")
    folder = out if out is not None else default_run_dir(f"{loaded.name}-attribution")
    pool = open_executor(workers)
    try:
        with staged_folder(folder, replace, keep_unfinished=False) as staging:
            result = simulate(plan.loaded, n, s, None, progress, None, pool, keep_rows=False)
            summary = summarise_attribution(plan, result, s)
            manifest = build_manifest(as_typed(command, folder), Path(scenario).name, loaded.sha256, s,
                                      result.trials, {"controls": plan.controls,
                                                      "combinations_simulated": len(result.losses)},
                                      pool, started, list(FILES))
            summary["provenance"] = provenance(manifest)
            shutil.copyfile(scenario, staging / SCENARIO_COPY)
            write_json(staging / "summary.json", summary)
            write_rows(staging / "attribution.csv", attribution_table(summary), ATTRIBUTION_COLUMNS)
            write_rows(staging / "tornado.csv", tornado_table(summary), TORNADO_COLUMNS)
            (staging / "report.md").write_text(render_attribution_markdown(summary, manifest), encoding="utf-8")
            (staging / "report.html").write_text(render_attribution_html(summary, manifest), encoding="utf-8")
            write_manifest(staging, manifest, command.started if command is not None else started)
    finally:
        pool.close()
    return AttributionOutcome(folder, summary, FILES)


def attribution_table(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """Return attribution.csv's rows: one per control and measure (``alone``, ``in_full_set``)."""
    rows = []
    for c in summary["controls"]:
        for measure in ("alone", "in_full_set"):
            x = c[measure]
            rows.append({"control": c["control"], "measure": measure, "loss_avoided_usd": x["avoided_usd"],
                         "ci95_low_usd": x["ci95_usd"][0], "ci95_high_usd": x["ci95_usd"][1],
                         "loss_without_control_usd": x["loss_before_usd"],
                         "loss_with_control_usd": x["loss_after_usd"], "trials": summary["trials"],
                         "annual_cost_usd": x["annual_cost_usd"], "net_benefit_usd": x["net_benefit_usd"],
                         "net_benefit_ci95_low_usd": x["net_benefit_ci95_usd"][0],
                         "net_benefit_ci95_high_usd": x["net_benefit_ci95_usd"][1]})
    return rows


def tornado_table(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """Return tornado.csv's rows: one per uncertain input, largest swing first (values as JSON)."""
    rows = []
    for rank, t in enumerate(summary["tornado"], start=1):
        rows.append({
            "rank": rank, "input": t["input"], "path": t["path"], "source": t["source"],
            "value": json.dumps(t["value"]), "low": json.dumps(t["low"]), "high": json.dumps(t["high"]),
            "baseline_loss_usd": t["baseline_loss_usd"],
            "loss_at_low_usd": t["loss_at_low_usd"], "diff_at_low_usd": t["diff_at_low_usd"],
            "diff_at_low_ci95_low_usd": t["diff_at_low_ci95_usd"][0],
            "diff_at_low_ci95_high_usd": t["diff_at_low_ci95_usd"][1],
            "loss_at_high_usd": t["loss_at_high_usd"], "diff_at_high_usd": t["diff_at_high_usd"],
            "diff_at_high_ci95_low_usd": t["diff_at_high_ci95_usd"][0],
            "diff_at_high_ci95_high_usd": t["diff_at_high_ci95_usd"][1],
            "swing_usd": t["swing_usd"], "trials": summary["trials"],
        })
    return rows


ATTRIBUTION_COLUMNS = ("control", "measure", "loss_avoided_usd", "ci95_low_usd", "ci95_high_usd",
                       "loss_without_control_usd", "loss_with_control_usd", "trials", "annual_cost_usd",
                       "net_benefit_usd", "net_benefit_ci95_low_usd", "net_benefit_ci95_high_usd")
TORNADO_COLUMNS = ("rank", "input", "path", "source", "value", "low", "high", "baseline_loss_usd",
                   "loss_at_low_usd", "diff_at_low_usd", "diff_at_low_ci95_low_usd", "diff_at_low_ci95_high_usd",
                   "loss_at_high_usd", "diff_at_high_usd", "diff_at_high_ci95_low_usd",
                   "diff_at_high_ci95_high_usd", "swing_usd", "trials")

