"""Read and write GALFIT image blocks and parse their header parameters.

A GALFIT image block is a multi-extension FITS file:

====  =============================  =====================================
HDU   classic GALFIT                 GALFITM
====  =============================  =====================================
0     primary (empty, or a copy)     primary
1     input image  (OBJECT = name)   ``INPUT_<band>``
2     model (OBJECT = 'model')       ``MODEL_<band>``
3     residual (OBJECT =             ``RESIDUAL_<band>``
      'residual map')
====  =============================  =====================================

Classic GALFIT writes no EXTNAME: the HDUs are told apart by the ``OBJECT`` keyword and, where
that is absent, by position. GALFITM names them ``INPUT_*``, ``MODEL_*``, ``RESIDUAL_*``.

The model header holds the fitted parameters as strings::

    COMP_1  = 'sersic  '
    1_XC    = '46.5265 +/- 0.0123'     free parameter with its error
    1_MAG   = '*22.9761* +/- *0.0000*' a problem parameter (GALFIT's asterisks)
    2_XC    = '[47.0000]'              a fixed parameter (GALFIT's brackets)

Pixel coordinates (``XC``, ``YC``) are 1-based FITS pixels, as in GALFIT: the centre of the
first pixel is 1.0, so the numpy index is ``value - 1``. GALFIT writes them in the frame of the
input image; when the block holds only the fitted section (``FITSECT = '[x1:x2,y1:y2]'`` of the
block's own size) they are shifted by ``(x1 - 1, y1 - 1)``, and :func:`read_block` returns them in
the block's pixels.

The galaxy of interest
----------------------
A block may hold several components in any order: van der Wel et al. (2012) list the sky first,
the galaxy second and the neighbours after it (all fitted at once); others list a neighbour
first. :func:`choose_component` picks the galaxy's Sérsic component: the one a catalog names,
else the one nearest the catalog's RA/Dec (through the block's WCS), else the one nearest the
block centre (GALFIT cutouts are centred on their target). It says how far the choice lies from
that target and flags a choice it cannot stand behind: no Sérsic component within ``radius`` px
(``goi_component_far``), or a second one within it (``goi_component_ambiguous``). The other
components stay in :attr:`GalfitBlock.components` (their positions help the GOI mask).
"""

from __future__ import annotations

import math
import re
import threading
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np
from astropy.io import fits
from astropy.io.fits.verify import VerifyWarning

from core.errors import ResxError

__all__ = [
    "PARAM_NAMES",
    "FLAGS",
    "GOI_COMPONENT_RADIUS",
    "ComponentChoice",
    "GalfitBlockError",
    "GalfitComponent",
    "GalfitParameter",
    "GalfitBlock",
    "choose_component",
    "parse_parameter",
    "format_parameter",
    "read_block",
    "write_block",
]

#: Sérsic parameters of component 1, in GALFIT's header order.
PARAM_NAMES = ("XC", "YC", "MAG", "RE", "N", "AR", "PA")
#: Parameter flags: fitted freely, held fixed ("[value]"), or flagged by GALFIT ("*value*").
FLAGS = ("free", "fixed", "problem")
#: Default of ``radius`` in :func:`choose_component` (config ``catalog.goi_radius``), px.
GOI_COMPONENT_RADIUS = 5.0

_HEADER_COMMENTS = {
    "XC": "X center [pixel]",
    "YC": "Y center [pixel]",
    "MAG": "Integrated magnitude [mag]",
    "RE": "Effective radius Re [pixels]",
    "N": "Sersic index",
    "AR": "Axis ratio (b/a)",
    "PA": "Position Angle (PA) [degrees: Up=0, Left=90]",
    "SKY": "Sky background [ADUs]",
}


