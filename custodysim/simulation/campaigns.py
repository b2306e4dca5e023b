"""Attacker campaigns: when they come, whom they fool, and how they spread over access edges."""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np

from custodysim.errors import TrialTooCostly
from custodysim.scenario.distributions import poisson_quantile, poisson_quantiles
from custodysim.simulation.budget import MAX_CAMPAIGNS, too_many_campaigns
from custodysim.simulation.model import CompiledScenario, EntryModel, SignerModel, ThreatModel, WalletModel
from custodysim.simulation.randomness import TrialRandom, uniform_array

_NO_DOORS: Mapping[str, float] = MappingProxyType({})
_NO_ORGS: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True)
class Step:
    """One node the campaign will hold, when, and how it got there."""

    time: float
    node: str
    via: str
    source: str = ""  # the node the attempt came from ("" for a person falling for a lure)


@dataclass(slots=True, eq=False)
class Campaign:
    """One attacker campaign (or one insider's act) inside a trial: its plan and its state.

    The response to it is kept per organisation: ``closed[org]`` is when that organisation revoked the
    campaign's footholds in its people and systems; from then on the campaign holds nothing there and can
    take nothing there (its indicators are known). Organisations that have not responded keep their
    footholds in the attacker's hands.
    """

    label: str  # e.g. "tradertraitor#0" or "insider:alice#0"
    prefix: str  # stream-name prefix: campaigns draw from their own named streams
    index: int
    start: float
    threat: ThreatModel | None
    plan: list[Step]
    insider: str | None = None
    doors: Mapping[str, float] = field(default_factory=dict)  # person -> when their insider act opens doors
    org_of: Mapping[str, str] = field(default_factory=dict)  # node -> its organisation, in the variant simulated
    held: dict[str, float] = field(default_factory=dict)  # node -> time compromised
    came_from: dict[str, str] = field(default_factory=dict)  # node -> the node it was reached from ("": a lure)
    near: set[str] = field(default_factory=set)  # the wallets the nodes it took give it some power over
    keys_taken: dict[str, int] = field(default_factory=dict)  # wallet -> signers whose key store it took
    closed: dict[str, float] = field(default_factory=dict)  # organisation -> when it revoked the footholds
    responses: dict[str, int] = field(default_factory=dict)  # organisation -> how often it responded
    told_until: float = -math.inf  # until when the last round of telling other organisations goes on
    rounds_told: int = 0  # rounds of telling so far
    response_at: float = math.inf  # when the exchange's latest response began (an alarm or a notice)
    response_end: float = math.inf  # when that response is done (frozen, revoked, rotated)
    rounds: int = 0  # the exchange's responses so far (a new one after the last is over)
    later_alarms: int = 0  # the exchange's alarms while a response was under way
    rotated_at: float = math.inf  # when the exchange's keys copied by the campaign stop working
    freezes: list[float] = field(default_factory=list)  # when the exchange's responses freeze (start)
    first_chance: float = math.inf  # when the campaign could first strike a wallet it aims at
    deadline_set: bool = False  # whether it is to be woken when its longest wait is over
    struck: set[str] = field(default_factory=set)  # the wallets it has struck
    armed: dict[tuple[str, str], None] = field(default_factory=dict)  # (wallet, path) chances it has not taken
    waiting: dict[str, float] = field(default_factory=dict)  # wallet -> until when it surely is not ready for it
    gave_up: bool = False
    stops: list[str] = field(default_factory=list)
    taken_over: set[str] = field(default_factory=set)
    transfers: int = 0
    loss_usd: float = 0.0

    def fresh(self, org_of: Mapping[str, str] = _NO_ORGS) -> Campaign:
        """Return this campaign as sampled, before the simulation changed anything (its plan is shared).

        Args:
            org_of: the organisation of each node, in the variant the copy is simulated in.
        """
        return Campaign(self.label, self.prefix, self.index, self.start, self.threat, self.plan, self.insider,
                        self.doors, org_of)

    def u(self, rnd: TrialRandom, name: str, extra: int = 0) -> float:
        """Return this campaign's draw from stream ``name``."""
        return rnd.uniform(self.prefix + name, self.index * 4096 + extra)

    def closed_at(self, node: str) -> float:
        """Return when the campaign's foothold on ``node`` is revoked (infinity: not so far)."""
        return self.closed.get(self.org_of.get(node, ""), math.inf) if self.closed else math.inf

    def active(self, t: float) -> bool:
        """Whether the campaign may still act at ``t``: it holds a foothold then, or its plan takes one later."""
        if self.insider is not None:
            return t < self.closed_at(self.insider)
        if self.plan and self.plan[-1].time > t:
            return True
        return any(since <= t < self.closed_at(node) for node, since in self.held.items())

    def may_strike(self) -> bool:
        """Whether the campaign may still strike: it has not given up, and a one-shot one has not struck."""
        if self.gave_up:
            return False
        return not (self.struck and self.threat is not None and self.threat.strike.once)

    def holds(self, node: str, t: float) -> bool:
        """Whether the campaign controls ``node`` at ``t``."""
        since = self.held.get(node)
        if since is None or since > t:
            return False
        closed = self.closed  # written out (not closed_at): this is among the hottest lines of a run
        return not closed or t < closed.get(self.org_of.get(node, ""), math.inf)

    def released(self, nodes: Iterable[str]) -> float:
        """Return when the campaign last lets go of any of ``nodes`` it took (infinity: it keeps one)."""
        return max((self.closed_at(n) for n in nodes if n in self.held), default=-math.inf)

    def can_sign(self, signer: SignerModel, t: float) -> bool:
        """Whether the campaign can sign with ``signer``'s key at ``t``.

        A key copied out of its store stays usable after the footholds are revoked, until the exchange
        rotates its keys.
        """
        if self.insider is not None:
            return signer.holder == self.insider and t < self.closed_at(self.insider)
        store = signer.key_store
        since = self.held.get(store)
        if since is None or since > t:
            return False
        closed = self.closed
        if not closed or t < closed.get(self.org_of.get(store, ""), math.inf):
            return True
        return signer.exportable and t < self.rotated_at

    def usable_signers(self, wallet: WalletModel, t: float) -> list[SignerModel]:
        """Return the wallet's signers the campaign can sign with at ``t``."""
        return [s for s in wallet.signers if self.can_sign(s, t)]

    def next_step_after(self, t: float) -> float:
        """Return when the campaign next takes a node after ``t`` (or at ``t``, if not taken yet; infinity: never)."""
        return next((s.time for s in self.plan if s.time > t or (s.time == t and s.node not in self.held)), math.inf)

    def organisations(self) -> set[str]:
        """Return the organisations in which the campaign holds, or plans to take, a node."""
        org_of = self.org_of
        return {org_of.get(node, "") for node in self.held} | {org_of.get(s.node, "") for s in self.plan}

    def close(self, org: str, at: float, model: CompiledScenario, rnd: TrialRandom) -> None:
        """Organisation ``org`` revokes the campaign at ``at``: the campaign is closed there from then on.

        The plan is redrawn with the same draws (they are addressed by name): the attempts the revocation
        cuts short fail, and a node they led to may still be reached later by another path. The past stays
        as it was. When every step still to come after ``at`` is in ``org`` itself, no other path can
        reach any of them (a plan drawn under more closures only loses nodes), and they simply go.
        """
        self.closed[org] = at
        if self.threat is None:
            return
        org_of = self.org_of
        later = [s for s in self.plan if s.time >= at]
        if all(org_of.get(s.node) == org for s in later):
            if later:
                self.plan = [s for s in self.plan if s.time < at]
            return
        if any(s.node not in self.held and (org_of.get(s.node) == org or org_of.get(s.source) == org)
               for s in later):
            self.plan = spread(model, self.threat, self.prefix, self.index, self.start, rnd, self.doors,
                               self.closed, org_of)


