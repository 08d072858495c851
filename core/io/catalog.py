"""Catalogs: reading FITS/ECSV/CSV tables, mapping column names, and the paper's sample cuts.

A user's catalog names its columns its own way (``H_F160W``, ``M_med``, ``zbest``...).
:func:`read_catalog` renames them onto the workspace's standard names (see
:mod:`core.workspace.workspace`): an explicit mapping ``{standard: user}`` wins, then a few common
aliases, then a case-insensitive match of the standard name itself.

The sample cuts of the paper (§2.1) are :data:`core.workspace.config.DEFAULT_CONFIG` ``["cuts"]``::

    hmag_max    = 24.5   H < 24.5 mag
    logmass_min = 9.5    log M* >= 9.5
    z_min, z_max = 1, 3  1 <= z <= 3
    photflag    = 0      PhotFlag == 0

each disabled by setting it to ``None`` (``"none"`` in ``config.toml``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np
from astropy.table import MaskedColumn, Table

from core.errors import ResxError

__all__ = [
    "STANDARD_COLUMNS",
    "ALIASES",
    "CUTS",
    "CatalogError",
    "CutReport",
    "parse_column_mapping",
    "read_catalog",
    "cut_masks",
    "apply_cuts",
]

log = logging.getLogger(__name__)

#: Standard names of the input columns a catalog may provide (the workspace adds the rest).
STANDARD_COLUMNS = ("id", "field", "ra", "dec", "z", "logmass", "hmag", "photflag", "block",
                    "catalog_class", "fit_quality")

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
}

#: The cuts: config key -> (column, test, description format).
CUTS: dict[str, tuple[str, str, str]] = {
    "hmag_max": ("hmag", "<", "H < {}"),
    "logmass_min": ("logmass", ">=", "log M* >= {}"),
    "z_min": ("z", ">=", "z >= {}"),
    "z_max": ("z", "<=", "z <= {}"),
    "photflag": ("photflag", "==", "PhotFlag == {}"),
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


# -- cuts -------------------------------------------------------------------------------------


@dataclass
class CutReport:
    """How many galaxies each cut removed.

    Attributes
    ----------
    n_in, n_out : int
        Galaxies before and after all cuts.
    rows : list of dict
        One per enabled cut, in the order applied: ``cut`` (config key), ``description``
        (e.g. ``"H < 24.5"``), ``removed`` (removed *sequentially*: by this cut among the
        galaxies that passed every earlier cut, so the column sums to ``n_in - n_out``),
        ``fails`` (galaxies failing this cut alone, whatever the others say), ``nonfinite``
        (of those, how many fail because the value is NaN/missing).
    disabled : list of str
        Cuts set to ``None``.
    """

    n_in: int
    n_out: int
    rows: list[dict[str, Any]] = field(default_factory=list)
    disabled: list[str] = field(default_factory=list)

    def removed(self, cut: str) -> int:
        """Galaxies removed sequentially by ``cut`` (0 for a disabled cut)."""
        return next((r["removed"] for r in self.rows if r["cut"] == cut), 0)

    def __str__(self) -> str:
        lines = [f"{'cut':<16}{'removed':>9}{'fail alone':>12}{'  (NaN)':>8}"]
        for r in self.rows:
            lines.append(f"{r['description']:<16}{r['removed']:>9}{r['fails']:>12}{r['nonfinite']:>8}")
        for c in self.disabled:
            lines.append(f"{c + ' (off)':<16}{0:>9}{'-':>12}{'-':>8}")
        lines.append(f"kept {self.n_out} of {self.n_in} galaxies")
        return "\n".join(lines)


def cut_masks(table: Table, cuts: Mapping[str, Any] | None) -> dict[str, np.ndarray]:
    """Boolean pass mask per enabled cut.

    A NaN, infinite or masked value fails its cut (a galaxy is kept only if it can be shown to
    satisfy it). Keys of ``cuts`` not in :data:`CUTS` are an error; a value of ``None`` disables
    that cut.

    Raises
    ------
    CatalogError
        An unknown cut, or an enabled cut whose column is missing (the message says which cut to
        disable).
    """
    cuts = dict(cuts or {})
    unknown = [k for k in cuts if k not in CUTS]
    if unknown:
        raise CatalogError(f"unknown cut(s) {unknown}; known cuts are {', '.join(CUTS)}")
    source = table.meta.get("source", "catalog")
    masks: dict[str, np.ndarray] = {}
    for key, (column, op, _) in CUTS.items():
        bound = cuts.get(key)
        if bound is None:
            continue
        if column not in table.colnames:
            raise CatalogError(
                f"{source}: the cut {key} = {bound} needs the column {column!r}, which is missing; "
                f"map it with --columns or disable the cut ({key} = \"none\" in the config)")
        col = table[column]
        mask = np.asarray(col.mask) if isinstance(col, MaskedColumn) else np.zeros(len(col), bool)
        values = np.asarray(col.filled(0) if isinstance(col, MaskedColumn) else col, dtype=float)
        ok = ~mask & np.isfinite(values)
        with np.errstate(invalid="ignore"):
            if op == "<":
                ok &= values < bound
            elif op == ">=":
                ok &= values >= bound
            elif op == "<=":
                ok &= values <= bound
            else:
                ok &= values == bound
        masks[key] = ok
    return masks


def apply_cuts(table: Table, cuts: Mapping[str, Any] | None) -> tuple[Table, CutReport]:
    """Apply the sample cuts; report how many galaxies each removed.

    Parameters
    ----------
    table : astropy.table.Table
        Catalog with standard column names (``hmag``, ``logmass``, ``z``, ``photflag``).
    cuts : mapping
        ``DEFAULT_CONFIG["cuts"]``-style: ``hmag_max``, ``logmass_min``, ``z_min``, ``z_max``,
        ``photflag``; ``None`` disables a cut. Missing keys are disabled too.

    Returns
    -------
    kept : astropy.table.Table
        The rows that pass every enabled cut, in their original order.
    report : CutReport
        Per cut, the number removed sequentially (in the order of :data:`CUTS`) and the number
        that fail it alone. NaN or masked values fail (counted in ``nonfinite``).

    Examples
    --------
    >>> t = Table({"hmag": [23.0, 25.0, float("nan")], "z": [1.5, 2.0, 2.5]})
    >>> kept, rep = apply_cuts(t, {"hmag_max": 24.5, "z_min": 1.0})
    >>> len(kept), rep.removed("hmag_max"), rep.removed("z_min")
    (1, 2, 0)
    """
    cuts = dict(cuts or {})
    masks = cut_masks(table, cuts)
    keep = np.ones(len(table), bool)
    report = CutReport(n_in=len(table), n_out=0,
                       disabled=[k for k in CUTS if cuts.get(k) is None])
    for key, ok in masks.items():
        column = CUTS[key][0]
        col = table[column]
        vals = np.asarray(col.filled(np.nan) if isinstance(col, MaskedColumn) else col, dtype=float)
        report.rows.append({
            "cut": key,
            "description": CUTS[key][2].format(cuts[key]),
            "removed": int(np.sum(keep & ~ok)),
            "fails": int(np.sum(~ok)),
            "nonfinite": int(np.sum(~np.isfinite(vals))),
        })
        keep &= ok
    report.n_out = int(keep.sum())
    return table[keep], report
