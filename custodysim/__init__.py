"""custodysim: what would a crypto exchange's custody architecture lose to a real attacker?

The library API: :func:`load_scenario` validates a scenario file, :func:`execute_run` runs it and writes a
run folder, :func:`run_variants` returns the tidy trial rows without writing anything.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("custodysim")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0+unknown"

from custodysim.running.runner import run_variants
from custodysim.scenario.loader import LoadedScenario, load_scenario
from custodysim.studies.run import RunOutcome, execute_run

__all__ = ["LoadedScenario", "RunOutcome", "__version__", "execute_run", "load_scenario", "run_variants"]
