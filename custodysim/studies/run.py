"""The library API behind ``custodysim run``: load, simulate, summarise, write the run folder."""

from __future__ import annotations

import hashlib
import json
import shlex
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from custodysim import __version__
from custodysim.analysis.assumptions import key_inputs
from custodysim.analysis.economics import DAYS_PER_YEAR, scenario_economics
from custodysim.analysis.stats import summarise
from custodysim.errors import (
    LimitError,
    OptionError,
    RunFolderError,
    RunInterrupted,
    RunStopped,
    TrialTooCostly,
    WorkerLost,
    WriteError,
)
from custodysim.reporting.report import render_html, render_markdown
from custodysim.reporting.stories import worst_stories
from custodysim.running.checkpoints import ChunkStore
from custodysim.running.executors import Executor, open_executor
from custodysim.running.losses import VariantLosses
from custodysim.running.outputs import (
    check_not_live,
    default_run_dir,
    json_text,
    partial_dir,
    replace_files,
    staged_folder,
    writing,
)
from custodysim.running.precision import DEFAULT_MAX_TRIALS, StopRule
from custodysim.running.rows import MAX_ROWS, VariantRows, blocks_of, check_size
from custodysim.running.runfolder import StoredRun, read_run
from custodysim.running.runner import Columns, Progress, simulate
from custodysim.running.trialscsv import WRITE_BLOCK, write_events_csv, write_trials_csv
from custodysim.running.trialsparquet import require_pyarrow, write_trials_parquet
from custodysim.scenario.loader import LoadedScenario, load_scenario, load_scenario_text
from custodysim.studies.provenance import SCENARIO_COPY, Command, as_typed, build_manifest, provenance, write_manifest

PLAN = "run.json"
"""The parameters of a run in progress, kept in its staging folder so that it can be resumed.

It holds the run's settings and the ``checksum`` of them (see :func:`_checksum`): a plan that was
edited or damaged is refused, never resumed with figures of two settings mixed."""


@dataclass(frozen=True)
class RunOutcome:
    """A finished run: where it was written and its summary."""

    folder: Path
    summary: dict[str, Any]
    files: tuple[str, ...]
    """The files written into the folder, in the order a reader wants them (the manifest's ``files``)."""


ROWS = ("csv", "parquet", "both")
"""What ``--rows`` may ask for: the file(s) the trial rows are written to."""
DEFAULT_ROWS = "csv"
"""trials.csv by default: any spreadsheet, script or auditor reads it without installing anything
(Parquet needs pyarrow: ``custodysim[parquet]``), and a diff shows what changed between two runs."""


def run_files(rows: str = DEFAULT_ROWS) -> tuple[str, ...]:
    """Return the files of a run folder whose rows go to ``rows`` (see :data:`ROWS`), in the order a reader wants them.

    manifest.json is written last.
    """
    tables = {"csv": ("trials.csv",), "parquet": ("trials.parquet",), "both": ("trials.csv", "trials.parquet")}[rows]
    return ("report.html", "report.md", "summary.json", *tables, "events.csv", "stories.json", SCENARIO_COPY,
            "scenario.resolved.yaml", "manifest.json")


FILES = run_files()
"""The files of a run folder written with the default ``--rows``."""


def rows_option(rows: str) -> str:
    """Return ``rows`` (see :data:`ROWS`) once checked, pyarrow installed if it asks for Parquet.

    Raises:
        OptionError: an unknown value, or Parquet without pyarrow.
    """
    if rows not in ROWS:
        raise OptionError(f"--rows takes {', '.join(ROWS)}, not {rows!r}")
    if rows != "csv":
        require_pyarrow()
    return rows


def summarise_run(loaded: LoadedScenario, rows: list[VariantLosses], cols: Columns, trials: int,
                  seed: int, precision: dict[str, Any] | None = None) -> dict[str, Any]:
    """Return summary.json's content for rows produced by :func:`custodysim.running.runner.simulate`.

    Args:
        loaded: the scenario.
        rows: every variant's losses.
        cols: their column layout.
        trials: trials per variant.
        seed: the master seed.
        precision: for a run stopped on precision, its target, achieved half-widths and what stopped it.
    """
    baseline = loaded.baseline.baseline_name
    return {
        "scenario": loaded.name,
        "description": loaded.baseline.description.strip(),
        "baseline": baseline,
        "trials": trials,
        **({"precision": precision} if precision is not None else {}),
        "seed": seed,
        "horizon_days": loaded.baseline.settings.horizon_days,
        "units": "USD per horizon (the first year of exposure when horizon_days is 365)",
        "variants": summarise(rows, baseline, list(cols.assets), list(cols.wallets),
                              loaded.baseline.settings.horizon_days,
                              scenario_economics(loaded.baseline, loaded.specs())),
        "variant_descriptions": {
            r.name: loaded.baseline.variants[r.name].description.strip()
            for r in rows if r.name in loaded.baseline.variants
        },
    }


