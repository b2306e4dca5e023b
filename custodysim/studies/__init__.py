"""What a user asks for: a run, a sweep, an attribution, a comparison, each written as a folder.

Owns the library API behind each command (``execute_run``, ``execute_sweep``, ``execute_attribution``,
``compare_runs``): it simulates, summarises, reports and writes, with the manifest's provenance.
May import: every layer below it (reporting, analysis, running, simulation, scenario); only the CLI is above.
"""
