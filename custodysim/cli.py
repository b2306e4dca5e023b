"""The ``custodysim`` command: a thin adapter from arguments to the library API.

Domain and validation errors become a message on stderr and exit code 1; an interrupted run exits
with 130 and leaves no run folder behind.
"""

from __future__ import annotations

import difflib
import json
import signal
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

from custodysim import __version__
from custodysim.errors import CustodysimError, OptionError, RunInterrupted
from custodysim.formatting import narrowing, number, pct, signed_usd, terminal_text, usd
from custodysim.reporting.report import change_words, controls_overlap, key_loss, match_name, rare_losses
from custodysim.running.executors import default_workers
from custodysim.running.outputs import RESULTS_DIR
from custodysim.running.rows import MAX_ROWS
from custodysim.scenario import library
from custodysim.scenario.loader import load_scenario
from custodysim.scenario.schema import json_schema
from custodysim.scenario.starter import write_starter
from custodysim.studies.attribution import execute_attribution
from custodysim.studies.catalog import Catalog, Entry, catalog, write_trend
from custodysim.studies.compare import Comparison, compare_runs
from custodysim.studies.provenance import Command
from custodysim.studies.run import DEFAULT_ROWS, execute_run, rerender, resume_run
from custodysim.studies.sweep import execute_sweep
from custodysim.studies.trace import trace_trial

TYPED = "custodysim.command"
"""Where the context keeps the command line as typed (a :class:`Command`), for the manifests."""


class _NamedArgument(TyperArgument):
    """An argument whose help shows its name and what it is, not its Python type (``<path>``)."""

    def display_type_rich(self, ctx: Any) -> str | None:
        return None


class _ValueOption(TyperOption):
    """An option whose help names the value it takes (``N``, ``FOLDER``), not its Python type (``<int>``).

    A flag (``--replace``) takes no value and shows none.
    """

    def display_type_rich(self, ctx: Any) -> str | None:
        if self.is_flag or self.count:
            return None
        return self.metavar or (self.name or "value").upper()


def _plain(params: list[Any]) -> list[Any]:
    """Return ``params``, each made to show in help without its Python type."""
    for param in params:
        if type(param) is TyperOption:
            param.__class__ = _ValueOption
        elif type(param) is TyperArgument:
            param.__class__ = _NamedArgument
    return params


class _Command(TyperCommand):
    """A command whose help names values, never types (see :class:`_ValueOption`)."""

    def get_params(self, ctx: Any) -> list[Any]:
        return _plain(super().get_params(ctx))


class _App(TyperGroup):
    """The ``custodysim`` command: keeps the command line as typed, and when it was read, for the manifests."""

    def get_params(self, ctx: Any) -> list[Any]:
        return _plain(super().get_params(ctx))

    def make_context(self, info_name: str | None, args: list[str], parent: Any = None, **extra: Any) -> Any:
        typed = Command(("custodysim", *args), time.perf_counter())
        ctx = super().make_context(info_name, args, parent, **extra)
        ctx.meta[TYPED] = typed
        return ctx


def _typed(ctx: typer.Context) -> Command | None:
    """Return the command line as typed (None if the command was not started through :data:`app`)."""
    typed = ctx.meta.get(TYPED)
    return typed if isinstance(typed, Command) else None


app = typer.Typer(
    cls=_App, add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
    help="Simulate what a crypto exchange's custody architecture would lose to a real attacker.",
)


class _Terminal(Console):
    """A console that prints what a scenario says as text: no rich markup, no highlighting, no control characters.

    A description or technique may hold ``[/x]`` (rich markup) or an escape sequence that would clear or
    recolour the reader's terminal; neither acts here. Tables take the console's no-markup default too.
    """

    def print(self, *objects: Any, **kwargs: Any) -> None:
        kwargs.setdefault("markup", False)
        kwargs.setdefault("highlight", False)
        super().print(*(terminal_text(o) if isinstance(o, str) else o for o in objects), **kwargs)


# Piped output is not squeezed into 80 columns: tables stay readable in logs and CI.
# No emoji codes: "file.yaml:100:" must not become a picture.
out = _Terminal(width=None if sys.stdout.isatty() else 120, emoji=False, markup=False, highlight=False)
err = _Terminal(stderr=True, width=None if sys.stderr.isatty() else 120, emoji=False, markup=False, highlight=False)


# Options that several commands share.
Seed = Annotated[Optional[int], typer.Option(min=0, metavar="SEED", help="Master seed (default: the file's).")]  # noqa: UP045
Workers = Annotated[
    Optional[int],  # noqa: UP045
    typer.Option(metavar="N", help="Local worker processes (default: every CPU this process may use; 1: no pool)."),
]