def execute_run(scenario: str | Path, trials: int | None = None, seed: int | None = None,
                out: Path | None = None, variants: list[str] | None = None,
                progress: Progress | None = None, command: Command | None = None,
                replace: bool = False, max_rows: int = MAX_ROWS, workers: int = 1, executor: str = "local",
                scheduler: str | None = None, precision: float | None = None,
                max_trials: int | None = None, rows: str = DEFAULT_ROWS) -> RunOutcome:
    """Run a scenario file and write a complete run folder.

    Args:
        scenario: the scenario file.
        trials: trials per variant (default: the file's).
        seed: master seed (default: the file's).
        out: the run folder to create (default: a new folder under ``results/``).
        variants: the variants to run besides the baseline (default: all).
        progress: called after each chunk of trials.
        command: the command line as typed, recorded in the manifest (None, for a call from Python: the
            manifest's ``command`` is null and its ``wall_seconds`` times this call).
        replace: replace ``out`` if it holds a previous complete run (swapped only once the new one is done).
        max_rows: the most trial rows (trials x variants) the run may write (a limit on disk, not memory:
            the rows are written from the checkpoints, a block at a time).
        workers: local worker processes (1: simulate in this process, with no pool).
        executor: ``local`` (this machine) or ``dask`` (a Dask cluster at ``scheduler``).
        scheduler: the Dask scheduler's address, e.g. ``tcp://host:8786``.
        precision: instead of a fixed number of trials, run until every variant's 95% CI half-width is
            within this share of its expected loss (see :class:`custodysim.running.precision.StopRule`).
        max_trials: with ``precision``, the most trials per variant (default 1,000,000).
        rows: the file(s) the trial rows go to: ``csv`` (trials.csv), ``parquet`` (trials.parquet) or ``both``.

    The figures do not depend on ``workers`` or ``executor``: those are recorded in the manifest only.

    Raises:
        ScenarioError: the file is not a valid scenario (nothing is written).
        OptionError: options out of range or that do not go together.
        ExecutorError: the Dask cluster cannot be used.
        RunStopped: a worker process or the Dask scheduler was lost; the completed chunks are kept.
        LimitError: a trial is past its budget (:mod:`custodysim.simulation.budget`); the completed chunks are kept.
        LimitError: the run would write more than ``max_rows`` trial rows.
        RunFolderError: ``out`` exists already (and may not be replaced) or cannot be created.
    """
    started = time.perf_counter()
    rows = rows_option(rows)
    loaded = load_scenario(scenario)
    stop = stop_rule(trials, precision, max_trials)
    n = trials if trials is not None else loaded.baseline.settings.trials
    check_size(stop.max_trials if stop else n, len(loaded.specs(variants)), max_rows)  # fail before any work
    folder = out if out is not None else default_run_dir(loaded.name)
    plan = {
        "scenario_file": Path(scenario).name,
        "scenario_sha256": loaded.sha256,
        "trials": None if stop else n,
        "precision": stop.target if stop else None,
        "max_trials": stop.max_trials if stop else None,
        "seed": seed if seed is not None else loaded.baseline.settings.seed,
        "variants": variants,
        "replace": replace,
        "command": as_typed(command, folder),
        "rows": rows,
    }
    try:
        copy = Path(scenario).read_bytes()  # as it was loaded a moment ago
    except OSError as exc:
        raise RunFolderError(f"{scenario}: cannot be read again ({exc.strerror})") from None
    pool = open_executor(workers, executor, scheduler)  # an unreachable cluster fails before any file is made
    try:
        with staged_folder(folder, replace) as staging:
            # Together, the plan last: a staging folder holding a plan holds all a resumed run needs.
            replace_files({staging / SCENARIO_COPY: copy,
                           staging / PLAN: json_text({**plan, "checksum": _checksum(plan)})})
            summary = _complete(staging, loaded, plan, progress, started, _since(command, started), pool)
    except KeyboardInterrupt:
        raise _interrupted(folder) from None
    except WriteError as exc:
        raise _stopped(folder, exc, replace) from None
    except WorkerLost as exc:
        raise RunStopped(str(exc), folder) from None
    except TrialTooCostly as exc:
        raise _too_costly(folder, exc) from None
    finally:
        pool.close()
    return RunOutcome(folder, summary, run_files(rows))


