"""Trial rows on disk: trials.csv and trials.parquet, written from the checkpoints, and what is kept in memory."""

from __future__ import annotations

import hashlib
import json
import math
import shutil
from collections import Counter
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from custodysim.cli import app
from custodysim.errors import OptionError, RunFolderError
from custodysim.running.losses import LossesBuilder
from custodysim.running.rows import Chunk, Columns
from custodysim.running.runfolder import read_all_rows, read_run
from custodysim.running.runner import run_variants, simulate
from custodysim.running.trialscsv import write_trials_csv
from custodysim.scenario.loader import load_scenario
from custodysim.studies.catalog import catalog
from custodysim.studies.run import execute_run, rerender

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"
DMM = SCENARIOS / "dmm-2024.yaml"
TRIALS = 2600  # two whole chunks and a tail of quarter chunks
SEED = 11
VARIANTS = ["baseline", "independent-verification", "split-wallets"]


@pytest.fixture(scope="module")
def both(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A dmm-2024 run that wrote its rows to both files."""
    out = tmp_path_factory.mktemp("rows") / "both"
    execute_run(DMM, trials=TRIALS, seed=SEED, out=out, variants=VARIANTS, rows="both")
    return out


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    """Return whether two float columns hold the same values, bit for bit (NaN equal to NaN)."""
    return a.shape == b.shape and bool((a.view(np.int64) == b.view(np.int64)).all())


def test_parquet_holds_exactly_the_rows_of_the_csv(both):
    """trials.parquet and trials.csv of one run read back to the same rows, every number bit for bit."""
    from_csv, cols_csv = read_all_rows(both / "trials.csv")
    from_parquet, cols_parquet = read_all_rows(both / "trials.parquet")
    assert cols_csv == cols_parquet
    assert [r.name for r in from_csv] == [r.name for r in from_parquet] == VARIANTS
    for a, b in zip(from_csv, from_parquet, strict=True):
        assert all(_same(a.numbers[c], b.numbers[c]) for c in cols_csv.numeric)
        assert all((a.text(c) == b.text(c)).all() for c in Columns.text)
    manifest = json.loads((both / "manifest.json").read_text())
    assert manifest["rows"] == "both" and {"trials.csv", "trials.parquet"} <= set(manifest["files"])


def test_rows_written_from_the_checkpoints_are_those_of_a_run_held_in_memory(both, tmp_path):
    """The run streams its rows to trials.csv from its checkpoints: byte for byte the file of the rows held whole."""
    rows, cols = run_variants(load_scenario(DMM), TRIALS, SEED, VARIANTS[1:])
    write_trials_csv(tmp_path / "trials.csv", rows, cols)
    assert (tmp_path / "trials.csv").read_bytes() == (both / "trials.csv").read_bytes()


def test_report_reads_the_parquet_when_a_run_has_both(both, tmp_path):
    """Given both files, report reads trials.parquet (the faster) and recomputes the run's own summary."""
    copy = tmp_path / "copy"
    shutil.copytree(both, copy)
    assert read_run(copy).rows_file == "trials.parquet"
    assert rerender(copy).summary["variants"] == json.loads((both / "summary.json").read_text())["variants"]


def test_the_summary_of_a_run_is_recomputed_exactly_from_either_file(both, tmp_path):
    """Figures summed in blocks aligned on trial numbers: re-read from the CSV, in other blocks, they are the run's."""
    only = tmp_path / "csv-only"
    shutil.copytree(both, only)
    (only / "trials.parquet").unlink()
    assert read_run(only).rows_file == "trials.csv"
    assert rerender(only).summary["variants"] == json.loads((both / "summary.json").read_text())["variants"]


def test_a_run_asked_for_parquet_writes_no_csv_and_every_reader_takes_it(both, tmp_path):
    """--rows parquet writes trials.parquet instead of trials.csv; report, compare, trace and the catalog read it."""
    out = tmp_path / "runs" / "p"
    runner = CliRunner()
    result = runner.invoke(app, ["run", str(DMM), "--trials", "200", "--variant", "baseline", "--rows", "parquet",
                                 "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert (out / "trials.parquet").is_file() and not (out / "trials.csv").exists()
    assert "trials.parquet" in result.output
    summary = json.loads((out / "summary.json").read_text())["variants"]
    assert runner.invoke(app, ["report", str(out)]).exit_code == 0
    assert json.loads((out / "summary.json").read_text())["variants"] == summary
    compared = runner.invoke(app, ["compare", str(both), str(out), "--out", str(tmp_path / "cmp")])
    assert compared.exit_code == 0, compared.output
    worst = max(range(200), key=lambda k: read_run(out).losses[0].loss[k])
    told = runner.invoke(app, ["trace", str(out), "--trial", str(worst)])
    assert told.exit_code == 0 and "outcome:" in told.output, told.output
    (entry,) = catalog(tmp_path / "runs").entries
    assert entry.status == "complete", entry


def test_an_unknown_rows_format_or_parquet_without_pyarrow_is_refused_before_any_work(tmp_path, monkeypatch):
    """--rows xlsx names the choices; parquet without pyarrow says how to install it; nothing is written."""
    result = CliRunner().invoke(app, ["run", str(DMM), "--trials", "10", "--rows", "xlsx", "--out", str(tmp_path / "x")])
    assert result.exit_code == 1 and "--rows takes csv, parquet, both" in result.output
    import custodysim.running.trialsparquet as trialsparquet

    monkeypatch.setattr(trialsparquet.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(OptionError, match=r"pip install 'custodysim\[parquet\]'"):
        execute_run(DMM, trials=10, out=tmp_path / "y", rows="both")
    assert not any(tmp_path.iterdir())


def test_rows_out_of_trial_order_are_refused_as_damaged(both, tmp_path):
    """A rows file re-sorted (trial 8 before trial 7) is refused, naming the variant and the trial."""
    bad = tmp_path / "sorted"
    shutil.copytree(both, bad)
    (bad / "trials.parquet").unlink()
    lines = (bad / "trials.csv").read_text().splitlines(keepends=True)
    lines[8], lines[9] = lines[9], lines[8]  # trials 7 and 8 of the first variant
    (bad / "trials.csv").write_text("".join(lines), newline="")
    with pytest.raises(RunFolderError, match=r"'baseline'.* out of order: trial 8 after 7 trials"):
        read_run(bad)


def test_a_run_that_writes_its_rows_from_checkpoints_holds_no_row():
    """Simulate without keep_rows keeps each variant's losses (a float per trial) and none of its rows."""
    result = simulate(load_scenario(DMM), 300, SEED, VARIANTS[1:], keep_rows=False)
    assert result.rows == [] and [r.name for r in result.losses] == VARIANTS
    assert all(len(r) == 300 and r.loss.dtype == np.float64 for r in result.losses)
    assert result.pieces == [(0, 250), (250, 50)]


def _chunk(first: int, numbers: np.ndarray, texts: list[list[str]]) -> Chunk:
    numbers = numbers.copy()
    numbers[:, 0] = np.arange(first, first + len(numbers))
    return Chunk.from_texts(numbers, texts)


COLS = Columns(("BTC",), ("vault",))


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 2500), cuts=st.lists(st.integers(1, 2499), max_size=6), seed=st.integers(0, 2**16))
def test_figures_do_not_depend_on_how_the_trials_arrive(n, cuts, seed):
    """However the trials are cut into chunks, the sums, counts and kept values are the same, and equal the columns'."""
    rng = np.random.default_rng(seed)
    numbers = np.zeros((n, len(COLS.numeric)))
    losing = rng.random(n) < 0.2
    for column in ("loss_usd", "loss_BTC", "loss_usd_tampering", "loss_usd_wallet_vault"):
        numbers[:, COLS.numeric.index(column)] = np.where(losing, rng.lognormal(10, 3, n), 0.0)
    numbers[:, COLS.numeric.index("withdrawal_delay_mean_hours")] = rng.choice([0.0, 1.5, 32.25], n)
    numbers[:, COLS.numeric.index("transfers_signed")] = rng.integers(0, 40, n)
    texts = [["tampering" if x else "none", "stole" if x else "no_campaign", "", "guard" if k % 3 else "", ""]
             for k, x in enumerate(losing.tolist())]
    whole = LossesBuilder("v", COLS)
    whole.add(_chunk(0, numbers, texts))
    one = whole.finish()
    pieces = LossesBuilder("v", COLS)
    bounds = sorted({0, n, *(c for c in cuts if c < n)})
    for a, b in pairwise(bounds):
        pieces.add(_chunk(a, numbers[a:b], texts[a:b]))
    other = pieces.finish()
    assert one.sums == other.sums
    assert one.text_counts == other.text_counts and one.losing_text_counts == other.losing_text_counts
    assert _same(one.loss, other.loss) and _same(one.column("loss_BTC"), other.column("loss_BTC"))
    assert _same(one.sorted_values("withdrawal_delay_mean_hours"),
                 np.sort(numbers[:, COLS.numeric.index("withdrawal_delay_mean_hours")]))
    for j, column in enumerate(COLS.numeric[1:], start=1):
        assert math.isclose(one.mean(column), float(np.mean(numbers[:, j])), rel_tol=1e-12, abs_tol=1e-9), column
    assert one.counts("stopped_by", losing=True) == Counter(t[3] for t, x in zip(texts, losing, strict=True) if x)


def test_an_interrupted_parquet_run_resumes_to_parquet_and_an_older_plan_to_csv(tmp_path):
    """The plan keeps --rows: a resumed run writes the file asked for; a plan from before --rows writes trials.csv."""
    from faults import SMALL, edit_json, interrupted_run

    from custodysim.running.outputs import partial_dir
    from custodysim.studies.run import PLAN, resume_run

    parquet, older = tmp_path / "parquet", tmp_path / "older"
    interrupted_run(parquet, rows="parquet")
    assert resume_run(parquet).files == ("report.html", "report.md", "summary.json", "trials.parquet", "events.csv",
                                         "stories.json", "scenario.yaml", "scenario.resolved.yaml", "manifest.json")
    assert (parquet / "trials.parquet").is_file() and not (parquet / "trials.csv").exists()

    def before_rows(plan: dict) -> None:
        del plan["rows"], plan["checksum"]
        plan["checksum"] = hashlib.sha256(json.dumps(plan, sort_keys=True).encode()).hexdigest()

    interrupted_run(older)
    edit_json(partial_dir(older) / PLAN, before_rows)
    resume_run(older)
    assert (older / "trials.csv").is_file() and not (older / "trials.parquet").exists()
    assert read_all_rows(older / "trials.csv")[0][1].name == SMALL["variants"][0]
