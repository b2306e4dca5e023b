"""Cross-reference checks: every id a scenario mentions must exist and be of the right kind."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator

from custodysim.errors import PathT
from custodysim.schema import CHAIN, EXTERNAL, Scenario


def _missing(kind: str, ref: str, known: Iterable[str]) -> str:
    known = sorted(known)
    close = difflib.get_close_matches(ref, known, n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"no {kind} with id {ref!r}{hint}"


def check_references(s: Scenario) -> list[tuple[PathT, str]]:
    """Return (path, message) for every dangling or ill-typed reference in ``s``."""
    return list(_check(s))


def _check(s: Scenario) -> Iterator[tuple[PathT, str]]:
    orgs, people, systems, wallets = set(s.organisations), set(s.people), set(s.systems), set(s.wallets)
    nodes = people | systems

    for pid in sorted(people & systems):
        yield ("people", pid), f"{pid!r} is both a person and a system; ids of people and systems must differ"
    if CHAIN in systems:
        yield ("systems", CHAIN), f"{CHAIN!r} is reserved (enforced_by: {CHAIN} means on chain); rename the system"
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
        for rule in ("per_transfer_limit", "daily_limit", "whitelist", "delay"):
            enforced = getattr(w.policy, rule)
            if enforced is not None and enforced.enforced_by not in (None, CHAIN):
                yield from need(base + ("policy", rule, "enforced_by"), f"system (or '{CHAIN}')",
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

    for tid, threat in s.threats.items():
        for i, ia in enumerate(threat.initial_access):
            for j, target in enumerate(ia.targets):
                yield from need(("threats", tid, "initial_access", i, "targets", j), "person", target, people)

    for cid, det in s.controls.detection.items():
        for i, node in enumerate(det.watches):
            yield from need(("controls", "detection", cid, "watches", i), "person or system", node, nodes)
    for cid, mon in s.controls.outflow_monitoring.items():
        for i, wid in enumerate(mon.wallets or []):
            yield from need(("controls", "outflow_monitoring", cid, "wallets", i), "wallet", wid, wallets)


def _wallet_link(s: Scenario, path: PathT, own: str | None, ref: str) -> Iterator[tuple[PathT, str]]:
    if ref not in s.wallets:
        yield path, _missing("wallet", ref, s.wallets)
    elif ref == own:
        yield path, "a wallet cannot send to itself"
    elif own is not None and s.wallets[ref].asset != s.wallets[own].asset:
        yield path, f"wallet {ref!r} holds {s.wallets[ref].asset}, not {s.wallets[own].asset}"


def scenario_warnings(s: Scenario) -> Iterator[str]:
    """Yield warnings: flows that drain a wallet within the horizon, targets immune to their technique."""
    yield from _flow_warnings(s)
    for tid, threat in s.threats.items():
        for i, ia in enumerate(threat.initial_access):
            immune = [p for p in ia.targets if p in s.people and s.people[p].exposure.get(ia.technique, 0) == 0]
            if immune:
                yield (f"threats.{tid}.initial_access[{i}]: {', '.join(immune)} ha{'s' if len(immune) == 1 else 've'} "
                       f"no exposure to {ia.technique!r} and will never fall for it (a typo in 'exposure'?)")


def _flow_warnings(s: Scenario) -> Iterator[str]:
    horizon = s.settings.horizon_days
    for wid, w in s.wallets.items():
        if w.flows is None:
            continue
        net = w.flows.withdrawals_per_day - w.flows.deposits_per_day
        if net <= 0:
            continue
        reserve = w.balance + sum(
            s.wallets[src].balance for src in _sources(s, wid) if src in s.wallets
        )
        if net * horizon > reserve:
            days = reserve / net
            yield (f"wallets.{wid}.flows: net outflow {net:g}/day empties {wid} and its top-up sources "
                   f"in about {days:.0f} days, within the {horizon:g}-day horizon; customers will wait")


def _sources(s: Scenario, wid: str) -> Iterator[str]:
    seen = {wid}
    w = s.wallets[wid]
    while w.topup is not None and w.topup.source not in seen and w.topup.source in s.wallets:
        seen.add(w.topup.source)
        yield w.topup.source
        w = s.wallets[w.topup.source]
