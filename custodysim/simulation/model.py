"""A scenario compiled for simulation: ids resolved, rules flattened, lookups precomputed.

The spec (:mod:`custodysim.scenario.schema`) is what a person wrote; this is what the engine reads thousands of
times a second. It is built once per variant and shared, read-only, by all of that variant's trials.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from functools import cached_property

from custodysim.scenario.distributions import Distribution
from custodysim.scenario.measures import effective
from custodysim.scenario.schema import (
    EXTERNAL,
    Delay,
    Flows,
    KeyLoss,
    Limit,
    Notification,
    RollingLimit,
    Scenario,
    TopUp,
)

DAY_HOURS = 24.0
VIRTUAL_EXCHANGE = "(the exchange)"
"""The organisation that raises alarms about wallets when no organisation is of kind ``exchange``."""


@dataclass(frozen=True)
class SignerModel:
    """One key of a wallet, resolved."""

    index: int
    id: str
    holder: str | None
    key_store: str
    views_through: tuple[str, ...]
    exportable: bool
    loss_per_day: float = 0.0  # how often the key is lost (0: never)
    recovery_days: float = math.inf  # how long until a lost key is restored (infinity: never)
    unrecoverable: float = 0.0  # the share of losses nothing restores


@dataclass(frozen=True)
class Rule:
    """A policy rule: its size (amount, or days for a delay) and who enforces it."""

    kind: str  # per_transfer_limit | daily_limit | rolling_limit | whitelist | delay | no_logic_changes
    size: float
    enforcer: str | None  # a system id, CHAIN, GUARD, or None (nobody)
    applies_to: str = "all"  # all | transfers | admin (takeovers)
    window: float = 0.0  # a rolling limit's window, in days


@dataclass(frozen=True)
class Monitor:
    """Outflow monitoring as it applies to one wallet."""

    id: str
    probability: float
    delay_hours: Distribution
    min_amount_usd: float


@dataclass(frozen=True)
class WalletModel:
    """A wallet with everything the engine needs about it."""

    id: str
    asset: str
    price_usd: float
    balance: float
    threshold: int  # keys in a quorum (with groups, the sum of their thresholds)
    signers: tuple[SignerModel, ...]
    groups: tuple[tuple[int, frozenset[int]], ...]  # (threshold, signer indices): every group must sign
    pipeline: frozenset[str]
    requesters: frozenset[str]
    rules: tuple[Rule, ...]
    monitors: tuple[Monitor, ...]
    flows: Flows | None
    topup: TopUp | None
    sweep_to: str | None
    account: str  # the address it shares with the wallets of its other assets (its own id if none)

    @cached_property
    def operational_quorum(self) -> tuple[SignerModel, ...]:
        """Return the signers asked to approve a legitimate transfer: the first ``threshold`` listed of each group."""
        if len(self.groups) == 1:
            return self.signers[: self.threshold]
        chosen = {i for need, members in self.groups for i in sorted(members)[:need]}
        return tuple(s for s in self.signers if s.index in chosen)

    @cached_property
    def contact_nodes(self) -> frozenset[str]:
        """Return the nodes that act on the wallet's transfers: its pipeline and its requesters."""
        return self.pipeline | self.requesters

    @cached_property
    def flow_rates(self) -> tuple[float, float, float, float]:
        """Return (withdrawals per day, deposits per day, USD price, cap) of a wallet with customer flows."""
        assert self.flows is not None
        cap = self.topup.cap if self.topup is not None else math.inf
        return self.flows.withdrawals_per_day, self.flows.deposits_per_day, self.price_usd, cap

    @cached_property
    def legit_transfer_limit(self) -> float:
        """Return the per-transfer limit legitimate transfers respect (infinity if none is enforced)."""
        return min((r.size for r in self.rules if r.kind == "per_transfer_limit" and r.enforcer), default=math.inf)

    @cached_property
    def enforcers(self) -> frozenset[str | None]:
        """Return the components that enforce the wallet's rules (an attacker's quorum leaves them out if it can)."""
        return frozenset(r.enforcer for r in self.rules)

    @cached_property
    def rolling(self) -> bool:
        """Whether the wallet has a rolling limit (whose window counts the attacker's outflows)."""
        return any(r.kind == "rolling_limit" for r in self.rules)

    @cached_property
    def legit_delay_days(self) -> float:
        """Return the time-lock every legitimate transfer waits (0 if none is enforced)."""
        return max((r.size for r in self.rules if r.kind == "delay" and r.enforcer and r.applies_to != "admin"),
                   default=0.0)


