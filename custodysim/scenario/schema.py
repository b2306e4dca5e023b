"""The scenario schema: immutable, validated specs of a custody architecture and its threats.

Every mapping keyed by id in the YAML (``wallets``, ``people``, ...) is a ``dict`` here, so a
validation error's location is the same path a person sees in the file. Units are in the field names
(``_days``, ``_hours``, ``_usd``); amounts without a unit are in the wallet's own asset.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Iterator
from typing import Annotated, Any, Literal, Union

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, Strict, model_validator

from custodysim.scenario import library
from custodysim.scenario.distributions import Distribution, as_distribution


def _finite_draws(dist: Distribution) -> Distribution:
    """Refuse a distribution whose mean or largest draws overflow a float (a lognormal's p90 far above median)."""
    try:
        finite = all(math.isfinite(x) for x in (dist.mean(), dist.sample(0.0), dist.sample(0.5),
                                                 dist.sample(1.0 - 2.0**-53)))
    except OverflowError:
        finite = False
    if not finite:
        raise ValueError("its largest draws (or its mean) overflow to infinity; use smaller values, "
                         "or for a lognormal a p90 closer to the median")
    return dist


Dist = Annotated[
    Distribution,
    # A bare number stands for a fixed value; the JSON Schema says so too.
    BeforeValidator(as_distribution, json_schema_input_type=Union[Annotated[float, Field(ge=0)], Distribution]),  # noqa: UP007
    AfterValidator(_finite_draws),
]
Probability = Annotated[float, Field(ge=0, le=1)]
Amount = Annotated[float, Field(ge=0)]
AnnualCost = Annotated[float, Field(ge=0, le=1e13)]
"""A control's cost in USD a year (licences, staff time, hardware): at most USD 10 trillion."""
MAX_USD = 1e15
"""The largest USD value an amount, a price or their product may stand for (ten times the world's yearly
output): beyond it, sums over a year of trials would lose their precision and, far beyond, overflow."""
Usd = Annotated[float, Field(ge=0, le=MAX_USD)]
"""A USD amount (a deductible, a limit, capital): at most :data:`MAX_USD`."""
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")


def _check_id(value: str) -> str:
    if not _ID.fullmatch(value) or value.isdigit():
        raise ValueError("an id uses letters, digits, '_' and '-' (no dots or spaces), starts with a letter "
                         "or digit and is not a plain number, so that variant paths can name it")
    return value


Id = Annotated[str, Field(min_length=1, max_length=128), AfterValidator(_check_id)]
"""An id of a wallet, person, system, ...: safe in variant paths and folder names."""

MAX_NAME = 200
"""Most characters in a technique's or a role's name (it names random streams and appears in stories)."""
Name = Annotated[str, Field(max_length=MAX_NAME)]
MAX_TEXT = 5_000
"""Most characters in a description (the reports show it)."""
Text = Annotated[str, Field(max_length=MAX_TEXT)]
MAX_FIELD_PATH = 1_000
"""Most characters in a field path (a variant's ``set``, ``uncertainty``): ids joined by dots."""
FieldPath = Annotated[str, Field(min_length=1, max_length=MAX_FIELD_PATH)]

MAX_ENTITIES = 2_000
"""Most assets, organisations, people, systems, wallets or threats in one scenario (a whole exchange fits)."""
MAX_EDGES = 20_000
"""Most access edges in one scenario: bounds the attack graph each campaign spreads over."""
MAX_VARIANTS = 200
"""Most variants in one scenario: each runs every trial."""
MAX_UNCERTAIN = 100
"""Most inputs in ``uncertainty``: each gives two derived variants in ``custodysim attribution``."""

CHAIN = "chain"
"""The ``enforced_by`` value of a rule inside a smart-contract wallet's own logic: it binds every transfer
until a takeover replaces that logic (it does not check the takeover transaction itself)."""
GUARD = "guard"
"""The ``enforced_by`` value of a rule kept by an on-chain guard or module: it checks every transaction
before it executes, a takeover included, and cannot be compromised off chain."""
EXTERNAL = "external"
"""The ``to`` value of a scheduled transfer that leaves the exchange (to a bank, OTC desk, ...)."""
TOPUP_RETRY_DAYS = 1.0
"""After a top-up request that sent nothing (an empty source), how long a hot wallet waits to ask again."""


class Spec(BaseModel):
    """Base of every spec: immutable, unknown keys refused, no NaN or infinity, strict types.

    Strict: a number field takes numbers only (YAML's ``yes``, ``on`` or ``true`` is refused, not read as 1),
    a text field text only.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False, validate_default=True, strict=True)


def _prior(name: str, field: str) -> Any:
    """Return the library's default of ``field`` for entry ``name`` (a field's default, read at import)."""
    return library.default_of(name, field)


class Settings(Spec):
    """Run settings: how long a trial lasts, how many trials, which seed."""

    horizon_days: float = Field(365.0, gt=0, le=3650)
    trials: int = Field(2000, ge=1, le=10_000_000)
    seed: int = Field(0, ge=0, lt=2**63)
    max_campaigns_per_threat: int = Field(50, ge=1, le=10_000)


class Asset(Spec):
    """An asset and its USD price; ``price_path`` steps the price at the given days."""

    price_usd: float = Field(gt=0, le=MAX_USD)
    # a [day, price] list is read as a tuple (not strict), its two numbers stay strictly numbers
    price_path: list[Annotated[tuple[Annotated[float, Strict(), Field(ge=0)],
                                     Annotated[float, Strict(), Field(gt=0, le=MAX_USD)]], Strict(False)]] = []

    @model_validator(mode="after")
    def _days_ascending(self) -> Asset:
        days = [day for day, _ in self.price_path]
        if days != sorted(days):
            raise ValueError("price_path steps must be in order of day")
        return self

    @property
    def highest_price(self) -> float:
        """Return the highest USD price the asset reaches (at the start or along its price path)."""
        return max([self.price_usd, *(price for _, price in self.price_path)])

    def price_at(self, day: float) -> float:
        """Return the USD price in force on ``day``."""
        price = self.price_usd
        for start, step_price in self.price_path:
            if start <= day:
                price = step_price
        return price


OrganisationKind = Literal[
    "exchange", "wallet_vendor", "custody_provider", "cloud", "staking_partner", "contractor", "other"
]


class Notification(Spec):
    """When an alarm raised elsewhere reaches an organisation, and whether its response finds the footholds.

    ``after_hours`` runs from an alarm on a campaign until the organisation is told; it then responds as
    to an alarm of its own (the exchange freezes, every organisation revokes the footholds it finds).
    """

    after_hours: Dist = _prior("organisation_notification", "after_hours")
    finds_probability: Probability = _prior("organisation_notification", "finds_probability")


class Organisation(Spec):
    """The exchange itself, or a vendor or contractor with access to its systems.

    ``notified`` says how another organisation's alarm reaches it (``null``: it is never told).
    """

    kind: OrganisationKind = "other"
    description: Text = ""
    notified: Notification | None = Notification()


def _library_exposures(value: Any) -> Any:
    """Replace each exposure given as ``default`` by the library's prior for that technique."""
    if not isinstance(value, dict):
        return value
    out = {}
    for technique, p in value.items():
        if p == library.DEFAULT:
            known = library.entry(technique) if isinstance(technique, str) else None
            if known is None or known.prior("exposure") is None:
                names = _exposure_techniques()
                close = difflib.get_close_matches(str(technique), names, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise ValueError(f"exposure to {technique!r} is 'default', but the library has no exposure for "
                                 f"it{hint}; library techniques: {', '.join(names)} (custodysim library)")
            p = known.default("exposure")
        out[technique] = p
    return out


def _exposure_techniques() -> list[str]:
    return [e.name for e in library.ENTRIES if e.prior("exposure") is not None]


def _library_insider_rate(value: Any) -> Any:
    return library.default_of("insider", "insider_rate_per_year") if value == library.DEFAULT else value


class Person(Spec):
    """Someone whose mistakes or intent can open a path: an employee or a vendor's contractor.

    An exposure or the insider rate may be ``default``: the library's prior (``custodysim library``).
    """

    organisation: Id
    role: Name = "staff"
    devices: list[Id] = []
    exposure: Annotated[
        dict[Name, Probability],
        BeforeValidator(_library_exposures,
                        json_schema_input_type=dict[str, Union[Probability, Literal["default"]]]),  # noqa: UP007
    ] = {}
    verifies_on: Id | None = None
    verification_probability: Probability = 0.9
    insider_rate_per_year: Annotated[
        float, Field(ge=0, le=100),
        BeforeValidator(_library_insider_rate,
                        json_schema_input_type=Union[Annotated[float, Field(ge=0, le=100)], Literal["default"]]),  # noqa: UP007
    ] = 0.0


SystemKind = Literal[
    "workstation", "server", "saas", "communication", "signing_interface", "hsm", "key_store",
    "policy_engine", "build_pipeline", "account", "hardware_wallet", "other",
]


class System(Spec):
    """A machine, service or account; it may hold keys, relay transfers or enforce a policy."""

    kind: SystemKind = "other"
    owner: Id
    exportable_keys: bool | None = None

    @property
    def keys_exportable(self) -> bool:
        """Whether a key held here can be copied out (a non-exportable HSM signs only while reached)."""
        if self.exportable_keys is not None:
            return self.exportable_keys
        return self.kind not in ("hsm", "hardware_wallet")


class KeyLoss(Spec):
    """How keys become unavailable (a device fails, a holder leaves, a backup is lost) and come back.

    Each key is lost at ``rate_per_year``, independently of the others. A lost key is restored after
    ``recovery_days`` (from its backup, or by a recovery ceremony), except for the share
    ``unrecoverable_probability`` of losses that nothing can undo (the backup went with it); without
    ``recovery_days`` a lost key is lost for good.
    """

    rate_per_year: float = Field(ge=0, le=100)
    recovery_days: float | None = Field(None, gt=0, le=3650)
    unrecoverable_probability: Probability = 0.0

    @model_validator(mode="after")
    def _recovery_named(self) -> KeyLoss:
        if self.recovery_days is None and "unrecoverable_probability" in self.model_fields_set:
            raise ValueError("unrecoverable_probability is the share of losses recovery cannot undo: "
                             "give recovery_days too (without it no lost key is ever recovered)")
        return self


class Signer(Spec):
    """One key (or MPC share) of a wallet: who approves with it, where it lives, how they see transfers.

    ``key_loss`` sets how this key is lost and recovered, in place of the custody's ``key_loss``.
    """

    id: Id
    holder: Id | None = None
    key_store: Id
    views_through: list[Id] | None = None
    key_loss: KeyLoss | None = None


class SignerGroup(Spec):
    """One group of a structured quorum: ``threshold`` of its ``signers`` (signer ids) must sign."""

    threshold: int = Field(ge=1, le=1000)
    signers: list[Id] = Field(min_length=1, max_length=1000)

    @model_validator(mode="after")
    def _group_possible(self) -> SignerGroup:
        if self.threshold > len(self.signers):
            raise ValueError(f"threshold {self.threshold} exceeds the group's {len(self.signers)} signers")
        dupes = sorted({i for i in self.signers if self.signers.count(i) > 1})
        if dupes:
            raise ValueError(f"a group names each signer once; repeated: {', '.join(dupes)}")
        return self


class Custody(Spec):
    """How a wallet signs: one key, an m-of-n multisig, or a t-of-n MPC.

    The quorum is ``threshold`` of ``signers``, or, with ``groups``, every group's own threshold of its
    signers at once ("3 of the exchange's 5 keys AND the custodian's key"). Legitimate transfers are
    signed by the first ``threshold`` signers listed (of each group). ``key_loss`` says how its keys are
    lost and recovered (a signer may say otherwise for its own key); without it keys are never lost.
    """

    scheme: Literal["single", "multisig", "mpc"] = "single"
    threshold: int = Field(1, ge=1, le=1000)
    signers: list[Signer] = Field(min_length=1, max_length=1000)
    groups: list[SignerGroup] | None = Field(None, min_length=1, max_length=1000)
    key_loss: KeyLoss | None = None

    @model_validator(mode="after")
    def _quorum_possible(self) -> Custody:
        if self.threshold > len(self.signers):
            raise ValueError(f"threshold {self.threshold} exceeds the {len(self.signers)} signers (m > n)")
        if self.scheme == "single" and (len(self.signers) != 1 or self.threshold != 1 or self.groups):
            raise ValueError("scheme 'single' takes exactly one signer and threshold 1, and no groups")
        ids = [s.id for s in self.signers]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"signer ids must be unique; repeated: {', '.join(dupes)}")
        if self.groups is not None:
            self._check_groups(ids)
        return self

    def _check_groups(self, ids: list[str]) -> None:
        if "threshold" in self.model_fields_set:
            raise ValueError("with groups, each group has its own threshold: remove the custody's threshold "
                             "(the quorum is every group's threshold at once; a variant that adds groups to "
                             "a plain m-of-n sets the whole custody)")
        grouped = [i for g in self.groups or () for i in g.signers]
        unknown = sorted(set(grouped) - set(ids))
        if unknown:
            raise ValueError(f"groups name signers the custody does not have: {', '.join(unknown)}; "
                             f"its signers: {', '.join(ids)}")
        twice = sorted({i for i in grouped if grouped.count(i) > 1})
        if twice:
            raise ValueError(f"a signer belongs to one group only; in several: {', '.join(twice)}")
        alone = [i for i in ids if i not in grouped]
        if alone:
            raise ValueError(f"every signer belongs to a group (a key outside every group never signs); "
                             f"in none: {', '.join(alone)}")

    @property
    def quorum(self) -> tuple[tuple[int, tuple[str, ...]], ...]:
        """Return the quorum as (threshold, signer ids) per group, all of which must sign."""
        if self.groups is None:
            return ((self.threshold, tuple(s.id for s in self.signers)),)
        return tuple((g.threshold, tuple(g.signers)) for g in self.groups)

    @property
    def quorum_size(self) -> int:
        """Return how many keys sign a transaction: the threshold, or the sum of the groups' thresholds."""
        return sum(threshold for threshold, _ in self.quorum)

    @property
    def operational_signers(self) -> list[Signer]:
        """Return the signers who approve a legitimate transfer: of each group, the first ``threshold`` listed.

        They are returned in the order of ``signers``.
        """
        chosen: set[str] = set()
        for threshold, members in self.quorum:
            chosen.update([s.id for s in self.signers if s.id in members][:threshold])
        return [s for s in self.signers if s.id in chosen]


