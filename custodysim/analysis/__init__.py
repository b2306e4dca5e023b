"""Figures from rows: statistics, costs and survival, the frontier, and the inputs the loss depends on.

Owns the summary statistics, economics (control costs, capital, insurance), the security/operations
frontier, the tornado of uncertain inputs and the list of key inputs.
May import: :mod:`custodysim.running` and the layers below it, and :mod:`custodysim.formatting`.
"""
