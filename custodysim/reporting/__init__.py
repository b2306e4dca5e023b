"""Figures into words and pictures: report.md and report.html, charts, and the stories of trials.

Owns the report templates and their rendering, every chart (matplotlib, imported only to draw), the
frontier and sweep charts, and the stories told by re-simulating a trial with its trace on.
May import: :mod:`custodysim.analysis` and the layers below it, and :mod:`custodysim.formatting`.
"""
