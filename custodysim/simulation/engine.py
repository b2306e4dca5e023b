"""One trial: a SimPy world where campaigns spread, strike and get caught while operations run.

Most trials never build a SimPy environment: a trial with no campaign (and no lost keys) returns the
variant's quiet result, and one whose campaigns never reach a wallet is replayed without SimPy
(:mod:`~custodysim.simulation.harmless`).
Where a world is built, its ledger starts from the variant's quiet timeline at the attacker's first contact.
"""

from __future__ import annotations

import math
from collections.abc import Generator, Iterable
from functools import partial
from typing import Any

import simpy

from custodysim.errors import TrialTooCostly
from custodysim.simulation.budget import MAX_ACTIONS, MAX_STORY_LINES, campaigns_cause, transfers_cause
from custodysim.simulation.campaigns import Campaign, Step, sample_campaigns
from custodysim.simulation.harmless import replay_harmless
from custodysim.simulation.keyloss import Lock, locks
from custodysim.simulation.model import CompiledScenario, WalletModel
from custodysim.simulation.randomness import TrialRandom
from custodysim.simulation.response import first_detection, learn, notices, raised_by, revoke_delay
from custodysim.simulation.results import PATH_TYPES, LossEvent, TrialResult, Units
from custodysim.simulation.theft import choose_quorum, drain, forge, strikes_now, tamper
from custodysim.simulation.treasury import Intercept, LegitTransfer, Treasury, quiet_timeline

HOUR = 1.0 / 24.0