class GalfitBlockError(ResxError, ValueError):
    """A GALFIT block that cannot be read: the message names the file and the problem.

    Attributes
    ----------
    path : str
        The file.
    problem : str
        What is wrong with it.
    """

    def __init__(self, path: str | Path, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


@dataclass(frozen=True)
class GalfitParameter:
    """One fitted parameter as GALFIT reports it.

    Attributes
    ----------
    value : float
        Best-fit value (may be NaN when GALFIT wrote ``nan``).
    error : float
        GALFIT's error estimate; NaN when none was written (e.g. fixed parameters).
    flag : str
        ``"free"``, ``"fixed"`` (GALFIT's ``[value]``) or ``"problem"`` (``*value*``).
    """

    value: float
    error: float = math.nan
    flag: str = "free"

    def __post_init__(self):
        if self.flag not in FLAGS:
            raise ValueError(f"flag must be one of {FLAGS}, not {self.flag!r}")

    def __float__(self) -> float:
        return float(self.value)


# A number as C's printf writes it, including nan/inf in any case and sign.
_NUM = r"[-+]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|nan|inf(?:inity)?)"
_PARAM_RE = re.compile(
    rf"""^\s*
    (?:
        \[\s*(?P<fixed>{_NUM})\s*\]                             # [value]
      |
        (?P<vstar>\*)?\s*(?P<value>{_NUM})\s*(?P=vstar)?       # value or *value*
        (?:\s*\+/-\s*(?P<estar>\*)?\s*(?P<error>{_NUM})\s*(?P=estar)?)?   # +/- error, *error*
    )
    \s*$""",
    re.IGNORECASE | re.VERBOSE,
)


def parse_parameter(text: Any) -> GalfitParameter:
    """Parse one GALFIT header parameter string.

    Parameters
    ----------
    text : str or number
        ``"46.5265 +/- 0.0123"``, ``"*12.3* +/- *0.5*"``, ``"[1.0000]"``, ``"nan +/- nan"``,
        a bare ``"12.3"``, or a number (a header value astropy already converted).

    Returns
    -------
    GalfitParameter
        Flag ``"problem"`` when the value or its error is wrapped in asterisks, ``"fixed"``
        when the value is in square brackets, ``"free"`` otherwise.

    Raises
    ------
    ValueError
        If the string is not in any form GALFIT writes.

    Examples
    --------
    >>> parse_parameter("*2.6233* +/- *0.0712*")
    GalfitParameter(value=2.6233, error=0.0712, flag='problem')
    >>> parse_parameter("[47.0000]")
    GalfitParameter(value=47.0, error=nan, flag='fixed')
    """
    if isinstance(text, (bool, np.bool_)):
        raise ValueError(f"not a GALFIT parameter: {text!r}")
    if isinstance(text, (int, float, np.integer, np.floating)):
        return GalfitParameter(float(text))
    if not isinstance(text, str):
        raise ValueError(f"not a GALFIT parameter: {text!r}")
    m = _PARAM_RE.match(text)
    if m is None:
        raise ValueError(f"cannot parse GALFIT parameter {text!r}")
    if m["fixed"] is not None:
        return GalfitParameter(float(m["fixed"]), math.nan, "fixed")
    value = float(m["value"])
    error = float(m["error"]) if m["error"] is not None else math.nan
    flag = "problem" if (m["vstar"] or m["estar"]) else "free"
    return GalfitParameter(value, error, flag)


def _fmt(x: float) -> str:
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    if x == 0 or 1e-2 <= abs(x) < 1e5:
        return f"{x:.4f}"
    return f"{x:.4e}"


def format_parameter(param: GalfitParameter | float) -> str:
    """Format a parameter the way GALFIT writes it in the model header.

    ``free`` -> ``"12.3000 +/- 0.0500"``, ``problem`` -> ``"*12.3000* +/- *0.0500*"``,
    ``fixed`` -> ``"[12.3000]"``. A free parameter without an error (NaN) is written as the bare
    value. Values are written with 4 decimals as GALFIT does (``%.4e`` for very small or large
    magnitudes, so e.g. a sky of 3e-4 e-/s survives the round trip).

    Examples
    --------
    >>> format_parameter(GalfitParameter(22.97612, 0.01, "problem"))
    '*22.9761* +/- *0.0100*'
    """
    if not isinstance(param, GalfitParameter):
        param = GalfitParameter(float(param))
    if param.flag == "fixed":
        return f"[{_fmt(param.value)}]"
    star = "*" if param.flag == "problem" else ""
    value = f"{star}{_fmt(param.value)}{star}"
    if math.isnan(param.error) and param.flag == "free":
        return value
    return f"{value} +/- {star}{_fmt(param.error)}{star}"


@dataclass(frozen=True)
class GalfitComponent:
    """One component of a GALFIT model header.

    Attributes
    ----------
    number : int
        GALFIT's number (``COMP_<number>``).
    kind : str
        Its type, lower case: ``"sersic"``, ``"sky"``, ``"psf"``, ``"expdisk"``, ...
    params : dict of str -> GalfitParameter
        Every parameter that parses (``"XC"``, ``"MAG"``, ...; ``XC``/``YC`` in the block's
        1-based pixels).
    keys : dict of str -> str
        The header keyword of each parameter (``{"XC": "2_XC", ...}``).
    unparsable : dict of str -> str
        Parameters whose header value is in no form GALFIT writes (keyword -> value).
    """

    number: int
    kind: str
    params: dict[str, GalfitParameter]
    keys: dict[str, str] = field(default_factory=dict)
    unparsable: dict[str, str] = field(default_factory=dict)

    @property
    def position(self) -> tuple[float, float] | None:
        """``(XC, YC)``, 1-based block pixels; ``None`` for a component without a finite centre
        (the sky: its ``XC, YC`` are only where its gradient is referred to)."""
        if self.kind == "sky" or "XC" not in self.params or "YC" not in self.params:
            return None
        x, y = self.params["XC"].value, self.params["YC"].value
        return (x, y) if math.isfinite(x) and math.isfinite(y) else None


@dataclass(frozen=True)
class ComponentChoice:
    """Which component is the galaxy of interest, and how sure that is.

    Attributes
    ----------
    number : int
        The component taken.
    how : str
        ``"catalog"`` (a catalog column named it), ``"radec"`` (nearest the catalog position
        through the WCS) or ``"centre"`` (nearest the block centre).
    target : (float, float)
        The position it was chosen by (1-based block pixels): the catalog RA/Dec, else the
        block centre ``((nx + 1) / 2, (ny + 1) / 2)``.
    distance : float
        From the component's centre to ``target``, px.
    flags : tuple of str
        ``"goi_component_far"`` (no Sérsic component within the radius of the target),
        ``"goi_component_ambiguous"`` (another one within it too); empty when the choice is sure.
    note : str
        The flags in words ("" when there are none).
    """

    number: int
    how: str
    target: tuple[float, float]
    distance: float
    flags: tuple[str, ...] = ()
    note: str = ""


def choose_component(
    components: list[GalfitComponent],
    shape: tuple[int, int],
    *,
    number: int | None = None,
    target: tuple[float, float] | None = None,
    radius: float = GOI_COMPONENT_RADIUS,
) -> ComponentChoice:
    """The galaxy of interest among a block's components.

    Parameters
    ----------
    components : list of GalfitComponent
        The block's components.
    shape : (ny, nx)
        The block's image shape (its centre is the default target).
    number : int, optional
        A component named by the catalog: taken if it is a Sérsic component.
    target : (x, y), optional
        1-based block pixels of the galaxy (from the catalog's RA/Dec); default the block centre.
    radius : float
        px: a choice farther than this from the target, or with another Sérsic component this
        near the target too, is flagged.

    Returns
    -------
    ComponentChoice

    Raises
    ------
    ValueError
        No Sérsic component, or ``number`` is not one.

    Examples
    --------
    >>> P = GalfitParameter
    >>> sky = GalfitComponent(1, "sky", {"XC": P(26.0), "YC": P(26.0)})
    >>> gal = GalfitComponent(2, "sersic", {"XC": P(25.6), "YC": P(26.2)})
    >>> nb = GalfitComponent(3, "sersic", {"XC": P(40.0), "YC": P(10.0)})
    >>> c = choose_component([nb, sky, gal], (51, 51))
    >>> c.number, c.how, round(c.distance, 2), c.flags
    (2, 'centre', 0.45, ())
    """
    ny, nx = shape
    all_sersic = [c for c in components if c.kind == "sersic"]
    if not all_sersic:
        kinds = ", ".join(f"{c.number}={c.kind}" for c in components) or "none"
        raise ValueError(f"no sersic component in the model header (components: {kinds})")
    how = "radec" if target is not None else "centre"
    where = (float(target[0]), float(target[1])) if target is not None else ((nx + 1) / 2, (ny + 1) / 2)
    sersic = {c.number: c for c in all_sersic if c.position is not None}
    if not sersic:  # no finite centre: the first one, whose NaN the reader reports as a problem
        first = all_sersic[0] if number is None else next((c for c in all_sersic if c.number == int(number)),
                                                          all_sersic[0])
        return ComponentChoice(first.number, how, where, math.nan, ("goi_component_far",),
                               f"component {first.number} has no finite centre")
    dist = {k: math.hypot(c.position[0] - where[0], c.position[1] - where[1]) for k, c in sersic.items()}
    what = "the catalog position" if how == "radec" else "the block centre"
    if number is not None:
        if int(number) not in sersic:
            kind = next((c.kind for c in components if c.number == int(number)), None)
            raise ValueError(f"the catalog names component {int(number)}, which is "
                             + (f"a {kind!r} component, not a sersic one" if kind else "not in the model header")
                             + f" (sersic components: {', '.join(map(str, sorted(sersic)))})")
        d = dist[int(number)]
        far = d > radius
        note = (f"component {int(number)} named by the catalog lies {d:.1f} px from {what} "
                f"(more than {radius:g} px)") if far else ""
        return ComponentChoice(int(number), "catalog", where, d, ("goi_component_far",) if far else (), note)
    best = min(sersic, key=lambda k: (dist[k], k))
    near = sorted(k for k in sersic if dist[k] <= radius)
    flags, notes = [], []
    if dist[best] > radius:
        flags.append("goi_component_far")
        notes.append(f"no sersic component within {radius:g} px of {what}: took component {best}, "
                     f"{dist[best]:.1f} px away")
    elif len(near) > 1:
        flags.append("goi_component_ambiguous")
        others = ", ".join(f"{k} ({dist[k]:.1f} px)" for k in near if k != best)
        notes.append(f"ambiguous: sersic components {best} ({dist[best]:.1f} px) and {others} lie within "
                     f"{radius:g} px of {what}; took {best}")
    return ComponentChoice(best, how, where, dist[best], tuple(flags), "; ".join(notes))


@dataclass
class GalfitBlock:
    """The content of one GALFIT block.

    Attributes
    ----------
    path : str
        The file it was read from.
    input, model, residual : numpy.ndarray or None
        2-D float images in native byte order (float32 or float64 as stored; integer data
        become float64). ``None`` when read with ``pixels=False``.
    params : dict of str -> GalfitParameter
        ``"XC" "YC" "MAG" "RE" "N" "AR" "PA"`` of the galaxy of interest's Sérsic component
        (:attr:`choice`), and ``"SKY"`` when the block has a sky component.
    headers : dict of str -> astropy.io.fits.Header
        ``"primary"``, ``"input"``, ``"model"``, ``"residual"``.
    component : int
        GALFIT's number of the component the parameters come from.
    components : list of GalfitComponent
        Every component of the model header, in GALFIT's order.
    choice : ComponentChoice or None
        How :attr:`component` was chosen (:func:`choose_component`).
    offset : (int, int)
        ``(x1 - 1, y1 - 1)`` of the fitted section when the block holds only that section,
        subtracted from GALFIT's positions; ``(0, 0)`` otherwise.
    zeropoint : float or None
        ``MAGZPT`` of the model header.
    chi2nu : float or None
        ``CHI2NU`` of the model header.
    problems : list of str
        What is wrong but still readable: non-finite pixels, non-finite parameter values.
        :func:`read_block` with ``strict=True`` (default) raises instead of returning them.
    """

    path: str
    input: np.ndarray | None
    model: np.ndarray | None
    residual: np.ndarray | None
    params: dict[str, GalfitParameter]
    headers: dict[str, fits.Header]
    component: int = 1
    zeropoint: float | None = None
    chi2nu: float | None = None
    problems: list[str] = field(default_factory=list)
    components: list[GalfitComponent] = field(default_factory=list)
    choice: ComponentChoice | None = None
    offset: tuple[int, int] = (0, 0)

    @property
    def shape(self) -> tuple[int, int]:
        """Image shape (ny, nx), from the pixels or, without them, from the model header."""
        if self.model is not None:
            return self.model.shape
        h = self.headers["model"]
        return int(h["NAXIS2"]), int(h["NAXIS1"])

    def value(self, name: str) -> float:
        """The value of parameter ``name`` (``"XC"``, ...)."""
        return self.params[name].value

    @property
    def neighbours(self) -> list[GalfitComponent]:
        """The components other than the galaxy's that have a centre (neighbours, stars)."""
        return [c for c in self.components if c.number != self.component and c.position is not None]


# -- reading --------------------------------------------------------------------------------


def _native_float(data: np.ndarray) -> np.ndarray:
    if data.dtype.kind == "f" and data.dtype.itemsize in (4, 8):
        dtype = data.dtype.newbyteorder("=")
    else:
        dtype = np.dtype(np.float64)
    return np.ascontiguousarray(data, dtype=dtype)


def _find_hdus(hdul: fits.HDUList, path: str) -> tuple[int, int, int, str | None]:
    """Indices of the input, model and residual HDUs (and the GALFITM band, if any)."""
    names = [str(h.header.get("EXTNAME", "")).strip().upper() for h in hdul]
    # GALFITM: INPUT_<band>, MODEL_<band>, RESIDUAL_<band>; the first band that has all three.
    bands = [n[len("MODEL_"):] for n in names if n.startswith("MODEL_")]
    if bands or any(n.startswith(("INPUT_", "RESIDUAL_")) for n in names):
        for band in bands:
            want = [f"INPUT_{band}", f"MODEL_{band}", f"RESIDUAL_{band}"]
            if all(w in names for w in want):
                return names.index(want[0]), names.index(want[1]), names.index(want[2]), band
        missing = "MODEL_*" if not bands else f"INPUT_{bands[0]} or RESIDUAL_{bands[0]}"
        raise GalfitBlockError(path, f"GALFITM block without a complete band: missing HDU {missing}")

    # Classic GALFIT: the OBJECT keyword, else the position.
    objects = [str(h.header.get("OBJECT", "")).strip().lower() for h in hdul]
    model = [i for i, o in enumerate(objects) if i > 0 and o == "model"]
    resid = [i for i, o in enumerate(objects) if i > 0 and o.startswith("residual")]
    if model or resid:
        if not model:
            raise GalfitBlockError(path, "missing HDU: no model extension (OBJECT = 'model')")
        if not resid:
            raise GalfitBlockError(path, "missing HDU: no residual extension (OBJECT = 'residual map')")
        used = {model[0], resid[0]}
        rest = [i for i in range(1, len(hdul)) if i not in used and hdul[i].is_image]
        if not rest:
            raise GalfitBlockError(path, "missing HDU: no input image extension")
        inp = 1 if 1 in rest else rest[0]
        return inp, model[0], resid[0], None
    if len(hdul) < 4:
        raise GalfitBlockError(
            path, f"missing HDU: a GALFIT block has 4 HDUs (primary, input, model, residual), "
            f"this file has {len(hdul)}")
    return 1, 2, 3, None


_COMP_KEY = re.compile(r"(\d+)_([A-Z][A-Z0-9]*)(?:_(.+))?")
_SECTION = re.compile(r"\[\s*(\d+)\s*:\s*(\d+)\s*,\s*(\d+)\s*:\s*(\d+)\s*\]")


def section_offset(header: fits.Header, shape: tuple[int, int]) -> tuple[int, int]:
    """``(x1 - 1, y1 - 1)`` of ``FITSECT = '[x1:x2,y1:y2]'`` when the block is that section.

    GALFIT writes positions in the input image's frame and the block holds the fitted section;
    a block as large as the whole image (a fitter that records the box it fitted in FITSECT)
    needs no shift.
    """
    m = _SECTION.fullmatch(str(header.get("FITSECT", "")).strip())
    if m is None:
        return 0, 0
    x1, x2, y1, y2 = (int(v) for v in m.groups())
    if (y2 - y1 + 1, x2 - x1 + 1) != tuple(shape):
        return 0, 0
    return x1 - 1, y1 - 1


def _components(header: fits.Header, path: str, band: str | None,
                offset: tuple[int, int]) -> list[GalfitComponent]:
    """Every ``COMP_<n>`` of the model header with its parameters (positions in block pixels)."""
    kinds: dict[int, str] = {}
    for key in header:
        m = re.fullmatch(r"COMP_(\d+)", key)
        if m:
            kinds[int(m[1])] = str(header[key]).strip().lower()
    if not kinds:
        raise GalfitBlockError(path, "missing keyword COMP_1 in the model header (no fitted components)")
    keys: dict[int, dict[str, str]] = {n: {} for n in kinds}
    for key in header:
        m = _COMP_KEY.fullmatch(key)
        if m is None or int(m[1]) not in kinds:
            continue
        if m[3] is not None and m[3] != band:
            continue
        # a band-suffixed key of the chosen band wins over a bare one
        if m[3] is None and m[2] in keys[int(m[1])]:
            continue
        keys[int(m[1])][m[2]] = key
    out = []
    for n in sorted(kinds):
        params, bad = {}, {}
        for name, key in keys[n].items():
            try:
                p = parse_parameter(header[key])
            except ValueError:
                bad[key] = str(header[key])
                continue
            if name in ("XC", "YC") and offset != (0, 0):
                p = GalfitParameter(p.value - offset[0 if name == "XC" else 1], p.error, p.flag)
            params[name] = p
        out.append(GalfitComponent(n, kinds[n], params, keys[n], bad))
    return out


def _target(headers: dict[str, fits.Header], radec: tuple[float, float] | None,
            offset: tuple[int, int]) -> tuple[float, float] | None:
    """The catalog's RA/Dec in 1-based block pixels, through the first celestial WCS of the
    block's input, model or primary header; ``None`` without a position or a WCS."""
    if radec is None or not all(math.isfinite(float(v)) for v in radec):
        return None
    from astropy.wcs import WCS, FITSFixedWarning

    for role in ("input", "model", "primary"):
        h = headers.get(role)
        if h is None or "CTYPE1" not in h:
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FITSFixedWarning)
                wcs = WCS(h, naxis=2)
            if not wcs.has_celestial:
                continue
            x, y = wcs.celestial.world_to_pixel_values(float(radec[0]), float(radec[1]))
        except Exception:  # noqa: BLE001 - a malformed WCS is no WCS
            continue
        if math.isfinite(float(x)) and math.isfinite(float(y)):
            return float(x) + 1.0, float(y) + 1.0
    return None


