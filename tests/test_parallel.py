"""Parallel and distributed runs give the figures of a one-process run; precision runs stop deterministically."""

from __future__ import annotations

import csv
import gc
import io
import json
import math
import pickle
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from conftest import local_dask_cluster
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner, Result

from custodysim.cli import app
from custodysim.errors import ExecutorError, OptionError, RunInterrupted
from custodysim.formatting import narrowing
from custodysim.running import trialscsv
from custodysim.running.checkpoints import ChunkStore
from custodysim.running.executors import ProcessPool, _start_context
from custodysim.running.precision import StopRule, relative_half_width
from custodysim.running.rows import Chunk, Columns, TextColumn, rows_from_arrays
from custodysim.running.runfolder import read_all_rows
from custodysim.running.runner import (
    CHUNK,
    FINE_TAIL,
    ChunkJob,
    chunks,
    columns_for,
    compiled_variant,
    pack_specs,
    simulate,
    simulate_chunk,
)
from custodysim.running.trialscsv import write_trials_csv
from custodysim.scenario.loader import load_scenario
from custodysim.studies.run import RunOutcome, execute_run, resume_run

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"
DMM = SCENARIOS / "dmm-2024.yaml"


@given(trials=st.integers(0, 30_000))
def test_chunks_cover_the_trials_in_order_and_end_fine(trials):
    """Chunks cover every trial once, in order; the last FINE_TAIL chunks' worth come in quarter chunks."""
    pieces = list(chunks(trials))
    assert [first for first, _ in pieces] == [sum(k for _, k in pieces[:i]) for i in range(len(pieces))]
    assert sum(k for _, k in pieces) == trials and all(k > 0 for _, k in pieces)
    tail = [k for first, k in pieces if first >= trials - FINE_TAIL * CHUNK]
    assert all(k <= CHUNK // 4 for k in tail)
    assert all(k == CHUNK for first, k in pieces if first < trials - FINE_TAIL * CHUNK - CHUNK)


def _interrupt_after(chunks: int) -> Callable[[str, int], None]:
    """Return a progress callback that acts like Ctrl-C once ``chunks`` variant-chunks have completed."""
    done = []

    def progress(name: str, k: int) -> None:
        done.append(name)
        if len(done) == chunks:
            raise KeyboardInterrupt

    return progress

def _figures(summary: dict) -> dict:
    return {k: v for k, v in summary.items() if k != "provenance"}


def _folder(path: Path) -> tuple[dict, bytes, bytes]:
    """Return a run folder's summary figures and the bytes of its trials.csv and events.csv."""
    return (_figures(json.loads((path / "summary.json").read_text())), (path / "trials.csv").read_bytes(),
            (path / "events.csv").read_bytes())


@pytest.fixture(scope="module")
def one_worker(tmp_path_factory) -> Path:
    """A dmm-2024 run of 2,500 trials (three chunks, the last one short) simulated in this process."""
    out = tmp_path_factory.mktemp("w1") / "run"
    execute_run(DMM, trials=2500, seed=11, out=out, workers=1)
    return out


def test_two_workers_give_the_figures_and_rows_of_one(one_worker, tmp_path):
    """A run on 2 worker processes writes the same summary.json figures and the same trials.csv as 1 worker."""
    execute_run(DMM, trials=2500, seed=11, out=tmp_path / "w2", workers=2)
    assert _folder(tmp_path / "w2") == _folder(one_worker)
    manifest = json.loads((tmp_path / "w2" / "manifest.json").read_text())
    assert (manifest["executor"], manifest["workers"]) == ("process-pool", 2)
    assert json.loads((one_worker / "manifest.json").read_text())["executor"] == "in-process"
    assert "workers" not in json.dumps(_figures(json.loads((tmp_path / "w2" / "summary.json").read_text())))


def test_cli_workers_do_not_change_the_figures(one_worker, tmp_path):
    """Through the CLI, --workers 2 writes the figures and rows of the 1-worker library run."""
    result = CliRunner().invoke(app, ["run", str(DMM), "--trials", "2500", "--seed", "11", "--workers", "2",
                                      "--out", str(tmp_path / "cli2")])
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / "cli2" / "manifest.json").read_text())
    assert (manifest["executor"], manifest["workers"]) == ("process-pool", 2)  # the option reached the run
    assert _folder(tmp_path / "cli2") == _folder(one_worker)


