"""The run folder: written aside, then made visible in one rename, never over an existing run.

A run writes into a hidden sibling folder (``.NAME.partial``) and renames it to ``NAME`` only when
every file is complete, so a crash or Ctrl-C leaves no folder that looks like a finished run. Each file
is written aside and renamed into place, so no file is ever seen half-written, and any error of the
operating system while writing (a full disk, say) is raised as a :class:`WriteError` naming the path.

A process holds the staging folder it writes locked, so that a second run to the same folder is told
that a run is in progress rather than that one was interrupted. The lock is an advisory ``flock`` on the
folder itself: POSIX systems (Linux, macOS) keep it on local file systems and drop it when the process
ends, however it ends, so a killed run leaves no stale lock. A file system that cannot lock (some
network file systems), or a system without ``flock``, is written unlocked.
"""

from __future__ import annotations

import csv
import json
import math
import os
import shlex
import shutil
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from custodysim.errors import RunFolderError, WriteError

try:
    import fcntl
except ImportError:  # not a POSIX system: runs are written unlocked
    fcntl = None  # type: ignore[assignment]

RESULTS_DIR = Path("results")


def default_run_dir(scenario_name: str, now: datetime | None = None, root: Path = RESULTS_DIR) -> Path:
    """Return a new folder path under ``root`` named after the scenario and the time."""
    now = now or datetime.now(timezone.utc)
    base = root / f"{scenario_name}-{now:%Y%m%d-%H%M%S}"
    candidate, k = base, 2
    while candidate.exists():
        candidate = base.with_name(f"{base.name}-{k}")
        k += 1
    return candidate


def ensure_new(final: Path, replace: bool = False) -> None:
    """Refuse a run folder that exists, unless ``replace`` is asked and it is a complete run.

    Raises:
        RunFolderError: if ``final`` exists and may not be replaced.
    """
    if not final.exists():
        return
    if not replace:
        raise RunFolderError(f"{final} already exists; choose another --out, or pass --replace to replace "
                             "a previous run (runs are never overwritten silently)")
    if not (final / "manifest.json").is_file():
        raise RunFolderError(f"{final} exists and is not a complete run folder; --replace only replaces runs")


def partial_dir(final: Path) -> Path:
    """Return the hidden folder where the run to ``final`` is assembled (and kept if interrupted)."""
    return final.parent / f".{final.name}.partial"


@contextmanager
def staged_folder(final: Path, replace: bool = False, resume: bool = False,
                  keep_unfinished: bool = True) -> Iterator[Path]:
    """Yield the hidden staging folder of ``final``; it becomes ``final`` only if the block completes.

    If the block is interrupted or fails, the staging folder stays (hidden, named ``.NAME.partial``) so
    that a run can be resumed, unless ``keep_unfinished`` is false (for outputs that are quick to redo);
    it never looks like a finished run. With ``replace``, a previous complete run at ``final`` is swapped
    out only once the new one is complete (and stays if the swap fails). The staging folder is locked
    while the block runs.

    Raises:
        RunFolderError: ``final`` exists and may not be replaced; an interrupted run is in the way (or,
            with ``resume``, missing); a live run holds the staging folder; or the folder cannot be made.
        WriteError: the staging folder cannot be put in place.
    """
    staging = partial_dir(final)
    if resume:
        if not staging.is_dir():
            raise RunFolderError(f"{final}: there is no interrupted run to resume (no {staging.name} beside it)")
        held = _lock(staging)
        if held is None:
            raise RunFolderError(_live(final, staging))
    else:
        ensure_new(final, replace)
        if staging.exists():
            raise RunFolderError(_in_the_way(final, staging))
        try:
            staging.mkdir(parents=True)
        except OSError as exc:
            raise RunFolderError(f"cannot create {staging}: {exc.strerror}") from None
        held = _lock(staging)
        if held is None:  # another run made the same folder at the same moment
            raise RunFolderError(_in_the_way(final, staging))
    try:
        _write_holder(staging)
        yield staging
        with suppress(OSError):
            (staging / HOLDER).unlink()
        _put_in_place(staging, final, replace)
    except BaseException:
        with suppress(OSError):
            (staging / HOLDER).unlink()
        if not keep_unfinished:
            shutil.rmtree(staging, ignore_errors=True)
        with suppress(OSError):
            staging.rmdir()  # if nothing was written yet, there is nothing to keep
        raise
    finally:
        _unlock(held)


def check_not_live(final: Path) -> None:
    """Refuse to resume the run to ``final`` while a live process holds its staging folder.

    Raises:
        RunFolderError: naming the process.
    """
    staging = partial_dir(final)
    if staging.is_dir():
        held = _lock(staging)
        if held is None:
            raise RunFolderError(_live(final, staging))
        _unlock(held)


def in_progress(staging: Path) -> bool:
    """Return whether a live process holds the staging folder ``staging`` (a run to it is in progress).

    False when nothing holds it (an interrupted run), and where it cannot be told (a folder that cannot
    be opened, a file system without locks).
    """
    try:
        held = _lock(staging)
    except RunFolderError:
        return False
    if held is None:
        return True
    _unlock(held)
    return False


