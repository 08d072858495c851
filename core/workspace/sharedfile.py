"""Shared files that several processes write: an exclusive lock, and atomic JSON updates.

``active.json`` (and any other JSON file that the server's sessions, ``resx`` commands and
trainers all write) is changed only through :func:`update_json`: under an exclusive lock on a
sibling ``<name>.lock`` file the current content is re-read, changed, written to a *unique*
temporary file in the same folder and moved over the original with ``os.replace`` (atomic on
POSIX). So two writers never overwrite each other's change (each re-reads inside the lock), and
a reader -- who takes no lock -- sees the old or the new file, never half of one.

The lock is ``fcntl.flock`` (POSIX, as the fitter's summary lock in :mod:`core.fitting.batch`);
it is released by the kernel when its holder dies, so a killed writer never leaves it stuck.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator

__all__ = ["locked", "read_json", "update_json", "write_json"]

log = logging.getLogger(__name__)


@contextlib.contextmanager
def locked(path: str | Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (through ``<path>.lock``) for the ``with`` block.

    Parameters
    ----------
    path : str or Path
        The shared file; the lock file beside it is created if needed and left in place.
    """
    path = Path(path)
    lock_path = path.with_name(path.name + ".lock")
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: the atomic replace alone
        yield
        return
    with open(lock_path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def read_json(path: str | Path, default: Any = None) -> Any:
    """The JSON content of ``path``; ``default`` when it is missing or not valid JSON (logged).

    Parameters
    ----------
    path : str or Path
    default : any
        Returned for a missing or corrupt file.
    """
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        return default
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        log.warning("%s is corrupt; treating it as empty", path)
        return default


def write_json(path: str | Path, obj: Any) -> None:
    """Write ``obj`` as JSON to ``path`` atomically (a unique temporary file, then ``os.replace``).

    Take :func:`locked` around a read-change-write; :func:`update_json` does both.

    Parameters
    ----------
    path : str or Path
    obj : any
        JSON-serialisable.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(obj, fh, indent=2)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def update_json(path: str | Path, change: Callable[[Any], Any], default: Any = None) -> Any:
    """Change the JSON file ``path`` under its lock: re-read it, apply ``change``, write it atomically.

    Parameters
    ----------
    path : str or Path
        The shared file (created when missing).
    change : callable
        Gets the current content (``default`` for a missing or corrupt file, deep-copied by
        the JSON round trip) and returns the new content; it may raise to write nothing.
    default : any
        Content of a missing or corrupt file.

    Returns
    -------
    any
        What was written.
    """
    with locked(path):
        current = read_json(path, default=json.loads(json.dumps(default)))
        new = change(current)
        write_json(path, new)
    return new