def test_progress_reports_every_chunk_of_every_variant_with_workers(tmp_path):
    """With 2 workers the progress callback still hears of every chunk: per variant, the trials add up."""
    seen: dict[str, int] = {}

    def progress(name: str, k: int) -> None:
        seen[name] = seen.get(name, 0) + k

    execute_run(DMM, trials=1100, out=tmp_path / "r", variants=["split-wallets"], workers=2, progress=progress)
    assert seen == {"baseline": 1100, "split-wallets": 1100}  # 5 chunks each, the last one short


def test_the_pool_hands_every_object_back_to_the_garbage_collector():
    """Objects hidden from the collector while forked workers live (gc.freeze) are handed back when the map ends or stops early."""
    pool = ProcessPool(2)
    forking = _start_context(abs).get_start_method() == "fork"  # asked as the pool will, before it starts threads
    assert sorted(x for _, x in pool.map_unordered(abs, [-1, -2, -3])) == [1, 2, 3]
    assert gc.get_freeze_count() == 0
    results = pool.map_unordered(abs, [-1, -2, -3, -4, -5])
    next(results)
    assert (gc.get_freeze_count() > 0) == forking  # hidden while the forked workers live
    results.close()  # a caller that stops early (a precision target met, Ctrl-C)
    assert gc.get_freeze_count() == 0


def test_a_worker_unpacks_the_specs_only_for_a_variant_it_has_not_compiled():
    """A chunk job's packed specs are read only for a variant not compiled yet: later jobs cost no unpickling."""
    loaded = load_scenario(DMM)
    specs = loaded.specs(["independent-whitelist"])
    models = {name: compiled_variant(loaded.sha256, name, 5, spec)[0] for name, spec in specs.items()}
    cols = columns_for(models)

    def job(packed: bytes) -> ChunkJob:
        return ChunkJob(tuple(specs), packed, loaded.sha256, 5, 0, 300, cols, 0)

    rows = simulate_chunk(job(pack_specs(specs)))
    unreadable = simulate_chunk(job(b"not a pickle"))  # every variant is compiled in this process already
    assert rows.keys() == unreadable.keys() == set(specs)
    for name in specs:
        assert np.array_equal(rows[name].numbers, unreadable[name].numbers, equal_nan=True)
    with pytest.raises(pickle.UnpicklingError):
        simulate_chunk(ChunkJob(tuple(specs), b"not a pickle", "another scenario", 5, 0, 300, cols, 0))


def test_interrupted_parallel_run_resumes_to_identical_figures(tmp_path):
    """A 2-worker run stopped after a few chunks, resumed on 2 workers, equals an uninterrupted 1-worker run."""
    out = tmp_path / "run"
    with pytest.raises(RunInterrupted):
        execute_run(DMM, trials=2500, seed=3, out=out, variants=["split-wallets"], workers=2,
                    progress=_interrupt_after(3))  # of 2 x 10 chunks
    assert ChunkStore(tmp_path / ".run.partial").count() >= 3
    resume_run(out, workers=2)
    execute_run(DMM, trials=2500, seed=3, out=tmp_path / "whole", variants=["split-wallets"], workers=1)
    assert _folder(out) == _folder(tmp_path / "whole")


# --- precision ------------------------------------------------------------------------------------------------

PRECISE = {"variants": ["split-wallets"], "seed": 5, "precision": 0.1}  # not met at 2,000 or 3,000 trials


@pytest.fixture(scope="module")
def precise(tmp_path_factory) -> RunOutcome:
    """A run of PRECISE (stopped by its precision target, after 4 chunks) simulated in this process."""
    return execute_run(DMM, out=tmp_path_factory.mktemp("precise") / "run", workers=1, **PRECISE)


def test_precision_run_stops_at_the_same_trial_count_whatever_the_workers(precise, tmp_path):
    """--precision stops after the same chunks with 1 and 2 workers, with the same figures and rows."""
    a = precise
    b = execute_run(DMM, out=tmp_path / "b", workers=2, **PRECISE)
    assert _folder(a.folder) == _folder(tmp_path / "b")
    p = a.summary["precision"]
    assert p["stopped_by"] == "precision" and p["target"] == 0.1
    assert 2 * CHUNK < a.summary["trials"] < 1_000_000 and a.summary["trials"] % CHUNK == 0
    assert b.summary["trials"] == a.summary["trials"]
    assert set(p["achieved"]) == {"baseline", "split-wallets"}
    assert all(0 <= x <= 0.1 for x in p["achieved"].values())


