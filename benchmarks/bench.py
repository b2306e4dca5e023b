"""Benchmark custodysim: throughput per core, scaling over workers and peak memory, per bundled scenario.

Usage::

    python benchmarks/bench.py                       # every scenarios/*.yaml (200,000 trial-variants each)
    python benchmarks/bench.py --million             # ... and a full 1,000,000-trial run of dmm-2024
    python benchmarks/bench.py --scenario scenarios/dmm-2024.yaml --trials 50000 --repeats 3 --json bench.json

Every measurement runs in a fresh Python process (this script, re-invoked with ``--_one``), so nothing is
shared between measurements: not the compiled models and quiet trials a process caches, not the memory
it has grown to. Each repeat is therefore a cold start, as a real run is; no repeat is discarded as a
warm-up, and the figures quoted are medians over the repeats, with their min-max spread.

What is timed (wall clock, ``time.perf_counter``) in the measuring process:

* the throughput runs: ``load_scenario`` (parse and validate), ``open_executor``, and ``simulate`` (which
  compiles every variant and, with several workers, starts the worker pool, whose workers inherit the
  compiled variants when forked), up to the moment every row is back in the parent and taken into each
  variant's losses (the rows are not held, as in a run; a run also saves them to its checkpoints). Starting
  the interpreter and importing custodysim are not timed.
* the ``--million`` run: the whole ``custodysim.studies.run.execute_run``, i.e. also the summary, the stories,
  ``trials.csv`` and the reports written to a temporary run folder (deleted afterwards).

Peak memory is peak resident set size (RSS), from ``getrusage``:

* ``main``: ``RUSAGE_SELF`` of the measuring process, where every trial row comes back to (it includes
  the interpreter and the imported libraries, some 60 MB, and in a full run matplotlib and pyarrow);
* ``worker``: ``RUSAGE_CHILDREN`` of the measuring process once its pool is gone, i.e. the peak RSS of
  its largest single child (workers forked from the measuring process are its children; workers started
  by the multiprocessing fork server are the server's, so the server is stopped after the run and they
  are accounted for through it). It is the peak of one worker, not the sum: the most the whole run can
  have held at once is ``main + workers x worker``.

The machine, the Python version, the git commit (and whether the tree has uncommitted changes) and the
load average are printed with the figures: other processes running at the same time slow the
measurements down, most visibly the all-CPU ones.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
"""The repository (this file is ``benchmarks/bench.py``)."""
SCENARIOS = ROOT / "scenarios"
MILLION_SCENARIO = SCENARIOS / "dmm-2024.yaml"
MILLION = 1_000_000

DEFAULT_TRIAL_VARIANTS = 200_000
"""Trial-variants (trials x variants) a measurement simulates unless ``--trials`` is given.