Applies = Literal["all", "transfers", "admin"]
"""The transactions a rule checks: every one, transfers only, or administrative actions only (a change of
the wallet's logic, owners or signers: a takeover is one)."""


class Enforced(Spec):
    """A policy rule, the component that enforces it (a system id, ``chain``, or nobody), and its yearly cost."""

    enforced_by: Id | None = None
    annual_cost_usd: AnnualCost = 0.0
    applies_to: Applies = "all"


class Limit(Enforced):
    """An amount limit in the wallet's asset."""

    amount: Amount

    @model_validator(mode="after")
    def _caps_transfers(self) -> Limit:
        if self.applies_to == "admin":
            raise ValueError("a limit caps the amounts transfers move; an administrative action moves none: "
                             "applies_to is 'all' or 'transfers'")
        return self


class RollingLimit(Limit):
    """An amount limit over a rolling window: no ``hours``-long stretch of time sees more than ``amount`` go out."""

    hours: float = Field(gt=0, le=24 * 365)


class Whitelist(Enforced):
    """Destinations restricted to the exchange's own wallets and approved addresses."""


class Delay(Enforced):
    """A time lock: every transaction it applies to waits this long before broadcast, cancellable meanwhile."""

    hours: float = Field(ge=0, le=24 * 365)


class NoLogicChanges(Enforced):
    """No transaction may change the wallet's logic or owners (an upgrade, a delegate call): no takeover."""

    @model_validator(mode="after")
    def _not_inside_the_logic(self) -> NoLogicChanges:
        if self.applies_to == "transfers":
            raise ValueError("no_logic_changes checks administrative actions only: applies_to is 'all' or 'admin'")
        if self.enforced_by == CHAIN:
            raise ValueError(f"a rule inside the wallet's own logic ({CHAIN!r}) does not check the transaction "
                             f"that replaces that logic: enforce it by {GUARD!r} (a guard or module that checks "
                             "every transaction) or by a system that decodes what it signs")
        return self


