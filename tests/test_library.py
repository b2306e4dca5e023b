"""The technique and control library: defaults, measures by name, and what they stand for."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import yaml
from conftest import assert_same, build, load, losses
from hypothesis import given
from hypothesis import strategies as st
from pydantic import TypeAdapter

from custodysim.errors import ScenarioError
from custodysim.running.runner import run_variants
from custodysim.scenario import library
from custodysim.scenario.distributions import Distribution
from custodysim.scenario.loader import load_scenario_text
from custodysim.scenario.measures import effective
from custodysim.scenario.schema import AccessEdge, Dist, InitialAccess, Measures, Probability


def test_every_entry_has_a_summary_rationale_and_sources():
    """Every library entry says what it is, how its numbers were chosen, and where they come from."""
    assert len({e.name for e in library.ENTRIES}) == len(library.ENTRIES)
    for e in library.ENTRIES:
        assert e.summary and e.in_the_model and e.rationale and e.sources, e.name


def test_every_prior_lies_inside_its_own_range_and_validates():
    """Each default sits between its low and high estimate, and is a valid value for its field."""
    for e in library.ENTRIES:
        for p in e.priors:
            assert p.low <= p.central <= p.high, (e.name, p.field)
            if isinstance(p.value, dict):
                dist: Distribution = TypeAdapter(Dist).validate_python(p.value)
                assert math.isfinite(dist.mean())
            elif p.field in ("exposure", "p_success", "factor", "probability"):
                TypeAdapter(Probability).validate_python(p.value)


def test_measure_defaults_are_the_library_defaults():
    """A measure switched on with no parameters takes each default from the library entry of its name."""
    minimal = {"endpoint_detection": {"watches": ["x"]}, "independent_verification": {"devices": {"a": "b"}},
               "independent_policy_engine": {"enforced_by": "pe", "wallets": ["w"]},
               "time_delay_with_cancellation": {"enforced_by": "pe", "wallets": ["w"]},
               "wallet_splitting": {"wallets": ["w"]}}
    names = list(Measures.model_fields)
    on = Measures.model_validate({n: minimal.get(n, {}) for n in names}).switched_on()
    assert list(on) == names
    for name, measure in on.items():
        entry = library.entry(name)
        assert entry is not None, name
        for prior in entry.priors:
            value = getattr(measure, prior.field)
            expected = prior.value
            if isinstance(expected, dict):
                expected = TypeAdapter(Dist).validate_python(expected)
            assert value == expected, (name, prior.field)


def test_left_out_edge_numbers_come_from_the_library_and_written_ones_win():
    """An access edge with a library technique takes the library's p_success and time; given values stay."""
    default = AccessEdge.model_validate({"from": "a", "to": "b", "technique": "session_cookie_theft"})
    assert default.p_success == library.default_of("session_cookie_theft", "p_success")
    assert default.time_days.sample(0.5) == pytest.approx(30.0)
    written = AccessEdge.model_validate({"from": "a", "to": "b", "technique": "session_cookie_theft",
                                         "p_success": 0.2, "time_days": 3})
    assert written.p_success == 0.2 and written.time_days.sample(0.5) == 3
    other = AccessEdge.model_validate({"from": "a", "to": "b", "technique": "my_own_trick"})
    assert other.p_success == 1.0 and other.time_days.sample(0.5) == 0.0
    ia = InitialAccess.model_validate({"technique": "fake_recruiter_test", "targets": ["x"]})
    assert ia.delay_days.sample(0.5) == pytest.approx(14.0)


def test_default_exposure_and_insider_rate(base):
    """'default' for an exposure or an insider rate gives the library's prior; for an unknown technique, an error."""
    doc = build(base)
    doc["people"]["eng"]["exposure"] = {"fake_recruiter_test": "default"}
    doc["people"]["alice"]["insider_rate_per_year"] = "default"
    spec = load(doc).baseline
    assert spec.people["eng"].exposure == {"fake_recruiter_test": 0.15}
    assert spec.people["alice"].insider_rate_per_year == library.default_of("insider", "insider_rate_per_year")
    doc["people"]["eng"]["exposure"] = {"phish": "default"}
    with pytest.raises(ScenarioError, match=r"people\.eng\.exposure.*no exposure for it"):
        load(doc)


