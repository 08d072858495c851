"""Catalogs: reading FITS/ECSV/CSV tables and mapping their column names onto the standard ones.

A user's catalog names its columns its own way (``H_F160W``, ``M_med``, ``zbest``...).
:func:`read_catalog` renames them onto the workspace's standard names (see
:mod:`core.workspace.workspace`): an explicit mapping ``{standard: user}`` wins, then a few common
aliases, then a case-insensitive match of the standard name itself.

The paper's sample cuts are :mod:`core.workspace.cuts`.

:func:`write_fits_table` / :func:`read_fits_table` store tables whose text is not ASCII (ids,
class names, paths in any script) in FITS, which holds only ASCII: text columns as UTF-8 bytes
(``TEXTENC = 'UTF-8'`` in the header), non-ASCII header values percent-encoded (their keys in
``PCTMETA``), column descriptions as ``TCOMMn`` cards; reading undoes all three.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterable, Mapping
from urllib.parse import quote, unquote

import numpy as np
from astropy.io import fits
from astropy.table import MaskedColumn, Table

from core.errors import ResxError

__all__ = [
    "STANDARD_COLUMNS",
    "ALIASES",
    "CatalogError",
    "parse_column_mapping",
    "read_catalog",
    "read_fits_table",
    "write_fits_table",
]

log = logging.getLogger(__name__)

#: Standard names of the input columns a catalog may provide (the workspace adds the rest).
STANDARD_COLUMNS = ("id", "field", "ra", "dec", "z", "logmass", "hmag", "photflag", "block",
                    "catalog_class", "fit_quality", "component")

#: Common names in survey catalogs (compared case-insensitively) for each standard name.
ALIASES: dict[str, tuple[str, ...]] = {
    "id": ("ID", "objid", "object_id", "galaxy_id", "NUMBER"),
    "ra": ("RA", "RAJ2000", "ALPHA_J2000", "ra_deg"),
    "dec": ("DEC", "DEJ2000", "DELTA_J2000", "dec_deg"),
    "z": ("zbest", "z_best", "redshift", "z_phot", "photoz"),
    "logmass": ("log_mass", "logM", "lmass", "M_med", "logmstar", "log_mstar"),
    "hmag": ("H_mag", "H_F160W", "F160W_mag", "mag_F160W", "Hmag"),
    "photflag": ("PhotFlag", "phot_flag", "flag"),
    "block": ("block_path", "galfit_block", "imgblock", "file", "filename"),
    "catalog_class": ("class", "true_class", "label"),
    "fit_quality": ("fitquality", "fit_flag"),
    "component": ("gf_component", "galfit_component", "comp"),
}

_FORMATS = {".fits": "fits", ".fit": "fits", ".fts": "fits", ".gz": "fits", ".ecsv": "ascii.ecsv",
            ".csv": "ascii.csv"}


class CatalogError(ResxError, ValueError):
    """A catalog that cannot be used; the message names the file and what is wrong."""


def parse_column_mapping(text: str | Mapping[str, str] | None) -> dict[str, str]:
    """Parse ``"hmag=H_F160W,logmass=M_med"`` (the ``--columns`` option) into ``{standard: user}``.

    A mapping is returned as a plain dict; ``None`` or ``""`` give ``{}``.

    Raises
    ------
    ValueError
        An item without ``=``, or a standard name that is not in :data:`STANDARD_COLUMNS`.
    """
    if not text:
        return {}
    if isinstance(text, Mapping):
        items = dict(text)
    else:
        items = {}
        for part in str(text).split(","):
            part = part.strip()
            if not part:
                continue
            if "=" not in part:
                raise CatalogError(f"column mapping item {part!r} is not STANDARD=USER (e.g. hmag=H_F160W)")
            std, user = (s.strip() for s in part.split("=", 1))
            items[std] = user
    unknown = [k for k in items if k not in STANDARD_COLUMNS]
    if unknown:
        raise CatalogError(f"unknown standard column(s) {unknown}; the standard names are "
                         f"{', '.join(STANDARD_COLUMNS)}")
    return items


def _format(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    if not suffixes:
        raise CatalogError(f"{path}: cannot tell the format without an extension (.fits, .ecsv, .csv)")
    fmt = _FORMATS.get(suffixes[-1])
    if fmt is None:
        raise CatalogError(f"{path}: unsupported catalog format {suffixes[-1]!r} "
                           "(use .fits, .ecsv or .csv)")
    return fmt


def _resolve(names: Iterable[str], columns: Mapping[str, str]) -> dict[str, str]:
    """Map each standard name to the user's column that provides it."""
    names = list(names)
    lower = {n.lower(): n for n in names}
    found: dict[str, str] = {}
    for std in STANDARD_COLUMNS:
        if std in columns:
            continue  # explicit: checked by the caller
        for cand in (std, *ALIASES.get(std, ())):
            hit = lower.get(cand.lower())
            if hit is not None and hit not in found.values() and hit not in columns.values():
                found[std] = hit
                break
    return found