def _fail(exc: CustodysimError) -> typer.Exit:
    err.print(str(exc), markup=False, highlight=False, soft_wrap=True)
    return typer.Exit(code=1)


def _workers(n: int | None) -> int:
    """Return the worker processes asked for, by default every CPU this process may use."""
    return n if n is not None else default_workers()


@contextmanager
def _guarded(what: str, stop: Callable[[], None] | None = None) -> Iterator[None]:
    """Run a command's work with SIGTERM treated like Ctrl-C, and its errors turned into exit codes.

    A domain error prints its message and exits with 1; an interruption exits with 130, saying that no
    ``what`` folder was written (an interrupted run says where its completed chunks are kept).

    Args:
        what: what the command writes (``run``, ``sweep``), for the message.
        stop: called before an error's message is printed, and again when the work ends (a progress bar
            that the work starts itself).
    """
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        yield
    except RunInterrupted as exc:
        err.print(str(exc), markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(code=130) from None
    except CustodysimError as exc:
        if stop is not None:
            stop()
        raise _fail(exc) from None
    except KeyboardInterrupt:
        if stop is not None:
            stop()
        err.print(f"interrupted: no {what} folder was written")
        raise typer.Exit(code=130) from None
    finally:
        if stop is not None:
            stop()
        signal.signal(signal.SIGTERM, previous)


@app.command(cls=_Command, epilog="Example: custodysim validate scenarios/dmm-2024.yaml")
def validate(scenario: Annotated[Path, typer.Argument(help="Scenario YAML file.")]) -> None:
    """Check a scenario file without running it."""
    try:
        loaded = load_scenario(scenario)
    except CustodysimError as exc:
        raise _fail(exc) from None
    for warning in loaded.warnings:
        err.print(f"warning: {warning}", markup=False, highlight=False, soft_wrap=True)
    names = ", ".join([loaded.baseline.baseline_name, *loaded.variants])
    out.print(f"{scenario}: valid scenario {loaded.name!r}; variants: {names}", markup=False, highlight=False,
              soft_wrap=True)


@app.command(cls=_Command,
             epilog="Example: custodysim run scenarios/dmm-2024.yaml --trials 2000 --out results/dmm")
def run(
    ctx: typer.Context,
    scenario: Annotated[Optional[Path], typer.Argument(help="Scenario YAML file.")] = None,  # noqa: UP045
    trials: Annotated[
        Optional[int],  # noqa: UP045
        typer.Option(min=1, metavar="N", help="Trials per variant (default: the file's)."),
    ] = None,
    seed: Seed = None,
    out_dir: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option("--out", metavar="FOLDER", help="Run folder to create (default: results/<scenario>-<time>)."),
    ] = None,
    variant: Annotated[
        Optional[list[str]],  # noqa: UP045
        typer.Option("--variant", metavar="NAME",
                     help="Run only this variant (repeatable); the baseline always runs."),
    ] = None,
    replace: Annotated[
        bool, typer.Option("--replace", help="Replace --out if it holds a previous complete run."),
    ] = False,
    resume: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option(metavar="FOLDER", help="Finish the interrupted run to this folder from its completed chunks."),
    ] = None,
    max_rows: Annotated[
        int, typer.Option(min=1, metavar="N", help="Most trial rows (trials x variants) the run may write: a limit "
                                                   "on disk, about 0.5 kB a row while it runs."),
    ] = MAX_ROWS,
    rows: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(metavar="csv|parquet|both", help="Where the trial rows go: trials.csv (the default), "
                                                      "trials.parquet (needs pyarrow) or both."),
    ] = None,
    workers: Workers = None,
    executor: Annotated[str, typer.Option(metavar="local|dask",
                                          help="Where trials run: 'local' or 'dask' (with --scheduler).")] = "local",
    scheduler: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(metavar="ADDRESS", help="Dask scheduler address for --executor dask, e.g. tcp://host:8786."),
    ] = None,
    precision: Annotated[
        Optional[float],  # noqa: UP045
        typer.Option(metavar="SHARE", help="Run until each variant's 95% CI half-width is within this share of its "
                                           "expected loss (0.02 for 2%), instead of --trials."),
    ] = None,
    max_trials: Annotated[
        Optional[int],  # noqa: UP045
        typer.Option(metavar="N", help="With --precision: most trials per variant (default 1,000,000)."),
    ] = None,
) -> None:
    """Run a scenario's Monte Carlo trials and write a run folder with summary, rows and report."""
    if (scenario is None) == (resume is None):
        err.print("give a scenario file to run, or --resume RUN_DIR (not both)")
        raise typer.Exit(code=1)
    if resume is not None and (trials, seed, out_dir, variant, replace, precision, max_trials, rows) \
            != (None, None, None, None, False, None, None, None):
        err.print("--resume continues a run with its own settings; give no other option with it (but --workers, "
                  "--executor and --scheduler, which do not change its figures)")
        raise typer.Exit(code=1)
    n_workers = _workers(workers)
    with _guarded("run"), _progress() as bar:
        tasks: dict[str, Any] = {}
        total = None
        if scenario is not None:
            loaded = load_scenario(scenario)
            for warning in loaded.warnings:
                err.print(f"warning: {warning}", markup=False, highlight=False, soft_wrap=True)
            total = trials if trials is not None else loaded.baseline.settings.trials
            if precision is not None:
                total = None  # unknown: the run stops when precise enough

        def advance(name: str, k: int) -> None:
            if name not in tasks:
                tasks[name] = bar.add_task(name, total=total)
            bar.advance(tasks[name], k)
            bar.refresh()

        if resume is not None:
            outcome = resume_run(resume, progress=advance, workers=n_workers, executor=executor,
                                 scheduler=scheduler, command=_typed(ctx))
        else:
            assert scenario is not None
            outcome = execute_run(scenario, trials, seed, out_dir, variant, progress=advance, replace=replace,
                                  max_rows=max_rows, workers=n_workers, executor=executor, scheduler=scheduler,
                                  precision=precision, max_trials=max_trials, command=_typed(ctx),
                                  rows=rows if rows is not None else DEFAULT_ROWS)
    _print_summary(outcome.summary)
    out.print("", markup=False)
    _wrote(outcome.folder, outcome.files)