Every scenario is measured on the same work, whatever its number of variants, and each run lasts a few
seconds: long enough that the pool's fixed start-up and shutdown (about 0.1 s, the ``extra s`` column)
do not decide the scaling figure, as they do in a run of under a second."""
DEFAULT_REPEATS = 5

TARGET_DMM_PER_CORE = 30_000
"""Trial-variants per second per core that dmm-2024 should reach (issue #5)."""
TARGET_ANY_PER_CORE = 10_000
"""Trial-variants per second per core that every bundled scenario should reach."""
TARGET_EFFICIENCY = 0.9
"""Scaling efficiency to reach: 2 workers at least 1.8x one."""
TARGET_MILLION_SECONDS = 60.0
"""Wall time of a 1,000,000-trial run of dmm-2024 ("about a minute")."""
MEMORY_TRIALS = (100_000, 1_000_000)
"""The two full runs of ``--memory``: how much the main process's peak grows between them is the target."""
TARGET_PEAK_MB = 400.0
"""Peak RSS of the main process of a 1,000,000-trial run of dmm-2024 (6 variants), MB (issue #19)."""
TARGET_GROWTH_MB = 100.0
"""Growth of that peak from 100,000 to 1,000,000 trials, MB (issue #19): memory must not grow with the rows."""
DMM = "dmm-2024"


# --------------------------------------------------------------------------------------------------
# One measurement, in its own process
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Measurement:
    """What one fresh process measured.

    Attributes:
        scenario: the scenario file's stem.
        kind: ``simulate`` (rows in memory) or ``run`` (``execute_run``, writing a run folder).
        workers: worker processes asked for (1: in the measuring process itself).
        trials: trials per variant.
        variants: variants simulated (the baseline included).
        wall_s: wall time of the timed part, seconds.
        main_cpu_s: CPU time (user + system) of the measuring process during the timed part, seconds.
        workers_cpu_s: CPU time of its children (the workers and the fork server), seconds.
        others_cpu_s: CPU time the rest of the machine (other processes) used during the timed part,
            seconds (from ``/proc/stat``; None where there is none). Well above 0, the machine was shared.
        main_peak_mib: peak RSS of the measuring process, MiB.
        worker_peak_mib: peak RSS of its largest child (a worker), MiB; None when there were none.
        folder_mib: size of the run folder written (``run`` only), MiB.
        rows_files: for a full run, each rows file written (trials.csv, trials.parquet): [MiB, seconds
            spent writing it].
        code: a hash of the custodysim source files this measurement ran (they may change between
            measurements when the package is being worked on).
        load: the 1-minute load average when the measurement started (it lags, and counts this
            benchmark's own processes too; ``others_cpu_s`` is the sharper sign of a shared machine).
    """

    scenario: str
    kind: str
    workers: int
    trials: int
    variants: int
    wall_s: float
    main_cpu_s: float
    workers_cpu_s: float
    others_cpu_s: float | None
    main_peak_mib: float
    worker_peak_mib: float | None
    folder_mib: float | None
    code: str
    load: float
    rows_files: dict[str, list[float]] | None = None

    @property
    def rate(self) -> float:
        """Trial-variants simulated per second."""
        return self.trials * self.variants / self.wall_s

    @property
    def cpu_s(self) -> float:
        """CPU time of the measurement: the measuring process and its workers, seconds."""
        return self.main_cpu_s + self.workers_cpu_s

    @property
    def others_share(self) -> float | None:
        """Share of the machine's CPU capacity that other processes used during the measurement."""
        if self.others_cpu_s is None:
            return None
        return self.others_cpu_s / (self.wall_s * (os.cpu_count() or 1))


def _maxrss_mib(usage: resource.struct_rusage) -> float:
    """Return ``ru_maxrss`` in MiB (Linux reports KiB, macOS bytes)."""
    scale = 1 if sys.platform == "darwin" else 1024
    return usage.ru_maxrss * scale / 2**20


def _stop_fork_server() -> None:
    """Stop multiprocessing's fork server (if one was started) and reap it.

    The fork server has reaped the workers it forked, so afterwards ``RUSAGE_CHILDREN`` of this process
    includes the workers' CPU time and peak RSS. This uses a private method of ``multiprocessing``; if
    it is missing the worker figures are simply left out.
    """
    try:
        from multiprocessing import forkserver

        server = forkserver._forkserver
        if getattr(server, "_forkserver_pid", None) is not None:
            getattr(server, "_stop")()  # noqa: B009 (private, and unknown to the type stubs)
    except (ImportError, AttributeError, OSError):
        pass


def _busy_cpu_s() -> float | None:
    """Return the CPU time every CPU of the machine has spent busy since boot, seconds (None off Linux)."""
    try:
        with open("/proc/stat", encoding="ascii") as f:
            fields = f.readline().split()
    except OSError:
        return None
    # cpu user nice system idle iowait irq softirq steal guest guest_nice: busy = all but idle and iowait,
    # and not guest time, which is counted in user time already.
    ticks = [int(x) for x in fields[1:9]]
    busy = sum(ticks) - ticks[3] - ticks[4]
    return busy / os.sysconf("SC_CLK_TCK")


def _cpu_s(usage: resource.struct_rusage) -> float:
    return usage.ru_utime + usage.ru_stime


def code_hash() -> str:
    """Return a short hash of the installed custodysim package's Python source (names and contents)."""
    import custodysim

    root = Path(custodysim.__file__).resolve().parent
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def _folder_mib(folder: Path) -> float:
    """Return the total size of the files under ``folder``, MiB."""
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 2**20


def measure_one(scenario: Path, workers: int, trials: int, full_run: bool, rows: str = "csv") -> Measurement:
    """Simulate (or fully run) ``scenario`` once in this process and return what it took.

    Meant to run in a fresh process (see :func:`run_isolated`): the figures include every cache being
    cold, and the peak memory is this measurement's alone.
    """
    load = os.getloadavg()[0]
    import custodysim.studies.run as run_module
    from custodysim.running.executors import open_executor
    from custodysim.running.runner import simulate
    from custodysim.scenario.loader import load_scenario
    from custodysim.studies.run import execute_run

    folder_mib: float | None = None
    rows_files: dict[str, list[float]] | None = None
    writing = _time_row_writers(run_module)
    code = code_hash()
    busy_before, cpu_before = _busy_cpu_s(), _cpu_s(resource.getrusage(resource.RUSAGE_SELF))
    if full_run:
        with tempfile.TemporaryDirectory(prefix="custodysim-bench-") as tmp:
            out = Path(tmp) / "run"
            started = time.perf_counter()
            outcome = execute_run(scenario, trials=trials, out=out, workers=workers, rows=rows)
            wall = time.perf_counter() - started
            folder_mib = _folder_mib(outcome.folder)
            rows_files = {name: [(outcome.folder / name).stat().st_size / 2**20, seconds]
                          for name, seconds in writing.items()}
            variants = len(outcome.summary["variants"])
    else:
        started = time.perf_counter()
        loaded = load_scenario(scenario)
        executor = open_executor(workers=workers)
        try:
            result = simulate(loaded, trials=trials, executor=executor, keep_rows=False)  # as a run: rows not held
        finally:
            executor.close()
        wall = time.perf_counter() - started
        variants = len(result.losses)
        if result.trials != trials:
            raise RuntimeError(f"simulate ran {result.trials} trials, not {trials}")
    busy_after = _busy_cpu_s()
    me = resource.getrusage(resource.RUSAGE_SELF)
    _stop_fork_server()
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    main_cpu, workers_cpu = _cpu_s(me) - cpu_before, _cpu_s(children)
    others = None
    if busy_before is not None and busy_after is not None:
        others = max(0.0, busy_after - busy_before - main_cpu - workers_cpu)
    return Measurement(
        scenario=scenario.stem, kind="run" if full_run else "simulate", workers=workers, trials=trials,
        variants=variants, wall_s=wall, main_cpu_s=main_cpu, workers_cpu_s=workers_cpu, others_cpu_s=others,
        main_peak_mib=_maxrss_mib(me),
        worker_peak_mib=_maxrss_mib(children) if workers > 1 and children.ru_maxrss else None,
        folder_mib=folder_mib, code=code, load=load, rows_files=rows_files,
    )


def _time_row_writers(run_module: Any) -> dict[str, float]:
    """Time the writers of the rows files a run calls (by name, from ``custodysim.studies.run``); return the timings.

    The returned dict fills in as the run writes: file name -> seconds its writer took.
    """
    seconds: dict[str, float] = {}

    def timed(name: str, write: Any) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return write(*args, **kwargs)
            finally:
                seconds[name] = time.perf_counter() - started
        return wrapper

    run_module.write_trials_csv = timed("trials.csv", run_module.write_trials_csv)
    run_module.write_trials_parquet = timed("trials.parquet", run_module.write_trials_parquet)
    return seconds


def run_isolated(scenario: Path, workers: int, trials: int, full_run: bool = False, rows: str = "csv") -> Measurement:
    """Measure in a fresh Python process (this script with ``--_one``) and return its measurement.

    Raises:
        RuntimeError: the process failed; its error output is in the message.
    """
    command = [sys.executable, str(Path(__file__).resolve()), "--_one", str(scenario),
               "--workers", str(workers), "--trials", str(trials), *(["--_full-run"] if full_run else []),
               "--_rows", rows]
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"measurement failed ({' '.join(command)}):\n{done.stderr}")
    return Measurement(**json.loads(done.stdout.strip().splitlines()[-1]))


