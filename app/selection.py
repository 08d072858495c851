"""Selection and paging: plain functions on arrays, testable without a server.

The map's lasso and box select on the data (catalog rows), never on drawn glyphs, so they
stay exact and fast at 10⁶ points; the gallery sorts and pages the selected rows.
"""

from __future__ import annotations

import re
from typing import Sequence

import numpy as np
import pandas as pd
from matplotlib.path import Path as MplPath

__all__ = ["PER_PAGE", "SORT_BY", "n_pages", "page_of", "parse_id_list", "points_in_bounds", "points_in_polygon",
           "sort_rows", "split_id_line"]

#: Gallery sort orders: label -> (column of the map frame, ascending).
SORT_BY: dict[str, tuple[str, bool]] = {
    "selection order": ("", True),
    "SPF (high first)": ("spf", False),
    "confidence (low first)": ("confidence", True),
    "confidence (high first)": ("confidence", False),
    "disagreement (high first)": ("disagreement", False),
    "id": ("id", True),
}

#: Tiles on one gallery page.
PER_PAGE = 48


def points_in_polygon(x: np.ndarray, y: np.ndarray, xs: Sequence[float], ys: Sequence[float]) -> np.ndarray:
    """Boolean mask of the points (x, y) inside the polygon (xs, ys).

    Vectorised (``matplotlib.path.Path.contains_points`` after a bounding-box cut), so 10⁶
    points take a fraction of a second; no subsampling. A polygon of fewer than three
    vertices selects nothing.

    Parameters
    ----------
    x, y : array_like
        Coordinates of the points.
    xs, ys : sequence of float
        Vertices of the polygon (closed implicitly).

    Returns
    -------
    numpy.ndarray of bool
        True for the points inside, in the order of ``x``.
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    xs = np.asarray(xs, dtype=float)
    ys = np.asarray(ys, dtype=float)
    mask = np.zeros(x.shape, dtype=bool)
    if xs.size < 3 or xs.size != ys.size:
        return mask
    box = (x >= xs.min()) & (x <= xs.max()) & (y >= ys.min()) & (y <= ys.max())
    idx = np.flatnonzero(box)
    if idx.size:
        path = MplPath(np.column_stack([xs, ys]))
        mask[idx] = path.contains_points(np.column_stack([x[idx], y[idx]]))
    return mask


def points_in_bounds(x: np.ndarray, y: np.ndarray, bounds: Sequence[float]) -> np.ndarray:
    """Boolean mask of the points inside ``bounds = (x0, y0, x1, y1)`` (edges included).

    Parameters
    ----------
    x, y : numpy.ndarray
        Coordinates of the points.
    bounds : sequence of 4 floats
        Two opposite corners of the box, in either order.

    Returns
    -------
    numpy.ndarray of bool
    """
    x0, y0, x1, y1 = bounds
    x0, x1 = min(x0, x1), max(x0, x1)
    y0, y1 = min(y0, y1), max(y0, y1)
    return (x >= x0) & (x <= x1) & (y >= y0) & (y <= y1)


def parse_id_list(text: str) -> list[str]:
    """Galaxy ids pasted by a user (or read from a saved selection): one id per line.

    An id may hold any character but a line break (ingest accepts spaces and commas inside ids,
    e.g. ``SIM 00024``), so a line is one id, stripped of the spaces around it.
    :meth:`app.state.AppState.select_ids` still reads a line of several known ids separated by
    commas, semicolons or spaces (``a, b, c``) when the whole line is not an id.

    Parameters
    ----------
    text : str
        What the user pasted.

    Returns
    -------
    list of str
        The ids in their order, empty lines dropped.
    """
    return [line.strip() for line in text.splitlines() if line.strip()]


def split_id_line(line: str) -> list[str]:
    """The tokens of a line of several ids separated by commas, semicolons or white space."""
    return [t for t in re.split(r"[\s,;]+", line.strip()) if t]


def sort_rows(rows: np.ndarray, frame: pd.DataFrame, by: str) -> np.ndarray:
    """The selected catalog rows in the order of :data:`SORT_BY` ``by`` (NaN last).

    Parameters
    ----------
    rows : numpy.ndarray of int
        Catalog rows, in selection order.
    frame : pandas.DataFrame
        Indexed by catalog row, with the column that ``by`` sorts on.
    by : str
        A key of :data:`SORT_BY`; ``"selection order"`` keeps ``rows`` as they are.

    Returns
    -------
    numpy.ndarray of int
        ``rows`` reordered (a stable sort: ties keep the selection order).
    """
    column, ascending = SORT_BY[by]
    rows = np.asarray(rows, dtype=int)
    if not column or rows.size == 0:
        return rows
    values = frame[column].reindex(rows)
    order = values.reset_index(drop=True).sort_values(ascending=ascending, na_position="last", kind="stable")
    return rows[order.index.to_numpy()]


def page_of(rows: np.ndarray, page: int, per_page: int = PER_PAGE) -> np.ndarray:
    """Rows of page ``page`` (0-based; clipped to the first and the last page).

    Parameters
    ----------
    rows : array_like
        Every row, in display order.
    page : int
        The page asked for.
    per_page : int
        Rows per page.

    Returns
    -------
    numpy.ndarray
    """
    pages = n_pages(len(rows), per_page)
    page = min(max(page, 0), pages - 1)
    return np.asarray(rows)[page * per_page:(page + 1) * per_page]


def n_pages(n: int, per_page: int = PER_PAGE) -> int:
    """Number of pages that ``n`` rows fill (at least 1, so an empty gallery has page 1 of 1).

    Parameters
    ----------
    n : int
        Number of rows.
    per_page : int
        Rows per page.

    Returns
    -------
    int
    """
    return max(1, -(-n // per_page))
