"""One read-only copy of a workspace's map data per process, shared by every dashboard session.

A server process that holds eight browser sessions of one workspace needs the catalog, the runs'
embeddings and the consensus once, not eight times: :func:`shared_map_data` returns the same
:class:`MapData` for a workspace to every caller in the process (thread-safe), and a session
keeps only its own selection, filters and view.

What is shared
--------------
* the catalog's one-dimensional columns as a ``pandas.DataFrame`` (:meth:`MapData.catalog`),
  read through a columnar cache in the workspace (``WORKSPACE/cache/catalog-<stamp>/``, one
  ``.npy`` per column, the numeric ones memory-mapped, so that processes serving the same
  workspace share their pages through the OS), rebuilt when ``catalog.fits`` changes;
* the vote store, opened once (registering the catalog's ids once), and a snapshot of the
  consensus and current labels (:meth:`MapData.votes`), re-read only when the store's version
  changed; a vote cast in this process updates the snapshot once for all sessions
  (:meth:`MapData.update_votes`);
* anything derived from those that callers memoise with :meth:`MapData.memo` (the dashboard:
  the map tables and the lasso's spatial index), in a small least-recently-used cache.

Everything handed out is shared: callers must not modify it (copy first).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.workspace.workspace import Workspace

__all__ = ["MapData", "VoteSnapshot", "shared_map_data"]

log = logging.getLogger(__name__)

#: Folder of the workspace's caches (derived data, safe to delete).
CACHE_DIR = "cache"
_CACHE_FORMAT = 1

_LOCK = threading.Lock()
_SHARED: dict[str, "MapData"] = {}


def shared_map_data(workspace: str | Path | Workspace) -> "MapData":
    """The process's :class:`MapData` of a workspace (created on first use).

    Parameters
    ----------
    workspace : str, Path or Workspace

    Returns
    -------
    MapData
        The same object for every call with the same workspace folder, until its catalog file
        changes (then a new one, read from the new catalog).
    """
    root = Path(workspace.root if isinstance(workspace, Workspace) else workspace)
    key = os.path.realpath(root)
    with _LOCK:
        current = _SHARED.get(key)
        if current is not None and current.catalog_stamp == _catalog_stamp(root / Workspace.CATALOG):
            return current
        ws = workspace if isinstance(workspace, Workspace) else Workspace.open(root)
        current = _SHARED[key] = MapData(ws)
        return current


def _catalog_stamp(path: Path) -> str:
    try:
        st = os.stat(path)
    except OSError:
        return ""
    return f"{st.st_mtime_ns:x}-{st.st_size:x}"


@dataclass(frozen=True)
class VoteSnapshot:
    """The consensus and current labels of every galaxy, as of the store's ``signature``.

    ``serial`` grows by one with every change of the snapshot in this process (a re-read or an
    update after a vote cast here), so a session knows whether it has seen it.
    """

    signature: Any
    serial: int
    consensus: pd.DataFrame
    votes: pd.DataFrame


def _by_id(consensus: pd.DataFrame) -> pd.DataFrame:
    """A store's consensus table indexed by the galaxy id (as str)."""
    return consensus.assign(id=consensus["id"].astype(str)).set_index("id")


def _empty_votes() -> pd.DataFrame:
    return pd.DataFrame(columns=["id", "inspector", "label"])


