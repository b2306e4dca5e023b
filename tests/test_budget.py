"""What one trial may cost: a trial past its budget stops the run naming its cause; texts and stories stay bounded."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from custodysim.errors import ScenarioError, TrialTooCostly
from custodysim.reporting import stories
from custodysim.scenario.loader import load_scenario_text
from custodysim.scenario.schema import MAX_NAME, MAX_TEXT
from custodysim.simulation import budget, engine
from custodysim.simulation.campaigns import sample_campaigns, screen_trials
from custodysim.simulation.engine import simulate_trial
from custodysim.simulation.model import compile_scenario
from custodysim.simulation.randomness import TrialRandom
from custodysim.studies.run import execute_run

ROOT = Path(__file__).resolve().parent.parent
DMM = ROOT / "scenarios" / "dmm-2024.yaml"
HOT = ROOT / "scenarios" / "hot-wallet-key-theft.yaml"
CLOCK = ROOT / "tests" / "regressions" / "clock-and-sweeps-1.yaml"


def heavy_dmm(per_year: float = 1000, cap: int = 10_000) -> str:
    """Return dmm-2024 with ``per_year`` campaigns a year over ten years, at most ``cap`` a trial."""
    text = DMM.read_text().replace("campaigns_per_year: 1.0 ", f"campaigns_per_year: {per_year} ")
    return text.replace("horizon_days: 365 ", f"horizon_days: 3650\n  max_campaigns_per_threat: {cap}\n ")


def test_a_trial_with_too_many_campaigns_stops_the_run_naming_the_threat(tmp_path):
    """A valid but heavy scenario (10,000 campaigns a trial) ends in seconds, exit 1, naming the threat and the fix."""
    scenario = tmp_path / "heavy.yaml"
    scenario.write_text(heavy_dmm())
    out = tmp_path / "run"
    done = subprocess.run([sys.executable, "-m", "custodysim", "run", str(scenario), "--trials", "500",
                           "--workers", "2", "--out", str(out)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert re.search(r"trial \d+ of variant baseline is too costly to simulate: it starts 10,000 campaigns, more than "
                     r"the 1,000 a trial may: threat tradertraitor started 10,000 of them; lower "
                     r"threats.tradertraitor.campaigns_per_year or settings.max_campaigns_per_threat \(10,000\), or "
                     r"shorten settings.horizon_days; no run folder was written", done.stderr)
    assert "a resumed run would meet the same trial" in done.stderr
    assert not out.exists() and (tmp_path / ".run.partial" / "run.json").is_file()


def test_the_screen_and_the_sampler_refuse_the_same_trial():
    """Both the chunk's screen and one trial's sampling (as `trace` uses it) refuse a trial of too many campaigns."""
    model = compile_scenario(load_scenario_text(heavy_dmm(per_year=200, cap=2000)).baseline)
    with pytest.raises(TrialTooCostly) as screened:
        screen_trials(model, 1, np.arange(0, 100))
    assert screened.value.cause.startswith("it starts ") and "threat tradertraitor started" in screened.value.cause
    trial = screened.value.trial
    with pytest.raises(TrialTooCostly) as sampled:
        sample_campaigns(model, TrialRandom(1, trial))
    assert (sampled.value.trial, sampled.value.cause) == (trial, screened.value.cause)
    fewer = compile_scenario(load_scenario_text(heavy_dmm(per_year=200, cap=budget.MAX_CAMPAIGNS)).baseline)
    assert len(sample_campaigns(fewer, TrialRandom(1, trial))) == budget.MAX_CAMPAIGNS  # the budget itself is allowed


def test_a_trial_past_its_actions_names_the_threat_whose_campaigns_acted(monkeypatch):
    """A trial whose campaigns take more actions than the budget stops, naming the threat and its campaigns."""
    model = compile_scenario(load_scenario_text(heavy_dmm(cap=300)).baseline)
    monkeypatch.setattr(engine, "MAX_ACTIONS", 200)
    with pytest.raises(TrialTooCostly, match=r"^trial 3 is too costly to simulate: its 300 campaigns took more than "
                                             r"the 200 actions a trial may \(nodes taken, theft transfers, alarms, "
                                             r"looks at campaigns that can rewrite transfers\): threat tradertraitor "
                                             r"started 300 of them; lower"):
        simulate_trial(model, 1, 3)


def test_a_trial_past_its_actions_names_the_campaign_whose_theft_transfers_cost_most(monkeypatch):
    """A drain of many small theft transfers past the budget names the campaign, its transfers and the drain interval."""
    text = HOT.read_text().replace(
        "    flows: {withdrawals_per_day: 4000000, deposits_per_day: 4000000}",
        "    flows: {withdrawals_per_day: 4000000, deposits_per_day: 4000000}\n"
        "    policy: {per_transfer_limit: {amount: 1000, enforced_by: chain}}", 1)
    model = compile_scenario(load_scenario_text(text).baseline)
    monkeypatch.setattr(engine, "MAX_ACTIONS", 100)
    with pytest.raises(TrialTooCostly, match=r"its theft transfers took more than the 100 actions a trial may: "
                                             r"campaign phishing_crew#\d+ sent \d+ of them, one every 2 minutes; raise "
                                             r"threats.phishing_crew.drain_interval_minutes"):
        simulate_trial(model, 1, 7)


def test_a_trial_past_its_budget_is_pickled_whole():
    """The error a worker raises reaches the main process with its trial, cause and variant."""
    import pickle

    error = pickle.loads(pickle.dumps(TrialTooCostly(7, "a cause", "vault")))
    assert str(error) == "trial 7 of variant vault is too costly to simulate: a cause"


def test_a_story_keeps_at_most_its_budget_of_lines(monkeypatch):
    """A told trial stops recording at the story budget, and says so in its last line."""
    model = compile_scenario(load_scenario_text(CLOCK.read_text()).baseline)
    whole = simulate_trial(model, 1, 0, tell=True).story
    monkeypatch.setattr(engine, "MAX_STORY_LINES", 10)
    cut = simulate_trial(model, 1, 0, tell=True).story
    assert len(whole) > 11
    assert cut[:10] == whole[:10] and len(cut) == 11
    assert "a story keeps at most 10 lines" in cut[-1][1]


def test_a_long_story_keeps_its_beginning_and_its_end():
    """stories.json keeps a long story's first lines and last lines, and says how many it left out."""
    lines = [f"line {i}" for i in range(1000)]
    kept = stories.bounded(lines)
    assert len(kept) == stories.STORY_LINES
    assert kept[0] == "line 0" and kept[-1] == "line 999"
    assert "701 lines left out" in kept[stories.STORY_LINES - 21]
    assert stories.bounded(lines[:5]) == lines[:5]


