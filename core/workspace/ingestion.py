"""Create a workspace from a catalog and GALFIT blocks: ``resx ingest`` and ``resx catalog``.

SOURCE is either

* a ``resx simulate`` output folder: ``catalog.fits`` (id, field, ra, dec, z, logmass, hmag,
  photflag, block — relative to the folder —, true_class, fit_quality, truth parameters),
  ``blocks/`` and ``votes.csv``; or
* a catalog file (FITS, ECSV or CSV), with the blocks in ``--blocks DIR``. The catalog's
  ``block`` column (or an alias, or a ``--columns block=...`` mapping) is taken relative to
  ``DIR`` (or to the catalog's folder without ``--blocks``); a catalog without one is matched by
  id: ``DIR/<id>.fits``, ``DIR/<id>_block.fits`` (and ``.fits.gz``).

Ingest reads the catalog, applies the sample cuts (reporting what each removed), reads the
GALFIT parameters of every block from its header only (the pixels are read by prep; a survey's
blocks are read in parallel tasks of :data:`HEADER_CHUNK` blocks on Dask, as prep does), and writes
the workspace's ``config.toml`` (every default, with the user's overrides) and ``catalog.fits``.
A block that is missing or unreadable does not stop the ingest: its row gets
``prep_status = "error"`` and the reason in ``prep_message``; every other row is ``"pending"``.

Columns written (besides every column of the input catalog): ``id field ra dec z logmass hmag
photflag block`` (absolute path) ``catalog_class fit_quality gf_xc gf_yc gf_mag gf_re gf_n gf_ar
gf_pa gf_sky gf_chi2nu gf_flags gf_component gf_comp_how gf_comp_dist gf_comp_flags gf_neighbours
pixel_scale pixel_scale_src bunit pixel_type ingest_note prep_status prep_message``:

* ``gf_flags`` lists the parameters GALFIT flagged as problems (``*value*``), e.g. ``"N,RE"``;
  ``gf_sky``/``gf_chi2nu`` are NaN when the block has none;
* the galaxy's GALFIT component (:func:`core.io.galfit.choose_component`): ``gf_component`` (its
  number), ``gf_comp_how`` (``catalog``: the catalog's ``component`` column named it; ``radec``:
  nearest the catalog RA/Dec through the block's WCS; ``centre``: nearest the block centre),
  ``gf_comp_dist`` (px from that target), ``gf_comp_flags`` (``goi_component_far``,
  ``goi_component_ambiguous``: prep flags the galaxy), ``gf_neighbours`` (the other components'
  centres, ``"N:x,y;..."``, 1-based block pixels);
* from the block's headers (:mod:`core.io.calibration`): ``pixel_scale`` (arcsec/px, NaN when no
  header says) and ``pixel_scale_src`` (``WCS``, ``PIXSCALE``, ...), ``bunit`` (the image units)
  and ``pixel_type`` (``float32``, or an integer type read as float64 in physical units);
* ``ingest_note``: what ingest noticed but did not refuse (a flagged component, integer pixels).

Standard columns the catalog lacks are filled with ``""`` (field), NaN (ra, dec, z, logmass,
hmag) or -1 (photflag: unknown).
"""

from __future__ import annotations

import logging
import math
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np
from astropy.table import MaskedColumn, Table

from core.io.catalog import CatalogError, parse_column_mapping, read_catalog
from core.io.galfit import PARAM_NAMES, GalfitBlockError, read_block
from core.labels import CLASSES, FIT_QUALITY
from core.workspace.config import default_config, merge, validate
from core.workspace.cuts import CutReport, apply_cuts
from core.workspace.workspace import Workspace, WorkspaceError

__all__ = ["IngestReport", "ingest", "read_workspace_catalog", "write_catalog"]

log = logging.getLogger(__name__)

#: The catalog a ``resx simulate`` folder holds, in order of preference.
SIMULATE_CATALOGS = ("catalog.fits", "catalog.ecsv", "catalog.csv")
VOTES_FILE = "votes.csv"
BLOCK_PATTERNS = ("{id}.fits", "{id}_block.fits", "{id}.fits.gz", "{id}_block.fits.gz")

