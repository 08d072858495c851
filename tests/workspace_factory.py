"""Small synthetic workspaces for tests: GALFIT blocks + a catalog, ready for ``resx prep``.

Reusable by every engineer's tests::

    from tests.workspace_factory import make_workspace
    ws = make_workspace(tmp_path / "ws", n=12)          # pending catalog, blocks on disk
    ws = make_workspace(tmp_path / "ws", n=12, prep=True)  # ... and prepared (stamps, metrics, split)

Each galaxy is a Sérsic host (core.fitting.sersic.sersic_image) at the stamp centre (offset by up to 1 px)
with a class-dependent residual (Clean: none; Core: a central point source; General: a ring;
Asymmetric: an off-centre blob; Peculiar: two blobs), Gaussian noise of ``noise`` and a sky level,
and one interloper near a corner. The "GALFIT" model is the host itself plus the sky, so the
residual is the substructure + interloper + noise. Classes cycle through core.labels.CLASSES;
the last galaxy is fit-quality flagged when n >= 6.

``bad`` maps row -> problem, to build the bad inputs prep must survive: ``"nan"`` (NaN pixels in the
input image), ``"missing_hdu"`` (no residual HDU), ``"missing_file"``, ``"off_image"`` (catalog
centroid off the image), ``"no_segment"`` (centroid on empty sky), ``"zero_residual"``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.table import Table

from core.fitting.sersic import sersic_image
from core.io.galfit import write_block
from core.labels import CLASSES
from core.workspace.workspace import Workspace

ZEROPOINT = 25.9463
BAD_KINDS = ("nan", "missing_hdu", "missing_file", "off_image", "no_segment", "zero_residual")


def _blob(shape, x, y, sigma, amp):
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    return amp * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * sigma**2))


def make_galaxy(rng: np.random.Generator, size: int = 100, cls: str = "Clean", noise: float = 0.01,
                sky: float = 0.05, interloper: bool = True):
    """Images and GALFIT parameters of one synthetic galaxy.

    Returns
    -------
    input, model, residual : numpy.ndarray
    params : dict
        ``XC YC MAG RE N AR PA SKY`` (XC, YC 1-based).
    """
    shape = (size, size)
    xc, yc = (size + 1) / 2 + rng.uniform(-1, 1), (size + 1) / 2 + rng.uniform(-1, 1)
    params = {"XC": xc, "YC": yc, "MAG": rng.uniform(20.5, 21.5), "RE": rng.uniform(3, 6),
              "N": rng.uniform(1, 3), "AR": rng.uniform(0.5, 1), "PA": rng.uniform(-90, 90), "SKY": sky}
    host = sersic_image(shape, xc, yc, params["MAG"], params["RE"], params["N"], params["AR"], params["PA"], ZEROPOINT)
    x0, y0 = xc - 1, yc - 1
    sub = np.zeros(shape)
    a = 20 * noise
    if cls == "Core":
        sub += _blob(shape, x0, y0, 1.0, 3 * a)
    elif cls == "General":
        yy, xx = np.mgrid[0:size, 0:size]
        r = np.hypot(xx - x0, yy - y0)
        sub += a * 0.5 * np.exp(-((r - 6) ** 2) / 4)
    elif cls == "Asymmetric":
        sub += _blob(shape, x0 + 5, y0 + 3, 2.0, a)
    elif cls == "Peculiar":
        sub += _blob(shape, x0 - 5, y0 + 4, 2.0, a) + _blob(shape, x0 + 4, y0 - 5, 1.5, a)
    if interloper:
        sub += _blob(shape, 0.18 * size, 0.8 * size, 2.0, 30 * noise)
    model = host + sky
    inp = model + sub + rng.normal(0, noise, shape)
    return inp, model, inp - model, params


def make_workspace(root: str | Path, n: int = 12, *, size: int = 100, cutout: int = 50, chunk: int = 4,
                   seed: int = 0, bad: dict[int, str] | None = None, noise: float = 0.01,
                   prep: bool = False, config: dict | None = None) -> Workspace:
    """Create a workspace of ``n`` synthetic galaxies in ``root`` (see the module docstring).

    Parameters
    ----------
    root : path
        Workspace folder (created; blocks go to ``root/blocks``).
    n, size, cutout, chunk, seed, noise :
        Number of galaxies, GALFIT image side, cutout side, stamp chunk, random seed, noise sigma.
    bad : dict of int -> str, optional
        Rows to break (:data:`BAD_KINDS`).
    prep : bool
        Also run :func:`core.prep.pipeline.prep_workspace` (synchronously, no progress bar).
    config : dict, optional
        Config overrides merged into the workspace's config.
    """
    root = Path(root)
    bad = bad or {}
    rng = np.random.default_rng(seed)
    cfg = {"prep": {"cutout": cutout, "chunk": chunk}}
    for k, v in (config or {}).items():
        cfg.setdefault(k, {}).update(v)
    ws = Workspace.create(root, cfg, exist_ok=True)
    blocks = root / "blocks"
    blocks.mkdir(exist_ok=True)
    rows = []
    for i in range(n):
        cls = CLASSES[i % len(CLASSES)]
        inp, model, res, params = make_galaxy(rng, size, cls, noise)
        kind = bad.get(i)
        if kind == "nan":
            inp[10:12, 10:13] = np.nan
        if kind == "zero_residual":
            res = np.zeros_like(res)
        rel = f"blocks/gal_{i:04d}.fits"
        path = root / rel
        if kind != "missing_file":
            write_block(path, inp, model, res, params=params, zeropoint=ZEROPOINT)
        if kind == "missing_hdu":
            with fits.open(path) as hdul:
                fits.HDUList([h.copy() for h in hdul[:3]]).writeto(path, overwrite=True)
        xc, yc = params["XC"], params["YC"]
        if kind == "off_image":
            xc = -20.0
        if kind == "no_segment":
            xc, yc = 0.9 * size, 0.1 * size
        rows.append({
            "id": f"G{i:04d}", "field": "SIM", "ra": 53.0 + i * 1e-3, "dec": -27.8, "z": 2.0,
            "logmass": 10.0, "hmag": params["MAG"], "photflag": 0, "block": rel,
            "catalog_class": cls, "fit_quality": bool(n >= 6 and i == n - 1),
            "gf_xc": xc, "gf_yc": yc, "gf_mag": params["MAG"], "gf_re": params["RE"],
            "gf_n": params["N"], "gf_ar": params["AR"], "gf_pa": params["PA"],
            "prep_status": "pending", "prep_message": "",
        })
    ws.write_catalog(Table(rows=rows))
    if prep:
        from core.prep.pipeline import prep_workspace

        prep_workspace(ws, workers=1, progress=False)
    return ws
