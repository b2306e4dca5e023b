"""Library controls switched on by name (``controls.measures``), turned into the scenario fields they stand for.

A measure is shorthand: ``endpoint_detection: {watches: [laptop]}`` is a detection control with the
library's time to detect; ``security_awareness_training`` lowers exposures; ``independent_policy_engine``
adds policy rules. :func:`effective` writes them out, so the engine reads one plain scenario. The spec a
person wrote keeps its measures (reports list them); the effective spec has none left, so writing it out
twice changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterator

from custodysim.errors import PathT
from custodysim.scenario import library
from custodysim.scenario.schema import (
    CHAIN,
    Delay,
    Detection,
    Enforced,
    IndependentPolicyEngine,
    Limit,
    Measures,
    OutflowMonitor,
    Scenario,
    ScheduledTransfer,
    TimeDelayWithCancellation,
    Wallet,
    Whitelist,
)

CREDENTIAL_TECHNIQUES = frozenset({"credential_reuse", "cloud_console_takeover"})
"""Access techniques that phishing-resistant MFA defeats."""
SESSION_TECHNIQUES = frozenset({"session_cookie_theft"})
"""Access techniques that device-bound, short-lived sessions defeat."""


def effective(s: Scenario) -> Scenario:
    """Return ``s`` with its measures written out as plain fields (``s`` itself when it has none)."""
    m = s.controls.measures
    if not m.switched_on():
        return s
    people = dict(s.people)
    access = list(s.access)
    wallets = dict(s.wallets)
    detection = dict(s.controls.detection)
    outflow = dict(s.controls.outflow_monitoring)

    if m.security_awareness_training is not None:
        t = m.security_awareness_training
        for pid in trained_people(s):
            person = people[pid]
            exposure = {k: p * t.factor if is_social_engineering(k) else p for k, p in person.exposure.items()}
            people[pid] = person.model_copy(update={"exposure": exposure})
    edge_factors = [(m.phishing_resistant_mfa, CREDENTIAL_TECHNIQUES),
                    (m.device_bound_sessions, SESSION_TECHNIQUES)]
    for guard, techniques in edge_factors:
        if guard is None:
            continue
        for i, e in enumerate(access):
            if e.technique in techniques and (guard.systems is None or e.to in guard.systems):
                access[i] = e.model_copy(update={"p_success": e.p_success * guard.factor})
    if m.segregated_vendor_access is not None:
        factor = m.segregated_vendor_access.factor
        for i in vendor_crossings(s):
            access[i] = access[i].model_copy(update={"p_success": access[i].p_success * factor})
    if m.endpoint_detection is not None:
        edr = m.endpoint_detection
        detection["endpoint_detection"] = Detection(watches=edr.watches, time_to_detect_days=edr.time_to_detect_days)
    for name, watch in (("outflow_monitoring", m.outflow_monitoring), ("balance_alerts", m.balance_alerts)):
        if watch is not None:
            outflow[name] = OutflowMonitor(wallets=watch.wallets, probability=watch.probability,
                                           delay_hours=watch.delay_hours, min_amount_usd=watch.min_amount_usd)
    if m.independent_verification is not None:
        v = m.independent_verification
        for pid, device in v.devices.items():
            people[pid] = people[pid].model_copy(update={"verifies_on": device,
                                                         "verification_probability": v.probability})
    for policy in (m.independent_policy_engine, m.time_delay_with_cancellation):
        if policy is not None:
            rules = policy_rules(policy)
            for wid in policy.wallets:
                w = wallets[wid]
                wallets[wid] = w.model_copy(update={"policy": w.policy.model_copy(update=rules)})
    transfers = s.operations.transfers
    if m.wallet_splitting is not None:  # last: the parts copy the wallet as the other measures left it
        split = m.wallet_splitting
        for wid in split.wallets:
            transfers = _split_wallet(wallets, outflow, transfers, wid, split.parts)

    controls = s.controls.model_copy(update={"detection": detection, "outflow_monitoring": outflow,
                                             "measures": Measures()})
    operations = s.operations.model_copy(update={"transfers": transfers})
    return s.model_copy(update={"people": people, "access": access, "wallets": wallets, "controls": controls,
                                "operations": operations})


def part_ids(wallet: str, parts: int) -> list[str]:
    """Return the ids of a split wallet's parts: the wallet's own, then ``<id>_2``, ``<id>_3``, ..."""
    return [wallet] + [f"{wallet}_{k}" for k in range(2, parts + 1)]


def _split_wallet(wallets: dict[str, Wallet], outflow: dict[str, OutflowMonitor],
                  transfers: list[ScheduledTransfer], wid: str, parts: int) -> list[ScheduledTransfer]:
    """Split wallet ``wid`` into ``parts`` equal wallets; return the transfers, rotated between the parts.

    Each scheduled transfer out of the wallet becomes one per part, each made every ``parts`` periods and
    offset by one period from the last, so the same transfers leave on the same days. Transfers into
    the wallet and top-ups it funds go on using its first part; monitors watching it watch every part.
    """
    ids = part_ids(wid, parts)
    w = wallets[wid]
    share = w.balance / parts
    for pid in ids:
        wallets[pid] = w.model_copy(update={"balance": share})
    for mid, mon in outflow.items():
        if mon.wallets is not None and wid in mon.wallets:
            outflow[mid] = mon.model_copy(update={"wallets": [*mon.wallets, *ids[1:]]})
    out: list[ScheduledTransfer] = []
    for t in transfers:
        if t.from_wallet != wid:
            out.append(t)
            continue
        out += [t.model_copy(update={"from_wallet": pid, "every_days": t.every_days * parts,
                                     "first_day": t.first_day + k * t.every_days})
                for k, pid in enumerate(ids)]
    return out


def policy_rules(measure: IndependentPolicyEngine | TimeDelayWithCancellation) -> dict[str, Enforced]:
    """Return the policy rules a policy measure puts on each of its wallets, by ``Policy`` field."""
    if isinstance(measure, TimeDelayWithCancellation):
        return {"delay": Delay(hours=measure.hours, enforced_by=measure.enforced_by, applies_to=measure.applies_to)}
    rules: dict[str, Enforced] = {}
    if measure.whitelist:
        rules["whitelist"] = Whitelist(enforced_by=measure.enforced_by)
    if measure.per_transfer_limit is not None:
        rules["per_transfer_limit"] = Limit(amount=measure.per_transfer_limit, enforced_by=measure.enforced_by)
    if measure.daily_limit is not None:
        rules["daily_limit"] = Limit(amount=measure.daily_limit, enforced_by=measure.enforced_by)
    return rules


def is_social_engineering(technique: str) -> bool:
    """Whether training acts on ``technique``: every technique except the library's technical ones."""
    found = library.entry(technique)
    return found is None or found.social_engineering or found.stage != "initial_access"