def read_catalog(
    path: str | Path,
    columns: Mapping[str, str] | str | None = None,
    *,
    required: Iterable[str] = ("id",),
) -> Table:
    """Read a catalog and rename its columns onto the standard names.

    Parameters
    ----------
    path : str or Path
        A FITS (first table HDU), ECSV or CSV file; the format comes from the extension.
    columns : mapping or str, optional
        ``{standard: user}`` (e.g. ``{"hmag": "H_F160W"}``) or its text form
        ``"hmag=H_F160W,logmass=M_med"``. Standard names not mapped are found by
        :data:`ALIASES` or by a case-insensitive match of the standard name.
    required : iterable of str
        Standard columns that must be present (default ``("id",)``).

    Returns
    -------
    astropy.table.Table
        All columns of the file; the recognised ones under their standard names. ``id`` is
        converted to str (ids are strings). Missing numeric values (blank CSV cells, masked
        entries) become NaN in float columns; a masked ``photflag`` becomes -1 (so it fails the
        PhotFlag cut). ``meta["source"]`` is the path, ``meta["renamed"]`` the renames made
        (``{standard: the file's name}``).

    Raises
    ------
    CatalogError
        The file is missing or unreadable, a mapped column is not in the file, a required column
        is missing, or ids are not unique. The message names the file and the columns.
    """
    path = Path(path)
    try:
        mapping = parse_column_mapping(columns)
    except ValueError as exc:
        raise CatalogError(f"{path}: {exc}") from None
    if not path.is_file():
        raise CatalogError(f"{path}: catalog file not found")
    fmt = _format(path)
    try:
        # FITS: keep NaN and "" as values, not masked entries (astropy masks them by default).
        kw = {"mask_invalid": False} if fmt == "fits" else {}
        table = Table.read(path, format=fmt, **kw)
    except Exception as exc:
        raise CatalogError(f"{path}: cannot read as {fmt} ({type(exc).__name__}: {exc})") from exc
    table.convert_bytestring_to_unicode()  # FITS strings arrive as bytes

    absent = {std: user for std, user in mapping.items() if user not in table.colnames}
    if absent:
        raise CatalogError(
            f"{path}: mapped column(s) not in the file: "
            + ", ".join(f"{user!r} (for {std})" for std, user in absent.items())
            + f"; the file has {', '.join(table.colnames)}")
    rename = {**_resolve(table.colnames, mapping), **mapping}
    # Make room: a user column that already has a standard name but is not the one chosen.
    for std, user in rename.items():
        if std in table.colnames and std != user and std not in rename.values():
            table.rename_column(std, f"{std}_orig")
    olds = [user for std, user in rename.items() if std != user]
    news = [std for std, user in rename.items() if std != user]
    if olds:
        table.rename_columns(olds, news)
        log.info("%s: columns renamed %s", path, dict(zip(olds, news)))
    table.meta["renamed"] = dict(zip(news, olds))  # {standard: the file's name}

    missing = [c for c in required if c not in table.colnames]
    if missing:
        hints = ", ".join(f"{c} (or {', '.join(ALIASES.get(c, ()))})" if ALIASES.get(c) else c
                          for c in missing)
        raise CatalogError(
            f"{path}: missing column(s) {hints}; the file has {', '.join(table.colnames)}. "
            "Map yours with --columns, e.g. --columns 'hmag=H_F160W,logmass=M_med'.")

    _normalise(table, path)
    table.meta["source"] = str(path)
    return table


