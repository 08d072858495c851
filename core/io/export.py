"""The one writer of exported tables (FITS, CSV, ECSV): provenance recorded, CSV safe for spreadsheets.

Every table that leaves the tool -- ``resx catalog --out``, ``resx votes export``, the
dashboard's consensus catalog and selection downloads -- is written by :func:`write_export`:

* **Provenance** (:func:`provenance`): when it was exported, by which Residual Explorer, from
  which workspace, with which runs' predictions, by which consensus rule, and with which
  configuration (its SHA-256, and the whole configuration as JSON). FITS gets it as header
  cards (``EXPORTED``, ``RESXVER``, ``WORKSPC``, ``RUN_CNN``, ``RUN_CVAE``, ``CONSENS``,
  ``CFGSHA``, ``CONFIG``, ...), ECSV as a ``provenance`` mapping in its YAML header. CSV has no
  place for it (comment lines break ``Table.read`` and ``pandas.read_csv``, which do not expect
  them), so a CSV file gets a sidecar ``<file>.provenance.json`` (:func:`sidecar_path`); the
  dashboard offers the same JSON beside its CSV download.
* **Formula cells neutralised in CSV** (:func:`neutralize_formulas`): a spreadsheet runs a cell
  that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return as a formula (OWASP,
  "CSV injection"), so such a *text* cell is written with a leading apostrophe, which
  spreadsheets show as text. Numeric columns (a negative Dec) are untouched; FITS and ECSV keep
  the raw text (they are read by programs, not spreadsheets).

Text is UTF-8 in every format (FITS: :func:`core.io.catalog.write_fits_table`).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import time
from importlib import metadata
from pathlib import Path
from typing import IO, Any, Mapping

import numpy as np
from astropy.table import Table

from core.errors import ResxError

__all__ = ["EXPORT_FORMATS", "ExportError", "FORMULA_PREFIXES", "consensus_rule", "export_format", "neutralize_formulas",
           "provenance", "provenance_json", "sidecar_path", "write_export"]

log = logging.getLogger(__name__)

#: File extension -> export format.
EXPORT_FORMATS = {".fits": "fits", ".fit": "fits", ".csv": "csv", ".ecsv": "ecsv"}

#: What makes a spreadsheet read a cell as a formula (OWASP CSV injection).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")

#: Provenance key -> FITS header keyword (at most 8 characters).
_FITS_KEYS = {"exported": "EXPORTED", "tool": "RESXVER", "workspace": "WORKSPC", "run_cnn": "RUN_CNN",
              "run_cvae": "RUN_CVAE", "consensus": "CONSENS", "config_sha256": "CFGSHA", "config": "CONFIG",
              "exported_by": "EXPORTBY", "blind": "BLIND", "what": "CONTENTS"}


class ExportError(ResxError, ValueError):
    """A table that cannot be exported where asked (unknown extension, unwritable place)."""


def export_format(path: str | Path) -> str:
    """The export format of ``path`` by its extension: ``fits``, ``csv`` or ``ecsv``.

    Raises
    ------
    ExportError
        Any other extension.
    """
    suffix = Path(path).suffix.lower()
    if suffix not in EXPORT_FORMATS:
        raise ExportError(f"{path}: unsupported extension {suffix!r} (use .fits, .csv or .ecsv)")
    return EXPORT_FORMATS[suffix]


def _version() -> str:
    try:
        return f"residual-explorer {metadata.version('residual-explorer')}"
    except metadata.PackageNotFoundError:  # a source tree that is not installed
        return "residual-explorer (not installed)"


def consensus_rule(votes: Mapping[str, Any], method: str | None = None, experts: bool = True) -> str:
    """The consensus rule in words, for provenance: method, its settings, the expert override.

    Parameters
    ----------
    votes : mapping
        The ``votes`` section of the configuration.
    method : str, optional
        ``majority``, ``ds`` or ``classifier`` (:mod:`core.votes.methods`); default ``votes.method``.
    experts : bool
        Whether an expert's vote overrides the consensus.
    """
    from fractions import Fraction

    method = method or str(votes.get("method", "majority"))
    n = int(votes.get("min_votes", 3))
    if method == "majority":
        share = Fraction(float(votes.get("fraction", 2 / 3))).limit_denominator(1000)
        rule = f"majority: >= {n} non-skip votes, a {share} share"
    elif method == "ds":
        rule = (f"ds (Dawid-Skene): >= {n} non-skip votes, prior accuracy {votes.get('ds_prior_accuracy', 0.8)}, "
                f"strength {votes.get('ds_prior_strength', 5.0)}")
    else:
        rule = f"{method}: >= {n} non-skip votes, model weight {votes.get('classifier_weight') or 'estimated'}"
    return rule + ("; an expert's vote overrides" if experts else "; no expert override")


def provenance(ws: Any = None, *, runs: Mapping[str, str | None] | None = None, consensus: str | None = None,
               experts: bool = True, config: Mapping[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    """What an export records about where its numbers come from.

    Parameters
    ----------
    ws : Workspace, optional
        The workspace exported from; gives the folder, the configuration and (unless ``runs``
        is given) the active runs.
    runs : mapping, optional
        Model -> run whose predictions and clusters the table carries (``{"cnn": ..., "cvae": ...}``).
    consensus : str, optional
        The consensus rule; default the majority rule of the configuration's ``votes`` section.
        ``""`` for a table without consensus columns.
    experts : bool
        Whether experts' votes override the consensus (the server without authentication
        disables it).
    config : mapping, optional
        The configuration; default ``ws.config``.
    **extra
        More entries (``exported_by``, ``blind``, ``what``...), recorded as given.

    Returns
    -------
    dict
        ``exported`` (UTC, ISO 8601), ``tool``, ``workspace``, ``run_cnn``, ``run_cvae``,
        ``consensus``, ``config_sha256``, ``config`` (JSON text), and ``extra``.
    """
    config = dict(config if config is not None else (getattr(ws, "config", None) or {}))
    if runs is None and ws is not None:
        runs = ws.active_runs()
    runs = dict(runs or {})
    config_json = json.dumps(config, sort_keys=True, default=str, ensure_ascii=False)
    out: dict[str, Any] = {
        "exported": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "tool": _version(),
        "workspace": str(Path(ws.root).resolve()) if ws is not None else "",
        "run_cnn": runs.get("cnn") or "",
        "run_cvae": runs.get("cvae") or "",
        "consensus": consensus_rule(config.get("votes", {}) or {}, experts=experts) if consensus is None else consensus,
        "config_sha256": hashlib.sha256(config_json.encode()).hexdigest(),
        "config": config_json,
    }
    out.update({k: v for k, v in extra.items() if v is not None})
    return out


def _is_text(column) -> bool:
    return getattr(column, "ndim", 1) == 1 and np.asarray(column).dtype.kind in "USO"


def _neutral(value: Any) -> Any:
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def neutralize_formulas(table: Table) -> Table:
    """A copy of ``table`` whose text cells cannot run as spreadsheet formulas.

    A text cell (``str``, bytes or object column) starting with one of :data:`FORMULA_PREFIXES`
    gets a leading apostrophe; numeric and boolean columns are left as they are.

    Parameters
    ----------
    table : astropy.table.Table

    Returns
    -------
    astropy.table.Table
    """
    out = Table(table, copy=True)
    for name in out.colnames:
        col = out[name]
        if not _is_text(col):
            continue
        values = [_neutral(v) for v in np.asarray(col).tolist()]
        if any(isinstance(v, str) and v.startswith("'") for v in values):
            out.replace_column(name, np.asarray([("" if v is None else str(v)) for v in values], dtype=str))
            out[name].description, out[name].unit = col.description, col.unit
    return out


def _fits_meta(prov: Mapping[str, Any]) -> dict[str, Any]:
    meta = {}
    for key, value in prov.items():
        card = _FITS_KEYS.get(key) or key.upper()[:8]
        meta[card] = value if isinstance(value, (bool, int, float)) else str(value)
    return meta


def sidecar_path(path: str | Path) -> Path:
    """Where the provenance of a CSV export at ``path`` is written: ``<path>.provenance.json``."""
    path = Path(path)
    return path.with_name(path.name + ".provenance.json")


def provenance_json(prov: Mapping[str, Any]) -> str:
    """Provenance as JSON text (the configuration parsed back into an object)."""
    out = dict(prov)
    try:
        out["config"] = json.loads(out.get("config", "{}"))
    except (TypeError, ValueError):
        pass
    return json.dumps(out, indent=2, ensure_ascii=False, default=str)


def _csv_text(table: Table) -> str:
    """RFC 4180 CSV (the ``csv`` module: a cell holding a comma, a quote, CR or LF is quoted)."""
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\r\n")  # CRLF: a CR or LF in a cell is quoted
    writer.writerow(table.colnames)
    columns = []
    for name in table.colnames:
        col = table[name]
        mask = np.asarray(getattr(col, "mask", np.zeros(len(col), bool)), dtype=bool)
        values = np.asarray(col).tolist()
        columns.append(["" if m else (v.decode("utf-8", "replace") if isinstance(v, bytes) else v)
                        for v, m in zip(values, np.broadcast_to(mask, (len(values),)))])
    writer.writerows(zip(*columns))
    return text.getvalue()


def write_export(table: Table, target: str | Path | IO[bytes], fmt: str | None = None,
                 prov: Mapping[str, Any] | None = None) -> None:
    """Write ``table`` with its provenance; CSV with formula cells neutralised.

    Parameters
    ----------
    table : astropy.table.Table
        Columns of more than one dimension are left out of CSV.
    target : path or binary file object
        Where to write (a path is overwritten; its folder is created). A CSV path also gets
        its provenance in :func:`sidecar_path`; for a file object, the caller keeps it.
    fmt : {"fits", "csv", "ecsv"}, optional
        Default: from the extension of ``target`` (:func:`export_format`).
    prov : mapping, optional
        From :func:`provenance`; default ``provenance()`` (time and tool only).

    Raises
    ------
    ExportError
        Unknown format or extension.
    """
    if fmt is None:
        if not isinstance(target, (str, Path)):
            raise ExportError("give the format of an export written to a file object")
        fmt = export_format(target)
    if fmt not in ("fits", "csv", "ecsv"):
        raise ExportError(f"unknown export format {fmt!r} (fits, csv or ecsv)")
    prov = dict(prov if prov is not None else provenance())
    if isinstance(target, (str, Path)):
        Path(target).parent.mkdir(parents=True, exist_ok=True)
    if fmt == "fits":
        from core.io.catalog import write_fits_table

        out = Table(table, copy=False)
        out.meta = {**{k: v for k, v in table.meta.items() if k != "comments"}, **_fits_meta(prov)}
        write_fits_table(out, target)  # raw text, UTF-8, non-ASCII header values percent-encoded
        return
    if fmt == "ecsv":
        out = Table(table, copy=False)
        out.meta = {**table.meta, "provenance": dict(prov)}
        text = io.StringIO()
        out.write(text, format="ascii.ecsv")
        data = text.getvalue().encode("utf-8")
    else:
        flat = neutralize_formulas(Table([c for c in table.itercols() if c.ndim == 1]))
        data = _csv_text(flat).encode("utf-8")
    if isinstance(target, (str, Path)):
        Path(target).write_bytes(data)
        if fmt == "csv":
            sidecar_path(target).write_text(provenance_json(prov), encoding="utf-8")
    else:
        target.write(data)
