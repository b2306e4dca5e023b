"""Where tasks run: in this process, in a pool of local worker processes, or on a Dask cluster.

An executor maps a function over tasks and yields each (task, result) as it completes, keeping only a
few tasks in flight so that a caller that stops early (a precision target reached, Ctrl-C) wastes little
work. Results come back in completion order; the caller puts them back in task order, which is why the
figures of a run do not depend on the executor or on the number of workers.

Processes that die are the executor's to notice: a local worker that dies stops the map at once with a
:class:`~custodysim.errors.WorkerLost` naming it and its task, and a local map that ends for any reason
(done, stopped early, Ctrl-C, an error) kills its workers rather than waiting for their chunks. Workers
also die with the process that started them, however it ended (see :func:`_exit_with_parent`). A Dask
cluster retries the chunk of a lost worker itself; a lost scheduler ends the map with a ``WorkerLost``.
"""

from __future__ import annotations

import ctypes
import gc
import importlib
import logging
import multiprocessing
import os
import signal
import sys
import threading
from collections.abc import Callable, Generator, Iterable, Iterator
from concurrent.futures import CancelledError
from contextlib import contextmanager
from multiprocessing.connection import Connection, wait
from typing import Any, Generic, Protocol, TypeVar

from custodysim.errors import ExecutorError, OptionError, WorkerLost

J = TypeVar("J")
R = TypeVar("R")

EXECUTORS = ("local", "dask")
"""The executors ``--executor`` accepts."""
CONNECT_TIMEOUT = 10.0
"""Seconds to wait for a Dask scheduler to answer."""
IN_FLIGHT = 2
"""Tasks kept in flight per Dask worker: enough that a worker never waits for its next task (a local
worker is handed its next task the moment its result is in)."""


class Executor(Protocol):
    """Runs tasks and yields their results as they complete."""

    kind: str
    workers: int

    def map_unordered(self, fn: Callable[[J], R], tasks: Iterable[J]) -> Generator[tuple[J, R], None, None]:
        """Yield ``(task, fn(task))`` for every task, in completion order.

        Tasks are drawn from ``tasks`` only as room frees up; closing the iterator early cancels the
        tasks not yet finished. A task's ``str()`` says what it is, for the message of a lost worker.

        Raises:
            WorkerLost: a worker process (or the Dask scheduler) was lost and the task cannot finish.
        """
        ...  # pragma: no cover

    def close(self) -> None:
        """Release the executor's resources (connections, processes)."""
        ...  # pragma: no cover