def sample_campaigns(model: CompiledScenario, rnd: TrialRandom) -> list[Campaign]:
    """Draw the campaigns and insider acts of one trial, each with its spread plan."""
    campaigns: list[Campaign] = []
    horizon = model.horizon
    acts = {person: insider_acts(model, rnd, person) for person in model.insiders}
    doors = {person: min(starts) for person, starts in acts.items() if starts and person in model.door_openers}
    counts = [len(threat.forced_days) + poisson_quantile(threat.campaigns_per_horizon,
                                                         rnd.uniform(f"{threat.id}/count"), model.max_campaigns)
              for threat in model.threats]
    if sum(counts) + sum(map(len, acts.values())) > MAX_CAMPAIGNS:
        started = {**{t.id: n for t, n in zip(model.threats, counts, strict=True)},
                   **{f"insider:{person}": len(starts) for person, starts in acts.items()}}
        raise TrialTooCostly(rnd.trial, too_many_campaigns(started, model.max_campaigns))
    for threat, count in zip(model.threats, counts, strict=True):
        prefix = f"{threat.id}/"
        forced = threat.forced_days
        for i in range(count):
            start = forced[i] if i < len(forced) else horizon * rnd.uniform(prefix + "start", i)
            plan = spread(model, threat, prefix, i, start, rnd, doors)
            campaigns.append(Campaign(f"{threat.id}#{i}", prefix, i, start, threat, plan, doors=doors))
    for person, starts in acts.items():
        prefix = f"insider:{person}/"
        for i, start in enumerate(starts):
            campaigns.append(Campaign(f"insider:{person}#{i}", prefix, i, start, None, [], insider=person))
    return campaigns