def _explicit_vs_measure(base: dict[str, Any], measure: dict[str, Any], explicit: dict[str, Any]) -> None:
    """Assert a scenario with ``measure`` gives the rows of the same scenario with ``explicit`` written out."""
    with_measure = build(base)
    with_measure.setdefault("controls", {})["measures"] = measure
    written = build(base, **explicit)
    a = losses(with_measure, trials=300)["baseline"]
    b = losses(written, trials=300)["baseline"]
    assert_same(a.loss, b.loss)
    assert list(a.text("stopped_by")) == list(b.text("stopped_by"))


def test_endpoint_detection_measure_is_a_detection_control(base):
    """endpoint_detection stands for a detection control with the library's time to detect."""
    _explicit_vs_measure(
        base, {"endpoint_detection": {"watches": ["laptop"]}},
        {"controls": {"detection": {"endpoint_detection": {
            "watches": ["laptop"], "time_to_detect_days": {"dist": "exponential", "mean": 60}}}}})


def test_independent_verification_measure_sets_the_signer_device(base):
    """independent_verification stands for verifies_on and the library's catch probability."""
    explicit = build(base)["people"]
    explicit["alice"].update({"verifies_on": "dev_alice", "verification_probability": 0.9})
    _explicit_vs_measure(base, {"independent_verification": {"devices": {"alice": "dev_alice"}}},
                         {"people": explicit})


def test_policy_engine_measure_blocks_like_a_written_whitelist(base):
    """independent_policy_engine adds the whitelist it stands for: every tampered transfer is blocked."""
    wallets = build(base)["wallets"]
    wallets["vault"]["policy"] = {"whitelist": {"enforced_by": "policy_engine"}}
    measure = {"independent_policy_engine": {"enforced_by": "policy_engine", "wallets": ["vault"]}}
    _explicit_vs_measure(base, measure, {"wallets": wallets})
    doc = build(base)
    doc["controls"] = {"measures": measure}
    assert losses(doc)["baseline"].loss.max() == 0


def test_time_delay_measure_is_a_delay_rule(base):
    """time_delay_with_cancellation adds a time lock of the library's 24 hours."""
    wallets = build(base)["wallets"]
    wallets["vault"]["policy"] = {"delay": {"hours": 24, "enforced_by": "chain"}}
    _explicit_vs_measure(base, {"time_delay_with_cancellation": {"enforced_by": "chain", "wallets": ["vault"]}},
                         {"wallets": wallets})


@given(factor=st.floats(0.0, 1.0), exposure=st.floats(0.0, 1.0))
def test_training_scales_social_engineering_exposure_only(factor: float, exposure: float):
    """Training multiplies exposure to social engineering by its factor and leaves technical techniques alone."""
    doc = build()
    doc["people"]["eng"]["exposure"] = {"phish": exposure, "malicious_dependency": exposure}
    doc["controls"] = {"measures": {"security_awareness_training": {"organisations": ["vendor"], "factor": factor}}}
    spec = effective(load(doc).baseline)
    assert spec.people["eng"].exposure == {"phish": exposure * factor, "malicious_dependency": exposure}
    assert spec.people["alice"].exposure == {}


def test_training_lowers_the_share_of_trials_with_a_foothold(base):
    """With exposure 1 and training at factor 0.5, about half the campaigns find a foothold, on the same trials."""
    doc = build(base)
    doc["threats"]["apt"]["campaigns_per_year"] = 0.0
    doc["threats"]["apt"]["forced_campaign_days"] = [0.0]
    doc["variants"] = {"trained": {"set": {"controls.measures.security_awareness_training": {"factor": 0.5}}}}
    rows = losses(doc, trials=2000)
    held = rows["trained"].numbers["footholds"] > 0
    assert abs(held.mean() - 0.5) < 0.04
    assert (rows["baseline"].numbers["footholds"][held] > 0).all()  # common random numbers: a subset


def test_session_and_credential_controls_act_on_their_own_techniques(base):
    """Device-bound sessions scale session-cookie edges only; phishing-resistant MFA credential edges only."""
    doc = build(base, access=[
        {"from": "laptop", "to": "ui", "technique": "session_cookie_theft", "p_success": 0.8, "time_days": 1},
        {"from": "laptop", "to": "hot_server", "technique": "credential_reuse", "p_success": 0.5, "time_days": 1},
    ])
    doc["controls"] = {"measures": {"device_bound_sessions": {}, "phishing_resistant_mfa": {"systems": ["ui"]}}}
    edges = effective(load(doc).baseline).access
    assert edges[0].p_success == pytest.approx(0.8 * 0.2)
    assert edges[1].p_success == 0.5  # MFA covers 'ui' only


