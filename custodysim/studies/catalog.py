"""The library API behind ``custodysim runs``: a catalog of the runs, sweeps and attributions in a results folder.

The catalog is built from the folders themselves: every output folder under the results folder (at any
depth, so that runs copied in from elsewhere, or filed by quarter, just appear) is read once, and what
was read is kept in an index beside them (``.catalog.sqlite``, SQLite) keyed by the folder's path and the
names, sizes and times of its files. A folder that changes, appears or goes is read again, or dropped,
the next time the catalog is asked for; an index written by another version, damaged or unreadable is
rebuilt; one that cannot be written (a read-only folder) is built in memory. The index is a cache: delete
it and nothing is lost.

Every folder is listed with its state: ``complete``; ``broken`` (a file missing or damaged, with the
reason); ``partial`` (an interrupted run, kept to be resumed); ``in progress`` (a live process holds it).
A folder is never refused: listing a damaged folder says what is wrong with it.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sqlite3
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml

from custodysim import __version__
from custodysim.analysis.stats import share_ci95
from custodysim.errors import OptionError, RunFolderError
from custodysim.reporting.trendreport import render_trend_html, render_trend_markdown
from custodysim.running.outputs import (
    default_run_dir,
    in_progress,
    json_text,
    replace_files,
    staged_folder,
    write_rows,
)
from custodysim.running.runfolder import SCENARIO_COPY, check_summary, read_manifest

INDEX = ".catalog.sqlite"
"""The index's file, in the results folder."""
READER = f"1:{__version__}"
"""What read the folders into the index: an index written by another reader is rebuilt."""
MARKERS = ("manifest.json", "summary.json", "sweep.json", "trials.csv", "trials.parquet")
"""Files that make a folder an output of custodysim (complete or not); other folders are looked into."""
NOT_LISTED = ("comparison.json", "trend.json")
"""Files of outputs that are not runs (a comparison, a trend page): such a folder is neither listed nor looked into."""
DEPTH = 4
"""How deep under the results folder output folders are looked for."""
FIGURES = ("expected_loss_usd", "expected_loss_ci95_usd", "p_any_loss", "es99_usd", "trials")
"""The figures of each variant the catalog keeps."""


@dataclass(frozen=True)
class Entry:
    """One folder of the catalog: what it holds, in what state, and its headline figures.

    Attributes:
        folder: the folder's path under the results folder (``/``-separated).
        kind: ``run``, ``sweep``, ``attribution``, or ``unknown`` (a folder too damaged to tell).
        status: ``complete``, ``broken``, ``partial`` or ``in progress``.
        problem: why a folder is broken, or what a partial or live one holds (empty when complete).
        created_utc: when it was made (the manifest's time; the folder's own time when it has none).
        figures: each variant's (or grid point's) expected loss with its 95% CI, P(loss > 0) with its
            95% CI, ES 99 (None where the output has none) and trials.
        best: the variant with the lowest expected loss, if it is lower than the baseline's.
    """

    folder: str
    kind: str
    status: str
    created_utc: str
    problem: str = ""
    scenario: str | None = None
    seed: int | None = None
    trials: int | None = None
    version: str | None = None
    scenario_sha256: str | None = None
    baseline: str | None = None
    figures: dict[str, dict[str, Any]] = field(default_factory=dict)
    best: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """Return the entry as JSON-ready data."""
        return asdict(self)

    @property
    def complete(self) -> bool:
        """Whether the folder is a complete output."""
        return self.status == "complete"


@dataclass(frozen=True)
class Catalog:
    """The folders under a results folder, newest first, and whether the index could be kept on disk."""

    root: Path
    entries: list[Entry]
    index_kept: bool

    def scenarios(self) -> list[str]:
        """Return the names of the scenarios of the catalog, sorted."""
        return sorted({e.scenario for e in self.entries if e.scenario is not None})

    def of(self, scenario: str) -> list[Entry]:
        """Return the entries of one scenario, newest first.

        Raises:
            OptionError: no folder holds that scenario (the message lists those that do).
        """
        found = [e for e in self.entries if e.scenario == scenario]
        if not found:
            raise OptionError(_unknown(scenario, self.scenarios(), self.root))
        return found