def _locate_params(components: list[GalfitComponent], path: str, shape: tuple[int, int], *,
                   number: int | None, target: tuple[float, float] | None,
                   radius: float) -> tuple[ComponentChoice, dict[str, GalfitParameter], dict[str, str]]:
    """The galaxy's component, its Sérsic parameters and their header keys (+ the sky's)."""
    try:
        choice = choose_component(components, shape, number=number, target=target, radius=radius)
    except ValueError as exc:
        raise GalfitBlockError(path, str(exc)) from None
    comp = next(c for c in components if c.number == choice.number)
    for name in PARAM_NAMES:
        if name not in comp.keys:
            raise GalfitBlockError(path, f"missing keyword {comp.number}_{name} in the model header")
        if name not in comp.params:
            key = comp.keys[name]
            raise GalfitBlockError(path, f"unparsable value of {key}: {comp.unparsable[key]!r}")
    params = {name: comp.params[name] for name in PARAM_NAMES}
    keys = {name: comp.keys[name] for name in PARAM_NAMES}
    sky = next((c for c in components if c.kind == "sky"), None)
    if sky is not None and "SKY" in sky.keys:
        if "SKY" not in sky.params:
            raise GalfitBlockError(path, f"unparsable value of {sky.keys['SKY']}: "
                                   f"{sky.unparsable[sky.keys['SKY']]!r}")
        params["SKY"], keys["SKY"] = sky.params["SKY"], sky.keys["SKY"]
    return choice, params, keys


