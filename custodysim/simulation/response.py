"""Who learns of a campaign, when, and which footholds each organisation revokes.

An alarm is raised by one organisation: the owner of the node where a compromise is detected, or the
exchange for an alarm about a wallet (a signer's veto, a blocked transaction, outflow monitoring). That
organisation revokes the campaign's footholds in its own people and systems after the revoke delay. An alarm
is passed on: every other organisation is told after its own delay (``organisations.<id>.notified``), then
responds as to an alarm of its own, but finds the campaign's footholds in its systems only with its
``finds_probability``. Alarms raised while the last round of telling is still going are not passed on again;
the next one is, and each round is a new chance to find the attacker. Once an organisation has revoked them,
the campaign holds nothing there and can take nothing there: its plan is redrawn without it.

Both :class:`~custodysim.simulation.engine.World` and the harmless replay use these rules, so that the two
agree event for event. The exchange's own side of a response (freezing wallets, rotating keys) is the
world's: a harmless campaign never reaches a wallet.
"""

from __future__ import annotations

import math

from custodysim.simulation.campaigns import Campaign
from custodysim.simulation.model import CompiledScenario
from custodysim.simulation.randomness import TrialRandom

HOUR = 1.0 / 24.0


def raised_by(model: CompiledScenario, c: Campaign, node: str | None) -> str:
    """Return the organisation that raises an alarm about ``node`` (None: about a wallet, the exchange)."""
    return model.exchange if node is None else c.org_of.get(node, model.exchange)


def revoke_delay(model: CompiledScenario, rnd: TrialRandom, c: Campaign, org: str, k: int) -> float:
    """Return, in days, how long organisation ``org``'s ``k``-th response to ``c`` takes to revoke footholds.

    The exchange draws from ``response:revoke``, every other organisation from a stream of its own.
    """
    name = "response:revoke" if org in model.exchange_orgs else f"response:revoke:{org}"
    return model.revoke_delay_hours.sample(c.u(rnd, name, k)) * HOUR


def learn(model: CompiledScenario, rnd: TrialRandom, c: Campaign, org: str, at: float, own: bool,
          round_: int = 0) -> bool:
    """Organisation ``org`` learns of campaign ``c`` at ``at``, by an alarm of its own or by being told.

    It responds: after its revoke delay it revokes the campaign's footholds in its people and systems, if
    it finds them (always after an alarm of its own; when told in round ``round_`` of telling, with its
    ``finds_probability``, a draw of that round). Returns whether that changed when the organisation
    closes to the campaign (its plan is then redrawn: :meth:`Campaign.close`).
    """
    if not own and c.closed.get(org, math.inf) <= at:
        return False  # it has revoked the campaign already: there is nothing left to find
    k = c.responses.get(org, 0)
    c.responses[org] = k + 1
    if not own:
        told = model.notified.get(org)
        if told is None or c.u(rnd, f"response:finds:{org}", round_) >= told[1]:
            return False
    close = at + revoke_delay(model, rnd, c, org, k)
    if close >= c.closed.get(org, math.inf):
        return False
    c.close(org, close, model, rnd)
    return True


def notices(model: CompiledScenario, rnd: TrialRandom, c: Campaign, raiser: str,
            at: float) -> tuple[int, list[tuple[float, str]]]:
    """Pass on an alarm on ``c`` raised by ``raiser`` at ``at``: return the round and (when, whom) it tells.

    No round starts while the last one is still going (someone of it not told yet). An organisation whose
    ``notified`` is null is never told. Only the organisations the campaign holds or plans to take
    something in, and has not been revoked from, are told (telling changes nothing for the others), and
    the exchange, which freezes wallets when told.
    """
    if at < c.told_until:
        return -1, []
    round_ = c.rounds_told
    c.rounds_told += 1
    touched = c.organisations()
    out = []
    for org, told in model.notified.items():
        if org == raiser or told is None or org in c.closed:
            continue
        if org in model.exchange_orgs or org in touched:
            out.append((at + told[0].sample(c.u(rnd, f"response:told:{org}", round_)) * HOUR, org))
    c.told_until = max((when for when, _ in out), default=at)
    return round_, out


def first_detection(model: CompiledScenario, rnd: TrialRandom, c: Campaign, node: str,
                    since: float) -> tuple[float, str]:
    """Return when the controls watching ``node`` first notice campaign ``c`` there, and which control."""
    best, by = math.inf, ""
    for control, dist in model.detectors.get(node, ()):
        t = since + dist.sample(c.u(rnd, f"detect:{control}:{node}"))
        if t < best:
            best, by = t, control
    return best, by
