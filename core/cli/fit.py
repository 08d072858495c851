"""``resx fit``: single-Sérsic fits of images, written as GALFIT blocks (:func:`core.fitting.batch.fit_images`)."""

from __future__ import annotations

import argparse

from core.cli.common import add_command
from core.errors import ResxError

HELP = "Fit a single PSF-convolved Sérsic profile to images; write GALFIT-format blocks."


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "fit", HELP, run, workspace=False)
    p.add_argument("images", nargs="+", metavar="IMAGE", help="FITS images (first image HDU is used)")
    p.add_argument("--psf", required=True, help="PSF image (FITS)")
    p.add_argument("--out", required=True, help="output folder; writes <name>_block.fits per image")
    p.add_argument("--sigma", default=None, help="noise map (FITS), one per image or a single file")
    p.add_argument("--mask", default=None, help="bad-pixel mask (FITS, nonzero = masked)")
    p.add_argument("--zeropoint", type=float, default=25.9463, help="magnitude zero point (default F160W AB)")


def per_image(option: str | None, n: int, what: str) -> list[str | None]:
    """One file for every image, or a comma-separated list of one file per image."""
    if option is None:
        return [None] * n
    files = [f for f in option.split(",") if f]
    if len(files) == 1:
        return files * n
    if len(files) != n:
        raise ResxError(f"--{what}: give one file or one per image ({n}), got {len(files)}")
    return files


def run(args: argparse.Namespace) -> int:
    """Fit; 1 when any image failed (each failure is in fit_summary.ecsv)."""
    from core.fitting.batch import SUMMARY_FILE, fit_images

    n = len(args.images)
    table = fit_images(args.images, args.psf, args.out, sigmas=per_image(args.sigma, n, "sigma"),
                       masks=per_image(args.mask, n, "mask"), zeropoint=args.zeropoint)
    failed = int((table["status"] == "failed").sum())
    print(f"fitted {n - failed} of {n} images; blocks in {args.out}"
          + (f"; {failed} failed (see {SUMMARY_FILE})" if failed else ""))
    return 1 if failed else 0
