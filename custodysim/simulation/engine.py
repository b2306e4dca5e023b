"""One trial: a SimPy world where campaigns spread, steal and get caught while operations run.

Most trials never build a SimPy environment: a trial with no campaign returns the variant's quiet result,
and one whose campaigns never reach a wallet is replayed without SimPy (:func:`harmless_result`). Where
a world is built, its ledger starts from the variant's quiet timeline at the attacker's first contact.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Generator, Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import simpy

from custodysim.simulation.campaigns import Campaign, Step, sample_campaigns
from custodysim.simulation.model import CompiledScenario, WalletModel
from custodysim.simulation.randomness import TrialRandom
from custodysim.simulation.theft import choose_quorum, drain, forge, tamper
from custodysim.simulation.treasury import Intercept, LegitTransfer, OperationsTally, Treasury, quiet_timeline

HOUR = 1.0 / 24.0
PATH_TYPES = ("key_theft", "tampering", "forged_request", "insider")


@dataclass
class TrialResult:
    """What one trial reports (see MODEL.md, "What a trial reports")."""

    loss_by_asset: dict[str, float]
    loss_usd: float
    loss_usd_by_path: dict[str, float]
    loss_usd_by_wallet: dict[str, float]
    campaigns: int
    footholds: int
    stops: list[str]
    t_first_access: float
    t_first_theft: float
    t_first_alarm: float
    ops: OperationsTally
    attack_path: list[str] = field(default_factory=list)
    story: list[tuple[float, str]] = field(default_factory=list)

    @property
    def path_type(self) -> str:
        """Return the path type that carried most of the loss ("none" without loss)."""
        if self.loss_usd <= 0:
            return "none"
        return max(self.loss_usd_by_path, key=lambda k: self.loss_usd_by_path[k])

    @property
    def outcome(self) -> str:
        """Return loss, stopped, no_theft (in but took nothing), no_foothold or no_campaign."""
        return outcome(self.loss_usd, self.stops, self.footholds, self.campaigns)


def outcome(loss_usd: float, stops: Sequence[str], footholds: int, campaigns: int) -> str:
    """Return a trial's outcome: loss, stopped, no_theft (in but took nothing), no_foothold or no_campaign."""
    if loss_usd > 0:
        return "loss"
    if stops:
        return "stopped"
    if footholds:
        return "no_theft"
    return "no_foothold" if campaigns else "no_campaign"


