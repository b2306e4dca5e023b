"""Many trials: chunks of trials on workers, assembled in trial order into tidy rows, and the run folder.

Owns the runner, executors (local processes, Dask), chunk checkpoints, the precision rule, the rows,
trials.csv, and writing and reading run folders.
May import: :mod:`custodysim.simulation`, :mod:`custodysim.scenario` and :mod:`custodysim.errors`.
"""