@app.command(cls=_Command, epilog="Example: custodysim attribution scenarios/dmm-2024.yaml "
                                  "--controls independent-verification,independent-whitelist")
def attribution(
    ctx: typer.Context,
    scenario: Annotated[Path, typer.Argument(help="Scenario YAML file.")],
    controls: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(metavar="NAMES", help="Comma-separated variants to treat as controls (default: every variant)."),
    ] = None,
    trials: Annotated[
        Optional[int],  # noqa: UP045
        typer.Option(min=1, metavar="N", help="Trials per combination (default: the file's)."),
    ] = None,
    seed: Seed = None,
    out_dir: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option("--out", metavar="FOLDER",
                     help="Folder to create (default: results/<scenario>-attribution-<time>)."),
    ] = None,
    replace: Annotated[
        bool, typer.Option("--replace", help="Replace --out if it holds a previous complete run."),
    ] = False,
    workers: Workers = None,
) -> None:
    """Say what each control (variant) is worth alone and in the full set, and what the loss is sensitive to."""
    names = [c.strip() for c in controls.split(",")] if controls is not None else None
    if names is not None and not all(names):
        err.print("--controls takes variant names separated by commas, e.g. --controls wl,verify")
        raise typer.Exit(code=1)
    with _guarded("attribution"), _progress() as bar:
        task = bar.add_task("attribution", total=None)

        def advance(name: str, k: int) -> None:
            bar.advance(task, k)
            bar.refresh()

        outcome = execute_attribution(scenario, names, trials, seed, out_dir, replace, _workers(workers), advance,
                                      _typed(ctx))
    _print_attribution(outcome.summary)
    out.print("", markup=False)
    _wrote(outcome.folder, outcome.files)


def _print_attribution(summary: dict[str, Any]) -> None:
    base, full = summary["baseline_loss"], summary["full_set"]
    table = Table(title=f"{summary['scenario']}: what each control is worth ({summary['trials']} trials per "
                        f"combination, seed {summary['seed']})")
    table.add_column("control", no_wrap=True)
    for col in ("cost / yr", "avoided alone", "95% CI", "in the full set", "95% CI "):
        table.add_column(col, justify="right", no_wrap=True)
    for c in summary["controls"]:
        a, m = c["alone"], c["in_full_set"]
        table.add_row(c["control"], usd(a["annual_cost_usd"]), usd(a["avoided_usd"]), _ci(a["ci95_usd"]),
                      usd(m["avoided_usd"]), _ci(m["ci95_usd"]))
    out.print(table)
    avoided = full["avoided"]
    out.print(f"Baseline {usd(base['expected_loss_usd'])} a year; all controls together "
              f"{usd(full['loss']['expected_loss_usd'])} (avoiding {usd(avoided['avoided_usd'])}, "
              f"95% CI {_ci(avoided['ci95_usd'])}, for {usd(avoided['annual_cost_usd'])} a year: net "
              f"{usd(avoided['net_benefit_usd'])}).", markup=False, highlight=False, soft_wrap=True)
    if len(summary["controls"]) > 1 and controls_overlap(summary):
        out.print(f"The controls overlap: their worths alone add up to {usd(summary['sum_alone_usd'])}, more than "
                  "they avoid together; the worth in the full set says which one could be dropped.",
                  markup=False, highlight=False, soft_wrap=True)
    shown = summary["tornado"][:5]
    if shown:
        note = " (a default spread: library ranges or x0.5 / x2 of each value, not estimates)" \
            if summary["tornado_note"] else ""
        out.print(f"Most sensitive to{note}:", markup=False, highlight=False, soft_wrap=True)
        for t in shown:
            out.print(f"  {t['input']}: {usd(t['loss_at_low_usd'])} at low, {usd(t['loss_at_high_usd'])} at high",
                      markup=False, highlight=False, soft_wrap=True)


