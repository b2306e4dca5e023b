"""The three theft paths: key theft under policy limits, tampering with legitimate transfers, insiders.

Every attacker transfer meets the same checks in the same order, after signing and before broadcast:
the whitelist (blocks and raises the alarm), the limits (cap the amount), the time-lock (holds it,
cancellable at a freeze). A rule binds only while its enforcer is not in the attacker's hands, and a rule
enforced by a co-signer binds only the transfers that need that co-signer's signature.
"""

from __future__ import annotations

import math
from collections.abc import Generator, Sequence
from enum import Enum
from typing import Any, Protocol

import simpy

from custodysim.scenario.schema import CHAIN
from custodysim.simulation.campaigns import Campaign
from custodysim.simulation.model import CompiledScenario, Rule, SignerModel, WalletModel
from custodysim.simulation.randomness import TrialRandom
from custodysim.simulation.treasury import Intercept, LegitTransfer, Treasury

EPS = 1e-9
DAY = 1.0


class World(Protocol):
    """What a theft reads and changes of its trial's world (:class:`custodysim.simulation.engine.World`)."""

    env: simpy.Environment
    model: CompiledScenario
    rnd: TrialRandom
    daily_out: dict[tuple[str, int], float]
    """The attacker's outflows from each wallet per calendar day, by (wallet, day)."""

    @property
    def treasury(self) -> Treasury:
        """The trial's ledger."""

    def sync(self) -> None:
        """Bring operations up to the current simulation time."""

    def wake_clock(self) -> None:
        """Tell the operations clock that the attacker changed the ledger."""

    def trace(self, template: str, *args: object) -> None:
        """Record a line of the trial's story."""

    def stop(self, c: Campaign, source: str, wallets: set[str], hold: bool = False) -> None:
        """Raise the alarm ``source`` on campaign ``c``."""

    def lose(self, c: Campaign, wallet: WalletModel, amount: float, path: str) -> None:
        """A theft transfer is broadcast: the funds are gone."""

    def watch_outflow(self, c: Campaign, wallet: WalletModel, amount: float, sent: float) -> None:
        """Outflow monitoring may notice an attacker transfer, after its delay."""


class Attempt(Enum):
    """How one attacker transfer attempt ended."""

    SENT = "sent"
    BLOCKED = "blocked"
    NOTHING = "nothing"  # nothing to take now (empty wallet, daily limit used up)


def binds(rule: Rule, c: Campaign, quorum: Sequence[SignerModel], t: float,
          wallet: WalletModel, takeover: bool = False) -> bool:
    """Whether ``rule`` constrains campaign ``c``'s transfer signed by ``quorum`` at ``t``."""
    if rule.enforcer is None:
        return False
    if rule.enforcer == CHAIN:
        return True
    if takeover or c.holds(rule.enforcer, t):
        return False
    cosigner_stores = {s.key_store for s in wallet.signers}
    if rule.enforcer in cosigner_stores:
        return any(s.key_store == rule.enforcer for s in quorum)
    return True


def choose_quorum(c: Campaign, wallet: WalletModel, t: float) -> list[SignerModel] | None:
    """Return the attacker's best quorum from its usable keys: co-signers that enforce policy last."""
    usable = c.usable_signers(wallet, t)
    if len(usable) < wallet.threshold:
        return None
    enforcing = {r.enforcer for r in wallet.rules}
    usable.sort(key=lambda s: s.key_store in enforcing)
    return usable[: wallet.threshold]


def judge(world: World, c: Campaign, wallet: WalletModel, t: float) -> str | None:
    """Return the person who catches a rewritten transfer (a veto), or None if the quorum signs it.

    A signer sees the attacker's version if any component on its view path is compromised; it sees the
    real transaction if its view path is clean or it verifies on an independent, uncompromised device,
    and then catches the mismatch with its holder's verification probability. One person holding several
    keys checks once.
    """
    checked: set[str] = set()
    for signer in wallet.operational_quorum:
        person = signer.holder
        if person is None or person in checked:
            continue
        checked.add(person)
        device, p = world.model.verification[person]
        shown_by = [comp for comp in signer.views_through if c.holds(comp, t)]
        independent = device is not None and not c.holds(device, t)
        if shown_by and not independent:
            world.trace("{} approves what {} shows ({})", person, shown_by[0], signer.id)
            continue
        where = f"on {device}" if independent else "on a clean screen"
        if c.u(world.rnd, f"verify:{person}", c.transfers) < p:
            world.trace("{} checks {} and catches the mismatch: refuses to sign ({})", person, where, signer.id)
            return person
        world.trace("{} checks {} but misses the mismatch and signs ({})", person, where, signer.id)
    return None


