"""The examples of docs/errors.md, kept equal to what the command line really prints.

An example in docs/errors.md sits between two markers, its commands and their standard error in a
fenced block::

    <!-- example: plan-damaged -->
    ```text
    $ custodysim run --resume r4
    r4: the interrupted run's plan ...
    ```
    <!-- /example -->

A test produces the fault, runs the commands with :func:`shown` (in this process, in the current
folder: run it in a temporary folder, with ``monkeypatch.chdir``) and passes the result to
:func:`check_example`, which fails if the block differs. With ``CUSTODYSIM_REGENERATE_DOCS=1`` it
rewrites the block instead. To document a new fault, add the two markers where it belongs (an empty
fenced block between them will do) and a test that calls :func:`check_example` with its name.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path

from typer.testing import CliRunner

from custodysim.cli import app

DOC = Path(__file__).resolve().parent.parent / "docs" / "errors.md"
REGENERATE = os.environ.get("CUSTODYSIM_REGENERATE_DOCS") == "1"
END = "<!-- /example -->"


def shown(*args: str, code: int = 1, same: dict[str, str] | None = None) -> str:
    """Run ``custodysim ARGS``; return the command and what it printed on standard error, as the docs show them.

    Args:
        args: the command's arguments.
        code: the exit code the command must end with.
        same: texts that differ from one run to the next (a process id), and what the docs show instead.
    """
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == code, (result.exit_code, result.output, result.exception)
    text = result.stderr.strip()  # a progress bar leaves an empty line behind
    assert "Traceback" not in text
    for varying, fixed in (same or {}).items():
        text = text.replace(varying, fixed)
    return f"$ custodysim {shlex.join(args)}\n{text}"


def check_example(name: str, *outputs: str) -> None:
    """Fail unless docs/errors.md's example ``name`` shows ``outputs`` (or rewrite it, with REGENERATE)."""
    doc = DOC.read_text(encoding="utf-8")
    begin = f"<!-- example: {name} -->\n"
    start = doc.find(begin)
    assert start >= 0, f"docs/errors.md has no example {name!r}: add '{begin.strip()}' and '{END}' around it"
    start += len(begin)
    stop = doc.index(END, start)
    block = "```text\n" + "\n".join(outputs) + "\n```\n"
    if doc[start:stop] == block:
        return
    if REGENERATE:
        DOC.write_text(doc[:start] + block + doc[stop:], encoding="utf-8")
        return
    assert doc[start:stop] == block, (f"docs/errors.md's example {name!r} is not what the command prints; "
                                      "rerun with CUSTODYSIM_REGENERATE_DOCS=1 to rewrite it")
