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

from core.io.stamps import READ_CHUNK, STAMP_KINDS, StampStore
from core.prep.galaxy import GEOMETRY_COLUMNS, galaxy_seed, prep_block
from core.prep.metrics import METRIC_COLUMNS, METRIC_DOCS
from core.workspace.config import DEFAULT_CONFIG

__all__ = ["FINISHED", "PREP_STATUSES", "assign_split", "prep_chunk", "prep_report", "prep_workspace"]

log = logging.getLogger(__name__)

PREP_STATUSES = ("pending", "ok", "flagged", "error")
FINISHED = ("ok", "flagged", "error")
JOURNAL_DIR = "prep"


# -- one chunk of the workspace -------------------------------------------------------------------


#: Float columns prep writes per galaxy.
_FLOAT_COLUMNS = (*METRIC_COLUMNS, *[c for c in GEOMETRY_COLUMNS if c != "pixel_scale"])


def _blank_result(row: int, galaxy_id: str) -> dict[str, Any]:
    return {"row": row, "id": galaxy_id, "status": "error", "message": "", "flags": "", "padded": False,
            "pixel_scale": float("nan"), "pixel_scale_src": "", **{c: float("nan") for c in _FLOAT_COLUMNS}}


def _with_ingest_flags(res: dict[str, Any], info: Mapping[str, Any]) -> None:
    """Join what ingest flagged (the GOI's GALFIT component) to a galaxy's prep result."""
    codes = [c for c in str(info.get("comp_flags", "")).split(",") if c]
    if not codes:
        return
    note = str(info.get("comp_note", "")).strip()
    flags = [c for c in str(res["flags"]).split(",") if c]
    res["flags"] = ",".join(codes + [c for c in flags if c not in codes])
    if note:
        res["message"] = f"{note}; {res['message']}" if res["message"] else note
    if res["status"] == "ok":
        res["status"] = "flagged"

def _journal_path(root: Path, start: int) -> Path:
    return Path(root) / JOURNAL_DIR / f"chunk_{start:010d}.json"


