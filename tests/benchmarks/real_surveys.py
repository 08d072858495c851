"""The real galaxies of ``../shared/data`` through ingest + prep (not a test; issue 10's table).

Run as ``.venv/bin/python tests/benchmarks/real_surveys.py``. Builds a block per galaxy
(:mod:`tests.real_blocks`: GALFIT's own GOODS-S block; PetroFit's F105W cutouts, GalSim's AEGIS
galaxies and statmorph's galaxy fitted with this project's fitter), ingests them without cuts,
and preps them three ways: the defaults; the defaults with ``prep.pixel_scale = 0.03`` for the
AEGIS galaxies (their headers give no scale; GalSim's README says 0.03"/px); and
``prep.sky_background_box = 0`` (the sky resampled as before issue 10) for the seam ratio
"before". Prints one row per galaxy: status and flags, pixel scale and where it came from, the
cutout (native px, arcsec) resampled to the stamp, the seam ratio before and after, SPF/RFF.
"""

from __future__ import annotations

import logging
import sys
import tempfile
from pathlib import Path

import numpy as np
from astropy.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from core.prep.pipeline import prep_workspace  # noqa: E402
from core.workspace.cuts import CUTS  # noqa: E402
from core.workspace.ingestion import ingest  # noqa: E402
from tests.real_blocks import DATA, build_blocks  # noqa: E402

NO_CUTS = {k: None for k in CUTS}


def run(blocks: dict, root: Path, prep: dict) -> Table:
    names = [n for n, b in blocks.items() if b["block"] is not None]
    cat = root / f"cat_{len(list(root.iterdir()))}.ecsv"
    Table({"id": names, "block": [str(blocks[n]["block"]) for n in names]}).write(cat)
    ws = ingest(cat, root / cat.stem, config={"cuts": NO_CUTS, "prep": prep}, progress=False)
    return prep_workspace(ws, workers=1, progress=False)


def main() -> None:
    logging.basicConfig(level=logging.ERROR)
    if not DATA.is_dir():
        sys.exit(f"no real data at {DATA}")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        blocks = build_blocks(root / "blocks")
        after = run(blocks, root, {})
        aegis = run({n: b for n, b in blocks.items() if n.startswith("aegis")}, root, {"pixel_scale": 0.03})
        before = run(blocks, root, {"sky_background_box": 0})
    seam0 = dict(zip(before["id"], before["sky_seam"]))
    rows = [(str(r["id"]), r) for r in after] + [(f"{r['id']} @0.03", r) for r in aegis]
    head = (f"{'galaxy':<22} {'what':<27} {'status':<8} {'arcsec/px':>10} {'src':<6} {'cutout':>14} "
            f"{'stamp':>5} {'seam before':>11} {'after':>6} {'spf_norm':>8} {'rff':>7}  flags / message")
    print(head)
    print("-" * len(head))
    for name, b in blocks.items():
        if b["block"] is None:
            print(f"{name:<22} {b['what']:<27} {'refused':<8} fit refused: {b['refused']}")
    for label, r in rows:
        gid = str(r["id"])
        scale = f"{r['pixel_scale']:.4f}" if np.isfinite(r["pixel_scale"]) else "unknown"
        arcsec = f" {r['cutout_arcsec']:.2f} arcsec" if np.isfinite(r["cutout_arcsec"]) else ""
        cut = f"{r['cutout_px']:.0f} px{arcsec}"
        flags = str(r["prep_flags"]) or "-"
        print(f"{label:<22} {blocks[gid]['what']:<27} {str(r['prep_status']):<8} {scale:>10} "
              f"{str(r['pixel_scale_src']) or '-':<6} {cut:>14} {'50':>5} {seam0.get(gid, np.nan):>11.2f} "
              f"{r['sky_seam']:>6.2f} {r['spf_norm']:>8.3f} {r['rff']:>7.3f}  {flags}")
        if str(r["prep_message"]):
            print(f"{'':<24}{str(r['prep_message'])[:220]}")


if __name__ == "__main__":
    main()