@pytest.mark.parametrize(("where", "edit"), [
    ("threats.tradertraitor.initial_access[0].technique",
     lambda d, s: d["threats"]["tradertraitor"]["initial_access"][0].update(technique=s)),
    ("access[0].technique", lambda d, s: d["access"][0].update(technique=s)),
    ("people.ginco_engineer_a.role", lambda d, s: d["people"]["ginco_engineer_a"].update(role=s)),
    ("people.ginco_engineer_a.exposure", lambda d, s: d["people"]["ginco_engineer_a"]["exposure"].update({s: 0.1})),
    ("description", lambda d, s: d.update(description=s * 30)),
    ("threats.tradertraitor.description", lambda d, s: d["threats"]["tradertraitor"].update(description=s * 30)),
    ("organisations.exchange.description", lambda d, s: d["organisations"]["dmm"].update(description=s * 30)),
    ("variants.split-wallets.description", lambda d, s: d["variants"]["split-wallets"].update(description=s * 30)),
    ("variants.split-wallets.set", lambda d, s: d["variants"]["split-wallets"]["set"].update({s * 6: 1})),
])
def test_names_and_texts_have_length_limits(where, edit):
    """A technique, role, description or field path past its length limit is refused, naming the field."""
    data = yaml.safe_load(DMM.read_text())
    edit(data, "x" * (MAX_NAME + 1))
    with pytest.raises(ScenarioError) as refused:
        load_scenario_text(yaml.safe_dump(data, sort_keys=False))
    shown = refused.value.render()
    assert "should have at most" in shown
    assert where.split(".")[0] in shown and where.split(".")[-1].split("[")[0] in shown


def hostile(folder: Path) -> Path:
    """Write a valid scenario at every text limit, whose worst trials have long stories, and return its path."""
    data = yaml.safe_load(CLOCK.read_text())
    long_name, long_text = "t" * MAX_NAME, "<b>d</b>" * (MAX_TEXT // 8)
    data["description"] = long_text
    for person in data["people"].values():
        person["role"] = long_name
        if person.get("exposure"):
            person["exposure"] = {long_name: max(person["exposure"].values())}
    for threat in data["threats"].values():
        threat["description"] = long_text
        for entry in threat["initial_access"]:
            entry["technique"] = long_name
    for edge in data.get("access", []):
        edge["technique"] = "e" * MAX_NAME
    tid = next(iter(data["threats"]))
    data["variants"] = {f"v{i}": {"description": long_text, "set": {f"threats.{tid}.skill": 1 + i}} for i in range(2)}
    path = folder / "hostile.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_a_hostile_scenario_writes_reports_and_stories_of_bounded_size(tmp_path):
    """Names and texts at their limits and long stories give stories and reports of bounded size."""
    run = execute_run(hostile(tmp_path), out=tmp_path / "run", trials=30, seed=1, workers=1).folder  # 15 stories
    told = json.loads((run / "stories.json").read_text())
    assert told and all(len(st["lines"]) <= stories.STORY_LINES for st in told)
    assert any(len(st["lines"]) == stories.STORY_LINES for st in told)  # a long story was cut
    assert all(len(line) <= stories.LINE_CHARS for st in told for line in st["lines"])
    sizes = {name: (run / name).stat().st_size for name in ("stories.json", "report.html", "report.md")}
    print(sizes)
    bound = len(told) * stories.STORY_LINES * (stories.LINE_CHARS + 10)
    assert sizes["stories.json"] < bound
    assert sizes["report.html"] < 2 * bound + 2_000_000
    assert sizes["report.md"] < 200_000
