"""The exchange's operations as a ledger advanced lazily between security-relevant events.

Customer flows are aggregate rates, so between two events a hot wallet's level (balance minus waiting
withdrawals) moves on a straight line and every figure (when it crosses its low-water mark, how long
customers wait) has a closed form. The ledger therefore visits only a few instants per top-up cycle and
none per customer, and a trial's cost grows with the attacker's actions, not with trading volume.

Conventions (see docs/model.md): a top-up of (cap - level) is requested when the level reaches
low-water, one in flight per wallet, landing after the source's signing time plus any time-lock; a short
source sends what it has; what a wallet holds above its cap is swept to ``sweep_to`` (default: the top-up
source) at once; a frozen wallet pays nothing out, so its customers wait and its legitimate transfers are
held until the freeze ends (a lock, for want of keys, holds them alike); a transfer out of the exchange is
gone when sent (only transfers between the exchange's wallets land later).

Work is spent only where something can happen: requests to an empty wallet that would send nothing are
skipped in one step (:meth:`Treasury._skip_dry`), and :class:`QuietTimeline` keeps the quiet year so that
a trial's ledger starts at the attacker's first contact. A call to :meth:`Treasury.advance` made while
the ledger is advancing (an interception that raises the alarm and syncs) does nothing: events are
always handled one at a time, in time order.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, cast

from custodysim.scenario.schema import TOPUP_RETRY_DAYS
from custodysim.simulation.model import CompiledScenario, WalletModel

HOUR = 1.0 / 24.0
MAX_PIECES = 10**9  # a count of limit-sized transfers, bounded for absurdly small limits
_MARGIN = 1e-9  # what a wallet must keep, relative to its balance, to be sure it pays every transfer in full
_DUST = 1e-9  # an excess over a cap smaller than this share of it is float rounding, not funds to sweep


class _Event(Enum):
    """The kinds of operations event."""

    NONE = 0
    EDGE = 1  # a freeze begins or ends: flows change their dynamics
    REQUEST = 2  # a hot wallet asks for a top-up
    TOPUP_LANDS = 3
    SCHEDULED = 4  # a recurring transfer is due
    LANDING = 5  # a transfer lands in its destination wallet


# Module-level names for the enum members: an enum attribute lookup costs several times a global's, and
# the ledger looks these up at every event.
_EDGE, _REQUEST, _TOPUP_LANDS = _Event.EDGE, _Event.REQUEST, _Event.TOPUP_LANDS
_SCHEDULED, _LANDING = _Event.SCHEDULED, _Event.LANDING
_NO_EVENT: tuple[float, _Event, Any] = (math.inf, _Event.NONE, None)


class Intercept(Enum):
    """What a tampering attacker's interception did to a legitimate transfer."""

    PASS = "pass"  # untouched: delivered as requested
    HIJACKED = "hijacked"  # rewritten: the attacker took funds instead; nothing reaches the destination
    CANCELLED = "cancelled"  # a signer or a policy stopped it; it is re-requested when the wallet is released


@dataclass
class LegitTransfer:
    """A legitimate transfer at the moment it is requested."""

    time: float
    source: str
    dest: str | None  # None: leaves the exchange
    amount: float
    kind: str  # "topup" or "scheduled"


Listener = Callable[[LegitTransfer], Intercept]
_PASS, _HIJACKED, _CANCELLED = Intercept.PASS, Intercept.HIJACKED, Intercept.CANCELLED


@dataclass(slots=True)
class _Landing:
    time: float
    dest: str | None
    amount: float
    asset: str


@dataclass(slots=True)
class _WalletState:
    spec: WalletModel
    balance: float
    queue: float = 0.0  # customer withdrawals waiting (flowing wallets only)
    topup: _Landing | None = None  # this wallet's top-up in flight
    freezes: list[tuple[float, float]] = field(default_factory=list)  # everything that holds its outflows
    credited: float = 0.0  # everything that flowed in: deposits, top-ups, transfers, sweeps
    retry_at: float = 0.0  # after a top-up request that sent nothing, when to ask again
    frozen_until: float = -math.inf  # when the last freeze ends: from then on the wallet is never frozen
    owned: bool = False  # taken over: what lands in it is the attacker's
    abandoned: float = math.inf  # from then on nothing is sent to it, and its customers deposit elsewhere
    # The freezes that hold an attacker too: the same as ``freezes`` (None) until a lock, which holds the
    # exchange only, is added; a trial without lost keys never copies a second list.
    held: list[tuple[float, float]] | None = None
    locked_out: bool = False  # too few keys left, for good: what lands in it is lost

    def copy(self) -> _WalletState:
        return _WalletState(self.spec, self.balance, self.queue, self.topup, list(self.freezes), self.credited,
                            self.retry_at, self.frozen_until, self.owned, self.abandoned,
                            None if self.held is None else list(self.held),
                            self.locked_out)

    def freeze(self, start: float, end: float, attacker: bool = True) -> None:
        """Hold the wallet's outflows over [start, end): the exchange's, and ``attacker``'s too (not a lock)."""
        if not attacker and self.held is None:
            self.held = list(self.freezes)  # from now on the two lists differ
        self.freezes.append((start, end))
        self.frozen_until = max(self.frozen_until, end)
        if attacker and self.held is not None:
            self.held.append((start, end))

    def holding(self) -> list[tuple[float, float]]:
        """Return the freezes that hold an attacker (every freeze but the locks)."""
        return self.freezes if self.held is None else self.held

    def frozen_at(self, t: float, attacker: bool = False) -> bool:
        """Whether the wallet's outflows are held at ``t`` (``attacker``: an attacker's, which a lock does not hold)."""
        spans = self.holding() if attacker else self.freezes
        return t < self.frozen_until and any(a <= t < b for a, b in spans)

    def released_at(self, t: float, attacker: bool = False) -> float:
        """Return the first time >= t at which the wallet's outflows are not held (``attacker``: as for frozen_at)."""
        spans = self.holding() if attacker else self.freezes
        moved = t < self.frozen_until
        while moved:
            moved = False
            for a, b in spans:
                if a <= t < b:
                    t, moved = b, True
        return t


