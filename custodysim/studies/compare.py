"""Comparing separate runs: two versions of an architecture, or this quarter against the last.

Every (run, variant) pair is an entry, labelled ``<run folder name>:<variant>``; the reference is the
first run's baseline. Each entry's difference in expected loss against the reference is *paired* trial
by trial when both come from the same scenario file (and baseline name), seed and trial count: trial
``k`` then drew the same named random streams in both, and the CI of the per-trial differences is far
narrower. Otherwise the difference is *unpaired* (Welch-style CI) and the output says why.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from custodysim import __version__
from custodysim.analysis.economics import DAYS_PER_YEAR, annualised, tail_figures
from custodysim.errors import RunFolderError
from custodysim.reporting.report import render_comparison_html, render_comparison_markdown
from custodysim.running.outputs import default_run_dir, ensure_new, json_text, replace_files, staged_folder
from custodysim.running.precision import Z95, mean_ci
from custodysim.running.rows import VariantRows
from custodysim.running.runfolder import FIGURES, StoredRun, read_run
from custodysim.studies.provenance import Command, as_typed, comparison_manifest, write_manifest

FILES = ("comparison.html", "comparison.md", "comparison.json", "manifest.json")
"""The files of a comparison folder, in the order a reader wants them; manifest.json is written last."""

PAIRED = "paired trial by trial (same scenario, seed and trials)"

HOW_TO_READ = (
    "Paired: both entries ran the same scenario file with the same seed and trial count, so trial k drew "
    "the same named random streams in both and the difference is taken trial by trial. What is common to "
    "both cancels, and the CI shows only what the change itself does: a paired CI that excludes 0 means "
    "the change is real at this trial count. Unpaired: the runs cannot be matched trial for trial "
    "(another seed, another trial count or another scenario), so the difference is taken as one of two "
    "independent estimates; its CI (sqrt(var_a/n_a + var_b/n_b)) carries the noise of both and is much "
    "wider. An unpaired CI that includes 0 does not show that nothing changed, only that these trial "
    "counts cannot tell."
)



@dataclass(frozen=True)
class RunInfo:
    """One compared run: where it is, how it was made, and how it pairs with the reference run."""

    label: str
    folder: str
    scenario: str
    scenario_file: str | None
    scenario_sha256: str | None
    seed: int | None
    trials: int | None
    horizon_days: float | None
    version: str | None
    created_utc: str | None
    baseline: str
    variants: list[str]
    paired: bool
    pairing: str


@dataclass(frozen=True)
class Entry:
    """One (run, variant) pair: its figures and its difference in expected loss against the reference."""

    label: str
    run: str
    variant: str
    is_reference: bool
    trials: int
    expected_loss_usd: float
    expected_loss_ci95_usd: list[float]
    p_any_loss: float
    var99_usd: float
    es99_usd: float
    diff_vs_reference_usd: float
    diff_ci95_usd: list[float]
    diff_ci95_unpaired_usd: list[float]
    paired: bool
    pairing: str
    control_cost_usd: float | None = None
    """The yearly control cost the run's summary.json states (None for a run made before control costs)."""
    total_cost_of_risk_usd: float | None = None
    """The expected loss annualised from the run's horizon, plus ``control_cost_usd``."""


@dataclass(frozen=True)
class Comparison:
    """A comparison of two or more runs, and the folder it was written to."""

    folder: Path
    reference: str
    created_utc: str
    runs: list[RunInfo]
    entries: list[Entry]
    notes: list[str] = field(default_factory=list)

    @property
    def files(self) -> tuple[str, ...]:
        """The files of the comparison folder, in the order a reader wants them."""
        return FILES

    def entry(self, label: str) -> Entry:
        """Return the entry labelled ``<run>:<variant>``.

        Raises:
            KeyError: no entry has that label.
        """
        for e in self.entries:
            if e.label == label:
                return e
        raise KeyError(label)

    def as_dict(self) -> dict[str, Any]:
        """Return the content of comparison.json."""
        return {
            "reference": self.reference,
            "created_utc": self.created_utc,
            "version": __version__,
            "units": "USD per horizon (the first year of exposure when horizon_days is 365)",
            "how_to_read": HOW_TO_READ,
            "notes": list(self.notes),
            "runs": [asdict(r) for r in self.runs],
            "entries": [asdict(e) for e in self.entries],
        }