@dataclass(frozen=True)
class TransferModel:
    """A recurring legitimate transfer."""

    source: str
    dest: str | None
    amount: float
    every_days: float
    first_day: float
    signing_hours: float


@dataclass(frozen=True)
class EdgeModel:
    """An access edge: attempt ``to`` once from ``source`` (once ``opened_by`` has acted, if given)."""

    source: str
    to: str
    technique: str
    stream: str
    p_success: float
    time_days: Distribution
    opened_by: str | None = None


@dataclass(frozen=True)
class EntryModel:
    """One initial-access attempt on one person, part of a lure sent to several (``lure`` names it)."""

    stream: str
    person: str
    technique: str
    p_fall: float
    delay_days: Distribution
    lure: str
    common_mode: float  # the share of campaigns in which one draw decides every target's fall to this lure


@dataclass(frozen=True)
class StrikeModel:
    """How a threat's campaigns strike (see :class:`~custodysim.scenario.schema.Strike`)."""

    aim: str | frozenset[str]  # "largest", "first", or the wallets aimed at
    wait_until_ready: bool
    max_wait_days: float
    give_up: bool  # after max_wait_days without being ready: never strike (else fire at the next chance)
    once: bool


@dataclass(frozen=True)
class ThreatModel:
    """An attacker profile."""

    id: str
    campaigns_per_horizon: float
    forced_days: tuple[float, ...]  # campaigns that start on these days in every trial, before the Poisson ones
    skill: float
    entries: tuple[EntryModel, ...]
    tampering: str
    drain_interval_days: float
    strike: StrikeModel


@dataclass(frozen=True)
class CompiledScenario:
    """The read-only simulation view of one variant."""

    name: str
    horizon: float
    max_campaigns: int
    assets: dict[str, float]
    wallets: dict[str, WalletModel]
    transfers: tuple[TransferModel, ...]
    threats: tuple[ThreatModel, ...]
    out_edges: dict[str, tuple[EdgeModel, ...]]
    devices: dict[str, tuple[str, ...]]
    detectors: dict[str, tuple[tuple[str, Distribution], ...]]
    verification: dict[str, tuple[str | None, float]]  # person -> (independent device, probability)
    insiders: dict[str, float]  # person -> acts per horizon
    key_holdings: dict[str, tuple[tuple[str, int], ...]]  # key store -> (wallet, how many of its keys are there)
    pipeline_of: dict[str, tuple[str, ...]]  # component -> wallets it can tamper with
    requester_of: dict[str, tuple[str, ...]]  # node -> wallets it can request transfers from
    freeze_delay_hours: Distribution
    revoke_delay_hours: Distribution
    key_rotation_hours: Distribution
    recovered_fraction: float
    node_org: dict[str, str]  # person or system -> its organisation
    exchange_orgs: frozenset[str]  # the organisations that are the exchange (they raise alarms about wallets)
    notified: dict[str, tuple[Distribution, float] | None]  # organisation -> (hours until told, finds) or never
    verification_common_mode: float
    price_paths: dict[str, tuple[tuple[float, float], ...]] = field(default_factory=dict)

    @cached_property
    def accounts(self) -> dict[str, tuple[WalletModel, ...]]:
        """Return the wallets of each account (one per asset it holds; a wallet without one is its own)."""
        out: dict[str, list[WalletModel]] = defaultdict(list)
        for w in self.wallets.values():
            out[w.account].append(w)
        return {account: tuple(ws) for account, ws in out.items()}

    @cached_property
    def shared_accounts(self) -> frozenset[str]:
        """Return the accounts that hold several assets (several wallets)."""
        return frozenset(account for account, ws in self.accounts.items() if len(ws) > 1)

    @cached_property
    def losing_keys(self) -> tuple[WalletModel, ...]:
        """Return the wallets whose keys can be lost (see :mod:`~custodysim.simulation.keyloss`)."""
        return tuple(w for w in self.wallets.values() if any(sg.loss_per_day > 0 for sg in w.signers))

    @cached_property
    def capability_nodes(self) -> frozenset[str]:
        """Return the nodes whose compromise lets an attacker act on a wallet (keys, pipeline, requests)."""
        return frozenset(self.key_holdings) | frozenset(self.pipeline_of) | frozenset(self.requester_of)

    @cached_property
    def attack_surface(self) -> tuple[object, ...]:
        """Return everything campaign sampling reads: variants with equal surfaces sample equal campaigns."""
        return (self.horizon, self.max_campaigns, self.threats, tuple(sorted(self.out_edges.items())),
                tuple(sorted(self.devices.items())), tuple(sorted(self.insiders.items())))

    @cached_property
    def harmless_surface(self) -> tuple[object, ...]:
        """Return everything :func:`~custodysim.simulation.engine.replay_harmless` reads besides the campaigns.

        Variants with equal attack surfaces and equal harmless surfaces replay a harmless trial alike.
        """
        return (self.horizon, self.capability_nodes, tuple(sorted(self.detectors.items())), self.revoke_delay_hours,
                tuple(sorted(self.node_org.items())), self.exchange_orgs, tuple(sorted(self.notified.items())))

    @cached_property
    def door_openers(self) -> frozenset[str]:
        """Return the people whose insider act opens an access edge."""
        return frozenset(e.opened_by for edges in self.out_edges.values() for e in edges if e.opened_by)

    @cached_property
    def exchange(self) -> str:
        """Return the organisation that raises the alarms about wallets (the first of kind exchange)."""
        return min(self.exchange_orgs)

    def price_at(self, asset: str, day: float) -> float:
        """Return the asset's USD price in force on ``day`` (its price path, else its constant price)."""
        price = self.assets[asset]
        for start, step in self.price_paths.get(asset, ()):
            if start <= day:
                price = step
        return price