class World:
    """All mutable state of one trial, and the actions the processes take on it."""

    def __init__(self, model: CompiledScenario, rnd: TrialRandom, campaigns: list[Campaign],
                 tell: bool = False) -> None:
        self.model = model
        self.rnd = rnd
        self.env = simpy.Environment()
        self._treasury: Treasury | None = None
        self.campaigns = campaigns
        self.daily_out: dict[tuple[str, int], float] = {}
        self.tamperers: dict[str, list[Campaign]] = {}
        self.draining: set[tuple[str, str]] = set()
        self._clock: simpy.Process | None = None
        self.tell = tell
        self.story: list[tuple[float, str]] = []
        self.loss: dict[str, float] = dict.fromkeys(model.assets, 0.0)
        self.loss_by_path = dict.fromkeys(PATH_TYPES, 0.0)
        self.loss_by_wallet: dict[str, float] = {}
        self.first_access = math.inf
        self.first_theft = math.inf
        self.first_alarm = math.inf

    @property
    def treasury(self) -> Treasury:
        """Return the trial's ledger, taken from the quiet timeline the first time the attacker reaches it."""
        if self._treasury is None:
            self._treasury = quiet_timeline(self.model).at(self.env.now)
        return self._treasury

    # ------------------------------------------------------------------ running
    def run(self) -> TrialResult:
        """Simulate the trial to the horizon and return its result."""
        for c in self.campaigns:
            if c.plan or c.insider is not None:  # a campaign that fooled nobody does nothing
                self.env.process(run_campaign(self.env, self, c))
        self.env.run(until=self.model.horizon)
        if self._treasury is None:
            ops = quiet_timeline(self.model).final.tally  # nothing ever touched operations
        else:
            self._finish_operations()
            ops = self._treasury.tally
        # The worst campaign's path is reported; among campaigns that lost the same (to 9 significant
        # digits, so that float rounding never decides), the first.
        worst = self.campaigns[0] if len(self.campaigns) == 1 else \
            max(self.campaigns, key=lambda c: float(f"{c.loss_usd:.9g}"), default=None)
        path = [f"{node}@{t:.1f}d" for node, t in worst.held.items()] if worst and worst.loss_usd > 0 else []
        return TrialResult(
            loss_by_asset=self.loss, loss_usd=sum(self.loss_by_path.values()),
            loss_usd_by_path=self.loss_by_path, loss_usd_by_wallet=self.loss_by_wallet,
            campaigns=len(self.campaigns), footholds=sum(len(c.held) for c in self.campaigns),
            stops=[s for c in self.campaigns for s in c.stops],
            t_first_access=self.first_access, t_first_theft=self.first_theft, t_first_alarm=self.first_alarm,
            ops=ops, attack_path=path, story=self.story,
        )

    def _finish_operations(self) -> None:
        """Run operations from the attacker's last move to the horizon.

        Up to the last revocation of a campaign that could rewrite transfers, and the last edge of a
        freeze, the ledger runs event by event; from there on nobody intercepts a transfer (a revoked
        campaign lets every one pass) and nothing is frozen, so the listeners go and the ledger may
        settle whole series of transfers at once (:meth:`Treasury.finish`).
        """
        ledger = self.treasury
        horizon = self.model.horizon
        revoked = {wid: max(c.revoked_at for c in cs) for wid, cs in self.tamperers.items()}
        calm = max([ledger.now, ledger.last_freeze_edge(), *(t for t in revoked.values() if t < horizon)])
        if calm < horizon:
            ledger.advance(calm)
            for wid, t in revoked.items():
                if t <= calm:
                    ledger.listeners.pop(wid, None)
        ledger.finish(horizon)

    def sync(self) -> None:
        """Bring operations up to the current simulation time."""
        self.treasury.advance(self.env.now)

    def trace(self, template: str, *args: object) -> None:
        """Record a line of the trial's story, ``template.format(*args)``.

        Formatting happens only when the story is being told: bulk runs pay for nothing but the call.
        """
        if self.tell:
            self.story.append((self.env.now, template.format(*args)))

    # ------------------------------------------------------------------ attacker progress
    def compromise(self, c: Campaign, step: Step) -> None:
        """The campaign takes ``step.node``: record it, start its detection, grant capabilities."""
        now = self.env.now
        c.held[step.node] = now
        self.first_access = min(self.first_access, now)
        self.trace("{} takes {} ({})", c.label, step.node, step.via)
        self._schedule_detection(c, step.node, now)
        m = self.model
        for wid, _signer in m.key_holdings.get(step.node, ()):
            wallet = m.wallets[wid]
            if (c.label, wid) not in self.draining and choose_quorum(c, wallet, now) is not None:
                self.draining.add((c.label, wid))
                self.trace("{} can now sign for {} with {} key(s)", c.label, wid, wallet.threshold)
                self.env.process(drain(self.env, self, c, wallet, "key_theft"))
        self._add_tamperer(c, m.pipeline_of.get(step.node, ()))
        for wid in m.requester_of.get(step.node, ()):
            forge(self, c, m.wallets[wid])

    def insider_acts(self, c: Campaign) -> None:
        """An insider uses the keys they hold: any wallet where they alone make a quorum."""
        assert c.insider is not None
        self.trace("insider {} decides to act", c.insider)
        for wallet in self.model.wallets.values():
            if choose_quorum(c, wallet, self.env.now) is not None:
                self.env.process(drain(self.env, self, c, wallet, "insider"))

    def _schedule_detection(self, c: Campaign, node: str, since: float) -> None:
        best, by = first_detection(self.model, self.rnd, c, node, since)
        if best < self.model.horizon:
            self._alarm_at(c, best, f"detection:{by}", node)

    def _alarm_at(self, c: Campaign, at: float, source: str, node: str | None) -> None:
        """Raise the alarm ``source`` on campaign ``c`` at ``at``, if it still holds ``node`` then."""

        def ring(_: simpy.Event) -> None:
            if node is None or c.holds(node, self.env.now):  # else revoked before it was noticed
                self.stop(c, source, set())

        self.env.timeout(at - self.env.now).callbacks.append(ring)

    def _add_tamperer(self, c: Campaign, wallets: Iterable[str]) -> None:
        """Campaign ``c`` can now rewrite the transfers out of ``wallets``: listen to them, and keep time for it.

        The ledger is first brought up to now, so the transfers made up to this instant pass as they were.
        """
        new = [wid for wid in wallets if c not in self.tamperers.get(wid, ())]
        if not new:
            return
        self.sync()  # the clock reckons the next transfer from the ledger as it is now
        for wid in new:
            self.trace("{} can now rewrite transfers out of {}", c.label, wid)
            listeners = self.tamperers.setdefault(wid, [])
            listeners.append(c)
            if len(listeners) == 1:
                self.treasury.listeners[wid] = partial(self._intercept, wid)
        if self._clock is None:
            self._clock = self.env.process(self._operations_clock())
        else:
            self.wake_clock()  # it sleeps until a time reckoned without this campaign

    def _intercept(self, wid: str, transfer: LegitTransfer) -> Intercept:
        if transfer.time >= self.model.horizon:
            return Intercept.PASS  # the attacker acts inside the horizon only, as SimPy stops before it
        wallet = self.model.wallets[wid]
        for c in self.tamperers[wid]:
            if any(c.holds(comp, transfer.time) for comp in wallet.pipeline):
                return tamper(self, c, wallet, transfer)
        return Intercept.PASS

    def _operations_clock(self) -> Generator[Any, Any, None]:
        # Runs only while someone may intercept legitimate transfers, so that each is met on time: it wakes
        # at (or before) the next transfer out of a wallet a live campaign can rewrite, and brings the
        # ledger up to then. The attacker changing the ledger outside it (a freeze, a revocation, a theft)
        # interrupts it, since that may change the answer.
        horizon = self.model.horizon
        while self.env.now < horizon:
            now = self.env.now
            watched = [wid for wid, cs in self.tamperers.items() if any(c.active(now) for c in cs)]
            if not watched:
                self._clock = None  # every tamperer is revoked: operations can go back to lazy
                return
            due = min(self.treasury.next_transfer_time(watched), horizon)
            try:
                yield self.env.timeout(max(due - self.env.now, 0.0))
                self.sync()
            except simpy.Interrupt:
                pass

    # ------------------------------------------------------------------ losses, alarms, response
    def lose(self, c: Campaign, wallet: WalletModel, amount: float, path: str) -> None:
        """A theft transfer is broadcast: the funds are gone."""
        now = self.env.now
        self.treasury.settle_theft(wallet.id, amount, stolen=True)
        kept = amount * (1.0 - self.model.recovered_fraction)
        usd = kept * self.model.price_at(wallet.asset, now)
        self.loss[wallet.asset] += kept
        self.loss_by_path[path] += usd
        self.loss_by_wallet[wallet.id] = self.loss_by_wallet.get(wallet.id, 0.0) + usd
        c.loss_usd += usd
        self.first_theft = min(self.first_theft, now)
        self.trace("{:,.6g} {} leave {} for the attacker ({})", amount, wallet.asset, wallet.id, path)

    def watch_outflow(self, c: Campaign, wallet: WalletModel, amount: float, sent: float) -> None:
        """Outflow monitoring may notice an attacker transfer, after its delay."""
        usd = amount * self.model.price_at(wallet.asset, sent)
        for mon in wallet.monitors:
            if usd < mon.min_amount_usd:
                continue
            if c.u(self.rnd, f"monitor:{mon.id}:{wallet.id}", c.transfers) < mon.probability:
                at = sent + mon.delay_hours.sample(c.u(self.rnd, f"monitor-delay:{mon.id}", c.transfers)) * HOUR
                if at < self.model.horizon:
                    self._alarm_at(c, at, f"monitoring:{mon.id}", None)

    def stop(self, c: Campaign, source: str, wallets: set[str], hold: bool = False) -> None:
        """Raise the alarm on campaign ``c``: freeze the affected wallets, then revoke its footholds.

        ``hold`` freezes ``wallets`` at once (a refused signature or a blocked transfer halts the wallet
        on the spot); the response freezes every wallet the campaign can reach after the freeze delay.
        """
        now = self.env.now
        # A stop is an alarm before the campaign stole anything, or a block or veto of a transfer;
        # an alarm after a theft only limits what follows, and is not counted as stopping the attacker.
        if (hold or c.loss_usd == 0) and source not in c.stops:
            c.stops.append(source)
        self.trace("alarm: {} on {}", source, c.label)
        self.first_alarm = min(self.first_alarm, now)
        if c.alarm_at <= now:
            self._answer_later_alarm(c, wallets, hold)
            return
        c.alarm_at = now
        m = self.model
        freeze_at = now + m.freeze_delay_hours.sample(c.u(self.rnd, "response:freeze")) * HOUR
        revoke_at = now + m.revoke_delay_hours.sample(c.u(self.rnd, "response:revoke")) * HOUR
        c.revoked_at = min(c.revoked_at, revoke_at)
        c.rotated_at = revoke_at + m.key_rotation_hours.sample(c.u(self.rnd, "response:rotate")) * HOUR
        end = c.response_end = max(revoke_at, freeze_at, c.rotated_at)
        self.trace("response: freeze in {:.1f} h, revoke in {:.1f} h",
                   (freeze_at - now) / HOUR, (revoke_at - now) / HOUR)
        targets = wallets | self._reach(c, now)
        if targets:  # with nothing to freeze, operations are not touched (they stay the quiet ones)
            self.sync()
            if hold:
                self._freeze(wallets, now, end)
            self._freeze(targets, freeze_at, end)
            self.wake_clock()

    def _answer_later_alarm(self, c: Campaign, wallets: set[str], hold: bool) -> None:
        """An alarm while the campaign's response is under way freezes what the first one could not.

        The response revokes on its own schedule; but a wallet the campaign reached after the first alarm
        (or one it is now seen draining) is frozen after a freeze delay of its own, or at once for a
        veto or a block, until the response ends.
        """
        now = self.env.now
        end = c.response_end
        targets = wallets | self._reach(c, now)
        if end <= now or not targets:
            return  # the response is over (the campaign holds nothing any more), or nothing to freeze
        self.sync()
        held = hold and self._freeze(wallets, now, end)
        exposed = [wid for wid in targets if not self.treasury.frozen_over(wid, now, end)]
        if exposed:  # a freeze delay is drawn only for an alarm that has something left to freeze
            c.later_alarms += 1
            freeze_at = now + self.model.freeze_delay_hours.sample(
                c.u(self.rnd, "response:freeze-later", c.later_alarms)) * HOUR
            self._freeze(exposed, freeze_at, end)
        if held or exposed:
            self.wake_clock()

    def _freeze(self, wallets: Iterable[str], start: float, end: float) -> bool:
        """Freeze each of ``wallets`` over [start, end); return whether any freeze was new."""
        added = False
        for wid in wallets:
            added |= self.treasury.freeze(wid, start, end)
        return added

    def wake_clock(self) -> None:
        """Tell a sleeping operations clock that the attacker changed the ledger: its next wake-up may move."""
        if self._clock is not None and self.env.active_process is not self._clock:
            self._clock.interrupt()

    def _reach(self, c: Campaign, t: float) -> set[str]:
        """Return the wallets campaign ``c`` can act on at ``t``."""
        out: set[str] = set(c.taken_over)
        for w in self.model.wallets.values():
            if c.usable_signers(w, t) or any(c.holds(n, t) for n in w.contact_nodes):
                out.add(w.id)
        return out


