"""The paper's sample cuts (§2.1), each configurable in ``config.toml`` section ``[cuts]``::

    hmag_max    = 24.5   H < 24.5 mag
    logmass_min = 9.5    log M* >= 9.5
    z_min, z_max = 1, 3  1 <= z <= 3
    photflag    = 0      PhotFlag == 0

each disabled by setting it to ``None`` (``"none"`` in ``config.toml``, ``--cuts 'z=none'`` or
``--no-cuts`` on the command line: :func:`parse_cuts`).

A catalog without a cut's column (no redshift, mass or PhotFlag: many catalogs users have) is
not refused: :func:`apply_cuts` turns that cut off and says so (:attr:`CutReport.missing`), so a
catalog of GALFIT blocks alone can be ingested.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np
from astropy.table import MaskedColumn, Table

from core.io.catalog import CatalogError

__all__ = ["CUTS", "CUT_NAMES", "CutReport", "apply_cuts", "cut_masks", "parse_cuts"]

log = logging.getLogger(__name__)

#: The cuts: config key -> (column, test, description format).
CUTS: dict[str, tuple[str, str, str]] = {
    "hmag_max": ("hmag", "<", "H < {}"),
    "logmass_min": ("logmass", ">=", "log M* >= {}"),
    "z_min": ("z", ">=", "z >= {}"),
    "z_max": ("z", "<=", "z <= {}"),
    "photflag": ("photflag", "==", "PhotFlag == {}"),
}


#: Short names accepted by :func:`parse_cuts` besides the config keys: a column name sets or
#: disables every cut on that column (``z=none`` turns off both z cuts).
CUT_NAMES: dict[str, tuple[str, ...]] = {
    "hmag": ("hmag_max",), "h": ("hmag_max",), "logmass": ("logmass_min",), "mass": ("logmass_min",),
    "z": ("z_min", "z_max"), "photflag": ("photflag",),
    **{key: (key,) for key in ("hmag_max", "logmass_min", "z_min", "z_max")},
}
_OFF = ("none", "off", "no", "false")


def parse_cuts(text: str | None, *, no_cuts: bool = False) -> dict[str, Any]:
    """The ``--cuts`` option (and ``--no-cuts``) as a ``[cuts]`` config override.

    Parameters
    ----------
    text : str or None
        Comma-separated ``NAME=VALUE`` items: ``NAME`` a cut's config key (``hmag_max``,
        ``logmass_min``, ``z_min``, ``z_max``, ``photflag``) or a column name (``hmag``,
        ``logmass``/``mass``, ``z`` for both z cuts, ``photflag``); ``VALUE`` a number, or
        ``none`` to turn the cut off. ``"none"`` alone turns every cut off.
    no_cuts : bool
        Turn every cut off (``--no-cuts``); items of ``text`` then set cuts back on.

    Returns
    -------
    dict
        ``{config key: value or None}``.

    Raises
    ------
    CatalogError
        An unknown name or a value that is not a number (every bad item listed).

    Examples
    --------
    >>> parse_cuts("z=none,photflag=none")
    {'z_min': None, 'z_max': None, 'photflag': None}
    >>> parse_cuts("hmag=25, z_max=4")
    {'hmag_max': 25.0, 'z_max': 4.0}
    >>> parse_cuts(None, no_cuts=True) == {k: None for k in CUTS}
    True
    """
    out: dict[str, Any] = {k: None for k in CUTS} if no_cuts else {}
    text = (text or "").strip()
    if text.lower() in _OFF:
        return {k: None for k in CUTS}
    problems = []
    for item in (p.strip() for p in text.split(",") if p.strip()):
        name, sep, value = (s.strip() for s in item.partition("="))
        keys = CUT_NAMES.get(name.lower()) or ((name,) if name in CUTS else None)
        if not sep or keys is None:
            problems.append(f"{item!r} is not NAME=VALUE with NAME one of {', '.join(CUTS)} "
                            f"(or {', '.join(k for k in CUT_NAMES if k not in CUTS)})")
            continue
        if value.lower() in _OFF:
            parsed: Any = None
        else:
            try:
                parsed = int(value) if keys == ("photflag",) else float(value)
            except ValueError:
                problems.append(f"{item!r}: {value!r} is not a number or none")
                continue
        for key in keys:
            out[key] = parsed
    if problems:
        raise CatalogError("--cuts: " + "; ".join(problems))
    return out


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
    missing : dict of str -> str
        Cuts turned off because the catalog lacks their column: ``{cut: column}``.
    """

    n_in: int
    n_out: int
    rows: list[dict[str, Any]] = field(default_factory=list)
    disabled: list[str] = field(default_factory=list)
    missing: dict[str, str] = field(default_factory=dict)

    def note(self) -> str:
        """A sentence on the cuts turned off for a missing column ("" when none was)."""
        if not self.missing:
            return ""
        columns = ", ".join(dict.fromkeys(self.missing.values()))
        cuts = ", ".join(self.missing)
        return (f"the catalog has no {columns} column: the cut(s) {cuts} are off (map a column with "
                f"--columns, e.g. --columns z=z_best; --cuts '{next(iter(self.missing))}=none' says so "
                "explicitly)")

    def removed(self, cut: str) -> int:
        """Galaxies removed sequentially by ``cut`` (0 for a disabled cut)."""
        return next((r["removed"] for r in self.rows if r["cut"] == cut), 0)

    def __str__(self) -> str:
        lines = [f"{'cut':<16}{'removed':>9}{'fail alone':>12}{'  (NaN)':>8}"]
        for r in self.rows:
            lines.append(f"{r['description']:<16}{r['removed']:>9}{r['fails']:>12}{r['nonfinite']:>8}")
        for c in self.disabled:
            why = " (no column)" if c in self.missing else " (off)"
            lines.append(f"{c + why:<16}{0:>9}{'-':>12}{'-':>8}")
        lines.append(f"kept {self.n_out} of {self.n_in} galaxies")
        return "\n".join(lines)