def _unknown(name: str, names: list[str], root: Path) -> str:
    known = ", ".join(names) if names else "none"
    return f"{root}: no run of a scenario named {name!r}; the scenarios with runs here: {known}"


def catalog(root: Path) -> Catalog:
    """Return the catalog of the output folders under ``root``, newest first, updating its index.

    Raises:
        RunFolderError: ``root`` is not a folder.
    """
    if not root.is_dir():
        what = "is not a folder" if root.exists() else "no such folder"
        raise RunFolderError(f"{root}: {what}; give the folder that holds the runs (by default results/)")
    index = root / INDEX
    cached = _load_index(index)
    fresh: dict[str, tuple[str, Entry]] = {}
    entries: list[Entry] = []
    for folder, staging in _outputs(root):
        key = folder.relative_to(root).as_posix()
        if staging:  # whether a run holds it changes without any file changing: never cached
            entries.append(_staging_entry(folder, key))
            continue
        stamp = _stamp(folder)
        hit = cached.get(key)
        entry = hit[1] if hit is not None and hit[0] == stamp else _read_output(folder, key)
        fresh[key] = (stamp, entry)
        entries.append(entry)
    kept = True
    if fresh.keys() != cached.keys() or any(cached[k][0] != s for k, (s, _) in fresh.items()) or not index.is_file():
        kept = _save_index(index, fresh)
    entries.sort(key=lambda e: (e.created_utc, e.folder), reverse=True)
    return Catalog(root, entries, kept)


def _outputs(root: Path, depth: int = 0) -> Iterator[tuple[Path, bool]]:
    """Yield every output folder under ``root`` (with whether it is a run's hidden staging folder)."""
    try:
        children = sorted(p for p in root.iterdir() if p.is_dir())
    except OSError:
        return
    for child in children:
        if child.name.startswith("."):
            if child.name.endswith(".partial"):
                yield child, True
            continue  # the index's own files, a replaced run on its way out, hidden folders
        try:
            names = {p.name for p in child.iterdir()}
        except OSError:
            yield child, False  # listed as broken: it cannot be read
            continue
        if any(m in names for m in NOT_LISTED):
            continue
        if any(m in names for m in MARKERS):
            yield child, False
        elif depth + 1 < DEPTH:
            yield from _outputs(child, depth + 1)


def _stamp(folder: Path) -> str:
    """Return the names, sizes and modification times of a folder's files: any change to it changes the stamp."""
    try:
        with os.scandir(folder) as it:
            files = sorted((e.name, e.stat().st_size, e.stat().st_mtime_ns) for e in it if e.is_file())
    except OSError as exc:
        return f"unreadable: {exc.strerror}"
    return json.dumps(files)


def _folder_time(folder: Path) -> str:
    """Return the folder's modification time as an ISO UTC stamp (when its manifest gives none)."""
    try:
        seconds = folder.stat().st_mtime
    except OSError:
        seconds = 0.0
    return datetime.fromtimestamp(seconds, timezone.utc).isoformat(timespec="seconds")


def _read_output(folder: Path, key: str) -> Entry:
    """Read one output folder into an entry: complete, or broken with the reason; never raise."""
    try:
        return _complete_entry(folder, key)
    except RunFolderError as exc:
        return _broken(folder, key, str(exc))
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        return _broken(folder, key, f"{folder}: cannot be read as an output of custodysim ({exc})")


def _broken(folder: Path, key: str, problem: str) -> Entry:
    """Return a broken folder's entry, with what can still be read of its manifest."""
    manifest = _json_object(folder / "manifest.json")
    summary = _json_object(folder / "summary.json") or _json_object(folder / "sweep.json")
    created = manifest.get("created_utc")
    return Entry(folder=key, kind=_kind(manifest, folder) if manifest else "unknown", status="broken",
                 created_utc=created if isinstance(created, str) else _folder_time(folder), problem=problem,
                 scenario=_text(summary.get("scenario")), seed=_whole(manifest.get("seed")),
                 trials=_whole(manifest.get("trials")), version=_text(manifest.get("version")),
                 scenario_sha256=_text(manifest.get("scenario_sha256")))


