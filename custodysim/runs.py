"""The library API behind ``custodysim run``: load, simulate, summarise, write the run folder."""

from __future__ import annotations

import platform
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml

from custodysim import __version__
from custodysim.errors import RunFolderError
from custodysim.loader import LoadedScenario, load_scenario
from custodysim.outputs import default_run_dir, staged_folder, write_json, write_trials_csv
from custodysim.report import render_markdown
from custodysim.runner import Progress, run_variants
from custodysim.stats import summarise


@dataclass(frozen=True)
class RunOutcome:
    """A finished run: where it was written and its summary."""

    folder: Path
    summary: dict[str, Any]


def build_summary(loaded: LoadedScenario, trials: int | None = None, seed: int | None = None,
                  variants: list[str] | None = None, progress: Progress | None = None) -> dict[str, Any]:
    """Run the scenario and return summary.json's content plus the rows (under ``_rows``)."""
    settings = loaded.baseline.settings
    n = trials if trials is not None else settings.trials
    s = seed if seed is not None else settings.seed
    rows, cols = run_variants(loaded, n, s, variants, progress)
    baseline = loaded.baseline.baseline_name
    return {
        "scenario": loaded.name,
        "description": loaded.baseline.description.strip(),
        "baseline": baseline,
        "trials": n,
        "seed": s,
        "horizon_days": settings.horizon_days,
        "units": "USD per horizon (the first year of exposure when horizon_days is 365)",
        "variants": summarise(rows, baseline, list(cols.assets), list(cols.wallets)),
        "variant_descriptions": {
            r.name: loaded.baseline.variants[r.name].description.strip()
            for r in rows if r.name in loaded.baseline.variants
        },
        "_rows": rows,
        "_columns": cols,
    }


def execute_run(scenario: str | Path, trials: int | None = None, seed: int | None = None,
                out: Path | None = None, variants: list[str] | None = None,
                progress: Progress | None = None, command: list[str] | None = None) -> RunOutcome:
    """Run a scenario file and write a complete run folder.

    Raises:
        ScenarioError: the file is not a valid scenario (nothing is written).
        RunFolderError: ``out`` exists already or cannot be created.
    """
    started = time.perf_counter()
    loaded = load_scenario(scenario)
    loaded.specs(variants)  # unknown variant names fail before any work
    folder = out if out is not None else default_run_dir(loaded.name)
    if folder.exists():
        raise RunFolderError(f"{folder} already exists; choose another --out (runs are never overwritten)")
    summary = build_summary(loaded, trials, seed, variants, progress)
    rows, cols = summary.pop("_rows"), summary.pop("_columns")
    wall = time.perf_counter() - started
    manifest = {
        "package": "custodysim",
        "version": __version__,
        "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": command if command is not None else ["custodysim", *sys.argv[1:]],
        "scenario_file": Path(scenario).name,
        "scenario_sha256": loaded.sha256,
        "seed": summary["seed"],
        "trials": summary["trials"],
        "variants": list(summary["variants"]),
        "wall_time_seconds": round(wall, 3),
        "python": platform.python_version(),
        "files": ["summary.json", "trials.csv", "scenario.resolved.yaml", "report.md", "manifest.json"],
    }
    summary["provenance"] = {k: manifest[k] for k in ("version", "scenario_sha256", "seed", "trials",
                                                       "created_utc")}
    with staged_folder(folder) as staging:
        write_json(staging / "summary.json", summary)
        write_trials_csv(staging / "trials.csv", rows, cols)
        (staging / "scenario.resolved.yaml").write_text(_resolved_yaml(loaded, summary["variants"]),
                                                         encoding="utf-8")
        (staging / "report.md").write_text(render_markdown(summary, manifest), encoding="utf-8")
        write_json(staging / "manifest.json", manifest)  # written last: its presence marks completeness
    return RunOutcome(folder, summary)


def _resolved_yaml(loaded: LoadedScenario, ran: dict[str, Any]) -> str:
    """Return every variant that ran, fully resolved (defaults filled in), as YAML."""
    docs = {
        name: spec.model_dump(mode="json", by_alias=True, exclude={"variants"})
        for name, spec in loaded.specs().items() if name in ran
    }
    header = (f"# Resolved scenario {loaded.name!r}: each variant as simulated, defaults filled in.\n"
              f"# Source sha256: {loaded.sha256}\n")
    return header + yaml.safe_dump(docs, sort_keys=False, allow_unicode=True)