def _optional_float(header: fits.Header, key: str) -> float | None:
    try:
        return float(header[key]) if key in header else None
    except (TypeError, ValueError):
        return None


def read_block(path: str | Path, *, pixels: bool = True, strict: bool = True, component: int | None = None,
               radec: tuple[float, float] | None = None, radius: float = GOI_COMPONENT_RADIUS) -> GalfitBlock:
    """Read a GALFIT (or GALFITM) image block.

    Parameters
    ----------
    path : str or Path
        The block (FITS, optionally gzipped).
    pixels : bool
        Read the images. ``False`` reads only the headers (fast: for ingesting a catalog);
        the image attributes are then ``None`` and pixel checks are skipped.
    strict : bool
        With ``True`` (default) anything in :attr:`GalfitBlock.problems` — non-finite pixels,
        a non-finite parameter value — raises :class:`GalfitBlockError`. With ``False`` they are
        returned in ``problems`` so a batch can record them per galaxy and decide itself.
    component : int, optional
        The galaxy's component, as a catalog names it (see :func:`choose_component`).
    radec : (float, float), optional
        The galaxy's RA, Dec (degrees): with a celestial WCS in the block, the Sérsic component
        nearest it is the galaxy; without one, the component nearest the block centre.
    radius : float
        px: the choice is flagged (:attr:`GalfitBlock.choice`) when no Sérsic component lies this
        near the target, or two do.

    Returns
    -------
    GalfitBlock

    Raises
    ------
    GalfitBlockError
        The file is missing, not FITS or truncated; an HDU or a parameter keyword is missing;
        a parameter string cannot be parsed; an image is not 2-D, empty, or of a shape that
        differs from the others; and (``strict=True``) non-finite pixels or parameter values.
        The message names the file and the problem.
    """
    path = str(path)
    if not Path(path).is_file():
        raise GalfitBlockError(path, "file not found")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", VerifyWarning)  # GALFIT copies non-standard cards
            # astropy pads a short last HDU with zeros and only warns; _check_not_truncated makes
            # that an error from the byte spans (a recorded warning is not thread-safe)
            warnings.filterwarnings("ignore", message="File may have been truncated")
            with fits.open(path, memmap=False, lazy_load_hdus=False) as hdul:
                _check_not_truncated(hdul, path)
                block = _read_open(hdul, path, pixels, strict, component, radec, radius)
    except GalfitBlockError:
        raise
    except Exception as exc:  # OSError (not FITS, truncated), astropy's VerifyError, ...
        raise GalfitBlockError(path, f"not a readable FITS file ({type(exc).__name__}: {exc})") from exc
    return block


