"""``custodysim new``: a commented starter scenario for a typical exchange, to edit rather than write from nothing."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from custodysim.errors import OutputExistsError


def starter_text() -> str:
    """Return the starter scenario: hot, warm and cold wallets, a wallet vendor, a DPRK-style threat, two variants."""
    return resources.files("custodysim.scenario").joinpath("starter.yaml").read_text(encoding="utf-8")


def write_starter(path: Path) -> None:
    """Write the starter scenario to ``path``, which must not exist yet.

    Raises:
        OutputExistsError: ``path`` exists already.
        OSError: the folder cannot be written.
    """
    try:
        with path.open("x", encoding="utf-8") as f:  # "x": created here, or refused; never an overwrite
            f.write(starter_text())
    except FileExistsError:
        raise OutputExistsError(f"{path} exists already; custodysim new never overwrites a file: "
                                "choose another name") from None