def run_campaign(env: simpy.Environment, world: World, c: Campaign) -> Generator[Any, Any, None]:
    """SimPy process: take the planned nodes in order until the campaign is revoked."""
    if c.insider is not None:
        yield env.timeout(c.start - env.now)
        world.insider_acts(c)
        return
    for step in c.plan:
        if step.time >= c.revoked_at:
            return
        if step.time > env.now:
            yield env.timeout(step.time - env.now)
        if step.time >= c.revoked_at:
            return
        world.compromise(c, step)


def first_detection(model: CompiledScenario, rnd: TrialRandom, c: Campaign, node: str,
                    since: float) -> tuple[float, str]:
    """Return when the controls watching ``node`` first notice campaign ``c`` there, and which control."""
    best, by = math.inf, ""
    for control, dist in model.detectors.get(node, ()):
        t = since + dist.sample(c.u(rnd, f"detect:{control}:{node}"))
        if t < best:
            best, by = t, control
    return best, by


def simulate_trial(model: CompiledScenario, seed: int, trial: int, quiet: TrialResult | None = None,
                   tell: bool = False, campaigns: list[Campaign] | None = None) -> TrialResult:
    """Simulate one trial of ``model``.

    Given the variant's ``quiet`` result (operations with no attacker), trials whose campaigns never
    touch a wallet skip the SimPy world: see :func:`replay_harmless`. ``campaigns`` are the trial's
    campaigns if already sampled (fresh, by a variant with the same attack surface).
    """
    rnd = TrialRandom(seed, trial)
    if campaigns is None:
        campaigns = sample_campaigns(model, rnd)
    if quiet is not None and not tell:
        if not campaigns:
            return quiet
        harmless = replay_harmless(model, rnd, campaigns)
        if harmless is not None:
            return harmless.result(quiet)
    return World(model, rnd, campaigns, tell=tell).run()