def _check_not_truncated(hdul: fits.HDUList, path: str) -> None:
    """A file shorter than its headers say is broken (astropy pads it with zeros and only warns).

    Checked from the HDUs' byte spans rather than from astropy's warning: ``warnings`` state is
    global, so under a threaded scheduler one thread's warning can land in another's record.
    Compressed files (which do not start with ``SIMPLE``) are not checked: their spans are in
    uncompressed bytes.
    """
    with open(path, "rb") as f:
        if f.read(6) != b"SIMPLE":
            return
    size = Path(path).stat().st_size
    for i in range(len(hdul)):
        info = hdul.fileinfo(i)
        end = int(info["datLoc"]) + int(info["datSpan"])
        if end > size:
            raise GalfitBlockError(path, f"truncated file (HDU {i} needs {end} bytes, the file has {size})")


def _read_open(hdul: fits.HDUList, path: str, pixels: bool, strict: bool, component: int | None,
               radec: tuple[float, float] | None, radius: float) -> GalfitBlock:
    i_in, i_mod, i_res, band = _find_hdus(hdul, path)
    roles = {"input": i_in, "model": i_mod, "residual": i_res}
    # Reading scaled pixels edits an HDU's header (BSCALE, BZERO), so with pixels the headers are
    # copied first. Without, the headers are handed out as read (the HDU list is discarded): a copy
    # re-parses every card, about 15 % of a header-only read.
    own = (lambda h: h.copy()) if pixels else (lambda h: h)
    headers = {"primary": own(hdul[0].header)}
    for role, i in roles.items():
        if not hdul[i].is_image:
            raise GalfitBlockError(path, f"HDU {i} ({role}) is not an image")
        headers[role] = own(hdul[i].header)

    # Shapes from the headers (cheap, and valid without reading pixels).
    shapes = {}
    for role, i in roles.items():
        h = headers[role]
        naxis = int(h.get("NAXIS", 0))
        shape = tuple(int(h.get(f"NAXIS{k}", 0)) for k in range(naxis, 0, -1))
        if naxis != 2 or min(shape) == 0:
            raise GalfitBlockError(path, f"wrong shape: HDU {i} ({role}) is {shape or 'empty'}, "
                                   "expected a 2-D image")
        shapes[role] = shape
    if len(set(shapes.values())) > 1:
        desc = ", ".join(f"{r} {s[0]}x{s[1]}" for r, s in shapes.items())
        raise GalfitBlockError(path, f"mismatched shapes: {desc}")

    shape = shapes["model"]
    offset = section_offset(headers["model"], shape)
    components = _components(headers["model"], path, band, offset)
    choice, params, keys = _locate_params(components, path, shape, number=component,
                                          target=_target(headers, radec, offset), radius=radius)

    problems = [f"parameter {keys[n]} is {params[n].value}" for n in params
                if not math.isfinite(params[n].value)]
    images: dict[str, np.ndarray | None] = {"input": None, "model": None, "residual": None}
    if pixels:
        for role, i in roles.items():
            try:
                data = hdul[i].data
            except Exception as exc:
                raise GalfitBlockError(path, f"HDU {i} ({role}) cannot be read: {exc}") from exc
            if data is None or data.shape != shapes[role]:
                got = None if data is None else data.shape
                raise GalfitBlockError(path, f"truncated: HDU {i} ({role}) has data {got}, "
                                       f"header says {shapes[role]}")
            arr = _native_float(data)
            bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
            if bad:
                problems.append(f"{bad} non-finite pixels in the {role} image (HDU {i})")
            images[role] = arr

    if problems and strict:
        raise GalfitBlockError(path, "; ".join(problems))
    return GalfitBlock(
        path=path,
        input=images["input"],
        model=images["model"],
        residual=images["residual"],
        params=params,
        headers=headers,
        component=choice.number,
        components=components,
        choice=choice,
        offset=offset,
        zeropoint=_optional_float(headers["model"], "MAGZPT"),
        chi2nu=_optional_float(headers["model"], "CHI2NU"),
        problems=problems,
    )


