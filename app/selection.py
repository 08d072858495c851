"""Selection and paging: plain functions on arrays, testable without a server.

The map's lasso and box select on the data (catalog rows), never on drawn glyphs, so they
stay exact and fast at 10⁶ points; the gallery sorts and pages the selected rows.

At millions of points the lasso goes through a :class:`PointIndex`, a uniform grid over the
map built once per map table: cells that the polygon's edges do not touch are wholly inside
or wholly outside, so only the points of the cells along the edges are tested one by one, and
the cost grows with the points near the polygon's outline, not with the number of points.
"""

from __future__ import annotations

import re
from typing import Sequence

import numpy as np
import pandas as pd
from matplotlib.path import Path as MplPath

__all__ = ["PER_PAGE", "SORT_BY", "PointIndex", "n_pages", "page_of", "parse_id_list", "points_in_bounds",
           "points_in_polygon", "sort_rows", "split_id_line"]

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


class PointIndex:
    """A grid over fixed points (x, y) for fast, exact lasso selection.

    Points are bucketed into a ``cells x cells`` grid over their bounding box (about
    :attr:`PER_CELL` points per cell, at most :attr:`MAX_CELLS` a side) and sorted by cell, once.
    :meth:`in_polygon` then classifies the cells of the polygon's bounding box: a cell that no
    edge of the polygon touches lies wholly on one side of it, so all its points share the side
    of its centre; only the points of the cells the edges cross are tested with
    ``matplotlib.path.Path.contains_points``. The result is the same mask as
    :func:`points_in_polygon` (a test checks it on random polygons).

    Parameters
    ----------
    x, y : array_like
        Coordinates of the points (NaN or infinite points are never selected).
    cells : int, optional
        Grid cells per side (default: from the number of points).
    """

    PER_CELL = 16
    MAX_CELLS = 1024
    #: Points the last :meth:`in_polygon` tested one by one (those of the cells along the edges).
    last_tested = 0

    def __init__(self, x: np.ndarray, y: np.ndarray, cells: int | None = None):
        self.x = np.asarray(x, dtype=float)
        self.y = np.asarray(y, dtype=float)
        self.n = self.x.size
        finite = np.isfinite(self.x) & np.isfinite(self.y)
        idx = np.flatnonzero(finite)
        if cells is None:
            cells = int(np.clip(np.sqrt(max(idx.size, 1) / self.PER_CELL), 1, self.MAX_CELLS))
        self.cells = int(cells)
        if idx.size:
            self.x0, self.x1 = float(self.x[idx].min()), float(self.x[idx].max())
            self.y0, self.y1 = float(self.y[idx].min()), float(self.y[idx].max())
        else:
            self.x0 = self.x1 = self.y0 = self.y1 = 0.0
        # cell sides (any positive width where all points share a coordinate)
        self.wx = ((self.x1 - self.x0) or 1.0) / self.cells
        self.wy = ((self.y1 - self.y0) or 1.0) / self.cells
        cx, cy = self._cell(self.x[idx], self.y[idx])
        flat = cy * self.cells + cx
        order = np.argsort(flat, kind="stable")
        #: point indices sorted by cell; the points of cell c are ``points[start[c]:start[c + 1]]``
        self.points = idx[order]
        self.start = np.searchsorted(flat[order], np.arange(self.cells * self.cells + 1))

    def _cell(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        cx = np.clip(np.floor((x - self.x0) / self.wx), 0, self.cells - 1).astype(np.int64)
        cy = np.clip(np.floor((y - self.y0) / self.wy), 0, self.cells - 1).astype(np.int64)
        return cx, cy

    def _gather(self, cells: np.ndarray) -> np.ndarray:
        """Point indices of the given (flat) cells."""
        lo, hi = self.start[cells], self.start[cells + 1]
        counts = hi - lo
        total = int(counts.sum())
        if total == 0:
            return np.empty(0, dtype=np.int64)
        # concatenated ranges lo[i]..hi[i]-1, vectorised
        offsets = np.repeat(lo - np.concatenate([[0], np.cumsum(counts)[:-1]]), counts)
        return self.points[np.arange(total) + offsets]

    def in_polygon(self, xs: Sequence[float], ys: Sequence[float]) -> np.ndarray:
        """Boolean mask of the points inside the polygon (xs, ys), as :func:`points_in_polygon`.

        Parameters
        ----------
        xs, ys : sequence of float
            Vertices of the polygon (closed implicitly).

        Returns
        -------
        numpy.ndarray of bool
            True for the points inside, in the order of the indexed points.
        """
        xs = np.asarray(xs, dtype=float)
        ys = np.asarray(ys, dtype=float)
        mask = np.zeros(self.n, dtype=bool)
        self.last_tested = 0
        if xs.size < 3 or xs.size != ys.size or self.points.size == 0:
            return mask
        if not (np.isfinite(xs).all() and np.isfinite(ys).all()):
            self.last_tested = self.n
            return points_in_polygon(self.x, self.y, xs, ys)
        if xs.max() < self.x0 or xs.min() > self.x1 or ys.max() < self.y0 or ys.min() > self.y1:
            return mask
        ex, ey = np.append(xs, xs[0]), np.append(ys, ys[0])
        steps = np.maximum(np.ceil(np.maximum(np.abs(np.diff(ex)) / self.wx, np.abs(np.diff(ey)) / self.wy) * 4), 1)
        if steps.sum() > 64 * self.cells * 4 + 4 * xs.size:  # a polygon far larger than the map
            self.last_tested = self.n
            return points_in_polygon(self.x, self.y, xs, ys)
        path = MplPath(np.column_stack([xs, ys]))
        # cells of the polygon's bounding box
        (ax, ay), (bx, by) = self._cell(np.array([xs.min()]), np.array([ys.min()])), \
            self._cell(np.array([xs.max()]), np.array([ys.max()]))
        gx = np.arange(ax[0], bx[0] + 1)
        gy = np.arange(ay[0], by[0] + 1)
        # cells an edge touches: samples every quarter cell along each edge, each marking its cell
        # and the 8 around it (a segment through a cell passes within 1/8 cell of a sample, so
        # the cell holding it is the sample's or a neighbour)
        t = [np.linspace(0.0, 1.0, int(k) + 1) for k in steps]
        sx = np.concatenate([ex[i] + (ex[i + 1] - ex[i]) * ti for i, ti in enumerate(t)])
        sy = np.concatenate([ey[i] + (ey[i + 1] - ey[i]) * ti for i, ti in enumerate(t)])
        scx = np.floor((sx - self.x0) / self.wx).astype(np.int64)
        scy = np.floor((sy - self.y0) / self.wy).astype(np.int64)
        nbx, nby = gx.size, gy.size
        edge = np.zeros((nby, nbx), dtype=bool)
        for dx in (-1, 0, 1):
            for dy in (-1, 0, 1):
                px, py = scx + dx - gx[0], scy + dy - gy[0]
                ok = (px >= 0) & (px < nbx) & (py >= 0) & (py < nby)
                edge[py[ok], px[ok]] = True
        # the other cells: inside or outside as their centre
        cxs, cys = np.meshgrid(gx, gy)
        centres = np.column_stack([self.x0 + (cxs.ravel() + 0.5) * self.wx, self.y0 + (cys.ravel() + 0.5) * self.wy])
        flat = (cys * self.cells + cxs).ravel()
        interior = ~edge.ravel()
        inside_cells = flat[interior][path.contains_points(centres[interior])] if interior.any() else flat[:0]
        mask[self._gather(inside_cells)] = True
        # the edge cells' points, one by one (the same test, and box cut, as points_in_polygon)
        cand = self._gather(flat[edge.ravel()])
        if cand.size:
            px, py = self.x[cand], self.y[cand]
            box = (px >= xs.min()) & (px <= xs.max()) & (py >= ys.min()) & (py <= ys.max())
            cand = cand[box]
            self.last_tested = int(cand.size)
            if cand.size:
                mask[cand] = path.contains_points(np.column_stack([self.x[cand], self.y[cand]]))
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
