"""The inputs that drive a scenario's result, listed for the report so a reader can challenge them.

Each input says what it is, its value in plain units, and where it lives in the YAML, most
loss-relevant first: how often and how well attackers come, how much sits in the largest wallets,
how easily they move from one foothold to the next, then how fast the controls see and act.
"""

from __future__ import annotations

from custodysim.formatting import amount, usd
from custodysim.scenario.distributions import Exponential, Fixed, LogNormal, Triangular, Uniform
from custodysim.scenario.schema import Scenario

TOP_WALLETS = 5
"""How many of the largest wallets (by USD at the starting price) are listed."""

KeyInput = dict[str, str]
"""One input: ``{"input": what, "value": how much, "where": YAML path}``."""


def key_inputs(spec: Scenario, top_wallets: int = TOP_WALLETS) -> list[KeyInput]:
    """Return the inputs that drive the loss, most loss-relevant first.

    Order: threats (campaign rate, skill, how they strike, how a lure fools its targets together, each
    initial-access target's exposure, insider rates), the largest wallets by USD at the starting price,
    access edges (success probability and median time), then controls (detection mean time, outflow
    monitoring probability and median delay, how signers' checks depend on each other, when other
    organisations are told of an alarm and whether they find the footholds, response freeze and revoke
    median delays), then the library measures switched on, by parameter.

    Args:
        spec: the scenario (normally the baseline).
        top_wallets: how many of the largest wallets to list.
    """
    return [*_threats(spec), *_wallets(spec, top_wallets), *_edges(spec), *_controls(spec), *_measures(spec)]


def _item(what: str, value: str, where: str) -> KeyInput:
    return {"input": what, "value": value, "where": where}


def _span(x: float, unit: str) -> str:
    """Return a duration with its unit, singular for exactly 1: ``45 days``, ``1 hour``."""
    text = amount(x)
    return f"{text} {unit}" if text != "1" else f"1 {unit[:-1]}"


def _threats(spec: Scenario) -> list[KeyInput]:
    out = []
    for name, t in spec.threats.items():
        where = f"threats.{name}"
        out.append(_item(f"{name}: attacker campaigns per year", amount(t.campaigns_per_year),
                         f"{where}.campaigns_per_year"))
        if t.forced_campaign_days:
            out.append(_item(f"{name}: campaigns forced in every trial, on day",
                             ", ".join(amount(d) for d in t.forced_campaign_days), f"{where}.forced_campaign_days"))
        out.append(_item(f"{name}: skill (divides every access edge's time)", amount(t.skill), f"{where}.skill"))
        s = t.strike
        aim = {"largest": "the largest wallet", "first": "the first chance"}.get(s.aim, "") \
            if isinstance(s.aim, str) else "wallets " + ", ".join(s.aim)
        how = f"{'once' if s.once else 'repeatedly'}, at {aim}, {'when ready' if s.wait_until_ready else 'at once'}"
        then = "fires" if s.after_max_wait == "fire" else "gives up"
        out.append(_item(f"{name}: longest wait to strike ({how}; then {then})", _span(s.max_wait_days, "days"),
                         f"{where}.strike.max_wait_days"))
        for k, access in enumerate(t.initial_access):
            if len(access.targets) > 1:
                out.append(_item(f"{name}: {access.technique} fools its targets together (common-mode share)",
                                 amount(access.common_mode), f"{where}.initial_access[{k}].common_mode"))
            for target in access.targets:
                person = spec.people.get(target)
                exposure = person.exposure.get(access.technique, 0.0) if person is not None else 0.0
                out.append(_item(f"{target} falls to {access.technique} ({name})",
                                 f"{amount(exposure)} per campaign",
                                 f"people.{target}.exposure.{access.technique}"))
    for name, p in spec.people.items():
        if p.insider_rate_per_year > 0:
            out.append(_item(f"{name}: insider thefts per year", amount(p.insider_rate_per_year),
                             f"people.{name}.insider_rate_per_year"))
    return out


