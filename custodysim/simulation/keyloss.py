"""Lost keys, and the wallets they lock: the other side of a signing threshold.

Each key of a wallet whose custody says how keys are lost (``key_loss``) is lost at its rate, as a
Poisson process in the trial's own named streams (``key-loss:ACCOUNT:SIGNER``, the account being the
wallet itself unless it shares one). Variants with the same signers therefore lose them at the same
times, so a sweep over thresholds compares like with like, and every asset of an account is locked
together. A lost key is restored after its recovery time, unless the loss is one nothing can undo (or
there is no recovery), and it can be lost again once restored.

A wallet is *locked* while some group of its quorum has fewer available keys than its threshold: the
exchange cannot sign, so its outflows wait until enough keys are back. A lock with no end (too many keys
lost for good) is a *lock-out*: the wallet's balance is lost at that moment, as is anything that lands in
it later. Losing keys changes nothing for an attacker: a key it copied still signs.

Most trials lose too few keys to lock anything: :func:`may_lock` finds them for a whole chunk at once from
each key's first loss, so that only the others draw the rest (:func:`locks`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from custodysim.simulation.model import CompiledScenario, SignerModel, WalletModel
from custodysim.simulation.randomness import TrialRandom, uniform_array


@dataclass(frozen=True, slots=True)
class Lock:
    """A wallet the exchange cannot sign for over [start, end) (``end`` infinite: a lock-out)."""

    wallet: str
    start: float
    end: float


def _stream(wallet: WalletModel, signer: SignerModel) -> str:
    """Name a key's losses by its account: the wallets of one account lose the same keys at the same times."""
    return f"key-loss:{wallet.account}:{signer.id}"


def may_lock(model: CompiledScenario, seed: int, trials: np.ndarray) -> np.ndarray:
    """Return, for each of ``trials``, whether it may lock a wallet (True for every trial that does).

    A group is locked only while more of its keys are lost than it can spare, so only if that many of
    them are lost at least once within the horizon: each key's first loss decides it.
    """
    out = np.zeros(len(trials), dtype=bool)
    soon = model.horizon * (1 + 1e-9)  # a margin for numpy's logarithm, which may differ from math's in the last digit
    for wallet in model.losing_keys:
        lost_once = {sg.index: _first_loss(sg, uniform_array(seed, _stream(wallet, sg), trials)) < soon
                     for sg in wallet.signers if sg.loss_per_day > 0}
        for need, members in wallet.groups:
            lost = [lost_once[i] for i in members if i in lost_once]
            if len(lost) > len(members) - need:
                out |= np.sum(lost, axis=0) > len(members) - need
    return out


def _first_loss(signer: SignerModel, u: np.ndarray) -> np.ndarray:
    """Return the time of a key's first loss for each uniform draw in ``u`` (an exponential waiting time)."""
    first: np.ndarray = -np.log1p(-u) / signer.loss_per_day
    return first


def locks(model: CompiledScenario, rnd: TrialRandom) -> list[Lock]:
    """Return the trial's locks, in time order (none if no custody loses keys)."""
    out: list[Lock] = []
    locked: dict[str, list[tuple[float, float]]] = {}  # account -> its locked spans (its wallets share the keys)
    for wallet in model.losing_keys:
        spans = locked.get(wallet.account)
        if spans is None:
            away = {sg.index: _unavailable(model.horizon, rnd, wallet, sg) for sg in wallet.signers
                    if sg.loss_per_day > 0}
            spans = locked[wallet.account] = _union([
                span for need, members in wallet.groups
                for span in _group_locked(need, len(members), [s for i in members for s in away.get(i, ())])])
        out += [Lock(wallet.id, a, b) for a, b in spans]
    out.sort(key=lambda lock: lock.start)
    return out


def _unavailable(horizon: float, rnd: TrialRandom, wallet: WalletModel,
                 signer: SignerModel) -> list[tuple[float, float]]:
    """Return the spans within the horizon over which the key is lost (the last one may have no end)."""
    name = _stream(wallet, signer)
    spans: list[tuple[float, float]] = []
    t, k = 0.0, 0
    while True:
        t += -math.log1p(-rnd.uniform(name, k)) / signer.loss_per_day
        if t >= horizon:
            return spans
        final = signer.recovery_days == math.inf or (
            signer.unrecoverable > 0 and rnd.uniform(f"{name}:unrecoverable", k) < signer.unrecoverable)
        if final:
            spans.append((t, math.inf))
            return spans
        spans.append((t, t + signer.recovery_days))
        t += signer.recovery_days
        k += 1


def _group_locked(need: int, size: int, lost: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Return the spans over which more of a group's ``size`` keys are lost than it can spare (``size - need``)."""
    spare = size - need
    if len(lost) <= spare:
        return []
    # at equal times a key comes back before another is lost: no lock of zero length
    edges = sorted([(a, 1) for a, _ in lost] + [(b, -1) for _, b in lost if b < math.inf])
    spans: list[tuple[float, float]] = []
    count, start = 0, 0.0
    for t, step in edges:
        count += step
        if step > 0 and count == spare + 1:
            start = t
        elif step < 0 and count == spare:
            spans.append((start, t))
    if count > spare:
        spans.append((start, math.inf))
    return spans


def _union(spans: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Return the union of ``spans`` as disjoint spans in time order (the wallet is locked if any group is)."""
    out: list[tuple[float, float]] = []
    for a, b in sorted(spans):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out