class Policy(Spec):
    """The wallet's transfer policy; each rule binds only while its enforcer is not the attacker's."""

    per_transfer_limit: Limit | None = None
    daily_limit: Limit | None = None
    whitelist: Whitelist | None = None
    delay: Delay | None = None
    no_logic_changes: NoLogicChanges | None = None
    rolling_limits: list[RollingLimit] = Field([], max_length=100)

    def rules(self) -> Iterator[tuple[tuple[str | int, ...], Enforced]]:
        """Yield every rule the policy states, with its path under ``policy`` (``("rolling_limits", 0)``)."""
        for name in ("per_transfer_limit", "daily_limit", "whitelist", "delay", "no_logic_changes"):
            rule = getattr(self, name)
            if rule is not None:
                yield (name,), rule
        for i, limit in enumerate(self.rolling_limits):
            yield ("rolling_limits", i), limit


class Flows(Spec):
    """Aggregate customer flows through a (hot) wallet, in asset units per day."""

    withdrawals_per_day: Amount = 0.0
    deposits_per_day: Amount = 0.0


class TopUp(Spec):
    """How the exchange keeps a hot wallet funded: refill from ``source`` up to ``cap``."""

    source: Id
    cap: Amount
    low_water: Amount
    signing_hours: float = Field(1.0, ge=0, le=24 * 30)

    @model_validator(mode="after")
    def _below_cap(self) -> TopUp:
        if self.low_water >= self.cap:
            raise ValueError("low_water must be below cap")
        return self


