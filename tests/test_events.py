"""Loss events: the event loss table beside the year loss table, occurrence figures, insurance per occurrence."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from custodysim.analysis.economics import insured_part, ruin_loss
from custodysim.errors import RunFolderError
from custodysim.running.runfolder import read_all_rows, read_run
from custodysim.scenario.schema import Finance, Insurance
from custodysim.studies.run import execute_run, rerender

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"


@pytest.fixture(scope="module")
def split(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """dmm-2024's baseline and split wallets, 1,500 trials: some years lose through two campaigns."""
    out = tmp_path_factory.mktemp("events") / "run"
    execute_run(SCENARIOS / "dmm-2024.yaml", trials=1500, seed=11, out=out, variants=["baseline", "split-wallets"])
    return out


def test_a_years_events_add_up_to_its_loss_and_its_largest_is_at_most_it(split):
    """Every trial's loss is the sum of its events' losses, and its occurrence loss (largest event) is at most that."""
    for r in read_run(split).losses:
        assert r.events is not None and len(r.events) > 0
        trials = r.trials
        np.testing.assert_allclose(r.events.sums(trials), r.loss, rtol=1e-12)
        assert (r.events.largest(trials) <= r.loss).all()
        assert ((r.events.largest(trials) > 0) == (r.loss > 0)).all()


def test_one_campaigns_thefts_are_one_event(split):
    """A campaign's transfers are one occurrence: no trial has two events of one campaign, nor more than it had."""
    rows, _ = read_all_rows(split / "trials.csv")
    campaigns = {r.name: r.numbers["campaigns"] for r in rows}
    for r in read_run(split).losses:
        pairs = list(zip(r.events.trial.tolist(), r.events.text("event").tolist(), strict=True))
        assert len(pairs) == len(set(pairs))
        per_trial = np.bincount(r.events.trial, minlength=len(r))
        assert (per_trial <= campaigns[r.name]).all()


def test_occurrence_figures_come_from_the_largest_event_of_each_year(split):
    """summary.json's OEP VaR 99 is the 99% quantile of the years' largest events; two-event years show."""
    summary = json.loads((split / "summary.json").read_text())
    for r in read_run(split).losses:
        o = summary["variants"][r.name]["occurrence"]
        largest = r.events.largest(r.trials)
        assert o["var99_usd"] == float(np.quantile(largest, 0.99, method="higher"))
        assert o["max_usd"] == largest.max()
        assert o["events_per_year"] == pytest.approx(len(r.events) / len(r))
        assert o["var99_usd"] <= summary["variants"][r.name]["var99_usd"]
    o = summary["variants"]["split-wallets"]["occurrence"]
    assert o["events_per_year"] > o["p_any_event"], "split wallets: some years lose through two campaigns"
    assert o["max_usd"] < summary["variants"]["split-wallets"]["max_loss_usd"]


def test_the_report_shows_both_curves_and_names_both_tables(split):
    """report.html has the occurrence curve beside the aggregate one and names the year and event loss tables."""
    html = " ".join((split / "report.html").read_text().split())
    assert 'id="events"' in html and 'aria-labelledby="oep-title"' in html and 'aria-labelledby="lec-title"' in html
    assert "year loss table" in html and "event loss table" in html
    assert "Loss events" in (split / "report.md").read_text()


def test_events_that_do_not_add_up_are_refused(split, tmp_path):
    """A damaged events.csv (an event's loss changed) is refused when the run is read, naming the file."""
    copy = tmp_path / "copy"
    shutil.copytree(split, copy)
    lines = (copy / "events.csv").read_text().splitlines()
    fields = lines[1].split(",")
    fields[5] = str(float(fields[5]) * 2)
    lines[1] = ",".join(fields)
    (copy / "events.csv").write_text("\r\n".join(lines) + "\r\n")
    with pytest.raises(RunFolderError, match=r"events\.csv"):
        read_run(copy)


def test_a_run_written_before_events_were_kept_still_rerenders(split, tmp_path):
    """Without events.csv a run reads back with no events: no occurrence figures, no events section, no error."""
    copy = tmp_path / "old"
    shutil.copytree(split, copy)
    (copy / "events.csv").unlink()
    stored = rerender(copy)
    assert all(r.events is None for r in stored.losses)
    assert "occurrence" not in stored.summary["variants"]["baseline"]
    assert 'id="events"' not in (copy / "report.html").read_text()


def test_insurance_per_occurrence_pays_each_event_up_to_its_limit_and_the_year_up_to_the_annual_limit():
    """Events of 30 and 50 with a 10 deductible and a 25 limit: 20 + 25 = 45 per occurrence, 40 with an annual cap."""
    loss = np.array([80.0, 0.0, 12.0])
    events = (np.array([0, 0, 2]), np.array([30.0, 50.0, 12.0]))
    per_event = Insurance(deductible_usd=10, limit_usd=25, per="occurrence")
    capped = Insurance(deductible_usd=10, limit_usd=25, per="occurrence", annual_limit_usd=40)
    per_year = Insurance(deductible_usd=10, limit_usd=25)
    np.testing.assert_allclose(insured_part(loss, per_event, events), [45.0, 0.0, 2.0])
    np.testing.assert_allclose(insured_part(loss, capped, events), [40.0, 0.0, 2.0])
    np.testing.assert_allclose(insured_part(loss, per_year, events), [25.0, 0.0, 2.0])
    with pytest.raises(ValueError, match="loss events"):
        insured_part(loss, per_event)
    assert ruin_loss(Finance(capital_usd=100.0, insurance=per_event)) is None


def test_an_annual_limit_on_terms_per_year_is_refused_with_the_reason():
    """annual_limit_usd only makes sense per occurrence: with per: year the message says limit_usd is the year's."""
    with pytest.raises(ValidationError, match="limit_usd is the year's limit already"):
        Insurance(limit_usd=10, annual_limit_usd=20)


def test_without_a_year_of_two_events_the_occurrence_curve_is_not_drawn_twice(tmp_path):
    """When no year loses through two events the report says the curves coincide instead of drawing the same curve."""
    out = tmp_path / "one"
    execute_run(SCENARIOS / "dmm-2024.yaml", trials=300, seed=20240531, out=out, variants=["baseline"])
    (r,) = read_run(out).losses
    assert (r.events.largest(r.trials) == r.loss).all() and r.loss.max() > 0
    html = " ".join((out / "report.html").read_text().split())
    assert 'id="events"' in html and 'aria-labelledby="oep-title"' not in html
    assert "the occurrence curve is the aggregate curve above" in html
