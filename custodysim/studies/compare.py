"""Comparing separate runs: two versions of an architecture, or this quarter against the last.

Each variant of another run is *matched* with its namesake in the first (reference) run (the baselines
with each other whatever their names), and its change in expected loss a year is the answer. Every
(run, variant) pair is also an entry, labelled ``<run folder name>:<variant>``, compared with the
reference run's baseline. Differences are *paired* trial by trial when both runs used the same seed and
trial count: random streams are keyed by name (:mod:`custodysim.simulation.randomness`), so trial ``k``
drew the same numbers for everything the two scenario files name alike, even when the files differ, and
the CI of the per-trial differences is far narrower. Otherwise the difference is *unpaired* (Welch-style
CI) and the output says why and how to pair the runs.
"""

from __future__ import annotations

import difflib
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
from custodysim.running.losses import VariantLosses
from custodysim.running.outputs import default_run_dir, ensure_new, json_text, replace_files, staged_folder
from custodysim.running.precision import Z95, mean_ci
from custodysim.running.runfolder import FIGURES, SCENARIO_COPY, StoredRun, read_run
from custodysim.studies.provenance import Command, as_typed, comparison_manifest, write_manifest

FILES = ("comparison.html", "comparison.md", "comparison.json", "manifest.json")
"""The files of a comparison folder, in the order a reader wants them; manifest.json is written last."""

PAIRED = "paired trial by trial (same seed and trial count)"

HOW_TO_READ = (
    "Paired: both runs used the same seed and trial count, so trial k drew the same named random streams in "
    "both: whatever the two scenario files name alike (a person, a system, a wallet, a threat) drew the same "
    "numbers, and the difference is taken trial by trial. What is common to both cancels, and the CI shows "
    "only what the change itself does: a paired CI that excludes 0 means the change is real at this trial "
    "count. When the files differ, the change is that of every difference between them. Unpaired: the runs "
    "cannot be matched trial for trial (another seed or another trial count), so the difference is taken as "
    "one of two independent estimates; its CI (sqrt(var_a/n_a + var_b/n_b)) carries the noise of both and is "
    "much wider. An unpaired CI that includes 0 does not show that nothing changed, only that these trial "
    "counts cannot tell."
)

DIFF_LINES = 60
"""Lines of a scenario file's difference with the reference's that a comparison shows at most."""


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
    how_to_pair: str = ""
    """For an unpaired run: how to make runs that pair, ending before ``pair_commands`` (empty when paired)."""
    pair_commands: list[str] = field(default_factory=list)
    """For an unpaired run: the commands that make runs of both scenario files that pair with each other."""
    scenario_change: str = ""
    """How its scenario file differs from the reference's, by name and sha256 (empty: the same file)."""
    scenario_diff: list[str] = field(default_factory=list)
    """The unified difference of its scenario copy with the reference's, cut at :data:`DIFF_LINES` lines."""


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
class Match:
    """A variant of another run and its namesake in the reference run (the baselines match whatever their names).

    Figures are USD a year: each run's losses are annualised from its own horizon. ``change_usd`` is this
    run's expected loss less the reference's: positive is more loss.
    """

    variant: str
    reference_variant: str
    run: str
    reference_run: str
    is_baseline: bool
    trials: int
    expected_loss_usd: float
    expected_loss_ci95_usd: list[float]
    reference_expected_loss_usd: float
    reference_expected_loss_ci95_usd: list[float]
    change_usd: float
    change_ci95_usd: list[float]
    change_ci95_unpaired_usd: list[float]
    paired: bool


@dataclass(frozen=True)
class Comparison:
    """A comparison of two or more runs, and the folder it was written to."""

    folder: Path
    reference: str
    created_utc: str
    runs: list[RunInfo]
    entries: list[Entry]
    notes: list[str] = field(default_factory=list)
    matches: list[Match] = field(default_factory=list)
    curves: dict[str, list[VariantLosses]] = field(default_factory=dict, repr=False, compare=False)
    """Per matched variant (by its reference name), its rows in each run, named after the run: the charts' data."""

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

    def match(self, run: str, variant: str) -> Match:
        """Return the match of ``variant`` of the run labelled ``run`` (a baseline by either run's name for it).

        Raises:
            KeyError: that run has no such matched variant.
        """
        for m in self.matches:
            if m.run == run and variant in (m.variant, m.reference_variant):
                return m
        raise KeyError(f"{run}:{variant}")

    def as_dict(self) -> dict[str, Any]:
        """Return the content of comparison.json."""
        return {
            "reference": self.reference,
            "reference_run": self.runs[0].label,
            "created_utc": self.created_utc,
            "version": __version__,
            "units": "entries: USD per horizon (the first year of exposure when horizon_days is 365); "
                     "matches: USD a year",
            "how_to_read": HOW_TO_READ,
            "notes": list(self.notes),
            "runs": [asdict(r) for r in self.runs],
            "matches": [asdict(m) for m in self.matches],
            "entries": [asdict(e) for e in self.entries],
        }