class Wallet(Spec):
    """A wallet: its asset, tier, balance, custody, transfer pipeline, policy and flows.

    Wallets that name the same ``account`` are one address holding several assets (a smart-contract
    multisig holding the native coin and tokens): one custody, one pipeline, one set of requesters, so a
    quorum of keys or a takeover reaches every asset at once; each wallet keeps its own asset, balance,
    flows, top-ups and policy amounts.
    """

    asset: Id
    tier: Literal["hot", "warm", "cold"]
    balance: Amount
    custody: Custody
    pipeline: list[Id] = []
    requesters: list[Id] = []
    policy: Policy = Policy()
    flows: Flows | None = None
    topup: TopUp | None = None
    sweep_to: Id | None = None
    account: Id | None = None


class ScheduledTransfer(Spec):
    """A recurring legitimate transfer (rebalancing, settlement): an opportunity for a tamperer."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False, populate_by_name=True, strict=True,
                              validate_default=True)

    from_wallet: Id = Field(alias="from")
    to: Id
    amount: Amount
    every_days: float = Field(gt=0, le=3650)
    first_day: float = Field(0.0, ge=0)
    signing_hours: float = Field(1.0, ge=0, le=24 * 30)


class AdminActions(Spec):
    """The legitimate administrative actions on a wallet (a logic upgrade, an owner or signer change): rare."""

    wallet: Id
    per_year: float = Field(gt=0, le=365)


class Operations(Spec):
    """Legitimate operations besides customer flows and top-ups."""

    transfers: list[ScheduledTransfer] = []
    admin_actions: list[AdminActions] = Field([], max_length=MAX_ENTITIES)


def _library_fields(data: Any, fields: tuple[str, ...]) -> Any:
    """Fill the ``fields`` a spec leaves out from the library entry its ``technique`` names, if any."""
    if not isinstance(data, dict):
        return data
    known = library.entry(data["technique"]) if isinstance(data.get("technique"), str) else None
    if known is None:
        return data
    missing = {f: known.default(f) for f in fields if f not in data and known.prior(f) is not None}
    return {**data, **missing} if missing else data


class AccessEdge(Spec):
    """Compromising ``from`` lets the attacker attempt ``to``, once, taking ``time_days`` if it works.

    With a library technique, a left-out ``p_success`` or ``time_days`` takes the library's default.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False, populate_by_name=True, strict=True,
                              validate_default=True)

    from_node: Id = Field(alias="from")
    to: Id
    technique: Name = "access"
    p_success: Probability = 1.0
    time_days: Dist = 0.0  # type: ignore[assignment]
    opened_by: Id | None = None
    """A person whose insider act opens this edge: it exists only once they have acted in the trial."""

    @model_validator(mode="before")
    @classmethod
    def _library_defaults(cls, data: Any) -> Any:
        return _library_fields(data, ("p_success", "time_days"))


