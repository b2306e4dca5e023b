"""What one trial reports: its losses by asset, path and wallet, what stopped the attacker, and when."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from custodysim.formatting import amount
from custodysim.simulation.treasury import OperationsTally

PATH_TYPES = ("key_theft", "tampering", "forged_request", "insider", "lock_out")
"""How a loss came about: four ways of theft, and ``lock_out`` (a wallet nobody can sign for any more)."""
THEFT_PATHS = PATH_TYPES[:4]


@dataclass
class LossEvent:
    """One loss event (an occurrence): everything one campaign stole in the trial, or one account's lock-out.

    As a crime policy counts occurrences, the thefts of one campaign (one actor, acting in concert) are one
    event however many transfers they took; a lock-out is an event of its own.

    Attributes:
        event: the campaign's label (``tradertraitor#0``, ``insider:alice#0``) or ``lock-out:ACCOUNT``.
        peril: what caused it: the threat, ``insider:PERSON``, or ``lost keys``.
        day: when its first loss left (days into the trial).
        loss_usd: its loss, USD at the prices when each part left.
        path: the attack path that carried most of it (``lock_out`` for a lock-out).
        wallet: the wallet that lost most of it.
        by_path: its loss (USD) by attack path.
        by_wallet: its loss (USD) by wallet.
    """

    event: str
    peril: str
    day: float
    loss_usd: float = 0.0
    path: str = ""
    wallet: str = ""
    by_path: dict[str, float] = field(default_factory=dict)
    by_wallet: dict[str, float] = field(default_factory=dict)

    def add(self, usd: float, path: str, wallet: str) -> None:
        """Add a part of the event's loss, left from ``wallet`` by ``path``."""
        self.loss_usd += usd
        self.by_path[path] = self.by_path.get(path, 0.0) + usd
        self.by_wallet[wallet] = self.by_wallet.get(wallet, 0.0) + usd
        self.path = max(self.by_path, key=lambda k: self.by_path[k])
        self.wallet = max(self.by_wallet, key=lambda k: self.by_wallet[k])


@dataclass
class TrialResult:
    """What one trial reports: losses, footholds, stops, first times, operations, locks, and its story."""

    loss_by_asset: dict[str, float]
    loss_usd: float
    loss_usd_by_path: dict[str, float]
    loss_usd_by_wallet: dict[str, float]
    campaigns: int
    footholds: int
    stops: list[str]
    t_first_access: float
    t_first_theft: float
    t_first_alarm: float
    ops: OperationsTally
    locks: int = 0  # times a wallet was locked for want of keys (for a while, or for good)
    attack_path: list[str] = field(default_factory=list)  # the worst campaign's footholds, as chains "a@1.0d > b@2.5d"
    story: list[tuple[float, str]] = field(default_factory=list)
    events: list[LossEvent] = field(default_factory=list)  # the trial's loss events, in the order they began

    @property
    def path_type(self) -> str:
        """Return the path type that carried most of the loss ("none" without loss)."""
        if self.loss_usd <= 0:
            return "none"
        return max(self.loss_usd_by_path, key=lambda k: self.loss_usd_by_path[k])

    @property
    def outcome(self) -> str:
        """Return loss, stopped, no_theft (in but took nothing), no_foothold or no_campaign."""
        return outcome(self.loss_usd, self.stops, self.footholds, self.campaigns)


def outcome(loss_usd: float, stops: Sequence[str], footholds: int, campaigns: int) -> str:
    """Return a trial's outcome: loss, stopped, no_theft (in but took nothing), no_foothold or no_campaign."""
    if loss_usd > 0:
        return "loss"
    if stops:
        return "stopped"
    if footholds:
        return "no_theft"
    return "no_foothold" if campaigns else "no_campaign"


class Units(float):
    """An amount of an asset, written in a story as the tables write it (``523,000,000``, ``0.5``)."""

    def __format__(self, spec: str) -> str:
        return amount(self) if not spec else super().__format__(spec)