#: Minimum width of ``prep_message`` (FITS strings are fixed-width; longer ones are truncated).
MESSAGE_WIDTH = 160
GF_COLUMNS = tuple(f"gf_{p.lower()}" for p in PARAM_NAMES)  # gf_xc ... gf_pa
_FLOAT_DEFAULTS = ("ra", "dec", "z", "logmass", "hmag")
_LEADING = ("id", "field", "ra", "dec", "z", "logmass", "hmag", "photflag", "block",
            "catalog_class", "fit_quality", *GF_COLUMNS, "gf_sky", "gf_chi2nu", "gf_flags",
            "gf_component", "gf_comp_how", "gf_comp_dist", "gf_comp_flags", "gf_neighbours",
            "pixel_scale", "pixel_scale_src", "bunit", "pixel_type", "ingest_note",
            "prep_status", "prep_message")


@dataclass
class IngestReport:
    """What an ingest did (also stored on :attr:`Workspace.ingest_report` of the result)."""

    catalog: str
    cuts: CutReport
    n_blocks_ok: int = 0
    block_errors: list[tuple[str, str]] = field(default_factory=list)  # (id, message)
    unknown_classes: dict[str, int] = field(default_factory=dict)
    votes_file: str | None = None
    renamed_columns: dict[str, str] = field(default_factory=dict)  # non-ASCII name -> ASCII name
    flagged_components: list[tuple[str, str]] = field(default_factory=list)  # (id, note)
    integer_blocks: int = 0


def _find_source(source: Path, blocks_dir: Path | None) -> tuple[Path, Path | None, Path | None, bool]:
    """(catalog path, blocks base folder, votes file, is_simulate_folder)."""
    if source.is_dir():
        for name in SIMULATE_CATALOGS:
            if (source / name).is_file():
                votes = source / VOTES_FILE
                return source / name, blocks_dir or source, votes if votes.is_file() else None, True
        raise CatalogError(f"{source}: a folder SOURCE must be a `resx simulate` output folder with "
                           f"{' or '.join(SIMULATE_CATALOGS)}; none found")
    if not source.exists():
        raise CatalogError(f"{source}: no such catalog file or folder")
    return source, blocks_dir, None, False


def _ascii_column_names(table: Table) -> dict[str, str]:
    """Rename columns whose names are not ASCII (FITS column names must be): each non-ASCII
    character becomes ``_`` (a number is added if that name is taken). Returns ``{old: new}``."""
    renames: dict[str, str] = {}
    for name in list(table.colnames):
        if name.isascii():
            continue
        base = "".join(c if c.isascii() else "_" for c in name)
        new, k = base, 1
        while new in table.colnames:
            k += 1
            new = f"{base}_{k}"
        table.rename_column(name, new)
        renames[name] = new
    if renames:
        log.warning("%s: FITS column names are ASCII; renamed %s", table.meta.get("source", "catalog"), renames)
    return renames


def _wide(values: list[str], width: int) -> np.ndarray:
    """A str array at least ``width`` characters wide, so later element assignments (prep) fit."""
    longest = max((len(v) for v in values), default=0)
    return np.array(values, dtype=f"U{max(width, longest)}")


def _normalise_class(value: Any) -> str | None:
    """A class label spelled as in :mod:`core.labels`, "" for none, ``None`` if unknown."""
    text = str(value).strip() if value is not None else ""
    if text.lower() in ("", "none", "nan", "--", "n/a", "unknown"):
        return ""
    key = text.lower().replace("_", "").replace("-", "").replace(" ", "")
    for label in (*CLASSES, FIT_QUALITY):
        if key == label.lower():
            return label
    return None


