"""Named random streams and the distributions sampled from them."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from custodysim.scenario.distributions import Exponential, LogNormal, Triangular, Uniform, poisson_quantile
from custodysim.simulation.randomness import TrialRandom, uniform


@given(seed=st.integers(0, 2**63 - 1), trial=st.integers(0, 10**7), index=st.integers(0, 10**6))
def test_uniform_is_in_unit_interval(seed, trial, index):
    """Every draw lies in [0, 1)."""
    assert 0.0 <= uniform(seed, "x", trial, index) < 1.0


def test_draw_depends_only_on_its_address():
    """The same (seed, name, trial, index) gives the same number, however it is reached."""
    r = TrialRandom(5, 17)
    assert r.uniform("edge:a>b", 3) == uniform(5, "edge:a>b", 17, 3) == TrialRandom(5, 17).uniform("edge:a>b", 3)


def test_streams_trials_and_seeds_differ():
    """Changing the stream name, the trial, the index or the seed changes the draw."""
    base = uniform(1, "a", 0, 0)
    assert len({base, uniform(1, "b", 0, 0), uniform(1, "a", 1, 0), uniform(1, "a", 0, 1), uniform(2, "a", 0, 0)}) == 5


def test_draws_look_uniform_and_independent():
    """10,000 draws have the moments of U(0,1) and no lag-1 correlation across trials."""
    x = np.array([uniform(3, "s", t) for t in range(10_000)])
    assert abs(x.mean() - 0.5) < 0.01
    assert abs(x.var() - 1 / 12) < 0.005
    assert abs(np.corrcoef(x[:-1], x[1:])[0, 1]) < 0.03


def test_lognormal_matches_median_and_p90():
    """A lognormal given by median 10 and p90 30 has those quantiles."""
    d = LogNormal(dist="lognormal", median=10, p90=30)
    assert d.sample(0.5) == pytest.approx(10)
    assert d.sample(0.9) == pytest.approx(30)


def test_exponential_triangular_uniform_quantiles():
    """Inverse CDFs of the exponential, triangular and uniform give their textbook quantiles."""
    assert Exponential(dist="exponential", mean=2).sample(1 - math.exp(-1)) == pytest.approx(2)
    tri = Triangular(dist="triangular", low=0, mode=1, high=2)
    assert tri.sample(0.5) == pytest.approx(1)
    assert Uniform(dist="uniform", low=2, high=4).sample(0.25) == pytest.approx(2.5)


def test_poisson_quantile_has_the_right_mean():
    """Poisson counts from inverse CDF have mean lambda."""
    counts = [poisson_quantile(1.7, uniform(0, "p", t), 100) for t in range(20_000)]
    assert abs(np.mean(counts) - 1.7) < 0.05
    assert poisson_quantile(1000.0, 0.999, 5) == 5