class MapData:
    """A workspace's map data, read once per process and shared read-only (see the module docstring).

    Use :func:`shared_map_data` rather than the constructor, so that every session gets the same one.

    Parameters
    ----------
    ws : Workspace
    memo_size : int
        Derived objects kept by :meth:`memo` (least recently used dropped first).
    """

    def __init__(self, ws: Workspace, memo_size: int = 24):
        self.ws = ws
        self.catalog_stamp = _catalog_stamp(ws.catalog_path)
        self._lock = threading.RLock()
        self._catalog: pd.DataFrame | None = None
        self._store = None
        self._snapshot: VoteSnapshot | None = None
        self._memo: OrderedDict[Hashable, Any] = OrderedDict()
        self._memo_size = int(memo_size)

    # -- the catalog ------------------------------------------------------------------------------
    def catalog(self) -> pd.DataFrame:
        """The catalog's one-dimensional columns (shared: do not modify), str text.

        Read from the columnar cache when it matches ``catalog.fits``, else from the catalog
        (and the cache written for the next process).
        """
        with self._lock:
            if self._catalog is None:
                self._catalog = self._load_catalog()
            return self._catalog

    def _cache_path(self) -> Path:
        return self.ws.root / CACHE_DIR / f"catalog-{self.catalog_stamp}"

    def _load_catalog(self) -> pd.DataFrame:
        path = self._cache_path()
        if (path / "columns.json").exists():
            try:
                return _read_columns(path)
            except Exception as exc:  # noqa: BLE001 — a damaged cache is rebuilt, never fatal
                log.warning("catalog cache %s unreadable (%s): reading the catalog", path, exc)
        table = self.ws.read_catalog()
        names = [c for c in table.colnames if table[c].ndim == 1]
        frame = table[names].to_pandas()
        for c in frame.columns:
            if frame[c].dtype == object:
                frame[c] = frame[c].map(lambda v: v.decode() if isinstance(v, bytes) else v)
        frame = frame.reset_index(drop=True)
        try:
            _write_columns(frame, path)
            return _read_columns(path)  # the memory-mapped copy, so this process shares its pages too
        except Exception as exc:  # noqa: BLE001 — a read-only workspace still serves
            log.warning("cannot write the catalog cache %s (%s): serving from memory", path, exc)
            return frame

    # -- votes --------------------------------------------------------------------------------------
    @property
    def store(self):
        """The workspace's vote store, opened once per process (its galaxy ids registered once)."""
        with self._lock:
            if self._store is None:
                from core.votes.store import open_store

                ids = self.catalog()["id"].astype(str).str.strip().to_numpy()
                self._store = open_store(self.ws, galaxy_ids=ids)
            return self._store

    def votes(self, force: bool = False) -> VoteSnapshot:
        """The consensus snapshot, re-read from the store when its version changed (or ``force``).

        Raises whatever the store raises when it cannot be read.
        """
        with self._lock:
            sig = self.store.version()
            snap = self._snapshot
            if snap is None or force or sig != snap.signature:
                cons = _by_id(self.store.consensus())
                votes = self.store.current_labels()
                if len(votes):
                    votes["id"] = votes["id"].astype(str)
                snap = self._snapshot = VoteSnapshot(sig, (snap.serial + 1) if snap else 1, cons, votes)
            return snap

    def update_votes(self, ids: Iterable[str], signature_before: Any = None) -> VoteSnapshot:
        """After a vote cast in this process on ``ids``: update the shared snapshot once.

        Only those galaxies are re-read (the cost does not grow with the campaign); the consensus
        table is patched in place. When the store moved by exactly this one action since the
        snapshot, the snapshot is current; otherwise (another process wrote meanwhile) the next
        :meth:`votes` reads everything.
        """
        ids = [str(i) for i in ids]
        with self._lock:
            snap = self.votes() if self._snapshot is None else self._snapshot
            cons = _by_id(self.store.consensus(ids=ids))
            mine = self.store.current_labels(ids)  # the columns of the full read (with "expert")
            sig_after = self.store.version()
            old = snap.consensus
            pos = old.index.get_indexer(cons.index) if len(old) else np.full(len(cons), -1)
            if len(old) and (pos >= 0).all() and list(old.columns) == list(cons.columns):
                for j, column in enumerate(cons.columns):  # in place: O(voted), not O(catalog)
                    old.iloc[pos, j] = cons[column].to_numpy()
                consensus = old
            else:  # galaxies the last full read did not know
                consensus = pd.concat([old[~old.index.isin(cons.index)], cons]) if len(old) else cons
            mine["id"] = mine["id"].astype(str)
            votes = snap.votes
            keep = ~votes["id"].isin(set(ids)) if len(votes) else np.zeros(0, dtype=bool)
            votes = pd.concat([votes[keep], mine], ignore_index=True) if len(votes) else mine.reset_index(drop=True)
            seen = snap.signature
            sig = sig_after if (seen is not None and sig_after[0] == seen[0] + 1 and sig_after[1] > seen[1]) else seen
            self._snapshot = VoteSnapshot(sig, snap.serial + 1, consensus, votes)
            return self._snapshot

    # -- derived objects -------------------------------------------------------------------------
    def memo(self, key: Hashable, factory: Callable[[], Any]) -> Any:
        """``factory()``, computed once per ``key`` in this process and shared (do not modify it)."""
        with self._lock:
            if key in self._memo:
                self._memo.move_to_end(key)
                return self._memo[key]
        value = factory()  # outside the lock: a slow build does not stall other sessions' cached reads
        with self._lock:
            self._memo[key] = value
            self._memo.move_to_end(key)
            while len(self._memo) > self._memo_size:
                self._memo.popitem(last=False)
        return value

    def forget(self, match: Callable[[Hashable], bool]) -> None:
        """Drop the memoised objects whose key ``match`` es (e.g. a run that was re-embedded)."""
        with self._lock:
            for key in [k for k in self._memo if match(k)]:
                del self._memo[key]


# -- the columnar cache ------------------------------------------------------------------------------
def _write_columns(frame: pd.DataFrame, path: Path) -> None:
    """One ``.npy`` per column (text as fixed-width unicode), written to a temporary folder and
    renamed into place, so a reader never sees half a cache; stale caches are removed."""
    parent = path.parent
    parent.mkdir(parents=True, exist_ok=True)
    tmp = parent / f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    columns = []
    try:
        for i, name in enumerate(frame.columns):
            col = frame[name]
            values = col.to_numpy()
            if values.dtype == object:
                if not all(isinstance(v, str) for v in values):
                    raise ValueError(f"column {name!r} is not all text")
                kind, arr = "text", values.astype(str)
            elif values.dtype.kind in "biuf":
                kind, arr = "number", values
            else:
                raise ValueError(f"column {name!r} has dtype {values.dtype}")
            np.save(tmp / f"{i}.npy", arr, allow_pickle=False)
            columns.append({"name": str(name), "kind": kind})
        (tmp / "columns.json").write_text(json.dumps({"format": _CACHE_FORMAT, "columns": columns}))
        try:
            os.rename(tmp, path)
        except OSError:  # another process wrote it first
            shutil.rmtree(tmp, ignore_errors=True)
    except Exception:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    for old in parent.glob("catalog-*"):
        if old != path:
            shutil.rmtree(old, ignore_errors=True)


def _read_columns(path: Path) -> pd.DataFrame:
    meta = json.loads((path / "columns.json").read_text())
    if meta.get("format") != _CACHE_FORMAT:
        raise ValueError(f"cache format {meta.get('format')}")
    data = {}
    for i, col in enumerate(meta["columns"]):
        if col["kind"] == "number":
            # a plain ndarray over the read-only map (np.memmap would leak into every result)
            data[col["name"]] = np.asarray(np.load(path / f"{i}.npy", mmap_mode="r"))
        else:
            data[col["name"]] = np.load(path / f"{i}.npy").astype(object)
    return pd.DataFrame(data, copy=False)
