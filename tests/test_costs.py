"""Control costs, total cost of risk, capital and insurance: summed from the specs, computed from the rows."""

from __future__ import annotations

import copy
import csv

import numpy as np
import pytest
from conftest import BASE, MINI, build, edit, load
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from custodysim.analysis.economics import (
    control_costs,
    cost_figures,
    insured_part,
    retained_loss,
    scenario_economics,
    survival_figures,
    variant_economics,
)
from custodysim.cli import app
from custodysim.errors import ScenarioError
from custodysim.running.runner import simulate
from custodysim.scenario.loader import load_scenario_text
from custodysim.scenario.schema import Finance, Insurance
from custodysim.studies.run import execute_run, rerender, summarise_run


def _costly() -> dict:
    """Return the base scenario with a cost on every kind of control, and two variants."""
    doc = copy.deepcopy(BASE)
    doc["controls"] = {
        "detection": {"edr": {"watches": ["laptop"], "time_to_detect_days": 30.0, "annual_cost_usd": 100.0},
                      "free": {"watches": ["ui"], "time_to_detect_days": 60.0}},
        "outflow_monitoring": {"watch": {"probability": 0.5, "annual_cost_usd": 50.0}},
        "response": {"annual_cost_usd": 25.0},
    }
    doc["wallets"]["vault"]["policy"] = {"whitelist": {"enforced_by": "policy_engine", "annual_cost_usd": 10.0}}
    doc["variants"] = {
        "swap": {"annual_cost_usd": 1000.0, "set": {
            "wallets.vault.policy.whitelist": None,
            "wallets.vault.policy.delay": {"hours": 24, "enforced_by": "policy_engine", "annual_cost_usd": 7.0}}},
        "cheaper-edr": {"set": {"controls.detection.edr.annual_cost_usd": 40.0}},
    }
    return doc


def test_control_cost_sums_the_controls_present_in_each_resolved_variant():
    """A variant's control cost is what its resolved spec's controls state, plus its own cost."""
    loaded = load(_costly())
    econ = scenario_economics(loaded.baseline, loaded.specs())
    assert econ["baseline"].control_cost_usd == 100 + 50 + 25 + 10
    # the whitelist is gone, the delay and the variant's own cost are in
    assert econ["swap"].control_cost_usd == 100 + 50 + 25 + 7 + 1000
    assert econ["swap"].items == {"controls.detection.edr": 100.0, "controls.outflow_monitoring.watch": 50.0,
                                  "controls.response": 25.0, "wallets.vault.policy.delay": 7.0,
                                  "variants.swap": 1000.0}
    assert econ["cheaper-edr"].control_cost_usd == 40 + 50 + 25 + 10


def test_summary_total_cost_of_risk_is_annual_loss_plus_control_cost():
    """summary.json's costs add the stated control cost to the annualised expected loss, per variant."""
    doc = _costly()
    doc["settings"]["horizon_days"] = 182.5  # half a year: the annual loss is twice the mean
    loaded = load(doc)
    result = simulate(loaded, 300, 7)
    rows, cols = result.losses, result.columns
    summary = summarise_run(loaded, rows, cols, 300, 7)
    for r in rows:
        c = summary["variants"][r.name]["costs"]
        assert c["expected_annual_loss_usd"] == pytest.approx(2 * float(np.mean(r.loss)))
        assert c["total_cost_of_risk_usd"] == pytest.approx(c["expected_annual_loss_usd"] + c["control_cost_usd"])
    base, swap = summary["variants"]["baseline"]["costs"], summary["variants"]["swap"]["costs"]
    assert swap["total_cost_of_risk_diff_vs_baseline_usd"] == pytest.approx(
        swap["total_cost_of_risk_usd"] - base["total_cost_of_risk_usd"])
    low, high = summary["variants"]["swap"]["diff_ci95_usd"]
    assert swap["total_cost_of_risk_diff_ci95_usd"] == pytest.approx([2 * low + 997.0, 2 * high + 997.0])
    assert "survival" not in summary["variants"]["baseline"]  # no capital or insurance stated


def test_annualising_scales_by_365_over_the_horizon():
    """A mean loss over a 73-day horizon is multiplied by 5 to give the expected annual loss."""
    c = cost_figures(5.0, (1.0, 9.0), 73.0, variant_economics(load(BASE).baseline))
    assert c["expected_annual_loss_usd"] == 25.0
    assert c["expected_annual_loss_ci95_usd"] == [5.0, 45.0]
    assert c["control_cost_usd"] == 0.0


