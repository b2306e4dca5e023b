"""The scenario schema: immutable, validated specs of a custody architecture and its threats.

Every mapping keyed by id in the YAML (``wallets``, ``people``, ...) is a ``dict`` here, so a
validation error's location is the same path a person sees in the file. Units are in the field names
(``_days``, ``_hours``, ``_usd``); amounts without a unit are in the wallet's own asset.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any, Literal, Union

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from custodysim.distributions import Distribution, as_distribution


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
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")


def _check_id(value: str) -> str:
    if not _ID.fullmatch(value) or value.isdigit():
        raise ValueError("an id uses letters, digits, '_' and '-' (no dots or spaces), starts with a letter "
                         "or digit and is not a plain number, so that variant paths can name it")
    return value


Id = Annotated[str, Field(min_length=1, max_length=128), AfterValidator(_check_id)]
"""An id of a wallet, person, system, ...: safe in variant paths and folder names."""

MAX_ENTITIES = 2_000
"""Most assets, organisations, people, systems, wallets or threats in one scenario (a whole exchange fits)."""
MAX_EDGES = 20_000
"""Most access edges in one scenario: bounds the attack graph each campaign spreads over."""
MAX_VARIANTS = 200
"""Most variants in one scenario: each runs every trial."""

CHAIN = "chain"
"""The ``enforced_by`` value of a policy enforced on chain: it binds every transfer."""
EXTERNAL = "external"
"""The ``to`` value of a scheduled transfer that leaves the exchange (to a bank, OTC desk, ...)."""


class Spec(BaseModel):
    """Base of every spec: immutable, unknown keys refused, no NaN or infinity."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False, validate_default=True)


class Settings(Spec):
    """Run settings: how long a trial lasts, how many trials, which seed."""

    horizon_days: float = Field(365.0, gt=0, le=3650)
    trials: int = Field(2000, ge=1, le=10_000_000)
    seed: int = Field(0, ge=0, lt=2**63)
    max_campaigns_per_threat: int = Field(50, ge=1, le=10_000)


class Asset(Spec):
    """An asset and its USD price; ``price_path`` steps the price at the given days."""

    price_usd: float = Field(gt=0)
    price_path: list[tuple[Annotated[float, Field(ge=0)], Annotated[float, Field(gt=0)]]] = []

    @model_validator(mode="after")
    def _days_ascending(self) -> Asset:
        days = [day for day, _ in self.price_path]
        if days != sorted(days):
            raise ValueError("price_path steps must be in order of day")
        return self

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


class Organisation(Spec):
    """The exchange itself, or a vendor or contractor with access to its systems."""

    kind: OrganisationKind = "other"
    description: str = ""


class Person(Spec):
    """Someone whose mistakes or intent can open a path: an employee or a vendor's contractor."""

    organisation: Id
    role: str = "staff"
    devices: list[Id] = []
    exposure: dict[str, Probability] = {}
    verifies_on: Id | None = None
    verification_probability: Probability = 0.9
    insider_rate_per_year: float = Field(0.0, ge=0, le=100)


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


class Signer(Spec):
    """One key (or MPC share) of a wallet: who approves with it, where it lives, how they see transfers."""

    id: Id
    holder: Id | None = None
    key_store: Id
    views_through: list[Id] | None = None


class Custody(Spec):
    """How a wallet signs: one key, an m-of-n multisig, or a t-of-n MPC."""

    scheme: Literal["single", "multisig", "mpc"] = "single"
    threshold: int = Field(1, ge=1, le=1000)
    signers: list[Signer] = Field(min_length=1, max_length=1000)

    @model_validator(mode="after")
    def _quorum_possible(self) -> Custody:
        if self.threshold > len(self.signers):
            raise ValueError(f"threshold {self.threshold} exceeds the {len(self.signers)} signers (m > n)")
        if self.scheme == "single" and (len(self.signers) != 1 or self.threshold != 1):
            raise ValueError("scheme 'single' takes exactly one signer and threshold 1")
        ids = [s.id for s in self.signers]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"signer ids must be unique; repeated: {', '.join(dupes)}")
        return self


class Enforced(Spec):
    """A policy rule, the component that enforces it (a system id, ``chain``, or nobody), and its yearly cost."""

    enforced_by: Id | None = None
    annual_cost_usd: AnnualCost = 0.0


class Limit(Enforced):
    """An amount limit in the wallet's asset."""

    amount: Amount


class Whitelist(Enforced):
    """Destinations restricted to the exchange's own wallets and approved addresses."""


class Delay(Enforced):
    """A time lock: every transfer waits this long before broadcast and can be cancelled meanwhile."""

    hours: float = Field(ge=0, le=24 * 365)