@dataclass(slots=True)
class OperationsTally:
    """Operational figures of a trial (USD-weighted where assets mix)."""

    withdrawals_usd: float = 0.0
    delayed_withdrawals_usd: float = 0.0
    wait_usd_days: float = 0.0
    transfers_signed: int = 0
    transfers_delayed: int = 0
    transfer_delay_days: float = 0.0
    ceremonies: int = 0  # signing sessions that sent a transfer (its limit-sized pieces signed together)
    transfers_blocked: int = 0  # legitimate transfers a signer's veto or a policy stopped (re-requested later)


class Treasury:
    """Balances and operations of one trial.

    Args:
        model: the compiled scenario.
    """

    def __init__(self, model: CompiledScenario) -> None:
        self.model = model
        self.now = 0.0
        self.wallets = {w.id: _WalletState(w, w.balance) for w in model.wallets.values()}
        self._flowing = [s for s in self.wallets.values() if s.spec.flows is not None]
        for st in self._flowing:
            self._sweep(st)  # a wallet that starts above its cap holds only its cap
        self._next_scheduled = [t.first_day for t in model.transfers]
        self._landings: list[_Landing] = []
        self.listeners: dict[str, Listener] = {}
        self.on_lost: Callable[[str, float], None] | None = None
        """Told (wallet, amount) when funds land in a taken-over or locked-out wallet, at :attr:`now`."""
        self._advancing = False
        self.tally = OperationsTally()
        # conservation ledger, per asset
        self.deposited = dict.fromkeys(model.assets, 0.0)
        self.withdrawn = dict.fromkeys(model.assets, 0.0)
        self.sent_out = dict.fromkeys(model.assets, 0.0)
        self.stolen = dict.fromkeys(model.assets, 0.0)
        self.locked = dict.fromkeys(model.assets, 0.0)  # held by wallets nobody can sign for any more
        self.held_by_attacker = dict.fromkeys(model.assets, 0.0)

    def copy(self) -> Treasury:
        """Return an independent copy of this ledger's state (listeners are not copied)."""
        twin = Treasury.__new__(Treasury)
        twin.model = self.model
        twin.now = self.now
        twin.wallets = {wid: st.copy() for wid, st in self.wallets.items()}
        twin._flowing = [twin.wallets[st.spec.id] for st in self._flowing]
        twin._next_scheduled = list(self._next_scheduled)
        twin._landings = list(self._landings)  # landings are never changed, only added and removed
        twin.listeners = {}
        twin.on_lost = None
        twin._advancing = False
        tally = self.tally
        twin.tally = OperationsTally(tally.withdrawals_usd, tally.delayed_withdrawals_usd, tally.wait_usd_days,
                                     tally.transfers_signed, tally.transfers_delayed, tally.transfer_delay_days,
                                     tally.ceremonies, tally.transfers_blocked)
        twin.deposited, twin.withdrawn = dict(self.deposited), dict(self.withdrawn)
        twin.sent_out, twin.stolen, twin.locked = dict(self.sent_out), dict(self.stolen), dict(self.locked)
        twin.held_by_attacker = dict(self.held_by_attacker)
        return twin

    # ------------------------------------------------------------------ queries
    def balance(self, wallet: str) -> float:
        """Return the wallet's balance at :attr:`now`."""
        return self.wallets[wallet].balance

    def frozen(self, wallet: str, t: float) -> bool:
        """Whether a freeze holds an attacker's outflows from the wallet at ``t`` (a lock does not)."""
        return self.wallets[wallet].frozen_at(t, attacker=True)

    def released_at(self, wallet: str, t: float) -> float:
        """Return the first time >= ``t`` at which no freeze holds an attacker's outflows from the wallet."""
        return self.wallets[wallet].released_at(t, attacker=True)

    def last_freeze_edge(self) -> float:
        """Return when the last freeze known so far ends (-infinity if there is none)."""
        return max(st.frozen_until for st in self.wallets.values())

    def in_flight(self, asset: str) -> float:
        """Return the funds of ``asset`` signed and on their way between wallets or out."""
        total = sum(x.amount for x in self._landings if x.asset == asset)
        total += sum(s.topup.amount for s in self.wallets.values()
                     if s.topup is not None and s.spec.asset == asset)
        return total

    def next_landing(self, wallet: str) -> float:
        """Return the next time a transfer is due to land in ``wallet`` (infinity if none is on its way).

        Continuous customer deposits are not landings; they accrue between events.
        """
        st = self.wallets[wallet]
        times = [x.time for x in self._landings if x.dest == wallet]
        if st.topup is not None:
            times.append(st.topup.time)
        return min(times, default=math.inf)

    def next_transfer_time(self, sources: Collection[str]) -> float:
        """Return a time no later than the next legitimate transfer out of any of ``sources``.

        The bound holds while nobody but operations acts on the ledger: a scheduled transfer is due when
        it is due (a freeze only postpones it), and a top-up request comes no earlier than its wallet's
        level reaches low-water on its current course, which only a landing (of its own top-up) or a
        freeze's edge can change. A source that stays empty until then sends nothing, unless an event
        brings it funds first: the next such event is the bound.
        """
        bound = math.inf
        fallback = False
        for i, tr in enumerate(self.model.transfers):
            if tr.source not in sources:
                continue
            due = self._transfer_due(i)
            if self._stays_empty(self.wallets[tr.source], due):
                fallback = True  # it sends nothing unless an event brings it funds first
            else:
                bound = min(bound, due)
        for st in self._flowing:
            top = st.spec.topup
            if top is None or top.source not in sources:
                continue
            when = self._flowing_event(st)[0]  # its request, or what may move it (a landing, an edge)
            if self._stays_empty(self.wallets[top.source], when):
                fallback = True
            else:
                bound = min(bound, when)
        return min(bound, self._next_live_time()) if fallback else bound

    # ------------------------------------------------------------------ attacker-side mutations
    def take(self, wallet: str, amount: float) -> float:
        """Move up to ``amount`` out of ``wallet`` into the attacker's hands (pending broadcast)."""
        st = self.wallets[wallet]
        amount = min(amount, st.balance)
        st.balance -= amount
        self.held_by_attacker[st.spec.asset] += amount
        return amount

    def settle_theft(self, wallet: str, amount: float, stolen: bool) -> None:
        """Finish a theft transfer of ``amount``: lost for good, or cancelled and returned to ``wallet``."""
        asset = self.wallets[wallet].spec.asset
        self.held_by_attacker[asset] -= amount
        if stolen:
            self.stolen[asset] += amount
        else:
            self.wallets[wallet].balance += amount

    def take_over(self, wallet: str, t: float) -> float:
        """The wallet becomes the attacker's at ``t``; return its balance, which is stolen with it.

        The exchange never signs out of it again (its outflows are frozen for good: customers wait), and
        whatever lands in it from now on is the attacker's too, until the exchange stops sending
        (:meth:`abandon`).
        """
        st = self.wallets[wallet]
        amount = st.balance
        st.balance = 0.0
        st.owned = True
        self.stolen[st.spec.asset] += amount
        st.freeze(t, math.inf)
        return amount

    def lock(self, wallet: str, start: float, end: float) -> None:
        """The exchange has too few keys to sign out of the wallet over [start, end): its outflows wait.

        A lock holds the exchange only: an attacker signing with keys of its own is not held, and a
        time-locked theft transaction is not cancelled by it.
        """
        self.wallets[wallet].freeze(start, end, attacker=False)

    def lock_out(self, wallet: str, t: float) -> float:
        """The exchange can never sign out of the wallet again; return its balance, lost with it at ``t``.

        Nothing is sent to it from ``t``, and what lands in it afterwards (a transfer already on its way)
        is lost too.
        """
        st = self.wallets[wallet]
        amount = st.balance
        st.balance = 0.0
        st.locked_out = True
        self.locked[st.spec.asset] += amount
        st.abandoned = min(st.abandoned, t)
        st.freeze(t, math.inf, attacker=False)
        return amount

    def abandon(self, wallet: str, t: float) -> bool:
        """From ``t`` the exchange sends nothing to the taken-over wallet; its customers deposit elsewhere.

        Returns False if it was abandoned by then already.
        """
        st = self.wallets[wallet]
        if st.abandoned <= t:
            return False
        st.abandoned = t
        st.freeze(t, math.inf)  # an edge at t: its flows change there
        return True

    def freeze_began(self, wallet: str, start: float, end: float) -> bool:
        """Whether a freeze of the wallet (not a lock) was in force at some time in [start, end]."""
        return any(a <= end and b > start for a, b in self.wallets[wallet].holding())

    def frozen_over(self, wallet: str, start: float, end: float) -> bool:
        """Whether one freeze of the wallet (not a lock) already covers all of [start, end)."""
        st = self.wallets[wallet]
        return end <= st.frozen_until and any(a <= start and b >= end for a, b in st.holding())

    def freeze(self, wallet: str, start: float, end: float) -> bool:
        """Freeze the wallet's outflows over [start, end); return False if a freeze already covers it."""
        if end <= start or self.frozen_over(wallet, start, end):
            return False
        self.wallets[wallet].freeze(start, end)
        return True

    # ------------------------------------------------------------------ time
    def advance(self, t: float) -> None:
        """Run operations up to time ``t`` (inclusive of events at ``t``).

        A call made while the ledger is already advancing (an interception that raises the alarm and
        syncs) does nothing: the running call goes on from the event in hand, in time order.
        """
        if self._advancing:
            return
        self._advancing = True
        try:
            self._advance(t)
        finally:
            self._advancing = False

    def finish(self, t: float) -> None:
        """Run operations up to ``t``, once nobody but operations will act on the ledger any more.

        The same as :meth:`advance`, in fewer steps: the recurring transfers out of a wallet that surely
        pays them all in full are made at once (:meth:`_settle_scheduled`), and the event loop runs only
        what is left.
        """
        if not self._advancing:
            self._settle_scheduled(t)
        self.advance(t)

    def _settle_scheduled(self, t: float) -> None:
        """Make the recurring transfers due up to ``t`` out of every wallet that surely pays them all in full.

        A transfer out of a wallet without customer flows, unwatched (no listener) and not frozen from now
        on is made when due, and sends its amount while the wallet holds it; nothing else about it depends
        on the other events. Where the wallet holds enough for every such transfer due up to ``t`` and
        for the most its hot wallets can ask of it in top-ups (:meth:`_most_topped_up`), its transfers are
        made here: the same amounts, tallies and landings as in the event loop, only added up at once and
        not interleaved with the flows (so sums may differ from the event loop's in their last digits).
        What the wallet holds afterwards still covers every top-up, which therefore sends what it would have.
        """
        now = self.now
        transfers = self.model.transfers
        series = [_occurrences(due, tr.every_days, t) for due, tr in zip(self._next_scheduled, transfers, strict=True)]
        asked: dict[str, float] = {}
        for tr, occurring in zip(transfers, series, strict=True):
            more = math.inf if occurring is None else tr.amount * occurring[0]  # inf: never settled at once
            asked[tr.source] = asked.get(tr.source, 0.0) + more
        owned = {wid for wid, st in self.wallets.items() if st.owned or st.locked_out}
        for source, total in asked.items():
            st = self.wallets[source]
            if total <= 0 or st.spec.flows is not None or source in self.listeners \
                    or st.spec.legit_transfer_limit <= 0 or st.frozen_until > now \
                    or any(tr.source == source and tr.dest in owned for tr in transfers):
                continue
            margin = _MARGIN * max(st.balance, 1.0)
            if st.balance - total <= margin:
                continue  # it might run short: the event loop decides, in time order
            topped = self._most_topped_up(source, t)
            if topped is None or st.balance - total - topped <= margin:
                continue
            for i, (tr, occurring) in enumerate(zip(transfers, series, strict=True)):
                if tr.source == source and occurring is not None:
                    self._make_scheduled(i, *occurring)

    def _most_topped_up(self, source: str, t: float) -> float | None:
        """Return at least what the hot wallets topped up from ``source`` ask of it from now to ``t``.

        A top-up asks for (cap - level) and the level falls at most at the net withdrawal rate, so the
        first asks at most (cap - level now) plus the fall until it, and each later one (the previous one
        having filled the wallet to its cap) the fall since the one before. None where a freeze still to
        come makes the bound unsafe to rely on.
        """
        most = 0.0
        for st in self._flowing:
            top = st.spec.topup
            if top is None or top.source != source:
                continue
            if st.frozen_until > self.now:
                return None
            withdrawals, deposits, _, cap = st.spec.flow_rates
            most += max(0.0, cap - (st.balance - st.queue)) + max(0.0, withdrawals - deposits) * (t - self.now)
        return most

    def _make_scheduled(self, i: int, count: int, next_due: float) -> None:
        """Make the next ``count`` occurrences of recurring transfer ``i``, the next then due at ``next_due``.

        Each sends the transfer's full amount (see :meth:`_settle_scheduled`): the tallies and the wallets
        take them all at once; a transfer between the exchange's wallets still lands, each when due.
        """
        tr = self.model.transfers[i]
        spec = self.wallets[tr.source].spec
        pieces = _pieces(tr.amount, spec.legit_transfer_limit)
        self._tally_signed(pieces, spec.legit_delay_days, count)
        self.wallets[tr.source].balance -= tr.amount * count
        if tr.dest is None:
            self.sent_out[spec.asset] += tr.amount * count
        else:
            after = tr.signing_hours * HOUR + spec.legit_delay_days
            due = self._next_scheduled[i]
            for _ in range(count):
                self._landings.append(_Landing(due + after, tr.dest, tr.amount, spec.asset))
                due += tr.every_days
        self._next_scheduled[i] = next_due

    def _advance(self, t: float) -> None:
        next_event, flow = self._next_event, self._flow
        while True:
            te, kind, arg = next_event()
            if te > t:
                break
            if (kind is _SCHEDULED or kind is _REQUEST) and self._from_empty(kind, arg) and self._skip_dry(t):
                continue  # requests to an empty wallet were skipped: look again
            flow(te)
            if kind is _REQUEST:
                self._request_topup(arg)
            elif kind is _TOPUP_LANDS:
                self._topup_lands(arg)
            elif kind is _SCHEDULED:
                self._scheduled(arg)
            elif kind is _LANDING:
                self._land(arg)
        self._flow(t)

    def _next_event(self) -> tuple[float, _Event, Any]:
        """Return the next event: its time, its kind and what it concerns (the first listed wins a tie)."""
        best: tuple[float, _Event, Any] = _NO_EVENT
        for st in self._flowing:
            cand = self._flowing_event(st)
            if cand[0] < best[0]:
                best = cand
        dues = self._next_scheduled
        for i in range(len(dues)):
            due = dues[i]
            if due < best[0]:  # a freeze only postpones it (see _transfer_due)
                due = self.wallets[self.model.transfers[i].source].released_at(due)
                if due < best[0]:
                    best = (due, _SCHEDULED, i)
        for landing in self._landings:
            if landing.time < best[0]:
                best = (landing.time, _LANDING, landing)
        return best

    def _flowing_event(self, st: _WalletState) -> tuple[float, _Event, Any]:
        best: tuple[float, _Event, Any] = _NO_EVENT
        now = self.now
        frozen = False
        if st.frozen_until > now:  # else every edge is past
            frozen = st.frozen_at(now)
            for a, b in st.freezes:  # dynamics change at a freeze's edges
                for edge in (a, b):
                    if now < edge < best[0]:
                        best = (edge, _EDGE, None)
        top = st.spec.topup
        if top is None or st.abandoned <= now:
            return best  # no top-up, or the exchange sends it nothing any more
        if st.topup is not None:
            when = st.topup.time
            return (when, _TOPUP_LANDS, st) if when < best[0] else best
        level = st.balance - st.queue
        low = top.low_water
        if level <= low + 1e-12:
            when = now
        else:
            withdrawals, deposits, _, _ = st.spec.flow_rates
            drain = withdrawals - (0.0 if frozen else deposits)
            if drain <= 0 or frozen:
                return best
            when = now + (level - low) / drain
        if st.retry_at > when:
            when = st.retry_at
        source = self.wallets[top.source]
        when = source.released_at(when)
        return (when, _REQUEST, st) if when < best[0] else best

    def _transfer_due(self, i: int) -> float:
        """Return when scheduled transfer ``i`` is next made: its due time, postponed past any freeze."""
        src = self.wallets[self.model.transfers[i].source]
        due = self._next_scheduled[i]
        return src.released_at(due)

    def _from_empty(self, kind: _Event, arg: Any) -> bool:
        """Whether the event asks an empty wallet for funds (a transfer or a top-up request out of it)."""
        if kind is _SCHEDULED:
            return self.wallets[self.model.transfers[arg].source].balance <= 0
        if kind is _REQUEST:
            top = arg.spec.topup
            return top is not None and self.wallets[top.source].balance <= 0
        return False

    def _skip_dry(self, limit: float) -> bool:
        """Skip the requests to empty wallets that would send nothing before the next other event.

        A scheduled transfer or a top-up request out of an empty wallet sends nothing and is simply asked
        again (a period or :data:`TOPUP_RETRY_DAYS` after it was made, which a freeze of the wallet postpones).
        The wallet stays empty until a transfer lands in it or a wallet sweeps into it, so until the next
        event of another kind, or until ``limit`` (beyond which the attacker may act), every such request
        is a no-op: this moves each one to the first time it would be asked after that, on the schedule it
        would have kept. Returns whether anything moved.
        """
        live = self._next_live_time()
        end, inclusive = (limit, True) if limit < live else (live, False)
        moved = False
        for st in self._flowing:
            top = st.spec.topup
            withdrawals, deposits, _, _ = st.spec.flow_rates
            if top is None or st.topup is not None or deposits > withdrawals:
                continue  # nothing to ask for, or a level that may rise back above low-water on its own
            source = self.wallets[top.source]
            when, kind, _ = self._flowing_event(st)
            if kind is _REQUEST and (when < end or (inclusive and when == end)) \
                    and self._stays_empty(source, end):
                st.retry_at = _next_ask(source, when, TOPUP_RETRY_DAYS, end, inclusive)
                moved = True
        for i, tr in enumerate(self.model.transfers):
            source = self.wallets[tr.source]
            due = self._next_scheduled[i]
            if self._stays_empty(source, end):
                later = _next_ask(source, due, tr.every_days, end, inclusive)
                moved = moved or later != due
                self._next_scheduled[i] = later
        return moved

    def _next_live_time(self) -> float:
        """Return the time of the next event that is not a request out of an empty wallet.

        A hot wallet whose level rises to its cap starts sweeping into its ``sweep_to`` wallet then: if
        that wallet is empty, the time counts as an event (requests out of it may send again).
        """
        end = min((x.time for x in self._landings), default=math.inf)
        for i, tr in enumerate(self.model.transfers):
            if self.wallets[tr.source].balance > 0:
                end = min(end, self._transfer_due(i))
        for st in self._flowing:
            if st.topup is not None:
                end = min(end, st.topup.time)
            if st.frozen_until > self.now:
                end = min([end, *(edge for a, b in st.freezes for edge in (a, b) if edge > self.now)])
            if st.topup is None and st.spec.topup is not None and self.wallets[st.spec.topup.source].balance > 0:
                when, kind, _ = self._flowing_event(st)
                if kind is _REQUEST:
                    end = min(end, when)
            if st.spec.sweep_to is not None and self.wallets[st.spec.sweep_to].balance <= 0:
                withdrawals, deposits, _, cap = st.spec.flow_rates
                level = st.balance - st.queue
                if deposits > withdrawals and level < cap:
                    end = min(end, self.now + (cap - level) / (deposits - withdrawals))
        return end

    def _stays_empty(self, source: _WalletState, end: float) -> bool:
        """Whether ``source`` is empty now and surely stays so until ``end`` if no event happens."""
        if source.balance > 0 or source.spec.flows is not None:
            return False
        for other in self._flowing:
            if other.spec.sweep_to != source.spec.id:
                continue
            withdrawals, deposits, _, cap = other.spec.flow_rates
            level = other.balance - other.queue
            if _above_cap(max(level, level + (deposits - withdrawals) * (end - self.now)), cap):
                return False  # its level is or will be above its cap: a sweep may fund the source first
        return True

    def _flow(self, t: float) -> None:
        now = self.now
        dt = t - now
        if dt <= 0:
            return
        for st in self._flowing:
            self._flow_wallet(st, now, dt)
        self.now = t

    def _flow_wallet(self, st: _WalletState, t0: float, dt: float) -> None:
        w, d, price, cap = st.spec.flow_rates
        asset = st.spec.asset
        tally = self.tally
        inflow = 0.0 if st.abandoned <= t0 else d * dt  # customers of an abandoned wallet deposit elsewhere
        self.deposited[asset] += inflow
        st.credited += inflow
        requested_usd = w * dt * price
        tally.withdrawals_usd += requested_usd
        lock = st.spec.legit_delay_days
        if lock > 0:
            # a time-lock on the wallet holds every customer withdrawal too, on top of any wait for funds;
            # the funds are committed to the customer when requested, so the balance moves as without it
            tally.wait_usd_days += requested_usd * lock
            tally.delayed_withdrawals_usd += requested_usd
        if st.frozen_at(t0):
            # nothing is paid out: deposits accrue (to the attacker, in a taken-over wallet), every withdrawal waits
            tally.wait_usd_days += (st.queue * dt + w * dt * dt / 2) * price
            if lock <= 0:
                tally.delayed_withdrawals_usd += requested_usd
            st.queue += w * dt
            if st.owned or st.locked_out:
                self._lost_inflow(st, inflow, counted=True)
            else:
                st.balance += inflow
            return
        queue = st.queue
        x0 = st.balance - queue
        x1 = x0 - (w - d) * dt
        if x0 < 0 or x1 < 0:
            # time spent with customers waiting (level below zero) and the area under the queue
            neg_time, area = _negative_part(x0, x1, dt)
            tally.wait_usd_days += area * price
            if lock <= 0:
                tally.delayed_withdrawals_usd += w * neg_time * price
        if x1 >= 0:
            st.balance, st.queue = x1, 0.0
        else:
            st.balance, st.queue = 0.0, -x1
        self.withdrawn[asset] += w * dt - (st.queue - queue)
        if _above_cap(x1, cap):
            self._sweep(st)

    # ------------------------------------------------------------------ legitimate transfers
    def _request_topup(self, st: _WalletState) -> None:
        top = st.spec.topup
        assert top is not None
        wanted = top.cap - (st.balance - st.queue)
        st.topup = self._send(top.source, st.spec.id, wanted, "topup", top.signing_hours * HOUR)
        if st.topup is None:  # a dry source or a stopped transfer: ask again later, not in a loop
            st.retry_at = self.now + TOPUP_RETRY_DAYS

    def _topup_lands(self, st: _WalletState) -> None:
        landing = st.topup
        assert landing is not None
        st.topup = None
        self._credit(st.spec.id, landing.amount)

    def _scheduled(self, i: int) -> None:
        tr = self.model.transfers[i]
        self._next_scheduled[i] = self.now + tr.every_days
        landing = self._send(tr.source, tr.dest, tr.amount, "scheduled", tr.signing_hours * HOUR)
        if landing is None:
            return
        if landing.dest is None:
            self.sent_out[landing.asset] += landing.amount  # gone from the exchange: no landing to wait for
        else:
            self._landings.append(landing)

    def _land(self, landing: _Landing) -> None:
        self._landings.remove(landing)
        assert landing.dest is not None  # transfers out of the exchange are done when sent
        self._credit(landing.dest, landing.amount)

    def _send(self, source: str, dest: str | None, wanted: float, kind: str,
              signing_days: float) -> _Landing | None:
        if dest is not None and self.wallets[dest].abandoned <= self.now:
            return None  # the exchange sends nothing to a wallet it knows is taken over or locked out
        src = self.wallets[source]
        spec = src.spec
        amount = wanted if wanted < src.balance else src.balance
        if amount <= 0:
            return None
        # Above a per-transfer limit, operations split the amount into limit-sized transfers signed in
        # one ceremony: they land together, and each counts as a signed (and time-locked) transfer.
        limit = spec.legit_transfer_limit
        if limit <= 0:
            return None  # a zero limit lets nothing out, legitimate or not
        pieces = _pieces(amount, limit)
        listener = self.listeners.get(source)
        outcome = _PASS
        if listener is not None:
            outcome = listener(LegitTransfer(self.now, source, dest, amount, kind))
            if outcome is _CANCELLED:
                self.tally.transfers_blocked += 1
                return None
        delay = spec.legit_delay_days
        self._tally_signed(pieces, delay)
        due = self.now + signing_days + delay
        if outcome is _HIJACKED:
            # the destination expects funds that will never come; it notices when they are due
            return _Landing(due, dest, 0.0, spec.asset)
        src.balance -= amount
        return _Landing(due, dest, amount, spec.asset)

    def _tally_signed(self, pieces: int, delay: float, ceremonies: int = 1) -> None:
        """Count signing ceremonies of ``pieces`` transfers each, every transfer time-locked for ``delay`` days."""
        tally = self.tally
        tally.ceremonies += ceremonies
        tally.transfers_signed += pieces * ceremonies
        if delay > 0:
            tally.transfers_delayed += pieces * ceremonies
            tally.transfer_delay_days += delay * pieces * ceremonies

    def _credit(self, wallet: str, amount: float) -> None:
        st = self.wallets[wallet]
        if st.owned or st.locked_out:
            self._lost_inflow(st, amount)
            return
        paid = min(st.queue, amount)
        st.queue -= paid
        st.balance += amount - paid
        st.credited += amount
        self.withdrawn[st.spec.asset] += paid
        if st.spec.flows is not None:
            self._sweep(st)

    def _sweep(self, st: _WalletState) -> None:
        """Sweep what a flowing wallet holds above its cap to its ``sweep_to`` wallet, at once.

        An excess within float rounding of the cap (:func:`_above_cap`) is no excess: sweeping a
        1e-14 BTC residue would make an empty wallet pay out dust and count a signing ceremony for it.
        """
        cap = st.spec.flow_rates[3]
        level = st.balance - st.queue
        if _above_cap(level, cap) and st.spec.sweep_to is not None:
            target = self.wallets[st.spec.sweep_to]
            if target.abandoned <= self.now:
                return  # the exchange sweeps nothing into a wallet it knows is taken over or locked out
            excess = level - cap
            st.balance = st.queue + cap  # a positive level means no customer waits: the queue is 0
            if target.owned or target.locked_out:
                self._lost_inflow(target, excess)
            else:
                target.balance += excess
                target.credited += excess

    def _lost_inflow(self, st: _WalletState, amount: float, counted: bool = False) -> None:
        """Funds that reach a taken-over wallet go to the attacker; those that reach a locked-out one are lost.

        ``counted``: already in ``credited``.
        """
        if amount <= 0:
            return
        if not counted:
            st.credited += amount
        (self.locked if st.locked_out else self.stolen)[st.spec.asset] += amount
        if self.on_lost is not None:
            self.on_lost(st.spec.id, amount)

    def total(self, asset: str) -> float:
        """Return what the wallets of ``asset`` hold plus what is in flight or held by the attacker."""
        held = sum(s.balance for s in self.wallets.values() if s.spec.asset == asset)
        return held + self.in_flight(asset) + self.held_by_attacker[asset]