def _as_bool(values: Any) -> np.ndarray:
    out = []
    for v in np.asarray(values):
        if isinstance(v, (bool, np.bool_)):
            out.append(bool(v))
        elif isinstance(v, (int, float, np.integer, np.floating)):
            out.append(bool(v) and not (isinstance(v, float) and math.isnan(v)))
        else:
            out.append(str(v).strip().lower() in ("1", "true", "t", "yes", "y"))
    return np.array(out, dtype=bool)


def _block_paths(table: Table, base: Path | None, catalog: Path) -> list[Path | None]:
    """Absolute block path per row (None where none is found by id)."""
    if "block" in table.colnames:
        root = base if base is not None else catalog.parent
        out: list[Path | None] = []
        for v in table["block"]:
            text = str(v).strip()
            if not text:
                out.append(None)
                continue
            p = Path(text).expanduser()
            out.append((p if p.is_absolute() else root / p).resolve())
        return out
    if base is None:
        raise CatalogError(f"{catalog}: the catalog has no block column; give the blocks folder "
                           "with --blocks DIR (blocks named <id>.fits or <id>_block.fits), or map "
                           "the column with --columns block=YOUR_COLUMN")
    out = []
    for gid in table["id"]:
        hit = next((base / pat.format(id=gid) for pat in BLOCK_PATTERNS
                    if (base / pat.format(id=gid)).is_file()), None)
        out.append(hit.resolve() if hit is not None else None)
    return out


#: Blocks per parallel header-reading task: large enough that Dask's per-task overhead (and the
#: pickled results) is small next to reading the blocks (~5 ms each), small enough that a few
#: thousand blocks give every worker several tasks to balance the load (2000 blocks: 4 tasks).
HEADER_CHUNK = 500
#: Float columns read per block (NaN where a block has none or cannot be read).
_FLOAT_VALUES = (*GF_COLUMNS, "gf_sky", "gf_chi2nu", "gf_comp_dist", "pixel_scale")
#: Text columns read per block ("" where a block has none).
_TEXT_VALUES = ("gf_flags", "gf_comp_how", "gf_comp_flags", "gf_neighbours", "pixel_scale_src", "bunit",
                "pixel_type", "ingest_note")


def _format_neighbours(block) -> str:
    """``"3:61.20,40.10;4:12.00,80.30"``: number and 1-based block centre of each other component."""
    return ";".join(f"{c.number}:{c.position[0]:.2f},{c.position[1]:.2f}" for c in block.neighbours)


def _header_row(error: str = "") -> dict[str, Any]:
    """The values of a block not read (yet): NaN, "", component -1; ``error`` makes it an error."""
    return {"status": "error" if error else "pending", "message": error, "gf_component": -1,
            **{c: math.nan for c in _FLOAT_VALUES}, **{c: "" for c in _TEXT_VALUES}}