def compare_runs(folders: list[Path], out: Path | None = None, replace: bool = False,
                 command: Command | None = None) -> Comparison:
    """Compare two or more run folders and write comparison.json, comparison.md, comparison.html and the manifest.

    Args:
        folders: complete run folders; the first run's baseline is the reference.
        out: the comparison folder to create (default: ``results/compare-<first folder name>-<UTC time>``).
        replace: replace ``out`` if it holds a previous complete comparison (or run), once the new one is
            complete.
        command: the command line as typed, recorded in the manifest (None, for a call from Python: the
            manifest's ``command`` is null and its ``wall_seconds`` times this call).

    Raises:
        RunFolderError: fewer than two folders, the same folder twice, a folder that is not a complete
            run, ``out`` is or holds one of the runs, or ``out`` exists already (and may not be replaced).
    """
    started = time.perf_counter()
    folders = [Path(f) for f in folders]
    if len(folders) < 2:
        raise RunFolderError(f"compare needs at least two run folders (got {len(folders)})")
    seen: dict[Path, Path] = {}
    for f in folders:
        key = f.resolve()
        if key in seen:
            raise RunFolderError(f"{f}: given twice (as {seen[key]} and {f}); compare different runs")
        seen[key] = f
    folder = out if out is not None else default_run_dir(f"compare-{folders[0].resolve().name}")
    for f in folders:
        if folder.resolve() == f.resolve() or folder.resolve() in f.resolve().parents:
            raise RunFolderError(f"{folder}: {'is' if folder.resolve() == f.resolve() else 'holds'} the run {f} "
                                 "being compared; choose another --out")
    ensure_new(folder, replace)  # fail before reading the runs, not after
    runs = [read_run(f, "compare") for f in folders]
    comparison = build_comparison(runs, folder)
    write_comparison(comparison, replace, as_typed(command, folder), command.started if command else started)
    return comparison


def build_comparison(runs: list[StoredRun], folder: Path) -> Comparison:
    """Return the comparison of ``runs`` (the first one's baseline is the reference); write nothing.

    The runs come from :func:`custodysim.running.runfolder.read_run`, which has checked that each run's files fit
    together.
    """
    labels = _labels([r.folder for r in runs])
    ref_run = runs[0]
    ref_base = _rows(ref_run, ref_run.summary["baseline"])
    ref_label = f"{labels[0]}:{ref_base.name}"
    notes: list[str] = []
    infos: list[RunInfo] = []
    entries: list[Entry] = []
    for i, (run, label) in enumerate(zip(runs, labels, strict=True)):
        if i == 0:
            paired, pairing = True, f"the reference run: its variants are {PAIRED}"
        else:
            reasons = _unpaired_reasons(ref_run, run)
            paired = not reasons
            pairing = PAIRED if paired else "unpaired: " + "; ".join(reasons)
            notes += _caveats(labels[0], ref_run, label, run, paired)
        infos.append(_run_info(run, label, paired, pairing))
        for rows in run.rows:
            entry = _entry(label, rows, ref_base, paired, pairing if i else f"same run: {PAIRED}",
                           is_reference=(i == 0 and rows.name == ref_base.name))
            entries.append(_with_costs(entry, run))
            notes += _summary_mismatches(run, label, rows.name, entries[-1])
    return Comparison(folder, ref_label, datetime.now(timezone.utc).isoformat(timespec="seconds"), infos,
                      entries, notes)