def default_workers() -> int:
    """Return the number of CPUs this process may use (its affinity where the platform tells it)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def open_executor(workers: int = 1, executor: str = "local", scheduler: str | None = None) -> Executor:
    """Return the executor a run asked for.

    Args:
        workers: local worker processes (1 runs in this process, with no pool); ignored by ``dask``.
        executor: ``local`` or ``dask``.
        scheduler: the Dask scheduler's address (``tcp://host:8786``), for ``dask`` only.

    Raises:
        OptionError: a setting out of range, or a combination that makes no sense.
        ExecutorError: Dask is not installed, or its scheduler cannot be reached.
    """
    if executor not in EXECUTORS:
        raise OptionError(f"--executor must be one of {', '.join(EXECUTORS)}, not {executor!r}")
    check_workers(workers)
    if executor == "dask":
        if not scheduler:
            raise OptionError("--executor dask needs --scheduler ADDRESS (the Dask scheduler, e.g. tcp://host:8786)")
        return DaskExecutor(scheduler)
    if scheduler is not None:
        raise OptionError("--scheduler is for --executor dask; a local run takes --workers")
    return InProcess() if workers == 1 else ProcessPool(workers)


def check_workers(workers: int) -> None:
    """Refuse a number of workers below 1.

    Raises:
        OptionError: naming the value given.
    """
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise OptionError(f"--workers must be 1 or more (1 runs in this process), not {workers}")


class InProcess:
    """Runs every task here, one after the other: easy to debug and profile."""

    kind = "in-process"
    workers = 1

    def map_unordered(self, fn: Callable[[J], R], tasks: Iterable[J]) -> Generator[tuple[J, R], None, None]:
        """Yield ``(task, fn(task))`` in task order."""
        for task in tasks:
            yield task, fn(task)

    def close(self) -> None:
        """Nothing to release."""


class ProcessPool:
    """Runs tasks in local worker processes (started for each map, killed at its end).

    Each worker has a pipe of its own and runs one task at a time, so the pool always knows which task
    a worker holds: a worker that dies stops the map within moments with a :class:`WorkerLost` naming
    its process, how it ended and its task. Workers hold nothing that needs saving (results come back
    through the pipes), so a map that ends for any reason kills them instead of waiting for their tasks:
    Ctrl-C stops a run at once whatever a chunk costs.

    Workers are forked from this process when it runs no other thread (see :func:`_start_context`), and
    otherwise started by a fork server, since forking a threaded process can copy a lock in a held
    state. A script that runs with several workers should guard its entry point with
    ``if __name__ == "__main__":`` (a fork server's workers import the main module).
    """

    kind = "process-pool"

    def __init__(self, workers: int) -> None:
        check_workers(workers)
        self.workers = workers

    def map_unordered(self, fn: Callable[[J], R], tasks: Iterable[J]) -> Generator[tuple[J, R], None, None]:
        """Yield ``(task, fn(task))`` in completion order, one task per worker in flight.

        A worker is handed its next task as soon as its result is in, before the result is yielded, so
        it works while the caller stores the result.
        """
        context = _start_context(fn)
        source = iter(tasks)
        workers: list[_Worker[J, R]] = []
        with _collector_blind(context.get_start_method() == "fork"):
            try:
                for _ in range(self.workers):
                    workers.append(_Worker(context, fn))
                for worker in workers:
                    worker.give(next(source, _END))
                while busy := [w for w in workers if w.task is not _END]:
                    wait([w.conn for w in busy] + [w.process.sentinel for w in busy])
                    for worker in busy:
                        if worker.conn.poll():
                            task, result = worker.task, worker.receive()
                            worker.give(next(source, _END))
                            yield task, result
                        elif not worker.process.is_alive():
                            raise worker.lost()
            finally:
                for worker in workers:
                    worker.stop()

    def close(self) -> None:
        """Nothing to release between maps."""


class _Worker(Generic[J, R]):
    """One worker process, its end of the pipe to this process, and the task it holds (or ``_END``)."""

    def __init__(self, context: Any, fn: Callable[[J], R]) -> None:
        self.conn, theirs = context.Pipe()
        self.process = context.Process(target=_serve, args=(theirs, fn), daemon=True)
        self.process.start()
        theirs.close()
        self.task: J = _END

    def give(self, task: J) -> None:
        """Hand the worker ``task`` (``_END``: nothing more to do)."""
        self.task = task
        if task is not _END:
            try:
                self.conn.send(task)
            except OSError:  # the worker died since its last result
                raise self.lost() from None

    def receive(self) -> R:
        """Return the result of the worker's task, or raise the exception the task raised."""
        try:
            ok, value = self.conn.recv()
        except (EOFError, OSError):  # the worker died while sending
            raise self.lost() from None
        if not ok:
            raise value
        return value  # type: ignore[no-any-return]

    def lost(self) -> WorkerLost:
        """Return the error that says this worker died, how, and while running what."""
        self.process.join(1)  # a dead worker's exit code is there at once; a hung pipe's is not
        how = _how_it_ended(self.process.exitcode)
        return WorkerLost(f"worker process {self.process.pid} died ({how}) while simulating {self.task}")

    def stop(self) -> None:
        """Kill the worker (it holds nothing to save) and release its pipe."""
        if self.process.is_alive():
            self.process.kill()
        self.process.join()
        self.conn.close()
        self.process.close()


def _how_it_ended(code: int | None) -> str:
    """Say how a process with exit code ``code`` ended (negative: the signal that killed it)."""
    if code is None:
        return "stopped answering"
    if code >= 0:
        return f"exited with code {code}"
    try:
        return f"killed by signal {-code}, {signal.Signals(-code).name}"
    except ValueError:
        return f"killed by signal {-code}"


def _serve(conn: Connection, fn: Callable[[J], R]) -> None:
    """Run in a worker: take a task, send back its result (or the exception it raised), until the pipe closes."""
    _exit_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle: it kills the workers
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a forked worker inherits the command's handler
    while True:
        try:
            task = conn.recv()
        except EOFError:
            return
        try:
            reply: tuple[bool, Any] = (True, fn(task))
        except Exception as exc:
            reply = (False, exc)
        try:
            conn.send(reply)
        except Exception as exc:  # a result or an exception that cannot be pickled: nothing was sent
            conn.send((False, ExecutorError(f"a worker could not send back its result for {task}: {exc!r}")))


PR_SET_PDEATHSIG = 1
"""Linux's prctl option: the signal the kernel sends this process when its parent ends."""


def _exit_with_parent() -> None:
    """Make this worker end when the process that started it ends, whatever killed that one.

    On Linux the kernel does it (``prctl(PR_SET_PDEATHSIG, SIGKILL)``), even if the worker is deep in a
    computation; a fork server's worker dies with the fork server, which ends with its parent. Everywhere
    (and for a parent that died before the ``prctl``), a thread waits on the parent's sentinel, which
    becomes ready when the parent ends, and ends the worker. (A forked worker also holds the sentinels of
    the workers forked before it, so without the kernel's help they end one after the other, the last
    forked first.)
    """
    parent = multiprocessing.parent_process()
    if parent is None:
        return
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    threading.Thread(target=_end_with, args=(parent,), name="custodysim-parent-watch", daemon=True).start()


def _end_with(parent: multiprocessing.process.BaseProcess) -> None:
    """Wait for ``parent`` to end, then end this process at once (no clean-up: it holds nothing to save)."""
    parent.join()
    os._exit(1)


@contextmanager
def _collector_blind(forking: bool) -> Iterator[None]:
    """While forked workers live, keep this process's objects out of the garbage collector's sight.

    A forked worker shares this process's memory until it writes to it, and a collection in the worker
    writes to every object it scans: a worker's first full collection would copy most of the heap it
    was forked with (about 30 ms of a worker's start here). ``gc.freeze`` before the fork spares that
    (the pattern the :mod:`gc` documentation gives for ``fork()`` without ``exec()``); the objects are
    handed back to the collector once the pool is gone.
    """
    if not forking:
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _start_context(fn: Callable[..., Any]) -> multiprocessing.context.BaseContext:
    """Return how to start workers: forked when that is safe, else from a fork server, else spawned.

    Forking starts a worker at once, with every module imported and every model already compiled in this
    process; it is safe only while this process runs no other thread (a thread could hold a lock at the
    instant of the fork, and the child would inherit it held). A fork server costs a fresh interpreter
    and its imports (about half a second) once per pool.
    """
    methods = multiprocessing.get_all_start_methods()
    if "fork" in methods and threading.active_count() == 1:
        return multiprocessing.get_context("fork")
    if "forkserver" in methods:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload([fn.__module__])
        return context
    return multiprocessing.get_context("spawn")


def _fill(pending: dict[Any, J], source: Iterator[J], submit: Callable[[J], Any], room: int) -> None:
    """Submit tasks from ``source`` until ``room`` are in flight or it is exhausted."""
    while len(pending) < room:
        task = next(source, _END)
        if task is _END:
            return
        pending[submit(task)] = task


_END: Any = object()


class DaskExecutor:
    """Runs tasks on an existing ``dask.distributed`` cluster.

    Every worker must have the same version of custodysim installed: tasks name their function by
    module and carry only the task data (a variant's spec and a range of trials).

    Args:
        address: the scheduler's address, e.g. ``tcp://host:8786``.
        timeout: seconds to wait for the scheduler (default :data:`CONNECT_TIMEOUT`).

    Raises:
        ExecutorError: dask.distributed is not installed, or the scheduler does not answer.
    """

    kind = "dask"

    def __init__(self, address: str, timeout: float | None = None) -> None:
        timeout = CONNECT_TIMEOUT if timeout is None else timeout
        self.address = address
        try:
            distributed = importlib.import_module("distributed")  # optional: pip install 'custodysim[dask]'
        except ImportError:
            raise ExecutorError("--executor dask needs dask.distributed, which is not installed; install it "
                                "with: pip install 'custodysim[dask]'") from None
        try:
            self._client: Any = distributed.Client(address, timeout=timeout, set_as_default=False)
        except (OSError, TimeoutError, ValueError, TypeError) as exc:
            raise ExecutorError(f"cannot reach the Dask scheduler at {address} (waited {timeout:g} s): "
                                f"{exc}. Is 'dask scheduler' running there, and is the address "
                                "tcp://HOST:PORT?") from None
        self.workers = max(1, len(self._client.scheduler_info().get("workers", {})))

    def map_unordered(self, fn: Callable[[J], R], tasks: Iterable[J]) -> Generator[tuple[J, R], None, None]:
        """Yield ``(task, fn(task))`` in completion order, keeping a few tasks per worker in flight."""
        distributed = importlib.import_module("distributed")
        as_completed = distributed.as_completed
        pending: dict[Any, J] = {}
        source = iter(tasks)
        finished = as_completed(loop=self._client.loop)

        def submit(task: J) -> Any:
            future = self._client.submit(fn, task, pure=False)
            finished.add(future)
            return future

        try:
            _fill(pending, source, submit, IN_FLIGHT * self.workers)
            for future in finished:
                task = pending.pop(future)
                try:
                    result = future.result()
                except CancelledError as exc:  # every task is cancelled when the scheduler is lost
                    reason = getattr(exc, "reason", "")
                    raise WorkerLost(f"lost the connection to the Dask scheduler at {self.address} while "
                                     f"simulating {task}" if reason == "scheduler-connection-lost" else
                                     f"the Dask cluster at {self.address} cancelled the task simulating {task} "
                                     f"({reason or exc})") from None
                except distributed.KilledWorker as exc:  # Dask retried it on other workers, which died too
                    raise WorkerLost(f"Dask workers died each time they ran the task simulating {task} ({exc})") \
                        from None
                yield task, result
                _fill(pending, source, submit, IN_FLIGHT * self.workers)
        finally:
            if pending:
                self._client.cancel(list(pending))

    def close(self) -> None:
        """Disconnect from the scheduler (the cluster keeps running)."""
        # A client that lost its scheduler logs, as it closes, that it failed to reconnect: the run said so.
        quiet = logging.getLogger("distributed.client")
        level = quiet.level
        quiet.setLevel(logging.CRITICAL)
        try:
            self._client.close()
        finally:
            quiet.setLevel(level)