class Policy(Spec):
    """The wallet's transfer policy; each rule binds only while its enforcer is not the attacker's."""

    per_transfer_limit: Limit | None = None
    daily_limit: Limit | None = None
    whitelist: Whitelist | None = None
    delay: Delay | None = None


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
    """A wallet: its asset, tier, balance, custody, transfer pipeline, policy and flows."""

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


class ScheduledTransfer(Spec):
    """A recurring legitimate transfer (rebalancing, settlement): an opportunity for a tamperer."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False, populate_by_name=True,
                              validate_default=True)

    from_wallet: Id = Field(alias="from")
    to: Id
    amount: Amount
    every_days: float = Field(gt=0, le=3650)
    first_day: float = Field(0.0, ge=0)
    signing_hours: float = Field(1.0, ge=0, le=24 * 30)


class Operations(Spec):
    """Legitimate operations besides customer flows and top-ups."""

    transfers: list[ScheduledTransfer] = []


class AccessEdge(Spec):
    """Compromising ``from`` lets the attacker attempt ``to``, once, taking ``time_days`` if it works."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False, populate_by_name=True,
                              validate_default=True)

    from_node: Id = Field(alias="from")
    to: Id
    technique: str = "access"
    p_success: Probability = 1.0
    time_days: Dist = 0.0  # type: ignore[assignment]


class InitialAccess(Spec):
    """A technique aimed at people; each falls with their exposure to it, after ``delay_days``."""

    technique: str
    targets: list[Id] = Field(min_length=1)
    delay_days: Dist = 0.0  # type: ignore[assignment]


class Threat(Spec):
    """An attacker profile: how often it comes, how it gets in, how it steals.

    ``forced_campaign_days`` starts one campaign on each listed day in every trial, besides the Poisson
    arrivals: an incident replay forces the real campaign at day 0.
    """

    description: str = ""
    campaigns_per_year: float = Field(ge=0, le=1000)
    forced_campaign_days: list[Annotated[float, Field(ge=0)]] = Field([], max_length=100)
    skill: float = Field(1.0, gt=0, le=100)
    initial_access: list[InitialAccess] = []
    tampering: Literal["redirect", "amount", "takeover"] = "amount"
    drain_interval_minutes: float = Field(10.0, gt=0, le=60 * 24 * 30)


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
    min_amount_usd: Amount = 0.0
    annual_cost_usd: AnnualCost = 0.0


class Response(Spec):
    """Incident response after an alarm: freeze outflows, revoke footholds, rotate stolen keys."""

    freeze_delay_hours: Dist = 1.0  # type: ignore[assignment]
    revoke_delay_hours: Dist = 24.0  # type: ignore[assignment]
    key_rotation_hours: Dist = 0.0  # type: ignore[assignment]
    recovered_fraction: Probability = 0.0
    annual_cost_usd: AnnualCost = 0.0


class Controls(Spec):
    """Detection and response controls (policies live on each wallet)."""

    detection: dict[Id, Detection] = {}
    outflow_monitoring: dict[Id, OutflowMonitor] = {}
    response: Response = Response()


class Variant(Spec):
    """A named change to the baseline: ``set`` maps field paths (``wallets.hot.topup.cap``) to values."""

    description: str = ""
    set: dict[str, Any] = Field(default_factory=dict)
    annual_cost_usd: AnnualCost = 0.0


class Insurance(Spec):
    """An insurance layer over a trial's loss: ``covered_share`` of the loss above the deductible, at most the limit."""

    deductible_usd: Amount = 0.0
    limit_usd: Annotated[float, Field(gt=0)]
    covered_share: Probability = 1.0


class Finance(Spec):
    """What can absorb a loss: the owner's capital, and an insurance layer in front of it."""

    capital_usd: Amount | None = None
    insurance: Insurance | None = None

    @model_validator(mode="after")
    def _states_something(self) -> Finance:
        if self.capital_usd is None and self.insurance is None:
            raise ValueError("give capital_usd, insurance, or both (or leave finance out)")
        return self


class Scenario(Spec):
    """A whole scenario: the architecture, its operations, the threats, the controls and the variants."""

    name: Id
    description: str = ""
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
    "CHAIN", "EXTERNAL", "AccessEdge", "Asset", "Controls", "Custody", "Delay", "Detection", "Dist",
    "Enforced", "Finance", "Flows", "InitialAccess", "Insurance", "Limit", "Operations", "Organisation",
    "OutflowMonitor", "Person", "Policy", "Response", "Scenario", "ScheduledTransfer", "Settings", "Signer", "System",
    "Threat", "TopUp", "Variant", "Wallet", "Whitelist", "field_names",
]
