"""The scenario format reference stays in step with the schema."""

import inspect
from pathlib import Path
from types import ModuleType

from pydantic import BaseModel

from custodysim.scenario import distributions, schema
from custodysim.scenario.distributions import Exponential, Fixed, LogNormal, Triangular, Uniform
from custodysim.scenario.schema import (
    AccessEdge,
    AdminActions,
    Asset,
    AwarenessTraining,
    BalanceAlerts,
    Controls,
    Custody,
    Delay,
    Detection,
    DeviceBoundSessions,
    EndpointDetection,
    Enforced,
    Finance,
    Flows,
    IndependentPolicyEngine,
    IndependentVerification,
    InitialAccess,
    Insurance,
    KeyLoss,
    Limit,
    Measure,
    Measures,
    NoLogicChanges,
    Notification,
    Operations,
    Organisation,
    OutflowMonitor,
    OutflowMonitoringMeasure,
    Person,
    PhishingResistantMfa,
    Policy,
    Response,
    RollingLimit,
    Scenario,
    ScheduledTransfer,
    SegregatedVendorAccess,
    Settings,
    Signer,
    SignerGroup,
    Strike,
    System,
    Threat,
    TimeDelayWithCancellation,
    TopUp,
    Variant,
    Verification,
    Wallet,
    WalletSplitting,
    Whitelist,
    field_names,
)

DOC = Path(__file__).resolve().parents[1] / "docs" / "scenario-format.md"

DOCUMENTED: tuple[type[BaseModel], ...] = (
    Scenario, Settings, Asset, Organisation, Person, System, Signer, SignerGroup, Custody, Enforced, Limit, Whitelist,
    Delay, RollingLimit, Policy, Flows, TopUp, Wallet, ScheduledTransfer, Operations, AccessEdge, InitialAccess, Threat,
    Detection, OutflowMonitor, Response, Controls, Variant, Measures, Measure, AwarenessTraining, PhishingResistantMfa,
    DeviceBoundSessions, SegregatedVendorAccess, EndpointDetection, OutflowMonitoringMeasure, BalanceAlerts,
    IndependentVerification, IndependentPolicyEngine, TimeDelayWithCancellation, WalletSplitting,
    Finance, Insurance, Notification, NoLogicChanges, Strike, Verification, KeyLoss, AdminActions,
    Fixed, Uniform, Exponential, LogNormal, Triangular,
)


def _models_defined_in(module: ModuleType) -> set[type[BaseModel]]:
    return {
        obj for obj in vars(module).values()
        if inspect.isclass(obj) and issubclass(obj, BaseModel) and obj.__module__ == module.__name__
        and obj.model_fields
    }


def test_every_yaml_field_name_is_documented() -> None:
    """Every YAML field name of every spec and distribution appears as inline code in the format doc."""
    text = DOC.read_text(encoding="utf-8")
    missing = sorted({
        f"{model.__name__}.{name}"
        for model in DOCUMENTED for name in field_names(model) if f"`{name}`" not in text
    })
    assert not missing, f"{DOC.name} lacks these YAML field names as `inline code`: {', '.join(missing)}"


def test_doc_check_covers_every_spec_with_fields() -> None:
    """The documented list names every model with fields in schema.py and distributions.py."""
    defined = _models_defined_in(schema) | _models_defined_in(distributions)
    unlisted = sorted(m.__name__ for m in defined - set(DOCUMENTED))
    assert not unlisted, f"add to DOCUMENTED in test_docs.py and to {DOC.name}: {', '.join(unlisted)}"