class QuietTimeline:
    """The operations of a trial no attacker touches, kept at every event so that trials can start late.

    Operations are deterministic until an attacker acts on them. A trial's ledger is therefore the
    quiet one up to its first security-relevant instant: :meth:`at` returns a copy of the quiet ledger
    just after its last event at or before that instant, and advancing the copy from there does exactly
    what advancing a fresh ledger from day 0 would have done. Trials pay only for the events after the
    attacker first reaches operations.

    Args:
        model: the compiled scenario (one variant).
    """

    def __init__(self, model: CompiledScenario) -> None:
        ledger = Treasury(model)
        self._times: list[float] = [-math.inf]
        self._states: list[Treasury] = [ledger.copy()]
        while True:
            te = ledger._next_event()[0]
            if te > model.horizon:
                break
            ledger.advance(te)
            self._times.append(te)
            self._states.append(ledger.copy())
        ledger.advance(model.horizon)
        self.final = ledger
        """The quiet ledger at the horizon (read it, do not change it)."""

    def __len__(self) -> int:
        return len(self._times) - 1

    def at(self, t: float) -> Treasury:
        """Return a copy of the quiet ledger after its last event at or before ``t``."""
        return self._states[bisect_right(self._times, t) - 1].copy()


def quiet_timeline(model: CompiledScenario) -> QuietTimeline:
    """Return the variant's quiet timeline: built the first time it is asked for, then kept with the model.

    It is kept in the model's instance dictionary, as the model's cached properties are (the model cannot
    build it itself: the ledger is built on the model).
    """
    memo = vars(model)
    timeline = memo.get("quiet_timeline")
    if timeline is None:
        timeline = memo["quiet_timeline"] = QuietTimeline(model)
    return cast(QuietTimeline, timeline)