def write_comparison(comparison: Comparison, replace: bool = False, command: list[str] | None = None,
                     since: float | None = None) -> None:
    """Write the comparison folder (comparison.json, .md, .html, manifest.json), which appears only when complete.

    Args:
        comparison: what to write, and where.
        replace: replace the folder if it holds a previous complete comparison (or run).
        command: the command line to record in the manifest (see :func:`~custodysim.studies.provenance.as_typed`).
        since: when the command started (:func:`time.perf_counter`), for the manifest's ``wall_seconds``
            (default: now).

    Raises:
        RunFolderError: the folder exists already (and may not be replaced) or cannot be created.
        WriteError: a file cannot be written (no folder is left).
    """
    since = time.perf_counter() if since is None else since
    data = comparison.as_dict()
    manifest = comparison_manifest(command, comparison.created_utc, list(FILES))
    with staged_folder(comparison.folder, replace, keep_unfinished=False) as staging:
        replace_files({staging / "comparison.json": json_text(data),
                       staging / "comparison.md": render_comparison_markdown(data),
                       staging / "comparison.html": render_comparison_html(data)})
        write_manifest(staging, manifest, since)  # written last: its presence marks completeness


def _labels(folders: list[Path]) -> list[str]:
    """Return each folder's name, with as many parent folders as needed to tell them apart."""
    parts = [f.resolve().parts for f in folders]
    depth = 1
    while True:
        labels = ["/".join(p[-depth:]) for p in parts]
        if len(set(labels)) == len(labels) or depth >= max(len(p) for p in parts):
            return labels
        depth += 1


def _rows(run: StoredRun, variant: str) -> VariantRows:
    for r in run.rows:
        if r.name == variant:
            return r
    raise RunFolderError(f"{run.folder}: trials.csv has no rows for the baseline {variant!r}")


def _unpaired_reasons(ref: StoredRun, run: StoredRun) -> list[str]:
    """Return why ``run`` cannot be paired with the reference run trial by trial (empty: it can)."""
    reasons = []
    a, b = ref.manifest, run.manifest
    if a.get("scenario_file") != b.get("scenario_file"):
        reasons.append(f"different scenario files {a.get('scenario_file')} vs {b.get('scenario_file')}")
    if ref.summary["baseline"] != run.summary["baseline"]:
        reasons.append(f"different baseline variants {ref.summary['baseline']!r} vs {run.summary['baseline']!r}")
    if a.get("seed") is None or b.get("seed") is None:
        reasons.append("seed not recorded")
    elif a["seed"] != b["seed"]:
        reasons.append(f"different seeds {a['seed']} vs {b['seed']}")
    if a.get("trials") is None or b.get("trials") is None:
        reasons.append("trial count not recorded")
    elif a["trials"] != b["trials"]:
        reasons.append(f"different trial counts {a['trials']} vs {b['trials']}")
    if not reasons:
        ta = np.sort(_rows(ref, ref.summary["baseline"]).numbers["trial"])
        tb = np.sort(run.rows[0].numbers["trial"])
        if not np.array_equal(ta, tb):
            reasons.append("trial numbers do not line up")
    return reasons


def _caveats(ref_label: str, ref: StoredRun, label: str, run: StoredRun, paired: bool) -> list[str]:
    """Return what a reader should know about comparing ``run`` with the reference beyond pairing."""
    a, b = ref.manifest, run.manifest
    notes = []
    ha, hb = ref.summary.get("horizon_days"), run.summary.get("horizon_days")
    if ha != hb:
        notes.append(f"{label}: horizon {hb} days against {ha} in {ref_label}: losses are per horizon, "
                     "so expected losses are not directly comparable")
    if paired and a.get("scenario_sha256") != b.get("scenario_sha256"):
        notes.append(f"{label}: {b.get('scenario_file')} was changed since {ref_label} (sha256 "
                     f"{str(a.get('scenario_sha256'))[:12]} vs {str(b.get('scenario_sha256'))[:12]}); still "
                     "paired on the same named random streams, and the difference includes the edits")
    same_streams = (a.get("scenario_file") == b.get("scenario_file") and a.get("seed") == b.get("seed")
                    and a.get("seed") is not None and ref.summary["baseline"] == run.summary["baseline"])
    if not paired and same_streams and a.get("trials") != b.get("trials"):
        shared = min(int(a.get("trials") or 0), int(b.get("trials") or 0))
        notes.append(f"{label}: same seed and scenario file as {ref_label}, so its trials 0 to {shared - 1} drew "
                     "the same random numbers as the reference's; the unpaired CI ignores that overlap and is "
                     "wider than it needs to be (rerun with equal trial counts to pair them)")
    if paired and a.get("version") != b.get("version"):
        notes.append(f"{label}: made with custodysim {b.get('version')}, {ref_label} with {a.get('version')}; "
                     "pairing assumes both versions draw the same random streams")
    return notes


