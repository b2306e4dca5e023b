"""The exchange's operations as a ledger advanced lazily between security-relevant events.

Customer flows are aggregate rates, so between two events a hot wallet's level (balance minus waiting
withdrawals) moves on a straight line and every figure (when it crosses its low-water mark, how long
customers wait) has a closed form. The ledger therefore visits only a few instants per top-up cycle and
none per customer, and a trial's cost grows with the attacker's actions, not with trading volume.

Conventions (see docs/model.md): a top-up of (cap - level) is requested when the level reaches
low-water, one in flight per wallet, landing after the source's signing time plus any time-lock; a short
source sends what it has; deposits above the cap are swept to ``sweep_to`` (default: the top-up source);
a frozen wallet pays nothing out, so its customers wait and its legitimate transfers are held until the
freeze ends.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum

from custodysim.model import CompiledScenario, WalletModel

HOUR = 1.0 / 24.0
RETRY_DAYS = 1.0
MAX_PIECES = 10**9  # a count of limit-sized transfers, bounded for absurdly small limits


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


@dataclass
class _Landing:
    time: float
    dest: str | None
    amount: float
    asset: str


@dataclass
class _WalletState:
    spec: WalletModel
    balance: float
    queue: float = 0.0  # customer withdrawals waiting (flowing wallets only)
    topup: _Landing | None = None  # this wallet's top-up in flight
    freezes: list[tuple[float, float]] = field(default_factory=list)
    credited: float = 0.0  # everything that flowed in: deposits, top-ups, transfers, sweeps
    retry_at: float = 0.0  # after a top-up request that sent nothing, when to ask again

    def frozen_at(self, t: float) -> bool:
        return any(a <= t < b for a, b in self.freezes)

    def released_at(self, t: float) -> float:
        """Return the first time >= t at which the wallet is not frozen."""
        moved = True
        while moved:
            moved = False
            for a, b in self.freezes:
                if a <= t < b:
                    t, moved = b, True
        return t


@dataclass
class OperationsTally:
    """Operational figures of a trial (USD-weighted where assets mix)."""

    withdrawals_usd: float = 0.0
    delayed_withdrawals_usd: float = 0.0
    wait_usd_days: float = 0.0
    transfers_signed: int = 0
    transfers_delayed: int = 0
    transfer_delay_days: float = 0.0


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
        self._next_scheduled = [t.first_day for t in model.transfers]
        self._landings: list[_Landing] = []
        self.listeners: dict[str, Listener] = {}
        self.tally = OperationsTally()
        # conservation ledger, per asset
        self.deposited = dict.fromkeys(model.assets, 0.0)
        self.withdrawn = dict.fromkeys(model.assets, 0.0)
        self.sent_out = dict.fromkeys(model.assets, 0.0)
        self.stolen = dict.fromkeys(model.assets, 0.0)
        self.held_by_attacker = dict.fromkeys(model.assets, 0.0)

    # ------------------------------------------------------------------ queries
    def balance(self, wallet: str) -> float:
        """Return the wallet's balance at :attr:`now`."""
        return self.wallets[wallet].balance

    def frozen(self, wallet: str, t: float) -> bool:
        """Whether the wallet's outflows are frozen at ``t``."""
        return self.wallets[wallet].frozen_at(t)

    def released_at(self, wallet: str, t: float) -> float:
        """Return the first time >= ``t`` at which the wallet's outflows are not frozen."""
        return self.wallets[wallet].released_at(t)

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

    def next_event_time(self) -> float:
        """Return the time of the next operations event (a request or a landing)."""
        return self._next_event()[0]

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

    def freeze_began(self, wallet: str, start: float, end: float) -> bool:
        """Whether a freeze of the wallet was in force at some time in [start, end]."""
        return any(a <= end and b > start for a, b in self.wallets[wallet].freezes)

    def freeze(self, wallet: str, start: float, end: float) -> None:
        """Freeze the wallet's outflows over [start, end)."""
        if end > start:
            self.wallets[wallet].freezes.append((start, end))

    # ------------------------------------------------------------------ time
    def advance(self, t: float) -> None:
        """Run operations up to time ``t`` (inclusive of events at ``t``)."""
        while True:
            te, act = self._next_event()
            if te > t:
                break
            self._flow(te)
            act()
        self._flow(t)

    def _next_event(self) -> tuple[float, Callable[[], None]]:
        best: tuple[float, Callable[[], None]] = (math.inf, _nothing)
        for st in self._flowing:
            cand = self._flowing_event(st)
            if cand[0] < best[0]:
                best = cand
        for i, tr in enumerate(self.model.transfers):
            due = self.wallets[tr.source].released_at(self._next_scheduled[i])
            if due < best[0]:
                best = (due, _bind(self._scheduled, i))
        for landing in self._landings:
            if landing.time < best[0]:
                best = (landing.time, _bind(self._land, landing))
        return best

    def _flowing_event(self, st: _WalletState) -> tuple[float, Callable[[], None]]:
        best: tuple[float, Callable[[], None]] = (math.inf, _nothing)
        for a, b in st.freezes:  # dynamics change at a freeze's edges
            for edge in (a, b):
                if edge > self.now and edge < best[0]:
                    best = (edge, _nothing)
        top = st.spec.topup
        if top is None:
            return best
        if st.topup is not None:
            cand = (st.topup.time, _bind(self._topup_lands, st))
        else:
            level = st.balance - st.queue
            flows = st.spec.flows
            assert flows is not None
            drain = flows.withdrawals_per_day - (0.0 if st.frozen_at(self.now) else flows.deposits_per_day)
            if level <= top.low_water + 1e-12:
                when = self.now
            elif drain > 0 and not st.frozen_at(self.now):
                when = self.now + (level - top.low_water) / drain
            else:
                return best
            when = self.wallets[top.source].released_at(max(when, st.retry_at))
            cand = (when, _bind(self._request_topup, st))
        return cand if cand[0] < best[0] else best

    def _flow(self, t: float) -> None:
        dt = t - self.now
        if dt <= 0:
            return
        for st in self._flowing:
            self._flow_wallet(st, self.now, dt)
        self.now = t

    def _flow_wallet(self, st: _WalletState, t0: float, dt: float) -> None:
        flows = st.spec.flows
        assert flows is not None
        w, d = flows.withdrawals_per_day, flows.deposits_per_day
        price = st.spec.price_usd
        asset = st.spec.asset
        self.deposited[asset] += d * dt
        st.credited += d * dt
        self.tally.withdrawals_usd += w * dt * price
        if st.frozen_at(t0):
            # nothing is paid out: deposits accrue, every withdrawal waits
            self.tally.wait_usd_days += (st.queue * dt + w * dt * dt / 2) * price
            self.tally.delayed_withdrawals_usd += w * dt * price
            st.balance += d * dt
            st.queue += w * dt
            return
        x0 = st.balance - st.queue
        x1 = x0 - (w - d) * dt
        # time spent with customers waiting (level below zero) and the area under the queue
        neg_time, area = _negative_part(x0, x1, dt)
        self.tally.wait_usd_days += area * price
        self.tally.delayed_withdrawals_usd += w * neg_time * price
        cap = st.spec.topup.cap if st.spec.topup else math.inf
        if x1 > cap and st.spec.sweep_to is not None:
            sweep = self.wallets[st.spec.sweep_to]
            sweep.balance += x1 - cap
            sweep.credited += x1 - cap
            x1 = cap
        paid_before = st.queue
        st.balance, st.queue = max(x1, 0.0), max(-x1, 0.0)
        self.withdrawn[asset] += w * dt - (st.queue - paid_before)

    # ------------------------------------------------------------------ legitimate transfers
    def _request_topup(self, st: _WalletState) -> None:
        top = st.spec.topup
        assert top is not None
        wanted = top.cap - (st.balance - st.queue)
        st.topup = self._send(top.source, st.spec.id, wanted, "topup", top.signing_hours * HOUR)
        if st.topup is None:  # a dry source or a stopped transfer: ask again later, not in a loop
            st.retry_at = self.now + RETRY_DAYS

    def _topup_lands(self, st: _WalletState) -> None:
        landing = st.topup
        assert landing is not None
        st.topup = None
        self._credit(st.spec.id, landing.amount)

    def _scheduled(self, i: int) -> None:
        tr = self.model.transfers[i]
        self._next_scheduled[i] = self.now + tr.every_days
        landing = self._send(tr.source, tr.dest, tr.amount, "scheduled", tr.signing_hours * HOUR)
        if landing is not None:
            self._landings.append(landing)

    def _land(self, landing: _Landing) -> None:
        self._landings.remove(landing)
        if landing.dest is None:
            self.sent_out[landing.asset] += landing.amount
        else:
            self._credit(landing.dest, landing.amount)

    def _send(self, source: str, dest: str | None, wanted: float, kind: str,
              signing_days: float) -> _Landing | None:
        src = self.wallets[source]
        spec = src.spec
        amount = max(0.0, min(wanted, src.balance))
        if amount <= 0:
            return None
        # Above a per-transfer limit, operations split the amount into limit-sized transfers signed in
        # one ceremony: they land together, and each counts as a signed (and time-locked) transfer.
        limit = spec.legit_transfer_limit
        if limit <= 0:
            return None  # a zero limit lets nothing out, legitimate or not
        ratio = amount / limit
        pieces = 1 if ratio <= 1 else MAX_PIECES if ratio >= MAX_PIECES else math.ceil(ratio)
        transfer = LegitTransfer(self.now, source, dest, amount, kind)
        listener = self.listeners.get(source)
        outcome = listener(transfer) if listener is not None else Intercept.PASS
        delay = spec.legit_delay_days
        if outcome is Intercept.CANCELLED:
            return None
        self.tally.transfers_signed += pieces
        if delay > 0:
            self.tally.transfers_delayed += pieces
            self.tally.transfer_delay_days += delay * pieces
        due = self.now + signing_days + delay
        if outcome is Intercept.HIJACKED:
            # the destination expects funds that will never come; it notices when they are due
            return _Landing(due, dest, 0.0, spec.asset)
        src.balance -= amount
        return _Landing(due, dest, amount, spec.asset)

    def _credit(self, wallet: str, amount: float) -> None:
        st = self.wallets[wallet]
        paid = min(st.queue, amount)
        st.queue -= paid
        st.balance += amount - paid
        st.credited += amount
        self.withdrawn[st.spec.asset] += paid

    def total(self, asset: str) -> float:
        """Return what the wallets of ``asset`` hold plus what is in flight or held by the attacker."""
        held = sum(s.balance for s in self.wallets.values() if s.spec.asset == asset)
        return held + self.in_flight(asset) + self.held_by_attacker[asset]


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


def _nothing() -> None:
    return None


def _bind(fn: Callable[..., None], arg: object) -> Callable[[], None]:
    return lambda: fn(arg)