def trained_people(s: Scenario) -> list[str]:
    """Return the people security-awareness training covers."""
    t = s.controls.measures.security_awareness_training
    if t is None:
        return []
    if t.people is None and t.organisations is None:
        return list(s.people)
    named = set(t.people or ())
    orgs = set(t.organisations or ())
    return [pid for pid, p in s.people.items() if pid in named or p.organisation in orgs]


def signing_path(s: Scenario) -> set[str]:
    """Return the nodes that act on transfers: key stores, pipeline components and requesters."""
    nodes: set[str] = set()
    for w in s.wallets.values():
        nodes.update(signer.key_store for signer in w.custody.signers)
        nodes.update(w.pipeline)
        nodes.update(w.requesters)
    return nodes


def vendor_crossings(s: Scenario) -> list[int]:
    """Return the indices of access edges from a vendor's everyday environment into the signing path.

    A vendor is an organisation listed by the measure or, by default, every organisation that is not an
    exchange. An edge crosses when it leads from a vendor's person or system outside the signing path to
    a node in it, or to a node the exchange owns.
    """
    measure = s.controls.measures.segregated_vendor_access
    if measure is None:
        return []
    vendors = (set(measure.organisations) if measure.organisations is not None
               else {oid for oid, o in s.organisations.items() if o.kind != "exchange"})
    exchange = {oid for oid, o in s.organisations.items() if o.kind == "exchange"}
    owner = {pid: p.organisation for pid, p in s.people.items()} | {sid: x.owner for sid, x in s.systems.items()}
    path = signing_path(s)
    return [i for i, e in enumerate(s.access)
            if owner.get(e.from_node) in vendors and e.from_node not in path
            and (e.to in path or owner.get(e.to) in exchange)]