def _ci(pair: list[float]) -> str:
    return f"{usd(pair[0])} to {usd(pair[1])}"


@app.command(cls=_Command, epilog="Example: custodysim sweep scenarios/hot-wallet-key-theft.yaml --from-variant "
                                  "hot-cap --set wallets.hot.topup.cap=5000000,20000000,80000000")
def sweep(
    ctx: typer.Context,
    scenario: Annotated[Path, typer.Argument(help="Scenario YAML file.")],
    sets: Annotated[
        Optional[list[str]],  # noqa: UP045
        typer.Option("--set", metavar="PATH=V1,V2,...",
                     help="A field path (as in a variant's set) and the values it takes (repeatable; the grid is "
                          "every combination)."),
    ] = None,
    trials: Annotated[
        Optional[int],  # noqa: UP045
        typer.Option(min=1, metavar="N", help="Trials per grid point (default: the file's)."),
    ] = None,
    seed: Seed = None,
    out_dir: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option("--out", metavar="FOLDER",
                     help="Sweep folder to create (default: results/<scenario>-sweep-<time>)."),
    ] = None,
    from_variant: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(metavar="NAME",
                     help="Start every grid point from this variant's overrides (the swept paths win)."),
    ] = None,
    replace: Annotated[
        bool, typer.Option("--replace", help="Replace --out if it holds a previous complete run or sweep."),
    ] = False,
    max_rows: Annotated[
        int, typer.Option(min=1, metavar="N", help="Most trial rows (trials x points) in memory."),
    ] = MAX_ROWS,
    workers: Workers = None,
) -> None:
    """Run a scenario over the grid of --set values on common random numbers; write a table, report and frontier."""
    bar = _progress()  # started at the first chunk: a refused sweep prints its error alone
    tasks: list[Any] = []

    def advance(name: str, k: int) -> None:
        if not tasks:  # one bar for the whole grid: a sweep may have 200 points
            bar.start()
            tasks.append(bar.add_task("trials simulated", total=None))
        bar.advance(tasks[0], k)
        bar.refresh()

    with _guarded("sweep", stop=bar.stop):
        outcome = execute_sweep(scenario, sets or [], trials, seed, out_dir, from_variant, progress=advance,
                                command=_typed(ctx), replace=replace, max_rows=max_rows, workers=_workers(workers))
    _print_sweep(outcome.summary)
    out.print("", markup=False)
    _wrote(outcome.folder, outcome.files)


def _print_sweep(summary: dict[str, Any]) -> None:
    table = Table(title=f"{summary['scenario']} sweep: {summary['trials']} trials per point, seed {summary['seed']}")
    table.add_column("point", no_wrap=True)
    for col in ("expected loss", "± 95% CI", "VaR 99", "wait (h)", "total cost / yr", "efficient"):
        table.add_column(col, justify="right", no_wrap=True)
    efficient = summary["frontier"]["expected_loss_usd"]
    baseline = summary["baseline"]
    rows = [(baseline + " (as written)", summary["variants"][baseline], "yes" if baseline in efficient else "")]
    rows += [(p["name"], summary["variants"][p["name"]], "yes" if p["name"] in efficient else "")
             for p in summary["points"]]
    for name, v, flag in rows:
        low, high = v["expected_loss_ci95_usd"]
        total = v.get("costs", {}).get("total_cost_of_risk_usd")
        table.add_row(name, usd(v["expected_loss_usd"]), usd((high - low) / 2), usd(v["var99_usd"]),
                      f"{v['operations']['withdrawal_delay_mean_hours']:.3f}",
                      usd(total) if total is not None else "n/a", flag)
    out.print(table)
    named = [f"{n} (as written)" if n == baseline else n for n in efficient]
    out.print("Efficient on expected loss and customer waiting, the baseline included (least waiting first): "
              + "; ".join(named), markup=False, highlight=False, soft_wrap=True)


