"""Human-readable reports rendered from templates: report.md and the self-contained report.html."""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup, escape

from custodysim.analysis.frontier import efficient_names, frontier_rows
from custodysim.formatting import amount, clip, markdown_text, narrowing, number, pct, signed_ci, signed_usd, usd
from custodysim.running.losses import VariantLosses
from custodysim.scenario import library

if TYPE_CHECKING:
    from custodysim.reporting.charts import Curve

OUTCOMES = {
    "loss": "money lost",
    "stopped": "a control raised the alarm or blocked a transfer, nothing lost",
    "no_theft": "attacker got in but took nothing before the year ended",
    "no_foothold": "campaigns came, nobody fell",
    "no_campaign": "no attacker campaign arrived",
}
"""What each trial outcome means, in the order the report lists them."""


def template_env(autoescape: bool = False) -> Environment:
    """Return the Jinja environment of the reports, with the number-formatting filters."""
    # Markdown has no autoescape: every value a Markdown template prints is made inert text instead
    # (a scenario's description may hold HTML or links; a table cell's text may hold a pipe).
    env = Environment(loader=PackageLoader("custodysim.reporting", "templates"), undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True, autoescape=autoescape,
                      finalize=None if autoescape else markdown_text)
    env.filters["usd"] = usd
    env.filters["signed_usd"] = signed_usd
    env.filters["pct"] = pct
    env.filters["amount"] = amount
    env.filters["clip"] = clip
    env.globals["signed_ci"] = signed_ci
    env.filters["breakable"] = breakable if autoescape else str
    env.globals["narrowing"] = narrowing
    env.globals["num"] = number
    return env


def breakable(name: str) -> Markup:
    """Return a name as HTML that may wrap after each comma and each dot before a letter, never inside a number.

    A browser does not break a line inside ``cap=5,hours=24`` (a grid point) or ``low:access.0.p_success``; a
    table column of such names would be as wide as the longest.
    """
    return Markup(re.sub(r"(,(?=\S)|\.(?=[A-Za-z_]))", r"\1<wbr>", str(escape(name))))


def render_markdown(summary: dict[str, Any], manifest: dict[str, Any]) -> str:
    """Render report.md from a run's summary and manifest."""
    frontier = frontier_context(summary["variants"], summary["baseline"])
    stops = dict.fromkeys(c for v in summary["variants"].values() for c in v["stops_by_control"])
    return template_env().get_template("report.md.j2").render(s=summary, m=manifest, key_loss=key_loss(summary),
                                                              rare=rare_losses(summary), marks=finance_marks(summary),
                                                              known={c: known_as(c) for c in stops}, **frontier)


def frontier_context(variants: dict[str, dict[str, Any]], baseline: str, unit: str = "variant") -> dict[str, Any]:
    """Return what the frontier section of a report needs: every point's row, the efficient ones, the baseline's.

    Args:
        variants: figures by name: a run's variants, or a sweep's baseline and grid points.
        baseline: the baseline's name (a point of the frontier like any other).
        unit: what one point is, for the text (``variant``, ``grid point``).
    """
    rows = frontier_rows(variants)
    return {
        "unit": unit,
        "frontier": rows,
        "frontier_baseline": next(r for r in rows if r["name"] == baseline),
        "efficient_mean": efficient_names(variants, "expected_loss_usd"),
        "efficient_var": efficient_names(variants, "var99_usd"),
    }


