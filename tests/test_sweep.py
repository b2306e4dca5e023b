"""custodysim sweep: the grid, the figures (equal to a run's), the trend of a hot-wallet cap, the folder, the errors."""

from __future__ import annotations

import copy
import csv
import itertools
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from typer.testing import CliRunner

from custodysim import cli
from custodysim.cli import app
from custodysim.errors import LimitError, OptionError, RunFolderError, ScenarioError
from custodysim.formatting import signed_ci, signed_usd
from custodysim.reporting.charts import chart_style, thin_tick_labels
from custodysim.reporting.sweepcharts import heatmap_svg, value_chart_svg
from custodysim.reporting.sweepreport import render_sweep_markdown
from custodysim.running.precision import mean_ci
from custodysim.scenario.grids import grid, labels, parse_axes, parse_axis
from custodysim.scenario.loader import load_scenario
from custodysim.scenario.units import field_unit
from custodysim.studies.run import execute_run
from custodysim.studies.sweep import FILES, execute_sweep, table_rows

SCENARIO = Path(__file__).resolve().parent.parent / "scenarios" / "hot-wallet-key-theft.yaml"
CAPS = ["5000000", "10000000", "20000000", "40000000"]
# The hot-cap variant under a steady net outflow (1M XEM a day) with refills that take two days to sign:
# a small cap refills often and customers wait for each refill; a large one keeps more for a thief.
CAP_SWEEP = [
    f"wallets.hot.topup.cap={','.join(CAPS)}",
    "wallets.hot.topup.low_water=100000",
    "wallets.hot.topup.signing_hours=48",
    "wallets.hot.flows.deposits_per_day=3000000",
]
TRIALS = 2000
SEED = 20180126