# --------------------------------------------------------------------------------------------------
# Figures over repeats
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Series:
    """The repeats of one configuration (scenario, workers) and their medians."""

    repeats: list[Measurement]

    @property
    def first(self) -> Measurement:
        """The first repeat (for the fields every repeat shares)."""
        return self.repeats[0]

    @property
    def wall_s(self) -> float:
        """Median wall time, seconds."""
        return statistics.median(m.wall_s for m in self.repeats)

    @property
    def wall_range(self) -> tuple[float, float]:
        """Fastest and slowest wall time, seconds."""
        walls = [m.wall_s for m in self.repeats]
        return min(walls), max(walls)

    @property
    def rate(self) -> float:
        """Trial-variants per second at the median wall time."""
        return self.first.trials * self.first.variants / self.wall_s

    @property
    def per_core(self) -> float:
        """Trial-variants per second per core used (cores = workers)."""
        return self.rate / self.first.workers

    @property
    def main_cpu_s(self) -> float:
        """Median CPU time of the measuring process, seconds."""
        return statistics.median(m.main_cpu_s for m in self.repeats)

    @property
    def workers_cpu_s(self) -> float:
        """Median CPU time of the workers, seconds."""
        return statistics.median(m.workers_cpu_s for m in self.repeats)

    @property
    def others_share(self) -> float | None:
        """Median share of the machine's CPUs that other processes used (None where unknown)."""
        shares = [x for x in (m.others_share for m in self.repeats) if x is not None]
        return statistics.median(shares) if shares else None

    @property
    def per_cpu_s(self) -> float:
        """Trial-variants per CPU-second (main process and workers): unaffected by sharing the machine."""
        return self.first.trials * self.first.variants / (self.main_cpu_s + self.workers_cpu_s)

    @property
    def cpu_text(self) -> str:
        """Median CPU seconds as ``main+workers`` (or just ``main`` without workers)."""
        if self.first.workers == 1:
            return f"{self.main_cpu_s:.1f}"
        return f"{self.main_cpu_s:.1f}+{self.workers_cpu_s:.1f}"

    @property
    def main_peak_mib(self) -> float:
        """Highest peak RSS of the main process over the repeats, MiB."""
        return max(m.main_peak_mib for m in self.repeats)

    @property
    def worker_peak_mib(self) -> float | None:
        """Highest peak RSS of one worker over the repeats, MiB (None without workers)."""
        peaks = [m.worker_peak_mib for m in self.repeats if m.worker_peak_mib is not None]
        return max(peaks) if peaks else None

    def as_dict(self) -> dict[str, Any]:
        """Return the medians and the raw repeats, for ``--json``."""
        low, high = self.wall_range
        return {"workers": self.first.workers, "wall_s_median": self.wall_s, "wall_s_min": low,
                "wall_s_max": high, "trial_variants_per_s": self.rate, "per_core": self.per_core,
                "per_cpu_second": self.per_cpu_s, "main_cpu_s_median": self.main_cpu_s,
                "workers_cpu_s_median": self.workers_cpu_s, "others_cpu_share_median": self.others_share,
                "main_peak_mib": self.main_peak_mib,
                "worker_peak_mib": self.worker_peak_mib, "repeats": [asdict(m) for m in self.repeats]}