def test_segregated_vendor_access_cuts_only_crossings_into_the_signing_path(base):
    """Vendor-to-signing-path edges are scaled; edges inside the signing path and the exchange's own are not."""
    doc = build(base, access=[
        {"from": "laptop", "to": "ui", "p_success": 1.0, "time_days": 1},          # vendor -> pipeline
        {"from": "ui", "to": "vault_hsm", "p_success": 1.0, "time_days": 1},       # inside the signing path
        {"from": "hot_server", "to": "policy_engine", "p_success": 1.0, "time_days": 1},  # the exchange's own
    ])
    doc["controls"] = {"measures": {"segregated_vendor_access": {"factor": 0.25}}}
    edges = effective(load(doc).baseline).access
    assert [e.p_success for e in edges] == [0.25, 1.0, 1.0]


def test_effective_is_idempotent_and_leaves_no_measures(base):
    """Writing the measures out twice gives what writing them out once gives."""
    doc = build(base)
    doc["controls"] = {"measures": {"security_awareness_training": {}, "device_bound_sessions": {},
                                    "endpoint_detection": {"watches": ["laptop"]}}}
    once = effective(load(doc).baseline)
    assert not once.controls.measures.switched_on()
    assert effective(once) == once


@pytest.mark.parametrize(("measure", "message"), [
    ({"endpoint_detection": {"watches": ["nobody"]}}, r"measures\.endpoint_detection\.watches\[0\].*nobody"),
    ({"independent_policy_engine": {"enforced_by": "ghost", "wallets": ["vault"]}}, r"enforced_by.*ghost"),
    ({"time_delay_with_cancellation": {"enforced_by": "chain", "wallets": ["nowhere"]}}, r"wallets\[0\].*nowhere"),
    ({"endpoint_detektion": {"watches": ["laptop"]}}, r"did you mean 'endpoint_detection'"),
])
def test_bad_measures_are_refused_with_their_path(base, measure, message):
    """A measure naming an unknown id, or a misspelt measure, is an error at its path."""
    doc = build(base)
    doc["controls"] = {"measures": measure}
    with pytest.raises(ScenarioError, match=message):
        load_scenario_text(yaml.safe_dump(doc))


def test_measure_clashing_with_a_written_rule_is_refused(base):
    """A policy measure on a wallet that already has that rule is an error naming the wallet and the rule."""
    doc = build(base)
    doc["wallets"]["vault"]["policy"] = {"whitelist": {"enforced_by": "ui"}}
    doc["controls"] = {"measures": {"independent_policy_engine": {"enforced_by": "policy_engine",
                                                                  "wallets": ["vault"]}}}
    with pytest.raises(ScenarioError, match=r"'vault' already has a whitelist rule"):
        load(doc)



def test_docs_reference_is_the_generated_one():
    """docs/library.md holds exactly the reference `custodysim library --markdown` prints."""
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / "library.md").read_text(encoding="utf-8")
    assert text.endswith(library.markdown())


def test_library_command_lists_shows_and_refuses():
    """`custodysim library` lists every entry, shows one with its sources, and refuses an unknown name (exit 1)."""
    from typer.testing import CliRunner

    from custodysim.cli import app

    runner = CliRunner()
    listed = runner.invoke(app, ["library"], env={"COLUMNS": "200"})
    assert listed.exit_code == 0
    assert all(e.name in listed.output for e in library.ENTRIES)
    shown = runner.invoke(app, ["library", "session_cookie_theft"])
    assert shown.exit_code == 0 and "Sources:" in shown.output and "p_success: 0.7" in shown.output
    wrong = runner.invoke(app, ["library", "session_cookie"])
    assert wrong.exit_code == 1 and "did you mean 'session_cookie_theft'" in wrong.output


