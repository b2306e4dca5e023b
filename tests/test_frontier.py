"""The security/operations frontier: Pareto-efficient points, and the frontier in the run report."""

from __future__ import annotations

from typing import Any

from conftest import MINI
from hypothesis import given
from hypothesis import strategies as st

from custodysim.analysis.frontier import dominates, efficient_names, frontier, frontier_rows, pareto_efficient
from custodysim.reporting.charts import chart_style
from custodysim.reporting.frontierchart import frontier_figure, frontier_svg
from custodysim.reporting.report import frontier_context, render_html, render_markdown
from custodysim.running.runner import simulate
from custodysim.scenario.grids import frontier_figures
from custodysim.scenario.loader import load_scenario_text
from custodysim.studies.run import summarise_run

# Small integers make ties (equal waiting, equal loss, equal points) common, where dominance is subtle.
coordinate = st.integers(min_value=0, max_value=6).map(float)
points = st.lists(st.tuples(coordinate, coordinate), min_size=1, max_size=25)


def figures(wait: float, loss: float, var99: float | None = None) -> dict[str, Any]:
    """Return the figures of one variant that the frontier reads."""
    return {"operations": {"withdrawal_delay_mean_hours": wait}, "expected_loss_usd": loss,
            "var99_usd": loss if var99 is None else var99}


@given(points)
def test_listed_points_are_undominated_and_every_other_point_is_dominated(pts):
    """No efficient point is dominated by any point; every other point is dominated by an efficient one."""
    flags = pareto_efficient(pts)
    for p, efficient in zip(pts, flags, strict=True):
        if efficient:
            assert not any(dominates(q, p) for q in pts)
        else:
            assert any(dominates(q, p) for q, e in zip(pts, flags, strict=True) if e)


@given(points)
def test_dominated_by_names_an_efficient_point_that_dominates(pts):
    """Each dominated point names an efficient point that has no more waiting and no more loss, and less of one."""
    variants = {f"v{i}": figures(x, y) for i, (x, y) in enumerate(pts)}
    result = {p.name: p for p in frontier(variants)}
    for p in result.values():
        if p.efficient:
            assert p.dominated_by is None
        else:
            assert p.dominated_by is not None
            q = result[p.dominated_by]
            assert q.efficient and dominates((q.wait_hours, q.loss_usd), (p.wait_hours, p.loss_usd))
    assert sorted(efficient_names(variants)) == sorted(n for n, p in result.items() if p.efficient)


def test_a_point_is_not_dominated_by_an_equal_one():
    """Two variants with the same waiting and the same loss are both efficient (neither is better)."""
    assert pareto_efficient([(1.0, 5.0), (1.0, 5.0)]) == [True, True]
    assert not dominates((1.0, 5.0), (1.0, 5.0))


def test_same_waiting_more_loss_is_dominated():
    """Of two variants with equal waiting, the one with more loss is dominated; a trade-off keeps both."""
    variants = {"a": figures(0.0, 10.0), "b": figures(0.0, 4.0), "c": figures(2.0, 1.0), "d": figures(3.0, 1.0)}
    rows = {r["name"]: r for r in frontier_rows(variants)}
    assert [n for n, r in rows.items() if r["efficient"]] == ["b", "c"]
    assert rows["a"]["dominated_by"] == "b" and rows["d"]["dominated_by"] == "c"
    assert efficient_names(variants) == ["b", "c"]


def test_var99_frontier_is_its_own():
    """The VaR 99 frontier uses VaR 99: a variant can be efficient on expected loss and dominated on VaR 99."""
    variants = {"a": figures(0.0, 5.0, var99=50.0), "b": figures(0.0, 6.0, var99=40.0)}
    assert efficient_names(variants, "expected_loss_usd") == ["a"]
    assert efficient_names(variants, "var99_usd") == ["b"]


def test_frontier_chart_is_deterministic_and_titled():
    """The frontier chart renders the same bytes twice, with an accessible title, even when all points coincide."""
    variants = {"a": figures(1.0, 2.0), "b": figures(1.0, 2.0)}
    svg = frontier_svg(variants)
    assert svg == frontier_svg(variants)
    assert svg.startswith("<svg") and '<title id="frontier-title">' in svg
    assert "a, b" in svg  # points at one place share one label


