"""Probability distributions as analysts estimate them, sampled by inverse CDF from a named uniform.

Sampling by inverse CDF (rather than from a generator's own method) keeps common random numbers exact:
the same uniform maps to the same quantile in every variant, so a longer delay in one variant is the
same trial's delay stretched, not a fresh draw.
"""

from __future__ import annotations

import math
from functools import cached_property
from statistics import NormalDist
from typing import Annotated, Literal, Union

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

_STD_NORMAL = NormalDist()
_normal_quantile = _STD_NORMAL.inv_cdf
_Z90 = _STD_NORMAL.inv_cdf(0.9)


class _Dist(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False, strict=True)

    def sample(self, u: float) -> float:
        """Return the quantile of this distribution at ``u`` in [0, 1)."""
        raise NotImplementedError

    def mean(self) -> float:
        """Return the distribution's mean."""
        raise NotImplementedError


class Fixed(_Dist):
    """Always the same value."""

    dist: Literal["fixed"] = "fixed"
    value: float = Field(ge=0)

    def sample(self, u: float) -> float:  # noqa: D102
        return self.value

    def mean(self) -> float:  # noqa: D102
        return self.value


class Uniform(_Dist):
    """Uniform between ``low`` and ``high``."""

    dist: Literal["uniform"]
    low: float = Field(ge=0)
    high: float = Field(ge=0)

    @model_validator(mode="after")
    def _ordered(self) -> Uniform:
        if self.high < self.low:
            raise ValueError("high must be >= low")
        return self

    def sample(self, u: float) -> float:  # noqa: D102
        return self.low + (self.high - self.low) * u

    def mean(self) -> float:  # noqa: D102
        return (self.low + self.high) / 2


class Exponential(_Dist):
    """Exponential with the given ``mean`` (a constant hazard of 1/mean)."""

    dist: Literal["exponential"]
    mean_value: float = Field(gt=0, alias="mean")

    def sample(self, u: float) -> float:  # noqa: D102
        return -self.mean_value * math.log1p(-u)

    def mean(self) -> float:  # noqa: D102
        return self.mean_value


class LogNormal(_Dist):
    """Lognormal given by its median and 90th percentile, the way analysts estimate durations."""

    dist: Literal["lognormal"]
    median: float = Field(gt=0)
    p90: float = Field(gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> LogNormal:
        if self.p90 <= self.median:
            raise ValueError("p90 must be greater than median")
        return self

    @cached_property
    def sigma(self) -> float:
        """Return the log-scale standard deviation implied by median and p90 (computed once)."""
        return math.log(self.p90 / self.median) / _Z90

    def sample(self, u: float) -> float:  # noqa: D102
        u = min(max(u, 1e-12), 1 - 1e-12)
        return self.median * math.exp(self.sigma * _normal_quantile(u))

    def mean(self) -> float:  # noqa: D102
        return self.median * math.exp(self.sigma**2 / 2)


class Triangular(_Dist):
    """Triangular by ``low``, ``mode`` and ``high`` (a three-point estimate)."""

    dist: Literal["triangular"]
    low: float = Field(ge=0)
    mode: float = Field(ge=0)
    high: float = Field(ge=0)

    @model_validator(mode="after")
    def _ordered(self) -> Triangular:
        if not self.low <= self.mode <= self.high or self.low == self.high:
            raise ValueError("need low <= mode <= high and low < high")
        return self

    def sample(self, u: float) -> float:  # noqa: D102
        lo, mo, hi = self.low, self.mode, self.high
        cut = (mo - lo) / (hi - lo)
        if u < cut:
            return lo + math.sqrt(u * (hi - lo) * (mo - lo))
        return hi - math.sqrt((1 - u) * (hi - lo) * (hi - mo))

    def mean(self) -> float:  # noqa: D102
        return (self.low + self.mode + self.high) / 3


Distribution = Annotated[
    Union[Fixed, Uniform, Exponential, LogNormal, Triangular],  # noqa: UP007
    Field(discriminator="dist"),
]
"""A non-negative quantity: a plain number (fixed) or a mapping with ``dist:`` naming the family."""

FAMILIES: dict[str, type[_Dist]] = {"fixed": Fixed, "uniform": Uniform, "exponential": Exponential,
                                    "lognormal": LogNormal, "triangular": Triangular}
"""The distribution families by their ``dist:`` name."""


def parameters(family: str) -> list[str]:
    """Return the fields a family takes besides ``dist`` (``median``, ``p90``), as written in a file."""
    return [f.alias or name for name, f in FAMILIES[family].model_fields.items() if name != "dist"]


def as_distribution(value: object) -> object:
    """Let a bare number stand for a fixed distribution (used as a pydantic before-validator)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return {"dist": "fixed", "value": value}
    return value


def poisson_quantiles(lam: float, u: np.ndarray, cap: int) -> np.ndarray:
    """Return :func:`poisson_quantile` at every ``u`` (the same integers)."""
    if lam <= 0 or cap <= 0:
        return np.zeros(len(u), dtype=np.int64)
    cdf = np.empty(cap)
    p = math.exp(-lam)
    cdf[0] = total = p
    for k in range(1, cap):  # accumulated exactly as the scalar loop does
        p *= lam / k
        total += p
        cdf[k] = total
    return np.searchsorted(cdf, u, side="right").astype(np.int64)


def poisson_quantile(lam: float, u: float, cap: int) -> int:
    """Return the Poisson(``lam``) quantile at ``u``, at most ``cap``."""
    if lam <= 0:
        return 0
    p = math.exp(-lam)
    cdf = p
    k = 0
    while u >= cdf and k < cap:
        k += 1
        p *= lam / k
        cdf += p
    return k