def render_html(summary: dict[str, Any], manifest: dict[str, Any], rows: list[VariantLosses],
                stories: list[dict[str, Any]], inputs: list[dict[str, str]]) -> str:
    """Render report.html: one self-contained page (inline CSS, inline SVG charts, nothing loaded).

    Args:
        summary: summary.json's content.
        manifest: manifest.json's content.
        rows: the losses of the variants in ``summary`` (any order; extra variants are ignored).
        stories: stories.json's content (each with variant, trial, loss_usd, outcome, lines).
        inputs: the key inputs, from :func:`custodysim.analysis.assumptions.key_inputs`.
    """
    from custodysim.reporting import charts, frontierchart  # matplotlib is imported only when an HTML report is made

    baseline = summary["baseline"]
    names = list(summary["variants"])
    by_name = {r.name: r for r in rows}
    ordered = [by_name[n] for n in names if n in by_name]
    story_ids = {(st["variant"], st["trial"]): f"story-{st['variant']}-{st['trial']}" for st in stories}
    order = ranked(summary)
    marks = finance_marks(summary)
    events_kept = all(r.events is not None for r in ordered)
    # Only a year with two loss events or more makes its largest event smaller than its loss: without one,
    # the occurrence curve is the aggregate curve again, and the report says so instead of drawing it.
    several = events_kept and any(bool(np.any(r.events.largest(r.trials) < r.loss)) for r in ordered
                                  if r.events is not None)
    context = {
        "s": summary,
        "m": manifest,
        "ranked": order,
        "others": [item for item in order if item[0] != baseline],
        "descriptions": summary.get("variant_descriptions", {}),
        "avoided_share": {n: _avoided_share(summary, n) for n in names if n != baseline},
        "best": best_sentence(summary),
        "caveat": caveat(summary),
        "created": utc_stamp(manifest.get("created_utc", "")),
        "colours": charts.variant_colours(names, baseline),
        "charts": {
            "lec": Markup(charts.loss_exceedance_svg(ordered, baseline, [charts.Mark(*m) for m in marks])),
            "hist": Markup(charts.loss_histogram_svg(ordered, baseline)),
            "bars": Markup(charts.loss_breakdown_svg(ordered, baseline)),
            "frontier": Markup(frontierchart.frontier_svg(summary["variants"], baseline)),
            "oep": Markup(charts.occurrence_exceedance_svg(
                ordered, baseline, [charts.Mark(*m) for m in finance_marks(summary, "occurrence")]))
            if several else None,
        },
        "events_kept": events_kept,
        "occurrence_marks": finance_marks(summary, "occurrence"),
        "native": {r.name: _native_var99(r, list(summary["variants"][baseline]["expected_loss_native"]))
                   for r in ordered},
        "assets": list(summary["variants"][baseline]["expected_loss_native"]),
        "paths": _nonzero_keys(summary, "loss_by_path_usd"),
        "key_loss": key_loss(summary),
        "rare": rare_losses(summary),
        "marks": marks,
        "insurance_terms": insurance_terms(summary),
        "mark_reach": charts.MARK_REACH,
        "wallets": _nonzero_keys(summary, "loss_by_wallet_usd"),
        "controls": _controls(summary, ordered),
        "outcomes": _outcomes(summary),
        "stories": stories,
        "story_ids": story_ids,
        "retold": retold(stories),
        "worst_story": {n: next((story_ids[(st["variant"], st["trial"])] for st in stories if st["variant"] == n),
                               None) for n in names},
        "inputs": inputs,
        "has_costs": all("costs" in v for v in summary["variants"].values()),
        "has_survival": any("survival" in v for v in summary["variants"].values()),
        "by_total_cost": by_total_cost(summary),
        **frontier_context(summary["variants"], baseline),
    }
    return template_env(autoescape=True).get_template("report.html.j2").render(**context)


MARK_COLOURS = {"insurance": "#5f6368", "capital": "#a4161a"}


