"""A run's stored latent analysis: :class:`Embedding` and its files in the run folder.

``runs/<run-id>/embedding.npz`` holds the arrays (latents, PCs, k-means inertia, GMM, SVC grid,
CNN probabilities) and ``embedding.json`` a small summary. :mod:`core.latent.analysis` computes them;
this module only reads and writes them, without scikit-learn or TensorFlow, so a viewer (the
dashboard) loads a run quickly and can leave the 512-d latents on disk.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import ResxError

EMBEDDING_NPZ = "embedding.npz"
EMBEDDING_JSON = "embedding.json"


class EmbeddingError(ResxError, FileNotFoundError):
    """A run without the files the latent analysis needs (no model, no embedding yet)."""


@dataclass
class Embedding:
    """A run's latent analysis, as stored in ``runs/<run-id>/embedding.npz``.

    Arrays are row-aligned over the embedded galaxies (``rows`` are their catalog rows).
    ``svc_z[i, j]`` is the SVC's class (or GMM cluster, see ``svc_target``) at
    ``(svc_x[j], svc_y[i])``; −1 where there is no SVC. ``probabilities`` (n, 5) and
    ``predicted`` (class index) exist for CNN runs only (None for the CvAE).
    """

    run_id: str
    model: str
    ids: np.ndarray
    rows: np.ndarray
    latents: np.ndarray
    pcs: np.ndarray
    pcs_raw: np.ndarray
    explained_variance: np.ndarray
    ks: np.ndarray
    inertia: np.ndarray
    elbow_k: int
    gmm_labels: np.ndarray
    gmm_means: np.ndarray
    gmm_covariances: np.ndarray
    svc_x: np.ndarray
    svc_y: np.ndarray
    svc_z: np.ndarray
    svc_kernel: str = ""
    svc_target: str = ""
    rotation: np.ndarray | None = None
    aligned_to: str = ""
    probabilities: np.ndarray | None = None
    predicted: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def save(self, folder: str | Path) -> None:
        """Write ``embedding.npz`` (arrays) and ``embedding.json`` (a small summary)."""
        folder = Path(folder)
        arrays = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name == "meta" or v is None:
                continue
            arrays[f.name] = np.asarray(v)
        tmp = folder / (EMBEDDING_NPZ + ".tmp.npz")
        np.savez(tmp, **arrays)
        tmp.replace(folder / EMBEDDING_NPZ)
        summary = {
            "run": self.run_id, "model": self.model, "n": int(len(self.ids)),
            "explained_variance": [float(v) for v in self.explained_variance],
            "elbow_k": int(self.elbow_k), "inertia": [float(v) for v in self.inertia],
            "svc_kernel": self.svc_kernel, "svc_target": self.svc_target,
            "aligned_to": self.aligned_to, **self.meta,
        }
        (folder / EMBEDDING_JSON).write_text(json.dumps(summary, indent=2))

    @classmethod
    def load(cls, folder: str | Path, only: Iterable[str] | None = None) -> "Embedding":
        """Read a run folder's embedding.

        Parameters
        ----------
        folder : str or Path
            The run folder.
        only : iterable of str, optional
            Read just these arrays (the others are None). ``embedding.npz`` is read one array at
            a time, so leaving out ``latents`` (4 bytes x 512 per galaxy: 2 GB for 10⁶) keeps a
            viewer's memory and start-up small.
        """
        folder = Path(folder)
        path = folder / EMBEDDING_NPZ
        if not path.exists():
            raise EmbeddingError(f"{path} does not exist: run `resx embed` for this run first")
        wanted = None if only is None else set(only) | {"run_id", "model"}
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files if wanted is None or k in wanted}
        kw: dict[str, Any] = {f.name: None for f in fields(cls)
                              if f.name != "meta" and f.default is MISSING and f.default_factory is MISSING}
        for f in fields(cls):
            if f.name == "meta" or f.name not in data:
                continue
            v = data[f.name]
            if f.name in ("run_id", "model", "svc_kernel", "svc_target", "aligned_to"):
                v = str(v)
            elif f.name == "elbow_k":
                v = int(v)
            kw[f.name] = v
        meta_path = folder / EMBEDDING_JSON
        meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
        return cls(meta=meta, **kw)


def load_embedding(workspace, run_id: str, only: Iterable[str] | None = None) -> Embedding:
    """The stored :class:`Embedding` of a run.

    Parameters
    ----------
    workspace : core.workspace.workspace.Workspace or path
    run_id : str
    only : iterable of str, optional
        Read just these arrays (see :meth:`Embedding.load`).

    Raises
    ------
    core.workspace.workspace.WorkspaceError
        No such run. ``FileNotFoundError`` when the run has not been embedded.
    """
    from core.workspace.workspace import Workspace

    ws = workspace if isinstance(workspace, Workspace) else Workspace.open(workspace)
    return Embedding.load(ws.run_dir(run_id), only)
