"""Errors a person can act on: each problem names the field path and, where known, the YAML line."""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path

PathT = tuple[str | int, ...]


def format_path(path: PathT) -> str:
    r"""Render ``("wallets", "hot", "signers", 0)`` as ``wallets.hot.signers[0]``.

    An empty key, or one holding a line break or another invisible character, is shown quoted
    (``exposure['a\nb']``), so that the path stays on one line and says what the file holds.
    """
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif not part or not part.isprintable():
            out += f"[{part!r}]"
        else:
            out += ("." if out else "") + part
    return out or "(top level)"


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a scenario file."""

    path: PathT
    message: str
    line: int | None = None

    def render(self, source: str | None = None) -> str:
        """Return ``file:line: path: message``."""
        where = f"{source}:" if source else ""
        if self.line is not None:
            where += f"{self.line}:"
        return f"{where} {format_path(self.path)}: {self.message}".lstrip()


class CustodysimError(Exception):
    """Base of the errors the CLI turns into a message and exit code 1."""


class ScenarioError(CustodysimError):
    """A scenario file that cannot be used, with every problem found."""

    def __init__(self, source: Path | str, problems: list[Problem]) -> None:
        self.source = str(source)
        self.problems = problems
        super().__init__(self.render())

    def render(self) -> str:
        """Return the problems, one a line, after a header line."""
        n = len(self.problems)
        head = f"{self.source}: {n} problem{'s' if n != 1 else ''} found"
        return "\n".join([head, *("  " + p.render(self.source) for p in self.problems)])


class RunFolderError(CustodysimError):
    """A run folder that cannot be written or read (it exists, is in use, or its files are damaged)."""


class WriteError(RunFolderError):
    """A file or folder that could not be written (a full disk, no permission, a folder gone).

    Args:
        path: what was being written.
        cause: the operating system's error.
    """

    def __init__(self, path: Path, cause: OSError) -> None:
        self.path = path
        self.cause = cause.strerror or str(cause)
        super().__init__(f"cannot write {path}: {self.cause}")


class OutputExistsError(CustodysimError):
    """A file custodysim would write exists already (custodysim never overwrites one silently)."""


class LimitError(CustodysimError):
    """A run larger than a limit that protects the machine's memory or time."""


class TrialTooCostly(CustodysimError):
    """A trial past what one trial may cost (:mod:`custodysim.simulation.budget`): the scenario asks too much.

    Args:
        trial: the trial's number.
        cause: what in the scenario made it costly, and what to change.
        variant: the variant simulated (None: not known where the trial stopped).
    """

    def __init__(self, trial: int, cause: str, variant: str | None = None) -> None:
        super().__init__(trial, cause, variant)  # the arguments again when unpickled (from a worker)
        self.trial, self.cause, self.variant = trial, cause, variant

    def __str__(self) -> str:
        """Say which trial stopped, and why."""
        of = f" of variant {self.variant}" if self.variant is not None else ""
        return f"trial {self.trial}{of} is too costly to simulate: {self.cause}"


class RunInterrupted(CustodysimError):
    """A run stopped by Ctrl-C or SIGTERM; its completed chunks are kept for ``--resume``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        super().__init__(f"interrupted: no run folder was written; the completed chunks are kept in a hidden "
                         f"folder beside it. Resume with: custodysim run --resume {shlex.quote(str(folder))}")


class OptionError(CustodysimError):
    """A run option out of its range, or options that do not go together."""


class ExecutorError(CustodysimError):
    """An executor that cannot be used: Dask not installed, or its scheduler not answering."""


class WorkerLost(ExecutorError):
    """A worker process (or the Dask scheduler) lost in the middle of a run, named with the task it held."""


class RunStopped(CustodysimError):
    """A run stopped by a fault (a lost worker or scheduler); its completed chunks are kept for ``--resume``."""

    def __init__(self, cause: str, folder: Path) -> None:
        self.folder = folder
        super().__init__(f"{cause}; no run folder was written; the completed chunks are kept in a hidden folder "
                         f"beside it. Resume with: custodysim run --resume {folder}")