class InitialAccess(Spec):
    """A technique aimed at people; each falls with their exposure to it, after ``delay_days``.

    With a library technique, a left-out ``delay_days`` takes the library's default.
    """

    technique: Name
    targets: list[Id] = Field(min_length=1)
    delay_days: Dist = 0.0  # type: ignore[assignment]
    common_mode: Probability = _prior("lure_common_mode", "common_mode")
    """The share of campaigns in which one shared draw decides every target's fall (0: each on their own)."""

    @model_validator(mode="before")
    @classmethod
    def _library_defaults(cls, data: Any) -> Any:
        return _library_fields(data, ("delay_days",))


class Strike(Spec):
    """How a threat's campaigns strike: at which wallet, whether they wait until ready, and how often.

    ``aim``: ``largest`` (the most valuable wallet the campaign can strike at that moment), ``first`` (the
    first chance on any wallet), or a list of wallet ids. ``wait_until_ready``: strike a wallet only once
    every signer who would check sees the attacker's version (or, for stolen keys, a quorum is held).
    After ``max_wait_days`` from its first chance the campaign fires at the next chance it has
    (``after_max_wait: fire``) or never strikes (``give_up``). ``once``: one strike per campaign.
    """

    aim: Literal["largest", "first"] | Annotated[list[Id], Field(min_length=1)] = "largest"
    wait_until_ready: bool = True
    max_wait_days: float = Field(_prior("patient_strike", "max_wait_days"), ge=0, le=3650)
    after_max_wait: Literal["fire", "give_up"] = "fire"
    once: bool = True


