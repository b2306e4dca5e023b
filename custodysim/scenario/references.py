"""Cross-reference checks: every id a scenario mentions must exist and be of the right kind.

Also the checks that need several fields at once: repeated access edges, and transfers so frequent that
one trial would simulate millions of them (which would never finish).
"""

from __future__ import annotations

import difflib
import heapq
import math
from collections.abc import Iterable, Iterator

from custodysim.errors import PathT, format_path
from custodysim.scenario.measures import check_measures, effective
from custodysim.scenario.schema import CHAIN, EXTERNAL, GUARD, MAX_USD, TOPUP_RETRY_DAYS, Limit, Scenario

MAX_LEGIT_TRANSFERS = 200_000
"""Legitimate transfers (scheduled ones and top-ups) one trial may simulate."""
MAX_THEFT_TRANSFERS = 10_000_000
"""Theft transfers one campaign may send out of one wallet in one trial (the horizon over the drain interval)."""


def _missing(kind: str, ref: str, known: Iterable[str]) -> str:
    known = sorted(known)
    close = difflib.get_close_matches(ref, known, n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"no {kind} with id {ref!r}{hint}"


def check_references(s: Scenario) -> list[tuple[PathT, str]]:
    """Return (path, message) for every dangling or ill-typed reference in ``s``.

    The library measures are checked first; the rest is checked on the scenario with its measures
    written out, as the engine will read it.
    """
    problems = list(check_measures(s))
    return problems or list(_check(effective(s)))


def _check(s: Scenario) -> Iterator[tuple[PathT, str]]:
    orgs, people, systems, wallets = set(s.organisations), set(s.people), set(s.systems), set(s.wallets)
    nodes = people | systems

    for pid in sorted(people & systems):
        yield ("people", pid), f"{pid!r} is both a person and a system; ids of people and systems must differ"
    for reserved, meaning in ((CHAIN, "inside the wallet's own logic"), (GUARD, "an on-chain guard or module")):
        if reserved in systems:
            yield ("systems", reserved), (f"{reserved!r} is reserved (enforced_by: {reserved} means {meaning}); "
                                          "rename the system")
    if EXTERNAL in wallets:
        yield ("wallets", EXTERNAL), f"{EXTERNAL!r} is reserved (a transfer's destination outside the exchange)"

    def need(path: PathT, kind: str, ref: str | None, known: set[str]) -> Iterator[tuple[PathT, str]]:
        if ref is not None and ref not in known:
            yield path, _missing(kind, ref, known)

    for pid, person in s.people.items():
        yield from need(("people", pid, "organisation"), "organisation", person.organisation, orgs)
        for i, dev in enumerate(person.devices):
            yield from need(("people", pid, "devices", i), "system", dev, systems)
        yield from need(("people", pid, "verifies_on"), "system", person.verifies_on, systems)
    for sid, system in s.systems.items():
        yield from need(("systems", sid, "owner"), "organisation", system.owner, orgs)

    for wid, w in s.wallets.items():
        base: PathT = ("wallets", wid)
        yield from need(base + ("asset",), "asset", w.asset, set(s.assets))
        for i, signer in enumerate(w.custody.signers):
            sp = base + ("custody", "signers", i)
            yield from need(sp + ("holder",), "person", signer.holder, people)
            yield from need(sp + ("key_store",), "system", signer.key_store, systems)
            for j, comp in enumerate(signer.views_through or []):
                yield from need(sp + ("views_through", j), "system", comp, systems)
        for i, comp in enumerate(w.pipeline):
            yield from need(base + ("pipeline", i), "system", comp, systems)
        for i, req in enumerate(w.requesters):
            yield from need(base + ("requesters", i), "person or system", req, nodes)
        for where, enforced in w.policy.rules():
            if enforced.enforced_by not in (None, CHAIN, GUARD):
                yield from need(base + ("policy", *where, "enforced_by"), f"system (or '{CHAIN}' or '{GUARD}')",
                                enforced.enforced_by, systems)
        if w.topup is not None:
            yield from _wallet_link(s, base + ("topup", "source"), wid, w.topup.source)
            if w.flows is None:
                yield base + ("topup",), "a top-up needs flows on the same wallet (what drains it?)"
        if w.sweep_to is not None:
            yield from _wallet_link(s, base + ("sweep_to",), wid, w.sweep_to)

    for i, t in enumerate(s.operations.transfers):
        tp: PathT = ("operations", "transfers", i)
        yield from _wallet_link(s, tp + ("from",), None, t.from_wallet)
        if t.to != EXTERNAL:
            yield from _wallet_link(s, tp + ("to",), t.from_wallet, t.to)
    for i, action in enumerate(s.operations.admin_actions):
        yield from _wallet_link(s, ("operations", "admin_actions", i, "wallet"), None, action.wallet)

    seen_edges: dict[tuple[str, str, str], int] = {}
    for i, edge in enumerate(s.access):
        key = (edge.from_node, edge.to, edge.technique)
        if key in seen_edges:
            yield ("access", i), (f"repeats access[{seen_edges[key]}] (same from, to and technique); "
                                  "merge them or name the techniques apart")
        seen_edges.setdefault(key, i)
        yield from need(("access", i, "from"), "person or system", edge.from_node, nodes)
        yield from need(("access", i, "to"), "person or system", edge.to, nodes)
        if edge.from_node == edge.to:
            yield ("access", i, "to"), "an access edge cannot lead from a node to itself"
        yield from need(("access", i, "opened_by"), "person", edge.opened_by, people)

    for tid, threat in s.threats.items():
        if isinstance(threat.strike.aim, list):
            for i, wid in enumerate(threat.strike.aim):
                yield from need(("threats", tid, "strike", "aim", i), "wallet", wid, wallets)

    for tid, threat in s.threats.items():
        for i, ia in enumerate(threat.initial_access):
            for j, target in enumerate(ia.targets):
                yield from need(("threats", tid, "initial_access", i, "targets", j), "person", target, people)
        for i, day in enumerate(threat.forced_campaign_days):
            if day >= s.settings.horizon_days:
                yield (("threats", tid, "forced_campaign_days", i),
                       f"day {day:g} is not inside the horizon of {s.settings.horizon_days:g} days")

    for cid, det in s.controls.detection.items():
        for i, node in enumerate(det.watches):
            yield from need(("controls", "detection", cid, "watches", i), "person or system", node, nodes)
    for cid, mon in s.controls.outflow_monitoring.items():
        for i, wid in enumerate(mon.wallets or []):
            yield from need(("controls", "outflow_monitoring", cid, "wallets", i), "wallet", wid, wallets)

    yield from _accounts(s)
    yield from _usd_bounds(s)
    yield from _work_bounds(s)


def _accounts(s: Scenario) -> Iterator[tuple[PathT, str]]:
    """Refuse wallets of one account that differ in what the account shares, or hold the same asset."""
    held: dict[str, dict[str, str]] = {}  # account -> asset -> the wallet holding it
    for wid, w in s.wallets.items():
        if w.account is None:
            continue
        if w.account in s.wallets and s.wallets[w.account].account != w.account:
            yield ("wallets", wid, "account"), (f"{w.account!r} is the id of a wallet outside this account; "
                                                "name the account otherwise (or put that wallet in it)")
        assets = held.setdefault(w.account, {})
        if assets:
            lead = next(iter(assets.values()))
            for field in ("custody", "pipeline", "requesters"):
                if getattr(w, field) != getattr(s.wallets[lead], field):
                    yield ("wallets", wid, field), (f"differs from that of wallet {lead!r}, of the same account "
                                                    f"{w.account!r}: the wallets of an account share one {field}")
        if w.asset in assets:
            yield ("wallets", wid, "asset"), (f"{w.asset} is held by wallet {assets[w.asset]!r} of the same "
                                              f"account {w.account!r} already: an account holds each asset once")
        assets.setdefault(w.asset, wid)


def _usd_bounds(s: Scenario) -> Iterator[tuple[PathT, str]]:
    """Refuse an amount whose USD value, at its asset's highest price, is beyond :data:`MAX_USD`."""
    for wid, w in s.wallets.items():
        asset = s.assets.get(w.asset)
        if asset is None:
            continue  # a dangling asset is reported above
        price = asset.highest_price
        amounts: list[tuple[PathT, float]] = [(("balance",), w.balance)]
        if w.flows is not None:
            amounts += [(("flows", "withdrawals_per_day"), w.flows.withdrawals_per_day),
                        (("flows", "deposits_per_day"), w.flows.deposits_per_day)]
        if w.topup is not None:
            amounts += [(("topup", "cap"), w.topup.cap), (("topup", "low_water"), w.topup.low_water)]
        amounts += [(("policy", *where, "amount"), rule.amount) for where, rule in w.policy.rules()
                    if isinstance(rule, Limit)]
        for where, amount in amounts:
            if amount * price > MAX_USD:
                yield ("wallets", wid, *where), _beyond(amount, w.asset, price)
    for i, t in enumerate(s.operations.transfers):
        source = s.wallets.get(t.from_wallet)
        if source is None or source.asset not in s.assets:
            continue  # a dangling wallet or asset is reported above
        asset = s.assets[source.asset]
        price = asset.highest_price
        if t.amount * price > MAX_USD:
            yield ("operations", "transfers", i, "amount"), _beyond(t.amount, source.asset, price)


def _beyond(amount: float, asset: str, price: float) -> str:
    return (f"{amount:g} {asset} at up to USD {price:g} each is USD {amount * price:.3g}, beyond the USD "
            f"{MAX_USD:.0e} an amount may stand for; check the units (amounts are in the asset, prices in USD)")


def _about(n: float) -> str:
    if not math.isfinite(n):
        return "countless"
    return f"about {n:,.0f}" if n < 1e12 else f"about {n:.2g}"


def _work_bounds(s: Scenario) -> Iterator[tuple[PathT, str]]:
    """Refuse transfers so frequent that one trial would simulate millions of them (and never end).

    The counts are upper estimates: scheduled transfers over the horizon; top-ups no more often than the
    net outflow eats cap - low_water or than a refill is signed, and no more (each moving at least
    cap - low_water) than the funds that can reach the source allow, plus a retry a day once it is dry.
    """
    horizon = s.settings.horizon_days
    legit: list[tuple[float, PathT, str]] = []  # (transfers per trial, where, what to change)
    funds = {wid: w.balance + (w.flows.deposits_per_day * horizon if w.flows else 0.0) for wid, w in s.wallets.items()}
    for i, t in enumerate(s.operations.transfers):
        n = max(horizon - t.first_day, 0.0) / t.every_days
        legit.append((n, ("operations", "transfers", i, "every_days"),
                      f"one transfer every {t.every_days:g} days; raise every_days"))
        if t.to in funds:
            funds[t.to] += t.amount * (n + 1)
    for wid, w in s.wallets.items():  # deposits beyond withdrawals are swept on
        sweep = w.sweep_to or (w.topup.source if w.topup else None)
        if w.flows is not None and sweep in funds and sweep != wid:
            funds[sweep] += max(w.flows.deposits_per_day - w.flows.withdrawals_per_day, 0.0) * horizon
    for wid, w in s.wallets.items():
        if w.topup is None or w.flows is None or w.topup.source not in s.wallets:
            continue
        net = w.flows.withdrawals_per_day - w.flows.deposits_per_day
        if net <= 0:
            continue
        source = w.topup.source
        delay = s.wallets[source].policy.delay
        held = delay is not None and delay.enforced_by is not None and delay.applies_to != "admin"
        lock_hours = delay.hours if delay is not None and held else 0.0  # an admin-only lock holds no top-up
        gap = w.topup.cap - w.topup.low_water
        cycle = max((w.topup.signing_hours + lock_hours) / 24, gap / net)
        available = funds[source] + sum(funds[x] for x in _sources(s, source))
        n = min(horizon / cycle if cycle > 0 else math.inf, available / gap + horizon / TOPUP_RETRY_DAYS)
        legit.append((n, ("wallets", wid, "topup"), f"a net outflow of {net:g}/day against cap - low_water = "
                      f"{gap:g}; widen the gap between cap and low_water"))
    total = sum(n for n, _, _ in legit)
    if total > MAX_LEGIT_TRANSFERS:
        _, path, why = max(legit, key=lambda item: item[0])
        yield path, (f"{_about(total)} legitimate transfers per trial, more than the {MAX_LEGIT_TRANSFERS:,} a "
                     f"trial can simulate: {why}")
    for tid, threat in s.threats.items():
        n = horizon * 24 * 60 / threat.drain_interval_minutes
        if n > MAX_THEFT_TRANSFERS:
            least = horizon * 24 * 60 / MAX_THEFT_TRANSFERS
            yield ("threats", tid, "drain_interval_minutes"), (
                f"one theft transfer every {threat.drain_interval_minutes:g} minutes makes {_about(n)} from one "
                f"wallet in a trial, more than the {MAX_THEFT_TRANSFERS:,} a trial can simulate; use at least "
                f"{least:.2g} minutes")


def _wallet_link(s: Scenario, path: PathT, own: str | None, ref: str) -> Iterator[tuple[PathT, str]]:
    if ref not in s.wallets:
        yield path, _missing("wallet", ref, s.wallets)
    elif ref == own:
        yield path, "a wallet cannot send to itself"
    elif own in s.wallets and s.wallets[ref].asset != s.wallets[own].asset:  # own: reported apart if missing
        yield path, f"wallet {ref!r} holds {s.wallets[ref].asset}, not {s.wallets[own].asset}"


def scenario_warnings(s: Scenario) -> Iterator[str]:
    """Yield warnings: flows that drain a wallet, rules nobody enforces, immune targets, doors nobody opens.

    And a scenario with threats but no organisation of kind ``exchange``.
    """
    yield from _flow_warnings(s)
    yield from (f"{format_path(path)}: {message}" for path, message in unenforced_rules(s))
    for tid, threat in s.threats.items():
        for i, ia in enumerate(threat.initial_access):
            immune = [p for p in ia.targets if p in s.people and s.people[p].exposure.get(ia.technique, 0) == 0]
            if immune:
                yield (f"threats.{tid}.initial_access[{i}]: {', '.join(immune)} ha{'s' if len(immune) == 1 else 've'} "
                       f"no exposure to {ia.technique!r} and will never fall for it (a typo in 'exposure'?)")
    for i, edge in enumerate(s.access):
        opener = s.people.get(edge.opened_by) if edge.opened_by is not None else None
        if opener is not None and opener.insider_rate_per_year == 0:
            yield (f"access[{i}].opened_by: {edge.opened_by} has no insider_rate_per_year, so the door they open "
                   "never opens")
    if s.threats and not any(o.kind == "exchange" for o in s.organisations.values()):
        yield ("organisations: none is of kind 'exchange'; the wallets then belong to a stand-in that owns no "
               "person or system, so alarms about them (a signer's veto, a blocked transfer, outflow monitoring) "
               "freeze them but revoke no foothold")


def unenforced_rules(s: Scenario) -> Iterator[tuple[PathT, str]]:
    """Yield (path, message) for every policy rule without ``enforced_by``: nobody enforces it, so it binds nobody."""
    for wid, w in s.wallets.items():
        for where, rule in w.policy.rules():
            if rule.enforced_by is None:
                yield ("wallets", wid, "policy", *where), (
                    f"has no enforced_by, so nothing enforces it: it binds neither the attacker nor legitimate "
                    f"transfers; name what enforces it: a system id, {CHAIN!r} or {GUARD!r}")


def _flow_warnings(s: Scenario) -> Iterator[str]:
    horizon = s.settings.horizon_days
    for wid, w in s.wallets.items():
        if w.flows is None:
            continue
        net = w.flows.withdrawals_per_day - w.flows.deposits_per_day
        if net <= 0:
            continue
        sources = [src for src in _sources(s, wid) if src in s.wallets]
        day, scheduled = _runs_dry(s, [wid, *sources], net)
        if day is None:
            continue
        drained = wid if not sources else f"{wid} and its top-up source{'s' if len(sources) > 1 else ''} " \
            f"{', '.join(sources)}"
        counted = " (scheduled transfers counted)" if scheduled else ""
        yield (f"wallets.{wid}.flows: net outflow {net:g}/day empties {drained} in about {day:.0f} days{counted}, "
               f"within the {horizon:g}-day horizon; customers will wait")


def _runs_dry(s: Scenario, pool: list[str], net: float) -> tuple[float | None, bool]:
    """Return the day ``pool`` (a wallet and its top-up sources) runs dry under ``net`` a day, or None.

    The wallets of the pool are one reserve (top-ups move funds within it). Scheduled transfers into it
    refill it and those out of it drain it, each landing after its signing time and its source's enforced
    time-lock; a source outside the pool sends what it holds (its balance and what scheduled transfers
    bring it), as a short source does in a trial. Customer flows of wallets other than the first, top-ups
    to other wallets and freezes are left out: this is a warning's estimate, not a trial.

    Returns:
        the day it runs dry within the horizon (None: it lasts), and whether any scheduled transfer
        crosses the pool's edge.
    """
    horizon = s.settings.horizon_days
    transfers = s.operations.transfers
    reach = set(pool)  # the pool and every wallet whose transfers can reach it
    grown = True
    while grown:
        before = len(reach)
        reach |= {t.from_wallet for t in transfers if t.to in reach and t.from_wallet in s.wallets}
        grown = len(reach) > before
    node = {w: "" if w in pool else w for w in reach}  # "" is the pool
    held = dict.fromkeys(node.values(), 0.0)
    for w in reach:
        held[node[w]] += s.wallets[w].balance
    due: list[tuple[float, int, int, float]] = []  # (day, 0 a send or 1 a landing, transfer, amount landing)
    for i, t in enumerate(transfers):
        if t.from_wallet in reach and node[t.from_wallet] != node.get(t.to) and t.first_day < horizon:
            due.append((t.first_day, 0, i, 0.0))
    scheduled = any(node[transfers[i].from_wallet] == "" or node.get(transfers[i].to) == "" for _, _, i, _ in due)
    heapq.heapify(due)
    while due and due[0][0] < horizon:
        day, landing, i, amount = heapq.heappop(due)
        if held[""] - net * day <= 0:
            return held[""] / net, scheduled
        t = transfers[i]
        if landing:
            held[node[t.to]] += amount
            continue
        source = node[t.from_wallet]
        sent = min(t.amount, held[source] - (net * day if source == "" else 0.0))
        held[source] -= sent
        if t.to in node:
            lock = s.wallets[t.from_wallet].policy.delay
            locked = lock is not None and lock.enforced_by is not None and lock.applies_to != "admin"
            lands = day + (t.signing_hours + (lock.hours if lock is not None and locked else 0.0)) / 24
            heapq.heappush(due, (lands, 1, i, sent))
        heapq.heappush(due, (day + t.every_days, 0, i, 0.0))
    return (held[""] / net if held[""] - net * horizon < 0 else None), scheduled


def _sources(s: Scenario, wid: str) -> Iterator[str]:
    seen = {wid}
    w = s.wallets[wid]
    while w.topup is not None and w.topup.source not in seen and w.topup.source in s.wallets:
        seen.add(w.topup.source)
        yield w.topup.source
        w = s.wallets[w.topup.source]