def read_block_header(path: str, component: int | None = None, radec: tuple[float, float] | None = None,
                      radius: float = 5.0) -> dict[str, Any]:
    """The catalog values of one block, read from its headers; never raises.

    Parameters
    ----------
    path : str
        The block file.
    component : int, optional
        The galaxy's component, when the catalog names it.
    radec : (float, float), optional
        The catalog's RA, Dec (deg), to choose the component through the block's WCS.
    radius : float
        px: config ``catalog.goi_radius`` (see :func:`core.io.galfit.choose_component`).

    Returns
    -------
    dict
        ``status`` ("pending" | "error"), ``message``, ``gf_component`` (int, -1 when unread), and
        the columns of :data:`_FLOAT_VALUES` and :data:`_TEXT_VALUES`.
    """
    from core.io.calibration import image_unit, pixel_scale, pixel_type

    out = _header_row()
    try:
        block = read_block(path, pixels=False, strict=False, component=component, radec=radec, radius=radius)
    except GalfitBlockError as exc:
        out.update(status="error", message=str(exc))
        return out
    except Exception as exc:  # noqa: BLE001 — one block never stops the batch
        log.exception("unexpected error reading the GALFIT block %s", path)
        out.update(status="error", message=f"{path}: unexpected {type(exc).__name__}: {exc}")
        return out
    for name, col in zip(PARAM_NAMES, GF_COLUMNS):
        out[col] = block.params[name].value
    if "SKY" in block.params:
        out["gf_sky"] = block.params["SKY"].value
    if block.chi2nu is not None:
        out["gf_chi2nu"] = block.chi2nu
    out["gf_flags"] = ",".join(k for k, p in block.params.items() if p.flag == "problem")
    choice = block.choice
    out.update(gf_component=int(choice.number), gf_comp_how=choice.how, gf_comp_dist=choice.distance,
               gf_comp_flags=",".join(choice.flags), gf_neighbours=_format_neighbours(block))
    h = block.headers
    out["pixel_scale"], out["pixel_scale_src"] = pixel_scale(h["input"], h["model"], h["primary"])
    out["bunit"] = image_unit(h["input"], h["model"], h["primary"])
    out["pixel_type"] = pixel_type(h["input"])
    notes = [choice.note] if choice.note else []
    n_sersic = sum(c.kind == "sersic" for c in block.components)
    if radec is not None and choice.how != "radec" and component is None and n_sersic > 1:
        notes.append("no celestial WCS in the block: the GALFIT component nearest the block centre was taken")
    if not out["pixel_type"].startswith("float"):
        notes.append(f"integer pixels ({out['pixel_type']}) read as float64 in physical units")
    out["ingest_note"] = "; ".join(notes)
    if block.problems:
        out.update(status="error", message=f"{path}: " + "; ".join(block.problems))
    return out


def read_header_chunk(paths: list[str], components: list[int | None] | None = None,
                      radecs: list[tuple[float, float] | None] | None = None,
                      radius: float = 5.0) -> list[dict[str, Any]]:
    """:func:`read_block_header` for some blocks (one ingest task).

    A module-level function of plain arguments and results, so that Dask can ship it to worker
    processes. A block that cannot be read never raises: it gets status ``"error"`` and a message
    naming the file.

    Parameters
    ----------
    paths : list of str
        Block files.
    components, radecs : list, optional
        Per block: the component a catalog names, and the catalog's (RA, Dec); ``None`` entries
        where it has none.
    radius : float
        See :func:`read_block_header`.

    Returns
    -------
    list of dict
        One :func:`read_block_header` result per block.
    """
    n = len(paths)
    components = list(components) if components is not None else [None] * n
    radecs = list(radecs) if radecs is not None else [None] * n
    return [read_block_header(p, c, r, radius) for p, c, r in zip(paths, components, radecs)]


def _catalog_components(table: Table) -> list[int | None]:
    """The ``component`` column as ints (``None`` where blank, masked, NaN or < 1)."""
    if "component" not in table.colnames:
        return [None] * len(table)
    col = table["component"]
    mask = np.asarray(col.mask) if isinstance(col, MaskedColumn) else np.zeros(len(col), bool)
    out: list[int | None] = []
    for v, m in zip(np.asarray(col), mask):
        try:
            number = float(str(v).strip())
        except ValueError:
            number = math.nan
        out.append(int(number) if not m and math.isfinite(number) and number >= 1 else None)
    return out


def _catalog_radecs(table: Table) -> list[tuple[float, float] | None]:
    if "ra" not in table.colnames or "dec" not in table.colnames:
        return [None] * len(table)
    ra = np.asarray(table["ra"], dtype=float)
    dec = np.asarray(table["dec"], dtype=float)
    return [(float(a), float(d)) if np.isfinite(a) and np.isfinite(d) else None for a, d in zip(ra, dec)]


