"""The theft paths: key theft under policy limits, tampering with legitimate transfers, forged requests.

Every attacker transaction meets the same checks in the same order, after signing and before broadcast:
the whitelist (blocks and raises the alarm), the rule against logic changes (blocks a takeover), the limits
(cap the amount), the time-lock (holds it, cancellable after an alarm). A rule binds only while its enforcer
is not in the attacker's hands, and a rule enforced by a co-signer binds only the transactions that need
that co-signer's signature. A takeover is not a transfer: no limit caps it, and a rule inside the wallet's
own logic (``chain``) does not check the transaction that replaces that logic; a guard (``guard``) does.

Whether a campaign strikes at a chance it has is its threat's strike (:func:`strikes_now`): the wallet it
aims at, whether it waits until every signer's view is its own, and whether it strikes once.
"""

from __future__ import annotations

import math
from collections.abc import Generator, Sequence
from enum import Enum
from typing import Any, Protocol

import simpy

from custodysim.scenario.schema import CHAIN, GUARD
from custodysim.simulation.campaigns import Campaign
from custodysim.simulation.model import CompiledScenario, Rule, SignerModel, WalletModel
from custodysim.simulation.randomness import TrialRandom
from custodysim.simulation.treasury import Intercept, LegitTransfer, Treasury

EPS = 1e-9
DAY = 1.0
TAKEOVER_RULES = frozenset({"whitelist", "no_logic_changes", "delay"})
"""The rules that can check a takeover: it pays no address and moves no amount, so no limit applies."""


class World(Protocol):
    """What a theft reads and changes of its trial's world (:class:`custodysim.simulation.engine.World`)."""

    env: simpy.Environment
    model: CompiledScenario
    rnd: TrialRandom
    daily_out: dict[tuple[str, int], float]
    """The attacker's outflows from each wallet per calendar day, by (wallet, day)."""
    outflows: dict[str, list[tuple[float, float]]]
    """The attacker's outflows (time, amount) from each wallet with a rolling limit, in time order."""

    @property
    def treasury(self) -> Treasury:
        """The trial's ledger."""

    def sync(self) -> None:
        """Bring operations up to the current simulation time."""

    def wake_clock(self) -> None:
        """Tell the operations clock that the attacker changed the ledger."""

    def trace(self, template: str, *args: object) -> None:
        """Record a line of the trial's story."""

    def spend(self, actions: int = 1) -> None:
        """Count the attacker's actions against the trial's budget."""

    def stop(self, c: Campaign, source: str, wallets: set[str], hold: bool = False, org: str | None = None) -> None:
        """Raise the alarm ``source`` on campaign ``c``."""

    def lose(self, c: Campaign, wallet: WalletModel, amount: float, path: str) -> None:
        """A theft transfer is broadcast: the funds are gone."""

    def take_over(self, c: Campaign, wallet: WalletModel) -> None:
        """The wallet's logic is replaced: it is the campaign's from now on."""

    def watch_outflow(self, c: Campaign, wallet: WalletModel, amount: float, sent: float) -> None:
        """Outflow monitoring may notice an attacker transfer, after its delay."""

    def can_strike(self, c: Campaign, wallet: WalletModel, t: float) -> bool:
        """Whether campaign ``c`` could strike ``wallet`` at ``t``."""


class Attempt(Enum):
    """How one attacker transfer attempt ended."""

    SENT = "sent"
    BLOCKED = "blocked"
    NOTHING = "nothing"  # nothing to take now (empty wallet, daily limit used up)


def binds(rule: Rule, c: Campaign, quorum: Sequence[SignerModel], t: float,
          wallet: WalletModel, takeover: bool = False) -> bool:
    """Whether ``rule`` constrains campaign ``c``'s transaction signed by ``quorum`` at ``t``.

    A rule checks the transactions it ``applies_to``: a takeover is an administrative action, every other
    attacker transaction a transfer. A takeover meets only the rules that check it (:data:`TAKEOVER_RULES`),
    and of the wallet's own logic (``chain``) only its time-lock, which holds every transaction the logic
    executes.
    """
    enforcer = rule.enforcer
    if enforcer is None or rule.applies_to == ("transfers" if takeover else "admin"):
        return False
    if takeover and (rule.kind not in TAKEOVER_RULES or (enforcer == CHAIN and rule.kind != "delay")):
        return False
    if enforcer in (CHAIN, GUARD):
        return True
    if c.holds(enforcer, t):
        return False
    if any(s.key_store == enforcer for s in wallet.signers):  # a co-signer checks what it signs
        return any(s.key_store == enforcer for s in quorum)
    return True