def compare_runs(folders: list[Path], out: Path | None = None, replace: bool = False,
                 command: Command | None = None) -> Comparison:
    """Compare two or more run folders and write comparison.json, comparison.md, comparison.html and the manifest.

    Args:
        folders: complete run folders; the first one is the reference run.
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
    """Return the comparison of ``runs`` (the first one is the reference run); write nothing.

    The runs come from :func:`custodysim.running.runfolder.read_run`, which has checked that each run's files fit
    together (each variant holds trials 0 to N-1 once).
    """
    labels = _labels([r.folder for r in runs])
    ref_run = runs[0]
    ref_base = _rows(ref_run, ref_run.summary["baseline"])
    ref_label = f"{labels[0]}:{ref_base.name}"
    notes: list[str] = []
    infos: list[RunInfo] = []
    entries: list[Entry] = []
    matches: list[Match] = []
    curves: dict[str, list[VariantLosses]] = {}
    for i, (run, label) in enumerate(zip(runs, labels, strict=True)):
        if i == 0:
            info = _run_info(run, label, True, f"the reference run: its variants are {PAIRED}")
        else:
            reasons = _unpaired_reasons(ref_run, run)
            info = _run_info(run, label, not reasons, "unpaired: " + "; ".join(reasons) if reasons else PAIRED)
            if not info.paired:
                advice, commands = _how_to_pair(labels[0], ref_run, label, run)
                info = replace(info, how_to_pair=advice, pair_commands=commands)
            info = replace(info, scenario_change=_scenario_change(ref_run, run),
                           scenario_diff=_scenario_diff(labels[0], ref_run, label, run))
            notes += _caveats(labels[0], ref_run, label, run, info.paired)
            pairs = _matched(ref_run, run)
            matches += [_match(labels[0], ref_run, a, label, run, b, info.paired) for a, b in pairs]
            for a, b in pairs:
                curves.setdefault(a.name, [replace(a, name=labels[0])]).append(replace(b, name=label))
            notes += _unmatched(labels[0], ref_run, label, run, pairs)
        infos.append(info)
        for rows in run.losses:
            entry = _entry(label, rows, ref_base, info.paired, info.pairing if i else f"same run: {PAIRED}",
                           is_reference=(i == 0 and rows.name == ref_base.name))
            entries.append(_with_costs(entry, run))
            notes += _summary_mismatches(run, label, rows.name, entries[-1])
    return Comparison(folder, ref_label, datetime.now(timezone.utc).isoformat(timespec="seconds"), infos,
                      entries, notes, matches, curves)


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
                       staging / "comparison.html": render_comparison_html(data, comparison.curves)})
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


def _rows(run: StoredRun, variant: str) -> VariantLosses:
    for r in run.losses:
        if r.name == variant:
            return r
    raise RunFolderError(f"{run.folder}: {run.rows_file} has no rows for the baseline {variant!r}")


def _unpaired_reasons(ref: StoredRun, run: StoredRun) -> list[str]:
    """Return why ``run`` cannot be paired with the reference run trial by trial (empty: it can).

    Seed and trial count decide: streams are keyed by name, not by scenario file, so two files run with
    the same seed draw the same numbers in trial k for whatever they name alike.
    """
    reasons = []
    a, b = ref.manifest, run.manifest
    if a.get("seed") is None or b.get("seed") is None:
        reasons.append("seed not recorded")
    elif a["seed"] != b["seed"]:
        reasons.append(f"different seeds {a['seed']} vs {b['seed']}")
    if a.get("trials") is None or b.get("trials") is None:
        reasons.append("trial count not recorded")
    elif a["trials"] != b["trials"]:
        reasons.append(f"different trial counts {a['trials']} vs {b['trials']}")
    return reasons


def _how_to_pair(ref_label: str, ref: StoredRun, label: str, run: StoredRun) -> tuple[str, list[str]]:
    """Return how to get runs of these two scenarios that pair trial by trial, and the commands that make them.

    Either the change goes into a variant of one file (a run's variants always pair), or both files run
    with one seed and trial count (the reference's).
    """
    a, b = ref.manifest, run.manifest
    seed = a.get("seed") if a.get("seed") is not None else b.get("seed")
    trials = a.get("trials") or b.get("trials")
    options = f"--seed {seed if seed is not None else 'S'} --trials {trials or 'N'}"
    fa, fb = a.get("scenario_file") or "A.yaml", b.get("scenario_file") or "B.yaml"
    if fa == fb and a.get("scenario_sha256") == b.get("scenario_sha256"):
        return (f"To pair {label} with {ref_label}, rerun it with the reference's seed and trial count:",
                [f"custodysim run {fb} {options}"])
    return (f"To pair {label} with {ref_label}, put the change in a variant of one scenario file and run that "
            "file once (a run's variants are always paired), or run both files with the same seed and trial "
            "count:", [f"custodysim run {fa} {options}", f"custodysim run {fb} {options}"])


def _scenario_change(ref: StoredRun, run: StoredRun) -> str:
    """Say how ``run``'s scenario file differs from the reference's: another file, or the same one edited."""
    a, b = ref.manifest, run.manifest
    ha, hb = str(a.get("scenario_sha256") or "")[:12], str(b.get("scenario_sha256") or "")[:12]
    if ha == hb:
        return ""
    fa, fb = a.get("scenario_file"), b.get("scenario_file")
    if fa == fb:
        return f"{fb} was edited (sha256 {ha} then {hb})"
    return f"another scenario file: {fb} (sha256 {hb}) against {fa} ({ha})"


def _scenario_diff(ref_label: str, ref: StoredRun, label: str, run: StoredRun) -> list[str]:
    """Return the unified difference of the two runs' scenario copies (empty when equal or a copy is missing)."""
    try:
        old = (ref.folder / SCENARIO_COPY).read_text(encoding="utf-8").splitlines()
        new = (run.folder / SCENARIO_COPY).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return []
    lines = list(difflib.unified_diff(old, new, f"{ref_label}/{SCENARIO_COPY}", f"{label}/{SCENARIO_COPY}",
                                      n=1, lineterm=""))
    if len(lines) > DIFF_LINES:
        return [*lines[:DIFF_LINES], f"... ({len(lines) - DIFF_LINES} more lines)"]
    return lines


def _caveats(ref_label: str, ref: StoredRun, label: str, run: StoredRun, paired: bool) -> list[str]:
    """Return what a reader should know about comparing ``run`` with the reference beyond pairing."""
    a, b = ref.manifest, run.manifest
    notes = []
    ha, hb = ref.summary.get("horizon_days"), run.summary.get("horizon_days")
    if ha != hb:
        notes.append(f"{label}: horizon {hb} days against {ha} in {ref_label}: losses are per horizon, "
                     "so expected losses are not directly comparable")
    if paired and a.get("scenario_sha256") != b.get("scenario_sha256"):
        notes.append(f"{label}: {_scenario_change(ref, run)}; still paired with {ref_label} on the same named "
                     f"random streams (seed {b['seed']}, {b['trials']:,} trials): what the two files name alike drew "
                     "the same numbers, and the changes include every difference between the files")
    same_seed = a.get("seed") is not None and a.get("seed") == b.get("seed")
    if not paired and same_seed and a.get("trials") != b.get("trials"):
        shared = min(int(a.get("trials") or 0), int(b.get("trials") or 0))
        notes.append(f"{label}: same seed as {ref_label}, so its trials 0 to {shared - 1} drew the same random "
                     "numbers as the reference's; the unpaired CI ignores that overlap and is wider than it needs "
                     "to be (rerun with equal trial counts to pair them)")
    if paired and a.get("version") != b.get("version"):
        notes.append(f"{label}: made with custodysim {b.get('version')}, {ref_label} with {a.get('version')}; "
                     "pairing assumes both versions draw the same random streams")
    return notes


def _matched(ref: StoredRun, run: StoredRun) -> list[tuple[VariantLosses, VariantLosses]]:
    """Return (reference rows, run rows) of each variant both runs have, in the reference's order.

    The baselines are matched with each other whatever their names; any other variant with its namesake.
    """
    ref_base, base = ref.summary["baseline"], run.summary["baseline"]
    by_name = {r.name: r for r in run.losses}
    pairs = []
    for r in ref.losses:
        if r.name == ref_base:
            pairs.append((r, by_name[base]))
        elif r.name != base and r.name in by_name:
            pairs.append((r, by_name[r.name]))
    return pairs


def _unmatched(ref_label: str, ref: StoredRun, label: str, run: StoredRun,
               pairs: list[tuple[VariantLosses, VariantLosses]]) -> list[str]:
    """Return a note naming the variants of either run that have no namesake in the other."""
    ref_only = [r.name for r in ref.losses if r.name not in {a.name for a, _ in pairs}]
    run_only = [r.name for r in run.losses if r.name not in {b.name for _, b in pairs}]
    if not ref_only and not run_only:
        return []
    names = [f"{ref_label}:{n}" for n in ref_only] + [f"{label}:{n}" for n in run_only]
    return [f"{label}: not matched by name with {ref_label} (no namesake in the other run): {', '.join(names)}; "
            f"each is compared only with {ref_label}:{ref.summary['baseline']}"]


def _run_info(run: StoredRun, label: str, paired: bool, pairing: str) -> RunInfo:
    m, s = run.manifest, run.summary
    return RunInfo(
        label=label, folder=str(run.folder), scenario=str(s.get("scenario", "")),
        scenario_file=m.get("scenario_file"), scenario_sha256=m.get("scenario_sha256"), seed=m.get("seed"),
        trials=m.get("trials"), horizon_days=s.get("horizon_days"), version=m.get("version"),
        created_utc=m.get("created_utc"), baseline=s["baseline"], variants=[r.name for r in run.losses],
        paired=paired, pairing=pairing,
    )


def _yearly(run: StoredRun, rows: VariantLosses) -> np.ndarray:
    """Return the per-trial loss ordered by trial number and annualised from the run's horizon."""
    loss = rows.loss
    horizon = float(run.summary.get("horizon_days", DAYS_PER_YEAR))
    return loss if horizon == DAYS_PER_YEAR else loss * (DAYS_PER_YEAR / horizon)


def _match(ref_label: str, ref: StoredRun, ref_rows: VariantLosses, label: str, run: StoredRun, rows: VariantLosses,
           paired: bool) -> Match:
    a, b = _yearly(ref, ref_rows), _yearly(run, rows)
    mean_a, low_a, high_a = mean_ci(a)
    mean_b, low_b, high_b = mean_ci(b)
    diff = mean_b - mean_a
    welch = _welch_half(b, a)
    if paired:
        diff, low, high = mean_ci(b - a)
    else:
        low, high = diff - welch, diff + welch
    return Match(
        variant=rows.name, reference_variant=ref_rows.name, run=label, reference_run=ref_label,
        is_baseline=ref_rows.name == ref.summary["baseline"], trials=len(b), expected_loss_usd=mean_b,
        expected_loss_ci95_usd=[low_b, high_b], reference_expected_loss_usd=mean_a,
        reference_expected_loss_ci95_usd=[low_a, high_a], change_usd=diff, change_ci95_usd=[low, high],
        change_ci95_unpaired_usd=[diff - welch, diff + welch], paired=paired,
    )


def _entry(run_label: str, rows: VariantLosses, ref: VariantLosses, paired: bool, pairing: str,
           is_reference: bool) -> Entry:
    loss = rows.loss
    mean, low, high = mean_ci(loss)
    tail = tail_figures(loss)
    diff = mean - float(np.mean(ref.loss))
    welch = _welch_half(loss, ref.loss)
    if paired:
        diff, d_low, d_high = mean_ci(rows.loss - ref.loss)
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
    """Return a note for each figure of summary.json that the run's rows file no longer reproduces."""
    stored = run.summary.get("variants", {}).get(variant, {})
    notes = []
    for key in FIGURES:
        x, y = stored.get(key), getattr(entry, key)
        if x is None or not math.isclose(float(x), y, rel_tol=1e-9, abs_tol=1e-6):
            notes.append(f"{label}:{variant}: {key} in summary.json ({x}) differs from {run.rows_file} ({y}); "
                         f"the figures here are recomputed from {run.rows_file}")
    return notes