# -- writing --------------------------------------------------------------------------------


def write_block(
    path: str | Path,
    input: np.ndarray,
    model: np.ndarray,
    residual: np.ndarray | None = None,
    params: Mapping[str, GalfitParameter | float] | None = None,
    zeropoint: float | None = None,
    extra_header: Mapping[str, Any] | None = None,
    *,
    chi2nu: float | None = None,
    input_name: str = "input.fits",
    overwrite: bool = True,
    fitsect: str | None = None,
    input_header: Mapping[str, Any] | None = None,
) -> Path:
    """Write a block in the classic GALFIT layout, readable by :func:`read_block`.

    HDU 0 is an empty primary; HDU 1 the input image (``OBJECT = 'input.fits[1:nx,1:ny]'``);
    HDU 2 the model (``OBJECT = 'model'``) whose header carries ``MAGZPT``, ``COMP_1 = 'sersic'``,
    ``1_XC`` ... ``1_PA``, ``COMP_2 = 'sky'`` with ``2_XC``/``2_YC`` (fixed, image centre) and
    ``2_SKY`` when ``params`` has ``"SKY"``, and ``CHI2NU`` when given; HDU 3 the residual
    (``OBJECT = 'residual map'``). Images are written as float32 (BITPIX -32), as GALFIT does.

    Parameters
    ----------
    path : str or Path
        Output file.
    input, model : numpy.ndarray
        2-D images of the same shape.
    residual : numpy.ndarray, optional
        Defaults to ``input - model``.
    params : mapping
        ``"XC" "YC" "MAG" "RE" "N" "AR" "PA"`` (required) and optionally ``"SKY"``, each a
        :class:`GalfitParameter` or a plain number (written as free, without error).
        XC, YC are 1-based FITS pixels.
    zeropoint : float, optional
        Magnitude zero point, written as ``MAGZPT``.
    extra_header : mapping, optional
        More model-header cards (e.g. ``{"DATAIN": "gal.fits", "PSF": "psf.fits", "FLAGS": ""}``);
        a value may be a ``(value, comment)`` tuple.
    chi2nu : float, optional
        Reduced chi-square, written as ``CHI2NU``.
    input_name : str
        Name recorded in the input HDU's ``OBJECT`` (GALFIT writes the image name and section).
    overwrite : bool
        Replace an existing file.
    fitsect : str, optional
        The region fitted, GALFIT's ``FITSECT`` (``"[x1:x2,y1:y2]"``, 1-based, inclusive);
        default the whole image.
    input_header : mapping, optional
        More cards for the input HDU (GALFIT copies the input image's header there: its WCS,
        ``BUNIT``, ``EXPTIME``...); values as in ``extra_header``.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    ValueError
        Images that are not 2-D or differ in shape; a missing parameter.
    """
    path = Path(path)
    input = np.asarray(input, dtype=np.float32)
    model = np.asarray(model, dtype=np.float32)
    if input.ndim != 2 or model.shape != input.shape:
        raise ValueError(f"{path}: input and model must be 2-D images of one shape, got "
                         f"{input.shape}, {model.shape}")
    residual = input - model if residual is None else np.asarray(residual, dtype=np.float32)
    if residual.shape != input.shape:
        raise ValueError(f"{path}: input, model and residual must be 2-D images of one shape, got "
                         f"{input.shape}, {model.shape}, {residual.shape}")
    params = dict(params or {})
    missing = [n for n in PARAM_NAMES if n not in params]
    if missing:
        raise ValueError(f"{path}: missing parameters {missing}")
    ny, nx = input.shape

    model_cards: list[tuple[str, Any, Any]] = [
        ("OBJECT", "model", "Component type"),
        ("COMMENT", "========== GALFIT Input Parameters ==========", None),
        ("FITSECT", fitsect or f"[1:{nx},1:{ny}]", "Image section fitted")]
    if zeropoint is not None:
        model_cards.append(("MAGZPT", float(zeropoint), "Magnitude zeropoint"))
    model_cards.append(("COMMENT", "========== GALFIT Final Parameters ==========", None))
    model_cards.append(("COMP_1", "sersic", "Component type"))
    for name in PARAM_NAMES:
        model_cards.append((f"1_{name}", format_parameter(params[name]), _HEADER_COMMENTS[name]))
    if "SKY" in params:
        model_cards += [
            ("COMMENT", "-" * 72, None),
            ("COMP_2", "sky", "Component type"),
            ("2_XC", format_parameter(GalfitParameter((nx + 1) / 2, flag="fixed")), "X center [pixel]"),
            ("2_YC", format_parameter(GalfitParameter((ny + 1) / 2, flag="fixed")), "Y center [pixel]"),
            ("2_SKY", format_parameter(params["SKY"]), _HEADER_COMMENTS["SKY"]),
            ("2_DSDX", "[0.000e+00]", "x sky gradient [ADUs]"),
            ("2_DSDY", "[0.000e+00]", "y sky gradient [ADUs]")]
    model_cards.append(("COMMENT", "-" * 72, None))
    for key, value in (extra_header or {}).items():
        if isinstance(value, tuple):
            model_cards.append((key, value[0], value[1] if len(value) > 1 else None))
        else:
            model_cards.append((key, value, None))
    if chi2nu is not None:
        model_cards.append(("CHI2NU", float(chi2nu), "Reduced Chi^2"))
    input_cards = [("OBJECT", f"{input_name}[1:{nx},1:{ny}]", "Component type")]
    for key, value in (input_header or {}).items():
        if key != "OBJECT":
            value, comm = value if isinstance(value, tuple) else (value, None)
            input_cards.append((key, value, comm))
    cards = (input_cards, model_cards, [("OBJECT", "residual map", "Component type")])

    # Building the HDUs is most of the cost of a small block (astropy formats and verifies every
    # card): a template HDU list per layout is built once per thread, then its pixels and card
    # values are replaced. The bytes written are those of a freshly built HDU list.
    hdul = _block_template(input.shape, tuple(tuple(k for k, _, _ in c) for c in cards))
    for hdu, data, hdu_cards in zip(hdul[1:], (input, model, residual), cards):
        hdu.data = data
        header = hdu.header
        comments = iter(i for i, c in enumerate(header.cards) if c.keyword == "COMMENT")
        for key, value, comm in hdu_cards:
            if key == "COMMENT":
                header[next(comments)] = value
            else:
                header[key] = (value, _fit_comment(key, value, comm))
    hdul.writeto(path, overwrite=overwrite, output_verify="ignore")
    for hdu in hdul[1:]:
        hdu.data = None  # no reference to the caller's arrays is kept
    return path


