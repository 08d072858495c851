"""``resx fit``: single-Sérsic fits of images, written as GALFIT blocks (:func:`core.fitting.batch.fit_images`)."""

from __future__ import annotations

import argparse
import math

from core.cli.common import add_command
from core.errors import ResxError

HELP = "Fit a single PSF-convolved Sérsic profile to images; write GALFIT-format blocks."

EPILOG = """\
FITS files may end with an HDU selector: img.fits[1], img.fits[SCI], img.fits[SCI,2] (image, PSF,
sigma, weight and mask alike); a file with several image HDUs needs one. Images in e-/s (BUNIT)
are not divided by EXPTIME for magnitudes. The galaxy fitted is the source nearest the target
(--target, --radec, a targets table; default the image centre); with none within --target-radius
px the image is an error. Each fit's status (ok, flagged: see fit_flags, error) is merged into
OUT/fit_summary.ecsv.
"""


def _pair(text: str, what: str) -> tuple[float, float]:
    try:
        a, b = (float(v) for v in text.replace(" ", "").split(","))
    except ValueError:
        raise ResxError(f"--{what}: give two numbers separated by a comma, got {text!r}") from None
    if not (math.isfinite(a) and math.isfinite(b)):
        raise ResxError(f"--{what}: not a position: {text!r}")
    return a, b


def _tolerance(text: str) -> float | None:
    if text.lower() in ("none", "off", "never"):
        return None
    return float(text)


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "fit", HELP, run, workspace=False)
    p.epilog = EPILOG
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument("images", nargs="*", metavar="IMAGE",
                   help="FITS images, with [N], [EXTNAME] or [EXTNAME,EXTVER] for one HDU of a multi-extension file")
    p.add_argument("--psf", default=None,
                   help="PSF image (FITS), one per image (comma-separated), or 'none' for no PSF")
    p.add_argument("--out", required=True, help="output folder; writes <name>_block.fits per image")
    p.add_argument("--targets", default=None, metavar="FILE",
                   help="a table (FITS/ECSV/CSV) of what to fit, one row per galaxy: image, and optionally "
                        "id, x, y (1-based pixels) or ra, dec (deg), psf, sigma, weight, mask, zeropoint, exptime")
    p.add_argument("--target", default=None, metavar="X,Y",
                   help="the galaxy's position, 1-based FITS pixels as GALFIT's (default: the image centre)")
    p.add_argument("--radec", default=None, metavar="RA,DEC",
                   help="the galaxy's position in degrees, through the image's WCS")
    p.add_argument("--target-radius", type=float, default=5.0, metavar="PX",
                   help="a source's centre must lie within PX of the target, else the image is an error (default 5)")
    p.add_argument("--sigma", default=None, help="noise (1 sigma) map (FITS), one per image or a single file")
    p.add_argument("--weight", default=None,
                   help="inverse-variance weight map (FITS; sigma = 1/sqrt(w), w <= 0 masked), instead of --sigma")
    p.add_argument("--mask", default=None, help="bad-pixel mask (FITS, nonzero = masked)")
    p.add_argument("--zeropoint", type=float, default=None,
                   help="magnitude zeropoint of flux/EXPTIME (default: the header's MAGZPT, MAGZP, ZP or "
                        "PHOTFLAM+PHOTPLAM as AB; else 25.9463, F160W AB)")
    p.add_argument("--exptime", type=float, default=None,
                   help="exposure time magnitudes divide by (default: 1 for images in e-/s or MJy/sr, "
                        "else the header's EXPTIME)")
    p.add_argument("--pixscale", type=float, default=None, metavar="ARCSEC",
                   help="pixel scale written into the blocks (default: from the WCS or PIXSCALE)")
    p.add_argument("--psf-tol", type=_tolerance, default=0.1, metavar="PX",
                   help="recentre a PSF whose centroid is more than PX off its centre (default 0.1; 'none': never)")