def test_precision_run_stops_at_the_first_chunk_where_the_target_is_met(precise, tmp_path):
    """The rule holds at the stopping count and did not hold one chunk earlier; the rows are a fixed run's."""
    stopped = precise
    n = stopped.summary["trials"]
    result = simulate(load_scenario(DMM), n, 5, ["split-wallets"])
    assert {r.name: relative_half_width(r.loss) for r in result.rows} == stopped.summary["precision"]["achieved"]
    assert max(relative_half_width(r.loss[:n - CHUNK]) for r in result.rows) > 0.1
    fixed = execute_run(DMM, trials=n, seed=5, out=tmp_path / "f", variants=["split-wallets"])
    assert _figures(fixed.summary)["variants"] == _figures(stopped.summary)["variants"]


def test_precision_run_stops_at_max_trials_and_says_so(tmp_path):
    """A target out of reach stops at --max-trials, and summary.json and report.md say so."""
    outcome = execute_run(DMM, out=tmp_path / "r", variants=["split-wallets"], precision=0.001, max_trials=2500)
    p = outcome.summary["precision"]
    assert outcome.summary["trials"] == 2500 and p["stopped_by"] == "max_trials" and p["max_trials"] == 2500
    assert all(x > 0.001 for x in p["achieved"].values())
    assert "Stopped by the trial limit (2500 trials)" in (tmp_path / "r" / "report.md").read_text()


def test_variant_without_loss_counts_as_precise():
    """A variant with no loss in any trial has a relative half-width of 0 (precise), not a division by zero."""
    assert relative_half_width(np.zeros(2000)) == 0.0
    assert relative_half_width(np.array([0.0, 10.0])) > 0


def test_interrupted_precision_run_resumes_to_the_same_stop(precise, tmp_path):
    """A precision run interrupted mid-way resumes (its plan keeps the target) to the uninterrupted run's figures."""
    with pytest.raises(RunInterrupted):
        execute_run(DMM, out=tmp_path / "run", progress=_interrupt_after(4), **PRECISE)
    resumed = resume_run(tmp_path / "run", workers=2)
    assert _figures(resumed.summary) == _figures(precise.summary)


@pytest.mark.parametrize("target", [0, 1, 1.5, -0.02])
def test_precision_out_of_range_is_refused(target, tmp_path):
    """A precision outside (0, 1) is refused before any work, saying what it means."""
    with pytest.raises(OptionError, match="between 0 and 1"):
        StopRule(target)
    result = CliRunner().invoke(app, ["run", str(DMM), "--precision", str(target), "--out", str(tmp_path / "r")])
    assert result.exit_code == 1 and "--precision" in result.output and "Traceback" not in result.output
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(("args", "message"), [
    (["--precision", "0.05", "--trials", "100"], "not both"),
    (["--max-trials", "100"], "give --precision too"),
    (["--precision", "0.05", "--max-trials", "0"], "--max-trials must be 1 or more"),
])
def test_precision_options_that_do_not_fit_are_refused(args, message, tmp_path):
    """--trials with --precision, or --max-trials without it or below 1, is a clear error (exit 1)."""
    result = CliRunner().invoke(app, ["run", str(DMM), *args, "--out", str(tmp_path / "r")])
    assert result.exit_code == 1 and message in result.output, result.output


# --- options and executors ------------------------------------------------------------------------------------

@pytest.mark.parametrize("workers", ["0", "-1"])
def test_workers_below_one_is_a_clear_error(workers, tmp_path):
    """--workers 0 or negative exits 1 with a message naming --workers, and writes nothing."""
    result = CliRunner().invoke(app, ["run", str(DMM), "--workers", workers, "--out", str(tmp_path / "r")])
    assert result.exit_code == 1
    assert f"--workers must be 1 or more (1 runs in this process), not {workers}" in result.output
    assert not list(tmp_path.iterdir())


def test_dask_without_scheduler_is_a_clear_error(tmp_path):
    """--executor dask without --scheduler exits 1 naming --scheduler."""
    result = CliRunner().invoke(app, ["run", str(DMM), "--executor", "dask", "--out", str(tmp_path / "r")])
    assert result.exit_code == 1 and "--executor dask needs --scheduler" in result.output
    assert not list(tmp_path.iterdir())


