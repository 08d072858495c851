"""Vote files in and consensus catalogs out (CSV or FITS, chosen by the file's extension).

Import files hold one vote per row, with columns ``id``, ``inspector``, ``label`` and optionally
``comment`` (column names are matched case-insensitively; ``galaxy`` or ``galaxy_id`` are
accepted for ``id``). Every value is read as text, so an id such as ``007`` stays ``007``.

The consensus catalog is the workspace catalog (every row, in order) with, after ``id``:
``consensus`` (class, FitQuality or "undecided"), ``n_votes`` (non-skip votes), ``expert``
(expert-validated) and one ``votes_<Label>`` count per label of :data:`core.labels.VOTE_LABELS`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from astropy.table import Table

from core.errors import ResxError
from core.labels import VOTE_LABELS

_ALIASES = {"galaxy": "id", "galaxy_id": "id"}


class VoteFileError(ResxError, ValueError):
    """A vote file that cannot be read (missing, unknown format, missing columns)."""


def _format(path: Path) -> str:
    name = path.name.lower()
    if name.endswith((".fits", ".fit", ".fits.gz", ".fts")):
        return "fits"
    if name.endswith(".csv"):
        return "csv"
    raise VoteFileError(f"{path}: unknown file type; use .csv or .fits")


def read_vote_file(path: str | Path) -> pd.DataFrame:
    """Read an import file into a table of strings.

    Returns
    -------
    pandas.DataFrame
        Columns ``id``, ``inspector``, ``label``, ``comment`` (object dtype; ``comment`` is ""
        when the file has none), one row per vote in file order.

    Raises
    ------
    VoteFileError
        Naming the file and what is wrong.
    """
    path = Path(path)
    if not path.is_file():
        raise VoteFileError(f"{path}: no such file")
    fmt = _format(path)
    try:
        if fmt == "csv":
            df = pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False)
        else:
            table = Table.read(path)
            df = pd.DataFrame({
                name: [(v.decode("utf-8") if isinstance(v, bytes) else str(v)) for v in table[name]]
                for name in table.colnames if table[name].ndim == 1
            })
    except Exception as exc:
        raise VoteFileError(f"{path}: cannot be read as {fmt.upper()}: {exc}") from exc
    columns = {}
    for col in df.columns:
        key = str(col).strip().lower()
        columns[col] = _ALIASES.get(key, key)
    df = df.rename(columns=columns)
    missing = [c for c in ("id", "inspector", "label") if c not in df.columns]
    if missing:
        raise VoteFileError(f"{path}: missing column(s) {', '.join(missing)} "
                            f"(found: {', '.join(map(str, df.columns)) or 'none'})")
    if "comment" not in df.columns:
        df["comment"] = ""
    return df[["id", "inspector", "label", "comment"]].astype(object).reset_index(drop=True)


def consensus_catalog(consensus: pd.DataFrame, catalog: Table | None) -> Table:
    """Join the consensus onto the catalog (one row per catalog galaxy, catalog order).

    Parameters
    ----------
    consensus : pandas.DataFrame
        From :meth:`core.votes.store.VoteStore.consensus`.
    catalog : astropy.table.Table or None
        The workspace catalog; None gives the consensus alone.
    """
    cons = consensus.set_index("id")
    ids = np.asarray(catalog["id"]).astype(str) if catalog is not None else cons.index.to_numpy().astype(str)
    cons = cons.reindex(ids)
    out = Table()
    out["id"] = ids
    out["consensus"] = cons["label"].fillna("undecided").to_numpy().astype(str)
    out["n_votes"] = cons["n_votes"].fillna(0).to_numpy().astype(np.int32)
    out["expert"] = cons["expert"].fillna(False).to_numpy().astype(bool)
    for label in VOTE_LABELS:
        out[f"votes_{label}"] = cons[label].fillna(0).to_numpy().astype(np.int32)
    if catalog is not None:
        for name in catalog.colnames:
            if name != "id" and name not in out.colnames:
                out[name] = catalog[name]
    return out


def write_table(table: Table, path: str | Path, prov: dict | None = None) -> None:
    """Write a table as FITS or CSV according to the extension of ``path``, with its provenance.

    Through the one export writer, :func:`core.io.export.write_export` (FITS text as declared
    UTF-8; CSV with formula cells neutralised).

    Parameters
    ----------
    table : astropy.table.Table
    path : str or Path
        ``.fits`` or ``.csv``.
    prov : dict, optional
        From :func:`core.io.export.provenance`.
    """
    from core.io.export import write_export

    path = Path(path)
    write_export(table, path, _format(path), prov)