@dataclass
class ScenarioResult:
    """A scenario's series at 1 worker and (when more than 1) at all workers."""

    scenario: str
    one: Series
    many: Series | None = None

    @property
    def efficiency(self) -> float | None:
        """Throughput at N workers over N x throughput at 1 (None without an N-worker series)."""
        if self.many is None:
            return None
        return self.many.rate / (self.many.first.workers * self.one.rate)

    @property
    def overhead_s(self) -> float | None:
        """Wall time at N workers beyond a perfect split of the 1-worker time (pool start-up, etc.), seconds."""
        if self.many is None:
            return None
        return self.many.wall_s - self.one.wall_s / self.many.first.workers


@dataclass
class Target:
    """A target of issue #5 and whether the figure meets it."""

    name: str
    figure: str
    passed: bool


@dataclass
class Report:
    """Everything the benchmark measured, with its provenance."""

    provenance: dict[str, Any]
    settings: dict[str, Any]
    scenarios: list[ScenarioResult] = field(default_factory=list)
    million: Series | None = None
    memory: list[Measurement] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """Return the report as plain data, for ``--json``."""
        return {
            "provenance": self.provenance,
            "settings": self.settings,
            "scenarios": [{"scenario": r.scenario, "variants": r.one.first.variants, "trials": r.one.first.trials,
                           "one_worker": r.one.as_dict(), "all_workers": r.many.as_dict() if r.many else None,
                           "scaling_efficiency": r.efficiency, "parallel_overhead_s": r.overhead_s}
                          for r in self.scenarios],
            "million": None if self.million is None else {
                "scenario": self.million.first.scenario, "variants": self.million.first.variants,
                "trials": self.million.first.trials, "folder_mib": self.million.first.folder_mib,
                **self.million.as_dict()},
            "memory": [asdict(m) for m in self.memory],
            "targets": [asdict(t) for t in self.targets],
        }


