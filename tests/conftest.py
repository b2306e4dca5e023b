"""Small purpose-built scenarios for behavioural tests."""

from __future__ import annotations

import copy
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from hypothesis import settings as hypothesis_settings

from custodysim.running.runner import VariantRows, run_variants
from custodysim.scenario.loader import LoadedScenario, load_scenario_text
from custodysim.studies.run import execute_run

DMM = Path(__file__).resolve().parent.parent / "scenarios" / "dmm-2024.yaml"

# CI explores the same examples every run (reproducible, no flaky red); locally hypothesis explores anew.
hypothesis_settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    hypothesis_settings.load_profile("ci")

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
    # The mechanism tests use an attacker that strikes at its first chance and keeps going; the tests of how
    # attackers strike (test_strikes.py) set their own.
    "threats": {"apt": {"campaigns_per_year": 2.0, "initial_access": [
        {"technique": "phish", "targets": ["eng"], "delay_days": 0.0}],
        "strike": {"aim": "first", "wait_until_ready": False, "once": False}}},
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


@pytest.fixture(scope="session")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """summary.json's variants of dmm-2024's independent-verification run of 8,000 trials, seed 4, in one process.

    What the runs killed and resumed in test_interrupt.py and test_lost_workers.py must come to: simulated
    once for both.
    """
    out = tmp_path_factory.mktemp("uninterrupted") / "run"
    variants: dict[str, Any] = execute_run(DMM, trials=8000, seed=4, out=out,
                                           variants=["independent-verification"]).summary["variants"]
    return variants


def assert_same(a: np.ndarray, b: np.ndarray) -> None:
    """Assert two per-trial arrays are equal trial by trial."""
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-9)


# The small valid scenario every test breaks in one place (block style where lines are checked).
MINI = """\
name: mini
settings: {horizon_days: 365, trials: 200, seed: 1}
assets: {BTC: {price_usd: 60000}}
organisations: {ex: {kind: exchange}, vendor: {kind: wallet_vendor}}
people:
  eng: {organisation: vendor, devices: [eng_laptop], exposure: {fake_recruiter_test: 0.5}}
  signer: {organisation: ex, role: signer, verification_probability: 0.9}
systems:
  eng_laptop: {kind: workstation, owner: vendor}
  comms: {kind: communication, owner: vendor}
  hsm: {kind: hsm, owner: ex}
  pe: {kind: policy_engine, owner: ex}
wallets:
  main:
    asset: BTC
    tier: warm
    balance: 5000
    custody:
      scheme: single
      signers:
        - {id: k1, holder: signer, key_store: hsm}
    pipeline: [comms]
  hot:
    asset: BTC
    tier: hot
    balance: 100
    custody: {scheme: single, signers: [{id: h1, key_store: hsm}]}
    flows: {withdrawals_per_day: 50, deposits_per_day: 45}
    topup: {source: main, cap: 100, low_water: 30, signing_hours: 2}
access:
  - {from: eng, to: comms, technique: session_cookie_theft, p_success: 0.8,
     time_days: {dist: lognormal, median: 40, p90: 80}}
threats:
  tt:
    campaigns_per_year: 1
    initial_access:
      - {technique: fake_recruiter_test, targets: [eng], delay_days: {dist: uniform, low: 0, high: 30}}
controls:
  outflow_monitoring: {chain: {probability: 0.9, delay_hours: 0.5}}
variants:
  wl:
    description: whitelist enforced by the policy engine
    set:
      wallets.main.policy.whitelist: {enforced_by: pe}
"""

VARIANT_SET = "      wallets.main.policy.whitelist: {enforced_by: pe}\n"


def edit(old: str, new: str, text: str = MINI) -> str:
    """Return ``text`` with the single occurrence of ``old`` replaced by ``new``."""
    assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times"
    return text.replace(old, new)


def line_of(text: str, needle: str) -> int:
    """Return the 1-based line of the single line of ``text`` that contains ``needle``."""
    hits = [n for n, line in enumerate(text.splitlines(), start=1) if needle in line]
    assert len(hits) == 1, f"{needle!r} is on lines {hits}"
    return hits[0]


def local_dask_cluster() -> Iterator[Any]:
    """Yield a local Dask cluster of 2 worker processes with 1 thread each, closed afterwards (for fixtures)."""
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    yield cluster
    cluster.close()