class World:
    """All mutable state of one trial, and the actions the processes take on it."""

    def __init__(self, model: CompiledScenario, rnd: TrialRandom, campaigns: list[Campaign],
                 tell: bool = False, locks: list[Lock] | None = None) -> None:
        self.model = model
        self.locks = locks or []
        self.rnd = rnd
        self.env = simpy.Environment()
        self._treasury: Treasury | None = None
        self.campaigns = campaigns
        for c in campaigns:
            c.org_of = model.node_org
        self.daily_out: dict[tuple[str, int], float] = {}
        self.outflows: dict[str, list[tuple[float, float]]] = {}
        self.tamperers: dict[str, list[Campaign]] = {}
        self.draining: set[tuple[str, str]] = set()
        self.owners: dict[str, Campaign] = {}  # taken-over wallet -> the campaign that owns it
        self.locked_out: set[str] = set()  # wallets nobody can sign for any more
        self.locked = 0  # times a wallet was locked for want of keys
        self._clock: simpy.Process | None = None
        self.tell = tell
        self.story: list[tuple[float, str]] = []
        self.actions = 0  # the attacker's actions so far, against the trial's budget (see spend)
        self._tamperings = 0  # (wallet, campaign) pairs the operations clock looks at on each wake
        self.loss: dict[str, float] = dict.fromkeys(model.assets, 0.0)
        self.loss_by_path = dict.fromkeys(PATH_TYPES, 0.0)
        self.loss_by_wallet: dict[str, float] = {}
        self.events: dict[str, LossEvent] = {}  # by event name, in the order they began
        self.first_access = math.inf
        self.first_theft = math.inf
        self.first_alarm = math.inf

    @property
    def treasury(self) -> Treasury:
        """Return the trial's ledger, taken from the quiet timeline the first time the attacker reaches it."""
        if self._treasury is None:
            self._treasury = quiet_timeline(self.model).at(self.env.now)
            self._treasury.on_lost = self._inflow_lost
        return self._treasury

    # ------------------------------------------------------------------ running
    def run(self) -> TrialResult:
        """Simulate the trial to the horizon and return its result."""
        for c in self.campaigns:
            if c.plan or c.insider is not None:  # a campaign that fooled nobody does nothing
                self.env.process(run_campaign(self.env, self, c))
        for lock in self.locks:
            self.env.timeout(lock.start).callbacks.append(partial(self._lock, lock))
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
        path = footholds(worst) if worst and worst.loss_usd > 0 else []
        return TrialResult(
            loss_by_asset=self.loss, loss_usd=sum(self.loss_by_path.values()),
            loss_usd_by_path=self.loss_by_path, loss_usd_by_wallet=self.loss_by_wallet,
            campaigns=len(self.campaigns), footholds=sum(len(c.held) for c in self.campaigns),
            stops=[s for c in self.campaigns for s in c.stops],
            t_first_access=self.first_access, t_first_theft=self.first_theft, t_first_alarm=self.first_alarm,
            ops=ops, locks=self.locked, attack_path=path, story=self.story,
            events=[e for e in self.events.values() if e.loss_usd > 0],
        )

    def _finish_operations(self) -> None:
        """Run operations from the attacker's last move to the horizon.

        Up to the last revocation of a campaign that could still rewrite transfers, and the last edge of a
        freeze, the ledger runs event by event; from there on nobody intercepts a transfer and nothing is
        frozen, so the listeners go and the ledger may settle whole series of transfers at once
        (:meth:`Treasury.finish`). A campaign that may strike no more (it struck once, or gave up) lets
        every transfer pass from then on.
        """
        ledger = self.treasury
        horizon = self.model.horizon
        released = {wid: max(c.released(self.model.wallets[wid].pipeline) if c.may_strike() else -math.inf
                             for c in cs) for wid, cs in self.tamperers.items()}
        calm = max([ledger.now, ledger.last_freeze_edge(), *(t for t in released.values() if t < horizon)])
        if calm < horizon:
            ledger.advance(calm)
            for wid, t in released.items():
                if t <= calm:
                    ledger.listeners.pop(wid, None)
        ledger.finish(horizon)

    def sync(self) -> None:
        """Bring operations up to the current simulation time."""
        self.treasury.advance(self.env.now)

    def trace(self, template: str, *args: object) -> None:
        """Record a line of the trial's story, ``template.format(*args)``.

        Formatting happens only when the story is being told: bulk runs pay for nothing but the call. A
        number given as ``{}`` (no format spec) is an amount of an asset, written as the tables write it.
        """
        if self.tell and len(self.story) <= MAX_STORY_LINES:
            text = template.format(*(Units(a) if type(a) is float else a for a in args)) \
                if len(self.story) < MAX_STORY_LINES else \
                f"(the story stops here: a story keeps at most {MAX_STORY_LINES:,} lines)"
            self.story.append((self.env.now, text))

    def spend(self, actions: int = 1) -> None:
        """Count ``actions`` of the attacker's; stop a trial that takes more than :data:`MAX_ACTIONS`.

        Raises:
            TrialTooCostly: naming the threat whose campaigns, or the campaign whose theft transfers, cost most.
        """
        self.actions += actions
        if self.actions > MAX_ACTIONS:
            raise TrialTooCostly(self.rnd.trial, self._cost_cause())

    def _cost_cause(self) -> str:
        """Say what in the scenario made this trial too costly: many theft transfers, or many campaigns."""
        busiest = max(self.campaigns, key=lambda c: c.transfers)
        if 2 * busiest.transfers > self.actions:
            threat = busiest.threat
            interval = threat.drain_interval_days if threat is not None else 1 / 144
            return (f"its theft transfers took more than the {MAX_ACTIONS:,} actions a trial may: "
                    + transfers_cause(busiest.label, threat.id if threat else None, busiest.transfers, interval * 1440))
        started: dict[str, int] = {}
        for c in self.campaigns:
            who = c.threat.id if c.threat is not None else f"insider:{c.insider}"
            started[who] = started.get(who, 0) + 1
        return (f"its {len(self.campaigns):,} campaigns took more than the {MAX_ACTIONS:,} actions a trial may "
                "(nodes taken, theft transfers, alarms, looks at campaigns that can rewrite transfers): "
                + campaigns_cause(started, self.model.max_campaigns))

    # ------------------------------------------------------------------ attacker progress
    def compromise(self, c: Campaign, step: Step) -> None:
        """The campaign takes ``step.node``: record it, start its detection, grant capabilities."""
        self.spend()
        now = self.env.now
        node = step.node
        c.held[node] = now
        c.came_from[node] = step.source
        self.first_access = min(self.first_access, now)
        self.trace("{} takes {} ({})", c.label, node, step.via)
        self._schedule_detection(c, node, now)
        m = self.model
        chances: list[tuple[str, str]] = []
        keys = c.keys_taken
        for wid, stored in m.key_holdings.get(node, ()):
            c.near.add(wid)
            keys[wid] = taken = keys.get(wid, 0) + stored
            wallet = m.wallets[wid]
            # a quorum needs at least `threshold` of the keys it took: only then is one worth looking for
            if taken >= wallet.threshold and (c.label, wid) not in self.draining \
                    and choose_quorum(c, wallet, now) is not None:
                chances.append((wid, "key_theft"))
        requested = m.requester_of.get(node, ())
        chances += [(wid, "forged_request") for wid in requested]
        tampered = m.pipeline_of.get(node, ())
        if requested:
            c.near.update(requested)
        if tampered:
            c.near.update(tampered)
        if c.waiting:
            self._watch()  # a campaign waiting to be ready may be ready now
        self._add_tamperer(c, tampered)
        if not chances and not tampered:
            return
        self._first_chance(c, [wid for wid, _ in chances] + list(tampered))
        c.armed.update(dict.fromkeys(chances))
        self.strike_armed(c)

    def _first_chance(self, c: Campaign, wallets: list[str]) -> None:
        """Start the campaign's wait at its first chance on a wallet it aims at."""
        strike = c.threat.strike if c.threat is not None else None
        if strike is None or c.first_chance < math.inf:
            return
        if not isinstance(strike.aim, str) and not strike.aim.intersection(wallets):
            return
        c.first_chance = self.env.now

    def _defer(self, c: Campaign) -> None:
        """The campaign let a chance go: make sure it is woken when its longest wait is over."""
        if c.deadline_set or c.threat is None:
            return
        c.deadline_set = True
        deadline = c.first_chance + c.threat.strike.max_wait_days
        if self.env.now < deadline < self.model.horizon:
            self.env.timeout(deadline - self.env.now).callbacks.append(lambda _: self._wait_over(c))

    def _wait_over(self, c: Campaign) -> None:
        """The campaign's longest wait is over: it fires (or gives up) at its next chance."""
        self.strike_armed(c)
        if c.waiting:
            self._watch()

    def strike_armed(self, c: Campaign) -> None:
        """Take the chances the campaign holds on its own (stolen keys, request accounts) that it strikes now."""
        armed = c.armed
        if not armed:
            return
        now = self.env.now
        m = self.model
        for wid, path in list(armed):
            wallet = m.wallets[wid]
            if path == "key_theft" and choose_quorum(c, wallet, now) is None:
                del armed[wid, path]  # the keys are gone
                continue
            if not strikes_now(self, c, wallet, path, now):
                self._defer(c)
                continue
            del armed[wid, path]
            if path == "forged_request":
                forge(self, c, wallet)
                continue
            # the keys sign for the account: every asset at the address is drained at once
            for w in m.accounts[wallet.account] if wallet.account in m.shared_accounts else (wallet,):
                if w is not wallet and ((c.label, w.id) in self.draining or choose_quorum(c, w, now) is None):
                    continue
                armed.pop((w.id, path), None)
                c.struck.add(w.id)
                self.draining.add((c.label, w.id))
                self.trace("{} signs for {} with {} key(s)", c.label, w.id, w.threshold)
                self.env.process(drain(self.env, self, c, w, "key_theft"))

    def insider_acts(self, c: Campaign) -> None:
        """An insider uses the keys they hold: any wallet where they alone make a quorum."""
        assert c.insider is not None
        self.trace("insider {} decides to act", c.insider)
        for wallet in self.model.wallets.values():
            if choose_quorum(c, wallet, self.env.now) is not None:
                self.env.process(drain(self.env, self, c, wallet, "insider"))

    @staticmethod
    def can_strike(c: Campaign, wallet: WalletModel, t: float) -> bool:
        """Whether campaign ``c`` could strike ``wallet`` at ``t``: it holds a node on its way, or a quorum."""
        return wallet.id not in c.taken_over and (any(c.holds(n, t) for n in wallet.contact_nodes)
                                                  or choose_quorum(c, wallet, t) is not None)

    def _schedule_detection(self, c: Campaign, node: str, since: float) -> None:
        best, by = first_detection(self.model, self.rnd, c, node, since)
        if best < self.model.horizon:
            self._alarm_at(c, best, f"detection:{by}", node)

    def _alarm_at(self, c: Campaign, at: float, source: str, node: str | None) -> None:
        """Raise the alarm ``source`` on campaign ``c`` at ``at``, if it still holds ``node`` then.

        An alarm about a node is raised by the node's organisation; one about a wallet, by the exchange.
        """

        def ring(_: simpy.Event) -> None:
            if node is None or c.holds(node, self.env.now):  # else revoked before it was noticed
                self.stop(c, source, set(), org=raised_by(self.model, c, node), node=node)

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
            self._tamperings += 1
            if len(listeners) == 1:
                self.treasury.listeners[wid] = partial(self._intercept, wid)
        self._watch()  # the clock sleeps until a time reckoned without this campaign

    def _intercept(self, wid: str, transfer: LegitTransfer) -> Intercept:
        t = transfer.time
        if t >= self.model.horizon:
            return Intercept.PASS  # the attacker acts inside the horizon only, as SimPy stops before it
        wallet = self.model.wallets[wid]
        for c in self.tamperers[wid]:
            if self._waits(c, wid, t):
                continue  # surely not ready for this wallet yet
            if any(c.holds(comp, t) for comp in wallet.pipeline):
                if strikes_now(self, c, wallet, "tampering", t):
                    return tamper(self, c, wallet, transfer)
                self._defer(c)
        return Intercept.PASS

    @staticmethod
    def _waits(c: Campaign, wid: str, t: float) -> bool:
        """Whether campaign ``c`` surely lets every transfer out of ``wid`` pass at ``t`` (not ready yet).

        It then needs no watching: such transfers may be met late, when the ledger next catches up.
        """
        return c.waiting.get(wid, -math.inf) > t

    def _operations_clock(self) -> Generator[Any, Any, None]:
        # Runs only while someone may intercept legitimate transfers, so that each is met on time: it wakes
        # at (or before) the next transfer out of a wallet a live campaign can rewrite, and brings the
        # ledger up to then. The attacker changing the ledger outside it (a freeze, a revocation, a theft)
        # interrupts it, since that may change the answer.
        horizon = self.model.horizon
        while self.env.now < horizon:
            self.spend(self._tamperings)
            now = self.env.now
            watched = [wid for wid, cs in self.tamperers.items()
                       if any(c.may_strike() and not self._waits(c, wid, now) and c.active(now) for c in cs)]
            if not watched:
                self._clock = None  # no tamperer can strike any more: operations can go back to lazy
                return
            due = min(self.treasury.next_transfer_time(watched), horizon)
            try:
                yield self.env.timeout(max(due - self.env.now, 0.0))
                self.sync()
            except simpy.Interrupt:
                pass

    # ------------------------------------------------------------------ losses
    def lose(self, c: Campaign, wallet: WalletModel, amount: float, path: str) -> None:
        """A theft transfer is broadcast: the funds are gone (and the campaign's next target may have changed)."""
        self.treasury.settle_theft(wallet.id, amount, stolen=True)
        self._count_loss(c, wallet, amount, path, self.env.now)
        self.strike_armed(c)

    def take_over(self, c: Campaign, wallet: WalletModel) -> None:
        """The wallet's logic is replaced: it and every asset of its account are the campaign's from now on.

        One address has one logic: their balances are lost at once, and every transfer into them until the
        exchange stops sending (its response freezes the wallet); the exchange never signs out of them
        again, so their operations stop.
        """
        now = self.env.now
        self.sync()
        for w in self.model.accounts[wallet.account]:
            if w is not wallet and w.id in self.owners:
                continue
            c.taken_over.add(w.id)
            self.owners[w.id] = c
            self.trace("{} takes over {}: its logic and all it holds are the attacker's", c.label, w.id)
            amount = self.treasury.take_over(w.id, now)
            if amount > 0:
                self._count_loss(c, w, amount, "tampering", now)
        self.wake_clock()
        self.strike_armed(c)

    def _inflow_lost(self, wid: str, amount: float) -> None:
        """Funds that landed in a taken-over wallet (the attacker's) or a locked-out one (lost), as the ledger runs."""
        wallet, t = self.model.wallets[wid], self.treasury.now
        if wid in self.locked_out:
            self._count_lock_out(wallet, amount, t)
        else:
            self._count_loss(self.owners[wid], wallet, amount, "tampering", t)

    def _book(self, wallet: WalletModel, amount: float, path: str, t: float) -> float:
        """Add a loss of ``amount`` of ``wallet``'s asset at ``t`` to the trial's losses by asset, path and wallet.

        Returns it in USD.
        """
        usd = amount * self.model.price_at(wallet.asset, t)
        self.loss[wallet.asset] += amount
        self.loss_by_path[path] += usd
        self.loss_by_wallet[wallet.id] = self.loss_by_wallet.get(wallet.id, 0.0) + usd
        return usd

    def _event(self, name: str, peril: str, t: float) -> LossEvent:
        """Return the loss event ``name``, begun at ``t`` if it is new."""
        event = self.events.get(name)
        if event is None:
            event = self.events[name] = LossEvent(name, peril, t)
        return event

    def _count_loss(self, c: Campaign, wallet: WalletModel, amount: float, path: str, t: float) -> None:
        usd = self._book(wallet, amount * (1.0 - self.model.recovered_fraction), path, t)
        c.loss_usd += usd
        self._event(c.label, c.label.rpartition("#")[0], t).add(usd, path, wallet.id)
        self.first_theft = min(self.first_theft, t)
        self.trace("{} {} leave {} for the attacker ({})", amount, wallet.asset, wallet.id, path)

    # ------------------------------------------------------------------ lost keys
    def _lock(self, lock: Lock, _: simpy.Event) -> None:
        """Too few of the wallet's keys are left to sign: its outflows wait until they are back, or for good.

        A wallet the attacker has taken over is the attacker's: the exchange's keys no longer matter to it.
        """
        wid, now = lock.wallet, self.env.now
        if wid in self.owners:
            return
        self.sync()
        self.locked += 1
        if lock.end < math.inf:
            self.trace("{} is locked: too few of its keys are available, until day {:.1f}", wid, lock.end)
            self.treasury.lock(wid, now, lock.end)
        else:
            self.trace("{} is locked out: too many of its keys are lost for good", wid)
            self.locked_out.add(wid)
            amount = self.treasury.lock_out(wid, now)
            if amount > 0:
                self._count_lock_out(self.model.wallets[wid], amount, now)
        self.wake_clock()

    def _count_lock_out(self, wallet: WalletModel, amount: float, t: float) -> None:
        usd = self._book(wallet, amount, "lock_out", t)
        self._event(f"lock-out:{wallet.account}", "lost keys", t).add(usd, "lock_out", wallet.id)
        self.trace("{} {} in {} are lost with its keys", amount, wallet.asset, wallet.id)

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

    # ------------------------------------------------------------------ alarms and response
    def stop(self, c: Campaign, source: str, wallets: set[str], hold: bool = False, org: str | None = None,
             node: str | None = None) -> None:
        """Raise the alarm ``source`` on campaign ``c`` (about ``node``), raised by ``org`` (default: the exchange).

        The raising organisation responds at once (see :mod:`~custodysim.simulation.response`); the first
        alarm on a campaign is passed on to the others. ``hold`` freezes ``wallets`` at once (a refused
        signature or a blocked transaction halts the wallet on the spot).
        """
        now = self.env.now
        # A stop is an alarm before the campaign stole anything, or a block or veto of a transfer;
        # an alarm after a theft only limits what follows, and is not counted as stopping the attacker.
        if (hold or c.loss_usd == 0) and source not in c.stops:
            c.stops.append(source)
        raiser = org if org is not None else self.model.exchange
        if node is None:
            self.trace("alarm: {} on {} (raised by {})", source, c.label, raiser)
        else:
            self.trace("alarm: {} on {} at {} (raised by {})", source, c.label, node, raiser)
        self.first_alarm = min(self.first_alarm, now)
        round_, told = notices(self.model, self.rnd, c, raiser, now)
        self.spend(1 + len(told))
        for at, other in told:
            if at < self.model.horizon:
                self.env.timeout(at - now).callbacks.append(partial(self._told, c, other, round_))
        self._learn(c, raiser, True, wallets, hold)

    def _told(self, c: Campaign, org: str, round_: int, _: simpy.Event) -> None:
        self.trace("{} is told of {}", org, c.label)
        self._learn(c, org, False, set(), False, round_)

    def _learn(self, c: Campaign, org: str, own: bool, wallets: set[str], hold: bool, round_: int = 0) -> None:
        """Organisation ``org`` learns of campaign ``c`` now: it revokes what it finds; the exchange freezes."""
        if learn(self.model, self.rnd, c, org, self.env.now, own, round_):
            if self.tell:
                held = [n for n in c.held if c.org_of.get(n) == org] or ["none held yet"]
                self.trace("{} revokes {}'s footholds in its systems ({}) in {:.1f} h", org, c.label,
                           ", ".join(held), (c.closed[org] - self.env.now) / HOUR)
        elif not own and org not in c.closed:
            self.trace("{} finds nothing of {} in its systems", org, c.label)
        if org in self.model.exchange_orgs:
            self._exchange_responds(c, org, wallets, hold)

    def _exchange_responds(self, c: Campaign, org: str, wallets: set[str], hold: bool) -> None:
        """The exchange responds to campaign ``c``: freeze, revoke, rotate the keys it may have copied.

        After the freeze delay, the response freezes every wallet the campaign can act on then (not only
        those it could act on at the alarm); the freeze lasts until the revocation and key rotation are done.
        An alarm while a response is under way does not restart it (:meth:`_answer_later_alarm`), but if it
        finds footholds the response had missed, the response lasts until those are revoked too; an alarm
        after the response is over starts a new one.
        """
        now = self.env.now
        if c.response_at <= now < c.response_end:
            if org in c.closed:
                c.response_end = max(c.response_end, c.closed[org], c.rotated_at)
            self._answer_later_alarm(c, wallets, hold)
            return
        m, rnd, k = self.model, self.rnd, c.rounds
        c.rounds += 1
        c.response_at = now
        freeze_at = now + m.freeze_delay_hours.sample(c.u(rnd, "response:freeze", k)) * HOUR
        revoke_at = now + revoke_delay(m, rnd, c, m.exchange, k)
        c.rotated_at = min(c.rotated_at, revoke_at + m.key_rotation_hours.sample(c.u(rnd, "response:rotate", k)) * HOUR)
        end = c.response_end = max(revoke_at, freeze_at, c.rotated_at)
        c.freezes.append(freeze_at)
        self.trace("response: revoke in {:.1f} h; what the campaign can reach then is frozen in {:.1f} h",
                   (revoke_at - now) / HOUR, (freeze_at - now) / HOUR)
        if hold and wallets:
            self.sync()
            self._freeze(wallets, now, end)
            self.wake_clock()
        if freeze_at < m.horizon:
            self.env.timeout(freeze_at - now).callbacks.append(
                lambda _: self._freeze_exposed(wallets | self._reach(c, self.env.now), self.env.now, end))

    def _answer_later_alarm(self, c: Campaign, wallets: set[str], hold: bool) -> None:
        """An alarm while the campaign's response is under way freezes what the first one could not.

        The response revokes on its own schedule; but a wallet the campaign reached after the first alarm
        (or one it is now seen draining) is frozen after a freeze delay of its own, or at once for a
        veto or a block, until the response ends. Its freeze also cancels what the campaign has queued.
        """
        now = self.env.now
        end = c.response_end
        c.later_alarms += 1
        freeze_at = now + self.model.freeze_delay_hours.sample(
            c.u(self.rnd, "response:freeze-later", c.later_alarms)) * HOUR
        c.freezes.append(freeze_at)
        targets = wallets | self._reach(c, now)
        if not targets:
            return  # nothing to freeze
        self.sync()
        held = hold and self._freeze(wallets, now, end)
        exposed = [wid for wid in targets if not self._frozen_over(wid, now, end)]
        if exposed:
            self._freeze(exposed, freeze_at, end)
        if held or exposed:
            self.wake_clock()

    def _freeze_exposed(self, targets: set[str], start: float, end: float) -> None:
        """Freeze, from ``start`` to ``end``, those of ``targets`` not frozen over that time yet."""
        if not targets or start >= end:
            return  # with nothing to freeze, operations are not touched (they stay the quiet ones)
        self.sync()
        exposed = [wid for wid in targets if not self._frozen_over(wid, start, end)]
        if exposed and self._freeze(exposed, start, end):
            self.wake_clock()

    def _frozen_over(self, wid: str, start: float, end: float) -> bool:
        """Whether a freeze already covers [start, end) (a taken-over wallet: whether it is abandoned by then)."""
        if wid in self.owners:
            return self.treasury.wallets[wid].abandoned <= start
        return self.treasury.frozen_over(wid, start, end)

    def _freeze(self, wallets: Iterable[str], start: float, end: float) -> bool:
        """Freeze each of ``wallets`` over [start, end); return whether any freeze was new.

        A taken-over wallet cannot be frozen: the exchange stops sending to it instead.
        """
        frozen: list[str] = []
        abandoned: list[str] = []
        for wid in wallets:
            if wid in self.owners:
                if self.treasury.abandon(wid, start):
                    abandoned.append(wid)
            elif self.treasury.freeze(wid, start, end):
                frozen.append(wid)
        if self.tell:  # in a fixed order: ``wallets`` may be a set
            if frozen:
                self.trace("{} frozen until day {:.1f}", ", ".join(sorted(frozen)), end)
            if abandoned:
                self.trace("the exchange stops sending to {}", ", ".join(sorted(abandoned)))
        return bool(frozen or abandoned)

    def _watch(self) -> None:
        """Have the operations clock reckon again whom to watch: start it, or wake it if it sleeps."""
        if self._clock is None:
            self._clock = self.env.process(self._operations_clock())
        else:
            self.wake_clock()

    def wake_clock(self) -> None:
        """Tell a sleeping operations clock that the attacker changed the ledger: its next wake-up may move."""
        if self._clock is not None and self.env.active_process is not self._clock:
            self._clock.interrupt()

    def _reach(self, c: Campaign, t: float) -> set[str]:
        """Return the wallets campaign ``c`` can act on at ``t``."""
        out: set[str] = set(c.taken_over)
        for wid in c.near - out:
            w = self.model.wallets[wid]
            if c.usable_signers(w, t) or any(c.holds(n, t) for n in w.contact_nodes):
                out.add(wid)
        return out