def insider_acts(model: CompiledScenario, rnd: TrialRandom, person: str) -> list[float]:
    """Return when an insider acts in the trial (a Poisson number of uniform times)."""
    prefix = f"insider:{person}/"
    count = poisson_quantile(model.insiders[person], rnd.uniform(prefix + "count"), model.max_campaigns)
    return [model.horizon * rnd.uniform(prefix + "start", i) for i in range(count)]


def screen_trials(model: CompiledScenario, seed: int, trials: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return, for each of ``trials``, how many campaigns it has and whether it needs simulating.

    This draws, for a whole chunk of trials at once, the numbers :func:`sample_campaigns` and :func:`spread`
    would draw first: how many campaigns come, and whether anybody falls for them. A trial where nobody
    falls and no insider acts has no foothold at all: its row is the quiet row with its campaign count,
    and it needs no simulation. The others do (the screen is conservative: a fall may still come after
    the horizon).
    """
    started = {threat.id: len(threat.forced_days) + poisson_quantiles(
        threat.campaigns_per_horizon, uniform_array(seed, f"{threat.id}/count", trials), model.max_campaigns)
        for threat in model.threats}
    started |= {f"insider:{person}": poisson_quantiles(rate, uniform_array(seed, f"insider:{person}/count", trials),
                                                       model.max_campaigns) for person, rate in model.insiders.items()}
    counts = np.zeros(len(trials), dtype=np.int64)
    for n in started.values():
        counts += n
    over = np.flatnonzero(counts > MAX_CAMPAIGNS)
    if len(over):  # found before sampling any: a chunk would hold every one of them at once
        k = int(over[0])
        raise TrialTooCostly(int(trials[k]), too_many_campaigns({who: int(n[k]) for who, n in started.items()},
                                                             model.max_campaigns))
    needed = np.zeros(len(trials), dtype=bool)
    for threat in model.threats:
        prefix = f"{threat.id}/"
        n = started[threat.id]
        for i in range(int(n.max(initial=0))):
            shared: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # lure -> (decided together, the shared draw)
            for entry in threat.entries:
                u = uniform_array(seed, prefix + entry.stream + ":falls", trials, i)
                if entry.common_mode > 0:
                    if entry.lure not in shared:
                        together = uniform_array(seed, prefix + entry.lure + ":mode", trials, i) < entry.common_mode
                        shared[entry.lure] = (together, uniform_array(seed, prefix + entry.lure + ":shared", trials, i))
                    together, common = shared[entry.lure]
                    u = np.where(together, common, u)
                needed |= (n > i) & (u < entry.p_fall)
    for person in model.insiders:
        needed |= started[f"insider:{person}"] > 0
    return counts, needed


def falls_draw(entry: EntryModel, prefix: str, index: int, rnd: TrialRandom) -> float:
    """Return the draw that decides whether ``entry``'s target falls: its own, or the lure's shared one.

    With probability ``common_mode`` one draw decides every target of the lure in this campaign (a
    convincing lure fools several, a clumsy one nobody); otherwise each target draws on their own.
    """
    if entry.common_mode > 0 and rnd.uniform(prefix + entry.lure + ":mode", index) < entry.common_mode:
        return rnd.uniform(prefix + entry.lure + ":shared", index)
    return rnd.uniform(prefix + entry.stream + ":falls", index)


def spread(model: CompiledScenario, threat: ThreatModel, prefix: str, index: int, start: float,
           rnd: TrialRandom, doors: Mapping[str, float] = _NO_DOORS, closed: Mapping[str, float] | None = None,
           org_of: Mapping[str, str] = _NO_ORGS) -> list[Step]:
    """Return the nodes a campaign takes, in time order, unless its footholds are revoked.

    Each targeted person falls with their exposure after the technique's delay; from every node taken,
    each outgoing edge is tried once, and the earliest success wins (a shortest path over sampled
    times). An edge an insider opens (``doors``: when each such insider first acts) is tried from the
    later of its node's compromise and the opening. Given ``closed`` (organisation -> when it revoked the
    campaign), an attempt from a node fails if its organisation closed before the attempt completes, and
    nothing is taken in an organisation once it has closed; the draws are the same in every case.
    """
    frontier: list[tuple[float, str, str, str]] = []  # (time, node, how, the node the attempt came from)
    for entry in threat.entries:
        if falls_draw(entry, prefix, index, rnd) < entry.p_fall:
            delay = entry.delay_days.sample(rnd.uniform(prefix + entry.stream + ":delay", index))
            frontier.append((start + delay, entry.person, f"falls for {entry.technique}", ""))
    heapq.heapify(frontier)
    taken: set[str] = set()
    plan: list[Step] = []
    while frontier:
        t, node, via, source = heapq.heappop(frontier)
        if t >= model.horizon:
            break
        if node in taken:
            continue
        if closed and (t >= closed.get(org_of.get(node, ""), math.inf)
                       or (source and t >= closed.get(org_of.get(source, ""), math.inf))):
            continue  # revoked before this attempt completed, or an organisation closed to the campaign
        taken.add(node)
        plan.append(Step(t, node, via, source))
        for device in model.devices.get(node, ()):
            if device not in taken:
                heapq.heappush(frontier, (t, device, f"the device of {node}", node))
        for edge in model.out_edges.get(node, ()):
            if edge.to in taken:
                continue
            opens = t
            if edge.opened_by is not None:
                opened = doors.get(edge.opened_by)
                if opened is None:
                    continue  # the insider never acts in this trial: the door stays shut
                opens = max(t, opened)
            if rnd.uniform(prefix + edge.stream + ":ok", index) < edge.p_success:
                dt = edge.time_days.sample(rnd.uniform(prefix + edge.stream + ":time", index)) / threat.skill
                how = f"{edge.technique} from {node}" + (f" (opened by {edge.opened_by})" if edge.opened_by else "")
                heapq.heappush(frontier, (opens + dt, edge.to, how, node))
    return plan