class Threat(Spec):
    """An attacker profile: how often it comes, how it gets in, how it steals.

    ``forced_campaign_days`` starts one campaign on each listed day in every trial, besides the Poisson
    arrivals: an incident replay forces the real campaign at day 0.
    """

    description: Text = ""
    campaigns_per_year: float = Field(ge=0, le=1000)
    forced_campaign_days: list[Annotated[float, Field(ge=0)]] = Field([], max_length=100)
    skill: float = Field(1.0, gt=0, le=100)
    initial_access: list[InitialAccess] = []
    tampering: Literal["redirect", "amount", "takeover"] = "amount"
    drain_interval_minutes: float = Field(10.0, gt=0, le=60 * 24 * 30)
    strike: Strike = Strike()


class Detection(Spec):
    """A detection control (EDR, server monitoring) watching nodes with a time to detect a compromise."""

    watches: list[Id] = Field(min_length=1)
    time_to_detect_days: Dist
    annual_cost_usd: AnnualCost = 0.0


class OutflowMonitor(Spec):
    """Outflow monitoring or a balance alert: may catch a theft transfer after a delay."""

    wallets: list[Id] | None = None
    probability: Probability
    delay_hours: Dist = 0.0  # type: ignore[assignment]
    min_amount_usd: Usd = 0.0
    annual_cost_usd: AnnualCost = 0.0


class Response(Spec):
    """Incident response after an alarm: freeze outflows, revoke footholds, rotate stolen keys."""

    freeze_delay_hours: Dist = 1.0  # type: ignore[assignment]
    revoke_delay_hours: Dist = 24.0  # type: ignore[assignment]
    key_rotation_hours: Dist = 0.0  # type: ignore[assignment]
    recovered_fraction: Probability = 0.0
    annual_cost_usd: AnnualCost = 0.0


class Measure(Spec):
    """A control of the library, switched on; every parameter left out takes the library's default."""

    annual_cost_usd: AnnualCost = 0.0


class AwarenessTraining(Measure):
    """Training for the people listed, the people of the organisations listed, or (neither) everyone."""

    people: list[Id] | None = None
    organisations: list[Id] | None = None
    factor: Probability = _prior("security_awareness_training", "factor")


class PhishingResistantMfa(Measure):
    """Security keys on the accounts of the systems listed (or all): credential attacks mostly fail."""

    systems: list[Id] | None = None
    factor: Probability = _prior("phishing_resistant_mfa", "factor")


class DeviceBoundSessions(Measure):
    """Short-lived, device-bound sessions on the systems listed (or all): stolen cookies mostly fail."""

    systems: list[Id] | None = None
    factor: Probability = _prior("device_bound_sessions", "factor")


class SegregatedVendorAccess(Measure):
    """The organisations listed (or every one that is not the exchange) reach the signing path separately."""

    organisations: list[Id] | None = None
    factor: Probability = _prior("segregated_vendor_access", "factor")


class EndpointDetection(Measure):
    """Endpoint detection on the machines (or people) listed."""

    watches: list[Id] = Field(min_length=1)
    time_to_detect_days: Dist = _prior("endpoint_detection", "time_to_detect_days")