def _json_object(path: Path) -> dict[str, Any]:
    """Return a JSON file's object, or an empty one if it is missing, unreadable or not an object."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _text(v: object) -> str | None:
    return v if isinstance(v, str) else None


def _whole(v: object) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def _number(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _kind(manifest: dict[str, Any], folder: Path) -> str:
    """Return what an output folder holds, by its manifest (a run's and an attribution's name no kind)."""
    if manifest.get("kind") == "sweep" or (folder / "sweep.json").is_file():
        return "sweep"
    if "controls" in manifest:
        return "attribution"
    return "run"


def _complete_entry(folder: Path, key: str) -> Entry:
    """Return a complete folder's entry.

    The manifest, the scenario copy (its sha256) and the summary's figures are checked, and every file
    the manifest lists must be there; the trial rows are not read again (``custodysim compare`` does).

    Raises:
        RunFolderError: the folder is not complete, or a file is damaged.
    """
    if not (folder / "manifest.json").is_file():
        raise RunFolderError(f"{folder}: no manifest.json, which is written last: the folder is incomplete (an "
                             "interrupted copy?) or not an output of custodysim")
    manifest = read_manifest(folder)
    kind = _kind(manifest, folder)
    listed = manifest.get("files")
    listed = listed if isinstance(listed, list) else []
    missing = [f for f in listed if isinstance(f, str) and not (folder / f).is_file()]
    if missing:
        raise RunFolderError(f"{folder}: {', '.join(missing)} missing (manifest.json lists "
                             f"{'it' if len(missing) == 1 else 'them'}); the folder is incomplete")
    path = folder / ("sweep.json" if kind == "sweep" else "summary.json")
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RunFolderError(f"{folder}: {path.name} is missing; the folder is incomplete") from None
    except (OSError, ValueError) as exc:
        raise RunFolderError(f"{path}: cannot be read as JSON ({exc})") from None
    if kind == "attribution":
        baseline, figures = _attribution_figures(path, summary)
    else:
        check_summary(path, summary)
        baseline = summary["baseline"]
        figures = {name: _figures(v, summary["trials"]) for name, v in summary["variants"].items()}
    if baseline not in figures:
        raise RunFolderError(f"{path}: baseline {baseline!r} has no figures; the file is damaged")
    created = manifest.get("created_utc") or _folder_time(folder)
    return Entry(folder=key, kind=kind, status="complete", created_utc=created,
                 scenario=summary["scenario"], seed=manifest["seed"], trials=manifest["trials"],
                 version=manifest.get("version"), scenario_sha256=manifest.get("scenario_sha256"), baseline=baseline,
                 figures=figures, best=_best(figures, baseline))


def _figures(v: dict[str, Any], trials: int) -> dict[str, Any]:
    """Return the figures the catalog keeps of one variant of a summary."""
    n: Any = v.get("trials", trials)
    p: Any = v.get("p_any_loss")
    ci: Any = v.get("expected_loss_ci95_usd", v.get("ci95_usd"))
    pair = [float(x) for x in ci] if isinstance(ci, list) and len(ci) == 2 and all(map(_number, ci)) else None
    return {"expected_loss_usd": v.get("expected_loss_usd"), "expected_loss_ci95_usd": pair,
            "p_any_loss": p, "p_any_loss_ci95": list(share_ci95(p, n)) if _number(p) and _number(n) else None,
            "es99_usd": v.get("es99_usd"), "trials": n}


def _attribution_figures(path: Path, summary: object) -> tuple[str, dict[str, dict[str, Any]]]:
    """Return an attribution's baseline and the figures of each combination it reports.

    Raises:
        RunFolderError: summary.json is not an attribution's.
    """
    def damaged(what: str) -> RunFolderError:
        return RunFolderError(f"{path}: {what}; the file is damaged")

    if not isinstance(summary, dict):
        raise damaged("should hold a JSON object")
    for k in ("scenario", "baseline"):
        if not isinstance(summary.get(k), str):
            raise damaged(f"{k} should be text")
    trials = summary.get("trials")
    runs = summary.get("runs")
    if not isinstance(trials, int) or not isinstance(runs, dict) or not runs:
        raise damaged("trials and runs (the combinations simulated) are missing")
    figures = {}
    for name, v in runs.items():
        if not isinstance(v, dict) or not _number(v.get("expected_loss_usd")):
            raise damaged(f"runs.{name}.expected_loss_usd should be a number")
        figures[name] = _figures(v, trials)
    return summary["baseline"], figures


def _best(figures: dict[str, dict[str, Any]], baseline: str) -> str | None:
    """Return the variant with the lowest expected loss, if it is below the baseline's (ties: the first)."""
    base = figures[baseline]["expected_loss_usd"]
    others = [(v["expected_loss_usd"], i, n) for i, (n, v) in enumerate(figures.items())
              if n != baseline and _number(v["expected_loss_usd"])]
    if not others or not _number(base):
        return None
    loss, _, name = min(others)
    return name if loss < base else None