def test_library_name_markdown_prints_that_entry_only():
    """`custodysim library NAME --markdown` prints NAME's section of the reference, no other entry; a wrong NAME exits 1."""
    from typer.testing import CliRunner

    from custodysim.cli import app

    runner = CliRunner()
    shown = runner.invoke(app, ["library", "session_cookie_theft", "--markdown"])
    assert shown.exit_code == 0
    assert shown.stdout.startswith("#### `session_cookie_theft`") and shown.stdout in library.markdown()
    assert [e.name for e in library.ENTRIES if f"#### `{e.name}`" in shown.stdout] == ["session_cookie_theft"]
    assert runner.invoke(app, ["library", "--markdown"]).stdout == library.markdown()
    wrong = runner.invoke(app, ["library", "session_cookie", "--markdown"])
    assert wrong.exit_code == 1 and "did you mean 'session_cookie_theft'" in wrong.output and "####" not in wrong.output


def test_wallet_splitting_measure_is_the_split_written_by_hand():
    """wallet_splitting on DMM's main wallet gives, trial by trial and column by column, the split-wallets variant."""
    from pathlib import Path

    doc = yaml.safe_load((Path(__file__).resolve().parents[1] / "scenarios" / "dmm-2024.yaml").read_text())
    doc["variants"] = {"by-hand": doc["variants"]["split-wallets"],
                       "measure": {"set": {"controls.measures.wallet_splitting": {"wallets": ["main"]}}}}
    rows = {r.name: r for r in run_variants(load_scenario_text(yaml.safe_dump(doc)), trials=600)[0]}
    by_hand, measure = rows["by-hand"], rows["measure"]
    assert by_hand.loss.sum() > 0
    for column, values in by_hand.numbers.items():
        np.testing.assert_array_equal(values, measure.numbers[column], err_msg=column)


def test_wallet_splitting_keeps_the_funds_and_the_transfer_days(base):
    """Splitting keeps the total balance and sends the same scheduled transfers on the same days."""
    doc = build(base)
    doc["controls"] = {"measures": {"wallet_splitting": {"wallets": ["vault"], "parts": 4,
                                                         "annual_cost_usd": 1000}}}
    spec = effective(load(doc).baseline)
    parts = ["vault", "vault_2", "vault_3", "vault_4"]
    assert [spec.wallets[p].balance for p in parts] == [250.0] * 4
    days = sorted(t.first_day + k * t.every_days for t in spec.operations.transfers for k in range(100)
                  if t.first_day + k * t.every_days < 100)
    assert days == [float(d) for d in range(100)]  # 1 BTC a day, as before, from one part after another


@pytest.mark.parametrize(("change", "message"), [
    ({"wallets": {"vault_2": None}}, r"vault_2, which is taken"),
    ({"flows": True}, r"has customer flows or a top-up"),
])
def test_wallet_splitting_refuses_what_it_cannot_split(base, change, message):
    """Splitting a wallet with customer flows, or into a part id already taken, is an error at its path."""
    doc = build(base)
    if "wallets" in change:
        doc["wallets"]["vault_2"] = dict(doc["wallets"]["vault"])
    else:
        doc["wallets"]["vault"]["flows"] = {"withdrawals_per_day": 1.0, "deposits_per_day": 1.0}
    doc["controls"] = {"measures": {"wallet_splitting": {"wallets": ["vault"]}}}
    with pytest.raises(ScenarioError, match=r"wallet_splitting\.wallets\[0\].*" + message):
        load(doc)