@pytest.fixture(scope="module")
def cap_sweep(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The hot-wallet cap sweep of hot-wallet-key-theft, run once: its folder and summary."""
    folder = tmp_path_factory.mktemp("sweeps") / "cap"
    outcome = execute_sweep(SCENARIO, CAP_SWEEP, trials=TRIALS, seed=SEED, out=folder, from_variant="hot-cap")
    return {"folder": folder, "summary": outcome.summary}


def _trial_columns(folder: Path, column: str) -> dict[str, np.ndarray]:
    """Return one column of trials.csv per variant, in trial order."""
    values: dict[str, list[float]] = {}
    with (folder / "trials.csv").open(newline="") as fh:
        for row in csv.DictReader(fh):
            values.setdefault(row["variant"], []).append(float(row[column]))
    return {k: np.array(v) for k, v in values.items()}


@pytest.mark.parametrize(("column", "direction"), [("loss_usd", +1), ("withdrawal_delay_mean_hours", -1)])
def test_a_larger_hot_wallet_cap_loses_more_and_keeps_customers_waiting_less(cap_sweep, column, direction):
    """As the cap grows, expected loss rises and waiting falls: no step significantly against it, the whole trend significant."""
    names = [p["name"] for p in cap_sweep["summary"]["points"]]
    assert names == [f"cap={c}" for c in CAPS]
    per_trial = _trial_columns(cap_sweep["folder"], column)
    for smaller, larger in itertools.pairwise(names):
        _, low, high = mean_ci(per_trial[larger] - per_trial[smaller])  # paired on common random numbers
        assert (high if direction > 0 else -low) >= 0, f"{column} goes significantly against the trend {smaller} -> {larger}"
    _, low, high = mean_ci(per_trial[names[-1]] - per_trial[names[0]])
    assert (low if direction > 0 else -high) > 0, f"{column}: no significant trend from {names[0]} to {names[-1]}"


def test_every_sweep_point_equals_a_run_of_the_same_overrides_and_seed(cap_sweep, tmp_path):
    """A run of a file whose variants are the sweep's points (with the same seed) gives each point's figures exactly.

    Each point carries the change, and so the own control cost, of the variant it starts from.
    """
    doc = yaml.safe_load(SCENARIO.read_text(encoding="utf-8"))
    start = doc["variants"]["hot-cap"]
    doc["variants"] = {
        f"point-{k}": {"set": {**start["set"], **p["inputs"]}, "annual_cost_usd": start["annual_cost_usd"]}
        for k, p in enumerate(cap_sweep["summary"]["points"])
    }
    path = tmp_path / "points.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    run = execute_run(path, trials=TRIALS, seed=SEED, out=tmp_path / "run").summary["variants"]
    swept = cap_sweep["summary"]["variants"]
    assert run["baseline"] == swept["baseline"]
    assert start["annual_cost_usd"] > 0  # the own cost is really carried
    swept = copy.deepcopy(swept)  # shared by other tests
    for k, p in enumerate(cap_sweep["summary"]["points"]):
        items = run[f"point-{k}"]["costs"].pop("control_costs_usd")
        assert items.pop(f"variants.point-{k}") == start["annual_cost_usd"]
        swept_items = swept[p["name"]]["costs"].pop("control_costs_usd")
        assert swept_items.pop("variants.hot-cap") == start["annual_cost_usd"]
        assert items == swept_items
        assert run[f"point-{k}"] == swept[p["name"]], p["name"]


def test_sweep_folder_holds_its_files_and_a_tidy_table(cap_sweep):
    """The folder holds exactly the manifest's files; sweep.csv has one row per point with inputs and figures."""
    folder, summary = cap_sweep["folder"], cap_sweep["summary"]
    manifest = json.loads((folder / "manifest.json").read_text())
    assert sorted(p.name for p in folder.iterdir()) == sorted(manifest["files"]) == sorted(FILES)
    assert manifest["kind"] == "sweep" and manifest["seed"] == SEED and manifest["trials"] == TRIALS
    assert manifest["sets"] == CAP_SWEEP and manifest["from_variant"] == "hot-cap"
    assert not list(folder.parent.glob(".*partial"))
    with (folder / "sweep.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["point"] for r in rows] == [p["name"] for p in summary["points"]]
    assert [r["wallets.hot.topup.cap"] for r in rows] == CAPS
    for r in rows:
        v = summary["variants"][r["point"]]
        assert float(r["expected_loss_usd"]) == v["expected_loss_usd"]
        assert float(r["var99_usd"]) == v["var99_usd"]
        assert float(r["withdrawal_delay_mean_hours"]) == v["operations"]["withdrawal_delay_mean_hours"]
        assert r["efficient_expected_loss"] == ("true" if r["point"] in summary["frontier"]["expected_loss_usd"]
                                                else "false")
    assert json.loads((folder / "sweep.json").read_text())["points"] == summary["points"]
    html = (folder / "report.html").read_text()
    assert html.count("<svg") == 2  # the cap chart and the frontier; one swept path: no heat map
    assert 'id="frontier"' in html and "http" not in html.split("</head>")[0]
    md = (folder / "report.md").read_text()
    assert all(f"| cap={c} |" in md for c in CAPS)


def test_sweep_reports_write_each_change_with_its_sign(cap_sweep):
    """Each point's change against the baseline and its CI appear signed (+ on an increase) in both reports."""
    folder, summary = cap_sweep["folder"], cap_sweep["summary"]
    md, html = (folder / "report.md").read_text(), (folder / "report.html").read_text()
    for point in summary["points"]:
        v = summary["variants"][point["name"]]
        assert f"{signed_usd(v['diff_vs_baseline_usd'])} ({signed_ci(v['diff_ci95_usd'])})" in md
        assert signed_ci(v["diff_ci95_usd"]) in html


def test_two_swept_paths_get_a_heat_map_and_the_same_figures_whatever_the_workers(tmp_path):
    """Two swept paths give a heat map; two workers give sweep.csv byte for byte as one worker does."""
    sets = ["wallets.hot.topup.cap=5000000,20000000", "wallets.hot.topup.signing_hours=12,48", *CAP_SWEEP[1::2]]
    args = {"trials": 1500, "seed": SEED, "from_variant": "hot-cap"}
    one = execute_sweep(SCENARIO, sets, out=tmp_path / "one", workers=1, **args)
    two = execute_sweep(SCENARIO, sets, out=tmp_path / "two", workers=2, **args)
    assert two.summary["variants"] == one.summary["variants"]
    assert [p["name"] for p in one.summary["points"]] == [
        "cap=5000000,signing_hours=12", "cap=5000000,signing_hours=48",
        "cap=20000000,signing_hours=12", "cap=20000000,signing_hours=48"]
    assert (tmp_path / "one" / "sweep.csv").read_bytes() == (tmp_path / "two" / "sweep.csv").read_bytes()
    html = (tmp_path / "one" / "report.html").read_text()
    assert 'id="heat"' in html and html.count("<svg") == 4  # two value charts, the heat map, the frontier


def test_an_existing_folder_is_not_overwritten(cap_sweep):
    """A sweep to an existing folder is refused before anything runs, and the folder is left as it was."""
    before = (cap_sweep["folder"] / "sweep.csv").read_bytes()
    with pytest.raises(RunFolderError, match="already exists"):
        execute_sweep(SCENARIO, ["wallets.hot.balance=1,2"], trials=10, out=cap_sweep["folder"])
    assert (cap_sweep["folder"] / "sweep.csv").read_bytes() == before


def test_table_has_cost_and_p95_columns_when_the_figures_carry_them(cap_sweep):
    """Cost and p95-wait columns hold each point's figures, and are left out for figures that lack them."""
    summary = json.loads(json.dumps(cap_sweep["summary"]))
    rows = table_rows(summary)
    for row, p in zip(rows, summary["points"], strict=True):
        v = summary["variants"][p["name"]]
        assert row["total_cost_of_risk_usd"] == v["costs"]["total_cost_of_risk_usd"]
        assert row["total_cost_of_risk_usd"] == pytest.approx(row["control_cost_usd"] + row["expected_annual_loss_usd"])
        assert row["withdrawal_delay_mean_hours_p95"] == v["operations"]["withdrawal_delay_mean_hours_p95"]
    for p in summary["points"]:  # figures of an older version, without them
        v = summary["variants"][p["name"]]
        del v["costs"], v["operations"]["withdrawal_delay_mean_hours_p95"]
    old = table_rows(summary)[0]
    assert "control_cost_usd" not in old and "withdrawal_delay_mean_hours_p95" not in old


def test_grid_is_cartesian_with_readable_names():
    """Points are every combination, last path fastest, named by the paths with several values."""
    axes = parse_axes(["wallets.hot.topup.cap=100,200", "wallets.hot.policy.delay.hours=0,24",
                       "wallets.hot.policy.delay.enforced_by=policy_engine"])
    points = grid(axes)
    assert [p.name for p in points] == ["cap=100,hours=0", "cap=100,hours=24", "cap=200,hours=0", "cap=200,hours=24"]
    assert points[1].overrides() == {"wallets.hot.topup.cap": 100, "wallets.hot.policy.delay.hours": 24,
                                     "wallets.hot.policy.delay.enforced_by": "policy_engine"}


def test_labels_tell_paths_with_the_same_last_part_apart():
    """Two paths ending in the same field are labelled with as many parts as tell them apart."""
    assert labels(["wallets.hot.topup.cap", "wallets.warm.topup.cap", "wallets.hot.balance"]) == {
        "wallets.hot.topup.cap": "hot.topup.cap", "wallets.warm.topup.cap": "warm.topup.cap",
        "wallets.hot.balance": "balance"}


def test_values_are_yaml_scalars():
    """Values read as YAML: integers (with underscores), floats, booleans, null and strings."""
    axis = parse_axis("x.y=1_000, 2.5,true,null,policy_engine,'007'")
    assert axis.values == (1000, 2.5, True, None, "policy_engine", "007")
    assert axis.texts == ("1_000", "2.5", "true", "null", "policy_engine", "'007'")


@pytest.mark.parametrize(("option", "message"), [
    ("wallets.hot.balance=", "no values given"),
    ("wallets.hot.balance", "expected PATH=V1,V2"),
    ("=1,2", "expected PATH=V1,V2"),
    ("wallets.hot.balance=1,,2", "an empty value"),
    ("wallets.hot.balance=1,1", "given twice"),
    ("wallets.hot.balance=[1", "cannot read the value '[1'"),
    ("wallets.hot.balance=@x", "cannot read the value '@x'"),
    ("wallets.hot.balance={a: 1}", "is a list or mapping"),
    ("wallets.hot.balance=2024-01-01", "reads as a date"),
])
def test_malformed_set_options_are_refused_with_the_path(option, message):
    """A malformed --set names its path (or the option) and says what is wrong."""
    with pytest.raises(OptionError, match=re.escape(message)):
        parse_axis(option)


def test_too_large_a_grid_is_refused_before_anything_runs():
    """A grid over the limit is refused with its size."""
    with pytest.raises(OptionError, match=r"10 x 10 x 3 = 300 points, more than the 200"):
        parse_axes([f"a.b={','.join(map(str, range(10)))}", f"a.c={','.join(map(str, range(10)))}", "a.d=1,2,3"])


def test_too_many_trial_rows_are_refused(tmp_path):
    """The trial-row limit counts every point and the baseline."""
    with pytest.raises(LimitError, match=r"3 variant\(s\) x 100 trials"):
        execute_sweep(SCENARIO, ["wallets.hot.balance=1,2"], trials=100, out=tmp_path / "x", max_rows=299)
    assert not (tmp_path / "x").exists()


def test_unknown_from_variant_is_refused_with_the_names_there_are(tmp_path):
    """--from-variant must name a variant of the file."""
    with pytest.raises(ScenarioError, match=r"no variant named 'hot-caps' \(did you mean 'hot-cap'\?\)"):
        execute_sweep(SCENARIO, ["wallets.hot.balance=1,2"], trials=10, out=tmp_path / "x", from_variant="hot-caps")


def _cli(args: list[str]) -> Any:
    return CliRunner().invoke(app, ["sweep", str(SCENARIO), "--trials", "20", "--workers", "1", *args])


@pytest.mark.parametrize(("args", "message"), [
    (["--set", "wallets.hot.balanc=1,2"], "--set wallets.hot.balanc: wallets.hot.balanc: unknown field 'balanc' "
                                          "(did you mean 'balance'?) (at balanc=1 and 1 more point)"),
    (["--set", "wallets.hott.balance=1,2"], "--set wallets.hott.balance: there is no wallets entry 'hott' "
                                            "(did you mean 'hot'?)"),
    (["--set", "wallets.hot.balance=abc,2"], "--set wallets.hot.balance: wallets.hot.balance: Input should be a "
                                             "valid number (got 'abc') "
                                             "(at balance=abc)"),
    (["--set", "wallets.hot.balance=[1,2]"], "--set wallets.hot.balance: cannot read the value '[1'"),
    (["--set", "wallets.hot.balance="], "--set wallets.hot.balance: no values given"),
    ([], "give at least one --set PATH=V1,V2,... to sweep"),
    (["--set", "settings.trials=1,2"], "a variant cannot change 'settings'"),
    (["--from-variant", "hot-cap", "--set", "wallets.hot.topup.low_water=30000000"],
     "--set wallets.hot.topup.low_water: wallets.hot.topup: low_water must be below cap (at low_water=30000000)"),
])
def test_cli_errors_name_the_path_and_exit_1(args, message, tmp_path):
    """A bad --set (unknown path, unparsable or invalid value, no values) is one clear message, exit 1, no folder."""
    result = _cli([*args, "--out", str(tmp_path / "out")])
    assert result.exit_code == 1, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".*"))


