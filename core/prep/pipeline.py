"""``resx prep`` at survey scale: :func:`core.prep.galaxy.prep_block` over a workspace, on Dask.

:func:`prep_workspace` maps it over a workspace's catalog with Dask (:mod:`core.parallel`): one
task per chunk of the stamp store, each task writing only its own chunk. Every task also writes a
small journal file (``WORKSPACE/prep/chunk_*.json``); the driver merges results into the catalog
as tasks finish and at the end, so an interrupted run resumes where it stopped.

Bad input (a missing or truncated block, a missing HDU, NaN/inf pixels, a centroid off the image,
no segment under the centroid, an all-zero residual, an extraction that fails) gives that galaxy
``prep_status = "error"`` and a ``prep_message`` naming the problem; the batch goes on. Smaller
problems (a padded cutout, a failed metric) give ``"flagged"``. Big-endian (FITS-native) or
non-contiguous arrays are converted, not refused.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from astropy.table import Column, Table

from core.io.stamps import STAMP_KINDS, StampStore
from core.prep.galaxy import galaxy_seed, prep_block
from core.prep.metrics import METRIC_COLUMNS
from core.workspace.config import DEFAULT_CONFIG

__all__ = ["FINISHED", "PREP_STATUSES", "assign_split", "prep_chunk", "prep_report", "prep_workspace"]

log = logging.getLogger(__name__)

PREP_STATUSES = ("pending", "ok", "flagged", "error")
FINISHED = ("ok", "flagged", "error")
JOURNAL_DIR = "prep"


# -- one chunk of the workspace -------------------------------------------------------------------


def _blank_result(row: int, galaxy_id: str) -> dict[str, Any]:
    return {"row": row, "id": galaxy_id, "status": "error", "message": "", "padded": False,
            **{c: float("nan") for c in METRIC_COLUMNS}}

def _journal_path(root: Path, start: int) -> Path:
    return Path(root) / JOURNAL_DIR / f"chunk_{start:010d}.json"


def prep_chunk(
    root: str,
    start: int,
    stop: int,
    items: list[tuple[int, str, str, float, float]],
    config: Mapping[str, Any],
) -> list[dict[str, Any]]:
    """Prepare the galaxies ``items`` of stamp chunk ``[start, stop)`` and write that chunk.

    This is the unit of parallel work. ``items`` are ``(row, id, block path, gf_xc, gf_yc)`` of the
    rows to (re)do; other rows of the chunk keep their stored stamps. Per-galaxy problems become
    ``"error"`` results; the function never raises for one galaxy. The chunk's results are also
    journaled to ``root/prep/chunk_<start>.json`` (after the stamps are written) so that an
    interrupted run can be resumed.

    Returns
    -------
    list of dict
        One result per item: ``row, id, status, message, padded`` and the metric columns.
    """
    root = Path(root)
    results = []
    try:
        store = StampStore.open(root / "stamps.zarr")
        n = stop - start
        todo_all = len(items) == n
        buffers = {
            k: (np.zeros((n, store.size, store.size), np.uint8) if k == "goi_mask"
                else np.full((n, store.size, store.size), np.nan, np.float32))
            if todo_all else store.read(k, slice(start, stop)).copy()
            for k in STAMP_KINDS
        }
        for row, gid, path, xc, yc in items:
            res = _blank_result(row, gid)
            p = Path(path)
            if not p.is_absolute():
                p = root / p
            try:
                out = prep_block(p, xc, yc, seed=galaxy_seed(config.get("seed", 0), gid), config=config)
            except ValueError as exc:  # PrepError, GalfitBlockError
                res["message"] = str(exc) if str(p) in str(exc) else f"{p}: {exc}"
                for k in STAMP_KINDS:
                    buffers[k][row - start] = 0 if k == "goi_mask" else np.nan
            except Exception as exc:  # noqa: BLE001 — one galaxy never stops the batch
                log.exception("unexpected error preparing %s", gid)
                res["message"] = f"{p}: unexpected {type(exc).__name__}: {exc}"
                for k in STAMP_KINDS:
                    buffers[k][row - start] = 0 if k == "goi_mask" else np.nan
            else:
                for k in STAMP_KINDS:
                    buffers[k][row - start] = out.stamps[k]
                res.update(status=out.status, message=out.message, padded=out.padded, **out.metrics)
            results.append(res)
        for k in STAMP_KINDS:
            store.write(k, start, buffers[k])
    except Exception as exc:  # noqa: BLE001 — e.g. the store cannot be written
        log.exception("chunk %d-%d failed", start, stop)
        results = []
        for row, gid, path, _, _ in items:
            res = _blank_result(row, gid)
            res["message"] = f"chunk {start}-{stop - 1} failed: {type(exc).__name__}: {exc}"
            results.append(res)
    journal = _journal_path(root, start)
    journal.parent.mkdir(exist_ok=True)
    tmp = journal.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"start": start, "stop": stop, "results": results}))
    os.replace(tmp, journal)
    return results


# -- the workspace ------------------------------------------------------------------------------


def _ensure_columns(cat: Table) -> None:
    n = len(cat)
    if "prep_status" not in cat.colnames:
        cat["prep_status"] = Column(["pending"] * n, dtype="U8")
    if "prep_message" not in cat.colnames:
        cat["prep_message"] = Column([""] * n, dtype="U1")
    for c in METRIC_COLUMNS:
        if c not in cat.colnames:
            cat[c] = np.full(n, np.nan)
    if "cutout_padded" not in cat.colnames:
        cat["cutout_padded"] = np.zeros(n, dtype=bool)
    if "split" not in cat.colnames:
        cat["split"] = Column([""] * n, dtype="U8")


class _CatalogUpdater:
    """Holds the catalog's prep columns in memory and writes the catalog atomically."""

    def __init__(self, ws, cat: Table):
        self.ws, self.cat = ws, cat
        self.status = [str(s).strip() or "pending" for s in cat["prep_status"]]
        self.message = [str(s) for s in cat["prep_message"]]
        self.metrics = {c: np.array(cat[c], dtype=np.float64) for c in METRIC_COLUMNS}
        self.padded = np.array(cat["cutout_padded"], dtype=bool)
        self.ids = [str(i) for i in cat["id"]]
        self.last_write = time.monotonic()

    def apply(self, results: list[dict[str, Any]]) -> None:
        for r in results:
            i = int(r["row"])
            if i >= len(self.ids) or self.ids[i] != str(r["id"]):
                log.warning("ignoring a stale prep result for %s (row %d)", r["id"], i)
                continue
            self.status[i], self.message[i], self.padded[i] = r["status"], r["message"], bool(r["padded"])
            for c in METRIC_COLUMNS:
                self.metrics[c][i] = r[c]

    def table(self) -> Table:
        cat = self.cat
        cat["prep_status"] = Column(self.status, dtype=str)
        cat["prep_message"] = Column([m or "" for m in self.message], dtype=str)
        for c in METRIC_COLUMNS:
            cat[c] = self.metrics[c]
        cat["cutout_padded"] = self.padded
        return cat

    def write(self) -> None:
        self.ws.write_catalog(self.table())
        self.last_write = time.monotonic()