def judge(results: list[ScenarioResult], million: Series | None, memory: Sequence[Measurement] = ()) -> list[Target]:
    """Return the issue's targets and whether each is met.

    Throughput per core is one core's throughput, measured with 1 worker; how well it carries over to
    all cores is the separate scaling target (the table shows the per-core figure at all cores too).
    """
    targets = []
    for r in results:
        need = TARGET_DMM_PER_CORE if r.scenario == DMM else TARGET_ANY_PER_CORE
        targets.append(Target(f"{r.scenario}: >= {need:,} trial-variants/s per core (1 worker)",
                              f"{r.one.per_core:,.0f}", r.one.per_core >= need))
    for r in results:
        if r.efficiency is not None and r.many is not None:
            n = r.many.first.workers
            targets.append(Target(f"{r.scenario}: {n} workers >= {TARGET_EFFICIENCY * n:.2g}x one "
                                  f"(efficiency >= {TARGET_EFFICIENCY:.0%})",
                                  f"{r.efficiency * n:.2f}x ({r.efficiency:.0%})", r.efficiency >= TARGET_EFFICIENCY))
    if million is not None:
        targets.append(Target(f"{million.first.scenario}: {million.first.trials:,} trials, full run, "
                              f"<= {TARGET_MILLION_SECONDS:.0f} s ({million.first.workers} worker(s))",
                              f"{million.wall_s:.1f} s", million.wall_s <= TARGET_MILLION_SECONDS))
    if len(memory) == 2:
        small, large = memory
        peak, growth = _mb(large.main_peak_mib), _mb(large.main_peak_mib) - _mb(small.main_peak_mib)
        targets.append(Target(f"{large.scenario}: {large.trials:,} trials x {large.variants} variants, main process "
                              f"peak < {TARGET_PEAK_MB:.0f} MB", f"{peak:,.0f} MB", peak < TARGET_PEAK_MB))
        targets.append(Target(f"{large.scenario}: main peak grows <= {TARGET_GROWTH_MB:.0f} MB from {small.trials:,} "
                              f"to {large.trials:,} trials", f"{growth:+,.0f} MB", growth <= TARGET_GROWTH_MB))
    return targets


def _mb(mib: float) -> float:
    """Return MiB as MB (10**6 bytes), the unit of the memory targets."""
    return mib * 2**20 / 1e6


# --------------------------------------------------------------------------------------------------
# Provenance and output
# --------------------------------------------------------------------------------------------------


