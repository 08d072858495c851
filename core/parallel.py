"""Dask plumbing: run independent tasks locally or on a ``dask.distributed`` cluster.

The science modules know nothing about Dask: they hand :func:`run_tasks` a plain, picklable
function and its argument tuples. Results are passed to ``on_result`` in the driver *as each task
finishes* (so the caller can journal progress and resume after a crash), and a tqdm bar shows
progress.

Schedulers
----------
``scheduler=None``
    Dask's local scheduler: ``processes`` with one worker per core (``workers`` to change it), or
    the ``synchronous`` scheduler when ``workers == 1`` (no process start-up; easiest to debug).
``scheduler="threads"`` / ``"processes"`` / ``"synchronous"``
    That local scheduler explicitly.
``scheduler="tcp://host:8786"`` (any address), or a ``distributed.Client``
    A running ``dask.distributed`` cluster; tasks are submitted and gathered as they complete.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import dask
from dask.callbacks import Callback
from tqdm.auto import tqdm

log = logging.getLogger(__name__)

LOCAL_SCHEDULERS = ("processes", "threads", "synchronous", "sync", "single-threaded")


def default_workers() -> int:
    """One worker per core available to this process."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def describe_scheduler(scheduler: Any = None, workers: int | None = None) -> str:
    """A human-readable name of where tasks will run."""
    if scheduler is None:
        n = workers or default_workers()
        return "local synchronous scheduler" if n == 1 else f"local process scheduler, {n} workers"
    if isinstance(scheduler, str):
        return f"local {scheduler} scheduler" if scheduler in LOCAL_SCHEDULERS else f"dask.distributed at {scheduler}"
    return f"dask.distributed client {scheduler!r}"


class _OnResult(Callback):
    """Local-scheduler callback: hands each finished task's result to the driver."""

    def __init__(self, keys: dict, on_result, bar):
        super().__init__()
        self._keys = keys
        self._on_result = on_result
        self._bar = bar

    def _posttask(self, key, result, dsk, state, worker_id):
        i = self._keys.get(key)
        if i is None:
            return
        if self._on_result is not None:
            self._on_result(i, result)
        self._bar.update(1)


def run_tasks(
    func: Callable[..., Any],
    args: Sequence[tuple],
    *,
    scheduler: Any = None,
    workers: int | None = None,
    on_result: Callable[[int, Any], None] | None = None,
    progress: bool = True,
    desc: str = "tasks",
    unit: str = "task",
    weights: Iterable[int] | None = None,
) -> list[Any]:
    """Run ``func(*a)`` for every ``a`` in ``args`` with Dask; return the results in order.

    Parameters
    ----------
    func : callable
        A module-level (picklable) function. It should catch its own per-item errors: an exception
        escaping a task stops the whole computation, as in Dask.
    args : sequence of tuple
        Positional arguments of each task.
    scheduler : None, str or distributed.Client
        See the module docstring.
    workers : int, optional
        Local workers (default: one per core). Ignored for a distributed cluster.
    on_result : callable, optional
        ``on_result(i, result)``, called in the driver as task ``i`` finishes (in completion order).
    progress : bool
        Show a tqdm progress bar.
    desc, unit : str
        Progress-bar label and unit.
    weights : iterable of int, optional
        Progress units per task (e.g. galaxies per chunk); default 1 each.

    Returns
    -------
    list
        ``func(*args[i])`` for each ``i``.
    """
    args = list(args)
    results: list[Any] = [None] * len(args)
    w = list(weights) if weights is not None else [1] * len(args)
    bar = tqdm(total=sum(w), desc=desc, unit=unit, disable=not progress)

    def done(i: int, result: Any) -> None:
        results[i] = result
        if on_result is not None:
            on_result(i, result)

    try:
        if not args:
            return results
        if scheduler is None or (isinstance(scheduler, str) and scheduler in LOCAL_SCHEDULERS):
            n = workers or default_workers()
            name = scheduler or ("synchronous" if n == 1 else "processes")
            tasks = [dask.delayed(func, pure=False)(*a) for a in args]
            keys = {t.key: i for i, t in enumerate(tasks)}

            class _Bar:  # adapt weighted progress to the callback's one-update-per-task
                @staticmethod
                def update(_):
                    pass

            def hook(i, result):
                done(i, result)
                bar.update(w[i])

            with _OnResult(keys, hook, _Bar()):
                dask.compute(*tasks, scheduler=name, num_workers=n)
        else:
            from distributed import Client, as_completed

            client = scheduler if isinstance(scheduler, Client) else Client(scheduler)
            try:
                futures = [client.submit(func, *a, pure=False) for a in args]
                index = {f.key: i for i, f in enumerate(futures)}
                for fut, result in as_completed(futures, with_results=True):
                    i = index[fut.key]
                    done(i, result)
                    bar.update(w[i])
            finally:
                if client is not scheduler:
                    client.close()
    finally:
        bar.close()
    return results