def finance_marks(summary: dict[str, Any], per: str = "year") -> list[tuple[float, str, str]]:
    """Return (loss, label, colour) of the losses where the insurance limit is reached and the capital exhausted.

    These are the survival figures ``cover_exhausted_loss_usd`` and ``ruin_loss_usd`` (docs/costs.md), lowest
    first. ``per="year"`` gives the marks of the aggregate curve (a year's loss before insurance): the capital,
    and the limit of terms per year; ``per="occurrence"`` those of the occurrence curve (one event's loss): the
    limit of terms per occurrence. Variants that state the same finance share a mark; a mark that holds for
    some variants only names them.
    """
    stated = {n: v["survival"] for n, v in summary["variants"].items() if v.get("survival")}
    found: dict[tuple[float, str], list[str]] = {}
    for name, sv in stated.items():
        for kind, key in (("insurance", "cover_exhausted_loss_usd"), ("capital", "ruin_loss_usd")):
            basis = (sv.get("insurance") or {}).get("per", "year")
            if sv.get(key) is not None and (per == "year" if kind == "capital" else basis == per):
                found.setdefault((sv[key], kind), []).append(name)
    marks = []
    for (loss, kind), names in sorted(found.items()):
        what = "insurance limit reached at" if kind == "insurance" else "capital exhausted above"
        who = "" if len(names) == len(stated) else f" ({', '.join(names)})"
        marks.append((loss, f"{what} {usd(loss)}{who}", MARK_COLOURS[kind]))
    return marks