@dataclass(frozen=True)
class Harmless:
    """What a trial whose campaigns never reach a wallet reports besides the quiet operations.

    It depends only on the campaigns and on what :func:`replay_harmless` reads of the variant
    (:attr:`~custodysim.simulation.model.CompiledScenario.harmless_surface`), so variants that share those share it.
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


def replay_harmless(model: CompiledScenario, rnd: TrialRandom, campaigns: list[Campaign]) -> Harmless | None:
    """Replay a trial whose campaigns reach no key store, pipeline or request account before they are revoked.

    Such campaigns cannot act on any wallet: operations run as in the quiet trial, an alarm freezes
    nothing, and each campaign only spreads until its first alarm's revocation. That is replayed here
    without SimPy, event for event as :class:`World` would run it. Returns None as soon as a campaign
    would take a node that acts on a wallet (or an insider acts), or if an alarm falls at the same instant
    as another event of its campaign (SimPy's event order then decides): the caller then runs the full
    world. The campaigns given are left as they are: the replay runs on fresh copies of them
    (:meth:`Campaign.fresh`).
    """
    capable = model.capability_nodes
    if any(c.insider is not None for c in campaigns):
        return None
    campaigns = [c.fresh() for c in campaigns]
    horizon = model.horizon
    first_access = first_alarm = math.inf
    stops: list[str] = []
    footholds = 0
    for c in campaigns:
        alarms: list[tuple[float, int, str, str]] = []  # (time, order, node, source)
        steps = iter(c.plan)
        step: Step | None = next(steps, None)
        while step is not None or alarms:
            if alarms and (step is None or alarms[0][0] < step.time):
                at, _, node, source = heapq.heappop(alarms)
                if alarms and alarms[0][0] == at:
                    return None
                if not c.holds(node, at):
                    continue  # revoked before it was noticed
                if source not in c.stops:
                    c.stops.append(source)
                first_alarm = min(first_alarm, at)
                if c.alarm_at == math.inf:
                    c.alarm_at = at
                    c.revoked_at = at + model.revoke_delay_hours.sample(c.u(rnd, "response:revoke")) * HOUR
                continue
            assert step is not None
            if alarms and alarms[0][0] == step.time:
                return None
            if step.time >= c.revoked_at:
                step = None  # the campaign is over; alarms already raised still ring
                continue
            if step.node in capable:
                return None  # it reaches a wallet: the world decides
            c.held[step.node] = step.time
            first_access = min(first_access, step.time)
            best, by = first_detection(model, rnd, c, step.node, step.time)
            if best < horizon:
                heapq.heappush(alarms, (best, len(c.held), step.node, f"detection:{by}"))
            step = next(steps, None)
        footholds += len(c.held)
        stops += c.stops
    return Harmless(len(campaigns), footholds, tuple(stops), first_access, first_alarm)