def cut_masks(table: Table, cuts: Mapping[str, Any] | None, *, missing: str = "error") -> dict[str, np.ndarray]:
    """Boolean pass mask per enabled cut.

    A NaN, infinite or masked value fails its cut (a galaxy is kept only if it can be shown to
    satisfy it). Keys of ``cuts`` not in :data:`CUTS` are an error; a value of ``None`` disables
    that cut.

    Parameters
    ----------
    table : astropy.table.Table
        The catalog, standard column names.
    cuts : mapping
        ``{cut: bound or None}``.
    missing : {"error", "skip"}
        An enabled cut whose column is missing: an error, or left out of the result.

    Raises
    ------
    CatalogError
        An unknown cut, or (``missing="error"``) enabled cuts whose columns are missing (all of
        them named; the message says how to disable them).
    """
    cuts = dict(cuts or {})
    unknown = [k for k in cuts if k not in CUTS]
    if unknown:
        raise CatalogError(f"unknown cut(s) {unknown}; known cuts are {', '.join(CUTS)}")
    source = table.meta.get("source", "catalog")
    absent = [k for k, (column, _, _) in CUTS.items() if cuts.get(k) is not None and column not in table.colnames]
    if absent and missing == "error":
        raise CatalogError(
            f"{source}: " + "; ".join(f"the cut {k} = {cuts[k]} needs the column {CUTS[k][0]!r}" for k in absent)
            + ", which " + ("is" if len(absent) == 1 else "are") + " missing; map "
            + ("it" if len(absent) == 1 else "them") + " with --columns or disable the cut(s) ("
            + ", ".join(f"{k} = \"none\"" for k in absent) + " in the config, or --cuts)")
    masks: dict[str, np.ndarray] = {}
    for key, (column, op, _) in CUTS.items():
        bound = cuts.get(key)
        if bound is None or key in absent:
            continue
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
        ``photflag``; ``None`` disables a cut. Missing keys are disabled too. A cut whose column
        the catalog lacks is turned off (``report.missing``; logged).

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
    masks = cut_masks(table, cuts, missing="skip")
    absent = {k: CUTS[k][0] for k in CUTS if cuts.get(k) is not None and k not in masks}
    keep = np.ones(len(table), bool)
    report = CutReport(n_in=len(table), n_out=0,
                       disabled=[k for k in CUTS if cuts.get(k) is None or k in absent], missing=absent)
    if absent:
        log.warning("%s: %s", table.meta.get("source", "catalog"), report.note())
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