def _live(final: Path, staging: Path) -> str:
    return (f"{final}: the run to this folder is still in progress ({_holder(staging)}); only an interrupted run "
            "can be resumed")


def _put_in_place(staging: Path, final: Path, replace: bool) -> None:
    """Rename ``staging`` to ``final``, swapping out a previous run there, which comes back if the rename fails."""
    retired = None
    if final.exists():
        ensure_new(final, replace)
        retired = final.parent / f".{final.name}.replaced-{os.getpid()}"
        with writing(final):
            final.rename(retired)
    try:
        staging.rename(final)
    except OSError as exc:
        if retired is not None:
            retired.rename(final)
        raise WriteError(final, exc) from None
    if retired is not None:
        shutil.rmtree(retired, ignore_errors=True)


HOLDER = "lock"
"""The file in a staging folder naming the process that holds the folder (the lock is on the folder itself)."""
_HELD: set[int] = set()
"""Descriptors of the staging folders this process holds locked."""


def _lock(staging: Path) -> int | None:
    """Lock ``staging`` for this process; return the descriptor that holds it, or None if another holds it."""
    try:
        fd = os.open(staging, os.O_RDONLY)
    except OSError as exc:
        raise RunFolderError(f"cannot open {staging}: {exc.strerror}") from None
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    except OSError:
        pass  # a file system without locks: written unlocked
    _HELD.add(fd)
    return fd


def _unlock(fd: int) -> None:
    _HELD.discard(fd)
    os.close(fd)


def _forget_locks() -> None:
    """In a forked worker: close the parent's locked descriptors, so the lock goes when the parent does."""
    for fd in _HELD:
        with suppress(OSError):
            os.close(fd)
    _HELD.clear()


os.register_at_fork(after_in_child=_forget_locks)


def _write_holder(staging: Path) -> None:
    write_file(staging / HOLDER, f"{os.getpid()}\n")


def _holder(staging: Path) -> str:
    """Return which process holds ``staging``, as a message says it."""
    try:
        pid = int((staging / HOLDER).read_text(encoding="ascii"))
    except (OSError, ValueError):
        return "by another process"
    return f"process {pid}"


def _in_the_way(final: Path, staging: Path) -> str:
    """Return what to tell a new run to ``final`` whose staging folder exists already."""
    held = _lock(staging)
    if held is None:
        return (f"{final}: a run to this folder is in progress ({_holder(staging)}, writing {staging}); wait "
                "for it to finish, or choose another --out")
    _unlock(held)
    return (f"{final}: an interrupted run to this folder is kept in {staging}; resume it with "
            f"'custodysim run --resume {shlex.quote(str(final))}' or delete {staging}")


@contextmanager
def writing(path: Path) -> Iterator[None]:
    """Turn an error of the operating system in the block into a :class:`WriteError` naming ``path``."""
    try:
        yield
    except OSError as exc:
        raise WriteError(path, exc) from None


Content = str | bytes | Callable[[Path], None]
"""A file's content: text (written as UTF-8), bytes, or a function that writes the file at the path it is given."""


def replace_files(files: Mapping[Path, Content]) -> None:
    """Write every file aside, then rename them all into place: a failure while writing changes none of them.

    Raises:
        WriteError: naming the file that could not be written (the files aside are removed).
    """
    aside = {path: path.with_name(f".{path.name}.tmp") for path in files}
    try:
        for path, content in files.items():
            with writing(path):
                if callable(content):
                    content(aside[path])
                else:
                    aside[path].write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
        for path, tmp in aside.items():
            with writing(path):
                os.replace(tmp, path)
    finally:
        for tmp in aside.values():
            with suppress(OSError):
                tmp.unlink()


def write_file(path: Path, content: Content) -> None:
    """Write one file aside and rename it into place (see :func:`replace_files`)."""
    replace_files({path: content})


def json_text(data: Any) -> str:
    """Return ``data`` as indented JSON text (NaN and infinity as null)."""
    return json.dumps(_clean(data), indent=2, sort_keys=False) + "\n"


def write_json(path: Path, data: Any) -> None:
    """Write ``data`` as indented JSON (NaN and infinity as null), in one step (see :func:`write_file`)."""
    write_file(path, json_text(data))


def _clean(x: Any) -> Any:
    if isinstance(x, float):
        return None if math.isnan(x) or math.isinf(x) else x
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    if isinstance(x, np.generic):
        return _clean(x.item())
    return x


def write_rows(path: Path, rows: list[dict[str, Any]], fieldnames: Sequence[str]) -> None:
    """Write tidy rows as CSV, one column per field name.

    Numbers are written as Python writes them (``repr``: the shortest text that reads back to the same
    float), a missing value (None) as an empty field, true and false in lower case.
    """
    with writing(path), path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=fieldnames)
        writer.writeheader()
        writer.writerows({k: _cell(v) for k, v in row.items()} for row in rows)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, float) else str(value)
