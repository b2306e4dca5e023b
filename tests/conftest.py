"""Small purpose-built scenarios for behavioural tests."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pytest
import yaml

from custodysim.loader import LoadedScenario, load_scenario_text
from custodysim.runner import VariantRows, run_variants

BASE: dict[str, Any] = {
    "name": "unit",
    "settings": {"horizon_days": 365, "trials": 400, "seed": 7},
    "assets": {"BTC": {"price_usd": 1.0}},
    "organisations": {"ex": {"kind": "exchange"}, "vendor": {"kind": "wallet_vendor"}},
    "people": {
        "eng": {"organisation": "vendor", "devices": ["laptop"], "exposure": {"phish": 1.0}},
        "alice": {"organisation": "ex", "verification_probability": 0.9},
        "bob": {"organisation": "ex", "verification_probability": 0.9},
        "carol": {"organisation": "ex", "verification_probability": 0.9},
        "dave": {"organisation": "ex", "verification_probability": 0.9},
        "erin": {"organisation": "ex", "verification_probability": 0.9},
    },
    "systems": {
        "laptop": {"kind": "workstation", "owner": "vendor"},
        "ui": {"kind": "signing_interface", "owner": "vendor"},
        "vault_hsm": {"kind": "hsm", "owner": "ex"},
        "hot_server": {"kind": "server", "owner": "ex"},
        "policy_engine": {"kind": "policy_engine", "owner": "ex"},
        "dev_alice": {"kind": "hardware_wallet", "owner": "ex"},
        "dev_bob": {"kind": "hardware_wallet", "owner": "ex"},
        "dev_carol": {"kind": "hardware_wallet", "owner": "ex"},
    },
    "wallets": {
        "vault": {
            "asset": "BTC", "tier": "warm", "balance": 1000.0,
            "custody": {"scheme": "single", "signers": [{"id": "k1", "holder": "alice", "key_store": "vault_hsm"}]},
            "pipeline": ["ui"],
        },
    },
    "operations": {"transfers": [{"from": "vault", "to": "external", "amount": 1.0, "every_days": 1.0}]},
    "access": [{"from": "laptop", "to": "ui", "p_success": 1.0, "time_days": 1.0}],
    "threats": {"apt": {"campaigns_per_year": 2.0, "initial_access": [
        {"technique": "phish", "targets": ["eng"], "delay_days": 0.0}]}},
}


def signers(*holders: str, store: str = "vault_hsm") -> list[dict[str, Any]]:
    """Return signer entries, one per holder, all on ``store``."""
    return [{"id": f"k{i}", "holder": h, "key_store": store} for i, h in enumerate(holders)]


def build(base: dict[str, Any] | None = None, **changes: Any) -> dict[str, Any]:
    """Return a copy of ``base`` (default :data:`BASE`) with dotted-path ``changes`` applied."""
    doc = copy.deepcopy(base if base is not None else BASE)
    for dotted, value in changes.items():
        parts = dotted.split("__")
        node = doc
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = value
    return doc


def load(doc: dict[str, Any]) -> LoadedScenario:
    """Validate a scenario given as a dict."""
    return load_scenario_text(yaml.safe_dump(doc, sort_keys=False))


def losses(doc: dict[str, Any], trials: int = 400, seed: int = 7) -> dict[str, VariantRows]:
    """Run every variant of ``doc`` and return its rows by variant name."""
    rows, _ = run_variants(load(doc), trials, seed)
    return {r.name: r for r in rows}


@pytest.fixture
def base() -> dict[str, Any]:
    """A fresh copy of the base scenario: a vendor engineer, a signing UI, a 1,000 BTC vault."""
    return copy.deepcopy(BASE)


def assert_same(a: np.ndarray, b: np.ndarray) -> None:
    """Assert two per-trial arrays are equal trial by trial."""
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-9)