def _staging_entry(staging: Path, key: str) -> Entry:
    """Return the entry of a hidden staging folder: a run in progress, or one interrupted and kept."""
    final = staging.with_name(staging.name[1:-len(".partial")])
    plan = _json_object(staging / "run.json")
    scenario = None
    with contextlib.suppress(OSError, yaml.YAMLError, ValueError):
        doc = yaml.safe_load((staging / SCENARIO_COPY).read_text(encoding="utf-8"))
        scenario = _text(doc.get("name")) if isinstance(doc, dict) else None
    if in_progress(staging):
        status, problem = "in progress", f"being written by a live process to {final}"
    else:
        try:
            chunks = sum(1 for _ in (staging / "chunks").glob("*.chunk"))
        except OSError:
            chunks = 0
        status = "partial"
        problem = (f"interrupted with {chunks} chunk{'s' if chunks != 1 else ''} of trials kept; finish it with "
                   f"'custodysim run --resume {final}', or delete {staging}") if plan else \
            f"interrupted before anything could be resumed; delete {staging}"
    return Entry(folder=key, kind="run" if plan else "unknown", status=status, created_utc=_folder_time(staging),
                 problem=problem, scenario=scenario, seed=_whole(plan.get("seed")), trials=_whole(plan.get("trials")),
                 scenario_sha256=_text(plan.get("scenario_sha256")))


def _load_index(path: Path) -> dict[str, tuple[str, Entry]]:
    """Return what the index holds (folder -> stamp and entry), or nothing if it is missing, stale or damaged."""
    if not path.is_file():
        return {}
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            (reader,) = db.execute("SELECT value FROM meta WHERE key = 'reader'").fetchone()
            if reader != READER:
                return {}
            rows = db.execute("SELECT folder, stamp, entry FROM folders").fetchall()
        return {folder: (stamp, Entry(**json.loads(entry))) for folder, stamp, entry in rows}
    except (sqlite3.Error, ValueError, TypeError):
        return {}  # damaged, or of another shape: rebuilt


def _save_index(path: Path, entries: dict[str, tuple[str, Entry]]) -> bool:
    """Write the index aside and rename it into place; return False if the folder cannot take it."""
    tmp = path.with_name(f"{INDEX}.{os.getpid()}.tmp")
    try:
        tmp.unlink(missing_ok=True)
        with contextlib.closing(sqlite3.connect(tmp)) as db:
            db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            db.execute("CREATE TABLE folders (folder TEXT PRIMARY KEY, stamp TEXT NOT NULL, entry TEXT NOT NULL)")
            db.execute("INSERT INTO meta VALUES ('reader', ?)", (READER,))
            db.executemany("INSERT INTO folders VALUES (?, ?, ?)",
                           [(k, s, json.dumps(e.as_dict())) for k, (s, e) in entries.items()])
            db.commit()
        os.replace(tmp, path)
        return True
    except (OSError, sqlite3.Error):
        with contextlib.suppress(OSError):
            tmp.unlink()
        return False


