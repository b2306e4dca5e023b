"""What each control is worth (`custodysim attribution`): alone, in the full set, and the tornado of inputs."""

from __future__ import annotations

import csv
import json
import re
from typing import Any

import numpy as np
import pytest
import yaml
from conftest import BASE, MINI, build, edit, load, losses
from typer.testing import CliRunner

from custodysim.analysis.sensitivity import DEFAULT, LIBRARY, SCENARIO, default_inputs, uncertain_inputs
from custodysim.cli import app
from custodysim.errors import OptionError, ScenarioError
from custodysim.formatting import usd
from custodysim.reporting.charts import LABEL_WIDTH, control_worth_svg, tornado_svg, wrapped
from custodysim.reporting.report import attribution_reading, render_attribution_html, render_attribution_markdown
from custodysim.scenario import library
from custodysim.scenario.loader import load_scenario_text
from custodysim.studies.attribution import attribute, attribution_table, execute_attribution, plan_attribution

TRIALS = 300
WL = {"wallets.vault.policy.whitelist": {"enforced_by": "policy_engine"}}
SMALL = {"wallets.vault.balance": 500.0}
NOOP = {"people.bob.verification_probability": 0.5}  # bob signs nothing: no effect
ONE_INPUT = {"threats.apt.campaigns_per_year": [1.0, 4.0]}
"""An uncertainty section of one input, for tests that do not look at the tornado (it changes no other figure)."""