def _key_loss(spec: KeyLoss | None) -> tuple[float, float, float]:
    """Return a key's (losses per day, days to recover, unrecoverable share) from its ``key_loss``."""
    if spec is None:
        return 0.0, math.inf, 0.0
    recovery = math.inf if spec.recovery_days is None else spec.recovery_days
    return spec.rate_per_year / 365.0, recovery, spec.unrecoverable_probability


def compile_scenario(spec: Scenario) -> CompiledScenario:
    """Build the simulation view of a validated scenario (its library measures written out first)."""
    s = effective(spec)
    cosigners: dict[str, set[str]] = defaultdict(set)
    monitors: dict[str, list[Monitor]] = defaultdict(list)
    for mid, mon in s.controls.outflow_monitoring.items():
        for wid in mon.wallets if mon.wallets is not None else list(s.wallets):
            monitors[wid].append(Monitor(mid, mon.probability, mon.delay_hours, mon.min_amount_usd))

    wallets: dict[str, WalletModel] = {}
    key_holdings: dict[str, dict[str, int]] = defaultdict(dict)
    pipeline_of: dict[str, list[str]] = defaultdict(list)
    requester_of: dict[str, list[str]] = defaultdict(list)
    for wid, w in s.wallets.items():
        signers = tuple(
            SignerModel(i, sg.id, sg.holder, sg.key_store,
                        tuple(sg.views_through if sg.views_through is not None else w.pipeline),
                        s.systems[sg.key_store].keys_exportable, *_key_loss(sg.key_loss or w.custody.key_loss))
            for i, sg in enumerate(w.custody.signers)
        )
        index = {sg.id: sg.index for sg in signers}
        for sg in signers:
            stored = key_holdings[sg.key_store]
            stored[wid] = stored.get(wid, 0) + 1
            cosigners[wid].add(sg.key_store)
        rules: list[Rule] = []
        p = w.policy
        for where, rule in p.rules():
            kind, size, window = str(where[0]), 0.0, 0.0
            if isinstance(rule, RollingLimit):
                kind, size, window = "rolling_limit", rule.amount, rule.hours / DAY_HOURS
            elif isinstance(rule, Limit):
                size = rule.amount
            elif isinstance(rule, Delay):
                size = rule.hours / DAY_HOURS
            # a rule against logic changes checks administrative actions only (its `all` is theirs)
            applies = "admin" if kind == "no_logic_changes" else rule.applies_to
            rules.append(Rule(kind, size, rule.enforced_by, applies, window))
        for comp in w.pipeline:
            pipeline_of[comp].append(wid)
        for req in w.requesters:
            requester_of[req].append(wid)
        sweep = w.sweep_to if w.sweep_to is not None else (w.topup.source if w.topup else None)
        wallets[wid] = WalletModel(
            wid, w.asset, s.assets[w.asset].price_usd, w.balance, w.custody.quorum_size, signers,
            tuple((need, frozenset(index[i] for i in members)) for need, members in w.custody.quorum),
            frozenset(w.pipeline), frozenset(w.requesters), tuple(rules), tuple(monitors[wid]),
            w.flows, w.topup, sweep, w.account if w.account is not None else wid,
        )

    out_edges: dict[str, list[EdgeModel]] = defaultdict(list)
    for e in s.access:
        out_edges[e.from_node].append(
            EdgeModel(e.from_node, e.to, e.technique, f"edge:{e.from_node}>{e.to}:{e.technique}", e.p_success,
                      e.time_days, e.opened_by)
        )
    detectors: dict[str, list[tuple[str, Distribution]]] = defaultdict(list)
    for cid, det in s.controls.detection.items():
        for node in det.watches:
            detectors[node].append((cid, det.time_to_detect_days))

    horizon = s.settings.horizon_days
    threats = tuple(
        ThreatModel(
            tid, t.campaigns_per_year * horizon / 365.0, tuple(t.forced_campaign_days), t.skill,
            tuple(
                EntryModel(f"entry:{tid}:{ia.technique}:{person}", person, ia.technique,
                           s.people[person].exposure.get(ia.technique, 0.0), ia.delay_days,
                           f"lure:{tid}:{k}", ia.common_mode)
                for k, ia in enumerate(t.initial_access) for person in ia.targets
            ),
            t.tampering, t.drain_interval_minutes / (60 * DAY_HOURS),
            StrikeModel(t.strike.aim if isinstance(t.strike.aim, str) else frozenset(t.strike.aim),
                        t.strike.wait_until_ready, t.strike.max_wait_days, t.strike.after_max_wait == "give_up",
                        t.strike.once),
        )
        for tid, t in s.threats.items()
    )
    exchange_orgs = frozenset(oid for oid, o in s.organisations.items() if o.kind == "exchange")
    notified: dict[str, tuple[Distribution, float] | None] = {
        oid: None if o.notified is None else (o.notified.after_hours, o.notified.finds_probability)
        for oid, o in s.organisations.items()}
    if not exchange_orgs:  # the wallets' owner still raises alarms about them, with no people or systems
        exchange_orgs = frozenset({VIRTUAL_EXCHANGE})
        notified[VIRTUAL_EXCHANGE] = (Notification().after_hours, Notification().finds_probability)
    transfers = tuple(
        TransferModel(t.from_wallet, None if t.to == EXTERNAL else t.to, t.amount, t.every_days,
                      t.first_day, t.signing_hours)
        for t in s.operations.transfers
    )
    return CompiledScenario(
        name=s.name,
        horizon=horizon,
        max_campaigns=s.settings.max_campaigns_per_threat,
        assets={a: spec.price_usd for a, spec in s.assets.items()},
        wallets=wallets,
        transfers=transfers,
        threats=threats,
        out_edges={k: tuple(v) for k, v in out_edges.items()},
        devices={pid: tuple(p.devices) for pid, p in s.people.items()},
        detectors={k: tuple(v) for k, v in detectors.items()},
        verification={pid: (p.verifies_on, p.verification_probability) for pid, p in s.people.items()},
        insiders={pid: p.insider_rate_per_year * horizon / 365.0 for pid, p in s.people.items()
                  if p.insider_rate_per_year > 0},
        key_holdings={k: tuple(v.items()) for k, v in key_holdings.items()},
        pipeline_of={k: tuple(v) for k, v in pipeline_of.items()},
        requester_of={k: tuple(v) for k, v in requester_of.items()},
        freeze_delay_hours=s.controls.response.freeze_delay_hours,
        revoke_delay_hours=s.controls.response.revoke_delay_hours,
        key_rotation_hours=s.controls.response.key_rotation_hours,
        recovered_fraction=s.controls.response.recovered_fraction,
        node_org={**{pid: p.organisation for pid, p in s.people.items()},
                  **{sid: x.owner for sid, x in s.systems.items()}},
        exchange_orgs=exchange_orgs,
        notified=notified,
        verification_common_mode=s.controls.verification.common_mode,
        price_paths={a: tuple(spec.price_path) for a, spec in s.assets.items() if spec.price_path},
    )