def trend(cat: Catalog, scenario: str) -> dict[str, Any]:
    """Return the trend of a scenario's complete runs: one point per run, oldest first, and where the file changed.

    Raises:
        OptionError: no folder holds the scenario, or none of its folders is a complete run.
    """
    entries = cat.of(scenario)
    runs = sorted((e for e in entries if e.kind == "run" and e.complete), key=lambda e: (e.created_utc, e.folder))
    if not runs:
        kinds = ", ".join(sorted({f"{e.status} {e.kind}" for e in entries}))
        raise OptionError(f"{cat.root}: no complete run of {scenario!r} to draw (its folders: {kinds})")
    variants: list[str] = []
    baselines = {e.baseline for e in runs}
    for e in runs:
        for name in e.figures:
            if name not in variants:
                variants.append(name)
    variants.sort(key=lambda n: n not in baselines)  # the baseline first, the rest in the order they appeared
    points = []
    for i, e in enumerate(runs):
        changed = i > 0 and e.scenario_sha256 != runs[i - 1].scenario_sha256
        points.append({"folder": e.folder, "created_utc": e.created_utc, "seed": e.seed, "trials": e.trials,
                       "version": e.version, "scenario_sha256": e.scenario_sha256, "scenario_changed": changed,
                       "baseline": e.baseline, "variants": e.figures})
    return {"scenario": scenario, "root": str(cat.root), "variants": variants,
            "baseline": runs[-1].baseline, "points": points,
            "others": [{"folder": e.folder, "kind": e.kind, "status": e.status} for e in entries
                       if not (e.kind == "run" and e.complete)]}


TREND_FILES = ("trend.html", "trend.md", "trend.csv", "trend.json")
TREND_COLUMNS = ("created_utc", "folder", "variant", "baseline", "expected_loss_usd", "expected_loss_ci95_low_usd",
                 "expected_loss_ci95_high_usd", "p_any_loss", "p_any_loss_ci95_low", "p_any_loss_ci95_high",
                 "es99_usd", "trials", "seed", "version", "scenario_sha256", "scenario_changed")
"""The columns of trend.csv: one row per run and variant."""


def trend_rows(data: dict[str, Any]) -> list[dict[str, Any]]:
    """Return trend.csv's rows: one per run and variant, oldest run first."""
    rows = []
    for p in data["points"]:
        for name in data["variants"]:
            v = p["variants"].get(name)
            if v is None:
                continue
            ci = v["expected_loss_ci95_usd"] or [None, None]
            pci = v["p_any_loss_ci95"] or [None, None]
            rows.append({"created_utc": p["created_utc"], "folder": p["folder"], "variant": name,
                         "baseline": name == p["baseline"], "expected_loss_usd": v["expected_loss_usd"],
                         "expected_loss_ci95_low_usd": ci[0], "expected_loss_ci95_high_usd": ci[1],
                         "p_any_loss": v["p_any_loss"], "p_any_loss_ci95_low": pci[0], "p_any_loss_ci95_high": pci[1],
                         "es99_usd": v["es99_usd"], "trials": v["trials"], "seed": p["seed"], "version": p["version"],
                         "scenario_sha256": p["scenario_sha256"], "scenario_changed": p["scenario_changed"]})
    return rows


def write_trend(root: Path, scenario: str, out: Path | None = None,
                replace: bool = False) -> tuple[Path, dict[str, Any]]:
    """Write the trend page of a scenario (trend.html, trend.md, trend.csv, trend.json) to a new folder.

    Args:
        root: the results folder.
        scenario: the scenario's name (as its runs' summaries give it).
        out: the folder to write (default: ``<root>/<scenario>-trend-<time>``).
        replace: replace ``out`` if it holds a previous trend page.

    Raises:
        RunFolderError: ``root`` is not a folder, or ``out`` exists (and may not be replaced).
        OptionError: no complete run of ``scenario`` is there.
        WriteError: a file cannot be written (no folder is left).
    """
    data = trend(catalog(root), scenario)
    folder = out if out is not None else default_run_dir(f"{scenario}-trend", root=root)
    with staged_folder(folder, replace, keep_unfinished=False) as staging:
        replace_files({staging / "trend.json": json_text(data),
                       staging / "trend.csv": lambda p: write_rows(p, trend_rows(data), TREND_COLUMNS),
                       staging / "trend.md": render_trend_markdown(data),
                       staging / "trend.html": render_trend_html(data),
                       # --replace replaces a folder with a manifest; the trend's says what made it
                       staging / "manifest.json": json_text({"package": "custodysim", "version": __version__,
                                                             "kind": "trend", "scenario": scenario,
                                                             "created_utc": datetime.now(timezone.utc).isoformat(
                                                                 timespec="seconds"),
                                                             "runs": [p["folder"] for p in data["points"]],
                                                             "files": [*TREND_FILES, "manifest.json"]})})
    return folder, data