def test_unknown_executor_is_a_clear_error(tmp_path):
    """An --executor other than local or dask is refused, listing the choices."""
    result = CliRunner().invoke(app, ["run", str(DMM), "--executor", "spark", "--out", str(tmp_path / "r")])
    assert result.exit_code == 1 and "one of local, dask" in result.output


def test_unreachable_scheduler_is_a_clear_error(tmp_path, monkeypatch):
    """A scheduler that does not answer gives exit 1 and a message naming the address, no traceback, no folder."""
    pytest.importorskip("distributed")
    import custodysim.running.executors

    monkeypatch.setattr(custodysim.running.executors, "CONNECT_TIMEOUT", 1.0)
    result = CliRunner().invoke(app, ["run", str(DMM), "--executor", "dask", "--scheduler", "tcp://127.0.0.1:9",
                                      "--out", str(tmp_path / "r")])
    assert result.exit_code == 1, result.output
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in result.output
    assert "Traceback" not in result.output and not list(tmp_path.iterdir())


def test_dask_not_installed_is_a_clear_error(monkeypatch):
    """Without dask.distributed installed, --executor dask says how to install it."""
    import sys

    from custodysim.running.executors import DaskExecutor

    monkeypatch.setitem(sys.modules, "distributed", None)  # makes the import fail
    with pytest.raises(ExecutorError, match=r"pip install 'custodysim\[dask\]'"):
        DaskExecutor("tcp://127.0.0.1:9")


@pytest.fixture(scope="module")
def dask_cluster():
    """A local Dask cluster of 2 worker processes with 1 thread each, closed after the module."""
    yield from local_dask_cluster()


@pytest.fixture(scope="module")
def dask_run(dask_cluster, tmp_path_factory) -> tuple[Result, Path]:
    """The CLI run of one_worker's scenario, trials and seed on the Dask cluster, and its folder (run once)."""
    out = tmp_path_factory.mktemp("dask") / "d"
    result = CliRunner().invoke(app, ["run", str(DMM), "--trials", "2500", "--seed", "11", "--executor", "dask",
                                      "--scheduler", dask_cluster.scheduler_address, "--out", str(out)])
    return result, out


def test_dask_cluster_gives_the_figures_of_a_local_run(dask_run, one_worker):
    """A run on a Dask LocalCluster writes the figures and rows of a 1-worker local run."""
    result, out = dask_run
    assert result.exit_code == 0, result.output
    assert _folder(out) == _folder(one_worker)
    manifest = json.loads((out / "manifest.json").read_text())
    assert (manifest["executor"], manifest["workers"]) == ("dask", 2)
    assert json.loads((out / "summary.json").read_text())["trials"] == 2500


def test_cli_runs_on_a_dask_cluster(dask_run, dask_cluster):
    """The CLI with --executor dask --scheduler ADDRESS runs there and says where it wrote the run."""
    result, out = dask_run
    assert result.exit_code == 0, result.output
    assert json.loads((out / "manifest.json").read_text())["command"][-6:] == [
        "--executor", "dask", "--scheduler", dask_cluster.scheduler_address, "--out", str(out)]
    assert result.stdout.strip().splitlines()[-1].startswith(f"wrote {out}/ (")


# --- compact rows ---------------------------------------------------------------------------------------------

INTEGER_COLUMNS = {"trial", "campaigns", "footholds", "transfers_signed", "transfers_delayed", "signing_ceremonies",
                   "transfers_blocked", "locks"}
ODD_TEXTS = ["", "a,b", 'say "hi"', "line\nbreak", "plain", "ünïcode > x"]


def _odd_rows() -> tuple[list, Columns]:
    cols = Columns(("BTC",), ("hot", "vault"))
    rng = np.random.default_rng(1)
    rows = []
    for name in ("baseline", "odd,name"):
        numbers = rng.choice([0.0, 1.5, 1e-300, 123456789.123, -0.0, math.nan, 0.1 + 0.2],
                             size=(2300, len(cols.numeric)))
        numbers[:, 0] = np.arange(2300)
        for j, c in enumerate(cols.numeric):
            if c in INTEGER_COLUMNS:  # counts: whole numbers
                numbers[:, j] = rng.integers(0, 5, size=2300) if c != "trial" else np.arange(2300)
        texts = [[ODD_TEXTS[(i * (j + 1)) % len(ODD_TEXTS)] for j in range(len(Columns.text))] for i in range(2300)]
        rows.append(rows_from_arrays(name, cols, numbers, texts))
    # Like a run: most rows the same but for the trial number, the others the baseline's.
    quiet = rng.random(2300) < 0.9
    numbers = np.column_stack([rows[0].numbers[c] for c in cols.numeric])
    numbers[quiet, 1:] = numbers[0, 1:]
    texts = [[ODD_TEXTS[0 if quiet[i] else (i * (j + 1)) % len(ODD_TEXTS)] for j in range(len(Columns.text))]
             for i in range(2300)]
    rows.append(rows_from_arrays("quiet", cols, numbers, texts))
    return rows, cols


