"""How precisely a run knows each expected loss, and stopping it once every one is known well enough.

The 95% confidence interval of a mean (:func:`mean_ci`) is defined here, for the stopping rule and for
every figure computed from the rows. The rule looks at whole chunks of trials in trial order, after each
chunk: whatever the number of workers or the order in which chunks complete, it sees the same trials and
stops at the same count.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from custodysim.errors import OptionError

Z95 = 1.959963984540054


def ci_half_width(x: np.ndarray) -> float:
    """Return the half-width of the normal-approximation 95% confidence interval of the mean (0 below 2 values)."""
    n = len(x)
    return Z95 * float(np.std(x, ddof=1)) / math.sqrt(n) if n >= 2 else 0.0


def mean_ci(x: np.ndarray) -> tuple[float, float, float]:
    """Return (mean, low, high) of the normal-approximation 95% confidence interval of the mean."""
    n = len(x)
    m = float(np.mean(x)) if n else 0.0
    if n < 2:
        return m, m, m
    half = ci_half_width(x)
    return m, m - half, m + half


DEFAULT_MAX_TRIALS = 1_000_000
"""Trials per variant at most, when a run stops on precision."""
MIN_TRIALS = 2000
"""Trials per variant run before the rule is first checked: a few hundred can look precise by luck."""


@dataclass(frozen=True)
class StopRule:
    """Run chunks until the 95% CI half-width of every variant's expected loss is within ``target`` of it.

    A variant with no loss in any trial so far counts as precise (its half-width is 0).

    Args:
        target: the half-width as a share of the expected loss, in (0, 1) (0.02 for 2%).
        max_trials: trials per variant at most; the run stops there even if not precise enough.

    Raises:
        OptionError: a setting out of range.
    """

    target: float
    max_trials: int = DEFAULT_MAX_TRIALS

    def __post_init__(self) -> None:
        if isinstance(self.target, bool) or not isinstance(self.target, (int, float)) \
                or not 0 < self.target < 1:
            raise OptionError(f"--precision is the CI half-width as a share of the expected loss, between 0 and 1 "
                              f"(0.02 for 2%), not {self.target}")
        if isinstance(self.max_trials, bool) or not isinstance(self.max_trials, int) or self.max_trials < 1:
            raise OptionError(f"--max-trials must be 1 or more, not {self.max_trials}")


def relative_half_width(loss: np.ndarray) -> float:
    """Return the 95% CI half-width of the mean loss as a share of it (0 when there is no loss at all)."""
    mean = float(np.mean(loss)) if len(loss) else 0.0
    return 0.0 if mean == 0 else ci_half_width(loss) / abs(mean)


class PrecisionCheck:
    """Tells, chunk after chunk, whether a :class:`StopRule` is met.

    Running moments (Chan's pairwise update) give a cheap first look after each chunk; only when they
    say the target is met is it confirmed on every trial so far, with the very formula of the summary.
    Both depend on the trials alone, so the decision is the same however the chunks were computed.
    """

    def __init__(self, rule: StopRule, variants: list[str]) -> None:
        self.rule = rule
        self._moments = {v: (0, 0.0, 0.0) for v in variants}

    def add(self, variant: str, loss: np.ndarray) -> None:
        """Take in the losses of the next chunk of ``variant``."""
        n_b = len(loss)
        if n_b == 0:
            return
        mean_b = float(np.mean(loss))
        m2_b = float(np.sum((loss - mean_b) ** 2))
        n_a, mean_a, m2_a = self._moments[variant]
        n = n_a + n_b
        delta = mean_b - mean_a
        self._moments[variant] = (n, mean_a + delta * n_b / n, m2_a + m2_b + delta * delta * n_a * n_b / n)

    def _estimate(self, variant: str) -> float:
        n, mean, m2 = self._moments[variant]
        if n < 2 or mean == 0:
            return 0.0
        return Z95 * math.sqrt(m2 / (n - 1)) / math.sqrt(n) / abs(mean)

    def met(self, losses: dict[str, np.ndarray]) -> dict[str, float] | None:
        """Return each variant's achieved relative half-width if the target is met by ``losses``, else None.

        Args:
            losses: every variant's losses so far, in trial order (the trials taken in by :meth:`add`).
        """
        slack = 1 + 1e-6  # the running estimate may differ from the exact figure in the last digits
        if any(self._estimate(v) > self.rule.target * slack for v in self._moments):
            return None
        achieved = {v: relative_half_width(losses[v]) for v in self._moments}
        return achieved if all(a <= self.rule.target for a in achieved.values()) else None