def test_cli_prints_the_table_and_where_it_wrote(tmp_path):
    """The command prints one row per point, the efficient points, and the folder with every file written there."""
    args = ["--set", "wallets.hot.balance=1000000,100000000", "--out", str(tmp_path / "s")]
    result = _cli(args)
    assert result.exit_code == 0, result.output
    assert "balance=1000000" in result.output and "balance=100000000" in result.output
    assert "Efficient on expected loss and customer waiting" in result.output
    files = sorted(p.name for p in (tmp_path / "s").iterdir())
    wrote = result.stdout.strip().splitlines()[-1]
    assert wrote.startswith(f"wrote {tmp_path / 's'}/ (") and sorted(wrote.split(" (", 1)[1][:-1].split(", ")) == files
    manifest = json.loads((tmp_path / "s" / "manifest.json").read_text())
    assert manifest["command"] == ["custodysim", "sweep", str(SCENARIO), "--trials", "20", "--workers", "1", *args]
    assert manifest["wall_seconds"] >= manifest["wall_time_seconds"] > 0


UNITS = {
    "wallets.hot.topup.cap": "XEM", "wallets.hot.flows.withdrawals_per_day": "XEM per day",
    "wallets.hot.policy.delay.hours": "hours", "controls.response.freeze_delay_hours.median": "hours",
    "threats.apt.campaigns_per_year": "per year", "wallets.hot.custody.threshold": "keys",
    "access.0.p_success": "0 to 1", "people.eng.exposure.phish": "0 to 1", "finance.capital_usd": "USD",
    "wallets.hot.policy.delay.enforced_by": None,
}