def footholds(c: Campaign) -> list[str]:
    """Return the campaign's footholds as chains ``a@3.0d > b@9.5d``, each node after the one it came from.

    A node reached from the node taken just before it continues that chain; any other starts a chain of
    its own (after the name of the node it came from, if any), so separate footholds are never joined.
    """
    chains: list[list[str]] = []
    last = None
    for node, t in c.held.items():
        step, source = f"{node}@{t:.1f}d", c.came_from.get(node, "")
        if chains and source and source == last:
            chains[-1].append(step)
        else:
            chains.append([source, step] if source else [step])
        last = node
    return [" > ".join(chain) for chain in chains]


def run_campaign(env: simpy.Environment, world: World, c: Campaign) -> Generator[Any, Any, None]:
    """SimPy process: take the planned nodes in order; a response may redraw the plan while it waits."""
    if c.insider is not None:
        yield env.timeout(c.start - env.now)
        world.insider_acts(c)
        return
    plan, i = c.plan, 0
    while True:
        if c.plan is not plan:  # redrawn by a response: the steps taken are the same, the rest may differ
            plan, i = c.plan, 0
        while i < len(plan) and plan[i].node in c.held:
            i += 1
        if i == len(plan):
            return
        step = plan[i]
        if step.time > env.now:
            yield env.timeout(step.time - env.now)
            if c.plan is not plan and step not in c.plan:
                continue  # the plan was redrawn meanwhile: this step no longer happens
        world.compromise(c, step)


def simulate_trial(model: CompiledScenario, seed: int, trial: int, quiet: TrialResult | None = None,
                   tell: bool = False, campaigns: list[Campaign] | None = None) -> TrialResult:
    """Simulate one trial of ``model``.

    Given the variant's ``quiet`` result (operations with no attacker), trials whose campaigns never
    touch a wallet skip the SimPy world: see :func:`~custodysim.simulation.harmless.replay_harmless`.
    ``campaigns`` are the trial's campaigns if already sampled (fresh, by a variant with the same attack
    surface).
    """
    rnd = TrialRandom(seed, trial)
    if campaigns is None:
        campaigns = sample_campaigns(model, rnd)
    locked = locks(model, rnd)
    if quiet is not None and not tell and not locked:
        if not campaigns:
            return quiet
        harmless = replay_harmless(model, rnd, campaigns)
        if harmless is not None:
            return harmless.result(quiet)
    return World(model, rnd, campaigns, tell=tell, locks=locked).run()
