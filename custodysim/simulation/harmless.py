"""Trials whose campaigns never reach a wallet, replayed without SimPy.

Campaigns that never take a key store, a transfer pipeline component or a request account (or are
revoked before they do) cannot act on any wallet: operations run as in the quiet trial, an alarm freezes
nothing, and each campaign only spreads, gets noticed, and is revoked organisation by organisation (see
:mod:`~custodysim.simulation.response`). That is replayed here event for event as
:class:`~custodysim.simulation.engine.World` would run it, in a few lines per campaign.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass

from custodysim.simulation.campaigns import Campaign, Step
from custodysim.simulation.model import CompiledScenario
from custodysim.simulation.randomness import TrialRandom
from custodysim.simulation.response import first_detection, learn, notices, raised_by
from custodysim.simulation.results import TrialResult


@dataclass(frozen=True)
class Harmless:
    """What a trial whose campaigns never reach a wallet reports besides the quiet operations.

    It depends only on the campaigns and on what :func:`replay_harmless` reads of the variant
    (:attr:`~custodysim.simulation.model.CompiledScenario.harmless_surface`), so variants that share those
    share it.
    """

    campaigns: int
    footholds: int
    stops: tuple[str, ...]
    first_access: float
    first_alarm: float

    def result(self, quiet: TrialResult) -> TrialResult:
        """Return the trial's result in a variant whose quiet result is ``quiet``."""
        return TrialResult(
            loss_by_asset=quiet.loss_by_asset, loss_usd=0.0, loss_usd_by_path=quiet.loss_usd_by_path,
            loss_usd_by_wallet=quiet.loss_usd_by_wallet, campaigns=self.campaigns, footholds=self.footholds,
            stops=list(self.stops), t_first_access=self.first_access, t_first_theft=math.inf,
            t_first_alarm=self.first_alarm, ops=quiet.ops,
        )


_ALARM, _TOLD = 0, 1


def replay_harmless(model: CompiledScenario, rnd: TrialRandom, campaigns: list[Campaign]) -> Harmless | None:
    """Replay a trial whose campaigns reach no key store, pipeline or request account before they are revoked.

    Returns None as soon as a campaign would take a node that acts on a wallet (or an insider acts), or if
    two events of a campaign fall at the same instant (SimPy's event order then decides): the caller then
    runs the full world. The campaigns given are left as they are: the replay runs on fresh copies of them
    (:meth:`Campaign.fresh`).
    """
    if any(c.insider is not None for c in campaigns):
        return None
    first_access = first_alarm = math.inf
    stops: list[str] = []
    footholds = 0
    for sampled in campaigns:
        c = sampled.fresh(model.node_org)
        replayed = _replay(model, rnd, c)
        if replayed is None:
            return None
        first_access = min(first_access, replayed[0])
        first_alarm = min(first_alarm, replayed[1])
        footholds += len(c.held)
        stops += c.stops
    return Harmless(len(campaigns), footholds, tuple(stops), first_access, first_alarm)


def _replay(model: CompiledScenario, rnd: TrialRandom, c: Campaign) -> tuple[float, float] | None:
    """Replay one campaign; return (its first access, its first alarm), or None where the world must decide."""
    capable = model.capability_nodes
    horizon = model.horizon
    first_access = first_alarm = math.inf
    events: list[tuple[float, int, int, str, str, int]] = []  # (time, order, kind, node or org, source, round)
    order = 0
    step: Step | None = next(iter(c.plan), None)
    while step is not None or events:
        if events and (step is None or events[0][0] < step.time):
            at, _, kind, who, source, round_ = heapq.heappop(events)
            if events and events[0][0] == at:
                return None
            if kind == _TOLD:
                redrawn = learn(model, rnd, c, who, at, False, round_)
            elif not c.holds(who, at):
                continue  # revoked before it was noticed
            else:
                if source not in c.stops:
                    c.stops.append(source)
                first_alarm = min(first_alarm, at)
                raiser = raised_by(model, c, who)
                told_round, told = notices(model, rnd, c, raiser, at)
                for told_at, org in told:
                    if told_at < horizon:
                        order += 1
                        heapq.heappush(events, (told_at, order, _TOLD, org, "", told_round))
                redrawn = learn(model, rnd, c, raiser, at, own=True)
            if redrawn:
                step = next((s for s in c.plan if s.node not in c.held), None)
            continue
        assert step is not None
        if events and events[0][0] == step.time:
            return None
        if step.node in capable:
            return None  # it reaches a wallet: the world decides
        c.held[step.node] = step.time
        first_access = min(first_access, step.time)
        best, by = first_detection(model, rnd, c, step.node, step.time)
        if best < horizon:
            order += 1
            heapq.heappush(events, (best, order, _ALARM, step.node, f"detection:{by}", 0))
        step = next((s for s in c.plan if s.node not in c.held), None)
    return first_access, first_alarm