_TEMPLATES = threading.local()


def _block_template(shape: tuple[int, int], layout: tuple[tuple[str, ...], ...]) -> fits.HDUList:
    """An HDU list of the block layout ``layout`` (keywords per image HDU), cached per thread."""
    cache = getattr(_TEMPLATES, "cache", None)
    if cache is None:
        cache = _TEMPLATES.cache = {}
    key = (shape, layout)
    hdul = cache.get(key)
    if hdul is None:
        if len(cache) > 16:
            cache.clear()
        empty = np.zeros(shape, dtype=np.float32)
        hdus = [fits.PrimaryHDU()]
        for keys in layout:
            h = fits.Header()
            for k in keys:
                if k == "COMMENT":
                    h.add_comment("")
                else:
                    h[k] = ""
            hdus.append(fits.ImageHDU(empty, header=h))
        hdul = cache[key] = fits.HDUList(hdus)
    return hdul


def _fit_comment(key: str, value: Any, comment: str | None) -> str | None:
    """``comment`` cut to what fits in an 80-character card (as astropy would, without its
    "Card is too long, comment will be truncated" warning)."""
    if not comment:
        return comment
    if isinstance(value, str):
        quoted = "'" + value.replace("'", "''").ljust(8) + "'"
        width = max(len(quoted), 20)
    else:
        width = 20
    avail = 80 - max(len(key), 8) - 2 - width - 3
    return comment if len(comment) <= avail else comment[: max(avail, 0)]