def test_text_columns_round_trip_through_trials_csv(tmp_path):
    """Categorical text columns (commas, quotes, line breaks, empty) and numbers come back from trials.csv unchanged."""
    rows, cols = _odd_rows()
    write_trials_csv(tmp_path / "trials.csv", rows, cols)
    back, back_cols = read_all_rows(tmp_path / "trials.csv")
    assert back_cols == cols and [r.name for r in back] == [r.name for r in rows]
    for a, b in zip(rows, back, strict=True):
        for c in cols.numeric:
            np.testing.assert_array_equal(a.numbers[c], b.numbers[c])
            assert np.array_equal(np.signbit(a.numbers[c]), np.signbit(b.numbers[c]))
        for c in Columns.text:
            assert a.text(c).tolist() == b.text(c).tolist()
            assert b.categorical(c).codes.dtype == np.int32 and len(b.categorical(c).categories) <= len(ODD_TEXTS)


@pytest.mark.parametrize(("block", "spread"), [(trialscsv.WRITE_BLOCK, trialscsv._SPREAD), (700, trialscsv._SPREAD),
                                               (700, np.uint64(0))], ids=["one-block", "blocks", "colliding-hashes"])
def test_trials_csv_is_what_the_csv_module_writes(tmp_path, monkeypatch, block, spread):
    """The fast writer's bytes equal the csv module's, row by row with repr numbers (the format readers rely on).

    Also in blocks of 700 rows (the last one short), and when every row's hash collides (so rows that
    share a hash are still told apart by their values).
    """
    monkeypatch.setattr(trialscsv, "WRITE_BLOCK", block)
    monkeypatch.setattr(trialscsv, "_SPREAD", spread)
    rows, cols = _odd_rows()
    write_trials_csv(tmp_path / "trials.csv", rows, cols)
    expected = io.StringIO()
    writer = csv.writer(expected)
    writer.writerow(["variant", *cols.numeric, *Columns.text])
    for r in rows:
        for i in range(len(r)):
            numbers = ["" if math.isnan(r.numbers[c][i]) else str(int(r.numbers[c][i])) if c in INTEGER_COLUMNS
                       else repr(float(r.numbers[c][i])) for c in cols.numeric]
            writer.writerow([r.name, *numbers, *(r.text(c)[i] for c in Columns.text)])
    assert (tmp_path / "trials.csv").read_bytes() == expected.getvalue().encode("utf-8")


def test_rows_hold_text_as_codes_not_strings():
    """A run's text columns are int32 codes over a few categories, and numbers are float64 column views."""
    result = simulate(load_scenario(DMM), 1500, 1, ["split-wallets"])
    r = result.rows[0]
    outcome = r.categorical("outcome")
    assert outcome.codes.dtype == np.int32 and len(outcome.codes) == 1500
    assert set(outcome.categories) <= {"loss", "stopped", "no_theft", "no_foothold", "no_campaign"}
    assert sum(outcome.counts().values()) == 1500
    assert all(r.numbers[c].dtype == np.float64 and r.numbers[c].flags.c_contiguous for c in result.columns.numeric)


def test_categories_are_merged_across_chunks_in_first_seen_order():
    """Chunks with their own categories are re-coded into one list, in the order values first appear."""
    from custodysim.running.rows import RowsBuilder

    cols = Columns((), ())
    builder = RowsBuilder("v", cols, 1)  # too small: it grows
    width = len(cols.numeric)
    for texts in (["b", "a"], ["c", "a", "b"]):
        builder.add(Chunk.from_texts(np.zeros((len(texts), width)), [[t] * len(Columns.text) for t in texts]))
    rows = builder.finish()
    assert rows.categorical("outcome").categories == ("b", "a", "c")
    assert rows.text("outcome").tolist() == ["b", "a", "c", "a", "b"]
    assert TextColumn.encode(["x", "y", "x"]).counts() == {"x": 2, "y": 1}