def _since(command: Command | None, started: float) -> float:
    """Return when the command started (for a call from Python: when the call did, ``started``)."""
    return command.started if command is not None else started


def _interrupted(folder: Path) -> BaseException:
    """Return what to raise for a run to ``folder`` interrupted by Ctrl-C: resumable only if its plan is kept."""
    return RunInterrupted(folder) if (partial_dir(folder) / PLAN).is_file() else KeyboardInterrupt()


def _stopped(folder: Path, exc: WriteError, replace: bool) -> RunFolderError:
    """Return the error of a run to ``folder`` stopped by ``exc``, saying what was kept and how to finish it."""
    staging = partial_dir(folder)
    kept = "no run folder was written"
    if (staging / PLAN).is_file():
        kept = (f"the completed chunks are kept in {staging}: make room, then finish the run with: "
                f"custodysim run --resume {shlex.quote(str(folder))}")
    if replace and (folder / "manifest.json").is_file():
        kept += f"; the previous run in {folder} is untouched"
    return RunFolderError(f"{exc}; {kept}")


def _too_costly(folder: Path, exc: TrialTooCostly) -> LimitError:
    """Return the error of a run to ``folder`` stopped by a trial past its budget: the scenario must change."""
    staging = partial_dir(folder)
    kept = "no run folder was written"
    if (staging / PLAN).is_file():
        kept += (f"; the completed chunks are kept in {staging}, but a resumed run would meet the same trial: "
                 f"change the scenario, then delete {staging} and run it again")
    return LimitError(f"{exc}; {kept}")


def stop_rule(trials: int | None, precision: float | None, max_trials: int | None) -> StopRule | None:
    """Return the precision rule asked for, if any.

    Raises:
        OptionError: ``trials`` with ``precision``, ``max_trials`` without it, or a value out of range.
    """
    if precision is None:
        if max_trials is not None:
            raise OptionError("--max-trials bounds a run that stops on --precision; give --precision too, "
                              "or --trials for a fixed number of trials")
        return None
    if trials is not None:
        raise OptionError("give --trials (a fixed number of trials) or --precision (run until precise "
                          "enough, at most --max-trials), not both")
    return StopRule(precision, max_trials if max_trials is not None else DEFAULT_MAX_TRIALS)


def resume_run(folder: Path, progress: Progress | None = None, workers: int = 1, executor: str = "local",
               scheduler: str | None = None, command: Command | None = None) -> RunOutcome:
    """Finish an interrupted run to ``folder`` from its completed chunks.

    The figures are those of an uninterrupted run: trials do not depend on how they were chunked, nor
    on the workers that simulate them (which may differ from the interrupted run's). The manifest
    records the command that started the run (its settings are the run's) and ``resumed: true``; its
    ``wall_seconds`` times ``command``, the one that resumed it.

    Raises:
        RunFolderError: there is no interrupted run to ``folder``, or its saved state is damaged.
        OptionError, ExecutorError, RunStopped: as for :func:`execute_run`.
    """
    started = time.perf_counter()
    check_not_live(folder)  # a live run's plan is not ours to read
    plan, loaded = _read_plan(folder)
    rows_option(plan["rows"])
    pool = open_executor(workers, executor, scheduler)
    try:
        with staged_folder(folder, plan["replace"], resume=True) as staging:
            summary = _complete(staging, loaded, plan, progress, started, _since(command, started), pool,
                                resumed=True)
    except KeyboardInterrupt:
        raise _interrupted(folder) from None
    except WriteError as exc:
        raise _stopped(folder, exc, plan["replace"]) from None
    except WorkerLost as exc:
        raise RunStopped(str(exc), folder) from None
    except TrialTooCostly as exc:
        raise _too_costly(folder, exc) from None
    finally:
        pool.close()
    return RunOutcome(folder, summary, run_files(plan["rows"]))


def _checksum(plan: dict[str, Any]) -> str:
    """Return the checksum of a plan's settings (the sha256 of their JSON, keys sorted)."""
    return hashlib.sha256(json.dumps(plan, sort_keys=True).encode("utf-8")).hexdigest()