def attempt(world: World, c: Campaign, wallet: WalletModel, quorum: Sequence[SignerModel],
            wanted: float, path: str, takeover: bool = False) -> Attempt:
    """Run one attacker transfer of up to ``wanted`` out of ``wallet`` through the policy checks."""
    now = world.env.now
    rules = [r for r in wallet.rules if binds(r, c, quorum, now, wallet, takeover)]
    if any(r.kind == "whitelist" for r in rules):
        world.trace("the whitelist of {} blocks the transfer to the attacker's address", wallet.id)
        world.stop(c, f"whitelist:{wallet.id}", {wallet.id}, hold=True)
        return Attempt.BLOCKED
    amount = min(wanted, world.treasury.balance(wallet.id))
    day = math.floor(now)
    for r in rules:
        if r.kind == "per_transfer_limit":
            amount = min(amount, r.size)
        elif r.kind == "daily_limit":
            amount = min(amount, r.size - world.daily_out.get((wallet.id, day), 0.0))
    if amount <= EPS:
        return Attempt.NOTHING
    taken = world.treasury.take(wallet.id, amount)
    world.wake_clock()  # a lower balance may bring a top-up request forward
    world.daily_out[(wallet.id, day)] = world.daily_out.get((wallet.id, day), 0.0) + taken
    delay = max((r.size for r in rules if r.kind == "delay"), default=0.0)
    c.transfers += 1
    world.watch_outflow(c, wallet, taken, now)
    if delay > 0:
        world.env.process(pending_transfer(world.env, world, c, wallet, taken, now, now + delay, path))
    else:
        world.lose(c, wallet, taken, path)
    return Attempt.SENT


def pending_transfer(env: simpy.Environment, world: World, c: Campaign, wallet: WalletModel, amount: float,
                     submitted: float, due: float, path: str) -> Generator[Any, Any, None]:
    """SimPy process: a time-locked theft transfer, cancelled if the wallet is frozen before it is due."""
    if due >= world.model.horizon:
        return  # still pending when the horizon ends: not a loss inside it
    yield env.timeout(due - env.now)
    if world.treasury.freeze_began(wallet.id, submitted, due):
        world.treasury.settle_theft(wallet.id, amount, stolen=False)
        world.wake_clock()  # the funds are back: transfers out of the wallet may happen again
        c.stops.append(f"delay:{wallet.id}")
        world.trace("time-locked transfer of {:,.4g} {} from {} cancelled at the freeze",
                    amount, wallet.asset, wallet.id)
        return
    world.lose(c, wallet, amount, path)


def drain(env: simpy.Environment, world: World, c: Campaign, wallet: WalletModel,
          path: str, takeover: bool = False) -> Generator[Any, Any, None]:
    """SimPy process: send theft transfers out of ``wallet`` while the campaign can sign for it."""
    horizon = world.model.horizon
    interval = c.threat.drain_interval_days if c.threat is not None else 1 / 144
    while env.now < horizon:
        now = env.now
        quorum: Sequence[SignerModel] | None = wallet.signers if takeover else choose_quorum(c, wallet, now)
        if quorum is None or (takeover and not c.active(now)):
            return
        world.sync()
        if world.treasury.frozen(wallet.id, now):
            wait = world.treasury.released_at(wallet.id, now) - now
        else:
            result = attempt(world, c, wallet, quorum, math.inf, path, takeover)
            if result is Attempt.BLOCKED:
                return
            if result is Attempt.SENT and world.treasury.balance(wallet.id) > EPS:
                wait = interval  # more to take: the next transfer
            else:
                # empty or at the daily limit: come back when funds land or the day turns
                next_funds = world.treasury.next_landing(wallet.id) - now
                wait = max(interval, min(next_funds, math.floor(now) + DAY - now))
        yield env.timeout(wait)


def tamper(world: World, c: Campaign, wallet: WalletModel, transfer: LegitTransfer) -> Intercept:
    """Rewrite a legitimate transfer; return what became of it.

    The rewritten transfer goes to the operational quorum, whose signers judge it one by one (see
    :func:`judge`), then through the policy checks like any attacker transfer. If the rewrite could take
    nothing (an empty wallet, a used-up daily limit), the attacker lets the original through.
    """
    mode = c.threat.tampering if c.threat is not None else "amount"
    world.trace("{} rewrites a {:,.4g} {} {} transfer "
                "out of {} ({})", c.label, transfer.amount, wallet.asset, transfer.kind, wallet.id, mode)
    catcher = judge(world, c, wallet, transfer.time)
    c.transfers += 1
    if catcher is not None:
        world.stop(c, f"verification:{catcher}", {wallet.id}, hold=True)
        return Intercept.CANCELLED
    takeover = mode == "takeover"
    wanted = transfer.amount if mode == "redirect" else math.inf
    result = attempt(world, c, wallet, wallet.operational_quorum, wanted, "tampering", takeover)
    if result is Attempt.NOTHING:
        return Intercept.PASS
    if result is Attempt.BLOCKED:
        return Intercept.CANCELLED
    if takeover and wallet.id not in c.taken_over:
        c.taken_over.add(wallet.id)
        world.env.process(drain(world.env, world, c, wallet, "tampering", takeover=True))
    return Intercept.HIJACKED


def forge(world: World, c: Campaign, wallet: WalletModel) -> None:
    """Originate a transfer request from a compromised requesting account; the quorum still judges it."""
    world.sync()
    if world.treasury.frozen(wallet.id, world.env.now):
        return
    catcher = judge(world, c, wallet, world.env.now)
    c.transfers += 1
    if catcher is not None:
        world.stop(c, f"verification:{catcher}", {wallet.id}, hold=True)
        return
    world.trace("{} submits a forged transfer request out of {}", c.label, wallet.id)
    attempt(world, c, wallet, wallet.operational_quorum, math.inf, "forged_request")
