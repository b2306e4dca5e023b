"""Named random streams: every random quantity is addressed by (trial, stream name, index).

A counter-based generator (SplitMix64's finaliser applied to a per-stream key, the trial number and an
index) gives each draw an address instead of a position in a sequence. Two consequences matter here:

* **Common random numbers.** The draw for "edge ginco_laptop->ginco_comms, campaign 0" in trial 17 is
  the same number in every variant that has that edge, whatever else the variant changed.
* **Chunk invariance.** A trial's numbers do not depend on which worker or chunk ran it, so a run gives
  the same figures with one worker or many.

Per-stream keys come from ``numpy.random.SeedSequence(seed, spawn_key=(crc32(name),))``.
"""

from __future__ import annotations

import zlib
from functools import lru_cache

import numpy as np

_MASK = (1 << 64) - 1
_TRIAL_STEP = 0x9E3779B97F4A7C15
_INDEX_STEP = 0xD1B54A32D192ED03
_TO_UNIT = 2.0**-53


def _mix(z: int) -> int:
    """SplitMix64 finaliser: a bijective avalanche on 64-bit integers."""
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
    return z ^ (z >> 31)


@lru_cache(maxsize=65536)
def stream_key(seed: int, name: str) -> int:
    """Return the 64-bit key of the stream ``name`` under the master ``seed``."""
    state = np.random.SeedSequence(seed, spawn_key=(zlib.crc32(name.encode()),)).generate_state(2, np.uint64)
    return (int(state[0]) ^ (int(state[1]) << 1)) & _MASK


def uniform(seed: int, name: str, trial: int, index: int = 0) -> float:
    """Return the uniform draw in [0, 1) at address (trial, name, index)."""
    h = _mix((stream_key(seed, name) + trial * _TRIAL_STEP) & _MASK)
    h = _mix((h + (index + 1) * _INDEX_STEP) & _MASK)
    return (h >> 11) * _TO_UNIT


def uniform_array(seed: int, name: str, trials: np.ndarray, index: int = 0) -> np.ndarray:
    """Return :func:`uniform` at (trial, ``name``, ``index``) for every trial in ``trials``: the same numbers."""
    key = np.uint64(stream_key(seed, name))
    with np.errstate(over="ignore"):
        h = _mix_array(key + trials.astype(np.uint64) * np.uint64(_TRIAL_STEP))
        h = _mix_array(h + np.uint64(((index + 1) * _INDEX_STEP) & _MASK))
    unit: np.ndarray = (h >> np.uint64(11)).astype(np.float64) * _TO_UNIT
    return unit


def _mix_array(z: np.ndarray) -> np.ndarray:
    """:func:`_mix` on an array of uint64 (multiplication wraps around, as the mask does for ints)."""
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    mixed: np.ndarray = z ^ (z >> np.uint64(31))
    return mixed


class TrialRandom:
    """The named streams of one trial: :func:`uniform` at (trial, name, index), each draw computed once.

    A draw depends on its address only, so one instance can serve every variant of the trial: the
    variants of a chunk share it, and a draw made for one (a campaign's detection time, its response
    delays) is looked up, not recomputed, for the others.
    """

    __slots__ = ("_draws", "_keys", "seed", "trial")

    def __init__(self, seed: int, trial: int) -> None:
        self.seed = seed
        self.trial = trial
        self._keys: dict[str, int] = {}
        self._draws: dict[tuple[str, int], float] = {}

    def uniform(self, name: str, index: int = 0) -> float:
        """Return the draw ``index`` of stream ``name`` for this trial, in [0, 1)."""
        address = (name, index)
        drawn = self._draws.get(address)
        if drawn is not None:
            return drawn
        # _mix, written out twice: these are the hottest lines of a run
        base = self._keys.get(name)
        if base is None:
            z = (stream_key(self.seed, name) + self.trial * _TRIAL_STEP) & _MASK
            z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
            z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
            base = self._keys[name] = z ^ (z >> 31)
        z = (base + (index + 1) * _INDEX_STEP) & _MASK
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
        drawn = self._draws[address] = ((z ^ (z >> 31)) >> 11) * _TO_UNIT
        return drawn