def _wrote(folder: Path, files: tuple[str, ...]) -> None:
    """Print where the command wrote, and every file it wrote there."""
    out.print(f"wrote {folder}/ ({', '.join(files)})", markup=False, highlight=False, soft_wrap=True)


def _terminate(signum: int, frame: object) -> None:
    """Treat SIGTERM like Ctrl-C: stop promptly, keep what is complete, write no run folder."""
    raise KeyboardInterrupt


@app.command(cls=_Command, epilog="Example: custodysim new my-exchange.yaml")
def new(path: Annotated[Path, typer.Argument(help="Where to write the starter scenario (my-exchange.yaml).")]) -> None:
    """Write a commented starter scenario for a typical exchange, ready to run and to edit."""
    try:
        write_starter(path)
    except CustodysimError as exc:
        raise _fail(exc) from None
    except OSError as exc:
        err.print(f"{path}: cannot write it ({exc.strerror or exc})", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(code=1) from None
    out.print(f"wrote {path}: edit it, then: custodysim validate {path} && custodysim run {path}",
              markup=False, highlight=False, soft_wrap=True)


@app.command(cls=_Command, epilog="Example: custodysim schema > custodysim.schema.json")
def schema() -> None:
    """Print the JSON Schema of scenario files, for editors that complete and check YAML against it."""
    sys.stdout.write(json.dumps(json_schema(), indent=2) + "\n")


@app.command("library", cls=_Command, epilog="Example: custodysim library session_cookie_theft")
def library_command(
    name: Annotated[Optional[str], typer.Argument(help="An entry to show in full.")] = None,  # noqa: UP045
    markdown: Annotated[bool, typer.Option("--markdown", help="Print the reference (or the entry NAME) as "
                                                              "Markdown.")] = False,
) -> None:
    """List the library's named techniques and controls with their defaults (or show one in full)."""
    found = None
    if name is not None:
        found = library.entry(name)
        if found is None:
            close = difflib.get_close_matches(name, [e.name for e in library.ENTRIES], n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            err.print(f"no library entry called {name!r}{hint}; 'custodysim library' lists them",
                      markup=False, highlight=False, soft_wrap=True)
            raise typer.Exit(code=1)
    if markdown:
        sys.stdout.write(library.markdown(found))
        return
    if found is not None:
        out.print(library.describe(found), markup=False, highlight=False, soft_wrap=True)
        return
    table = Table(title="custodysim library: techniques and controls (custodysim library NAME for sources)")
    table.add_column("name", no_wrap=True)
    for col in ("kind", "defaults", "uncertainty", "identifiers"):
        table.add_column(col)
    for e in library.ENTRIES:
        defaults = "; ".join(f"{p.field} {library.shown(p.value)}" for p in e.priors) or "-"
        known = library.identifiers_short(e) or "-"
        table.add_row(e.name, library.STAGE_TITLES[e.stage], defaults, e.uncertainty, known)
    out.print(table)
    out.print("Use a technique by name in 'technique:' (left-out numbers take these defaults), a control "
              "under 'controls.measures'; see docs/library.md. Identifiers: a technique's MITRE ATT&CK ids; a "
              "control's FAIR-CAM function, D3FEND id and CCSS requirement (releases: docs/library.md).",
              markup=False, highlight=False, soft_wrap=True)


@app.command(cls=_Command, epilog="Example: custodysim trace results/dmm --trial 17 --variant split-wallets")
def trace(
    scenario: Annotated[Path, typer.Argument(help="Scenario YAML file, or a run folder (its scenario and seed).")],
    trial: Annotated[int, typer.Option(min=0, metavar="K", help="Trial number (as in trials.csv).")],
    variant: Annotated[Optional[str], typer.Option(metavar="NAME", help="Variant (default: the baseline).")] = None,  # noqa: UP045
    seed: Seed = None,
) -> None:
    """Tell one trial's story: who fell for what, each compromise, each signature, the loss.

    Given a run folder, the trial is the one of that run (its scenario copy and seed).
    """
    try:
        traced = trace_trial(scenario, trial, variant, seed)
    except CustodysimError as exc:
        raise _fail(exc) from None
    out.print(f"{traced.scenario}, variant {traced.variant}, trial {trial}, seed {traced.seed} ({traced.seed_from}):",
              markup=False, highlight=False, soft_wrap=True)
    for line in traced.story.lines:
        out.print("  " + line, markup=False, highlight=False, soft_wrap=True)


@app.command(cls=_Command, epilog="Example: custodysim report results/dmm")
def report(run_dir: Annotated[Path, typer.Argument(help="A run folder written by 'custodysim run'.")]) -> None:
    """Re-render a run's summary and reports from its stored rows (after an upgrade, say)."""
    try:
        run = rerender(run_dir)
    except CustodysimError as exc:
        raise _fail(exc) from None
    _print_summary(run.summary)
    out.print(f"\nre-rendered {run_dir}/ (summary.json, report.md, report.html)", markup=False, highlight=False,
              soft_wrap=True)


@app.command(cls=_Command, epilog="Example: custodysim compare results/q3 results/q4 --out results/q3-vs-q4")
def compare(
    ctx: typer.Context,
    run_dirs: Annotated[
        list[Path], typer.Argument(help="Two or more run folders; the first one's baseline is the reference."),
    ],
    out_dir: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option("--out", metavar="FOLDER",
                     help="Comparison folder to create (default: results/compare-<run>-<time>)."),
    ] = None,
    replace: Annotated[bool, typer.Option("--replace", help="Replace --out if it holds a previous complete "
                                                            "comparison.")] = False,
) -> None:
    """Compare separate runs variant by variant: paired trial by trial when they share seed and trials."""
    try:
        comparison = compare_runs(run_dirs, out_dir, replace, _typed(ctx))
    except CustodysimError as exc:
        raise _fail(exc) from None
    _print_comparison(comparison)
    _wrote(comparison.folder, comparison.files)


TONES = {"good": "green", "bad": "red", "muted": ""}
"""Terminal colours of a change's verdict (shown only on a terminal)."""


def _print_comparison(comparison: Comparison) -> None:
    """Print each matched variant's change against the reference run, how each run paired, and the notes."""
    ref, others = comparison.runs[0].label, [r.label for r in comparison.runs[1:]]
    several = len(others) > 1
    which = f"{len(others)} runs" if several else terminal_text(others[0])
    table = Table(title=f"{which} against {terminal_text(ref)}: expected loss, USD a year (+ is more loss)")
    if several:
        table.add_column("run", overflow="fold")
    table.add_column("variant", overflow="fold")
    for col in (terminal_text(ref), "this run" if several else terminal_text(others[0]), "change", "95% CI"):
        table.add_column(col, justify="right", no_wrap=True)
    table.add_column("is the change real?")
    for m in comparison.matches:
        figures = asdict(m)
        tone, word, _ = change_words(figures)
        low, high = m.change_ci95_usd
        cells = [terminal_text(match_name(figures)), usd(m.reference_expected_loss_usd), usd(m.expected_loss_usd),
                 signed_usd(m.change_usd), f"{signed_usd(low)} to {signed_usd(high)}"]
        table.add_row(*([terminal_text(m.run)] if several else []), *cells, Text(word, style=TONES[tone]))
    out.print(table)
    for info in comparison.runs[1:]:
        out.print(f"{info.label}: {info.pairing}", markup=False, highlight=False, soft_wrap=True)
        if info.how_to_pair:
            out.print(f"  {info.how_to_pair} {'; '.join(info.pair_commands)}",
                      markup=False, highlight=False, soft_wrap=True)
    for note in comparison.notes:
        out.print(f"note: {note}", markup=False, highlight=False, soft_wrap=True)


LIST_USAGE = "custodysim runs [DIR] [--scenario NAME] [--json]"
TREND_USAGE = "custodysim runs trend NAME [DIR] [--out DIR] [--replace]"


@app.command(name="runs")
def runs_(
    args: Annotated[
        Optional[list[str]],  # noqa: UP045
        typer.Argument(metavar="DIR | trend NAME [DIR]",
                       help="The results folder to list (default: results); 'trend NAME' draws a scenario's runs."),
    ] = None,
    scenario: Annotated[Optional[str], typer.Option("--scenario", help="List only this scenario's folders.")] = None,  # noqa: UP045
    as_json: Annotated[bool, typer.Option("--json", help="Print the catalog as JSON, for machines.")] = False,
    out_dir: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option("--out", help="trend: the folder to create (default: DIR/<scenario>-trend-<time>)."),
    ] = None,
    replace: Annotated[bool, typer.Option(help="trend: replace --out if it holds a previous trend page.")] = False,
) -> None:
    """List the runs, sweeps and attributions in a results folder, newest first; or draw a scenario's trend."""
    words = list(args or [])
    try:
        if words[:1] == ["trend"]:
            if len(words) not in (2, 3):
                raise OptionError(f"runs trend: name one scenario, and the results folder if not results/ "
                                  f"({TREND_USAGE})")
            if scenario is not None or as_json:
                raise OptionError(f"runs trend: --scenario and --json are for the listing ({LIST_USAGE})")
            _trend(words[1], Path(words[2]) if len(words) == 3 else RESULTS_DIR, out_dir, replace)
            return
        if len(words) > 1:
            raise OptionError(f"runs: give one results folder, not {len(words)} ({LIST_USAGE})")
        if out_dir is not None or replace:
            raise OptionError(f"runs: --out and --replace are for a trend page ({TREND_USAGE})")
        cat = catalog(Path(words[0]) if words else RESULTS_DIR)
        entries = cat.of(scenario) if scenario is not None else cat.entries
    except CustodysimError as exc:
        raise _fail(exc) from None
    if as_json:
        print(json.dumps({"root": str(cat.root), "index_kept": cat.index_kept,
                          "entries": [e.as_dict() for e in entries]}, indent=2))
        return
    _print_catalog(cat, entries)