class OutflowMonitoringMeasure(Measure):
    """Outflow monitoring of the wallets listed (or all)."""

    wallets: list[Id] | None = None
    probability: Probability = _prior("outflow_monitoring", "probability")
    delay_hours: Dist = _prior("outflow_monitoring", "delay_hours")
    min_amount_usd: Usd = 0.0


class BalanceAlerts(OutflowMonitoringMeasure):
    """Balance-drop alerts on the wallets listed (or all): an outflow watch, slower but hard to miss."""

    probability: Probability = _prior("balance_alerts", "probability")
    delay_hours: Dist = _prior("balance_alerts", "delay_hours")


class IndependentVerification(Measure):
    """Each person listed verifies on the device given (person id -> system id)."""

    devices: dict[Id, Id] = Field(min_length=1)
    probability: Probability = _prior("independent_verification", "probability")


class IndependentPolicyEngine(Measure):
    """A whitelist (and optional limits) on the wallets listed, enforced by ``enforced_by``."""

    enforced_by: Id
    wallets: list[Id] = Field(min_length=1)
    whitelist: bool = True
    per_transfer_limit: Amount | None = None
    daily_limit: Amount | None = None


class TimeDelayWithCancellation(Measure):
    """A time lock of ``hours`` on the wallets listed, enforced by ``enforced_by`` (a system or ``chain``)."""

    enforced_by: Id
    wallets: list[Id] = Field(min_length=1)
    hours: float = Field(_prior("time_delay_with_cancellation", "hours"), ge=0, le=24 * 365)
    applies_to: Applies = "all"


class WalletSplitting(Measure):
    """Each listed wallet split into ``parts`` equal wallets, its scheduled transfers rotating between them."""

    wallets: list[Id] = Field(min_length=1)
    parts: int = Field(_prior("wallet_splitting", "parts"), ge=2, le=100)


class Measures(Spec):
    """Library controls switched on by name (``custodysim library`` lists them with their defaults)."""

    security_awareness_training: AwarenessTraining | None = None
    phishing_resistant_mfa: PhishingResistantMfa | None = None
    device_bound_sessions: DeviceBoundSessions | None = None
    segregated_vendor_access: SegregatedVendorAccess | None = None
    endpoint_detection: EndpointDetection | None = None
    outflow_monitoring: OutflowMonitoringMeasure | None = None
    balance_alerts: BalanceAlerts | None = None
    independent_verification: IndependentVerification | None = None
    independent_policy_engine: IndependentPolicyEngine | None = None
    time_delay_with_cancellation: TimeDelayWithCancellation | None = None
    wallet_splitting: WalletSplitting | None = None

    def switched_on(self) -> dict[str, Measure]:
        """Return the measures present, by library name."""
        return {name: m for name in type(self).model_fields if (m := getattr(self, name)) is not None}


class Verification(Spec):
    """How the signers' checks of one rewritten transaction depend on each other.

    With probability ``common_mode`` one shared draw decides every verifying signer's check (each catches
    the mismatch if it falls below their ``verification_probability``); otherwise each draws on their own.
    """

    common_mode: Probability = _prior("verification_common_mode", "common_mode")


class Controls(Spec):
    """Detection and response controls (policies live on each wallet), and library measures by name."""

    detection: dict[Id, Detection] = {}
    outflow_monitoring: dict[Id, OutflowMonitor] = {}
    response: Response = Response()
    verification: Verification = Verification()
    measures: Measures = Measures()


class Variant(Spec):
    """A named change to the baseline: ``set`` maps field paths (``wallets.hot.topup.cap``) to values."""

    description: Text = ""
    set: dict[FieldPath, Any] = Field(default_factory=dict)
    annual_cost_usd: AnnualCost = 0.0


class Insurance(Spec):
    """An insurance layer: ``covered_share`` of each loss above the deductible, at most the limit.

    ``per: year`` (the default) applies the terms to a year's whole loss; ``per: occurrence`` applies them to
    each loss event (one campaign's thefts, one lock-out), as crime and specie policies do, the payouts of a
    year capped by ``annual_limit_usd`` if given.
    """

    deductible_usd: Usd = 0.0
    limit_usd: Annotated[float, Field(gt=0, le=MAX_USD)]
    covered_share: Probability = 1.0
    per: Literal["year", "occurrence"] = "year"
    annual_limit_usd: Annotated[float, Field(gt=0, le=MAX_USD)] | None = None

    @model_validator(mode="after")
    def _annual_limit_per_occurrence(self) -> Insurance:
        if self.annual_limit_usd is not None and self.per != "occurrence":
            raise ValueError("annual_limit_usd caps the payouts of per: occurrence terms; with per: year, "
                             "limit_usd is the year's limit already")
        return self