def prep_chunk(
    root: str,
    start: int,
    stop: int,
    items: list[tuple],
    config: Mapping[str, Any],
) -> list[dict[str, Any]]:
    """Prepare the galaxies ``items`` of stamp chunk ``[start, stop)`` and write that chunk.

    This is the unit of parallel work. ``items`` are ``(row, id, block path, gf_xc, gf_yc)``, or
    ``(row, id, block path, gf_xc, gf_yc, info)`` with ``info`` a dict of the catalog's
    ``component`` (``gf_component``), ``pixel_scale`` and the ingest's ``comp_flags`` /
    ``comp_note`` (``gf_comp_flags``, ``ingest_note``), for the rows to (re)do; other rows of the
    chunk keep their stored stamps. Per-galaxy problems become ``"error"`` results; the function
    never raises for one galaxy. The chunk's results are also journaled to
    ``root/prep/chunk_<start>.json`` (after the stamps are written) so that an interrupted run
    can be resumed.

    Returns
    -------
    list of dict
        One result per item: ``row, id, status, message, flags, padded``, the metric columns
        and the geometry columns (:data:`core.prep.galaxy.GEOMETRY_COLUMNS`).
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
        for item in items:
            row, gid, path, xc, yc = item[:5]
            info = item[5] if len(item) > 5 else {}
            res = _blank_result(row, gid)
            p = Path(path)
            if not p.is_absolute():
                p = root / p
            try:
                out = prep_block(p, xc, yc, seed=galaxy_seed(config.get("seed", 0), gid), config=config,
                                 component=info.get("component"), pixel_scale=info.get("pixel_scale"),
                                 scale_source=info.get("pixel_scale_src", ""))
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
                res.update(status=out.status, message=out.message, flags=",".join(out.flags), padded=out.padded,
                           pixel_scale_src=out.scale_source, **out.metrics, **out.geometry)
            _with_ingest_flags(res, info)
            results.append(res)
        for k in STAMP_KINDS:
            store.write(k, start, buffers[k])
    except Exception as exc:  # noqa: BLE001 — e.g. the store cannot be written
        log.exception("chunk %d-%d failed", start, stop)
        results = []
        for row, gid, *_ in items:
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
    if "prep_flags" not in cat.colnames:
        cat["prep_flags"] = Column([""] * n, dtype="U1")
    for c in (*_FLOAT_COLUMNS, "pixel_scale"):
        if c not in cat.colnames:
            cat[c] = np.full(n, np.nan)
    if "pixel_scale_src" not in cat.colnames:
        cat["pixel_scale_src"] = Column([""] * n, dtype="U1")
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
        self.flags = [str(s) for s in cat["prep_flags"]]
        self.metrics = {c: np.array(cat[c], dtype=np.float64) for c in (*_FLOAT_COLUMNS, "pixel_scale")}
        self.scale_src = [str(s) for s in cat["pixel_scale_src"]]
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
            self.flags[i] = r.get("flags", "")
            for c in _FLOAT_COLUMNS:
                self.metrics[c][i] = r.get(c, np.nan)
            if r["status"] != "error":  # the scale prep used (an error leaves ingest's reading)
                self.metrics["pixel_scale"][i] = r["pixel_scale"]
                self.scale_src[i] = r.get("pixel_scale_src", "")

    def table(self) -> Table:
        cat = self.cat
        cat["prep_status"] = Column(self.status, dtype=str)
        cat["prep_message"] = Column([m or "" for m in self.message], dtype=str)
        cat["prep_flags"] = Column([f or "" for f in self.flags], dtype=str)
        for c in (*_FLOAT_COLUMNS, "pixel_scale"):
            cat[c] = self.metrics[c]
        cat["pixel_scale_src"] = Column(self.scale_src, dtype=str)
        cat["cutout_padded"] = self.padded
        describe_columns(cat)
        return cat

    def write(self) -> None:
        self.ws.write_catalog(self.table())
        self.last_write = time.monotonic()


#: Descriptions of the columns prep writes besides the metrics (:data:`core.prep.metrics.METRIC_DOCS`),
#: and whether each is in the image's units.
COLUMN_DOCS: dict[str, tuple[str, bool]] = {
    **METRIC_DOCS,
    "pixel_scale": ("arcsec per native pixel used for the cutout (NaN: unknown)", False),
    "cutout_px": ("side of the cutout, native pixels (resampled to prep.cutout px)", False),
    "cutout_arcsec": ("side of the cutout, arcsec (NaN when the pixel scale is unknown)", False),
    "stamp_sigma": ("sky sigma of the resampled object-only stamp (for scaling and display)", True),
    "sky_seam": ("block-edge / inside pixel-difference ratio of the resampled sky (1: no seams)", False),
    "goi_outside": ("share of the GOI segment's model flux outside the cutout", False),
    "goi_fill": ("share of the cutout covered by the GOI segment", False),
    "prep_flags": ("what prep (and ingest) flagged, comma-separated codes (core.prep.galaxy.FLAG_CODES)", False),
}


def _astropy_unit(text: str):
    """``text`` (a BUNIT) as an astropy unit, or ``None`` when astropy cannot read it."""
    import astropy.units as u

    spelled = {"ELECTRONS/S": "electron / s", "ELECTRONS/SEC": "electron / s", "ELECTRONS": "electron",
               "COUNTS/S": "ct / s", "COUNTS": "ct", "ADU": "adu", "DN": "adu"}
    text = spelled.get(text.strip().upper(), text.strip())
    try:
        unit = u.Unit(text, parse_strict="raise")
        unit.to_string("fits")  # FITS (TUNITn) has no electron: such units stay in the description
    except (ValueError, TypeError):
        return None
    return unit


def describe_columns(cat: Table) -> None:
    """Set the description (and, for image-unit columns, the unit) of prep's catalog columns.

    SPF and the other flux-like columns are in the image's units (the blocks' ``BUNIT``, in the
    catalog's ``bunit`` column): the description says so, naming the unit when every galaxy
    shares one; when that unit is also one FITS can write (``TUNITn``; FITS has no electron), it
    becomes the column's astropy unit too.
    """
    units = {str(b).strip() for b in cat["bunit"]} if "bunit" in cat.colnames else set()
    shared = next(iter(units)) if len(units) == 1 and "" not in units else ""
    unit = _astropy_unit(shared) if shared else None
    for name, (doc, image_units) in COLUMN_DOCS.items():
        if name not in cat.colnames:
            continue
        col = cat[name]
        if image_units:
            col.unit = unit
            col.description = f"{doc} [image units: {shared}]" if shared else f"{doc} [image units: see bunit]"
        else:
            col.description = doc


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


def _row_info(cat: Table) -> list[dict[str, Any]]:
    """Per row, what ingest read for prep: the component, the pixel scale, the component's flags."""
    n = len(cat)

    def col(name, default, kind):
        return [kind(v) for v in cat[name]] if name in cat.colnames else [default] * n

    comps = col("gf_component", -1, int)
    scales = col("pixel_scale", float("nan"), float)
    sources = col("pixel_scale_src", "", lambda v: str(v).strip())
    flags = col("gf_comp_flags", "", lambda v: str(v).strip())
    notes = col("ingest_note", "", lambda v: str(v).strip())
    return [{"component": comps[i] if comps[i] > 0 else None,
             "pixel_scale": scales[i] if np.isfinite(scales[i]) and sources[i] != "config" else None,
             "pixel_scale_src": sources[i] if sources[i] != "config" else "",
             "comp_flags": flags[i], "comp_note": notes[i] if flags[i] else ""} for i in range(n)]


def prep_workspace(ws, scheduler: Any = None, workers: int | None = None, redo: bool = False,
                   progress: bool = True, write_every: float = 30.0) -> Table:
    """Prepare every pending galaxy of a workspace (stamps, metrics, split), in parallel.

    Parameters
    ----------
    ws : core.workspace.workspace.Workspace or path
        The workspace (its catalog needs ``id``, ``block``, ``gf_xc``, ``gf_yc``).
    scheduler : None, str or distributed.Client
        Where to run (:func:`core.parallel.run_tasks`): ``None`` for the local scheduler, an
        address (``"tcp://host:8786"``) or a ``Client`` for a ``dask.distributed`` cluster whose
        workers see the workspace (and relative block paths under it) at the same absolute path.
        The results are the same for any scheduler.
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
    from core.parallel import describe_scheduler, is_distributed, run_tasks
    from core.workspace.workspace import Workspace

    if not hasattr(ws, "read_catalog"):
        ws = Workspace.open(ws)
    # Absolute: a task may run on a worker started in another folder (or on another machine).
    root = Path(os.path.abspath(ws.root))
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
        store = StampStore.create(ws.stamps_path, n, size, chunk, read_chunk=READ_CHUNK)
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
    info = _row_info(cat)
    tasks, weights = [], []
    by_chunk: dict[int, list] = {}
    for i in todo:
        by_chunk.setdefault(i // store.chunk, []).append(
            (i, updater.ids[i], blocks[i], float(xs[i]), float(ys[i]), info[i]))
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
              progress=progress, desc="prep", unit="galaxy", weights=weights,
              shared=[str(root / "stamps.zarr")] if is_distributed(scheduler) else ())
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