def _identifiers_script() -> Any:
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "scripts" / "identifiers.py"
    spec = importlib.util.spec_from_file_location("identifiers_script", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_identifiers_are_well_formed_live_and_named_as_in_the_pinned_releases():
    """Every ATT&CK, D3FEND and CCSS id the library cites is live in its pinned release, under that release's name."""
    script = _identifiers_script()
    pinned = script.pinned()
    assert script.problems(pinned) == []
    doc = yaml.safe_load(script.PINNED.read_text(encoding="utf-8"))
    assert doc["releases"] == {s: library.RELEASES[s] for s in library.SCHEMES}
    assert all(len(pinned[s]) > 40 for s in library.SCHEMES)  # the whole release, not just what is cited
    for e in library.ENTRIES:
        assert (e.is_technique and bool(e.cited("attack"))) or (not e.is_technique and not e.cited("attack")), e.name
        assert bool(e.fair_cam) == (e.kind == "control"), e.name
        assert not (e.kind != "control" and (e.cited("d3fend") or e.cited("ccss"))), e.name


def test_identifier_check_reads_each_release_and_names_what_is_wrong(tmp_path):
    """The check reads STIX, D3FEND's Turtle and CCSS's YAML, skips revoked/deprecated ids, names wrong or missing ids."""
    import json

    script = _identifiers_script()
    ref = [{"source_name": "mitre-attack", "external_id": "T1539"}]
    bundle = {"type": "bundle", "objects": [
        {"type": "attack-pattern", "name": "Steal Web Session Cookie", "external_references": ref},
        {"type": "attack-pattern", "name": "Old", "revoked": True,
         "external_references": [{"source_name": "mitre-attack", "external_id": "T1002"}]},
        {"type": "attack-pattern", "name": "Gone", "x_mitre_deprecated": True,
         "external_references": [{"source_name": "mitre-attack", "external_id": "T1003"}]}]}
    (tmp_path / "attack.json").write_text(json.dumps(bundle))
    assert script.attack_names(tmp_path / "attack.json") == {"T1539": "Steal Web Session Cookie"}
    (tmp_path / "d3fend.ttl").write_text(
        ':TokenBinding a owl:Class ;\n    rdfs:label "Token Binding" ;\n    :d3fend-id "D3-TB" ;\n'
        '    :kb-article """## How it works\n\nBinds a token."""  .\n\n'
        ':Old a owl:Class ;\n    owl:deprecated true ;\n    rdfs:label "Old" ;\n    :d3fend-id "D3-OLD" .\n')
    assert script.d3fend_names(tmp_path / "d3fend.ttl") == {"D3-TB": "Token Binding"}
    aspects = tmp_path / "CCSS" / "_data" / "aspects"
    aspects.mkdir(parents=True)
    (aspects / "104-KeyUsage.yml").write_text(
        "id: 1.04\ntitle: Key Usage\ncomponents:\n  - component: &010406\n    id: 1.4.6\n"
        "    title_short: Spends are verified before signing\n")
    assert script.ccss_names(tmp_path / "CCSS") == {"1.04": "Key Usage", "1.4.6": "Spends are verified before signing"}
    known = script.pinned()
    known["attack"] = {**known["attack"], "T1539": "Another Name"}
    del known["d3fend"]["D3-MFA"]
    found = script.problems(known)
    assert any("T1539 is 'Another Name'" in p for p in found)
    assert any("D3-MFA is not a live identifier of MITRE D3FEND 1.2.0" in p for p in found)
    assert script.WELL_FORMED["attack"].fullmatch("T1550.004") and not script.WELL_FORMED["attack"].fullmatch("T155")


def test_run_controls_map_to_library_controls():
    """A run's stops (detection:edr, monitoring:..., whitelist:..., verification:...) name their library control."""
    assert library.control_of("detection:ginco_edr").name == "endpoint_detection"
    assert library.control_of("monitoring:balance_alerts").name == "balance_alerts"
    assert library.control_of("monitoring:desk").name == "outflow_monitoring"
    assert library.control_of("whitelist:main").name == "independent_policy_engine"
    assert library.control_of("verification:dmm_signer").name == "independent_verification"
    assert library.control_of("something:else") is None
    assert library.fair_cam_text(library.entry("independent_verification")) == \
        "prevention (resistance), detection (recognition)"


def test_library_command_shows_identifiers():
    """`custodysim library` lists each entry's ids, `library NAME` names them with their release, --markdown links."""
    from typer.testing import CliRunner

    from custodysim.cli import app

    runner = CliRunner()
    listed = runner.invoke(app, ["library"], env={"COLUMNS": "200"})
    assert listed.exit_code == 0 and "T1539, T1550.004" in listed.output and "resistance, D3-MFA" in listed.output
    shown = runner.invoke(app, ["library", "session_cookie_theft"])
    assert "MITRE ATT&CK Enterprise v18.1: T1539 Steal Web Session Cookie" in shown.output
    shown = runner.invoke(app, ["library", "independent_verification"])
    assert "CCSS, C4's GitHub edition of 10 Oct 2021: 1.4.6 Spends are verified before signing" in shown.output
    assert "[T1539](https://attack.mitre.org/techniques/T1539/)" in library.markdown()
    assert "[T1550.004](https://attack.mitre.org/techniques/T1550/004/)" in library.markdown()
