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
    :func:`connect` turns an address into a client (a :class:`SchedulerError` when none answers),
    and ``shared`` paths given to :func:`run_tasks` are checked on every worker first
    (:func:`check_shared_paths`): a cluster's workers must see the workspace on a shared file
    system, at the same absolute path as the driver, and import this package (``core``).

The local process pool
----------------------
Dask's own process pool is a poor fit for a few long tasks, such as prep's one task per stamp
chunk: it batches ready tasks six at a time (``chunksize``), so 6 to 8 chunks land on one
worker while the others idle, and it *spawns* its workers, each of which then imports numpy,
scipy, astropy, sep and zarr again (seconds per worker on a busy machine). :func:`run_tasks`
hands Dask its own pool instead (:func:`local_pool`):

* tasks are dispatched one at a time (``chunksize=1``), so workers stay busy until the end;
* workers are *forked* from the driver, where ``func``'s module is already imported, so they
  start at once. Forking is used only where it is safe: a POSIX system other than macOS, and no
  driver thread alive other than ones known to survive a fork (:data:`FORK_SAFE_THREADS`: zarr's
  I/O loop, which resets itself in the child). Otherwise a ``forkserver`` (a clean server process that imports ``func``'s
  module once, then forks the workers) is used, and ``spawn`` where neither exists. A
  ``multiprocessing.context`` set in Dask's configuration always wins;
* each worker runs one BLAS/OpenMP thread (``threadpoolctl``, ``OMP_NUM_THREADS=1``): the
  parallelism is across workers, and per-worker thread pools would oversubscribe the cores.

The threads scheduler is no faster for prep: its per-galaxy work is mostly Python and numpy on
small arrays and holds the GIL.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import dask
from dask.callbacks import Callback
from tqdm.auto import tqdm

from core.errors import ResxError

log = logging.getLogger(__name__)

LOCAL_SCHEDULERS = ("processes", "threads", "synchronous", "sync", "single-threaded")

#: Seconds to wait for a ``dask.distributed`` scheduler to answer (:func:`connect`).
CONNECT_TIMEOUT = 30.0


class SchedulerError(ResxError):
    """A ``dask.distributed`` scheduler that cannot be reached, or workers that cannot do the work
    (they do not see the workspace's files)."""


def is_distributed(scheduler: Any) -> bool:
    """Whether ``scheduler`` names a ``dask.distributed`` cluster (an address or a ``Client``),
    rather than one of Dask's local schedulers."""
    return scheduler is not None and not (isinstance(scheduler, str) and scheduler in LOCAL_SCHEDULERS)


def connect(scheduler: Any, timeout: float | None = None):
    """A ``distributed.Client`` for a scheduler address (a ``Client`` is returned as it is).

    Parameters
    ----------
    scheduler : str or distributed.Client
        ``"tcp://host:8786"`` (any address Dask accepts), or a scheduler file (a path ending in
        ``.json``, as written by ``dask scheduler --scheduler-file``).
    timeout : float, optional
        Seconds to wait for the scheduler (default :data:`CONNECT_TIMEOUT`).

    Returns
    -------
    distributed.Client
        The caller closes it when it made it (``client is not scheduler``).

    Raises
    ------
    SchedulerError
        Nothing answers at that address within ``timeout``.
    """
    from distributed import Client

    if isinstance(scheduler, Client):
        return scheduler
    timeout = CONNECT_TIMEOUT if timeout is None else timeout
    address = os.path.expanduser(str(scheduler))
    try:
        if address.endswith(".json") and os.path.exists(address):
            return Client(scheduler_file=address, timeout=timeout)
        return Client(address, timeout=timeout)
    except (OSError, TimeoutError, ValueError) as exc:
        raise SchedulerError(f"cannot reach the dask.distributed scheduler at {address} "
                             f"within {timeout:g} s: {exc}") from exc


def _missing_paths(paths: Sequence[str]) -> list[str]:
    """Which of ``paths`` this process does not see (run on each worker)."""
    return [p for p in paths if not os.path.exists(p)]


def check_shared_paths(client, paths: Sequence[str | os.PathLike]) -> None:
    """Check that every worker of ``client``'s cluster sees ``paths`` (absolute).

    Workers that join later are not checked; a task of theirs that misses a file fails on its own.

    Raises
    ------
    SchedulerError
        Naming the workers and the paths they do not see.
    """
    paths = [os.fspath(p) for p in paths]
    relative = [p for p in paths if not os.path.isabs(p)]
    if relative:
        raise ValueError(f"check_shared_paths needs absolute paths, got {relative}")
    if not paths:
        return
    missing = {w: m for w, m in client.run(_missing_paths, paths).items() if m}
    if missing:
        where = "; ".join(f"{w} lacks {', '.join(m)}" for w, m in sorted(missing.items()))
        raise SchedulerError(f"{len(missing)} dask worker(s) do not see the workspace ({where}): workers must "
                             "see it on a shared file system at the same path as this machine")


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


#: Name prefixes of driver threads that do not rule out forking workers: zarr's I/O event loop
#: (``zarr_io``) and its executors' workers (``zarr_pool``, asyncio's default ``asyncio_``). They
#: sit idle while the driver waits, and zarr resets its loop in a forked child
#: (``os.register_at_fork``).
FORK_SAFE_THREADS = ("zarr_io", "zarr_pool", "asyncio_")

#: Environment variables that cap the thread pools of BLAS / OpenMP libraries in workers.
_THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS")


def _init_worker() -> None:
    """Initializer of a local worker process: one BLAS/OpenMP thread, Dask's own set-up."""
    for var in _THREAD_ENV:
        os.environ[var] = "1"
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)
    except Exception:  # noqa: BLE001 — threadpoolctl absent or a library it cannot control
        pass
    from dask.multiprocessing import initialize_worker_process

    initialize_worker_process()