def choose_quorum(c: Campaign, wallet: WalletModel, t: float) -> list[SignerModel] | None:
    """Return the attacker's best quorum from its usable keys, or None if they make none.

    With groups, each group's threshold comes from that group's keys. Within a group, co-signers that
    enforce policy come last: a co-signer's rule binds only when its group cannot sign without it.
    """
    usable = c.usable_signers(wallet, t)
    if len(usable) < wallet.threshold:
        return None
    enforcing = wallet.enforcers
    usable.sort(key=lambda s: s.key_store in enforcing)
    if len(wallet.groups) == 1:
        return usable[: wallet.threshold]
    quorum: list[SignerModel] = []
    for need, members in wallet.groups:
        mine = [s for s in usable if s.index in members]
        if len(mine) < need:
            return None
        quorum += mine[:need]
    return quorum


def ready(world: World, c: Campaign, wallet: WalletModel, path: str, t: float) -> bool:
    """Whether the campaign holds everything a strike on ``wallet`` by ``path`` needs at ``t``.

    Stolen keys are ready once a quorum is held. A rewritten or forged transfer is ready once every signer
    of the operational quorum who would check it (a holder who catches with some probability) sees the
    attacker's version: a component on their view path is held, and so is their independent device.
    """
    if path == "key_theft":
        return True
    verification = world.model.verification
    for signer in wallet.operational_quorum:
        person = signer.holder
        if person is None:
            continue
        device, p = verification[person]
        if p <= 0:
            continue
        if device is not None and not c.holds(device, t):
            return False
        if not any(c.holds(comp, t) for comp in signer.views_through):
            return False
    return True


def value_usd(world: World, wallet: WalletModel, t: float) -> float:
    """Return what ``wallet``'s account holds at ``t``, in USD (every asset at its address)."""
    model, treasury = world.model, world.treasury
    if wallet.account not in model.shared_accounts:
        return treasury.balance(wallet.id) * model.price_at(wallet.asset, t)
    return sum(treasury.balance(w.id) * model.price_at(w.asset, t) for w in model.accounts[wallet.account])


def strikes_now(world: World, c: Campaign, wallet: WalletModel, path: str, t: float) -> bool:
    """Whether campaign ``c`` strikes ``wallet`` by ``path`` at this chance, by its threat's strike.

    Before its longest wait has passed (counted from its first chance), a campaign strikes only the wallet
    it aims at (``largest``: the most valuable it can strike now, of those it has not struck yet) and,
    waiting until ready, only once ready. After it, it fires at its next chance on any wallet it aims at,
    or never strikes (``give_up``). A one-shot campaign strikes once. Insiders act as soon as they decide.
    """
    if c.threat is None:
        return True
    s = c.threat.strike
    if c.gave_up or (s.once and c.struck) or wallet.id in c.taken_over:
        return False
    if not isinstance(s.aim, str) and wallet.id not in s.aim:
        return False
    if t >= c.first_chance + s.max_wait_days:
        if s.give_up:
            c.gave_up = True
            world.trace("{} gives up after waiting {:g} days", c.label, s.max_wait_days)
            return False
        return True
    if s.wait_until_ready and not ready(world, c, wallet, path, t):
        # Nothing but its own next step (or the end of its wait) can make it ready: until then it lets
        # every transfer of the wallet pass, and nobody needs to watch them on its behalf.
        c.waiting[wallet.id] = min(c.next_step_after(t), c.first_chance + s.max_wait_days)
        return False
    if s.aim == "largest" and wallet.id not in c.struck:
        others = c.near - c.struck - {wallet.id}
        if others:
            mine = value_usd(world, wallet, t)
            wallets = world.model.wallets
            if any(value_usd(world, wallets[w], t) > mine and world.can_strike(c, wallets[w], t) for w in others):
                return False
    return True


def judge(world: World, c: Campaign, wallet: WalletModel, t: float) -> str | None:
    """Return the person who catches a rewritten transfer (a veto), or None if the quorum signs it.

    A signer sees the attacker's version if any component on its view path is compromised; it sees the
    real transaction if its view path is clean or it verifies on an independent, uncompromised device,
    and then catches the mismatch with its holder's verification probability. One person holding several
    keys checks once. The checks of one transfer are not independent: with the scenario's common-mode
    share, one shared draw decides every signer's check (so k verifiers catch no more often than the best
    of them); otherwise each signer draws on their own.
    """
    checked: set[str] = set()
    shared: float | None = None
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
        if shared is None:
            common = world.model.verification_common_mode
            together = common > 0 and c.u(world.rnd, "verify:mode", c.transfers) < common
            shared = c.u(world.rnd, "verify:shared", c.transfers) if together else math.nan
        u = shared if shared == shared else c.u(world.rnd, f"verify:{person}", c.transfers)  # NaN: own draw
        if u < p:
            world.trace("{} checks {} and catches the mismatch: refuses to sign ({})", person, where, signer.id)
            return person
        world.trace("{} checks {} but misses the mismatch and signs ({})", person, where, signer.id)
    return None