def controlled(base: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """Return the base scenario with three controls: an independent whitelist, a smaller vault, a no-op."""
    doc = build(base, **extra)
    doc["variants"] = {"wl": {"set": WL}, "small": {"set": SMALL}, "noop": {"set": NOOP}}
    return doc


@pytest.fixture(scope="module")
def three() -> dict[str, Any]:
    """The attribution of the three controls of :func:`controlled` (TRIALS trials, seed 3), simulated once."""
    return attribute(load(controlled(BASE)), trials=TRIALS, seed=3)


def mean_diff(a: np.ndarray, b: np.ndarray) -> float:
    """Return the mean of the per-trial differences a - b."""
    return float(np.mean(a - b))


def test_worths_equal_those_of_plain_variant_runs(three, base):
    """Each control's worth alone and in the full set equals the paired difference of plain variants with those overrides."""
    summary = three  # the attribution of controlled(BASE), TRIALS trials, seed 3
    plain = build(base)
    plain["variants"] = {
        "wl": {"set": WL}, "small": {"set": SMALL}, "noop": {"set": NOOP},
        "full": {"set": {**WL, **SMALL, **NOOP}},
        "no-wl": {"set": {**SMALL, **NOOP}}, "no-small": {"set": {**WL, **NOOP}}, "no-noop": {"set": {**WL, **SMALL}},
    }
    rows = losses(plain, trials=TRIALS, seed=3)
    by = {c["control"]: c for c in summary["controls"]}
    for c in ("wl", "small", "noop"):
        assert by[c]["alone"]["avoided_usd"] == pytest.approx(mean_diff(rows["baseline"].loss, rows[c].loss), abs=1e-6)
        assert by[c]["in_full_set"]["avoided_usd"] == pytest.approx(
            mean_diff(rows[f"no-{c}"].loss, rows["full"].loss), abs=1e-6)
    assert summary["full_set"]["loss"]["expected_loss_usd"] == pytest.approx(float(np.mean(rows["full"].loss)))
    assert summary["baseline_loss"]["expected_loss_usd"] == pytest.approx(float(np.mean(rows["baseline"].loss)))


def test_overlapping_controls_are_worth_less_in_the_full_set(three):
    """The whitelist stops every theft: alone it avoids the whole loss, and the smaller vault adds nothing on top of it."""
    summary = three
    by = {c["control"]: c for c in summary["controls"]}
    base_loss = summary["baseline_loss"]["expected_loss_usd"]
    assert base_loss > 0
    assert by["wl"]["alone"]["avoided_usd"] == pytest.approx(base_loss)
    assert summary["full_set"]["loss"]["expected_loss_usd"] == 0
    assert 0 < by["small"]["alone"]["avoided_usd"] < base_loss
    assert by["small"]["in_full_set"]["avoided_usd"] == 0
    low, high = by["small"]["alone"]["ci95_usd"]
    assert 0 < low < high, "the smaller vault's worth alone is real at this trial count"
    # without the whitelist, the full set still has the smaller vault's loss: that is the whitelist's marginal worth
    assert by["wl"]["in_full_set"]["avoided_usd"] == pytest.approx(base_loss - by["small"]["alone"]["avoided_usd"])
    assert summary["sum_alone_usd"] > summary["full_set"]["avoided"]["avoided_usd"]
    assert "The controls overlap" in " ".join(attribution_reading(summary))


def test_with_one_control_its_worth_in_the_full_set_is_its_worth_alone(base):
    """A single control is the full set: removing it gives the baseline, so both worths are the same figure."""
    doc = uncertain(base, ONE_INPUT)  # a tornado of one input (2 runs), not the default five (10 runs)
    summary = attribute(load(doc), controls=["small"], trials=TRIALS, seed=3)
    (small,) = summary["controls"]
    assert small["alone"] == small["in_full_set"]
    assert small["alone"]["avoided_usd"] > 0


def test_a_control_that_changes_nothing_is_worth_exactly_zero(three):
    """A control on a person who signs nothing avoids 0 alone and in the full set, with a CI of no width."""
    summary = three
    noop = next(c for c in summary["controls"] if c["control"] == "noop")
    assert noop["alone"] == {**noop["alone"], "avoided_usd": 0.0, "ci95_usd": [0.0, 0.0]}
    assert noop["in_full_set"]["avoided_usd"] == 0.0
    assert noop["in_full_set"]["ci95_usd"] == [0.0, 0.0]


def test_each_combination_is_simulated_once(base):
    """With two controls the full set without one is the other alone: it is simulated once and reused."""
    doc = build(base)
    doc["variants"] = {"wl": {"set": WL}, "small": {"set": SMALL}}
    plan = plan_attribution(load(doc))
    assert plan.without == {"wl": "small", "small": "wl"}
    assert plan.full == "wl+small"
    combos = [n for n in plan.loaded.variants if not n.startswith(("low:", "high:"))]
    assert combos == ["wl", "small", "wl+small"]


def test_controls_option_chooses_a_subset_and_refuses_unknown_names(base):
    """--controls keeps the named variants only, and an unknown name is refused with the known ones listed."""
    loaded = load(controlled(base))
    assert plan_attribution(loaded, ["small", "wl"]).controls == ["wl", "small"]
    with pytest.raises(OptionError, match=r"no variant named 'wll'.*variants: wl, small, noop"):
        plan_attribution(loaded, ["wll"])
    with pytest.raises(OptionError, match="at least one control"):
        plan_attribution(load(build(base)))


@pytest.mark.parametrize(("other", "path"), [
    ({"wallets.vault.balance": 100.0}, "wallets.vault.balance"),
    ({"wallets.vault": {**build()["wallets"]["vault"], "balance": 100.0}}, "wallets.vault"),
])
def test_overlapping_controls_are_refused_naming_both_and_the_path(base, other, path):
    """Two controls that set the same field, or one a field inside the other's, are refused with both names and the paths."""
    doc = build(base)
    doc["variants"] = {"small": {"set": SMALL}, "other": {"set": other}}
    with pytest.raises(ScenarioError) as info:
        plan_attribution(load(doc))
    text = str(info.value)
    assert "'small' and 'other'" in text
    assert f"'{path}'" in text and "'wallets.vault.balance'" in text


def test_controls_that_do_not_validate_together_are_refused_with_the_field():
    """Two controls valid alone but not together (cap below low_water) are refused, naming both and the field."""
    text = edit(
        "      wallets.main.policy.whitelist: {enforced_by: pe}\n",
        "      wallets.main.policy.whitelist: {enforced_by: pe}\n"
        "  smallcap:\n    set:\n      wallets.hot.topup.cap: 40\n"
        "  highwater:\n    set:\n      wallets.hot.topup.low_water: 60\n",
        MINI)
    loaded = load_scenario_text(text)
    with pytest.raises(ScenarioError, match=r"with smallcap, highwater does not validate.*low_water must be below cap"):
        plan_attribution(loaded, ["smallcap", "highwater"])


def uncertain(base: dict[str, Any], uncertainty: dict[str, Any]) -> dict[str, Any]:
    """Return the controlled scenario with an ``uncertainty`` section."""
    doc = controlled(base)
    doc["uncertainty"] = uncertainty
    return doc


def test_tornado_ranks_an_input_with_a_large_effect_above_one_with_none(base):
    """The campaign rate swings the loss; a non-signer's verification probability does not, and ranks last."""
    doc = uncertain(base, {"people.bob.verification_probability": [0.1, 1.0],
                           "threats.apt.campaigns_per_year": [0.2, 4.0]})
    summary = attribute(load(doc), controls=["wl"], trials=TRIALS, seed=3)  # the tornado is the baseline's
    rows = summary["tornado"]
    assert [r["path"] for r in rows] == ["threats.apt.campaigns_per_year", "people.bob.verification_probability"]
    assert rows[0]["loss_at_low_usd"] < rows[0]["baseline_loss_usd"] < rows[0]["loss_at_high_usd"]
    assert rows[0]["diff_at_low_ci95_usd"][1] < 0 < rows[0]["diff_at_high_ci95_usd"][0]
    assert rows[1]["swing_usd"] == 0
    assert {r["source"] for r in rows} == {SCENARIO}
    assert summary["tornado_note"] == ""


def test_without_an_uncertainty_section_the_key_rates_are_halved_and_doubled(three, base):
    """By default the campaign rate is taken at x0.5 and x2, probabilities clipped to 1, and the report says so."""
    inputs = {x.path: x for x in uncertain_inputs(load(controlled(base)).baseline)}
    rate = inputs["threats.apt.campaigns_per_year"]
    assert (rate.value, rate.low, rate.high, rate.source) == (2.0, 1.0, 4.0, DEFAULT)
    exposure = inputs["people.eng.exposure.phish"]
    assert (exposure.low, exposure.high) == (0.5, 1.0)
    assert inputs["access.0.p_success"].high == 1.0
    assert "not an estimate" in three["tornado_note"]  # the attribution of controlled(BASE)


@pytest.mark.parametrize(("uncertainty", "message"), [
    ({"wallets.vault.balanc": [1, 2]}, r"uncertainty\.wallets\.vault\.balanc\[0\]: .*unknown field 'balanc' \(did you mean 'balance'\?\)"),
    ({"access.0.p_success": [0.5, 1.5]}, r"uncertainty\.access\.0\.p_success\[1\]: access\[0\]\.p_success: Input should be less than or equal to 1"),
    ({"wallets.vault.balance": [2000, 10]}, r"uncertainty\.wallets\.vault\.balance: low 2000 is above high 10"),
    ({"wallets.vault.balance": [10]}, r"uncertainty\.wallets\.vault\.balance: List should have at least 2 items.*\[low, high\]"),
    ({"wallets.nosuch.balance": [1, 2]}, r"uncertainty\.wallets\.nosuch\.balance\[0\]: there is no wallets entry 'nosuch'"),
    ({"settings.trials": [1, 2]}, r"uncertainty\.settings\.trials\[0\]: a variant cannot change 'settings'"),
])
def test_uncertainty_errors_name_the_field_path(base, uncertainty, message):
    """A bad uncertain input is refused at load with its path under 'uncertainty' and what is wrong."""
    with pytest.raises(ScenarioError, match=message):
        load(build(base, uncertainty=uncertainty))


def test_a_variant_cannot_change_the_uncertainty_section(base):
    """The uncertainty section describes inputs, not the architecture: a variant setting it is refused."""
    doc = build(base)
    doc["variants"] = {"v": {"set": {"uncertainty.wallets.vault.balance": [1, 2]}}}
    with pytest.raises(ScenarioError, match=r"variants\.v\.set\.uncertainty.*cannot be changed"):
        load(doc)


def test_uncertainty_accepts_distributions_and_leaves_the_simulation_unchanged(base):
    """Estimates may be distributions; the section changes no figure of a run."""
    doc = build(base, uncertainty={"access.0.time_days": [0.5, {"dist": "uniform", "low": 10, "high": 30}]})
    assert list(load(doc).baseline.uncertainty) == ["access.0.time_days"]
    with_section, without = losses(doc, trials=100)["baseline"], losses(build(base), trials=100)["baseline"]
    assert (with_section.loss == without.loss).all()


def write(tmp_path, doc: dict[str, Any], name: str = "s.yaml"):
    """Write a scenario dict to a YAML file and return its path."""
    path = tmp_path / name
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


def test_cli_writes_the_attribution_folder(tmp_path, base):
    """`custodysim attribution` writes tidy CSVs, summary, reports with the tornado chart, and the manifest."""
    path = write(tmp_path, uncertain(base, {"threats.apt.campaigns_per_year": [0.5, 4.0]}))
    out = tmp_path / "attr"
    result = CliRunner().invoke(app, ["attribution", str(path), "--trials", "200", "--workers", "1",
                                      "--out", str(out), "--controls", "wl,small"])
    assert result.exit_code == 0, result.output
    assert "what each control is worth" in result.stdout
    assert sorted(p.name for p in out.iterdir()) == sorted(["attribution.csv", "tornado.csv", "summary.json",
                                                            "report.md", "report.html", "scenario.yaml",
                                                            "manifest.json"])
    with (out / "attribution.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["control"], r["measure"]) for r in rows] == [
        ("wl", "alone"), ("wl", "in_full_set"), ("small", "alone"), ("small", "in_full_set")]
    summary = json.loads((out / "summary.json").read_text())
    assert float(rows[2]["loss_avoided_usd"]) == summary["controls"][1]["alone"]["avoided_usd"]
    with (out / "tornado.csv").open(newline="") as fh:
        tornado = list(csv.DictReader(fh))
    assert [t["path"] for t in tornado] == ["threats.apt.campaigns_per_year"]
    html = (out / "report.html").read_text()
    assert 'id="tornado-title"' in html and 'id="worth-title"' in html
    assert "http://" not in html.replace('http://www.w3.org', '') and "https://" not in html
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["controls"] == ["wl", "small"] and manifest["trials"] == 200
    assert manifest["command"] == ["custodysim", "attribution", str(path), "--trials", "200", "--workers", "1",
                                   "--out", str(out), "--controls", "wl,small"]
    assert manifest["wall_seconds"] >= manifest["wall_time_seconds"] > 0
    wrote = result.stdout.strip().splitlines()[-1]
    assert wrote == f"wrote {out}/ ({', '.join(manifest['files'])})"
    assert sorted(manifest["files"]) == sorted(p.name for p in out.iterdir())
    again = CliRunner().invoke(app, ["attribution", str(path), "--trials", "200", "--workers", "1", "--out", str(out)])
    assert again.exit_code == 1 and "already exists" in again.stderr


def test_figures_do_not_depend_on_the_workers(tmp_path, base, three):
    """The same scenario and seed give the same attribution and tornado with one worker or two."""
    path = write(tmp_path, controlled(base))  # the text `three` was loaded from, simulated in this process
    two = execute_attribution(path, trials=TRIALS, seed=3, out=tmp_path / "two", workers=2)
    assert len(two.summary["runs"]) > 2  # chunks of many combinations, each of 2 chunks, shared by the workers
    for key in ("controls", "full_set", "tornado", "runs"):
        assert two.summary[key] == three[key]


@pytest.mark.parametrize(("args", "message"), [
    (["--controls", "wl,nope"], "no variant named 'nope'"),
    (["--controls", "wl,,small"], "--controls takes variant names separated by commas"),
    (["--controls", "wl,wl"], "more than once"),
    (["--workers", "0"], "--workers must be 1 or more"),
])
def test_cli_refuses_bad_options_with_a_message_and_exit_code_1(tmp_path, base, args, message):
    """A bad --controls or --workers gives a one-line message on stderr, exit code 1, no traceback, no folder."""
    path = write(tmp_path, controlled(base))
    out = tmp_path / "attr"
    result = CliRunner().invoke(app, ["attribution", str(path), "--trials", "50", "--out", str(out), *args])
    assert result.exit_code == 1
    assert message in result.stderr and "Traceback" not in result.output
    assert not out.exists()


def test_cli_refuses_overlapping_controls_naming_them(tmp_path, base):
    """Overlapping controls on the command line give exit code 1 and a message naming both controls and the path."""
    doc = build(base)
    doc["variants"] = {"small": {"set": SMALL}, "smaller": {"set": {"wallets.vault.balance": 100.0}}}
    result = CliRunner().invoke(app, ["attribution", str(write(tmp_path, doc)), "--trials", "50",
                                      "--out", str(tmp_path / "attr")])
    assert result.exit_code == 1
    assert "controls 'small' and 'smaller' overlap" in result.stderr
    assert "'wallets.vault.balance'" in result.stderr


def test_default_tornado_takes_a_library_default_over_the_library_range(base):
    """An input at a library default is varied over the library's plausible range; a written one at x0.5 / x2."""
    doc = build(base)
    doc["people"]["eng"]["exposure"] = {"fake_recruiter_test": "default"}
    doc["threats"]["apt"]["initial_access"][0]["technique"] = "fake_recruiter_test"
    doc["controls"] = {"measures": {"device_bound_sessions": {}}}
    inputs = {x.path: x for x in default_inputs(load(doc).baseline)}
    exposure = inputs["people.eng.exposure.fake_recruiter_test"]
    prior = library.entry("fake_recruiter_test").prior("exposure")
    assert (exposure.low, exposure.high, exposure.source) == (prior.low, prior.high, LIBRARY)
    factor = inputs["controls.measures.device_bound_sessions.factor"]
    assert (factor.low, factor.high, factor.source) == (0.05, 0.5, LIBRARY)
    rate = inputs["threats.apt.campaigns_per_year"]
    assert (rate.low, rate.high, rate.source) == (1.0, 4.0, DEFAULT)


def test_the_tornado_moves_the_correlation_of_signers_checks_like_any_other_input(base):
    """Three verifying signers: by default the tornado spans the library's range of their common mode."""
    doc = build(base)
    doc["wallets"]["vault"]["custody"] = {"scheme": "multisig", "threshold": 3, "signers": [
        {"id": f"k{i}", "holder": h, "key_store": "vault_hsm"} for i, h in enumerate(("alice", "bob", "carol"))]}
    for h in ("alice", "bob", "carol"):
        doc["people"][h].update(verifies_on=f"dev_{h}", verification_probability=0.9)
    inputs = {x.path: x for x in uncertain_inputs(load(doc).baseline)}
    common = inputs["controls.verification.common_mode"]
    prior = library.entry("verification_common_mode").prior("common_mode")
    assert (common.value, common.low, common.high, common.source) == (prior.value, prior.low, prior.high, LIBRARY)
    summary = attribute(load(uncertain(doc, {"controls.verification.common_mode": [0.0, 1.0]})), controls=["wl"],
                        trials=400, seed=3)  # the tornado is the baseline's: one control is enough
    row = next(r for r in summary["tornado"] if r["path"] == "controls.verification.common_mode")
    assert row["loss_at_low_usd"] < row["loss_at_high_usd"]  # checks that fail together let more through


def test_each_control_has_its_cost_a_year_and_its_net_benefit(base):
    """A control costs what it adds to the yearly control cost; net benefit = its worth a year - cost, the CI shifted."""
    doc = controlled(base, settings__horizon_days=182.5)  # half a year: a worth a year is twice the worth
    doc["variants"]["wl"] = {"annual_cost_usd": 5000.0, "set": {"wallets.vault.policy.whitelist": {
        "enforced_by": "policy_engine", "annual_cost_usd": 20000.0}}}
    doc["variants"]["small"]["annual_cost_usd"] = 1000.0
    doc["uncertainty"] = ONE_INPUT  # a tornado of one input (2 runs), not the default five (10 runs)
    summary = attribute(load(doc), trials=TRIALS, seed=3)
    cost = {c["control"]: (c["alone"]["annual_cost_usd"], c["in_full_set"]["annual_cost_usd"])
            for c in summary["controls"]}
    assert cost == {"wl": (25000.0, 25000.0), "small": (1000.0, 1000.0), "noop": (0.0, 0.0)}
    worths = [c[m] for c in summary["controls"] for m in ("alone", "in_full_set")] + [summary["full_set"]["avoided"]]
    assert summary["full_set"]["avoided"]["annual_cost_usd"] == 26000.0
    for w in worths:
        assert w["net_benefit_usd"] == pytest.approx(2 * w["avoided_usd"] - w["annual_cost_usd"])
        assert w["net_benefit_ci95_usd"] == pytest.approx([2 * x - w["annual_cost_usd"] for x in w["ci95_usd"]])
    row = attribution_table(summary)[0]
    assert (row["annual_cost_usd"], row["net_benefit_usd"]) == (25000.0, worths[0]["net_benefit_usd"])


def test_reports_show_the_full_sets_worth_and_never_a_sum_of_overlapping_worths(three):
    """With overlapping controls the table ends on the full set's worth, and the sum alone is only compared with it."""
    summary = three
    manifest = {"version": "test", "created_utc": "2024-05-31T04:26:00+00:00", "scenario_file": "s.yaml",
                "scenario_sha256": "0" * 64, "wall_time_seconds": 1.0, "combinations_simulated": 6,
                "command": ["custodysim", "attribution", "s.yaml"]}
    md, html = render_attribution_markdown(summary, manifest), render_attribution_html(summary, manifest)
    total, full = usd(summary["sum_alone_usd"]), usd(summary["full_set"]["avoided"]["avoided_usd"])
    assert "**sum**" not in md and ">sum<" not in html
    assert "| **all 3 together** (the full set: not the sum of the rows above, which overlap) |" in md
    assert "all 3 together<span class=\"desc\">the full set, from the baseline: not the sum" in html
    for text in (md, html.replace("&#39;", "'")):
        assert f"their worths alone would add up to {total}, more than the {full} they avoid together" in text
        assert "small is worth" in text and "on top of the others" in text
    assert not any(total in line for line in md.splitlines() if line.startswith("|"))
    assert not re.search(rf"<td[^>]*>{re.escape(total)}", html)


def test_chart_labels_wrap_and_are_never_cut_and_axes_carry_units():
    """A long input or control name wraps onto lines, whole, never cut with an ellipsis; the x axes say USD per year."""
    name = "ginco_engineer_b falls to fake_recruiter_test (tradertraitor) through the vendor recruiting pipeline"
    lines = wrapped(name).split("\n")
    assert " ".join(lines) == name and len(lines) > 1 and max(map(len, lines)) <= LABEL_WIDTH
    end = {"loss_at_low_usd": 1.0, "loss_at_high_usd": 3.0}
    tornado = tornado_svg([{"input": name, **end}, {"input": "short", **end}], 2.0)
    control = {"avoided_usd": 1.0, "ci95_usd": [0.5, 1.5], "annual_cost_usd": 0.2}
    worth = control_worth_svg([{"control": "an-independent-whitelist-enforced-by-the-exchange-policy-engine",
                                "alone": control, "in_full_set": control}])
    for svg in (tornado, worth):
        assert "…" not in svg and "..." not in svg
    assert all(word in tornado for word in name.split())
    assert "expected loss (USD per year)" in tornado and "(USD per year)" in worth