def _trend(name: str, root: Path, out_dir: Path | None, replace: bool) -> None:
    folder, data = write_trend(root, name, out_dir, replace)
    changes = sum(p["scenario_changed"] for p in data["points"])
    out.print(f"{name}: {len(data['points'])} runs, {len(data['variants'])} variants; the scenario file changed "
              f"{changes} time{'s' if changes != 1 else ''}", markup=False, highlight=False, soft_wrap=True)
    out.print(f"wrote {folder}/ (trend.html, trend.md, trend.csv, trend.json)", markup=False, highlight=False,
              soft_wrap=True)


def _print_catalog(cat: Catalog, entries: list[Entry]) -> None:
    if not entries:
        out.print(f"{cat.root}: no runs, sweeps or attributions here yet (custodysim run FILE writes one)",
                  markup=False, highlight=False, soft_wrap=True)
        return
    table = Table(title=f"{cat.root}: {len(entries)} folder{'s' if len(entries) != 1 else ''}, newest first",
                  box=box.SIMPLE_HEAD)
    table.add_column("date (UTC)", no_wrap=True)
    table.add_column("scenario", overflow="fold", min_width=12)
    table.add_column("kind")
    for col in ("seed", "trials"):
        table.add_column(col, justify="right", no_wrap=True)
    table.add_column("baseline loss\n95% CI", justify="right", no_wrap=True)
    table.add_column("best variant", overflow="fold", min_width=10)
    table.add_column("status")
    table.add_column("folder", overflow="fold", min_width=12)
    for e in entries:
        base = e.figures.get(e.baseline or "", {})
        ci = base.get("expected_loss_ci95_usd")
        loss = usd(base["expected_loss_usd"]) if base else ""
        best = e.best if e.best else ("none better" if base else "")
        table.add_row(e.created_utc[:16].replace("T", "\n"), e.scenario or "?", e.kind,
                      "" if e.seed is None else str(e.seed), "" if e.trials is None else f"{e.trials:,}",
                      f"{loss}\n{usd(ci[0])}–{usd(ci[1])}" if ci else loss, best, e.status, e.folder)
    out.print(table)
    for e in entries:
        if e.problem:
            out.print(f"{e.status}: {e.problem}", markup=False, highlight=False, soft_wrap=True)