def _merge_journal(root: Path, updater: _CatalogUpdater) -> int:
    n = 0
    for path in sorted((root / JOURNAL_DIR).glob("chunk_*.json")):
        try:
            updater.apply(json.loads(path.read_text())["results"])
            n += 1
        except Exception as exc:  # noqa: BLE001
            log.warning("skipping unreadable prep journal %s: %s", path, exc)
    return n


def _clear_journal(root: Path) -> None:
    d = root / JOURNAL_DIR
    if d.is_dir():
        for path in d.glob("chunk_*"):
            path.unlink(missing_ok=True)
        try:
            d.rmdir()
        except OSError:
            pass


def assign_split(ws, cat: Table) -> Table:
    """Fill the catalog's ``split`` column (:func:`core.learn.augment.split_sample`, config ``split``).

    Galaxies flagged for fit quality or whose prep failed are ``"excluded"``.
    """
    from core.learn.augment import split_sample

    cfg = {**DEFAULT_CONFIG["split"], **ws.config.get("split", {})}
    labels = np.array([str(c).strip() for c in cat["catalog_class"]]) if "catalog_class" in cat.colnames \
        else np.full(len(cat), "")
    fq = np.array(cat["fit_quality"], dtype=bool) if "fit_quality" in cat.colnames else np.zeros(len(cat), bool)
    failed = np.array([str(s).strip() == "error" for s in cat["prep_status"]])
    cat["split"] = Column(split_sample(labels, fq | failed, cfg["test_fraction"], cfg["seed"]), dtype="U8")
    return cat