def _read_plan(folder: Path) -> tuple[dict[str, Any], LoadedScenario]:
    """Return the plan of the interrupted run to ``folder`` and its scenario, both checked.

    Raises:
        RunFolderError: there is no interrupted run, or its plan or scenario copy is damaged.
    """
    staging = partial_dir(folder)
    path = staging / PLAN

    def damaged(what: str, why: str) -> RunFolderError:
        return RunFolderError(f"{folder}: the interrupted run's {what} is damaged ({why}); it cannot be resumed "
                              f"safely: delete {staging} and run the scenario again")

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        raw = (staging / SCENARIO_COPY).read_bytes()
    except FileNotFoundError:
        raise RunFolderError(f"{folder}: there is no interrupted run to resume (no {staging.name} with its "
                             "plan beside it)") from None
    except (OSError, ValueError) as exc:
        raise damaged(f"plan {path}", f"it cannot be read as JSON: {exc}") from None
    if not isinstance(data, dict):
        raise damaged(f"plan {path}", "it is not a JSON object")
    checksum = data.pop("checksum", None)
    if checksum != _checksum(data):
        raise damaged(f"plan {path}", "its checksum does not match its settings: it was edited or corrupted")
    if "rows" not in data:  # a plan written before --rows: its rows went to trials.csv
        data["rows"] = DEFAULT_ROWS
    problem = _plan_problem(data)
    if problem is not None:
        raise damaged(f"plan {path}", problem)
    digest = hashlib.sha256(raw).hexdigest()
    if digest != data["scenario_sha256"]:
        raise damaged(f"copy of its scenario {staging / SCENARIO_COPY}", "its sha256 is not the one in the plan")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:  # only if the plan's hash was forged to match
        raise damaged(f"copy of its scenario {staging / SCENARIO_COPY}", str(exc)) from None
    return data, load_scenario_text(text, source=data["scenario_file"], sha256=digest)


def _plan_problem(plan: dict[str, Any]) -> str | None:
    """Return what is wrong with a plan's settings (None: nothing), as :func:`execute_run` writes them."""
    def count(v: object) -> bool:
        return isinstance(v, int) and not isinstance(v, bool) and v >= 1

    checks: dict[str, tuple[bool, str]] = {
        "scenario_file": (isinstance(plan.get("scenario_file"), str), "a file name"),
        "scenario_sha256": (isinstance(plan.get("scenario_sha256"), str)
                            and len(plan["scenario_sha256"]) == 64, "a sha256 in hexadecimal"),
        "trials": (plan.get("trials") is None or count(plan["trials"]), "a whole number of 1 or more, or null"),
        "precision": (plan.get("precision") is None or (isinstance(plan["precision"], float)
                                                        and 0 < plan["precision"] < 1), "between 0 and 1, or null"),
        "max_trials": (plan.get("max_trials") is None or count(plan["max_trials"]),
                       "a whole number of 1 or more, or null"),
        "seed": (isinstance(plan.get("seed"), int) and not isinstance(plan["seed"], bool) and plan["seed"] >= 0,
                 "a whole number of 0 or more"),
        "variants": (plan.get("variants") is None or (isinstance(plan["variants"], list)
                                                       and all(isinstance(v, str) for v in plan["variants"])),
                     "a list of variant names, or null"),
        "replace": (isinstance(plan.get("replace"), bool), "true or false"),
        "command": (plan.get("command") is None or (isinstance(plan["command"], list)
                                                     and all(isinstance(c, str) for c in plan["command"])),
                    "a list of words, or null"),
        "rows": (plan.get("rows") in ROWS, " or ".join(ROWS)),
    }
    unknown = sorted(set(plan) - set(checks))
    if unknown:
        return f"unknown setting {unknown[0]!r}"
    for key, (ok, expected) in checks.items():
        if key not in plan:
            return f"{key} is missing"
        if not ok:
            return f"{key} should be {expected}, not {json.dumps(plan[key])}"
    if (plan["trials"] is None) == (plan["precision"] is None) or \
            (plan["max_trials"] is None) != (plan["precision"] is None):
        return "it should give trials, or precision with max_trials"
    return None


