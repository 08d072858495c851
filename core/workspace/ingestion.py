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
gf_pa gf_sky gf_chi2nu gf_flags prep_status prep_message``. ``gf_flags`` lists the parameters
GALFIT flagged as problems (``*value*``), e.g. ``"N,RE"``; ``gf_sky``/``gf_chi2nu`` are NaN when
the block has none. Standard columns the catalog lacks are filled with ``""`` (field), NaN
(ra, dec, z, logmass, hmag) or -1 (photflag: unknown).
"""

from __future__ import annotations

import logging
import math
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np
from astropy.table import Table

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
#: Values read per block, in the order of :func:`read_header_chunk`'s array columns.
_GF_VALUES = (*GF_COLUMNS, "gf_sky", "gf_chi2nu")


def read_header_chunk(paths: list[str]) -> tuple[np.ndarray, list[str], list[str], list[str]]:
    """Read the GALFIT parameters of some blocks from their headers (one ingest task).

    A module-level function of plain arguments and results, so that Dask can ship it to worker
    processes. A block that cannot be read never raises: it gets status ``"error"`` and a message
    naming the file.

    Parameters
    ----------
    paths : list of str
        Block files.

    Returns
    -------
    values : numpy.ndarray
        ``(len(paths), 9)`` float64: ``gf_xc gf_yc gf_mag gf_re gf_n gf_ar gf_pa gf_sky
        gf_chi2nu``, NaN where a block has no value (or could not be read).
    flags : list of str
        Parameters GALFIT flagged as problems, comma-separated (``"RE,N"``), per block.
    status : list of str
        ``"pending"`` or ``"error"`` per block.
    messages : list of str
        ``""``, or what is wrong with the block.
    """
    values = np.full((len(paths), len(_GF_VALUES)), np.nan)
    flags = [""] * len(paths)
    status = ["pending"] * len(paths)
    messages = [""] * len(paths)
    for i, path in enumerate(paths):
        try:
            block = read_block(path, pixels=False, strict=False)
        except GalfitBlockError as exc:
            status[i], messages[i] = "error", str(exc)
            continue
        except Exception as exc:  # noqa: BLE001 — one block never stops the batch
            log.exception("unexpected error reading the GALFIT block %s", path)
            status[i], messages[i] = "error", f"{path}: unexpected {type(exc).__name__}: {exc}"
            continue
        row = values[i]
        for j, name in enumerate(PARAM_NAMES):
            row[j] = block.params[name].value
        if "SKY" in block.params:
            row[len(PARAM_NAMES)] = block.params["SKY"].value
        if block.chi2nu is not None:
            row[len(PARAM_NAMES) + 1] = block.chi2nu
        flags[i] = ",".join(k for k, p in block.params.items() if p.flag == "problem")
        if block.problems:
            status[i], messages[i] = "error", f"{path}: " + "; ".join(block.problems)
    return values, flags, status, messages


def _read_headers(table: Table, paths: list[Path | None], blocks_hint: Path | None,
                  progress: bool, scheduler: Any = None, workers: int | None = None,
                  ) -> tuple[dict[str, np.ndarray], list[str], list[str]]:
    """The ``gf_*`` columns, ``prep_status`` and ``prep_message`` of every row.

    Blocks are read in chunks of :data:`HEADER_CHUNK`, on Dask (:func:`core.parallel.run_tasks`)
    when there are at least two chunks and more than one worker, else here, one after another.
    Both give the same result.
    """
    from core.parallel import ProgressBar, describe_scheduler, in_process, run_tasks

    n = len(table)
    status = ["pending"] * n
    messages = [""] * n
    flags = [""] * n
    values = np.full((n, len(_GF_VALUES)), np.nan)
    found = [i for i in range(n) if paths[i] is not None]
    for i in range(n):
        if paths[i] is None:
            status[i] = "error"
            where = f" in {blocks_hint}" if blocks_hint else ""
            messages[i] = f"no GALFIT block found for id {table['id'][i]}{where}"
    size = max(1, int(HEADER_CHUNK))
    serial = len(found) < 2 * size or in_process(scheduler, workers)
    if serial:
        size = min(size, 50)  # here, pieces only pace the progress bar
    chunks = [found[k:k + size] for k in range(0, len(found), size)]
    tasks = [([str(paths[i]) for i in rows],) for rows in chunks]
    desc, unit = "reading GALFIT headers", "block"
    if serial:
        results = []
        with ProgressBar(total=len(found), desc=desc, unit=unit, disable=not progress, mininterval=0.5) as bar:
            for (chunk_paths,) in tasks:
                results.append(read_header_chunk(chunk_paths))
                bar.update(len(chunk_paths))
    else:
        log.info("reading %d GALFIT headers in %d tasks on the %s", len(found), len(tasks),
                 describe_scheduler(scheduler, workers))
        results = run_tasks(read_header_chunk, tasks, scheduler=scheduler, workers=workers,
                            progress=progress, desc=desc, unit=unit, weights=[len(c) for c in chunks])
    for rows, (chunk_values, chunk_flags, chunk_status, chunk_messages) in zip(chunks, results):
        values[rows] = chunk_values
        for j, i in enumerate(rows):
            flags[i], status[i], messages[i] = chunk_flags[j], chunk_status[j], chunk_messages[j]
    gf = {col: values[:, j].copy() for j, col in enumerate(_GF_VALUES)}
    gf["gf_flags"] = np.array(flags, dtype=str)
    return gf, status, messages


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
        The catalog cannot be read, lacks a column the enabled cuts need, or has no way to find
        the blocks. Nothing is written in that case.
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
    kept, cut_report = apply_cuts(table, cfg["cuts"])
    log.info("cuts on %s:\n%s", cat_path, cut_report)
    paths = _block_paths(kept, base, cat_path)
    gf, status, messages = _read_headers(kept, paths, base, progress, scheduler, workers)

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
        out[col] = values
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
    if out.parent and not out.parent.exists():
        out.parent.mkdir(parents=True)
    table.write(out, format=fmt, overwrite=True)
    return table