def _git(*args: str) -> str | None:
    """Return the output of a git command in the repository, or None if it fails."""
    try:
        done = subprocess.run(["git", *args], capture_output=True, text=True, cwd=ROOT, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return done.stdout.strip()


def provenance() -> dict[str, Any]:
    """Return where and on what the figures were measured."""
    from custodysim import __version__
    from custodysim.running.executors import default_workers

    status = _git("status", "--porcelain", "--untracked-files=no")
    return {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "custodysim": __version__,
        "commit": _git("rev-parse", "--short", "HEAD"),
        "dirty": None if status is None else bool(status),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "usable_cpus": default_workers(),
        "load_start": list(os.getloadavg()),
    }


def _mib(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def _share(value: float | None) -> str:
    return "?" if value is None else f"{value:.0%}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[bool]) -> list[str]:
    """Return a plain-text table: columns padded to their widest cell, numbers right-aligned."""
    widths = [max(len(str(c)) for c in column) for column in zip(header, *rows, strict=True)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.rjust(w) if r else c.ljust(w) for c, w, r in zip(cells, widths, right, strict=True)).rstrip()

    return [line(header), line(["-" * w for w in widths]), *(line(r) for r in rows)]


def _commit_end(p: dict[str, Any]) -> str:
    return f" at the start, {p['commit_end']} at the end" if "commit_end" in p else ""


def render(report: Report) -> str:
    """Return the report as readable text."""
    p, s = report.provenance, report.settings
    commit = f"{p['commit']}{' (uncommitted changes)' if p['dirty'] else ''}" if p["commit"] else "unknown"
    load_end = p.get("load_end") or [float("nan")] * 3
    out = [
        f"custodysim {p['custodysim']} benchmark, {p['date']}",
        f"commit {commit}{_commit_end(p)}; custodysim source {', '.join(p['code'])}; Python {p['python']}; "
        f"{p['platform']}",
        f"CPUs: {p['cpus']} ({p['usable_cpus']} usable); load average (1/5/15 min) at start "
        f"{'/'.join(f'{x:.2f}' for x in p['load_start'])}, at end {'/'.join(f'{x:.2f}' for x in load_end)}",
    ]
    if report.scenarios:
        out.append((f"{s['trials']:,} trials per variant" if s["trials"] else
                    f"{s['trial_variants']:,} trial-variants per scenario (trials per variant: that / variants)")
                   + f", {s['repeats']} repeats per configuration, each in a fresh process; no repeat discarded; "
                     "medians quoted")
    out.append("")
    rows = []
    for r in report.scenarios:
        for series in (r.one, r.many):
            if series is None:
                continue
            low, high = series.wall_range
            eff = "" if series is r.one or r.efficiency is None else f"{r.efficiency:.0%}"
            extra = "" if series is r.one or r.overhead_s is None else f"{r.overhead_s:.2f}"
            rows.append([r.scenario, str(series.first.variants), f"{series.first.trials:,}", str(series.first.workers),
                         f"{series.wall_s:.2f}", f"{low:.2f}-{high:.2f}", f"{series.rate:,.0f}",
                         f"{series.per_core:,.0f}", eff, extra, series.cpu_text, f"{series.per_cpu_s:,.0f}",
                         _share(series.others_share),
                         _mib(series.main_peak_mib), _mib(series.worker_peak_mib)])
    header = ["scenario", "variants", "trials", "workers", "wall s", "min-max s", "trial-var/s", "per core",
              "scaling", "extra s", "CPU s", "per CPU-s", "others", "main MiB", "worker MiB"]
    if rows:
        out += _table(header, rows, [False, *([True] * 14)])
    if report.million is not None:
        m = report.million
        low, high = m.wall_range
        out += ["", f"Full run (execute_run: simulate, summarise, write trials.csv and the reports), "
                    f"{len(m.repeats)} repeat(s):"]
        out += _table(["scenario", "variants", "trials", "workers", "wall s", "min-max s", "trial-var/s", "per core",
                       "CPU s", "per CPU-s", "others", "main MiB", "worker MiB", "folder MiB"],
                      [[m.first.scenario, str(m.first.variants), f"{m.first.trials:,}", str(m.first.workers),
                        f"{m.wall_s:.1f}", f"{low:.1f}-{high:.1f}", f"{m.rate:,.0f}", f"{m.per_core:,.0f}",
                        m.cpu_text, f"{m.per_cpu_s:,.0f}", _share(m.others_share), _mib(m.main_peak_mib),
                        _mib(m.worker_peak_mib), _mib(m.first.folder_mib)]],
                      [False, *([True] * 13)])
    if report.memory:
        out += ["", "Memory of full runs (execute_run with --rows both: both rows files written from the checkpoints), "
                    "one repeat each:"]
        first = report.memory[0]
        table = []
        for m in report.memory:
            files = m.rows_files or {}
            table.append([m.scenario, str(m.variants), f"{m.trials:,}", str(m.workers), f"{m.wall_s:.1f}",
                          _mib(m.main_peak_mib), f"{_mb(m.main_peak_mib):,.0f}",
                          f"{_mb(m.main_peak_mib) - _mb(first.main_peak_mib):+,.0f}", _mib(m.worker_peak_mib),
                          *(x for name in ("trials.csv", "trials.parquet")
                            for x in ((f"{files[name][0]:,.1f}", f"{files[name][1]:.1f}") if name in files
                                      else ("-", "-")))])
        out += _table(["scenario", "variants", "trials", "workers", "wall s", "main MiB", "main MB", "growth MB",
                       "worker MiB", "csv MiB", "csv write s", "parquet MiB", "parquet write s"], table,
                      [False, *([True] * 12)])
    out += [
        "",
        "wall s: median wall time of load + compile + simulate (pool start-up included; interpreter start and",
        "  import excluded); trial-var/s: trials x variants / median wall; per core: that / workers;",
        "  scaling: throughput at N workers / (N x throughput at 1); extra s: wall at N - wall at 1 / N, the",
        "  time a perfect split would not take (pool start-up, compiling in each worker, the last chunk);",
        "  CPU s: user+system seconds of the main process + its workers during the timed part; per CPU-s:",
        "  trial-variants per CPU-second of those (what parallelism costs, whatever else runs); others: share",
        "  of the machine's CPU capacity used by other processes meanwhile (0% on a quiet machine); main MiB:",
        "  peak RSS of the process the rows come back to (max over repeats); worker MiB: peak RSS of the largest",
        "  single worker (a run holds at most main + workers x worker).",
        "",
        "Targets (issues #5 and #19):",
    ]
    out += _table(["", "target", "figure"], [["PASS" if t.passed else "FAIL", t.name, t.figure]
                                             for t in report.targets], [False, False, True])
    measured = [x for r in report.scenarios for x in (r.one, r.many) if x is not None]
    if report.million is not None:
        measured.append(report.million)
    busy = [x for one in measured for x in (m.others_share for m in one.repeats) if x is not None]
    if len(p["code"]) > 1:
        out += ["", f"Note: the custodysim source changed during the benchmark ({len(p['code'])} versions, see 'code' "
                    "in the JSON): the figures mix them."]
    if busy and max(busy) >= 0.1:
        out += ["", f"Note: other processes used up to {max(busy):.0%} of the machine's CPUs during the measurements "
                    "(see 'others'), so these figures, the all-CPU ones most, understate what it can do."]
    return "\n".join(out)


# --------------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------------


def default_scenarios() -> list[Path]:
    """Return the bundled scenarios: ``scenarios/*.yaml`` (not subfolders)."""
    return sorted(SCENARIOS.glob("*.yaml"))


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    from custodysim.running.executors import default_workers

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", action="append", type=Path, metavar="PATH",
                        help="scenario file to measure (repeatable; default: every scenarios/*.yaml)")
    parser.add_argument("--trials", type=int, default=None,
                        help="trials per variant per repeat (default: enough for "
                             f"{DEFAULT_TRIAL_VARIANTS:,} trial-variants per scenario)")
    parser.add_argument("--repeats", type=int, default=DEFAULT_REPEATS,
                        help=f"repeats per configuration, each in a fresh process (default {DEFAULT_REPEATS})")
    parser.add_argument("--workers", type=int, default=default_workers(),
                        help="workers for the all-CPU measurement (default: every usable CPU, here %(default)s)")
    parser.add_argument("--million", action="store_true",
                        help=f"also time a full {MILLION:,}-trial run of {DMM} (writing its run folder)")
    parser.add_argument("--million-repeats", type=int, default=1, metavar="N",
                        help="repeats of the --million run (default 1: it takes about a minute)")
    parser.add_argument("--memory", action="store_true",
                        help=f"also measure the main process's peak memory in full runs of {DMM} at "
                             f"{MEMORY_TRIALS[0]:,} and {MEMORY_TRIALS[1]:,} trials (rows to trials.csv and "
                             "trials.parquet: their sizes and write times too)")
    parser.add_argument("--skip-throughput", action="store_true",
                        help="measure only what --million and --memory ask for")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the figures to FILE as JSON")
    parser.add_argument("--check", action="store_true", help="exit with status 1 if any target is missed")
    parser.add_argument("--_one", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--_full-run", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--_rows", default="csv", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    for name in ("repeats", "workers", "million_repeats"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be 1 or more")
    if args.trials is not None and args.trials < 1:
        parser.error("--trials must be 1 or more")
    return args


def trials_for(scenario: Path) -> int:
    """Return the trials per variant that make :data:`DEFAULT_TRIAL_VARIANTS` trial-variants of ``scenario``."""
    from custodysim.scenario.loader import load_scenario

    variants = len(load_scenario(scenario).specs())
    return -(-DEFAULT_TRIAL_VARIANTS // variants)


def _progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def benchmark(args: argparse.Namespace) -> Report:
    """Measure every configuration asked for and return the report.

    The repeats of a scenario alternate between 1 worker and all workers, so that a slow spell of the
    machine touches both rather than one.
    """
    scenarios = [] if args.skip_throughput else args.scenario or default_scenarios()
    report = Report(provenance(), {"trials": args.trials, "trial_variants": DEFAULT_TRIAL_VARIANTS,
                                   "repeats": args.repeats, "workers": args.workers,
                                   "scenarios": [str(s) for s in scenarios], "million": args.million,
                                   "million_repeats": args.million_repeats if args.million else 0,
                                   "memory": list(MEMORY_TRIALS) if args.memory else None})
    counts = [1, args.workers] if args.workers > 1 else [1]
    for scenario in scenarios:
        runs: dict[int, list[Measurement]] = {n: [] for n in counts}
        trials = args.trials or trials_for(scenario)
        for k in range(args.repeats):
            for n in counts:
                m = run_isolated(scenario, n, trials)
                runs[n].append(m)
                _progress(f"  {scenario.stem}: {n} worker(s), repeat {k + 1}/{args.repeats}: {m.wall_s:.2f} s, "
                          f"{m.rate / n:,.0f} trial-variants/s per core")
        report.scenarios.append(ScenarioResult(scenario.stem, Series(runs[1]),
                                               Series(runs[args.workers]) if args.workers > 1 else None))
    if args.million:
        repeats = []
        for k in range(args.million_repeats):
            m = run_isolated(MILLION_SCENARIO, args.workers, MILLION, full_run=True)
            repeats.append(m)
            _progress(f"  {m.scenario}: {MILLION:,} trials, full run, {args.workers} worker(s), repeat {k + 1}/"
                      f"{args.million_repeats}: {m.wall_s:.1f} s, peak RSS {m.main_peak_mib:,.0f} MiB")
        report.million = Series(repeats)
    if args.memory:
        for trials in MEMORY_TRIALS:
            m = run_isolated(MILLION_SCENARIO, args.workers, trials, full_run=True, rows="both")
            report.memory.append(m)
            _progress(f"  {m.scenario}: {trials:,} trials, full run, rows both: {m.wall_s:.1f} s, main peak RSS "
                      f"{m.main_peak_mib:,.0f} MiB")
    report.provenance["load_end"] = list(os.getloadavg())
    head = _git("rev-parse", "--short", "HEAD")
    if head != report.provenance["commit"]:
        report.provenance["commit_end"] = head
    measured = [m for r in report.scenarios for s in (r.one, r.many) if s is not None for m in s.repeats]
    measured += report.million.repeats if report.million is not None else []
    measured += report.memory
    report.provenance["code"] = sorted({m.code for m in measured})
    report.targets = judge(report.scenarios, report.million, report.memory)
    return report


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark (or, with the hidden ``--_one``, one measurement) and print the results."""
    args = parse_args(argv)
    if args._one is not None:
        m = measure_one(args._one, args.workers, args.trials or trials_for(args._one), args._full_run, args._rows)
        print(json.dumps(asdict(m)))
        return 0
    report = benchmark(args)
    print(render(report))
    if args.json is not None:
        args.json.write_text(json.dumps(report.as_dict(), indent=2) + "\n", encoding="utf-8")
        print(f"\nFigures written to {args.json}")
    return 1 if args.check and not all(t.passed for t in report.targets) else 0


if __name__ == "__main__":
    sys.exit(main())