def test_a_swept_field_has_the_unit_its_name_or_its_wallet_says():
    """A field's unit comes from its name (hours, USD, per year, a probability) or from its wallet's asset."""
    spec = load_scenario(SCENARIO).baseline
    assert {path: field_unit(path, spec) for path in UNITS} == UNITS


def test_sweep_charts_title_every_axis_with_its_unit(cap_sweep):
    """The value chart's and the heat map's axes say their units: the swept field's, USD per year, hours."""
    summary = cap_sweep["summary"]
    assert [a["unit"] for a in summary["axes"]] == ["XEM", "XEM", "hours", "XEM per day"]
    svg = value_chart_svg(summary, 0)
    for title in ("cap (XEM)", "USD per year", "USD lost in the year", ">hours<"):
        assert title in svg
    hours = {"path": "wallets.hot.topup.signing_hours", "label": "signing_hours", "unit": "hours", "values": [12, 48],
             "texts": ["12", "48"]}
    points = [{"name": f"{c},{h}", "inputs": {"wallets.hot.topup.cap": c, "wallets.hot.topup.signing_hours": h}}
              for c in summary["axes"][0]["values"] for h in hours["values"]]
    some = summary["variants"][summary["points"][0]["name"]]
    heat = heatmap_svg({"axes": [summary["axes"][0], hours], "points": points,
                        "variants": {p["name"]: some for p in points}})
    for title in ("cap (XEM)", "signing_hours (hours)", "Expected loss (USD per year)", "Mean withdrawal delay (hours)"):
        assert title in heat


