"""The library API behind ``custodysim sweep``: a scenario over a grid of overrides, on common random numbers.

Every grid point becomes a variant (see :func:`custodysim.scenario.loader.derive`), so the points run with the
baseline on the same trial seeds and named streams as a ``run`` would: a point's figures equal those of a
run of a variant with the same overrides and seed. The sweep folder holds a tidy table (one row per
point), the summary, the trial rows, the reports and the manifest, written through the staged folder so
that an interrupted sweep leaves nothing that looks complete.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from custodysim.analysis.economics import variant_economics
from custodysim.analysis.frontier import MEASURES, efficient_names
from custodysim.analysis.stats import summarise
from custodysim.errors import OptionError, ScenarioError
from custodysim.reporting.sweepreport import render_sweep_html, render_sweep_markdown
from custodysim.running.executors import open_executor
from custodysim.running.outputs import default_run_dir, staged_folder, write_json, write_rows
from custodysim.running.rows import MAX_ROWS, check_size
from custodysim.running.runner import Progress, Simulated, simulate
from custodysim.running.trialscsv import write_trials_csv
from custodysim.scenario.grids import Axis, GridPoint, frontier_figures, grid, labels, parse_axes, point_figures
from custodysim.scenario.loader import LoadedScenario, derive, load_scenario
from custodysim.scenario.units import field_unit
from custodysim.studies.provenance import SCENARIO_COPY, Command, as_typed, build_manifest, provenance, write_manifest

FILES = ("report.html", "report.md", "sweep.csv", "sweep.json", "trials.csv", SCENARIO_COPY, "manifest.json")
"""The files of a sweep folder, in the order a reader wants them; manifest.json is written last and marks it
complete."""
OPTIONAL_OPERATIONS = ("withdrawal_delay_mean_hours_p95", "transfers_blocked_mean", "signing_ceremonies_per_year")
"""Operational figures a sweep of an old run folder may lack; a column appears when the figures carry it."""
COSTS = ("control_cost_usd", "expected_annual_loss_usd", "total_cost_of_risk_usd")
"""Cost figures (``figures["costs"]``); a column appears when any point carries them."""


@dataclass(frozen=True)
class SweepOutcome:
    """A finished sweep: where it was written and its summary (sweep.json's content)."""

    folder: Path
    summary: dict[str, Any]
    files: tuple[str, ...]
    """The files written into the folder (the manifest's ``files``)."""


def sweep_scenario(loaded: LoadedScenario, axes: list[Axis],
                   from_variant: str | None = None) -> tuple[LoadedScenario, list[GridPoint]]:
    """Return the scenario with one variant per grid point, and the points.

    Args:
        loaded: the scenario file.
        axes: the swept paths and their values.
        from_variant: a variant of the file whose ``set`` every point starts from (the swept paths win).

    Raises:
        ScenarioError: ``from_variant`` names no variant.
        OptionError: a swept path or value gives an invalid scenario; each problem names the ``--set``
            path, the grid point and what is wrong.
    """
    start: dict[str, Any] = {}
    if from_variant is not None:
        loaded.specs([from_variant])  # an unknown name is refused with the names there are
        if from_variant in loaded.baseline.variants:
            start = dict(loaded.baseline.variants[from_variant].set)
    points = grid(axes)
    overrides = {}
    for p in points:
        mine = p.overrides()
        overrides[p.name] = {**{k: v for k, v in start.items() if k not in mine}, **mine}
    try:
        return derive(loaded, overrides), points
    except ScenarioError as exc:
        raise _sweep_problems(exc, axes, from_variant) from None


def _sweep_problems(exc: ScenarioError, axes: list[Axis], from_variant: str | None) -> OptionError:
    """Return the problems of derived grid points as one error naming each ``--set`` path and point."""
    swept = {a.path for a in axes}
    seen: dict[tuple[str, str], list[str]] = {}
    for problem in exc.problems:
        parts = problem.path
        point = str(parts[1]) if len(parts) > 1 else ""
        dotted = str(parts[3]) if len(parts) > 3 else ""
        if dotted in swept:
            where = f"--set {dotted}"
        elif dotted:
            where = f"--from-variant {from_variant}: {dotted}"
        else:
            where = "--set"
        seen.setdefault((where, problem.message), []).append(point)
    lines = []
    for (where, message), at in seen.items():
        more = f" and {len(at) - 1} more point{'s' if len(at) > 2 else ''}" if len(at) > 1 else ""
        lines.append(f"  {where}: {message} (at {at[0]}{more})")
    n = len(lines)
    return OptionError("\n".join([f"{exc.source}: {n} problem{'s' if n != 1 else ''} with the sweep", *lines]))


def execute_sweep(scenario: str | Path, sets: list[str], trials: int | None = None, seed: int | None = None,
                  out: Path | None = None, from_variant: str | None = None, progress: Progress | None = None,
                  command: Command | None = None, replace: bool = False, max_rows: int = MAX_ROWS,
                  workers: int = 1) -> SweepOutcome:
    """Run a scenario over the grid of ``--set`` overrides and write a complete sweep folder.

    Args:
        scenario: the scenario file.
        sets: ``PATH=V1,V2,...`` options, one per swept path.
        trials: trials per point (default: the file's).
        seed: master seed (default: the file's).
        out: the sweep folder to create (default: a new folder under ``results/``).
        from_variant: a variant of the file whose ``set`` every point starts from.
        progress: called after each chunk of trials.
        command: the command line as typed, recorded in the manifest (None, for a call from Python: the
            manifest's ``command`` is null and its ``wall_seconds`` times this call).
        replace: replace ``out`` if it holds a previous complete run or sweep.
        max_rows: the most trial rows (trials x (points + baseline)) the sweep may hold.
        workers: local worker processes (1: simulate in this process).

    Raises:
        ScenarioError: the file is not a valid scenario, or ``from_variant`` is not one of its variants.
        OptionError: a malformed ``--set``, an invalid override, or more than
            :data:`custodysim.scenario.grids.MAX_POINTS` points.
        LimitError: too many trial rows.
        RunFolderError: ``out`` exists already (and may not be replaced) or cannot be created.
    """
    started = time.perf_counter()
    loaded = load_scenario(scenario)
    axes = parse_axes(sets)
    derived, points = sweep_scenario(loaded, axes, from_variant)
    n = trials if trials is not None else loaded.baseline.settings.trials
    s = seed if seed is not None else loaded.baseline.settings.seed
    check_size(n, len(points) + 1, max_rows, cost="memory")
    folder = out if out is not None else default_run_dir(f"{loaded.name}-sweep")
    pool = open_executor(workers)
    try:
        # A sweep is quick to redo and is not resumed: an interrupted one leaves no folder at all.
        with staged_folder(folder, replace, keep_unfinished=False) as staging:
            (staging / SCENARIO_COPY).write_bytes(Path(scenario).read_bytes())
            result = simulate(derived, n, s, None, progress, None, pool)
            summary = sweep_summary(derived, axes, points, result, s, from_variant)
            manifest = build_manifest(as_typed(command, folder), Path(scenario).name, loaded.sha256, s, n,
                                      {"sets": list(sets), "from_variant": from_variant, "points": len(points)},
                                      pool, started, list(FILES), kind="sweep")
            summary["provenance"] = provenance(manifest)
            write_json(staging / "sweep.json", summary)
            write_table(staging / "sweep.csv", summary)
            write_trials_csv(staging / "trials.csv", result.rows, result.columns)
            manifest["wall_time_seconds"] = round(time.perf_counter() - started, 3)  # with the tables written
            (staging / "report.md").write_text(render_sweep_markdown(summary, manifest), encoding="utf-8")
            (staging / "report.html").write_text(render_sweep_html(summary, manifest), encoding="utf-8")
            # written last: its presence marks completeness
            write_manifest(staging, manifest, command.started if command is not None else started)
    finally:
        pool.close()
    return SweepOutcome(folder, summary, FILES)


def sweep_summary(loaded: LoadedScenario, axes: list[Axis], points: list[GridPoint], result: Simulated,
                  seed: int, from_variant: str | None = None) -> dict[str, Any]:
    """Return sweep.json's content: the axes, the points, every point's figures and the frontier.

    ``variants`` holds the baseline and every point, with the figures of summary.json (the paired
    difference is against the scenario's baseline); each point's control cost includes the own cost
    of ``from_variant``, whose changes it carries. The frontier is over the baseline and the points: a
    point the baseline beats is not efficient. Each axis carries the unit of its field
    (:func:`custodysim.scenario.units.field_unit`; null when unknown).

    Args:
        loaded: the scenario with one variant per grid point (:func:`sweep_scenario`).
        axes: the swept paths and their values.
        points: the grid points.
        result: the simulated rows of the baseline and every point.
        seed: the master seed.
        from_variant: the file's variant every point started from, if any.
    """
    baseline = loaded.baseline.baseline_name
    start = loaded.baseline.variants.get(from_variant) if from_variant is not None else None
    own = start.annual_cost_usd if start is not None else 0.0
    economics = {name: variant_economics(spec, 0.0 if name == baseline else own,
                                         from_variant if name != baseline and own else None)
                 for name, spec in loaded.specs().items()}
    horizon = loaded.baseline.settings.horizon_days
    figures = summarise(result.losses, baseline, list(result.columns.assets), list(result.columns.wallets),
                        horizon, economics)
    short = labels([a.path for a in axes])
    first = loaded.specs()[points[0].name] if points else loaded.baseline
    summary: dict[str, Any] = {
        "kind": "sweep",
        "scenario": loaded.name,
        "description": loaded.baseline.description.strip(),
        "baseline": baseline,
        "from_variant": from_variant,
        "trials": result.trials,
        "seed": seed,
        "horizon_days": loaded.baseline.settings.horizon_days,
        "units": "USD per horizon (the first year of exposure when horizon_days is 365)",
        "axes": [{"path": a.path, "label": short[a.path], "unit": field_unit(a.path, first),
                  "values": list(a.values), "texts": list(a.texts)} for a in axes],
        "points": [{"name": p.name, "inputs": p.overrides()} for p in points],
        "variants": figures,
    }
    summary["frontier"] = {measure: efficient_names(frontier_figures(summary), measure) for measure in MEASURES}
    return summary


def table_rows(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """Return the tidy sweep table: one row per grid point with its inputs, figures and frontier flags.

    The flags say whether a point is in the frontier stored in ``summary["frontier"]`` (over the baseline
    and the points).

    Operational and cost figures that later versions add (:data:`OPTIONAL_OPERATIONS`, :data:`COSTS`)
    get a column when any point carries them.
    """
    grid_figures = point_figures(summary)
    efficient = {m: set(summary["frontier"][m]) for m in MEASURES}
    extra_ops = [k for k in OPTIONAL_OPERATIONS if any(k in v["operations"] for v in grid_figures.values())]
    costs = [k for k in COSTS if any(k in v.get("costs", {}) for v in grid_figures.values())]
    rows = []
    for point in summary["points"]:
        v = grid_figures[point["name"]]
        ops = v["operations"]
        row: dict[str, Any] = {"point": point["name"], **point["inputs"]}
        row.update({
            "expected_loss_usd": v["expected_loss_usd"],
            "expected_loss_ci95_low_usd": v["expected_loss_ci95_usd"][0],
            "expected_loss_ci95_high_usd": v["expected_loss_ci95_usd"][1],
            "std_loss_usd": v["std_loss_usd"],
            "p_any_loss": v["p_any_loss"],
            **{k: v[k] for k in ("var95_usd", "var99_usd", "var999_usd", "es99_usd", "max_loss_usd")},
            "diff_vs_baseline_usd": v["diff_vs_baseline_usd"],
            "diff_ci95_low_usd": v["diff_ci95_usd"][0],
            "diff_ci95_high_usd": v["diff_ci95_usd"][1],
            "withdrawal_delay_mean_hours": ops["withdrawal_delay_mean_hours"],
            "withdrawals_delayed_share": ops["withdrawals_delayed_share"],
            **{k: ops.get(k) for k in extra_ops},
            "transfers_signed_mean": ops["transfers_signed_mean"],
            "transfers_delayed_mean": ops["transfers_delayed_mean"],
            "transfer_delay_hours_mean": ops["transfer_delay_hours_mean"],
            **{k: v.get("costs", {}).get(k) for k in costs},
            "efficient_expected_loss": point["name"] in efficient["expected_loss_usd"],
            "efficient_var99": point["name"] in efficient["var99_usd"],
        })
        rows.append(row)
    return rows


def write_table(path: Path, summary: dict[str, Any]) -> None:
    """Write the tidy sweep table as CSV (numbers as Python writes them, a missing figure empty)."""
    rows = table_rows(summary)
    write_rows(path, rows, list(rows[0]))