def _above_cap(level: float, cap: float) -> bool:
    """Whether a hot wallet's level is above its cap by more than float rounding (a billionth of the cap)."""
    return level - cap > _DUST * cap


def _pieces(amount: float, limit: float) -> int:
    """Return how many transfers of at most ``limit`` (> 0) carry ``amount`` (they are signed in one ceremony)."""
    ratio = amount / limit
    return 1 if ratio <= 1 else MAX_PIECES if ratio >= MAX_PIECES else math.ceil(ratio)


def _occurrences(due: float, period: float, t: float) -> tuple[int, float] | None:
    """Return how many of due, due + period, ... are at or before ``t``, and the first after it.

    Each is the one before plus ``period``, added as the event loop adds them (so the count agrees with
    the loop's, rounding included). None if the period is lost in rounding before ``t``: the series then
    never moves on, and is left to the event loop.
    """
    count = 0
    while due <= t:
        if due + period == due:
            return None
        count += 1
        due += period
    return count, due


def _next_ask(wallet: _WalletState, due: float, period: float, end: float, inclusive: bool) -> float:
    """Return when a request to ``wallet`` is next due once every asking of it before ``end`` is done.

    The request is due at ``due``; an asking waits for the wallet's freezes to end, and an unanswered one
    is repeated ``period`` later. With ``inclusive``, an asking at ``end`` itself is done too.
    """
    while True:
        at = wallet.released_at(due)
        if at > end or (at == end and not inclusive):
            return due
        # Between freezes the askings fall every period: count them at once rather than one by one.
        stop = min((a for a, _ in wallet.freezes if a > at), default=math.inf)
        final = stop >= end
        due = at + _askings(at, period, min(stop, end), final and inclusive) * period
        if final:
            return due


def _askings(at: float, period: float, stop: float, closed: bool) -> int:
    """Return how many of the times at, at + period, ... fall before ``stop`` (or at it, when ``closed``)."""

    def falls(x: float) -> bool:
        return x < stop or (closed and x == stop)

    k = max(1, math.ceil((stop - at) / period))  # the count, up to float rounding, fixed below
    while falls(at + k * period):
        k += 1
    while k > 1 and not falls(at + (k - 1) * period):
        k -= 1
    return k


def _negative_part(x0: float, x1: float, dt: float) -> tuple[float, float]:
    """Return (time below zero, area below zero) of a line from x0 to x1 over dt."""
    if x0 >= 0 and x1 >= 0:
        return 0.0, 0.0
    if x0 <= 0 and x1 <= 0:
        return dt, -(x0 + x1) / 2 * dt
    frac = x0 / (x0 - x1)  # where the line crosses zero, as a fraction of dt
    if x0 > 0:
        span = dt * (1 - frac)
        return span, -x1 / 2 * span
    span = dt * frac
    return span, -x0 / 2 * span
