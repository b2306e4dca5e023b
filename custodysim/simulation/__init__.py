"""One trial: the compiled model of a variant, and the SimPy world where campaigns spread and steal.

Owns the compiled model, named random streams, campaigns and their spread, the theft paths, the treasury
(operations as a lazy ledger) and the engine (a trial's world, detection and response).
May import: :mod:`custodysim.scenario` and :mod:`custodysim.errors`; never running, analysis or reports.
"""