def _progress() -> Progress:
    # Redrawn as chunks complete, not by a refresh thread: with no thread running, worker processes can
    # be forked (they start at once, with everything imported) instead of going through a fork server.
    return Progress(TextColumn("{task.description:<26}", markup=False), BarColumn(), MofNCompleteColumn(),
                    TimeRemainingColumn(), console=err, transient=True, auto_refresh=False)


def _print_summary(summary: dict[str, Any]) -> None:
    table = Table(title=f"{summary['scenario']}: {summary['trials']} trials per variant, seed {summary['seed']}")
    table.add_column("variant", no_wrap=True)
    for col in ("expected loss", "± 95% CI", "P(loss>0)", "VaR 99", "ES 99", "vs baseline"):
        table.add_column(col, justify="right", no_wrap=True)
    for name, v in summary["variants"].items():
        low, high = v["expected_loss_ci95_usd"]
        diff = "" if name == summary["baseline"] else signed_usd(v["diff_vs_baseline_usd"])
        table.add_row(name, usd(v["expected_loss_usd"]), usd((high - low) / 2),
                      pct(v["p_any_loss"]), usd(v["var99_usd"]), usd(v.get("es99_usd")), diff)
    out.print(table)
    for line in rare_losses(summary):
        out.print(f"  {line}", markup=False, highlight=False, soft_wrap=True)
    lines = [f"  {name}: {narrowing(v['diff_ci95_usd'], v['diff_ci95_unpaired_usd'])}"
             for name, v in summary["variants"].items() if name != summary["baseline"]]
    if any(line.split(": ", 1)[1] for line in lines):
        out.print("Paired vs unpaired 95% CI of the difference with the baseline (common random numbers):",
                  markup=False, highlight=False)
        for line in lines:
            out.print(line, markup=False, highlight=False, soft_wrap=True)
    p = summary.get("precision")
    if p is not None:
        why = "precision target reached" if p["stopped_by"] == "precision" else \
            f"trial limit reached ({p['max_trials']:,} trials)"
        achieved = ", ".join(f"{name} {pct(a)}" for name, a in p["achieved"].items())
        out.print(f"Stopped after {summary['trials']:,} trials per variant ({why}; target {pct(p['target'])}). "
                  f"95% CI half-width / expected loss: {achieved}", markup=False, highlight=False, soft_wrap=True)
    _print_key_loss(summary)
    _print_costs(summary)


