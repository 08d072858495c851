"""The stamp store: the cutouts of every galaxy, chunked on disk so Dask workers write in parallel.

A :class:`StampStore` is a zarr group (``WORKSPACE/stamps.zarr``) holding one array per kind in
:data:`STAMP_KINDS`, each of shape ``(n, size, size)`` and chunked ``(chunk, size, size)`` along the
galaxy axis: row ``i`` is the galaxy in catalog row ``i``. Stores made by ``resx prep`` are zarr v3
shards of ``chunk`` galaxies (one file each) holding compressed blocks of :data:`READ_CHUNK`
galaxies, so that the gallery's random reads decompress little; older stores (one block per
chunk) are read the same way. Image kinds are float32 (NaN until a
galaxy is prepared); ``goi_mask`` is uint8 (1 inside the galaxy of interest). Because a chunk holds
whole galaxies, a worker that owns rows ``[k*chunk, (k+1)*chunk)`` writes only its own chunk files:
concurrent workers never write the same file.

Examples
--------
>>> store = StampStore.create("stamps.zarr", n=1000, size=50, chunk=256)  # doctest: +SKIP
>>> store.write("object_only", 0, stamps)                                 # doctest: +SKIP
>>> store.read("object_only", rows=[3, 7]).shape                          # doctest: +SKIP
(2, 50, 50)
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import zarr

from core.errors import ResxError

STAMP_KINDS: tuple[str, ...] = ("original", "model", "residual", "object_only", "goi_mask")
"""The stamps kept per galaxy (paper §3.1, Figure 3)."""

_MASK_KINDS = ("goi_mask",)

#: Galaxies per compressed block in the stores ``resx prep`` creates (inside shards of
#: ``prep.chunk`` galaxies, one file per prep task). A gallery page of 48 galaxies picked anywhere
#: decompresses 48 blocks of 16 stamps instead of 48 of 256 per stamp kind; writing a shard and
#: reading a store end to end stay close to one block per file (tests/benchmarks/bench_stamps.py).
READ_CHUNK = 16


def _dtype(kind: str) -> np.dtype:
    return np.dtype(np.uint8) if kind in _MASK_KINDS else np.dtype(np.float32)


class StampStoreError(ResxError, FileNotFoundError):
    """No stamp store where one is expected (prep has not run)."""


class StampStore:
    """Chunked stamp arrays of a workspace (see the module docstring for the layout).

    Use :meth:`create` for a new store and :meth:`open` for an existing one.
    """

    def __init__(self, group: zarr.Group, path: Path):
        self._group = group
        self.path = Path(path)
        first = group[STAMP_KINDS[0]]
        self.n = int(first.shape[0])
        self.size = int(first.shape[1])
        shards = getattr(first, "shards", None)  # None: an unsharded (older) store, or zarr format 2
        #: Galaxies per file: the unit a writer (a prep task) owns.
        self.chunk = int(shards[0] if shards else first.chunks[0])
        #: Galaxies per compressed block: the unit a reader decompresses.
        self.read_chunk = int(first.chunks[0])

    # -- creation --------------------------------------------------------------------------
    @classmethod
    def create(cls, path: str | Path, n: int, size: int, chunk: int = 256,
               read_chunk: int | None = None) -> "StampStore":
        """Create (or overwrite) a store for ``n`` galaxies of ``size`` x ``size`` pixels.

        Parameters
        ----------
        path : str or Path
            Folder of the zarr group (``.../stamps.zarr``).
        n : int
            Number of galaxies (catalog rows).
        size : int
            Side of the square stamps, px.
        chunk : int
            Galaxies per chunk file (and per parallel task of ``resx prep``).
        read_chunk : int, optional
            Galaxies per compressed block inside a chunk file: a zarr v3 shard of ``chunk``
            galaxies holding blocks of ``gcd(chunk, read_chunk)``, so that reading a few galaxies
            (a gallery page) decompresses only their blocks, not whole chunks. ``None`` (or a
            multiple of ``chunk``): one compressed block per file, the layout of older stores,
            which stay readable. ``resx prep`` uses :data:`READ_CHUNK`.
        """
        if n < 0 or size < 1 or chunk < 1:
            raise ValueError(f"invalid stamp store shape n={n}, size={size}, chunk={chunk}")
        chunk = max(1, min(chunk, max(n, 1)))
        inner = chunk if read_chunk is None else math.gcd(chunk, max(1, int(read_chunk)))
        group = zarr.open_group(str(path), mode="w")
        for kind in STAMP_KINDS:
            dtype = _dtype(kind)
            group.create_array(
                kind,
                shape=(n, size, size),
                chunks=(inner, size, size),
                shards=None if inner == chunk else (chunk, size, size),
                dtype=dtype,
                fill_value=0 if dtype.kind == "u" else np.nan,
            )
        group.attrs.update({"n": n, "size": size, "chunk": chunk, "read_chunk": inner, "kinds": list(STAMP_KINDS)})
        return cls(group, Path(path))

    @classmethod
    def open(cls, path: str | Path, mode: str = "r+") -> "StampStore":
        """Open an existing store; :class:`StampStoreError` names the path when there is none."""
        path = Path(path)
        if not path.exists():
            raise StampStoreError(f"No stamp store at {path}: run `resx prep` first.")
        try:
            group = zarr.open_group(str(path), mode=mode)
            return cls(group, path)
        except Exception as exc:
            raise OSError(f"{path} is not a readable stamp store: {exc}") from exc

    # -- access ----------------------------------------------------------------------------
    def _array(self, kind: str) -> zarr.Array:
        if kind not in STAMP_KINDS:
            raise KeyError(f"unknown stamp kind {kind!r}; expected one of {STAMP_KINDS}")
        return self._group[kind]

    def read(self, kind: str, rows: None | int | slice | np.ndarray | list = None) -> np.ndarray:
        """Stamps of one kind.

        Parameters
        ----------
        kind : str
            One of :data:`STAMP_KINDS`.
        rows : None, int, slice or array of int
            Which galaxies (catalog rows); ``None`` for all. Integer arrays may be in any order
            and are returned in that order.

        Returns
        -------
        numpy.ndarray
            ``(len(rows), size, size)`` float32 (``goi_mask``: uint8); an int gives one stamp
            ``(size, size)``.
        """
        arr = self._array(kind)
        if rows is None:
            return arr[...]
        if isinstance(rows, (int, np.integer)):
            return arr[int(rows)]
        if isinstance(rows, slice):
            return arr[rows]
        idx = np.asarray(rows, dtype=np.int64).ravel()
        if idx.size == 0:
            return np.empty((0, self.size, self.size), dtype=arr.dtype)
        if idx.min() < 0 or idx.max() >= self.n:
            raise IndexError(f"rows out of range [0, {self.n})")
        # zarr's orthogonal selection wants sorted unique indices: read those, then reorder.
        uniq, inverse = np.unique(idx, return_inverse=True)
        out = arr.get_orthogonal_selection((uniq, slice(None), slice(None)))
        return out[inverse]

    def write(self, kind: str, start: int, array: np.ndarray) -> None:
        """Write ``array`` (``(m, size, size)``) into rows ``start .. start + m - 1``.

        Writing whole chunks (``start`` a multiple of :attr:`chunk`) from one worker per chunk is
        what keeps parallel writers from touching the same file.
        """
        arr = self._array(kind)
        array = np.asarray(array)
        if array.ndim != 3 or array.shape[1:] != (self.size, self.size):
            raise ValueError(f"{kind}: expected (m, {self.size}, {self.size}), got {array.shape}")
        if start < 0 or start + array.shape[0] > self.n:
            raise IndexError(f"rows {start}..{start + array.shape[0] - 1} out of range [0, {self.n})")
        arr[start : start + array.shape[0]] = array.astype(arr.dtype, copy=False)

    def chunk_bounds(self) -> list[tuple[int, int]]:
        """``(start, stop)`` of every chunk, in row order."""
        return [(s, min(s + self.chunk, self.n)) for s in range(0, self.n, self.chunk)]

    def __repr__(self) -> str:
        return f"StampStore({str(self.path)!r}, n={self.n}, size={self.size}, chunk={self.chunk})"
