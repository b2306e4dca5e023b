"""The run report's capital and insurance marks on the exceedance curve, and its stories told once."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_report_html import dmm  # noqa: F401  (the module-scoped fixture)

from custodysim.analysis.economics import cover_exhausted_loss, retained_loss, ruin_loss
from custodysim.reporting import charts
from custodysim.reporting.report import finance_marks, insurance_terms, retold
from custodysim.scenario.schema import Finance, Insurance

money = st.one_of(st.just(0.0), st.floats(min_value=0.01, max_value=1e9))
"""Amounts in USD: none, or at least a cent (below that, float rounding hides the retained loss's rise)."""


@given(capital=money, deductible=money, limit=st.floats(min_value=1.0, max_value=1e9),
       share=st.one_of(st.floats(min_value=0.01, max_value=0.99), st.just(1.0)))
def test_ruin_loss_is_where_the_retained_loss_first_exceeds_the_capital(capital, deductible, limit, share):
    """Just below ruin_loss the retained loss is within the capital, just above it exceeds it, for any policy."""
    finance = Finance(capital_usd=capital, insurance=Insurance(deductible_usd=deductible, limit_usd=limit,
                                                               covered_share=share))
    x = ruin_loss(finance)
    assert x is not None
    step = 1e-6 * max(x, 1.0)
    below, above = retained_loss(np.array([max(x - step, 0.0), x + step]), finance.insurance)
    assert below <= capital * (1 + 1e-9) + 1e-6
    assert above > capital


def test_without_insurance_ruin_is_the_capital_and_without_capital_there_is_none():
    """No policy: the capital itself is the ruinous loss; no capital stated: no ruin figure."""
    assert ruin_loss(Finance(capital_usd=5e6)) == 5e6
    assert ruin_loss(Finance(insurance=Insurance(limit_usd=1e6))) is None


def test_the_cover_runs_out_at_the_deductible_plus_the_limit_over_the_share():
    """A policy paying 80% above USD 10M up to USD 50M pays its limit from a USD 72.5M loss on."""
    insurance = Insurance(deductible_usd=10e6, limit_usd=50e6, covered_share=0.8)
    assert cover_exhausted_loss(insurance) == pytest.approx(72.5e6)
    paid = np.array([72.4e6, 72.5e6, 80e6]) - retained_loss(np.array([72.4e6, 72.5e6, 80e6]), insurance)
    assert paid[0] < 50e6 and paid[1] == pytest.approx(50e6) and paid[2] == pytest.approx(50e6)


def test_dmm_report_marks_its_insurance_limit_and_capital_on_the_exceedance_curve(dmm):  # noqa: F811
    """dmm-2024 states USD 350M of capital and a USD 50M policy: the curve marks USD 72.5M and USD 400M, in its SVG."""
    marks = finance_marks(dmm["summary"])
    assert [(round(x), colour) for x, _, colour in marks] == [(72_500_000, "#5f6368"), (400_000_000, "#a4161a")]
    assert [label for _, label, _ in marks] == ["insurance limit reached at $72.50M", "capital exhausted above $400.00M"]
    chart = dmm["html"][dmm["html"].index('id="exceedance"'):dmm["html"].index("<figcaption>", dmm["html"].index('id="exceedance"'))]
    drawn = re.findall(r"<text[^>]*>\s*([^<]*?)\s*</text>", chart)
    assert [label for _, label, _ in marks] == [t for t in drawn if "insurance limit" in t or "capital exhausted" in t]


def _summary(survival: dict[str, Any | None]) -> dict[str, Any]:
    return {"variants": {name: ({"survival": sv} if sv else {}) for name, sv in survival.items()}}


def test_a_mark_that_holds_for_some_variants_names_them():
    """A variant that buys more insurance gets its own mark, named; the shared capital mark names nobody."""
    base = {"cover_exhausted_loss_usd": 60e6, "ruin_loss_usd": 400e6}
    more = {"cover_exhausted_loss_usd": 120e6, "ruin_loss_usd": 400e6}
    labels = [label for _, label, _ in finance_marks(_summary({"a": base, "b": base, "c": more}))]
    assert labels == ["insurance limit reached at $60.00M (a, b)", "insurance limit reached at $120.00M (c)",
                      "capital exhausted above $400.00M"]
    assert finance_marks(_summary({"a": None})) == []


def test_a_mark_far_beyond_every_loss_is_not_drawn():
    """Capital 1,000 times the largest loss would squash the curves: the chart leaves that line out."""
    rows = [charts.LossCurve("base", np.array([0.0, 1e6, 2e6, 3e6]))]
    near = charts.loss_exceedance_svg(rows, "base", [charts.Mark(5e6, "capital exhausted above $5.00M", "#a4161a")])
    far = charts.loss_exceedance_svg(rows, "base", [charts.Mark(3e9, "capital exhausted above $3.00B", "#a4161a")])
    assert "capital exhausted above $5.00M" in near
    assert "capital exhausted above $3.00B" not in far


def test_insurance_terms_are_said_once_when_every_variant_shares_them():
    """One policy for all variants is one sentence, not one per variant; different policies are listed by variant."""
    policy = {"deductible_usd": 1.0, "limit_usd": 2.0, "covered_share": 1.0}
    other = {**policy, "limit_usd": 3.0}
    same = _summary({"a": {"insurance": policy}, "b": {"insurance": policy}})
    assert insurance_terms(same) == [("every variant", policy)]
    mixed = _summary({"a": {"insurance": policy}, "b": {"insurance": other}, "c": {"insurance": policy}})
    assert insurance_terms(mixed) == [("a, c", policy), ("b", other)]


def test_a_trial_told_again_for_another_variant_is_told_by_what_differs():
    """The same trial in a second variant shows only the lines it drops and adds; a different story is told in full."""
    first = {"variant": "a", "trial": 7, "lines": ["day 1 in", "day 2 signs (k1)", "day 2 4,580 BTC leave", "outcome"]}
    again = {"variant": "b", "trial": 7,
             "lines": ["day 1 in", "day 2 signs (k1)", "day 2 signs (k2)", "day 2 4,580 BTC leave", "outcome"]}
    other = {"variant": "c", "trial": 7, "lines": ["x", "y", "z", "outcome"]}
    same = {"variant": "d", "trial": 7, "lines": list(first["lines"])}
    views = retold([first, again, other, same])
    assert views[("b", 7)] == {"variant": "a", "changes": [("+", "day 2 signs (k2)")]}
    assert ("c", 7) not in views and ("a", 7) not in views
    assert views[("d", 7)] == {"variant": "a", "changes": []}


def test_dmm_report_prints_each_story_once(dmm):  # noqa: F811
    """In dmm-2024's report a trial told again for another variant is told by what differs, unless most of it does."""
    html = dmm["html"]
    stories = html[html.index('id="stories"'):]
    articles = re.findall(r'<article id="story-(.+?)-(\d+)">(.*?)</article>', stories, flags=re.S)
    trials = [t for _, t, _ in articles]
    assert len(set(trials)) < len(trials), "dmm-2024's worst trials are shared by variants"
    full = [(v, int(t)) for v, t, body in articles if "<pre>" in body]
    again = [(v, int(t)) for v, t, body in articles if 'class="retold"' in body]
    views = retold(dmm["stories"])
    assert sorted(again) == sorted(views) and not set(full) & set(views)
    assert len(full) + len(again) == len(articles)
    assert all(views[k]["variant"] != k[0] for k in again)