def test_tick_labels_that_would_overlap_are_left_out_keeping_the_ends():
    """Crowded tick labels (0, 0.01, ... 100 on a narrow axis) keep the first and last and overlap no other."""
    with chart_style():
        fig = Figure(figsize=(3.0, 2.0))
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        xs = [0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100]
        ax.plot(xs, xs)
        ax.set_xscale("symlog", linthresh=0.01)
        ax.set_xticks(xs, [str(x) for x in xs])
        thin_tick_labels(fig, [ax])
        fig.draw_without_rendering()
        renderer = fig.canvas.get_renderer()
        shown = [t for t in ax.get_xticklabels() if t.get_visible()]
        assert shown[0].get_text() == "0" and shown[-1].get_text() == "100" and len(shown) < len(xs)
        boxes = [t.get_window_extent(renderer) for t in shown]
        assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1:])


def test_the_baseline_is_a_point_of_the_sweeps_frontier(cap_sweep):
    """The baseline is on the frontier like a point: listed efficient, or named as dominated in the report."""
    summary = copy.deepcopy(cap_sweep["summary"])
    manifest = json.loads((cap_sweep["folder"] / "manifest.json").read_text())
    base = summary["variants"][summary["baseline"]]
    assert summary["baseline"] in summary["frontier"]["expected_loss_usd"]  # it waits least of all
    assert "the baseline included (least waiting first): baseline (as written); cap=" in _cli_table(summary)
    base["operations"]["withdrawal_delay_mean_hours"] = 1e6  # now every point beats it
    md = render_sweep_markdown(summary, manifest)
    assert "The baseline is dominated by cap=" in md and "| baseline | 1000000.000 |" in md


def _cli_table(summary: dict[str, Any]) -> str:
    """Return what `custodysim sweep` prints for a sweep's summary."""
    with cli.out.capture() as captured:
        cli._print_sweep(summary)
    return captured.get()