def test_insurance_arithmetic_on_hand_computed_rows():
    """The layer pays the covered share above the deductible, capped at the limit; the rest is retained."""
    loss = np.array([0.0, 5.0, 15.0, 100.0, 1000.0])
    layer = Insurance(deductible_usd=10.0, limit_usd=50.0, covered_share=0.8)
    np.testing.assert_allclose(insured_part(loss, layer), [0.0, 0.0, 4.0, 50.0, 50.0])
    np.testing.assert_allclose(retained_loss(loss, layer), [0.0, 5.0, 11.0, 50.0, 950.0])
    sv = survival_figures(loss, Finance(capital_usd=50.0, insurance=layer))
    assert sv["insurer_expected_payout_usd"] == pytest.approx(104.0 / 5)
    assert sv["retained_expected_loss_usd"] == pytest.approx(1016.0 / 5)
    assert sv["p_insurance_pays"] == pytest.approx(3 / 5)
    assert sv["p_insurance_exhausted"] == pytest.approx(2 / 5)
    assert sv["retained_es99_usd"] == 950.0  # the worst 1% of 5 trials is the worst trial
    assert sv["retained_max_usd"] == 950.0


def test_probability_of_ruin_counts_retained_losses_above_capital():
    """Ruin is a retained loss strictly above the capital; without insurance the retained loss is the loss."""
    loss = np.array([0.0, 0.0, 30.0, 50.0, 80.0, 200.0, 0.0, 0.0, 0.0, 0.0])
    assert survival_figures(loss, Finance(capital_usd=50.0))["p_retained_loss_exceeds_capital"] == 0.2
    assert survival_figures(loss, Finance(capital_usd=0.0))["p_retained_loss_exceeds_capital"] == 0.4
    insured = Finance(capital_usd=50.0, insurance=Insurance(limit_usd=40.0))  # 80 -> 40 kept, 200 -> 160
    assert survival_figures(loss, insured)["p_retained_loss_exceeds_capital"] == 0.1
    assert survival_figures(loss, Finance(insurance=Insurance(limit_usd=1.0)))["p_retained_loss_exceeds_capital"] is None


def test_capital_needed_keeps_ruin_within_its_odds():
    """With the 1-in-100 (1-in-1000) capital at most 1% (0.1%) of trials lose more, and at least that many lose as much."""
    rng = np.random.default_rng(3)
    loss = np.where(rng.random(20_000) < 0.1, rng.lognormal(16, 1.5, 20_000), 0.0)
    finance = Finance(insurance=Insurance(deductible_usd=1e6, limit_usd=5e7, covered_share=0.9))
    sv = survival_figures(loss, finance)
    kept = retained_loss(loss, finance.insurance)
    for key, odds in (("capital_needed_1_in_100_usd", 0.01), ("capital_needed_1_in_1000_usd", 0.001)):
        capital = sv[key]
        assert np.mean(kept > capital) <= odds
        assert np.mean(kept >= capital) >= odds  # the capital is a loss of the tail, not beyond it
    assert sv["capital_needed_1_in_100_usd"] == sv["retained_var99_usd"]
    assert sv["capital_needed_1_in_100_usd"] <= sv["capital_needed_1_in_1000_usd"]


@given(
    loss=st.lists(st.floats(min_value=0.0, max_value=1e12, allow_nan=False), min_size=1, max_size=50),
    deductible=st.floats(min_value=0.0, max_value=1e12),
    limit=st.floats(min_value=1e-3, max_value=1e12),
    share=st.floats(min_value=0.0, max_value=1.0),
)
def test_retained_plus_insured_is_the_loss(loss, deductible, limit, share):
    """In every trial the retained and insured parts add up to the loss, and neither is negative or too large."""
    x = np.array(loss)
    layer = Insurance(deductible_usd=deductible, limit_usd=limit, covered_share=share)
    paid, kept = insured_part(x, layer), retained_loss(x, layer)
    np.testing.assert_allclose(kept + paid, x, rtol=1e-12, atol=1e-3)
    assert np.all(kept <= x) and np.all(kept >= 0)
    assert np.all(paid >= 0) and np.all(paid <= limit) and np.all(paid <= x)


def test_finance_section_must_state_something_and_names_the_field():
    """An empty finance section, or a negative cost, is refused with the field's path."""
    with pytest.raises(ScenarioError) as empty:
        load_scenario_text(MINI + "finance: {}\n")
    assert "finance" in str(empty.value) and "capital_usd" in str(empty.value)
    bad = edit("  pe: {kind: policy_engine, owner: ex}\n", "  pe: {kind: policy_engine, owner: ex}\n") + \
        "finance: {insurance: {limit_usd: 0}}\n"
    with pytest.raises(ScenarioError) as zero_limit:
        load_scenario_text(bad)
    assert "finance.insurance.limit_usd" in str(zero_limit.value)
    doc = copy.deepcopy(BASE)
    doc["controls"] = {"response": {"annual_cost_usd": -5}}
    with pytest.raises(ScenarioError) as negative:
        load(doc)
    assert "controls.response.annual_cost_usd" in str(negative.value)


def test_cli_refuses_a_bad_finance_field_with_exit_code_1(tmp_path):
    """The validate command names a misspelt insurance field and exits 1, without a traceback."""
    path = tmp_path / "bad.yaml"
    path.write_text(MINI + "finance: {capital_usd: 1e9, insurance: {limit_usd: 1e8, deductable_usd: 1e6}}\n")
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 1
    assert "finance.insurance.deductable_usd" in result.output and "deductible_usd" in result.output
    assert "Traceback" not in result.output


