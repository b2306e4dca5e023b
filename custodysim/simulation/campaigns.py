"""Attacker campaigns: when they come, whom they fool, and how they spread over access edges."""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field

import numpy as np

from custodysim.scenario.distributions import poisson_quantile, poisson_quantiles
from custodysim.simulation.model import CompiledScenario, SignerModel, ThreatModel, WalletModel
from custodysim.simulation.randomness import TrialRandom, uniform_array


@dataclass(frozen=True)
class Step:
    """One node the campaign will hold, when, and how it got there."""

    time: float
    node: str
    via: str


@dataclass(slots=True, eq=False)
class Campaign:
    """One attacker campaign (or one insider's act) inside a trial: its plan and its state."""

    label: str  # e.g. "tradertraitor#0" or "insider:alice#0"
    prefix: str  # stream-name prefix: campaigns draw from their own named streams
    index: int
    start: float
    threat: ThreatModel | None
    plan: list[Step]
    insider: str | None = None
    held: dict[str, float] = field(default_factory=dict)  # node -> time compromised
    alarm_at: float = math.inf
    response_end: float = math.inf  # when the response to the first alarm is done (frozen, revoked, rotated)
    later_alarms: int = 0  # alarms raised while that response was under way
    revoked_at: float = math.inf
    rotated_at: float = math.inf
    stops: list[str] = field(default_factory=list)
    taken_over: set[str] = field(default_factory=set)
    transfers: int = 0
    loss_usd: float = 0.0

    def fresh(self) -> Campaign:
        """Return this campaign as sampled, before the simulation changed anything (its plan is shared)."""
        return Campaign(self.label, self.prefix, self.index, self.start, self.threat, self.plan, self.insider)

    def u(self, rnd: TrialRandom, name: str, extra: int = 0) -> float:
        """Return this campaign's draw from stream ``name``."""
        return rnd.uniform(self.prefix + name, self.index * 4096 + extra)

    def active(self, t: float) -> bool:
        """Whether the campaign still holds its footholds at ``t``."""
        return t < self.revoked_at

    def holds(self, node: str, t: float) -> bool:
        """Whether the campaign controls ``node`` at ``t``."""
        since = self.held.get(node)
        return since is not None and since <= t < self.revoked_at

    def can_sign(self, signer: SignerModel, t: float) -> bool:
        """Whether the campaign can sign with ``signer``'s key at ``t``.

        A key copied out of its store stays usable after the footholds are revoked, until rotated.
        """
        if self.insider is not None:
            return signer.holder == self.insider and t < self.revoked_at
        since = self.held.get(signer.key_store)
        if since is None or since > t:
            return False
        return t < self.revoked_at or (signer.exportable and t < self.rotated_at)

    def usable_signers(self, wallet: WalletModel, t: float) -> list[SignerModel]:
        """Return the wallet's signers the campaign can sign with at ``t``."""
        return [s for s in wallet.signers if self.can_sign(s, t)]


def sample_campaigns(model: CompiledScenario, rnd: TrialRandom) -> list[Campaign]:
    """Draw the campaigns and insider acts of one trial, each with its spread plan."""
    campaigns: list[Campaign] = []
    horizon = model.horizon
    for threat in model.threats:
        prefix = f"{threat.id}/"
        forced = threat.forced_days
        count = len(forced) + poisson_quantile(threat.campaigns_per_horizon, rnd.uniform(prefix + "count"),
                                               model.max_campaigns)
        for i in range(count):
            start = forced[i] if i < len(forced) else horizon * rnd.uniform(prefix + "start", i)
            plan = spread(model, threat, prefix, i, start, rnd)
            campaigns.append(Campaign(f"{threat.id}#{i}", prefix, i, start, threat, plan))
    for person, rate in model.insiders.items():
        prefix = f"insider:{person}/"
        count = poisson_quantile(rate, rnd.uniform(prefix + "count"), model.max_campaigns)
        for i in range(count):
            start = horizon * rnd.uniform(prefix + "start", i)
            campaigns.append(Campaign(f"insider:{person}#{i}", prefix, i, start, None, [], insider=person))
    return campaigns


def screen_trials(model: CompiledScenario, seed: int, trials: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return, for each of ``trials``, how many campaigns it has and whether it needs simulating.

    This draws, for a whole chunk of trials at once, the numbers :func:`sample_campaigns` and :func:`spread`
    would draw first: how many campaigns come, and whether anybody falls for them. A trial where nobody
    falls and no insider acts has no foothold at all: its row is the quiet row with its campaign count,
    and it needs no simulation. The others do (the screen is conservative: a fall may still come after
    the horizon).
    """
    counts = np.zeros(len(trials), dtype=np.int64)
    needed = np.zeros(len(trials), dtype=bool)
    for threat in model.threats:
        prefix = f"{threat.id}/"
        n = len(threat.forced_days) + poisson_quantiles(
            threat.campaigns_per_horizon, uniform_array(seed, prefix + "count", trials), model.max_campaigns)
        counts += n
        for i in range(int(n.max(initial=0))):
            for entry in threat.entries:
                falls = uniform_array(seed, prefix + entry.stream + ":falls", trials, i) < entry.p_fall
                needed |= (n > i) & falls
    for person, rate in model.insiders.items():
        n = poisson_quantiles(rate, uniform_array(seed, f"insider:{person}/count", trials), model.max_campaigns)
        counts += n
        needed |= n > 0
    return counts, needed


def spread(model: CompiledScenario, threat: ThreatModel, prefix: str, index: int, start: float,
           rnd: TrialRandom) -> list[Step]:
    """Return the nodes a campaign would take, in time order, if nobody stopped it.

    Each targeted person falls with their exposure after the technique's delay; from every node taken,
    each outgoing edge is tried once, and the earliest success wins (a shortest path over sampled
    times). Revocation later cuts this plan short; it never changes the draws.
    """
    frontier: list[tuple[float, str, str]] = []
    for entry in threat.entries:
        if rnd.uniform(prefix + entry.stream + ":falls", index) < entry.p_fall:
            delay = entry.delay_days.sample(rnd.uniform(prefix + entry.stream + ":delay", index))
            frontier.append((start + delay, entry.person, f"falls for {entry.technique}"))
    heapq.heapify(frontier)
    taken: set[str] = set()
    plan: list[Step] = []
    while frontier:
        t, node, via = heapq.heappop(frontier)
        if t >= model.horizon:
            break
        if node in taken:
            continue
        taken.add(node)
        plan.append(Step(t, node, via))
        for device in model.devices.get(node, ()):
            if device not in taken:
                heapq.heappush(frontier, (t, device, f"the device of {node}"))
        for edge in model.out_edges.get(node, ()):
            if edge.to in taken:
                continue
            if rnd.uniform(prefix + edge.stream + ":ok", index) < edge.p_success:
                dt = edge.time_days.sample(rnd.uniform(prefix + edge.stream + ":time", index)) / threat.skill
                heapq.heappush(frontier, (t + dt, edge.to, f"{edge.technique} from {node}"))
    return plan
