"""Telling one trial: of a scenario file, or of a finished run (with the seed and trials it ran with)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from custodysim.errors import OptionError, RunFolderError
from custodysim.reporting.stories import Story, tell
from custodysim.running.runfolder import SCENARIO_COPY, read_manifest
from custodysim.scenario.loader import LoadedScenario, load_scenario


@dataclass(frozen=True)
class TracedTrial:
    """One trial, told: which scenario, variant, trial and seed, where the seed came from, and the story."""

    scenario: str
    variant: str
    trial: int
    seed: int
    seed_from: str
    story: Story


def trace_trial(source: Path, trial: int, variant: str | None = None, seed: int | None = None) -> TracedTrial:
    """Re-simulate trial ``trial`` of ``variant`` (default: the baseline) and tell it.

    ``source`` is a scenario file or a run folder. A run folder's own scenario copy, seed, trials and
    variants are used, so the trial told is the row of its ``trials.csv``. A scenario file that is a run's
    copy (its folder's manifest names its hash) is told with that run's seed unless ``seed`` is given.

    Raises:
        ScenarioError: the file is not a valid scenario.
        RunFolderError: the run folder is damaged.
        OptionError: a trial, variant or seed the run did not have.
    """
    if source.is_dir():
        manifest = read_manifest(source)
        if seed is not None and seed != manifest["seed"]:
            raise OptionError(f"--seed {seed}: the run in {source} ran with seed {manifest['seed']}; leave --seed "
                              "out to tell its trials (another seed is another year)")
        if trial >= manifest["trials"]:
            raise OptionError(f"--trial {trial}: the run in {source} has trials 0 to {manifest['trials'] - 1}")
        copy = source / SCENARIO_COPY
        if not copy.is_file():
            raise RunFolderError(f"{source}: has no {SCENARIO_COPY} (the scenario as run) to re-simulate from")
        loaded = load_scenario(copy)
        ran = manifest.get("variants") or list(loaded.specs())
        name = variant or loaded.baseline.baseline_name
        if name not in ran:
            raise OptionError(f"--variant {name}: the run in {source} ran {', '.join(ran)}")
        return _told(loaded, name, trial, manifest["seed"], f"the seed of the run in {source}")
    loaded = load_scenario(source)
    name = variant or loaded.baseline.baseline_name
    if seed is not None:
        return _told(loaded, name, trial, seed, "--seed")
    run_seed = _seed_of_run_holding(source, loaded.sha256)
    if run_seed is not None:
        return _told(loaded, name, trial, run_seed, f"the seed of the run in {source.parent}")
    return _told(loaded, name, trial, loaded.baseline.settings.seed, "the file's seed")


def _seed_of_run_holding(path: Path, sha256: str) -> int | None:
    """Return the seed of the run whose folder holds ``path`` as its scenario copy (None if it is no such copy)."""
    if path.name != SCENARIO_COPY or not (path.parent / "manifest.json").is_file():
        return None
    try:
        manifest = read_manifest(path.parent)
    except RunFolderError:
        return None
    # read_manifest has checked that the copy's hash is the manifest's
    return int(manifest["seed"]) if manifest.get("scenario_sha256") == sha256 else None


def _told(loaded: LoadedScenario, name: str, trial: int, seed: int, seed_from: str) -> TracedTrial:
    return TracedTrial(loaded.name, name, trial, seed, seed_from, tell(loaded, name, trial, seed))
