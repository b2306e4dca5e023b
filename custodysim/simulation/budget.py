"""What one trial may cost: campaigns started, attacker actions taken, story lines told.

A valid scenario may still ask for a trial that never ends (ten thousand campaigns a year, each watched
at every legitimate transfer) or holds gigabytes (every sampled campaign is kept until each variant of
its chunk has simulated it). The engine counts as it goes, where counting is cheap (once per threat
sampled, per node taken, per theft transfer, per alarm, per wake of the operations clock), and stops a
trial past its budget with :class:`~custodysim.errors.TrialTooCostly`, naming the scenario's cause.
The budgets are far above what any bundled scenario needs (see docs/model.md, "Limits").
"""

from __future__ import annotations

from collections.abc import Mapping

MAX_CAMPAIGNS = 1_000
"""Campaigns (and insider acts) one trial may start, all threats together: each is sampled and kept in
memory (a few kilobytes) until every variant of its chunk has simulated it."""
MAX_ACTIONS = 1_000_000
"""Attacker actions one trial may take: nodes taken, theft transfers (and a drain's waits), alarms and
the organisations told of them, and each look of the operations clock at a campaign that can rewrite
transfers. Each costs microseconds: a trial at the budget runs for tens of seconds."""
MAX_STORY_LINES = 10_000
"""Lines one trial's story keeps (``custodysim trace``, stories.json, the reports); the rest are cut."""


def too_many_campaigns(started: Mapping[str, int], cap: int) -> str:
    """Say that a trial starts more campaigns than :data:`MAX_CAMPAIGNS`, which threat most, and what to change."""
    return (f"it starts {sum(started.values()):,} campaigns, more than the {MAX_CAMPAIGNS:,} a trial may: "
            + campaigns_cause(started, cap))


def campaigns_cause(started: Mapping[str, int], cap: int) -> str:
    """Say which threat started most of a trial's campaigns, and what to change.

    Args:
        started: the campaigns started in the trial, by threat id (an insider's acts as ``insider:PERSON``).
        cap: the scenario's ``max_campaigns_per_threat``.
    """
    who, n = max(started.items(), key=lambda item: item[1])
    if who.startswith("insider:"):
        person = who.removeprefix("insider:")
        return (f"insider {person} acted {n:,} times; lower people.{person}.insider_rate_per_year or "
                f"settings.max_campaigns_per_threat ({cap:,}), or shorten settings.horizon_days")
    return (f"threat {who} started {n:,} of them; lower threats.{who}.campaigns_per_year or "
            f"settings.max_campaigns_per_threat ({cap:,}), or shorten settings.horizon_days")


def transfers_cause(campaign: str, threat: str | None, transfers: int, interval_minutes: float) -> str:
    """Say which campaign sent most of a trial's theft transfers, and what to change."""
    if threat is None:
        return (f"{campaign} sent {transfers:,} of them (an insider sends one every {interval_minutes:g} minutes); "
                "shorten settings.horizon_days")
    return (f"campaign {campaign} sent {transfers:,} of them, one every {interval_minutes:g} minutes; raise "
            f"threats.{threat}.drain_interval_minutes, or shorten settings.horizon_days")