def _wallets(spec: Scenario, top: int) -> list[KeyInput]:
    valued = [(name, w.balance * spec.assets[w.asset].price_usd) for name, w in spec.wallets.items()
              if w.asset in spec.assets]
    ranked = sorted(valued, key=lambda item: item[1], reverse=True)[:top]
    return [_item(f"{name}: {spec.wallets[name].tier} wallet balance",
                  f"{amount(spec.wallets[name].balance)} {spec.wallets[name].asset} ({usd(value)})",
                  f"wallets.{name}.balance")
            for name, value in ranked]


def _edges(spec: Scenario) -> list[KeyInput]:
    out = []
    for i, e in enumerate(spec.access):
        what = f"{e.from_node} → {e.to} ({e.technique})"
        out.append(_item(f"{what}: success probability", amount(e.p_success), f"access[{i}].p_success"))
        out.append(_item(f"{what}: median time", _span(e.time_days.sample(0.5), "days"),
                         f"access[{i}].time_days"))
    return out


def _controls(spec: Scenario) -> list[KeyInput]:
    c = spec.controls
    out = []
    for name, d in c.detection.items():
        watched = ", ".join(d.watches[:3]) + (f" and {len(d.watches) - 3} more" if len(d.watches) > 3 else "")
        out.append(_item(f"{name}: mean time to detect a compromise of {watched}",
                         _span(d.time_to_detect_days.mean(), "days"),
                         f"controls.detection.{name}.time_to_detect_days"))
    for name, m in c.outflow_monitoring.items():
        where = f"controls.outflow_monitoring.{name}"
        scope = ", ".join(m.wallets) if m.wallets else "all wallets"
        out.append(_item(f"{name}: probability a theft transfer is noticed ({scope})", amount(m.probability),
                         f"{where}.probability"))
        out.append(_item(f"{name}: median delay before the alarm", _span(m.delay_hours.sample(0.5), "hours"),
                         f"{where}.delay_hours"))
    if any(len({s.holder for s in w.custody.operational_signers if s.holder}) > 1
           for w in spec.wallets.values()):
        out.append(_item("signers' checks of one transfer decided together (common-mode share)",
                         amount(c.verification.common_mode), "controls.verification.common_mode"))
    owners = {s.owner for s in spec.systems.values()} | {p.organisation for p in spec.people.values()}
    for name, o in spec.organisations.items():
        if o.kind == "exchange" or name not in owners:
            continue
        if o.notified is None:
            out.append(_item(f"{name}: told of another organisation's alarm", "never",
                             f"organisations.{name}.notified"))
            continue
        out.append(_item(f"{name}: median delay before it is told of another organisation's alarm",
                         _span(o.notified.after_hours.sample(0.5), "hours"),
                         f"organisations.{name}.notified.after_hours"))
        out.append(_item(f"{name}: probability its response finds the attacker's footholds",
                         amount(o.notified.finds_probability), f"organisations.{name}.notified.finds_probability"))
    r = c.response
    out.append(_item("response: median delay to freeze outflows after an alarm",
                     _span(r.freeze_delay_hours.sample(0.5), "hours"), "controls.response.freeze_delay_hours"))
    out.append(_item("response: median delay to revoke the attacker's footholds",
                     _span(r.revoke_delay_hours.sample(0.5), "hours"), "controls.response.revoke_delay_hours"))
    return out


def _measures(spec: Scenario) -> list[KeyInput]:
    out = []
    for name, measure in spec.controls.measures.switched_on().items():
        where = f"controls.measures.{name}"
        for field, value in measure:
            if isinstance(value, (Fixed, Uniform, Exponential, LogNormal, Triangular)):
                label, _, unit = field.rpartition("_")
                out.append(_item(f"{name} (library control): mean {label.replace('_', ' ')}",
                                 _span(value.mean(), unit), f"{where}.{field}"))
            elif isinstance(value, float) and field != "min_amount_usd":
                out.append(_item(f"{name} (library control): {field.replace('_', ' ')}", amount(value),
                                 f"{where}.{field}"))
    return out
