"""The scenario format: what an architect writes, read from YAML and validated into immutable specs.

Owns the schema, the YAML source with its line numbers, the loader and its cross-reference checks, the
library of named techniques and controls, distributions, sweep grids and the starter file.
May import: :mod:`custodysim.errors` only (it is the bottom layer: nothing here knows how it is simulated).
"""