def _read_headers(table: Table, paths: list[Path | None], blocks_hint: Path | None,
                  progress: bool, scheduler: Any = None, workers: int | None = None,
                  radius: float = 5.0) -> dict[str, list]:
    """Per row, :func:`read_block_header`'s values (``status``, ``message``, the ``gf_*`` columns...).

    Blocks are read in chunks of :data:`HEADER_CHUNK`, on Dask (:func:`core.parallel.run_tasks`)
    when there are at least two chunks and more than one worker, else here, one after another.
    On a ``dask.distributed`` cluster they are always read by its workers (in at least two tasks
    when there are two blocks). All give the same result.
    """
    from core.parallel import ProgressBar, describe_scheduler, in_process, is_distributed, run_tasks

    n = len(table)
    rows: list[dict[str, Any]] = [{} for _ in range(n)]
    found = [i for i in range(n) if paths[i] is not None]
    for i in range(n):
        if paths[i] is None:
            where = f" in {blocks_hint}" if blocks_hint else ""
            rows[i] = _header_row(f"no GALFIT block found for id {table['id'][i]}{where}")
    components, radecs = _catalog_components(table), _catalog_radecs(table)
    size = max(1, int(HEADER_CHUNK))
    distributed = is_distributed(scheduler)
    if distributed:
        size = max(1, min(size, -(-len(found) // 2)))  # the cluster was asked for: use two workers at least
    serial = not found or (not distributed and (len(found) < 2 * size or in_process(scheduler, workers)))
    if serial:
        size = min(size, 50)  # here, pieces only pace the progress bar
    chunks = [found[k:k + size] for k in range(0, len(found), size)]
    tasks = [([str(paths[i]) for i in rows_], [components[i] for i in rows_], [radecs[i] for i in rows_], radius)
             for rows_ in chunks]
    desc, unit = "reading GALFIT headers", "block"
    if serial:
        results = []
        with ProgressBar(total=len(found), desc=desc, unit=unit, disable=not progress, mininterval=0.5) as bar:
            for task in tasks:
                results.append(read_header_chunk(*task))
                bar.update(len(task[0]))
    else:
        log.info("reading %d GALFIT headers in %d tasks on the %s", len(found), len(tasks),
                 describe_scheduler(scheduler, workers))
        # the block folders this machine sees (a missing block is that galaxy's error, not the cluster's)
        shared = [d for d in sorted({os.path.dirname(t) for task in tasks for t in task[0]})[:100]
                  if os.path.isdir(d)]
        results = run_tasks(read_header_chunk, tasks, scheduler=scheduler, workers=workers,
                            progress=progress, desc=desc, unit=unit, weights=[len(c) for c in chunks],
                            shared=shared if distributed else ())
    for chunk, result in zip(chunks, results):
        for i, values in zip(chunk, result):
            rows[i] = values
    return {key: [r[key] for r in rows] for key in _header_row()}


def ingest(
    source: str | Path,
    workspace_path: str | Path,
    columns: Mapping[str, str] | str | None = None,
    config: Mapping[str, Any] | None = None,
    blocks_dir: str | Path | None = None,
    force: bool = False,
    *,
    progress: bool = True,
    scheduler: Any = None,
    workers: int | None = None,
) -> Workspace:
    """Create a workspace from a catalog + GALFIT blocks, or from a ``resx simulate`` folder.

    Parameters
    ----------
    source : str or Path
        A ``resx simulate`` folder or a catalog file (FITS, ECSV, CSV).
    workspace_path : str or Path
        The workspace folder to create.
    columns : mapping or str, optional
        Column mapping ``{standard: user}`` (see :func:`core.io.catalog.read_catalog`); overrides
        ``config["catalog"]["columns"]``.
    config : mapping, optional
        Overrides of :data:`core.workspace.config.DEFAULT_CONFIG` (e.g. ``{"cuts": {"hmag_max": None}}``);
        the merged result is written to ``config.toml``.
    blocks_dir : str or Path, optional
        Folder of the GALFIT blocks (a catalog SOURCE); block paths are relative to it.
    force : bool
        Replace an existing workspace's config and catalog. Its stamps (which no longer match
        the catalog rows) are deleted; votes and runs are kept.
    progress : bool
        Show a progress bar while reading the block headers.
    scheduler : None, str or distributed.Client
        Where to read the block headers (:func:`core.parallel.run_tasks`): ``None`` for the local
        scheduler, ``"tcp://host:8786"`` (or a ``Client``) for a ``dask.distributed`` cluster
        whose workers see the block files at the same paths. The headers are read in tasks of
        :data:`HEADER_CHUNK` blocks; fewer blocks than two tasks are read in this process.
    workers : int, optional
        Local worker processes (default one per core); ``1`` reads every header in this process.
        Ignored for a distributed cluster. The catalog is the same for any ``scheduler`` and
        ``workers``.

    Returns
    -------
    Workspace
        The new workspace; ``ws.ingest_report`` is an :class:`IngestReport`.

    Raises
    ------
    ConfigError
        ``config`` has an unknown key or a wrong value (checked before anything is read).
    CatalogError
        The catalog cannot be read, has no rows, or no galaxy passes the cuts, or there is no way
        to find the blocks. Nothing is written in that case. (A cut whose column the catalog
        lacks is turned off, not refused: ``ws.ingest_report.cuts.missing`` and ``.note()``.)
    WorkspaceError
        The workspace exists and ``force`` is false.
    """
    source = Path(source)
    root = Path(workspace_path)
    validate(dict(config or {}), "the ingest configuration")
    cfg = merge(default_config(), dict(config or {}))
    mapping = {**parse_column_mapping(cfg.get("catalog", {}).get("columns")),
               **parse_column_mapping(columns)}
    cfg["catalog"]["columns"] = mapping
    if (root / Workspace.CONFIG).exists() and not force:
        raise WorkspaceError(f"{root} is already a workspace; use --force to replace its catalog")

    cat_path, base, votes, simulated = _find_source(source, Path(blocks_dir) if blocks_dir else None)
    table = read_catalog(cat_path, mapping)
    if len(table) == 0:
        raise CatalogError(f"{cat_path}: the catalog has no rows (columns: {', '.join(table.colnames)})")
    renamed_ascii = _ascii_column_names(table)
    kept, cut_report = apply_cuts(table, cfg["cuts"])
    log.info("cuts on %s:\n%s", cat_path, cut_report)
    if len(kept) == 0:
        raise CatalogError(f"{cat_path}: no galaxy passed the cuts, nothing written:\n{cut_report}\n"
                           "check the column mapping (--columns) and the cuts (--cuts, --no-cuts, --config)")
    paths = _block_paths(kept, base, cat_path)
    gf = _read_headers(kept, paths, base, progress, scheduler, workers,
                       radius=float(cfg["catalog"]["goi_radius"]))
    status, messages = gf.pop("status"), gf.pop("message")

    out = kept.copy(copy_data=True)
    renamed = table.meta.get("renamed", {})
    out.meta.clear()
    if renamed.get("catalog_class") == "true_class":
        out["true_class"] = out["catalog_class"]  # a simulation's truth stays under its own name
    n = len(out)
    for name in ("field",):
        if name not in out.colnames:
            out[name] = np.full(n, "", dtype=str)
        else:
            out[name] = np.array([str(v) for v in out[name]], dtype=str)
    for name in _FLOAT_DEFAULTS:
        if name not in out.colnames:
            out[name] = np.full(n, np.nan)
    if "photflag" not in out.colnames:
        out["photflag"] = np.full(n, -1, dtype=np.int16)
    out["block"] = np.array([str(p) if p is not None else "" for p in paths], dtype=str)

    unknown: dict[str, int] = {}
    classes = np.full(n, "", dtype=object)
    if "catalog_class" in out.colnames:
        for i, v in enumerate(out["catalog_class"]):
            label = _normalise_class(v)
            if label is None:
                unknown[str(v)] = unknown.get(str(v), 0) + 1
                label = ""
            classes[i] = label
        if unknown:
            log.warning("%s: unknown class labels set to '' (expected %s): %s", cat_path,
                        ", ".join((*CLASSES, FIT_QUALITY)), unknown)
    out["catalog_class"] = _wide(classes.tolist(), 10)
    fitq = _as_bool(out["fit_quality"]) if "fit_quality" in out.colnames else np.zeros(n, bool)
    out["fit_quality"] = fitq | (np.asarray(out["catalog_class"]) == FIT_QUALITY)
    for col, values in gf.items():
        out[col] = np.array(values, dtype=np.int32 if col == "gf_component" else float if col in _FLOAT_VALUES
                            else str)
    out["prep_status"] = _wide(status, 8)  # room for "pending" / "flagged"
    out["prep_message"] = _wide(messages, MESSAGE_WIDTH)
    order = [c for c in _LEADING if c in out.colnames]
    out = out[order + [c for c in out.colnames if c not in order]]
    out.meta["SOURCE"] = str(cat_path.resolve())
    out.meta["NIN"] = cut_report.n_in
    if votes is not None:
        out.meta["VOTES"] = str(votes.resolve())

    # Everything is checked: now write.
    if force and (root / Workspace.CONFIG).exists():
        ws = Workspace.create(root, cfg, exist_ok=True)
        stamps = root / Workspace.STAMPS
        if stamps.exists():
            log.warning("%s: removing the old stamps (they belong to the previous catalog)", stamps)
            shutil.rmtree(stamps)
    else:
        ws = Workspace.create(root, cfg, exist_ok=force)
    ws.write_catalog(out)

    report = IngestReport(
        catalog=str(cat_path), cuts=cut_report,
        n_blocks_ok=int(sum(s == "pending" for s in status)),
        block_errors=[(str(out["id"][i]), messages[i]) for i in range(n) if status[i] == "error"],
        unknown_classes=unknown,
        votes_file=str(votes.resolve()) if votes is not None else None,
        renamed_columns=renamed_ascii,
        flagged_components=[(str(out["id"][i]), str(out["ingest_note"][i])) for i in range(n)
                            if str(out["gf_comp_flags"][i])],
        integer_blocks=int(sum(bool(t) and not str(t).startswith("float") for t in out["pixel_type"])),
    )
    ws.ingest_report = report
    log.info("ingested %d galaxies into %s (%d block errors)", n, root, len(report.block_errors))
    return ws


# -- catalog export ----------------------------------------------------------------------------

_OUT_FORMATS = {".fits": "fits", ".fit": "fits", ".csv": "ascii.csv", ".ecsv": "ascii.ecsv"}


def read_workspace_catalog(ws: Workspace) -> Table:
    """The workspace catalog with NaN and "" kept as values (not masked) and str columns.

    (``Table.read`` of a FITS table masks NaN floats and empty strings by default.)
    """
    return ws.read_catalog()


def write_catalog(ws: Workspace, out: str | Path) -> Table:
    """Write the workspace catalog, every column, as FITS, CSV or ECSV (by ``out``'s extension).

    CSV and ECSV are UTF-8 text (ECSV keeps the units and descriptions); FITS stores text columns
    as UTF-8 bytes with ``TEXTENC = 'UTF-8'`` (:func:`core.io.catalog.write_fits_table`).

    Raises
    ------
    ValueError
        An extension other than ``.fits``, ``.fit``, ``.csv``, ``.ecsv``.
    """
    out = Path(out)
    fmt = _OUT_FORMATS.get(out.suffix.lower())
    if fmt is None:
        raise CatalogError(f"{out}: unsupported extension {out.suffix!r} (use .fits, .csv or .ecsv)")
    if not ws.catalog_path.exists():
        raise WorkspaceError(f"{ws.catalog_path} is missing: run `resx ingest` first.")
    try:
        table = read_workspace_catalog(ws)
    except Exception as exc:
        raise WorkspaceError(f"{ws.catalog_path} is corrupt: {exc}") from exc
    from core.io.export import provenance, write_export

    # the one export writer: provenance recorded; FITS text as declared UTF-8 bytes, ECSV raw
    # UTF-8 text, CSV with formula cells neutralised
    write_export(table, out, prov=provenance(ws, consensus="", what="workspace catalog (resx catalog)"))
    return table

