"""`resx fit` on every real galaxy in ../shared/data: ours vs the reference, status and reason.

    .venv/bin/python tests/benchmarks/real_fits.py [--out DIR]

References: GALFIT's own fit of its GOODS-S example (imgblock.fits; GALFIT wrote its errors as
0.0000), statmorph's Sérsic fit of its galaxy (run here; statmorph is in the ``test`` extra), the
AEGIS catalogs' magnitudes (ACS/WFC AB zeropoints F606W 26.49, F814W 25.94 assumed: the files
carry none). PetroFit's cutouts come with no Sérsic reference. Prints a Markdown table; the
blocks and fit_summary.ecsv are left in ``--out`` (default: a temporary folder).
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.table import Table

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data"

from core.fitting.batch import fit_images  # noqa: E402
from core.fitting.jobs import FitJob  # noqa: E402
from core.io.galfit import read_block  # noqa: E402

ACS_ZP = {"F606w": 26.49, "F814w": 25.94}


def cases() -> list[tuple[str, list[FitJob], dict, dict]]:
    """(label, jobs, fit_images options, {job id: reference dict}) for each group of images."""
    out = []
    g = DATA / "galfit_goodss_f606w"
    ref = read_block(g / "imgblock.fits").params
    out.append(("GOODS-S F606W (GALFIT's example)", [FitJob(str(g / "gal.fits"), psf=str(g / "psf.fits"), id="goodss")],
                {"zeropoint": 26.563},
                {"goodss": {"n": ref["N"].value, "re": ref["RE"].value, "mag": ref["MAG"].value,
                            "source": "GALFIT imgblock.fits"}}))
    h = DATA / "hst_abell2744_f105w"
    psf = str(h / "f105w_psf.fits.gz")

    def img(name):
        return str(h / f"abell_2744_{name}_f105w.fits.gz")
    jobs = [FitJob(img("cd_galaxy"), psf=psf, id="a2744_cd"),
            FitJob(img("cd_galaxy"), psf=psf, id="a2744_cd_target", target=(195.4, 197.6), target_source="--target"),
            FitJob(img("spiral_galaxy"), psf=psf, id="a2744_spiral", zeropoint=26.27),
            FitJob(img("dwarf_galaxy"), psf=psf, id="a2744_dwarf", sigma=str(h / "abell_2744_dwarf_galaxy_f105w_rms.fits.gz")),
            FitJob(img("group_of_galaxies"), psf=psf, id="a2744_group"),
            FitJob(img("group_of_galaxies"), psf=psf, id="a2744_group_target", target=(44.3, 70.3),
                   target_source="--target")]
    out.append(("Abell 2744 F105W (PetroFit)", jobs, {}, {}))
    a = DATA / "hst_aegis_acs"
    jobs, refs = [FitJob(str(a / "AEGIS_F606w_images_01.fits"), psf=str(a / "AEGIS_F606w_PSF_images_01.fits[0]"),
                         id="aegis_no_selector")], {}
    for band in ("F606w", "F814w"):
        cat = Table.read(a / f"AEGIS_{band}_catalog.fits")
        cat.convert_bytestring_to_unicode()
        for r in cat:
            jid = f"aegis_{band}_{r['IDENT']}"
            jobs.append(FitJob(f"{a / r['GAL_FILENAME']}[{r['GAL_HDU']}]", psf=f"{a / r['PSF_FILENAME']}[{r['PSF_HDU']}]",
                               id=jid, zeropoint=ACS_ZP[band]))
            refs[jid] = {"mag": float(r["MAG"]), "source": f"AEGIS catalog MAG (zp {ACS_ZP[band]})"}
    out.append(("AEGIS ACS (GalSim)", jobs, {}, refs))
    s = DATA / "statmorph_slice" / "slice.fits"
    refs = {}
    try:
        import statmorph

        with fits.open(s) as hdul:
            image, seg, mask = (np.asarray(x.data) for x in hdul[:3])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            m = statmorph.source_morphology(image.astype(float), seg, mask=mask.astype(bool), gain=1.0)[0]
        refs["statmorph"] = {"n": m.sersic_n, "re": m.sersic_rhalf, "source": f"statmorph {statmorph.__version__}"}
    except ImportError:
        refs["statmorph"] = {"source": "statmorph not installed"}
    out.append(("statmorph's galaxy (no PSF)", [FitJob(f"{s}[0]", psf="none", mask=f"{s}[2]", id="statmorph")],
                {}, refs))
    return out


def _fmt(v, err=None, digits=2):
    if v is None or not np.isfinite(v):
        return "—"
    text = f"{v:.{digits}f}"
    if err is not None and np.isfinite(err):
        text += f" ± {err:.{digits}f}"
    return text


def _delta(ours, ref, err=None, mag=False):
    if ref is None or not (np.isfinite(ours) and np.isfinite(ref)):
        return ""
    if mag:
        return f" (Δ {ours - ref:+.2f})"
    pull = f", {abs(ours - ref) / err:.1f}σ" if err and np.isfinite(err) and err > 0 else ""
    return f" ({100 * (ours / ref - 1):+.0f} %{pull})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=None, help="folder for the blocks (default: temporary)")
    args = parser.parse_args()
    if not DATA.is_dir():
        sys.exit(f"no real data at {DATA}")
    logging.basicConfig(level=logging.ERROR)
    out = Path(args.out or tempfile.mkdtemp(prefix="real_fits_"))
    print("| galaxy | status | n ours (vs ref) | n ref | Re ours, px (vs ref) | Re ref | mag ours (Δ) | mag ref | "
          "reference | reason / notes |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for label, jobs, options, refs in cases():
        table = fit_images(jobs, None, out, progress=False, **options)
        for r in table:
            ref = refs.get(str(r["id"]), {})
            note = str(r["message"]) if r["status"] != "ok" else ""
            if r["status"] != "error" and r["psf_shifted"]:
                note = (note + "; " if note else "") + f"PSF recentred by ({-r['psf_dx']:+.2f}, {-r['psf_dy']:+.2f}) px"
            if r["status"] != "error" and r["exptime"] == 1.0 and "rate" in str(r["exptime_source"]):
                note = (note + "; " if note else "") + "e-/s: EXPTIME not applied"
            note = note.replace(str(DATA) + "/", "").replace("|", "/")
            print(f"| {r['id']} | {r['status']} | {_fmt(r['n'], r['n_err'])}{_delta(r['n'], ref.get('n'), r['n_err'])} | "
                  f"{_fmt(ref.get('n'))} | {_fmt(r['re'], r['re_err'])}{_delta(r['re'], ref.get('re'), r['re_err'])} | "
                  f"{_fmt(ref.get('re'))} | {_fmt(r['mag'])}{_delta(r['mag'], ref.get('mag'), mag=True)} | "
                  f"{_fmt(ref.get('mag'))} | {ref.get('source', '—')} | {note} |")
    # statmorph fits no sky: the same fit with the sky held at 0.
    from core.fitting.fit import fit_sersic
    from core.fitting.psf import delta_psf

    image = fits.getdata(DATA / "statmorph_slice" / "slice.fits", 0).astype(float)
    free = fit_sersic(image, delta_psf(), zeropoint=25.0)
    fixed = fit_sersic(image, delta_psf(), zeropoint=25.0, init={"SKY": 0.0}, fixed=["SKY"])
    print(f"\nstatmorph's galaxy: our fitted sky {free.value('SKY'):.1f} ± {free.params['SKY'].error:.1f} "
          f"(pixel sigma {free.sky_rms:.0f}); with SKY held at 0, as statmorph assumes: "
          f"n = {fixed.value('N'):.3f} ± {fixed.params['N'].error:.3f}, Re = {fixed.value('RE'):.2f} ± "
          f"{fixed.params['RE'].error:.2f} px")
    print(f"blocks and fit_summary.ecsv in {out}")


if __name__ == "__main__":
    main()