def test_variant_may_state_its_own_capital_and_insurance(tmp_path):
    """A variant overriding finance gets its own survival figures; the losses do not change."""
    doc = copy.deepcopy(BASE)  # no whitelist: a rewrite takes the 1,000 BTC vault (USD 1 each)
    doc["finance"] = {"capital_usd": 500.0}
    doc["variants"] = {}
    doc["variants"]["insured"] = {"set": {"finance.insurance": {"deductible_usd": 100.0, "limit_usd": 300.0}}}
    loaded = load(doc)
    result = simulate(loaded, 300, 7)
    rows, cols = result.losses, result.columns
    v = summarise_run(loaded, rows, cols, 300, 7)["variants"]
    assert v["insured"]["expected_loss_usd"] == v["baseline"]["expected_loss_usd"]
    assert v["baseline"]["survival"]["insurer_expected_payout_usd"] == 0.0
    assert v["insured"]["survival"]["insurance"] == {"deductible_usd": 100.0, "limit_usd": 300.0, "covered_share": 1.0,
                                                     "per": "year", "annual_limit_usd": None}
    assert v["insured"]["survival"]["retained_expected_loss_usd"] < v["baseline"]["survival"]["retained_expected_loss_usd"]
    assert v["baseline"]["survival"]["p_retained_loss_exceeds_capital"] > 0  # a 1,000 BTC vault at USD 1


def test_report_and_cli_show_costs_and_survival(tmp_path):
    """report.md, report.html and the CLI tables carry the cost of risk and, with finance, the survival figures."""
    doc = _costly()
    doc["finance"] = {"capital_usd": 500.0, "insurance": {"limit_usd": 100.0}}
    path = tmp_path / "s.yaml"
    path.write_text(__import__("yaml").safe_dump(doc))
    result = CliRunner().invoke(app, ["run", str(path), "--trials", "200", "--workers", "1",
                                      "--out", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    assert "Cost of risk, USD a year" in result.output and "capital 1-in-100" in result.output
    md = (tmp_path / "run" / "report.md").read_text()
    html = (tmp_path / "run" / "report.html").read_text()
    assert "## Cost of risk" in md and "## Survival" in md and "`variants.swap` $1.00k" in md
    assert 'id="costs"' in html and 'id="survival"' in html


def test_run_written_before_the_new_columns_still_rerenders(tmp_path):
    """A trials.csv without the later operations columns reads back; their figures become null, the rest stay."""
    out = tmp_path / "run"
    first = execute_run(_write(tmp_path, _costly()), trials=200, out=out)
    with (out / "trials.csv").open(newline="") as fh:
        table = list(csv.reader(fh))
    drop = [table[0].index(c) for c in ("signing_ceremonies", "transfers_blocked")]
    with (out / "trials.csv").open("w", newline="") as fh:
        csv.writer(fh).writerows([[x for j, x in enumerate(r) if j not in drop] for r in table])
    again = rerender(out).summary["variants"]["baseline"]
    before = first.summary["variants"]["baseline"]
    assert again["expected_loss_usd"] == before["expected_loss_usd"]
    assert again["costs"] == before["costs"]
    assert again["operations"]["transfers_blocked_mean"] is None
    assert again["operations"]["signing_ceremonies_per_year"] is None
    assert "n/a" in (out / "report.md").read_text()


def _write(folder, doc) -> str:
    path = folder / "scenario.yaml"
    path.write_text(__import__("yaml").safe_dump(doc))
    return str(path)


def test_compare_adds_each_runs_total_cost_of_risk(tmp_path):
    """Comparing runs gives each entry the annualised expected loss plus its run's stated control cost."""
    from custodysim.studies.compare import compare_runs

    doc = _costly()
    a = execute_run(_write(tmp_path, doc), trials=200, out=tmp_path / "a")
    doc["controls"]["response"]["annual_cost_usd"] = 1025.0  # 1,000 more a year in the second run
    execute_run(_write(tmp_path, doc), trials=200, out=tmp_path / "b")
    comparison = compare_runs([tmp_path / "a", tmp_path / "b"], tmp_path / "cmp")
    first, second = comparison.entry("a:baseline"), comparison.entry("b:baseline")
    assert first.total_cost_of_risk_usd == pytest.approx(a.summary["variants"]["baseline"]["costs"]["total_cost_of_risk_usd"])
    assert second.control_cost_usd == first.control_cost_usd + 1000.0
    assert "total cost of risk / year" in (tmp_path / "cmp" / "comparison.md").read_text()


def test_a_library_measure_costs_what_it_states(base):
    """A measure switched on by a variant adds its annual_cost_usd to that variant's control cost."""
    doc = build(base)
    doc["variants"] = {"edr": {"set": {"controls.measures.endpoint_detection": {"watches": ["laptop"],
                                                                                 "annual_cost_usd": 25000}}}}
    loaded = load(doc)
    assert control_costs(loaded.variants["edr"]) == {"controls.measures.endpoint_detection": 25000.0}
    assert control_costs(loaded.baseline) == {}