def test_chunk_store_keeps_codes_and_categories(tmp_path):
    """A chunk saved to the store loads back with the same numbers, codes and categories."""
    numbers = np.arange(6.0).reshape(2, 3)
    chunk = Chunk.from_texts(numbers, [["", "a,b", "x", "y", "z"], ["q", "a,b", "x", "", "z"]])
    store = ChunkStore(tmp_path)
    store.save("v", 0, chunk)
    back = store.load("v", 0, 2, (3, 5))
    assert back is not None
    np.testing.assert_array_equal(back.numbers, numbers)
    np.testing.assert_array_equal(back.codes, chunk.codes)
    assert back.categories == chunk.categories
    assert store.load("v", 0, 3, (3, 5)) is None  # another shape: simulated again


def test_chunk_store_does_not_load_a_damaged_chunk(tmp_path):
    """A chunk file cut short, with a byte altered, with bytes added, or of another format loads as None."""
    store = ChunkStore(tmp_path)
    store.save("v", 0, Chunk.from_texts(np.arange(6.0).reshape(2, 3), [["a"] * 5, ["b"] * 5]))
    path = next(store.folder.iterdir())
    whole = path.read_bytes()
    altered = bytearray(whole)
    altered[len(whole) // 2] ^= 1
    for damaged in (b"", whole[:len(whole) // 2], whole[:-1], bytes(altered), whole + b"\0", b"PK" + whole[2:]):
        path.write_bytes(damaged)
        assert store.load("v", 0, 2, (3, 5)) is None
    path.write_bytes(whole)
    assert store.load("v", 0, 2, (3, 5)) is not None


# --- paired vs unpaired ---------------------------------------------------------------------------------------

def test_narrowing_says_how_much_pairing_buys():
    """The paired/unpaired ratio reads as 'Nx narrower', 'exact' for a zero-width paired CI, blank for none."""
    assert narrowing([-1.0, 1.0], [-4.0, 4.0]) == "4.0x narrower"
    assert narrowing([0.0, 0.0], [-4.0, 4.0]).startswith("exact")
    assert narrowing([0.0, 0.0], [0.0, 0.0]) == ""


def test_cli_and_report_show_how_much_narrower_the_paired_ci_is(tmp_path):
    """The CLI prints, and report.md tabulates, each variant's paired-vs-unpaired CI ratio."""
    result = CliRunner().invoke(app, ["run", str(DMM), "--trials", "300", "--variant", "split-wallets",
                                      "--variant", "threshold-3of5", "--workers", "1", "--out", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    v = summary["variants"]["split-wallets"]
    ratio = narrowing(v["diff_ci95_usd"], v["diff_ci95_unpaired_usd"])
    assert ratio.endswith("x narrower")
    assert f"split-wallets: {ratio}" in result.output
    assert "threshold-3of5: exact" in result.output
    assert ratio in (tmp_path / "r" / "report.md").read_text()


@pytest.fixture(scope="module")
def cli_precise(tmp_path_factory) -> tuple[Result, Path]:
    """A CLI run of split-wallets to a 50% precision target on 2 workers, and its folder."""
    out = tmp_path_factory.mktemp("cli-precise") / "r"
    result = CliRunner().invoke(app, ["run", str(DMM), "--variant", "split-wallets", "--precision", "0.5",
                                      "--max-trials", "5000", "--workers", "2", "--out", str(out)])
    return result, out


def test_html_report_shows_precision_pairing_and_executor(cli_precise):
    """report.html names the precision stop, the paired-vs-unpaired CI ratio, and the executor and workers."""
    result, out = cli_precise
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    html = (out / "report.html").read_text()
    assert "stopped by the precision target" in html and summary["precision"]["stopped_by"] == "precision"
    v = summary["variants"]["split-wallets"]
    assert narrowing(v["diff_ci95_usd"], v["diff_ci95_unpaired_usd"]) in html
    assert "process-pool, 2 workers" in html


def test_cli_precision_run_prints_how_it_stopped(cli_precise):
    """The CLI with --precision prints the trials used, what stopped the run and the precision reached."""
    result, out = cli_precise
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["trials"] == 2 * CHUNK  # the minimum: 2 chunks are precise enough for 50%
    assert "Stopped after 2,000 trials per variant (precision target reached; target 50.0%)" in result.output
    assert json.loads((out / "manifest.json").read_text())["trials"] == 2000