def in_window(world: World, wallet: WalletModel, rule: Rule, t: float) -> list[tuple[float, float]]:
    """Return the attacker's outflows from ``wallet`` that ``rule``'s rolling window still counts at ``t``.

    An outflow at ``t0`` counts while ``t < t0 + window``: so no window of that length, anywhere in time,
    sees more than the limit go out.
    """
    return [(t0, a) for t0, a in world.outflows.get(wallet.id, ()) if t0 + rule.window > t + EPS]


def allowance(world: World, wallet: WalletModel, rules: Sequence[Rule], wanted: float, t: float) -> float:
    """Return how much of ``wanted`` a transfer out of ``wallet`` may take at ``t``: its balance, under ``rules``."""
    amount = min(wanted, world.treasury.balance(wallet.id))
    for r in rules:
        if r.kind == "per_transfer_limit":
            amount = min(amount, r.size)
        elif r.kind == "daily_limit":
            amount = min(amount, r.size - world.daily_out.get((wallet.id, math.floor(t)), 0.0))
        elif r.kind == "rolling_limit":
            amount = min(amount, r.size - sum(a for _, a in in_window(world, wallet, r, t)))
    return amount


def room_at(world: World, wallet: WalletModel, t: float) -> float:
    """Return when a rolling limit of ``wallet`` next gives room back: its oldest counted outflow leaves the window."""
    if not wallet.rolling:
        return math.inf
    return min((t0 + r.window for r in wallet.rules if r.kind == "rolling_limit"
                for t0, _ in in_window(world, wallet, r, t)[:1]), default=math.inf)


def attempt(world: World, c: Campaign, wallet: WalletModel, quorum: Sequence[SignerModel],
            wanted: float, path: str, takeover: bool = False) -> Attempt:
    """Run one attacker transaction out of ``wallet`` (up to ``wanted``, or a takeover) through the policy."""
    now = world.env.now
    rules = [r for r in wallet.rules if binds(r, c, quorum, now, wallet, takeover)]
    for kind, what in (("whitelist", "the attacker's address"), ("no_logic_changes", "a change of its logic")):
        if any(r.kind == kind for r in rules):
            world.trace("the {} rule of {} blocks {}", kind.replace("_", " "), wallet.id, what)
            world.stop(c, f"{kind}:{wallet.id}", {wallet.id}, hold=True)
            return Attempt.BLOCKED
    delay = max((r.size for r in rules if r.kind == "delay"), default=0.0)
    if takeover:
        c.transfers += 1
        world.watch_outflow(c, wallet, world.treasury.balance(wallet.id), now)  # a watcher sees what it puts at stake
        if delay > 0:
            world.trace("the takeover of {} waits {:.1f} h in a time-lock", wallet.id, delay * 24)
            world.env.process(pending_takeover(world.env, world, c, wallet, now, now + delay))
        else:
            world.take_over(c, wallet)
        return Attempt.SENT
    amount = allowance(world, wallet, rules, wanted, now)
    if amount <= EPS:
        return Attempt.NOTHING
    day = math.floor(now)
    c.transfers += 1
    taken = world.treasury.take(wallet.id, amount)
    world.wake_clock()  # a lower balance may bring a top-up request forward
    world.daily_out[(wallet.id, day)] = world.daily_out.get((wallet.id, day), 0.0) + taken
    if wallet.rolling:
        world.outflows.setdefault(wallet.id, []).append((now, taken))
    world.watch_outflow(c, wallet, taken, now)
    if delay > 0:
        world.env.process(pending_transfer(world.env, world, c, wallet, taken, now, now + delay, path))
    else:
        world.lose(c, wallet, taken, path)
    return Attempt.SENT


def cancelled(world: World, c: Campaign, wallet: WalletModel, submitted: float, due: float) -> bool:
    """Whether a time-locked attacker transaction submitted at ``submitted`` is cancelled before ``due``.

    It is cancelled when a freeze of the wallet begins while it waits, or when the exchange's response to
    any alarm on its campaign freezes (the alarm plus the freeze delay) while it waits: the people watching
    the time-lock cancel what the campaign has queued, whatever the order of freeze and revocation.
    """
    return (world.treasury.freeze_began(wallet.id, submitted, due)
            or any(submitted <= at <= due for at in c.freezes))