def start_method(preload: Sequence[str] = ()) -> str:
    """The ``multiprocessing`` start method :func:`local_pool` uses now (see the module docstring).

    Parameters
    ----------
    preload : sequence of str
        Modules the workers need (only used to explain the choice in the log).
    """
    configured = dask.config.get("multiprocessing.context", None)
    if configured:
        return str(configured)
    methods = multiprocessing.get_all_start_methods()
    others = [t for t in threading.enumerate() if t is not threading.current_thread()
              and not t.name.startswith(FORK_SAFE_THREADS)]
    if "fork" in methods and sys.platform != "darwin" and not others:
        return "fork"
    if "forkserver" in methods:
        if others:
            log.debug("not forking workers: driver threads %s are alive", [t.name for t in others])
        return "forkserver"
    return "spawn"


@contextlib.contextmanager
def local_pool(workers: int, preload: Sequence[str] = ()) -> Iterator[ProcessPoolExecutor]:
    """A process pool for Dask's local ``processes`` scheduler, shut down on exit.

    Parameters
    ----------
    workers : int
        Worker processes.
    preload : sequence of str
        Modules imported before the workers start (in the driver for ``fork``, in the
        server for ``forkserver``), so that workers do not import them again.

    Yields
    ------
    concurrent.futures.ProcessPoolExecutor
    """
    import importlib

    method = start_method(preload)
    ctx = multiprocessing.get_context(method)
    if method == "forkserver" and preload:
        ctx.set_forkserver_preload(list(preload))
    elif method == "fork":
        for name in preload:
            importlib.import_module(name)
    # Dask's own pool sets this for consistent hashing of task keys across workers.
    if os.environ.get("PYTHONHASHSEED") in (None, "0"):
        os.environ["PYTHONHASHSEED"] = "6640"
    log.debug("local process pool: %d workers, started by %s", workers, method)
    pool = ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker)
    try:
        if method == "fork":
            # Fork every worker now, before this call starts threads of its own (the progress bar's).
            for f in [pool.submit(os.getpid) for _ in range(workers)]:
                f.result()
        yield pool
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


class ProgressBar(tqdm):
    """A tqdm bar without tqdm's monitor thread: that thread outlives the bar, and a live driver
    thread makes :func:`local_pool` start later workers by ``forkserver`` instead of ``fork``.
    Use it for any bar in a process that may run :func:`run_tasks` afterwards."""

    monitor_interval = 0


SYNCHRONOUS = ("synchronous", "sync", "single-threaded")


def in_process(scheduler: Any = None, workers: int | None = None) -> bool:
    """Whether :func:`run_tasks` runs the tasks here, one after another (the local synchronous
    scheduler: ``workers == 1`` with no scheduler, or a synchronous scheduler by name)."""
    if scheduler is None:
        return workers == 1
    return isinstance(scheduler, str) and scheduler in SYNCHRONOUS


class _OnResult(Callback):
    """Local-scheduler callback: hands each finished task's result to the driver."""

    def __init__(self, keys: dict, on_result):
        super().__init__()
        self._keys = keys
        self._on_result = on_result

    def _posttask(self, key, result, dsk, state, worker_id):
        i = self._keys.get(key)
        if i is not None:
            self._on_result(i, result)


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
    shared: Sequence[str | os.PathLike] = (),
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
    shared : sequence of path
        Absolute paths the tasks read or write (the workspace): on a distributed cluster every
        worker is checked to see them before any task is submitted (:func:`check_shared_paths`).

    Returns
    -------
    list
        ``func(*args[i])`` for each ``i``.

    Raises
    ------
    SchedulerError
        The cluster cannot be reached, or a worker does not see a ``shared`` path.
    """
    args = list(args)
    results: list[Any] = [None] * len(args)
    if not args:
        return results
    w = list(weights) if weights is not None else [1] * len(args)

    def done(i: int, result: Any) -> None:
        results[i] = result
        if on_result is not None:
            on_result(i, result)

    with contextlib.ExitStack() as stack:
        if not is_distributed(scheduler):
            n = workers or default_workers()
            name = scheduler or ("synchronous" if n == 1 else "processes")
            kwargs: dict[str, Any] = {"num_workers": n}
            if name == "processes":
                n = kwargs["num_workers"] = max(1, min(n, len(args)))  # no idle workers to start
                preload = [m for m in (getattr(func, "__module__", None),) if m and m != "__main__"]
                # Started before the progress bar, so no thread of this call rules out fork.
                kwargs["pool"] = stack.enter_context(local_pool(n, preload))
                kwargs["chunksize"] = 1  # one task at a time: no worker idles while another has a queue
            bar = stack.enter_context(ProgressBar(total=sum(w), desc=desc, unit=unit, disable=not progress))
            tasks = [dask.delayed(func, pure=False)(*a) for a in args]
            keys = {t.key: i for i, t in enumerate(tasks)}

            def hook(i: int, result: Any) -> None:
                done(i, result)
                bar.update(w[i])

            with _OnResult(keys, hook):
                dask.compute(*tasks, scheduler=name, **kwargs)
        else:
            from distributed import as_completed

            client = connect(scheduler)
            try:
                check_shared_paths(client, shared)
                bar = stack.enter_context(ProgressBar(total=sum(w), desc=desc, unit=unit, disable=not progress))
                futures = [client.submit(func, *a, pure=False) for a in args]
                index = {f.key: i for i, f in enumerate(futures)}
                for fut, result in as_completed(futures, with_results=True):
                    i = index[fut.key]
                    done(i, result)
                    bar.update(w[i])
            finally:
                if client is not scheduler:
                    client.close()
    return results
