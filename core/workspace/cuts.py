"""The paper's sample cuts (§2.1), each configurable in ``config.toml`` section ``[cuts]``::

    hmag_max    = 24.5   H < 24.5 mag
    logmass_min = 9.5    log M* >= 9.5
    z_min, z_max = 1, 3  1 <= z <= 3
    photflag    = 0      PhotFlag == 0

each disabled by setting it to ``None`` (``"none"`` in ``config.toml``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np
from astropy.table import MaskedColumn, Table

from core.io.catalog import CatalogError

__all__ = ["CUTS", "CutReport", "apply_cuts", "cut_masks"]

log = logging.getLogger(__name__)

#: The cuts: config key -> (column, test, description format).
CUTS: dict[str, tuple[str, str, str]] = {
    "hmag_max": ("hmag", "<", "H < {}"),
    "logmass_min": ("logmass", ">=", "log M* >= {}"),
    "z_min": ("z", ">=", "z >= {}"),
    "z_max": ("z", "<=", "z <= {}"),
    "photflag": ("photflag", "==", "PhotFlag == {}"),
}


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
