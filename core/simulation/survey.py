"""A mock CANDELS survey: HST WFC3/F160W stamps of galaxies with the residual classes of Table 1.

``resx simulate --n N --seed S --out DIR`` writes what a team brings to Residual Explorer:

* ``DIR/blocks/<id>.fits`` — one GALFIT block per galaxy (input, model, residual) in the classic
  layout of :func:`core.io.galfit.write_block`. **The model and residual come from
  :func:`core.fitting.fit.fit_sersic` run on the simulated image, never from the truth**, so the
  residuals carry the real over- and under-fit patterns of a single-Sérsic fit (a central point
  source leaves a positive core inside a negative ring, spiral arms leave a ±pattern, ...). The
  fit starts, as GALFIT runs on a SExtractor catalog do, from a rough guess: the truth blurred by
  typical catalog errors (0.5 px, 0.3 mag, 30 % in Rₑ and n, 0.1 in b/a, 15° in PA); neighbours
  are masked by the fitter's own segmentation; no-data pixels (a mosaic edge) are masked.
* ``DIR/catalog.fits`` — one row per galaxy: ``id field ra dec z logmass hmag photflag block
  true_class fit_quality``, the truth (``true_*``, the substructure ``sub_kind``, ``sub_frac``,
  ``sub_snr``, ``sub_snr_res``, ``sub_boost``), the fitted parameters ``gf_*`` and ``status``/``message``.
* ``DIR/votes.csv`` — ``id, inspector, label, comment`` from three simulated inspectors.
* ``DIR/psf.fits`` — the PSF used for the simulation and the fits.
* with ``--preview``, ``DIR/preview_<class>.png`` contact sheets (input / model / residual).

The mock instrument (HST WFC3/IR F160W as drizzled by CANDELS, Koekemoer et al. 2011):

* 0.06″/px, AB zero point 25.9463 (image units e⁻/s).
* PSF: FWHM ≈ 0.18″ (3 px), a Moffat core (β = 3) plus a broad Moffat wing holding 15 % of the
  light (WFC3/IR's PSF has strong wings: ~20 % of the light beyond 0.4″); 41×41 px.
* Sky noise: per-pixel rms :data:`SKY_SIGMA` = 0.005 e⁻/s/px with the pixel correlation of
  drizzled data (:mod:`core.simulation.noise`; Casertano ratio R = 2.12 for pixfrac 0.8, 0.06″ from 0.128″).
  Why 0.005: the 5σ point-source limit in an r = 0.17″ aperture (25.2 px, encircled energy
  ≈ 0.63) is then 5 × 0.005 × 2.12 × √25.2 / 0.63 = 0.42 e⁻/s, i.e. H ≈ 26.9 AB, close to the
  2-orbit CANDELS/Wide depth (H ≈ 27.0, Grogin et al. 2011). It varies by ±8 % (lognormal) from
  galaxy to galaxy, as the depth of a mosaic does.
* Source Poisson noise for an effective exposure :data:`EXPTIME` = 1900 s (≈ 4/3 orbit of F160W).

Classes and their substructure (generators in :mod:`core.simulation.substructure`). Inspectors label what
they *see*, so a class's strength is drawn as the S/N of its substructure over the sky
(log-uniform, :data:`_STRENGTH`; noise = sky and the host's Poisson noise), turned into a fraction
of the host's flux and clipped to a physical range, so that some of every class are marginal. The fit then absorbs part of it (a central point
source into a higher Sérsic n, a lopsided lobe into a shifted centre), so the S/N of what is left
in the residual's central 50×50 px is measured (``sub_snr_res``) and, where it is below a per-class
floor of visibility (:data:`_VISIBLE_SNR`, justified there), the substructure is scaled up to just
above the floor and the galaxy refitted (``sub_boost``; at most to the physical :data:`_MAX_FRAC`):
every galaxy labelled with substructure shows it, marginal ones near the floor:

* Clean — none.
* General — symmetric spiral arms and/or disk clumps in a disk host (S/N 12–150, 8–60 % of the host).
* Core — a point source at the centre, sometimes two close ones, in a resolved host
  (S/N 8–120, 2–80 %).
* Asymmetric — an off-centre concentrated clump or a diffuse lopsided lobe, sometimes with a weak
  central point source (S/N 8–120, 3–80 %).
* Peculiar — tidal tails, multiple nuclei and diffuse asymmetric light (S/N 20–250, 25–100 %).
* FitQuality — any of the above, but the mosaic edge crosses the stamp or a bright star
  (H 15.5–18.5, with diffraction spikes) sits nearby.

Reproducibility: galaxy ``i`` draws everything from ``SeedSequence(seed, spawn_key=(i,))``, so the
result depends on the seed and ``n`` only, not on the number of workers or the scheduler. Classes
are apportioned exactly to the fractions (largest remainder), then shuffled with the seed.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from core.labels import CLASSES, FIT_QUALITY, TABLE1_FRACTIONS
from core.simulation import noise, substructure
from core.simulation.errors import SimulationError
from core.simulation.inspectors import simulate_votes, write_votes

log = logging.getLogger(__name__)

__all__ = [
    "EXPTIME",
    "FIELDS",
    "PIXEL_SCALE",
    "PSF_FWHM",
    "SKY_SIGMA",
    "ZEROPOINT",
    "assign_classes",
    "galaxy_id",
    "galaxy_rng",
    "simulate_galaxy",
    "simulate_survey",
    "wfc3_psf",
    "write_previews",
]

#: Pixel scale of CANDELS WFC3/IR mosaics, arcsec/px.
PIXEL_SCALE = 0.06
#: F160W AB zero point for images in e⁻/s.
ZEROPOINT = 25.9463
#: PSF full width at half maximum, px (0.18″).
PSF_FWHM = 3.0
#: Per-pixel sky rms, e⁻/s/px (2-orbit CANDELS/Wide depth; see the module docstring).
SKY_SIGMA = 0.005
#: Effective exposure time for the source Poisson noise, s.
EXPTIME = 1900.0

#: CANDELS fields and the approximate centres of their H-band mosaics (ra, dec in degrees).
FIELDS: dict[str, tuple[float, float]] = {
    "GOODS-S": (53.122, -27.805),
    "GOODS-N": (189.228, 62.238),
    "UDS": (34.406, -5.200),
    "COSMOS": (150.116, 2.301),
    "EGS": (214.825, 52.825),
}

#: Probability that the host of a class is a spheroid (n ≈ 2–6) rather than a disk (n ≈ 0.5–2.5).
_P_SPHEROID = {"Clean": 0.45, "General": 0.0, "Core": 0.3, "Asymmetric": 0.3, "Peculiar": 0.1,
               FIT_QUALITY: 0.35}

#: Strength of the substructure per class: (S/N low, S/N high, flux fraction low, high). The S/N
#: of the PSF-convolved substructure over the sky (matched filter, deflated by the noise
#: correlation) is drawn log-uniformly in [low, high], then the flux fraction of the host that gives
#: it is clipped to the physical range. Labels by eye follow visibility, so the S/N, not the flux
#: fraction, decides what an inspector calls it; below S/N ≈ 10 a substructure is marginal.
_STRENGTH: dict[str, tuple[float, float, float, float]] = {
    "General": (12.0, 150.0, 0.08, 0.6),
    "Core": (8.0, 120.0, 0.02, 0.8),
    "Asymmetric": (8.0, 120.0, 0.03, 0.8),
    "Peculiar": (20.0, 250.0, 0.25, 1.0),
}

#: Side (px) of the stamp an inspector looks at (``prep.cutout``, the paper's 50×50) around the centre.
VISIBLE_BOX = 50
#: Floor on the S/N of what the single-Sérsic fit leaves of a class's substructure in the residual
#: (:func:`_residual_snr`: matched filter over the central :data:`VISIBLE_BOX` px). Table 1's
#: classes are what inspectors *see*, so a galaxy labelled with substructure must show it. By the
#: Rose criterion a feature is detected by eye at an integrated S/N of ≈ 5 over its area; to
#: *classify* it one must also see its shape and place: an off-centre blob or a central core takes
#: about twice that (≈ 10–12, a few 3σ resolution elements); a symmetric arm/clump pattern needs
#: ~2σ in each of some 30–50 resolution elements along the arms (≈ 15–20); a Peculiar galaxy is
#: *strongly* disturbed by definition (≥ 25). Galaxies below the floor after the fit get their
#: substructure scaled up to 1.05–1.35× the floor (so marginal cases stay marginal), refitting at
#: most :data:`_MAX_BOOSTS` times.
_VISIBLE_SNR: dict[str, float] = {"General": 18.0, "Core": 12.0, "Asymmetric": 12.0, "Peculiar": 25.0}
_MAX_BOOSTS = 2
#: The most a boost may raise a substructure's flux fraction to (of the host's flux): a nucleus
#: up to 1.5× its host (an AGN-dominated core), arms/clumps and off-centre light up to the host's own.
_MAX_FRAC: dict[str, float] = {"General": 1.0, "Core": 1.5, "Asymmetric": 1.0, "Peculiar": 1.5}

#: Host magnitude range per class (number counts dN/dm ∝ 10^(0.25 m) within it).
_MAG_RANGE: dict[str, tuple[float, float]] = {
    "Clean": (20.0, 24.5), "General": (19.8, 23.5), "Core": (19.8, 23.5), "Asymmetric": (20.0, 24.0),
    "Peculiar": (19.8, 23.5), FIT_QUALITY: (20.0, 24.0),
}

_CATALOG_COLUMNS: dict[str, Any] = {
    # name: fill value for a failed galaxy (the type is taken from it)
    "id": "", "field": "", "ra": math.nan, "dec": math.nan, "z": math.nan, "logmass": math.nan,
    "hmag": math.nan, "photflag": 0, "block": "", "true_class": "", "fit_quality": False,
    "true_xc": math.nan, "true_yc": math.nan, "true_mag": math.nan, "true_re": math.nan,
    "true_n": math.nan, "true_ar": math.nan, "true_pa": math.nan, "true_spheroid": False,
    "true_sky_sigma": math.nan, "sub_class": "", "sub_kind": "", "sub_frac": 0.0,
    "sub_snr": 0.0, "sub_snr_res": 0.0, "sub_boost": 1.0, "fq_kind": "", "n_neighbours": 0, "n_stars": 0,
    "gf_xc": math.nan, "gf_yc": math.nan, "gf_mag": math.nan, "gf_re": math.nan,
    "gf_n": math.nan, "gf_ar": math.nan, "gf_pa": math.nan, "gf_sky": math.nan,
    "gf_converged": False, "status": "", "message": "",
}


# -- seeds and ids ----------------------------------------------------------------------------
def galaxy_id(index: int) -> str:
    """The id of galaxy ``index`` (0-based): ``"SIM00001"`` for 0."""
    return f"SIM{index + 1:05d}"


def galaxy_rng(seed: int, index: int) -> np.random.Generator:
    """The random generator of galaxy ``index``: ``SeedSequence(seed, spawn_key=(index,))``.

    Identical to ``SeedSequence(seed).spawn(index + 1)[index]``, without spawning the others.
    """
    return np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(int(index),)))


def assign_classes(n: int, seed: int, fractions: Mapping[str, float] = TABLE1_FRACTIONS) -> list[str]:
    """Classes of ``n`` galaxies in exactly the given proportions (largest remainder), shuffled.

    Parameters
    ----------
    n : int
    seed : int
    fractions : mapping of label -> fraction
        Labels from :data:`core.labels.CLASSES` and ``"FitQuality"``; normalised to sum 1.

    Returns
    -------
    list of str
    """
    labels = list(fractions)
    unknown = [c for c in labels if c not in CLASSES + (FIT_QUALITY,)]
    if unknown:
        raise ValueError(f"unknown classes in fractions: {unknown}")
    w = np.array([max(float(fractions[c]), 0.0) for c in labels])
    if not w.sum() > 0:
        raise ValueError("class fractions must have a positive sum")
    exact = n * w / w.sum()
    counts = np.floor(exact).astype(int)
    order = np.argsort(-(exact - counts), kind="stable")
    counts[order[: n - counts.sum()]] += 1
    out = np.repeat(np.array(labels, dtype=object), counts)
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0]))
    rng.shuffle(out)
    return [str(c) for c in out]


# -- the instrument ---------------------------------------------------------------------------
def _moffat(size: int, fwhm: float, beta: float, oversample: int = 5) -> np.ndarray:
    alpha = fwhm / (2.0 * np.sqrt(2.0 ** (1.0 / beta) - 1.0))
    offs = (np.arange(oversample) + 0.5) / oversample - 0.5
    c = (np.arange(size) - size // 2)[:, None] + offs[None, :]
    x = c.ravel()
    r2 = x[None, :] ** 2 + x[:, None] ** 2
    img = (1.0 + r2 / alpha**2) ** (-beta)
    return img.reshape(size, oversample, size, oversample).mean(axis=(1, 3))


#: The PSF model: (weight, FWHM factor, Moffat beta) of its two components.
_PSF_COMPONENTS = ((0.85, 0.93, 3.0), (0.15, 2.2, 2.0))


@lru_cache(maxsize=8)
def _psf_cached(size: int, fwhm: float) -> np.ndarray:
    psf = np.zeros((size, size))
    for w, kf, beta in _PSF_COMPONENTS:
        m = _moffat(size, fwhm * kf, beta)
        psf += w * m / m.sum()
    psf /= psf.sum()
    psf.setflags(write=False)
    return psf


def _star_image(shape: tuple[int, int], x0: float, y0: float, flux: float,
                fwhm: float = PSF_FWHM, oversample: int = 3) -> np.ndarray:
    """A star rendered with the analytic PSF model over the whole stamp (1-based ``x0, y0``).

    Bright stars need the PSF's wings beyond the 41×41 PSF image; the Moffat components are
    normalised analytically (total ``flux`` when integrated to infinity).
    """
    ny, nx = shape
    offs = (np.arange(oversample) + 0.5) / oversample - 0.5
    xs = ((np.arange(nx) + 1.0)[:, None] + offs[None, :]).ravel() - x0
    ys = ((np.arange(ny) + 1.0)[:, None] + offs[None, :]).ravel() - y0
    r2 = xs[None, :] ** 2 + ys[:, None] ** 2
    img = np.zeros_like(r2)
    for w, kf, beta in _PSF_COMPONENTS:
        alpha = fwhm * kf / (2.0 * np.sqrt(2.0 ** (1.0 / beta) - 1.0))
        img += w * (beta - 1.0) / (np.pi * alpha**2) * (1.0 + r2 / alpha**2) ** (-beta)
    return flux * img.reshape(ny, oversample, nx, oversample).mean(axis=(1, 3))


def wfc3_psf(size: int = 41, fwhm: float = PSF_FWHM) -> np.ndarray:
    """A WFC3/F160W-like PSF: Moffat core (β = 3) + broad Moffat wing (β = 2, 15 % of the light).

    Parameters
    ----------
    size : int
        Side in pixels (odd; the centre is pixel ``size // 2``).
    fwhm : float
        Full width at half maximum in pixels of the combined profile (≈; the core's is 0.93×).

    Returns
    -------
    numpy.ndarray
        (size, size) float64, unit sum, read-only.
    """
    if size % 2 == 0 or size < 5:
        raise ValueError(f"PSF size must be odd and >= 5, got {size}")
    return _psf_cached(int(size), float(fwhm))


# -- drawing hosts ----------------------------------------------------------------------------
def _powerlaw_mag(rng: np.random.Generator, lo: float, hi: float, slope: float = 0.25) -> float:
    """A magnitude with number counts ``dN/dm ∝ 10**(slope m)`` on [lo, hi] (inverse CDF)."""
    a, b = 10.0 ** (slope * lo), 10.0 ** (slope * hi)
    return float(np.log10(a + rng.random() * (b - a)) / slope)


def _flux(mag: float) -> float:
    return 10.0 ** (-0.4 * (mag - ZEROPOINT))


def _size_px(rng: np.random.Generator, mag: float, spheroid: bool) -> float:
    """Effective radius (px) from a size–magnitude relation with 0.18 dex scatter.

    Disks at H = 22 have re ≈ 7 px (0.42″, ≈ 3.5 kpc at z ≈ 2, van der Wel et al. 2014);
    spheroids are 0.55× smaller; 0.12 dex per magnitude fainter.
    """
    log_re = np.log10(7.0) - 0.12 * (mag - 22.0) + rng.normal(0.0, 0.18)
    re = 10.0**log_re * (0.55 if spheroid else 1.0)
    return float(np.clip(re, 1.5, 25.0))


def _draw_host(rng: np.random.Generator, cls: str, size: int) -> dict[str, Any]:
    # Substructure is seen (and labelled) in brighter hosts: in a faint compact host a central
    # point source or a spiral pattern is absorbed by the Sérsic fit and the residual looks Clean.
    lo, hi = _MAG_RANGE.get(cls, (20.0, 24.5))
    mag = _powerlaw_mag(rng, lo, hi)
    spheroid = bool(rng.random() < _P_SPHEROID[cls])
    if spheroid:
        n = float(np.clip(rng.lognormal(np.log(3.5), 0.25), 2.0, 6.0))
        ar = float(rng.uniform(0.45, 1.0))
    else:
        n = float(np.clip(rng.lognormal(np.log(1.0), 0.3), 0.5, 2.5))
        cosi = rng.uniform(0.15 if cls == "General" else 0.0, 1.0)
        q0 = 0.2  # intrinsic disk thickness
        ar = float(np.sqrt(cosi**2 * (1.0 - q0**2) + q0**2))
    if cls == "General":
        n = float(np.clip(n, 0.6, 1.6))
    # spirals and cores are seen (and labelled) in resolved hosts: a compact host hides them
    re = _size_px(rng, mag, spheroid) * (1.3 if cls in ("General", "Core") else 1.0)
    c = size // 2 + 1.0
    return {
        "true_xc": c + float(rng.uniform(-0.5, 0.5)),
        "true_yc": c + float(rng.uniform(-0.5, 0.5)),
        "true_mag": mag, "true_re": float(min(re, 25.0)), "true_n": n, "true_ar": ar,
        "true_pa": float(rng.uniform(-90.0, 90.0)), "true_spheroid": spheroid,
    }


def _draw_catalog(rng: np.random.Generator, total_mag: float) -> dict[str, Any]:
    """Field, position, redshift, stellar mass, PhotFlag and catalog H magnitude.

    A few per cent fall outside the paper's cuts on purpose (z < 1 or > 3: 3 %, log M* < 9.5: 3 %,
    PhotFlag = 1: 2 %, catalog H ≥ 24.5: 3 %) so that the cuts have work, independently of the class
    (the Table-1 fractions hold before and, on average, after the cuts). The catalog H is the
    Sérsic total blurred by 0.05 mag, except for those 3 %, whose catalog photometry (as an
    aperture or MAG_AUTO magnitude can be) puts them 0–0.5 mag beyond the cut.
    """
    field = list(FIELDS)[int(rng.integers(len(FIELDS)))]
    ra0, dec0 = FIELDS[field]
    dec = dec0 + rng.uniform(-0.07, 0.07)
    ra = ra0 + rng.uniform(-0.07, 0.07) / np.cos(np.deg2rad(dec))
    u = rng.random()
    if u < 0.015:
        z = rng.uniform(0.6, 1.0)
    elif u < 0.03:
        z = rng.uniform(3.0, 3.6)
    else:
        z = float(np.clip(rng.gamma(6.0, 0.3) + 0.3, 1.0, 3.0))
    hmag = total_mag + rng.normal(0.0, 0.05)
    if rng.random() < 0.03:
        hmag = max(hmag, 24.5 + rng.uniform(0.0, 0.5))
    if rng.random() < 0.03:
        logm = rng.uniform(9.0, 9.5)
    else:
        logm = 9.5 + abs(0.4 * (24.5 - hmag) + 0.3 * (z - 1.0) + rng.normal(0.0, 0.3))
    photflag = int(rng.random() < 0.02)
    return {"field": field, "ra": float(ra), "dec": float(dec), "z": float(z),
            "logmass": float(logm), "hmag": float(hmag), "photflag": photflag}


# -- substructure per class -------------------------------------------------------------------
def _substructure(rng: np.random.Generator, cls: str, shape: tuple[int, int],
                  host: dict[str, Any]) -> tuple[np.ndarray, str]:
    """Extra light of class ``cls`` (unit flux, not PSF-convolved) and a name for its kind."""
    xc, yc, re = host["true_xc"], host["true_yc"], host["true_re"]
    ar, pa = host["true_ar"], host["true_pa"]
    ss = substructure
    if cls == "Clean":
        return np.zeros(shape), "none"
    if cls == "General":
        u = rng.random()
        if u < 0.55:
            img, kind = ss.spiral_arms(shape, xc, yc, re, ar, pa, rng), "spiral"
        elif u < 0.85:
            img, kind = ss.disk_clumps(shape, xc, yc, re, ar, pa, rng), "clumps"
        else:
            img = 0.6 * ss.spiral_arms(shape, xc, yc, re, ar, pa, rng) + 0.4 * ss.disk_clumps(
                shape, xc, yc, re, ar, pa, rng)
            kind = "spiral+clumps"
        return img, kind
    if cls == "Core":
        if rng.random() < 0.15:
            d = rng.uniform(1.5, 3.0)
            a = rng.uniform(0, 2 * np.pi)
            w = rng.uniform(0.5, 0.8)
            xs = [xc + rng.normal(0, 0.3), xc + d * np.cos(a)]
            ys = [yc + rng.normal(0, 0.3), yc + d * np.sin(a)]
            return ss.point_sources(shape, xs, ys, [w, 1 - w]), "double_point"
        img = ss.point_sources(shape, [xc + rng.normal(0, 0.3)], [yc + rng.normal(0, 0.3)], [1.0])
        return img, "point"
    if cls == "Asymmetric":
        if rng.random() < 0.45:
            img, kind = ss.offcentre_clump(shape, xc, yc, re, rng), "offcentre_clump"
        else:
            img, kind = ss.diffuse_lobe(shape, xc, yc, re, rng), "diffuse_lobe"
        if rng.random() < 0.3:
            w = rng.uniform(0.15, 0.4)
            img = (1 - w) * img + w * ss.point_sources(shape, [xc], [yc], [1.0])
            kind += "+core"
        return img, kind
    if cls == "Peculiar":
        parts, kinds = [], []
        tails = rng.random() < 0.75
        nuclei = (not tails) or rng.random() < 0.5
        if tails:
            parts.append(ss.tidal_tails(shape, xc, yc, re, rng))
            kinds.append("tails")
        if nuclei:
            k = 2 if rng.random() < 0.3 else 1
            d = np.maximum(rng.uniform(0.4, 1.5, size=k) * re, 3.0)
            a = rng.uniform(0, 2 * np.pi, size=k)
            blobs = ss.gaussian_blobs(shape, xc + d * np.cos(a), yc + d * np.sin(a),
                                      rng.uniform(0.7, 1.5, size=k), rng.uniform(0.5, 1.0, size=k))
            parts.append(blobs / blobs.sum())
            kinds.append("nuclei")
        if rng.random() < 0.5:
            parts.append(ss.diffuse_lobe(shape, xc, yc, re, rng))
            kinds.append("lobe")
        w = rng.dirichlet(np.full(len(parts), 2.0))
        return sum(wi * p for wi, p in zip(w, parts)), "+".join(kinds)
    raise ValueError(f"no substructure for class {cls!r}")


# -- one galaxy -------------------------------------------------------------------------------
def _render_scene(rng: np.random.Generator, cls: str, size: int, psf: np.ndarray,
                  row: dict[str, Any]) -> dict[str, Any]:
    """Draw host, substructure, neighbours and the noise's seed. Fills truth columns of ``row``.

    Returns the noiseless PSF-convolved parts of the scene (``galaxy``, ``sub``, ``rest``), the
    noise's parameters and the no-data mask (or None): :func:`_compose` makes the image.
    """
    from core.fitting.sersic import PSFConvolver, sersic_image

    shape = (size, size)
    host = _draw_host(rng, cls, size)
    row.update(host)
    sub_cls = cls
    if cls == FIT_QUALITY:
        five = [c for c in CLASSES if TABLE1_FRACTIONS.get(c, 0) > 0]
        w = np.array([TABLE1_FRACTIONS[c] for c in five])
        sub_cls = str(rng.choice(five, p=w / w.sum()))
    row["sub_class"] = sub_cls
    conv = PSFConvolver(psf, shape)
    kernel = noise.drizzle_kernel()
    r_corr = noise.kernel_ratio(kernel)
    sky_sigma = SKY_SIGMA * float(np.exp(rng.normal(0.0, 0.08)))
    galaxy = sersic_image(shape, host["true_xc"], host["true_yc"], host["true_mag"], host["true_re"],
                          host["true_n"], host["true_ar"], host["true_pa"], ZEROPOINT)
    f_host = _flux(host["true_mag"])
    galaxy_c = conv(galaxy)
    sub, kind = _substructure(rng, sub_cls, shape, host)
    frac = 0.0
    sub_c = np.zeros(shape)
    if sub_cls in _STRENGTH:
        # strength: a target S/N of the substructure over the sky, within physical flux fractions
        snr_lo, snr_hi, f_lo, f_hi = _STRENGTH[sub_cls]
        target = float(np.exp(rng.uniform(np.log(snr_lo), np.log(snr_hi))))
        unit = conv(sub) * f_host  # the substructure at 100 % of the host's flux, convolved
        rms0 = np.sqrt(sky_sigma**2 + np.clip(galaxy_c, 0.0, None) / EXPTIME)
        snr_unit = float(np.sqrt(np.sum((unit / rms0) ** 2)) / r_corr)
        frac = float(np.clip(target / max(snr_unit, 1e-12), f_lo, f_hi))
        sub_c = unit * frac
    row.update(sub_kind=kind, sub_frac=frac)
    total = f_host * (1.0 + frac)
    row.update(_draw_catalog(rng, ZEROPOINT - 2.5 * np.log10(total)))

    # neighbours and interlopers, kept away from the galaxy's centre
    others = np.zeros(shape)
    cx, cy = host["true_xc"], host["true_yc"]
    rmin = max(12.0, 3.0 * host["true_re"])

    def position():
        for _ in range(50):
            x, y = rng.uniform(1.0, size, size=2)
            if math.hypot(x - cx, y - cy) >= rmin:
                return float(x), float(y)
        return None

    n_nb = int(rng.poisson(1.0))
    for _ in range(n_nb):
        pos = position()
        mag = _powerlaw_mag(rng, 21.5, 26.5, 0.3)
        sph = bool(rng.random() < 0.35)
        nn = float(np.clip(rng.lognormal(np.log(3.5 if sph else 1.0), 0.3), 0.5, 6.0))
        re_nb = _size_px(rng, mag, sph)
        ar_nb, pa_nb = float(rng.uniform(0.25, 1.0)), float(rng.uniform(-90, 90))
        if pos is not None:
            others += sersic_image(shape, pos[0], pos[1], mag, re_nb, nn, ar_nb, pa_nb, ZEROPOINT)
    stars = np.zeros(shape)  # rendered with the analytic PSF, not convolved again
    n_st = int(rng.random() < 0.1)
    for _ in range(n_st):
        pos = position()
        mag = rng.uniform(18.0, 24.0)
        if pos is not None:
            stars += _star_image(shape, pos[0], pos[1], _flux(mag))
    fq_mask = None
    if cls == FIT_QUALITY:
        if rng.random() < 0.5:
            row["fq_kind"] = "edge"
            fq_mask = substructure.edge_mask(shape, cx, cy, rng)
        else:
            row["fq_kind"] = "bright_star"
            d, a = rng.uniform(15.0, 35.0), rng.uniform(0, 2 * np.pi)
            sx, sy = cx + d * np.cos(a), cy + d * np.sin(a)
            fs = _flux(rng.uniform(15.5, 18.5))
            stars += _star_image(shape, sx, sy, fs)
            others += substructure.diffraction_spikes(shape, sx, sy, fs, rng.uniform(0, 90))
            n_st += 1
    row.update(n_neighbours=n_nb, n_stars=n_st)

    parts = {"galaxy": galaxy_c, "sub": sub_c, "rest": conv(others) + stars, "sky_sigma": sky_sigma,
             "kernel": kernel, "r_corr": r_corr, "mask": fq_mask,
             # the noise is drawn from its own stream so that a rescaled substructure
             # (:func:`_compose`) keeps the same noise realisation
             "noise_seed": int(rng.integers(0, 2**63 - 1)),
             "sky_offset": float(rng.normal(0.0, 0.2 * sky_sigma))}
    row["true_sky_sigma"] = sky_sigma
    return parts


def _compose(parts: dict[str, Any], row: dict[str, Any],
             boost: float = 1.0) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """The noisy image of a rendered scene with its substructure scaled by ``boost``.

    Returns the image (e⁻/s), its per-pixel noise rms map and the no-data mask (or None); sets
    ``row["sub_snr"]``, the matched-filter S/N of the substructure over the total noise, deflated
    by the noise correlation.
    """
    sub_c = parts["sub"] * boost
    scene = parts["galaxy"] + parts["rest"] + sub_c
    rms = np.sqrt(parts["sky_sigma"] ** 2 + np.clip(scene, 0.0, None) / EXPTIME)
    nrng = np.random.default_rng(parts["noise_seed"])
    image = scene + noise.correlated_noise(scene.shape, rms, nrng, parts["kernel"]) + parts["sky_offset"]
    row["sub_snr"] = float(np.sqrt(np.sum((sub_c / rms) ** 2)) / parts["r_corr"])
    if parts["mask"] is not None:
        image[parts["mask"]] = 0.0
    return image, rms, parts["mask"]


def _residual_snr(parts: dict[str, Any], boost: float, model_no_sky: np.ndarray, rms: np.ndarray,
                  box: int = VISIBLE_BOX) -> float:
    """S/N of what the fit leaves of the galaxy and its substructure in the inspector's stamp.

    The noiseless residual ``host + boost × substructure − fitted model`` (neighbours and stars
    excluded: they are the segmentation's business) in the central ``box`` × ``box`` px, summed in
    quadrature over the noise rms (matched filter) and deflated by the noise correlation; no-data
    pixels do not count.
    """
    sig = (parts["galaxy"] + boost * parts["sub"] - model_no_sky) / rms
    if parts["mask"] is not None:
        sig = np.where(parts["mask"], 0.0, sig)
    ny, nx = sig.shape
    j0, i0 = max(ny // 2 - box // 2, 0), max(nx // 2 - box // 2, 0)
    cen = sig[j0:j0 + box, i0:i0 + box]
    return float(np.sqrt(np.sum(cen**2)) / parts["r_corr"])


def _fit_init(rng: np.random.Generator, row: dict[str, Any], size: int) -> dict[str, float]:
    """A starting guess like a SExtractor catalog gives: the truth blurred by typical errors."""
    return {
        "XC": row["true_xc"] + rng.normal(0, 0.5), "YC": row["true_yc"] + rng.normal(0, 0.5),
        "MAG": row["true_mag"] + rng.normal(0, 0.3),
        "RE": float(np.clip(row["true_re"] * np.exp(rng.normal(0, 0.3)), 1.0, size / 2)),
        "N": float(np.clip(row["true_n"] * np.exp(rng.normal(0, 0.3)), 0.5, 6.0)),
        "AR": float(np.clip(row["true_ar"] + rng.normal(0, 0.1), 0.1, 1.0)),
        "PA": row["true_pa"] + rng.normal(0, 15.0),
    }


def simulate_galaxy(index: int, seed: int, cls: str, out: str | Path, size: int = 100) -> dict[str, Any]:
    """Simulate, fit and write galaxy ``index``; return its catalog row.

    Never raises for a problem with this galaxy: the row's ``status`` is ``"ok"`` or ``"error"``
    and ``message`` says what went wrong (a fit that did not converge is ``"ok"`` with
    ``gf_converged = False`` and the fitter's message, as GALFIT would still write its block).

    Parameters
    ----------
    index : int
        0-based index; the id is :func:`galaxy_id` ``(index)`` and the random stream
        :func:`galaxy_rng` ``(seed, index)``.
    seed : int
    cls : str
        One of :data:`core.labels.CLASSES` or ``"FitQuality"``.
    out : path
        Survey folder; the block goes to ``out/blocks/<id>.fits``.
    size : int
        Stamp side, px.

    Returns
    -------
    dict
        One catalog row (keys of the catalog columns).
    """
    from core.io.galfit import GalfitParameter, write_block

    gid = galaxy_id(index)
    row = dict(_CATALOG_COLUMNS)
    row.update(id=gid, true_class=cls, fit_quality=cls == FIT_QUALITY,
               block=f"blocks/{gid}.fits")
    try:
        from core.fitting.fit import fit_sersic

        rng = galaxy_rng(seed, index)
        psf = wfc3_psf()
        parts = _render_scene(rng, cls, size, psf, row)
        init = _fit_init(rng, row, size)
        floor = _VISIBLE_SNR.get(str(row["sub_class"]))
        boost = prev_boost = 1.0
        for attempt in range(_MAX_BOOSTS + 1):
            image, rms, nodata = _compose(parts, row, boost)
            # the galaxy is at init by construction: fitted there even when too faint to detect
            fit = fit_sersic(image, psf, mask=nodata, sigma=rms, zeropoint=ZEROPOINT, init=init,
                             target_radius=None)
            model = _model_with_sky(fit)
            sky = float(fit.sky) if fit.sky is not None else 0.0
            snr_res = _residual_snr(parts, boost, model - sky, rms)
            if floor is None or snr_res >= floor or attempt == _MAX_BOOSTS:
                break
            # invisible in the residual: scale the substructure up to just above the floor
            # (the fit absorbs a roughly constant part of it, so the residual S/N scales with it)
            boost *= min(floor / max(snr_res, 1e-3) * float(rng.uniform(1.05, 1.35)), 20.0)
            cap = _MAX_FRAC[str(row["sub_class"])] / max(float(row["sub_frac"]), 1e-12)
            if boost >= cap:  # no brighter than physical: it stays marginal (a hard case)
                boost = max(cap, 1.0)
                if boost == prev_boost:  # the fit in hand is already at the cap
                    break
            prev_boost = boost
            # the refit starts from this fit: the host is the same, only the substructure grew
            init = {k: float(fit.params[k].value) for k in ("XC", "YC", "MAG", "RE", "N", "AR", "PA")}
        if boost != 1.0:
            old_total = 1.0 + float(row["sub_frac"])
            row["sub_frac"] = float(row["sub_frac"]) * boost
            if row["hmag"] < 24.5:  # the catalog-cut fodder stays beyond the cut
                row["hmag"] = float(row["hmag"] - 2.5 * np.log10((1.0 + row["sub_frac"]) / old_total))
        row["sub_snr_res"] = snr_res
        row["sub_boost"] = boost
        params = dict(fit.params)
        if "SKY" not in params and fit.sky is not None:
            params["SKY"] = GalfitParameter(float(fit.sky))
        for name in ("XC", "YC", "MAG", "RE", "N", "AR", "PA"):
            row[f"gf_{name.lower()}"] = float(params[name].value)
        row["gf_sky"] = float(fit.sky) if fit.sky is not None else math.nan
        row["gf_converged"] = bool(fit.converged)
        path = Path(out) / row["block"]
        path.parent.mkdir(parents=True, exist_ok=True)
        write_block(path, image, model, None, params, ZEROPOINT,
                    extra_header={"DATAIN": (f"{gid}.fits", "simulated input image"),
                                  "PSF": ("psf.fits", "PSF image"),
                                  "PIXSCALE": (PIXEL_SCALE, "arcsec/px (prep cuts 3 arcsec: 50 px)"),
                                  "SIMCLASS": (cls, "resx simulate: true class"),
                                  "SIMSEED": (int(seed), "resx simulate: survey seed")},
                    input_name=f"{gid}.fits")
        row["status"] = "ok"
        row["message"] = "" if fit.converged else str(fit.message)
    except Exception as exc:  # one bad galaxy never stops the survey
        log.warning("galaxy %s failed: %s: %s", gid, type(exc).__name__, exc)
        row["status"] = "error"
        row["message"] = f"{type(exc).__name__}: {exc}"
    return row


def _model_with_sky(fit: Any) -> np.ndarray:
    """The fitted model image including the sky (GALFIT's model HDU includes the sky component)."""
    model = np.asarray(fit.model, dtype=np.float64)
    if not getattr(fit, "model_includes_sky", True) and fit.sky is not None:
        model = model + float(fit.sky)
    return model


def _simulate_chunk(indices: list[int], classes: list[str], seed: int, out: str, size: int) -> list[dict]:
    return [simulate_galaxy(i, seed, c, out, size) for i, c in zip(indices, classes)]


# -- previews -----------------------------------------------------------------------------------
def write_previews(out: str | Path, catalog: Any, per_class: int = 8) -> list[Path]:
    """Contact sheets ``out/preview_<class>.png``: input, model and residual of a few galaxies.

    Input and model share an asinh stretch (from −1.5σ of the sky to the 99.9th percentile of the
    input's central 40×40 px); the residual has a symmetric linear stretch of ±max(6σ, 99th percentile of
    |residual| in the central 40×40 px) on a diverging colour map. Galaxies are the first
    ``per_class`` successful ones of each class, in catalog order.

    Returns
    -------
    list of Path
        The files written.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from astropy.visualization import AsinhStretch, ImageNormalize, LinearStretch

    from core.io.galfit import read_block

    out = Path(out)
    written = []
    for cls in CLASSES + (FIT_QUALITY,):
        rows = [r for r in catalog if str(r["true_class"]) == cls and str(r["status"]) == "ok"][:per_class]
        if not rows:
            continue
        ncol = len(rows)
        fig, axes = plt.subplots(3, ncol, figsize=(1.6 * ncol + 0.6, 5.3), squeeze=False)
        for k, r in enumerate(rows):
            blk = read_block(out / str(r["block"]))
            sig = float(r["true_sky_sigma"]) if np.isfinite(r["true_sky_sigma"]) else SKY_SIGMA
            ny, nx = blk.input.shape
            cen = (slice(max(ny // 2 - 20, 0), ny // 2 + 20), slice(max(nx // 2 - 20, 0), nx // 2 + 20))
            vmax = max(float(np.percentile(blk.input[cen], 99.9)), 10 * sig)
            norm = ImageNormalize(vmin=-1.5 * sig, vmax=vmax, stretch=AsinhStretch(0.05))
            rmax = max(6 * sig, float(np.percentile(np.abs(blk.residual[cen]), 99)))
            rnorm = ImageNormalize(vmin=-rmax, vmax=rmax, stretch=LinearStretch())
            for j, (img, nm, cmap) in enumerate(((blk.input, norm, "gray"), (blk.model, norm, "gray"),
                                                 (blk.residual, rnorm, "RdBu_r"))):
                ax = axes[j, k]
                ax.imshow(img, origin="lower", cmap=cmap, norm=nm, interpolation="nearest")
                ax.set_xticks([])
                ax.set_yticks([])
            axes[0, k].set_title(f"{r['id']}\nH={float(r['hmag']):.1f} {str(r['sub_kind'])[:14]}\n"
                                 f"f={float(r['sub_frac']):.2f} S/N={float(r['sub_snr']):.0f}", fontsize=7)
        for j, lab in enumerate(("input", "model", "residual")):
            axes[j, 0].set_ylabel(lab)
        fig.suptitle(f"{cls} (simulated, single-Sérsic fits)", fontsize=10)
        fig.subplots_adjust(left=0.06, right=0.99, bottom=0.01, top=0.80, wspace=0.04, hspace=0.04)
        path = out / f"preview_{cls}.png"
        fig.savefig(path, dpi=90)
        plt.close(fig)
        written.append(path)
    return written


# -- the survey ---------------------------------------------------------------------------------
def simulate_survey(
    n: int,
    seed: int,
    out: str | Path,
    size: int = 100,
    agreement: float = 0.8,
    fractions: Mapping[str, float] = TABLE1_FRACTIONS,
    preview: bool = False,
    scheduler: Any = None,
    workers: int | None = None,
    progress: bool = True,
) -> Any:
    """Simulate a survey of ``n`` galaxies into the folder ``out``.

    Writes ``out/blocks/<id>.fits``, ``out/catalog.fits``, ``out/votes.csv``, ``out/psf.fits`` and,
    with ``preview``, ``out/preview_<class>.png`` (see the module docstring).

    Parameters
    ----------
    n : int
        Number of galaxies (> 0).
    seed : int
        Random seed; the same ``(n, seed, size, agreement, fractions)`` give the same survey
        whatever the scheduler and number of workers.
    out : path
        Output folder (created; existing files of the same names are replaced).
    size : int
        Stamp side in pixels (default 100; at least 32).
    agreement : float
        Mean probability that a simulated inspector gives the true class.
    fractions : mapping
        Class fractions (default Table 1 of the paper).
    preview : bool
        Also write the contact sheets.
    scheduler : None, str or distributed.Client
        Dask scheduler (see :func:`core.parallel.run_tasks`); a cluster's workers must see ``out``.
    workers : int, optional
        Local workers (default one per core).
    progress : bool
        Show a progress bar.

    Returns
    -------
    astropy.table.Table
        The catalog (also written to ``out/catalog.fits``).
    """
    from astropy.io import fits
    from astropy.table import Table

    from core.parallel import run_tasks

    if n < 1:
        raise SimulationError(f"n must be at least 1, got {n}")
    if size < 32:
        raise SimulationError(f"stamp size must be at least 32 px, got {size}")
    if not 0.0 <= agreement <= 1.0:
        raise SimulationError(f"agreement must be within [0, 1], got {agreement}")
    out = Path(out)
    (out / "blocks").mkdir(parents=True, exist_ok=True)
    fits.writeto(out / "psf.fits", np.asarray(wfc3_psf(), dtype=np.float32), overwrite=True)
    classes = assign_classes(n, seed, fractions)
    nw = workers or 1
    chunk = max(1, min(4, math.ceil(n / (8 * max(nw, 2)))))
    args = [(list(range(i, min(i + chunk, n))), classes[i:i + chunk], int(seed), str(out), int(size))
            for i in range(0, n, chunk)]
    t0 = time.perf_counter()
    # imported before run_tasks forks its local workers, so they start with the fitter loaded
    import core.fitting.fit  # noqa: F401
    import core.io.galfit  # noqa: F401

    results = run_tasks(_simulate_chunk, args, scheduler=scheduler, workers=workers,
                        progress=progress, desc="simulate", unit="galaxy",
                        weights=[len(a[0]) for a in args])
    rows = [r for chunk_rows in results for r in chunk_rows]
    log.info("simulated %d galaxies in %.1f s", n, time.perf_counter() - t0)
    cat = Table(rows=[[r[k] for k in _CATALOG_COLUMNS] for r in rows], names=list(_CATALOG_COLUMNS))
    cat.meta.update({"SIMSEED": int(seed), "SIMN": int(n), "SIZE": int(size), "PIXSCALE": PIXEL_SCALE,
                     "MAGZPT": ZEROPOINT, "SKYSIG": SKY_SIGMA, "EXPTIME": EXPTIME,
                     "AGREE": float(agreement)})
    cat.write(out / "catalog.fits", overwrite=True)
    write_votes(simulate_votes(cat, agreement, seed), out / "votes.csv")
    if preview:
        write_previews(out, cat)
    return cat