def _print_key_loss(summary: dict[str, Any]) -> None:
    """Print what lost keys cost each variant, apart from theft (only if some variant locks a wallet)."""
    lost = key_loss(summary)
    if not lost:
        return
    table = _table("Lost keys: expected loss = theft + lock-out", "years locked", "years locked out",
                   "lock-out loss", "theft loss")
    for name, k in lost.items():
        table.add_row(name, pct(k["p_locked"]), pct(k["p_lock_out"]), usd(k["expected_loss_usd"]),
                      usd(k["theft_loss_usd"]))
    out.print(table)


def _print_costs(summary: dict[str, Any]) -> None:
    """Print the cost of risk, survival (where the scenario states capital or insurance) and operations."""
    variants = summary["variants"]
    if not all("costs" in v for v in variants.values()):
        return  # a summary written before costs existed
    costs = _table("Cost of risk, USD a year", "controls", "expected loss", "total", "vs baseline")
    for name, v in variants.items():
        c = v["costs"]
        costs.add_row(name, usd(c["control_cost_usd"]), usd(c["expected_annual_loss_usd"]),
                      usd(c["total_cost_of_risk_usd"]),
                      "" if name == summary["baseline"]
                      else signed_usd(c.get("total_cost_of_risk_diff_vs_baseline_usd")))
    out.print(costs)
    if any("survival" in v for v in variants.values()):
        survival = _table("Survival: a trial's loss after insurance (USD)", "P(> capital)", "retained",
                          "insurer pays", "capital 1-in-100", "1-in-1000")
        for name, v in variants.items():
            sv = v.get("survival")
            if sv is None:
                survival.add_row(name, *["n/a"] * 5)
                continue
            p = sv["p_retained_loss_exceeds_capital"]
            survival.add_row(name, pct(p) if p is not None else "no capital", usd(sv["retained_expected_loss_usd"]),
                             usd(sv["insurer_expected_payout_usd"]), usd(sv["capital_needed_1_in_100_usd"]),
                             usd(sv["capital_needed_1_in_1000_usd"]))
        out.print(survival)
    ops = _table("Operations (waits in hours)", "mean wait", "p95 of trial mean", "delayed", "blocked / trial",
                 "ceremonies / yr")
    for name, v in variants.items():
        o = v["operations"]
        ops.add_row(name, number(o["withdrawal_delay_mean_hours"], 2),
                    number(o.get("withdrawal_delay_mean_hours_p95"), 2), pct(o["withdrawals_delayed_share"]),
                    number(o.get("transfers_blocked_mean"), 2), number(o.get("signing_ceremonies_per_year"), 1))
    out.print(ops)
    if any(v["operations"].get("admin_actions_per_year") for v in variants.values()):
        waits = "; ".join(f"{name} {v['operations'].get('admin_actions_per_year', 0):g} a year, "
                          f"{v['operations'].get('admin_wait_hours_per_year', 0):g} h" for name, v in variants.items())
        out.print(f"Administrative actions and their time-lock waits a year: {waits}", markup=False,
                  highlight=False, soft_wrap=True)


def _table(title: str, *columns: str) -> Table:
    table = Table(title=title)
    table.add_column("variant", no_wrap=True)
    for col in columns:
        table.add_column(col, justify="right", no_wrap=True)
    return table


def _version(value: bool) -> None:
    if value:
        out.print(f"custodysim {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Show the version and exit.")] = False,
) -> None:
    """Simulate what a crypto exchange's custody architecture would lose to a real attacker."""


def main() -> None:
    """Console-script entry point."""
    app()