def _normalise(table: Table, path: Path) -> None:
    if "id" in table.colnames:
        col = table["id"]
        if isinstance(col, MaskedColumn) and np.any(col.mask):
            raise CatalogError(f"{path}: {int(np.sum(col.mask))} rows have no id")
        ids = np.array([str(v).strip() for v in np.asarray(col)], dtype=str)
        table.replace_column("id", ids)
        uniq, counts = np.unique(ids, return_counts=True)
        dup = uniq[counts > 1]
        if len(dup):
            raise CatalogError(f"{path}: ids are not unique ({len(dup)} repeated, e.g. {dup[0]!r})")
    for name in table.colnames:
        col = table[name]
        if col.dtype.kind == "f":
            if isinstance(col, MaskedColumn):
                table.replace_column(name, np.asarray(col.filled(np.nan), dtype=col.dtype))
        elif col.dtype.kind in "iu" and isinstance(col, MaskedColumn) and np.any(col.mask):
            if name == "photflag":
                table.replace_column(name, np.asarray(col.filled(-1)))
            else:
                table.replace_column(name, np.asarray(col.astype(float).filled(np.nan)))
        elif col.dtype.kind in "iu" and isinstance(col, MaskedColumn):
            table.replace_column(name, np.asarray(col))
        elif col.dtype.kind in "US" and isinstance(col, MaskedColumn):
            table.replace_column(name, np.asarray(col.filled("")))


# -- FITS tables with UTF-8 text ---------------------------------------------------------------


def write_fits_table(table: Table, path: str | Path) -> None:
    """Write ``table`` as a FITS binary table whatever its text (see the module docstring).

    Text columns (``str`` or object) become UTF-8 bytes of at least their current width (so
    later, longer values still fit); the header gets ``TEXTENC = 'UTF-8'``; a ``str`` meta value
    that is not ASCII is percent-encoded and its key listed in ``PCTMETA``; each column's
    description becomes a ``TCOMMn`` card. Overwrites ``path``.
    """
    out = Table(table, copy=False)
    out.meta = {}
    escaped = []
    for key, value in table.meta.items():
        if isinstance(value, str) and not value.isascii():
            value = quote(value, safe="/:._-~ ,;()[]")
            escaped.append(str(key))
        out.meta[key] = value
    if escaped:
        out.meta["PCTMETA"] = " ".join(escaped)
    out.meta["TEXTENC"] = "UTF-8"
    for name in out.colnames:
        col = out[name]
        if col.dtype.kind in "UO" and col.ndim == 1:
            text = np.asarray([str(v) for v in np.asarray(col)], dtype=str) if col.dtype.kind == "O" \
                else np.asarray(col)
            encoded = np.char.encode(text, "utf-8") if text.size else np.asarray(text, dtype="S1")
            width = max(encoded.dtype.itemsize, text.dtype.itemsize // 4, 1)
            out.replace_column(name, encoded.astype(f"S{width}"), copy=False)
            out[name].description, out[name].unit = col.description, col.unit
    hdu = fits.table_to_hdu(out)
    for i, name in enumerate(out.colnames, start=1):
        desc = table[name].description
        if desc:
            hdu.header[f"TCOMM{i}"] = str(desc).encode("ascii", "replace").decode()
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(path, overwrite=True)


def read_fits_table(path: str | Path) -> Table:
    """Read a table :func:`write_fits_table` wrote (or any FITS table): text as ``str`` from
    UTF-8, NaN and "" kept as values (not masked), percent-encoded header values and
    ``TCOMMn`` descriptions restored."""
    table = Table.read(path, format="fits", mask_invalid=False)
    with fits.open(path) as hdul:
        header = next(h.header for h in hdul if isinstance(h, fits.BinTableHDU))
        comments = {header.get(f"TTYPE{i}"): header[f"TCOMM{i}"]
                    for i in range(1, int(header.get("TFIELDS", 0)) + 1) if f"TCOMM{i}" in header}
    for name in table.colnames:
        col = table[name]
        if col.dtype.kind == "S" and col.ndim == 1:
            raw = np.asarray(col)
            table.replace_column(name, np.char.decode(raw, "utf-8").astype(f"U{max(raw.dtype.itemsize, 1)}"))
        if name in comments:
            table[name].description = str(comments[name])
    for key in str(table.meta.pop("PCTMETA", "")).split():
        if key in table.meta:
            table.meta[key] = unquote(str(table.meta[key]))
    table.meta.pop("TEXTENC", None)
    return table