def split_files(option: str) -> list[str]:
    """``"a.fits,b.fits[SCI,2]"`` -> ``["a.fits", "b.fits[SCI,2]"]``: commas inside brackets are kept."""
    files, depth, start = [], 0, 0
    for i, ch in enumerate(option):
        depth += {"[": 1, "]": -1}.get(ch, 0)
        if ch == "," and depth == 0:
            files.append(option[start:i])
            start = i + 1
    files.append(option[start:])
    return [f.strip() for f in files if f.strip()]


def per_image(option: str | None, n: int, what: str) -> list[str | None]:
    """One file for every image, or a comma-separated list of one file per image."""
    if option is None:
        return [None] * n
    files = split_files(option)
    if len(files) == 1:
        return files * n
    if len(files) != n:
        raise ResxError(f"--{what}: give one file or one per image ({n}), got {len(files)}")
    return files


def _jobs(args: argparse.Namespace) -> list:
    from core.fitting.jobs import FitJob, read_targets

    if args.sigma and args.weight:
        raise ResxError("give --sigma or --weight, not both")
    if args.target and args.radec:
        raise ResxError("give --target or --radec, not both")
    jobs = read_targets(args.targets) if args.targets else []
    n = len(args.images)
    if not jobs and not n:
        raise ResxError("nothing to fit: give IMAGE files or --targets FILE")
    target = _pair(args.target, "target") if args.target else None
    radec = _pair(args.radec, "radec") if args.radec else None
    several = args.psf is not None and len(split_files(args.psf)) > 1
    psfs = per_image(args.psf, n, "psf") if several else [None] * n
    for k, (image, sigma, weight, mask) in enumerate(zip(args.images, per_image(args.sigma, n, "sigma"),
                                                         per_image(args.weight, n, "weight"),
                                                         per_image(args.mask, n, "mask"))):
        jobs.append(FitJob(image=image, psf=psfs[k], sigma=sigma, weight=weight, mask=mask, target=target,
                           radec=None if target else radec,
                           target_source="--target" if target else "--radec" if radec else ""))
    if args.targets and (target or radec):
        for job in jobs[: len(jobs) - n]:
            if job.target is None and job.radec is None:
                job.target, job.radec = target, radec
                job.target_source = "--target" if target else "--radec"
    return jobs


def run(args: argparse.Namespace) -> int:
    """Fit; 1 when any image is an error (each is in fit_summary.ecsv with its message)."""
    from core.fitting.batch import SUMMARY_FILE, fit_images

    jobs = _jobs(args)
    default_psf = args.psf if args.psf and len(split_files(args.psf)) == 1 else None
    if default_psf is None and any(j.psf is None for j in jobs):
        raise ResxError("--psf is required (a PSF file, or 'none' for no PSF) unless the targets table "
                        "has a psf column for every row")
    table = fit_images(jobs, default_psf, args.out, zeropoint=args.zeropoint, exptime=args.exptime,
                       pixscale=args.pixscale, target_radius=args.target_radius, psf_tol=args.psf_tol)
    n = len(table)
    status = list(table["status"])
    ok, flagged, errors = status.count("ok"), status.count("flagged"), status.count("error")
    for psf in sorted({str(r["psf"]) for r in table if r["psf_shifted"]}):
        r = next(r for r in table if str(r["psf"]) == psf)
        print(f"PSF {psf}: centroid ({r['psf_dx']:+.2f}, {r['psf_dy']:+.2f}) px off its centre, recentred")
    default_zp = [r for r in table if str(r["zp_source"]).startswith("default")]
    if default_zp:
        print(f"{len(default_zp)} image(s) without a zeropoint (no --zeropoint, none in the header): "
              f"magnitudes use {default_zp[0]['zeropoint']:g}")
    for r in table:
        if r["status"] == "flagged":
            print(f"flagged {r['id']}: {r['message']}")
    print(f"fitted {ok + flagged} of {n} images ({ok} ok, {flagged} flagged); blocks in {args.out}"
          + (f"; {errors} failed (see {SUMMARY_FILE})" if errors else ""))
    return 1 if errors else 0