def test_run_reports_list_the_efficient_variants():
    """report.md and report.html of a run name the efficient variants and say what dominates the others."""
    loaded = load_scenario_text(MINI)
    result = simulate(loaded, 200, 1)
    rows = result.losses
    summary = summarise_run(loaded, rows, result.columns, 200, 1)
    manifest = {"version": "test", "created_utc": "2024-05-31T04:26:00+00:00", "scenario_file": "mini.yaml",
                "scenario_sha256": loaded.sha256, "seed": 1, "trials": 200, "wall_time_seconds": 1.0}
    efficient = efficient_names(summary["variants"])
    assert efficient
    md = render_markdown(summary, manifest)
    assert f"- Efficient on expected loss (least waiting first): {'; '.join(efficient)}" in md
    html = render_html(summary, manifest, rows, [], [])
    assert 'id="frontier"' in html and 'href="#frontier"' in html
    for row in frontier_rows(summary["variants"]):
        verdict = "efficient" if row["efficient"] else f"dominated by {row['dominated_by']}"
        assert f"| {row['name']} | {row['wait_hours']:.3f} |" in md and verdict in md



@given(coordinate, coordinate, points)
def test_a_sweeps_efficient_points_are_beaten_by_no_point_nor_the_baseline(base_wait, base_loss, pts):
    """Over a sweep's baseline and points, an efficient one is beaten by none; every other is beaten by some."""
    summary = {"baseline": "baseline", "points": [{"name": f"p{i}"} for i in range(len(pts))],
               "variants": {"baseline": figures(base_wait, base_loss),
                            **{f"p{i}": figures(x, y) for i, (x, y) in enumerate(pts)}}}
    everyone = frontier_figures(summary)
    assert list(everyone) == ["baseline", *(p["name"] for p in summary["points"])]
    xy = {n: (v["operations"]["withdrawal_delay_mean_hours"], v["expected_loss_usd"]) for n, v in everyone.items()}
    efficient = set(efficient_names(everyone))
    for name, p in xy.items():
        beaten = any(dominates(q, p) for other, q in xy.items() if other != name)
        assert beaten == (name not in efficient), name
    baseline = frontier_context(everyone, "baseline")["frontier_baseline"]
    assert baseline["efficient"] == ("baseline" in efficient)
    assert baseline["efficient"] or dominates(xy[baseline["dominated_by"]], xy["baseline"])


def test_a_point_the_baseline_beats_is_not_efficient():
    """A grid point with the baseline's loss and more waiting is dominated by the baseline, not listed as efficient."""
    summary = {"baseline": "baseline", "points": [{"name": "hours=0"}, {"name": "hours=12"}],
               "variants": {"baseline": figures(0.042, 41.0), "hours=0": figures(0.043, 41.0),
                            "hours=12": figures(12.0, 3.0)}}
    rows = {r["name"]: r for r in frontier_rows(frontier_figures(summary))}
    assert rows["hours=0"]["dominated_by"] == "baseline"
    assert efficient_names(frontier_figures(summary)) == ["baseline", "hours=12"]


def test_frontier_labels_overlap_no_label_and_the_baseline_is_labelled():
    """Crowded points get labels only where they overlap no other label; the baseline is labelled; axes carry units."""
    variants = {"baseline": figures(5.0, 50.0)}
    variants.update({f"a-long-grid-point-name={i}": figures(0.1 * i, 20.0 - 0.5 * i) for i in range(20)})
    with chart_style():
        fig = frontier_figure(variants, "baseline", "grid points")
        fig.draw_without_rendering()  # as drawn into the SVG
        renderer = fig.canvas.get_renderer()
        for ax in fig.axes:
            boxes = [t.get_window_extent(renderer) for t in ax.texts]
            frame = ax.get_window_extent(renderer)
            assert any(t.get_text() == "baseline" for t in ax.texts)
            assert 1 < len(boxes) < len(variants)  # crowded: some labels are left out
            for i, a in enumerate(boxes):
                assert not any(a.overlaps(b) for b in boxes[i + 1:])
                assert frame.x0 <= a.x0 and a.x1 <= frame.x1 and frame.y0 <= a.y0 and a.y1 <= frame.y1
    assert [(ax.get_xlabel(), ax.get_ylabel()) for ax in fig.axes] == [
        ("mean customer withdrawal delay (hours)", "expected loss (USD per year)"),
        ("mean customer withdrawal delay (hours)", "VaR 99 (USD lost in the year)")]