def _run_info(run: StoredRun, label: str, paired: bool, pairing: str) -> RunInfo:
    m, s = run.manifest, run.summary
    return RunInfo(
        label=label, folder=str(run.folder), scenario=str(s.get("scenario", "")),
        scenario_file=m.get("scenario_file"), scenario_sha256=m.get("scenario_sha256"), seed=m.get("seed"),
        trials=m.get("trials"), horizon_days=s.get("horizon_days"), version=m.get("version"),
        created_utc=m.get("created_utc"), baseline=s["baseline"], variants=[r.name for r in run.rows],
        paired=paired, pairing=pairing,
    )


def _by_trial(rows: VariantRows) -> np.ndarray:
    """Return the per-trial loss ordered by trial number."""
    return rows.loss[np.argsort(rows.numbers["trial"], kind="stable")]


def _entry(run_label: str, rows: VariantRows, ref: VariantRows, paired: bool, pairing: str,
           is_reference: bool) -> Entry:
    loss = rows.loss
    mean, low, high = mean_ci(loss)
    tail = tail_figures(loss)
    diff = mean - float(np.mean(ref.loss))
    welch = _welch_half(loss, ref.loss)
    if paired:
        diff, d_low, d_high = mean_ci(_by_trial(rows) - _by_trial(ref))
    else:
        d_low, d_high = diff - welch, diff + welch
    return Entry(
        label=f"{run_label}:{rows.name}", run=run_label, variant=rows.name, is_reference=is_reference,
        trials=len(loss), expected_loss_usd=mean, expected_loss_ci95_usd=[low, high],
        p_any_loss=float(np.mean(loss > 0)) if len(loss) else 0.0, var99_usd=tail["var99_usd"],
        es99_usd=tail["es99_usd"], diff_vs_reference_usd=diff, diff_ci95_usd=[d_low, d_high],
        diff_ci95_unpaired_usd=[diff - welch, diff + welch], paired=paired, pairing=pairing,
    )


def _with_costs(entry: Entry, run: StoredRun) -> Entry:
    """Return ``entry`` with the control cost its run's summary states and the total cost of risk."""
    costs = run.summary.get("variants", {}).get(entry.variant, {}).get("costs") or {}
    cost = costs.get("control_cost_usd")
    if cost is None:
        return entry
    horizon = float(run.summary.get("horizon_days", DAYS_PER_YEAR))
    return replace(entry, control_cost_usd=float(cost),
                   total_cost_of_risk_usd=annualised(entry.expected_loss_usd, horizon) + float(cost))


def _welch_half(a: np.ndarray, b: np.ndarray) -> float:
    """Return the half-width of the unpaired 95% CI of mean(a) - mean(b): Z95 * sqrt(va/na + vb/nb)."""
    var = sum(float(np.var(x, ddof=1)) / len(x) for x in (a, b) if len(x) > 1)
    return Z95 * math.sqrt(var)


def _summary_mismatches(run: StoredRun, label: str, variant: str, entry: Entry) -> list[str]:
    """Return a note for each figure of summary.json that trials.csv no longer reproduces."""
    stored = run.summary.get("variants", {}).get(variant, {})
    notes = []
    for key in FIGURES:
        x, y = stored.get(key), getattr(entry, key)
        if x is None or not math.isclose(float(x), y, rel_tol=1e-9, abs_tol=1e-6):
            notes.append(f"{label}:{variant}: {key} in summary.json ({x}) differs from trials.csv ({y}); "
                         "the figures here are recomputed from trials.csv")
    return notes