def check_measures(s: Scenario) -> Iterator[tuple[PathT, str]]:
    """Yield (path, message) for each measure that names an unknown id or clashes with a written control."""
    m = s.controls.measures
    base: PathT = ("controls", "measures")
    kinds = {"person": set(s.people), "organisation": set(s.organisations), "system": set(s.systems),
             "wallet": set(s.wallets), "person or system": set(s.people) | set(s.systems)}

    def need(path: PathT, kind: str, ids: list[str] | None) -> Iterator[tuple[PathT, str]]:
        for i, ref in enumerate(ids or ()):
            if ref not in kinds[kind]:
                yield (*path, i), f"no {kind} with id {ref!r}"

    if m.security_awareness_training is not None:
        yield from need((*base, "security_awareness_training", "people"), "person",
                        m.security_awareness_training.people)
        yield from need((*base, "security_awareness_training", "organisations"), "organisation",
                        m.security_awareness_training.organisations)
    for name in ("phishing_resistant_mfa", "device_bound_sessions"):
        measure = getattr(m, name)
        if measure is not None:
            yield from need((*base, name, "systems"), "system", measure.systems)
    if m.segregated_vendor_access is not None:
        yield from need((*base, "segregated_vendor_access", "organisations"), "organisation",
                        m.segregated_vendor_access.organisations)
    if m.endpoint_detection is not None:
        yield from need((*base, "endpoint_detection", "watches"), "person or system", m.endpoint_detection.watches)
        if "endpoint_detection" in s.controls.detection:
            yield ((*base, "endpoint_detection"), "controls.detection already has a control called "
                   "'endpoint_detection'; rename that one or drop the measure")
    for name in ("outflow_monitoring", "balance_alerts"):
        watch = getattr(m, name)
        if watch is not None:
            yield from need((*base, name, "wallets"), "wallet", watch.wallets)
            if name in s.controls.outflow_monitoring:
                yield ((*base, name), f"controls.outflow_monitoring already has a monitor called {name!r}; "
                       "rename that one or drop the measure")
    if m.wallet_splitting is not None:
        for i, wid in enumerate(m.wallet_splitting.wallets):
            at: PathT = (*base, "wallet_splitting", "wallets", i)
            w = s.wallets.get(wid)
            if w is None:
                yield at, f"no wallet with id {wid!r}"
                continue
            if w.flows is not None or w.topup is not None:
                yield at, (f"wallet {wid!r} has customer flows or a top-up: split a wallet without them "
                              "(a hot wallet's float is bounded by its cap instead)")
            taken = [p for p in part_ids(wid, m.wallet_splitting.parts)[1:] if p in s.wallets or p in s.systems
                     or p in s.people]
            if taken:
                yield at, f"the parts of {wid!r} would be called {', '.join(taken)}, which is taken; rename it"
    if m.independent_verification is not None:
        for pid, device in m.independent_verification.devices.items():
            where: PathT = (*base, "independent_verification", "devices", pid)
            if pid not in s.people:
                yield where, f"no person with id {pid!r}"
            if device not in s.systems:
                yield where, f"no system with id {device!r}"
    for name in ("independent_policy_engine", "time_delay_with_cancellation"):
        measure = getattr(m, name)
        if measure is None:
            continue
        if measure.enforced_by != CHAIN and measure.enforced_by not in s.systems:
            yield (*base, name, "enforced_by"), f"no system with id {measure.enforced_by!r} (or 'chain')"
        for i, wid in enumerate(measure.wallets):
            w = s.wallets.get(wid)
            if w is None:
                yield (*base, name, "wallets", i), f"no wallet with id {wid!r}"
                continue
            taken = [r for r in policy_rules(measure) if getattr(w.policy, r) is not None]
            if taken:
                yield ((*base, name, "wallets", i),
                       f"wallet {wid!r} already has a {', '.join(taken)} rule; a wallet has one rule of each "
                       "kind: drop it there or leave the wallet out of the measure")


__all__ = ["check_measures", "effective", "is_social_engineering", "part_ids", "policy_rules", "signing_path",
           "trained_people", "vendor_crossings"]