def prep_workspace(ws, scheduler: Any = None, workers: int | None = None, redo: bool = False,
                   progress: bool = True, write_every: float = 30.0) -> Table:
    """Prepare every pending galaxy of a workspace (stamps, metrics, split), in parallel.

    Parameters
    ----------
    ws : core.workspace.workspace.Workspace or path
        The workspace (its catalog needs ``id``, ``block``, ``gf_xc``, ``gf_yc``).
    scheduler : None, str or distributed.Client
        Where to run (:func:`core.parallel.run_tasks`): ``None`` for the local scheduler.
    workers : int, optional
        Local workers (default one per core).
    redo : bool
        Redo every galaxy, even those already prepared (also when the cutout size changed).
    progress : bool
        Show a progress bar.
    write_every : float
        Seconds between intermediate catalog writes while chunks finish.

    Returns
    -------
    astropy.table.Table
        The updated catalog (also written to the workspace).
    """
    from core.parallel import describe_scheduler, run_tasks
    from core.workspace.workspace import Workspace

    if not hasattr(ws, "read_catalog"):
        ws = Workspace.open(ws)
    root = Path(ws.root)
    cfg = {**DEFAULT_CONFIG["prep"], **ws.config.get("prep", {})}
    size, chunk = int(cfg["cutout"]), int(cfg["chunk"])
    cat = ws.read_catalog()
    missing = [c for c in ("id", "block") if c not in cat.colnames]
    if missing:
        from core.workspace.workspace import WorkspaceError

        raise WorkspaceError(f"{ws.catalog_path} lacks the column(s) {missing}")
    _ensure_columns(cat)
    n = len(cat)

    store = None
    if ws.stamps_path.exists():
        try:
            store = StampStore.open(ws.stamps_path)
        except OSError:
            store = None
    if store is None or store.n != n or store.size != size or store.chunk != min(chunk, max(n, 1)):
        if store is not None:
            log.warning("stamp store %s does not match the catalog/config (n=%d, size=%d): rebuilding it",
                        ws.stamps_path, n, size)
        store = StampStore.create(ws.stamps_path, n, size, chunk)
        redo = True
    if redo:
        _clear_journal(root)
        cat["prep_status"] = Column(["pending"] * n, dtype="U8")

    updater = _CatalogUpdater(ws, cat)
    if _merge_journal(root, updater):
        log.info("resumed: merged the journal of an interrupted run")
    todo = [i for i in range(n) if updater.status[i] not in FINISHED]
    xs = np.array(cat["gf_xc"], dtype=float) if "gf_xc" in cat.colnames else np.full(n, np.nan)
    ys = np.array(cat["gf_yc"], dtype=float) if "gf_yc" in cat.colnames else np.full(n, np.nan)
    blocks = [str(b).strip() for b in cat["block"]]
    tasks, weights = [], []
    by_chunk: dict[int, list] = {}
    for i in todo:
        by_chunk.setdefault(i // store.chunk, []).append((i, updater.ids[i], blocks[i], float(xs[i]), float(ys[i])))
    for k, items in sorted(by_chunk.items()):
        start = k * store.chunk
        tasks.append((str(root), start, min(start + store.chunk, n), items, cfg))
        weights.append(len(items))
    log.info("prep: %d of %d galaxies to do in %d chunk(s) on the %s", len(todo), n, len(tasks),
             describe_scheduler(scheduler, workers))

    def on_result(_: int, results: list[dict[str, Any]]) -> None:
        updater.apply(results)
        if time.monotonic() - updater.last_write > write_every:
            updater.write()

    run_tasks(prep_chunk, tasks, scheduler=scheduler, workers=workers, on_result=on_result,
              progress=progress, desc="prep", unit="galaxy", weights=weights)
    cat = assign_split(ws, updater.table())
    ws.write_catalog(cat)
    _clear_journal(root)
    return cat


def prep_report(cat: Table) -> str:
    """A readable report: counts per status and every flagged or failed galaxy with its message."""
    status = np.array([str(s).strip() for s in cat["prep_status"]]) if "prep_status" in cat.colnames \
        else np.full(len(cat), "pending")
    lines = ["prep status: " + ", ".join(f"{s} {int(np.sum(status == s))}" for s in PREP_STATUSES)]
    bad = np.nonzero((status == "flagged") | (status == "error"))[0]
    if len(bad):
        width = max(len(str(cat["id"][i])) for i in bad)
        lines.append(f"{'id':<{width}}  {'status':<7}  message")
        for i in bad:
            lines.append(f"{str(cat['id'][i]):<{width}}  {status[i]:<7}  {str(cat['prep_message'][i])}")
    else:
        lines.append("no galaxy was flagged or failed.")
    return "\n".join(lines)