def _complete(staging: Path, loaded: LoadedScenario, plan: dict[str, Any], progress: Progress | None,
              started: float, since: float, executor: Executor, resumed: bool = False) -> dict[str, Any]:
    """Simulate what the staging folder lacks, then write every file of the run into it.

    ``started`` is when this call's work started (``wall_time_seconds``), ``since`` when the command did
    (``wall_seconds``).
    """
    s = plan["seed"]
    stop = StopRule(plan["precision"], plan["max_trials"]) if plan.get("precision") is not None else None
    store = ChunkStore(staging)
    # The rows are not kept: they are written from the checkpoints below, a block at a time.
    result = simulate(loaded, plan["trials"], s, plan["variants"], progress, store, executor, stop, keep_rows=False)
    losses, cols, n = result.losses, result.columns, result.trials
    summary = summarise_run(loaded, losses, cols, n, s, result.precision)
    files = run_files(plan["rows"])
    manifest = build_manifest(plan["command"], plan["scenario_file"], loaded.sha256, s, n,
                              {"variants": list(summary["variants"]), "resumed": resumed, "rows": plan["rows"]},
                              executor, started, list(files))
    summary["provenance"] = provenance(manifest)
    stories = [story.as_dict() for story in worst_stories(loaded, losses, s)]

    def blocks() -> Iterator[VariantRows]:
        for r in losses:
            yield from blocks_of(r.name, cols, store.chunks(r.name, result.pieces, cols.widths), WRITE_BLOCK)

    writers = {"trials.csv": lambda path: write_trials_csv(path, blocks(), cols),
               "trials.parquet": lambda path: write_trials_parquet(path, blocks(), cols)}
    replace_files({
        staging / "summary.json": json_text(summary),
        staging / "stories.json": json_text(stories),
        **{staging / name: writers[name] for name in files if name in writers},
        staging / "events.csv": lambda path: write_events_csv(path, [(r.name, r.events) for r in losses]),
        staging / "scenario.resolved.yaml": _resolved_yaml(loaded, summary["variants"], s, n),
        staging / "report.md": render_markdown(summary, manifest),
        staging / "report.html": render_html(summary, manifest, losses, stories, key_inputs(loaded.baseline)),
    })
    write_manifest(staging, manifest, since)  # written last: its presence marks completeness
    # Only now that every file is written: a run that failed before can still be resumed.
    with writing(store.folder):
        shutil.rmtree(store.folder)
        (staging / PLAN).unlink()
    return summary


def rerender(folder: Path) -> StoredRun:
    """Recompute a run's summary from its stored rows and re-render its reports, without re-running.

    The key inputs listed in the HTML report are read from the run's own copy of its scenario.

    Only files derived from the trials (``trials.csv`` or ``trials.parquet``) are rewritten (``summary.json``
    and the reports), all of them rendered first and then replaced together; the rows, stories, resolved
    scenario and manifest stay as they were.

    Raises:
        RunFolderError: the folder is not a complete run, or its files are damaged (see
            :func:`~custodysim.running.runfolder.read_run`); nothing is written then.
        WriteError: a file cannot be written; the old files stay.
    """
    run = read_run(folder, "report")
    summary = dict(run.summary)
    baseline = summary["baseline"]
    loaded = load_scenario(folder / SCENARIO_COPY) if (folder / SCENARIO_COPY).is_file() else None
    economics = scenario_economics(loaded.baseline, loaded.specs()) if loaded is not None else None
    horizon = float(summary.get("horizon_days", DAYS_PER_YEAR))
    summary["variants"] = summarise(run.losses, baseline, list(run.columns.assets), list(run.columns.wallets),
                                    horizon, economics)
    summary["provenance"] = {**summary.get("provenance", {}), "rerendered_by_version": __version__}
    inputs = key_inputs(loaded.baseline) if loaded is not None else []
    files = {  # every file rendered before any is written, and all replaced together
        folder / "summary.json": json_text(summary),
        folder / "report.md": render_markdown(summary, run.manifest),
        folder / "report.html": render_html(summary, run.manifest, run.losses, run.stories, inputs),
    }
    try:
        replace_files(files)
    except WriteError as exc:
        raise RunFolderError(f"{exc}; none of the run's files was changed") from None
    return replace(run, summary=summary)


def _resolved_yaml(loaded: LoadedScenario, ran: dict[str, Any], seed: int, trials: int) -> str:
    """Return every variant that ran, fully resolved (defaults filled in), as YAML.

    ``variants`` and ``uncertainty`` are left out: they say what to run, not what a variant is; so are
    the library measures a variant does not switch on. Each variant's ``settings`` hold the seed and the
    trials the run used (a ``--seed`` or ``--trials`` given on the command line, not the file's).
    """
    docs = {}
    for name, spec in loaded.specs().items():
        if name in ran:
            doc = spec.model_dump(mode="json", by_alias=True, exclude={"variants", "uncertainty"})
            doc["settings"].update(seed=seed, trials=trials)
            measures = doc["controls"]["measures"]
            doc["controls"]["measures"] = {k: v for k, v in measures.items() if v is not None}
            docs[name] = doc
    header = (f"# Resolved scenario {loaded.name!r}: each variant as simulated, defaults filled in.\n"
              f"# Source sha256: {loaded.sha256}\n"
              f"# Run with seed {seed} and {trials} trials per variant; to tell one of its trials:\n"
              f"#   custodysim trace RUN_FOLDER --trial K [--variant NAME]\n")
    return header + yaml.safe_dump(docs, sort_keys=False, allow_unicode=True)