def pending_transfer(env: simpy.Environment, world: World, c: Campaign, wallet: WalletModel, amount: float,
                     submitted: float, due: float, path: str) -> Generator[Any, Any, None]:
    """SimPy process: a time-locked theft transfer, cancelled if an alarm's freeze comes before it is due."""
    if due >= world.model.horizon:
        return  # still pending when the horizon ends: not a loss inside it
    yield env.timeout(due - env.now)
    world.sync()
    if cancelled(world, c, wallet, submitted, due):
        world.treasury.settle_theft(wallet.id, amount, stolen=False)
        world.wake_clock()  # the funds are back: transfers out of the wallet may happen again
        c.stops.append(f"delay:{wallet.id}")
        world.trace("time-locked transfer of {} {} from {} cancelled", amount, wallet.asset, wallet.id)
        return
    world.lose(c, wallet, amount, path)


def pending_takeover(env: simpy.Environment, world: World, c: Campaign, wallet: WalletModel,
                     submitted: float, due: float) -> Generator[Any, Any, None]:
    """SimPy process: a takeover queued by a time-lock, cancelled like a queued transfer."""
    if due >= world.model.horizon:
        return
    yield env.timeout(due - env.now)
    world.sync()
    if cancelled(world, c, wallet, submitted, due):
        c.stops.append(f"delay:{wallet.id}")
        world.trace("time-locked takeover of {} cancelled", wallet.id)
        return
    world.take_over(c, wallet)


def drain(env: simpy.Environment, world: World, c: Campaign, wallet: WalletModel,
          path: str) -> Generator[Any, Any, None]:
    """SimPy process: send theft transfers out of ``wallet`` while the campaign can sign for it."""
    horizon = world.model.horizon
    interval = c.threat.drain_interval_days if c.threat is not None else 1 / 144
    while env.now < horizon:
        world.spend()
        now = env.now
        quorum = choose_quorum(c, wallet, now)
        if quorum is None:
            return
        world.sync()
        if world.treasury.frozen(wallet.id, now):
            wait = world.treasury.released_at(wallet.id, now) - now
        else:
            result = attempt(world, c, wallet, quorum, math.inf, path)
            if result is Attempt.BLOCKED:
                return
            if result is Attempt.SENT and world.treasury.balance(wallet.id) > EPS:
                wait = interval  # more to take: the next transfer
            else:
                # empty or at a limit: come back when funds land, the day turns or a rolling window gives room
                next_funds = world.treasury.next_landing(wallet.id) - now
                wait = max(interval, min(next_funds, math.floor(now) + DAY - now, room_at(world, wallet, now) - now))
        yield env.timeout(wait)


def tamper(world: World, c: Campaign, wallet: WalletModel, transfer: LegitTransfer) -> Intercept:
    """Rewrite a legitimate transfer; return what became of it.

    The rewritten transaction goes to the operational quorum, whose signers judge it (see :func:`judge`),
    then through the policy checks like any attacker transaction. If a rewrite could take nothing (an
    empty wallet, a used-up daily limit) and no whitelist would stop it, the attacker does not rewrite:
    it lets the original through, and has not struck.
    """
    mode = c.threat.tampering if c.threat is not None else "amount"
    takeover = mode == "takeover"
    wanted = transfer.amount if mode == "redirect" else math.inf
    quorum = wallet.operational_quorum
    if not takeover:
        rules = [r for r in wallet.rules if binds(r, c, quorum, transfer.time, wallet)]
        blocked = any(r.kind == "whitelist" for r in rules)
        if not blocked and allowance(world, wallet, rules, wanted, transfer.time) <= EPS:
            return Intercept.PASS
    world.trace("{} rewrites a {} {} {} transfer out of {} ({})",
                c.label, transfer.amount, wallet.asset, transfer.kind, wallet.id, mode)
    c.struck.add(wallet.id)  # now: the theft it sends may prompt the campaign's other chances
    catcher = judge(world, c, wallet, transfer.time)
    c.transfers += 1
    if catcher is not None:
        world.stop(c, f"verification:{catcher}", {wallet.id}, hold=True)
        return Intercept.CANCELLED
    blocked = attempt(world, c, wallet, quorum, wanted, "tampering", takeover) is Attempt.BLOCKED
    return Intercept.CANCELLED if blocked else Intercept.HIJACKED


def forge(world: World, c: Campaign, wallet: WalletModel) -> None:
    """Originate a transfer request from a compromised requesting account; the quorum still judges it."""
    world.sync()
    if world.treasury.frozen(wallet.id, world.env.now):
        return
    c.struck.add(wallet.id)
    catcher = judge(world, c, wallet, world.env.now)
    c.transfers += 1
    if catcher is not None:
        world.stop(c, f"verification:{catcher}", {wallet.id}, hold=True)
        return
    world.trace("{} submits a forged transfer request out of {}", c.label, wallet.id)
    attempt(world, c, wallet, wallet.operational_quorum, math.inf, "forged_request")