def insurance_terms(summary: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Return (who, policy) for each distinct insurance policy: ``every variant`` when all share one, else the names."""
    policies: dict[str, list[str]] = {}
    terms: dict[str, dict[str, Any]] = {}
    for name, v in summary["variants"].items():
        policy = (v.get("survival") or {}).get("insurance")
        if policy:
            key = json.dumps(policy, sort_keys=True)
            policies.setdefault(key, []).append(name)
            terms[key] = policy
    if len(policies) == 1 and len(next(iter(policies.values()))) == len(summary["variants"]):
        return [("every variant", next(iter(terms.values())))]
    return [(", ".join(names), terms[key]) for key, names in policies.items()]


def retold(stories: list[dict[str, Any]]) -> dict[tuple[str, int], dict[str, Any]]:
    """Return how the report tells the stories of a trial already told for an earlier variant: by what differs.

    The same trial number is the same year's draws in every variant, so variants often tell the same story
    but for a line or two (one more signature, a smaller theft). Such a story is told as the lines it drops
    (``-``) and adds (``+``) against the first variant's; one that differs in more than half its lines is told
    in full (it is not in the result).

    Returns:
        by (variant, trial): ``{"variant": the variant told first, "changes": [(sign, line), ...]}``.
    """
    first: dict[int, dict[str, Any]] = {}
    out: dict[tuple[str, int], dict[str, Any]] = {}
    for st in stories:
        ref = first.setdefault(st["trial"], st)
        if ref is st:
            continue
        changes: list[tuple[str, str]] = []
        matcher = difflib.SequenceMatcher(None, ref["lines"], st["lines"], autojunk=False)
        for tag, i1, i2, j1, j2 in matcher.get_opcodes():
            if tag != "equal":
                changes += [("-", line) for line in ref["lines"][i1:i2]] + [("+", line) for line in st["lines"][j1:j2]]
        if 2 * len(changes) <= len(st["lines"]):
            out[(st["variant"], st["trial"])] = {"variant": ref["variant"], "changes": changes}
    return out


def rare_losses(summary: dict[str, Any]) -> list[str]:
    """Say, for each variant whose losses the VaR 99 cannot show, what can: rarer than 1 in 100, or none seen.

    A variant that loses in fewer than 1% of years has a VaR 99 of $0 whatever its losing years cost:
    its ES 99 (the mean of the worst 1% of years) and the exceedance curve show them. A variant that lost
    nothing is bounded, not zero (the rule of three; see :func:`~custodysim.analysis.stats.rare_loss_bound`).
    """
    lines = []
    for name, v in summary["variants"].items():
        p = v["p_any_loss"]
        if 0 < p < 0.01:
            lines.append(f"{name}: loses in {pct(p)} of years, rarer than 1 in 100: see ES 99 "
                         f"({usd(v.get('es99_usd'))}) and the exceedance curve")
        elif p == 0 and v.get("p_any_loss_upper95") is not None:
            bound = v.get("expected_loss_upper95_usd")
            size = f" and expected loss below {usd(bound)}" if bound is not None else ""
            lines.append(f"{name}: no loss in {v['trials']:,} years: P(loss>0) below "
                         f"{100 * v['p_any_loss_upper95']:.2g}%{size} (95%, rule of three)")
    return lines


def key_loss(summary: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Return each variant's lost-key figures and its theft loss beside them (expected loss less lock-outs).

    Nothing if no variant ever locks a wallet (or the run predates lost keys).
    """
    figures = {n: {**v["key_loss"], "theft_loss_usd": v["expected_loss_usd"] - v["key_loss"]["expected_loss_usd"]}
               for n, v in summary["variants"].items() if "key_loss" in v}
    return figures if any(f["p_locked"] > 0 for f in figures.values()) else {}


def by_total_cost(summary: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Return (name, costs) of every variant with cost figures, lowest total cost of risk first (unknown last)."""
    items = [(n, v["costs"]) for n, v in summary["variants"].items() if "costs" in v]
    order = sorted(range(len(items)), key=lambda i: (items[i][1]["total_cost_of_risk_usd"] is None,
                                                     items[i][1]["total_cost_of_risk_usd"] or 0.0, i))
    return [items[i] for i in order]


def verdict(v: dict[str, Any]) -> str:
    """Return whether a variant's paired difference against the baseline is real at this trial count."""
    if "diff_ci95_usd" not in v:
        return "baseline"
    return change_verdict(v["diff_vs_baseline_usd"], v["diff_ci95_usd"])


def change_verdict(diff: float, ci: Sequence[float]) -> str:
    """Return whether a difference in expected loss is real: its 95% CI excludes 0 (and on which side)."""
    low, high = ci
    if diff == 0 and low == high == 0:
        return "no: same loss every year"
    if high < 0:
        return "yes: less loss"
    if low > 0:
        return "yes: more loss"
    return "no: within the noise"


def ranked(summary: dict[str, Any]) -> list[tuple[str, dict[str, Any], str]]:
    """Return (name, figures, verdict) of every variant, lowest expected loss first (ties in run order)."""
    items = list(summary["variants"].items())
    order = sorted(range(len(items)), key=lambda i: (items[i][1]["expected_loss_usd"], i))
    return [(items[i][0], items[i][1], verdict(items[i][1])) for i in order]


def best_sentence(summary: dict[str, Any]) -> str:
    """Return one sentence naming the variant with the lowest expected loss and the loss it avoids."""
    baseline = summary["baseline"]
    base = summary["variants"][baseline]
    top = ranked(summary)
    name, v, _ = top[0]
    if len(top) == 1:
        return (f"Only the baseline ran: expected loss {usd(base['expected_loss_usd'])} a year "
                f"(95% CI {_ci(base['expected_loss_ci95_usd'])}).")
    if name == baseline or v["expected_loss_usd"] >= base["expected_loss_usd"]:
        return (f"No variant has a lower expected loss than the baseline's {usd(base['expected_loss_usd'])} "
                f"a year (95% CI {_ci(base['expected_loss_ci95_usd'])}).")
    tied = [n for n, w, _ in top[1:] if w["expected_loss_usd"] == v["expected_loss_usd"]]
    low, high = v["diff_ci95_usd"]
    share = (f", {pct(-v['diff_vs_baseline_usd'] / base['expected_loss_usd'])} of the baseline's "
             f"{usd(base['expected_loss_usd'])}") if base["expected_loss_usd"] > 0 else ""
    bound = v.get("expected_loss_upper95_usd")
    ci = f"95%: below {usd(bound)}" if bound is not None else f"95% CI {_ci(v['expected_loss_ci95_usd'])}"
    return (f"Best: {name}{_tie(tied)}, expected loss {usd(v['expected_loss_usd'])} a year "
            f"({ci}), avoiding {usd(-v['diff_vs_baseline_usd'])} a year"
            f"{share} (paired 95% CI {usd(-high)} to {usd(-low)}).")


def caveat(summary: dict[str, Any]) -> str:
    """Return what limits the best variant's headline: a change within noise, or no loss seen at all."""
    name, v, verdict_ = ranked(summary)[0]
    if name == summary["baseline"] or "diff_ci95_usd" not in v:
        return ""
    if v["expected_loss_usd"] >= summary["variants"][summary["baseline"]]["expected_loss_usd"]:
        return ""
    if verdict_ == "no: within the noise":
        return "Its paired CI includes 0: at this trial count it is not distinguishable from the baseline."
    if v.get("p_any_loss_upper95") is not None:
        return (f"None of its {v['trials']:,} simulated years lost anything; that bounds the chance of a loss "
                f"year below {100 * v['p_any_loss_upper95']:.2g}% (95%, rule of three), not at zero.")
    return ""


def _avoided_share(summary: dict[str, Any], name: str) -> float | None:
    """Return the share of the baseline's expected loss a variant avoids (None when the baseline loses nothing)."""
    base = summary["variants"][summary["baseline"]]["expected_loss_usd"]
    return -summary["variants"][name]["diff_vs_baseline_usd"] / base if base > 0 else None


def utc_stamp(stamp: str) -> str:
    """Return an ISO UTC time stamp as ``2024-05-31 13:26 UTC`` (unchanged if it is not one)."""
    if len(stamp) >= 16 and stamp.endswith("+00:00"):
        return f"{stamp[:10]} {stamp[11:16]} UTC"
    return stamp


def _tie(tied: list[str]) -> str:
    return f" (tied with {', '.join(tied)})" if tied else ""


def _ci(pair: list[float]) -> str:
    return f"{usd(pair[0])} to {usd(pair[1])}"


def _native_var99(r: VariantLosses, assets: list[str]) -> dict[str, float]:
    """Return each asset's 99th-percentile loss (VaR 99) in the asset's units, from the trials."""
    return {a: float(np.quantile(r.column(f"loss_{a}"), 0.99, method="higher")) for a in assets if len(r)}


def _nonzero_keys(summary: dict[str, Any], figure: str) -> list[str]:
    """Return the keys of a per-variant breakdown that carry loss in at least one variant."""
    keys: dict[str, None] = {}
    for v in summary["variants"].values():
        keys.update((k, None) for k, x in v[figure].items() if x > 0)
    return list(keys)


def _controls(summary: dict[str, Any], rows: list[VariantLosses]) -> list[dict[str, Any]]:
    """Return, per control, each variant's share of trials where it fired and how many of those still lost."""
    names = list(dict.fromkeys(c for v in summary["variants"].values() for c in v["stops_by_control"]))
    lost: dict[tuple[str, str], int] = {}
    for r in rows:
        for cell, k in r.counts("stopped_by", losing=True).items():
            for control in filter(None, cell.split(";")):
                lost[(r.name, control)] = lost.get((r.name, control), 0) + k
    return [{"control": c, "known": known_as(c), "cells": {
        n: {**v["stops_by_control"][c], "lost": lost.get((n, c), 0)}
        for n, v in summary["variants"].items() if c in v["stops_by_control"]}} for c in names]


def known_as(stop: str) -> dict[str, Any] | None:
    """Return what a run's control (``verification:dmm_signer``) is in the library and to other tools.

    That is the library control it is an instance of, its FAIR-CAM function, and its D3FEND and CCSS
    identifiers (each ``(id, name)``); None for a control the library does not know.
    """
    found = library.control_of(stop)
    if found is None:
        return None
    return {"entry": found.name, "fair_cam": library.fair_cam_text(found),
            "ids": [(library.CATALOGUE_TITLES[i.scheme], i.id, i.name) for i in found.identifiers]}


def _outcomes(summary: dict[str, Any]) -> list[tuple[str, str]]:
    """Return (outcome, meaning) of every outcome that occurs, in a fixed order."""
    seen = {o for v in summary["variants"].values() for o in v.get("outcomes", {})}
    known = [(o, text) for o, text in OUTCOMES.items() if o in seen]
    return known + [(o, o.replace("_", " ")) for o in sorted(seen - set(OUTCOMES))]


CHANGE_WORDS = {
    "yes: less loss": ("good", "better", "less loss, beyond the noise"),
    "yes: more loss": ("bad", "worse", "more loss, beyond the noise"),
    "no: within the noise": ("muted", "within the noise", "no change shown at this trial count"),
    "no: same loss every year": ("muted", "no change", "the same loss in every trial"),
}
"""Per verdict of a change between runs: its CSS class, its word and what the word means."""


def change_words(match: Mapping[str, Any]) -> tuple[str, str, str]:
    """Return the CSS class, the one-word verdict and its meaning for a matched variant's change."""
    return CHANGE_WORDS[change_verdict(match["change_usd"], match["change_ci95_usd"])]


def match_name(match: Mapping[str, Any]) -> str:
    """Return the name a matched variant goes by: its own, or both when the two runs' baselines differ in name."""
    if match["variant"] == match["reference_variant"]:
        return str(match["variant"])
    return f"{match['variant']} (baseline; {match['reference_variant']} in {match['reference_run']})"


def change_sentence(match: Mapping[str, Any]) -> str:
    """Return the headline of a matched variant: ``baseline: -$11.37M a year in q2 against q1, paired 95% CI ...``."""
    low, high = match["change_ci95_usd"]
    _, word, meaning = change_words(match)
    kind = "paired" if match["paired"] else "unpaired"
    return (f"{match_name(match)}: {signed_usd(match['change_usd'])} a year in {match['run']} against "
            f"{match['reference_run']}, {kind} 95% CI {signed_usd(low)} to {signed_usd(high)}: {word} ({meaning}).")


def _comparison_env(autoescape: bool) -> Environment:
    env = template_env(autoescape=autoescape)
    env.globals.update(change_sentence=change_sentence, change_words=change_words, match_name=match_name,
                       utc_stamp=utc_stamp)
    return env


def render_comparison_markdown(comparison: dict[str, Any]) -> str:
    """Render a comparison's comparison.md from its figures (comparison.json)."""
    return _comparison_env(False).get_template("comparison.md.j2").render(c=comparison)


def render_comparison_html(comparison: dict[str, Any], curves: Mapping[str, Sequence[Curve]]) -> str:
    """Render a comparison's self-contained comparison.html, with a loss exceedance chart per matched variant.

    Args:
        comparison: its figures (comparison.json).
        curves: per matched variant (its name in the reference run), its rows in each run, named after the run,
            the reference run's first.
    """
    from custodysim.reporting import charts  # matplotlib is imported only when an HTML report is made

    runs = [r["label"] for r in comparison["runs"]]
    reference = runs[0]
    drawn = {name: rows for name, rows in curves.items() if any(np.any(r.loss > 0) for r in rows)}
    svgs = [(name, Markup(charts.loss_exceedance_svg(rows, reference, prefix=f"lec{i}", heading=name, tag="reference",
                                                     noun="run", small=True)))
            for i, (name, rows) in enumerate(drawn.items())]
    return _comparison_env(True).get_template("comparison.html.j2").render(
        c=comparison, charts=svgs, lossless=[name for name in curves if name not in drawn],
        colours=charts.variant_colours(runs, reference), created=utc_stamp(comparison["created_utc"]))


def render_attribution_markdown(summary: dict[str, Any], manifest: dict[str, Any]) -> str:
    """Render an attribution's report.md from its summary and manifest."""
    env = template_env()
    env.filters["value"] = estimate
    return env.get_template("attribution.md.j2").render(s=summary, m=manifest, reading=attribution_reading(summary),
                                                        overlap=controls_overlap(summary))


def render_attribution_html(summary: dict[str, Any], manifest: dict[str, Any]) -> str:
    """Render an attribution's self-contained report.html, with its charts (worth of controls, tornado)."""
    from custodysim.reporting import charts  # matplotlib is imported only when an HTML report is made

    env = template_env(autoescape=True)
    env.filters["value"] = estimate
    return env.get_template("attribution.html.j2").render(
        s=summary, m=manifest, reading=attribution_reading(summary), overlap=controls_overlap(summary),
        created=utc_stamp(manifest.get("created_utc", "")),
        charts={"worth": Markup(charts.control_worth_svg(summary["controls"])),
                "tornado": Markup(charts.tornado_svg(summary["tornado"],
                                                     summary["baseline_loss"]["expected_loss_usd"]))})


def estimate(value: Any) -> str:
    """Return an input's value as a scenario would write it: ``0.075``, ``4,600``, ``{"dist": ...}``."""
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, (int, float)):
        return amount(float(value))
    return json.dumps(value, separators=(", ", ": "))


def controls_overlap(summary: dict[str, Any]) -> bool:
    """Return whether an attribution's worths alone add up to more than the full set avoids (beyond 1% of it)."""
    full = summary["full_set"]["avoided"]["avoided_usd"]
    return bool(summary["sum_alone_usd"] > full + _tolerance(full))


def _tolerance(full: float) -> float:
    """Return how far worths may add up away from the full set's before they are said to overlap or reinforce."""
    return 0.01 * max(abs(full), 1.0)


def attribution_reading(summary: dict[str, Any]) -> list[str]:
    """Return sentences that say what the full set is worth, and how the controls' worths overlap or add up.

    Alone, controls that stop the same thefts each take the credit for them; in the full set, none does.
    So when controls overlap their worths alone add up to more than the full set avoids: the sum is no
    control's worth, and the sentences say so (naming each control worth much less on top of the others)
    instead of showing it as a total. When they do not overlap, the worths alone add up to the full set's.
    """
    avoided = summary["full_set"]["avoided"]
    full = avoided["avoided_usd"]
    alone = summary["sum_alone_usd"]
    names = summary["full_set"]["controls"]
    together = "Both" if len(names) == 2 else f"All {len(names)}"
    who = f"{names[0]} avoids" if len(names) == 1 else f"{together} controls together avoid"
    out = [f"{who} {usd(full)} a year (paired 95% CI {_ci(avoided['ci95_usd'])}) for "
           f"{usd(avoided['annual_cost_usd'])} a year of controls: a net benefit of {usd(avoided['net_benefit_usd'])} "
           f"(95% CI {_ci(avoided['net_benefit_ci95_usd'])})."]
    if len(names) < 2:
        return out
    tolerance = _tolerance(full)
    if controls_overlap(summary):
        out.append(f"The controls overlap: their worths alone would add up to {usd(alone)}, more than the {usd(full)} "
                   "they avoid together, because some thefts are stopped by more than one of them and each takes the "
                   "credit alone. So the worths alone do not add up: what the controls buy together is the full "
                   "set's worth.")
        for c in summary["controls"]:
            a, m = c["alone"]["avoided_usd"], c["in_full_set"]["avoided_usd"]
            if a - m > tolerance:
                out.append(f"{c['control']} is worth {usd(a)} alone but {usd(m)} on top of the others: "
                           + ("the others stop everything it stops." if abs(m) <= tolerance else
                              f"the others would avoid {usd(a - m)} of what it avoids alone."))
    elif alone < full - tolerance:
        out.append(f"The controls reinforce each other: together they avoid {usd(full)}, more than the "
                   f"{usd(alone)} their worths alone add up to.")
    else:
        out.append(f"The controls barely overlap: each one's worth is about the same alone and in the full set, and "
                   f"their worths alone add up to about what they avoid together ({usd(full)}).")
    return out