class Finance(Spec):
    """What can absorb a loss: the owner's capital, and an insurance layer in front of it."""

    capital_usd: Usd | None = None
    insurance: Insurance | None = None

    @model_validator(mode="after")
    def _states_something(self) -> Finance:
        if self.capital_usd is None and self.insurance is None:
            raise ValueError("give capital_usd, insurance, or both (or leave finance out)")
        return self


Estimates = Annotated[list[Any], Field(min_length=2, max_length=2)]
"""An uncertain input's ``[low, high]`` estimates, each a value its field path accepts."""


class Scenario(Spec):
    """A whole scenario: the architecture, its operations, the threats, the controls and the variants.

    ``uncertainty`` maps field paths (as in a variant's ``set``) to ``[low, high]`` estimates: the
    inputs of the tornado chart of ``custodysim attribution``. It changes nothing that is simulated.
    """

    name: Id
    description: Text = ""
    settings: Settings = Settings()
    assets: dict[Id, Asset] = Field(min_length=1, max_length=MAX_ENTITIES)
    organisations: dict[Id, Organisation] = Field({}, max_length=MAX_ENTITIES)
    people: dict[Id, Person] = Field({}, max_length=MAX_ENTITIES)
    systems: dict[Id, System] = Field({}, max_length=MAX_ENTITIES)
    wallets: dict[Id, Wallet] = Field(min_length=1, max_length=MAX_ENTITIES)
    operations: Operations = Operations()
    access: list[AccessEdge] = Field([], max_length=MAX_EDGES)
    threats: dict[Id, Threat] = Field({}, max_length=MAX_ENTITIES)
    controls: Controls = Controls()
    finance: Finance | None = None
    baseline_name: Id = "baseline"
    variants: dict[Id, Variant] = Field({}, max_length=MAX_VARIANTS)
    uncertainty: dict[FieldPath, Estimates] = Field({}, max_length=MAX_UNCERTAIN)

    def node_ids(self) -> set[str]:
        """Return the ids an attacker can compromise: people and systems."""
        return set(self.people) | set(self.systems)


JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def json_schema() -> dict[str, Any]:
    """Return the JSON Schema of a scenario file, for editors that complete and check YAML against one.

    It describes the structure, types and ranges; cross-references (a signer's ``key_store`` naming a
    system, say) and the other checks of ``custodysim validate`` are beyond a schema.
    """
    schema = Scenario.model_json_schema(by_alias=True, mode="validation")
    return {
        "$schema": JSON_SCHEMA_DIALECT,
        "title": "custodysim scenario",
        "description": ("A custody architecture, its operations, threats, controls and variants "
                        "(docs/scenario-format.md). Check a file fully with: custodysim validate FILE"),
        **{k: v for k, v in schema.items() if k not in ("title", "description")},
    }


def field_names(model: type[BaseModel]) -> list[str]:
    """Return the YAML names of a spec's fields (aliases where set)."""
    return [f.alias or name for name, f in model.model_fields.items()]


__all__ = [
    "CHAIN", "EXTERNAL", "AccessEdge", "Asset", "AwarenessTraining", "BalanceAlerts", "Controls", "Custody",
    "Delay", "Detection", "DeviceBoundSessions", "Dist", "EndpointDetection", "Enforced", "Finance", "Flows",
    "IndependentPolicyEngine", "IndependentVerification", "InitialAccess", "Insurance", "Limit", "Measure",
    "Measures", "Operations", "Organisation", "OutflowMonitor", "OutflowMonitoringMeasure", "Person",
    "PhishingResistantMfa", "Policy", "Response", "Scenario", "ScheduledTransfer", "SegregatedVendorAccess",
    "Settings", "Signer", "System", "Threat", "TimeDelayWithCancellation", "TopUp", "Variant", "Wallet",
    "WalletSplitting", "Whitelist", "field_names",
]
