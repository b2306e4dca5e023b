"""Where tasks run: in this process, in a pool of local worker processes, or on a Dask cluster.

An executor maps a function over tasks and yields each (task, result) as it completes, keeping only a
few tasks in flight so that a caller that stops early (a precision target reached, Ctrl-C) wastes little
work. Results come back in completion order; the caller puts them back in task order, which is why the
figures of a run do not depend on the executor or on the number of workers.
"""

from __future__ import annotations

import gc
import importlib
import multiprocessing
import os
import signal
import threading
from collections.abc import Callable, Generator, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from contextlib import contextmanager
from typing import Any, Protocol, TypeVar

from custodysim.errors import ExecutorError, OptionError

J = TypeVar("J")
R = TypeVar("R")

EXECUTORS = ("local", "dask")
"""The executors ``--executor`` accepts."""
CONNECT_TIMEOUT = 10.0
"""Seconds to wait for a Dask scheduler to answer."""
IN_FLIGHT = 2
"""Tasks kept in flight per worker: enough that a worker never waits for its next task."""


class Executor(Protocol):
    """Runs tasks and yields their results as they complete."""

    kind: str
    workers: int

    def map_unordered(self, fn: Callable[[J], R], tasks: Iterable[J]) -> Generator[tuple[J, R], None, None]:
        """Yield ``(task, fn(task))`` for every task, in completion order.

        Tasks are drawn from ``tasks`` only as room frees up; closing the iterator early cancels the
        tasks not yet finished.
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


def _ignore_interrupts() -> None:
    """Leave Ctrl-C to the parent, which stops the pool; a worker prints no traceback of its own."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class ProcessPool:
    """Runs tasks in local worker processes (a pool started for each map, shut down at its end).

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
        """Yield ``(task, fn(task))`` in completion order, keeping a few tasks per worker in flight."""
        context = _start_context(fn)
        with _collector_blind(context.get_start_method() == "fork"):
            pool = ProcessPoolExecutor(self.workers, mp_context=context, initializer=_ignore_interrupts)
            pending: dict[Future[R], J] = {}
            source = iter(tasks)
            try:
                _fill(pending, source, lambda task: pool.submit(fn, task), IN_FLIGHT * self.workers)
                while pending:
                    done, _ = wait(pending, return_when=FIRST_COMPLETED)
                    order = list(pending)
                    for future in sorted(done, key=order.index):
                        task = pending.pop(future)
                        yield task, future.result()
                    _fill(pending, source, lambda task: pool.submit(fn, task), IN_FLIGHT * self.workers)
            finally:
                # Running tasks finish (a chunk takes about a second); queued ones are dropped.
                pool.shutdown(wait=True, cancel_futures=True)

    def close(self) -> None:
        """Nothing to release between maps."""


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
        as_completed = importlib.import_module("distributed").as_completed
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
                yield task, future.result()
                _fill(pending, source, submit, IN_FLIGHT * self.workers)
        finally:
            if pending:
                self._client.cancel(list(pending))

    def close(self) -> None:
        """Disconnect from the scheduler (the cluster keeps running)."""
        self._client.close()
