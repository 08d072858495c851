"""A small synthetic workspace for the model, training and embedding tests.

Object-only-like stamps (noise of σ = 0.05 plus a class signature) for the five classes, a
catalog with the columns training reads, and a seeded split. Signatures: Clean none, General a
ring, Core a central point excess with a negative ring, Asymmetric one off-centre blob,
Peculiar two strong blobs and a tail — different enough that a CNN learns them in one epoch.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from astropy.table import Table

from core.io.stamps import StampStore
from core.labels import CLASSES
from core.workspace.workspace import Workspace


def class_stamp(cls: str, size: int, rng: np.random.Generator) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size] - (size - 1) / 2.0
    r = np.hypot(xx, yy)
    img = rng.normal(0.0, 0.05, (size, size))
    s = size / 32.0
    if cls == "General":
        img += 0.6 * np.exp(-0.5 * ((r - 8 * s) / (1.2 * s)) ** 2)
    elif cls == "Core":
        img += 1.0 * np.exp(-0.5 * (r / (1.3 * s)) ** 2) - 0.25 * np.exp(-0.5 * ((r - 4 * s) / s) ** 2)
    elif cls == "Asymmetric":
        a = rng.uniform(0, 2 * np.pi)
        img += 0.8 * np.exp(-0.5 * ((xx - 6 * s * np.cos(a)) ** 2 + (yy - 6 * s * np.sin(a)) ** 2) / (2 * s) ** 2)
    elif cls == "Peculiar":
        a = rng.uniform(0, 2 * np.pi)
        for d in (5, -7):
            img += 1.0 * np.exp(-0.5 * ((xx - d * s * np.cos(a)) ** 2 + (yy - d * s * np.sin(a)) ** 2) / (1.5 * s) ** 2)
        img += 0.3 * np.exp(-0.5 * ((xx * np.sin(a) - yy * np.cos(a)) / (1.5 * s)) ** 2) * (r < 12 * s)
    return img.astype(np.float32)


def make_workspace(root: str | Path, n: int = 300, size: int = 32, seed: int = 0,
                   fractions=(0.38, 0.12, 0.2, 0.2, 0.1)) -> Workspace:
    """Create a synthetic, prepared workspace of ``n`` galaxies at ``root``."""
    rng = np.random.default_rng(seed)
    from core.learn.augment import split_sample

    ws = Workspace.create(root, {"prep": {"cutout": size, "chunk": 64}})
    labels = rng.choice(CLASSES, size=n, p=np.asarray(fractions) / np.sum(fractions))
    labels[: len(CLASSES)] = CLASSES  # every class present
    fq = np.zeros(n, bool)
    fq[-3:] = True
    status = np.array(["ok"] * n, dtype="U8")
    status[-5] = "error"
    stamps = np.stack([class_stamp(c, size, rng) for c in labels])
    stamps[-5] = np.nan
    ids = np.array([f"G{i:05d}" for i in range(n)])
    spf = np.array([np.abs(s[np.abs(s) > 0.15]).sum() if np.isfinite(s).all() else np.nan for s in stamps])
    split = split_sample(labels, fq | (status == "error"), 0.2, 42)
    cat = Table({"id": ids, "catalog_class": labels.astype("U12"), "fit_quality": fq,
                 "prep_status": status, "split": split, "spf": spf})
    ws.write_catalog(cat)
    store = StampStore.create(ws.stamps_path, n=n, size=size, chunk=64)
    store.write("object_only", 0, stamps)
    return ws
