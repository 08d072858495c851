"""The stamp gallery: the selected galaxies' residual stamps, paged and sortable, with voting keys.

Stamps are drawn server-side as small PNGs. Residual and object-only stamps are shown in units of
each galaxy's sky sigma (the catalog's ``stamp_sigma`` from prep, the sigma of the resampled
stamp; ``sky_sigma`` for older workspaces; measured on the stamp when neither is there) through
one :class:`SigmaStretch` for the whole gallery: a symmetric range (default +-5 sigma), linear /
asinh / zscale (``astropy.visualization``), a diverging colour map and a colour bar, so a
pure-noise residual looks like noise and a strong one stands out. Originals and models use an
asinh stretch between the original's percentiles. One light JavaScript component
(:class:`GalleryGrid`) shows the tiles and reports clicks, ticks and the keyboard.
"""

from __future__ import annotations

import base64
import html
import io
import json
import logging
from dataclasses import dataclass
from typing import Any

import matplotlib
import numpy as np
import pandas as pd
import panel as pn
import param
from astropy.visualization import AsinhStretch, AsymmetricPercentileInterval, ManualInterval, ZScaleInterval
from panel.custom import JSComponent
from PIL import Image

from app import asset
from app.palettes import CLASS_COLORS, NO_LABEL
from app.selection import PER_PAGE, SORT_BY, n_pages, page_of, sort_rows
from app.state import HIDDEN_TIP, KEYS, AppState
from app.text import md, notify
from core.labels import CLASSES

__all__ = ["ALL_KINDS", "KEYS", "KEY_HELP", "GalleryGrid", "GalleryView", "SigmaStretch", "StampZoom", "cutout_url", "in_sigma", "render_stamps",
           "residual_limit", "robust_sigma", "stretch_residual"]

log = logging.getLogger(__name__)

STRETCHES = ("linear", "asinh", "zscale")
RESIDUAL_KINDS = ("residual", "object_only")
ALL_KINDS = ("original", "model", "residual", "object_only", "goi_mask")
#: The panels' names on the tiles and in the detail view.
KIND_LABELS = {"original": "original", "model": "model", "residual": "residual", "object_only": "object-only",
               "goi_mask": "mask"}
#: asinh softening of the originals and models (astropy's AsinhStretch ``a``).
ASINH_A = 0.1
#: asinh softening of residuals on their +-limit range: 1 sigma of noise on +-5 sigma stays pale
#: (a third of the half-range), 2-3 sigma structure is lifted above linear.
RESIDUAL_ASINH_A = 0.3
#: The active button of a stretch or panel group: filled and bold (the others are outlined).
ACTIVE_CSS = ".bk-btn.bk-active { font-weight: 700; color: #fff !important; }"
#: Longest comment the gallery sends to the store (the store checks its own limit).
MAX_COMMENT_CHARS = 2000


# --------------------------------------------------------------------------------------------
# Stretch and PNG encoding
# --------------------------------------------------------------------------------------------
def residual_limit(images: np.ndarray, method: str) -> float:
    """Symmetric display limit L (the stamps are shown on [-L, L]), from the data.

    ``zscale``: the larger magnitude of the IRAF zscale limits; otherwise the 99.5th
    percentile of |pixel|. Non-finite pixels are ignored; 1.0 when nothing is finite.
    """
    data = np.asarray(images, dtype=float)
    data = data[np.isfinite(data)]
    if data.size == 0:
        return 1.0
    if method == "zscale":
        lo, hi = ZScaleInterval().get_limits(data)
        lim = max(abs(lo), abs(hi))
    else:
        lim = float(np.percentile(np.abs(data), 99.5))
    return lim if lim > 0 else (float(np.abs(data).max()) or 1.0)


def stretch_residual(image: np.ndarray, limit: float, method: str) -> np.ndarray:
    """Map a residual to [0, 1] with 0.5 at zero flux, symmetric about zero.

    linear and zscale: u = clip(x / L, -1, 1); asinh: sign(u) · AsinhStretch(a=0.3)(|u|).
    """
    u = np.clip(np.nan_to_num(np.asarray(image, dtype=float) / limit), -1.0, 1.0)
    if method == "asinh":
        u = np.sign(u) * AsinhStretch(a=RESIDUAL_ASINH_A)(np.abs(u), clip=True)
    return 0.5 * (u + 1.0)


def robust_sigma(image: np.ndarray, goi: np.ndarray | None = None) -> float:
    """Sky sigma of a stamp measured on it: 1.4826 x MAD of the pixels outside the GOI (all when
    there is no mask or too few outside). The fallback when the catalog has no sigma."""
    data = np.asarray(image, dtype=float)
    pixels = data[~np.asarray(goi, dtype=bool)] if goi is not None and (~np.asarray(goi, bool)).sum() >= 16 else data
    pixels = pixels[np.isfinite(pixels)]
    if pixels.size < 4:
        return float("nan")
    return float(1.4826 * np.median(np.abs(pixels - np.median(pixels))))


@dataclass(frozen=True)
class SigmaStretch:
    """How residual and object-only stamps are shown: in units of the galaxy's sky sigma, on a
    symmetric range ``[-limit, +limit]`` sigma, with a diverging colour map.

    Parameters
    ----------
    method : {"linear", "asinh", "zscale"}
        ``linear``: colour proportional to the residual in sigma; ``asinh``: faint structure
        lifted (astropy's ``AsinhStretch``, a = 0.3, on |x| / limit, sign kept); ``zscale``:
        linear, with the limit taken from the IRAF zscale of the stamps shown (in sigma), so the
        range still is one for the whole gallery page.
    limit : float
        Half-width of the visible range in sigma (the default, 5, shows +-5 sigma).
    invert : bool
        Swap the colour map (blue for excess light instead of red).
    """

    method: str = "asinh"
    limit: float = 5.0
    invert: bool = False

    @property
    def cmap(self) -> str:
        return "RdBu" if self.invert else "RdBu_r"

    def unit(self, image_sigma: np.ndarray) -> np.ndarray:
        """A stamp already in sigma units to [0, 1] (0.5 at zero)."""
        return stretch_residual(image_sigma, self.limit, "asinh" if self.method == "asinh" else "linear")

    def tick_values(self, pos) -> list[float]:
        """Colour-bar ticks in sigma: 0, the ends, and 1, 3, 10, 30, ... sigma where they do not crowd."""
        kept = [0.0]
        for v in [c for c in (1, 3, 10, 30, 100, 300, 1000) if c < self.limit] + [self.limit]:
            if pos(v) - pos(kept[-1]) >= 0.08 or v == self.limit:
                if v == self.limit and len(kept) > 1 and pos(v) - pos(kept[-1]) < 0.08:
                    kept.pop()
                kept.append(float(v))
        half = kept[1:]
        return [-v for v in reversed(half)] + [0.0] + half

    def colorbar(self, width: int = 256) -> dict[str, Any]:
        """The colour bar of this stretch: a PNG gradient, ticks (fraction along the bar, label) and a title."""
        values = np.linspace(-self.limit, self.limit, width)[None, :]
        uri = to_png_uri(np.repeat(self.unit(values), 2, axis=0), self.cmap, flip=False)
        pos = lambda v: float(np.interp(v, values[0], np.linspace(0.0, 1.0, width)))
        ticks = [[pos(v), f"{v:+g}σ" if v else "0"] for v in self.tick_values(pos)]
        method = {"linear": "linear", "asinh": "asinh", "zscale": "zscale (linear)"}[self.method]
        return {"uri": uri, "ticks": ticks,
                "title": f"residual · object-only in sky σ, {method}, ±{self.limit:.3g}σ"}


def stretch_positive(image: np.ndarray, limits: tuple[float, float] | None = None) -> np.ndarray:
    """An input or model image to [0, 1]: an asinh stretch (a = 0.1) between ``limits``.

    ``limits`` default to the 1st and 99.8th percentiles of the image
    (``AsymmetricPercentileInterval``); give the original's limits to the model so both are
    shown on one scale.
    """
    data = np.nan_to_num(np.asarray(image, dtype=float))
    lo, hi = limits if limits is not None else positive_limits(data)
    interval = ManualInterval(lo, hi if hi > lo else lo + 1.0)
    return AsinhStretch(a=ASINH_A)(interval(data, clip=True), clip=True)


def positive_limits(image: np.ndarray) -> tuple[float, float]:
    """Display limits of an input image: its 1st and 99.8th percentiles."""
    data = np.nan_to_num(np.asarray(image, dtype=float))
    lo, hi = AsymmetricPercentileInterval(1.0, 99.8).get_limits(data)
    return float(lo), float(hi) if hi > lo else float(lo) + 1.0


def to_png_uri(unit: np.ndarray, cmap: str, flip: bool = True) -> str:
    """A [0, 1] image as a PNG data URI (row 0 at the bottom, as astronomers expect, unless not ``flip``)."""
    rgba = matplotlib.colormaps[cmap](unit[::-1] if flip else unit, bytes=True)
    buf = io.BytesIO()
    Image.fromarray(rgba[..., :3]).save(buf, format="PNG", optimize=False, compress_level=1)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def in_sigma(images: np.ndarray, sigmas: np.ndarray | None, masks: np.ndarray | None = None) -> np.ndarray:
    """Residual stamps divided by each galaxy's sky sigma; a missing or non-positive sigma is measured
    on the stamp (:func:`robust_sigma`)."""
    imgs = np.asarray(images, dtype=float)
    sig = np.full(len(imgs), np.nan) if sigmas is None else np.asarray(sigmas, dtype=float).copy()
    for i in np.flatnonzero(~(np.isfinite(sig) & (sig > 0))):
        sig[i] = robust_sigma(imgs[i], None if masks is None else masks[i])
    sig[~(np.isfinite(sig) & (sig > 0))] = 1.0
    return imgs / sig[:, None, None]


def render_stamps(stamps: dict[str, np.ndarray], method: str = "asinh", invert: bool = False, *,
                  sigmas: np.ndarray | None = None, limit: float = 5.0) -> tuple[dict[str, list[str]], SigmaStretch]:
    """PNG data URIs for each kind of stamp (kind -> one URI per galaxy), and the stretch used.

    Residual and object-only stamps are divided by ``sigmas`` (one per galaxy; measured on the
    stamp where missing) and shown by one :class:`SigmaStretch` over ``[-limit, limit]`` sigma for
    every galaxy (``zscale``: the limit comes from the zscale of these stamps in sigma). Original
    and model share the original's asinh limits; the GOI mask is black and white.

    Parameters
    ----------
    stamps : dict
        Kind -> array (n, ny, nx).
    method : {"linear", "asinh", "zscale"}
    invert : bool
    sigmas : array of float, optional
        The galaxies' sky sigma, in the stamps' units.
    limit : float
        Half-width of the visible range in sigma (not used by zscale).

    Returns
    -------
    (dict, SigmaStretch)
    """
    masks = stamps.get("goi_mask")
    scaled = {k: in_sigma(v, sigmas, masks) for k, v in stamps.items() if k in RESIDUAL_KINDS}
    if method == "zscale" and scaled:
        limit = residual_limit(np.concatenate([v.ravel() for v in scaled.values()]), "zscale")
    stretch = SigmaStretch(method=method, limit=float(limit), invert=invert)
    grey = "gray_r" if invert else "gray"
    out: dict[str, list[str]] = {}
    lims = [positive_limits(im) for im in stamps["original"]] if "original" in stamps else None
    for kind, imgs in stamps.items():
        if kind in RESIDUAL_KINDS:
            out[kind] = [to_png_uri(stretch.unit(im), stretch.cmap) for im in scaled[kind]]
        elif kind == "goi_mask":
            out[kind] = [to_png_uri((np.asarray(im) > 0).astype(float), grey) for im in imgs]
        else:
            out[kind] = [to_png_uri(stretch_positive(im, lims[i] if lims else None), grey) for i, im in enumerate(imgs)]
    return out, stretch


# --------------------------------------------------------------------------------------------
# The JavaScript tile grid
# --------------------------------------------------------------------------------------------
# The colour bar of the gallery and of the detail view (a PNG gradient, its title and its sigma ticks):
# one function in both components' modules. Text goes in through textContent, never as HTML.
_COLORBAR_JS = """
    function renderColorbar(el, c) {
      el.replaceChildren();
      el.hidden = !c.uri;
      if (!c.uri) return;
      const title = document.createElement('div');
      title.className = 'resx-cb-title';
      title.textContent = c.title;
      const img = document.createElement('img');
      img.className = 'resx-cb-img';
      img.src = c.uri;
      img.alt = c.title;
      const ticks = document.createElement('div');
      ticks.className = 'resx-cb-ticks';
      for (const [pos, label] of c.ticks) {
        const t = document.createElement('span');
        t.style.left = (100 * pos) + '%';
        t.textContent = label;
        ticks.appendChild(t);
      }
      el.append(title, img, ticks);
    }
"""


class GalleryGrid(JSComponent):
    """Tiles of stamps with their page buttons and colour bar; reports clicks, ticks, focus, page turns and keys.

    The browser owns the page turns and the keyboard focus: "next ▶" (or an arrow key past the
    page's last tile, or a vote on it) sets ``page`` at once, and every key typed before the
    server has sent that page's tiles is held back and replayed on them (otherwise it would
    label a tile of the old page: the server answers the turn only after the votes queued before
    it). Turns asked for meanwhile wait in the same queue, so each key lands on the page it was
    typed for. Each tile carries the page it belongs to, so the browser knows which page it
    shows. A vote on the very last tile of the selection does not move on: vote keys do nothing
    until the focus moves (one galaxy never collects a run of votes).

    The stamps (``tiles``) and the captions (``captions``) are separate properties: a vote
    changes only the captions, which the browser patches into the tiles it has drawn, so a
    keyboard vote does not send the page's images again nor rebuild the grid.

    Messages to the server: ``key`` (a vote key on a row), ``open`` (the detail of a row),
    ``close``, ``undo``, ``comment`` (row, text), ``next_unvoted`` (from a row), ``end``.
    """

    tiles = param.List(default=[], doc="[{row, id, page, imgs: [uri]}]: changes only with the page, "
                                        "the selection, the sort or the stretch")
    captions = param.List(default=[], doc="[{row, lines: [str], color, mine, mine_color}]: the tiles' captions, "
                                          "the inspector's own vote and border colours, updated in place after "
                                          "a vote (small; no images)")
    labels = param.List(default=[], doc="the name of each panel of a tile (original, model, residual, ...)")
    colorbar = param.Dict(default={}, doc="{uri, ticks: [[fraction, label]], title}: the residual stretch's colour bar")
    keys = param.List(default=[], doc="[[key, what it does]]: the keyboard shortcuts listed on the page")
    modal_open = param.Boolean(default=False, doc="the detail view is open (Esc closes it)")
    reveal = param.Integer(default=0, doc="incremented on a new selection: the gallery scrolls itself into view")
    where = param.String(default="", doc="where the inspector is: selection size, page, how many they voted on")
    ticked = param.List(default=[], doc="catalog rows whose tick box is on")
    focus = param.Integer(default=0, doc="index of the focused tile on the page")
    page = param.Integer(default=0, doc="the page asked for (0-based); set by the browser's buttons and arrows")
    pages = param.Integer(default=1, doc="number of pages")
    per_page = param.Integer(default=PER_PAGE)
    tile_px = param.Integer(default=104)

    _stylesheets = [asset("gallery.css").read_text()]

    _esm = _COLORBAR_JS + f"const HIDDEN_TIP = {json.dumps(HIDDEN_TIP)};\n" + """
    export function render({ model, el }) {
      const root = document.createElement('div');
      root.className = 'resx-gallery';
      const nav = document.createElement('div');
      nav.className = 'resx-nav';
      function button(text, title) {
        const b = document.createElement('button');
        b.type = 'button';
        b.textContent = text;
        b.title = title;
        b.className = 'resx-navbtn';
        return b;
      }
      const prev = button('◀ previous', 'previous page (p or Page Up)');
      const next = button('next ▶', 'next page (n or Page Down)');
      const unvoted = button('next unvoted ▸▸', 'the first galaxy you have not voted on (g)');
      const bar = document.createElement('div');
      bar.className = 'resx-colorbar';
      const whereEl = document.createElement('span');
      whereEl.className = 'resx-where';
      nav.append(prev, next, unvoted, whereEl, bar);
      const keyline = document.createElement('div');
      keyline.className = 'resx-keyline';
      const keyhelp = document.createElement('div');
      keyhelp.className = 'resx-keyhelp';
      keyhelp.hidden = true;
      const grid = document.createElement('div');
      grid.className = 'resx-grid';
      const endnote = document.createElement('div');
      endnote.className = 'resx-endnote';
      endnote.hidden = true;
      root.append(nav, keyline, keyhelp, grid, endnote);

      function drawKeys() {
        keyline.textContent = model.keys.map((k) => k[0] + ' ' + k[1]).slice(0, 7).join(' · ') + ' · ? all keys';
        keyhelp.replaceChildren(...model.keys.map((k) => {
          const row = document.createElement('div');
          const kbd = document.createElement('kbd');
          kbd.textContent = k[0];
          const what = document.createElement('span');
          what.textContent = ' ' + k[1];
          row.append(kbd, what);
          return row;
        }));
      }
      function drawBar() { renderColorbar(bar, model.colorbar || {}); }

      let want = model.page;  // the page the browser asked for; the tiles follow from the server
      let atEnd = false;      // the last tile of the last page has been voted: vote keys do nothing
      // Keys and page turns made while the tiles of `want` are not here yet, in the order they
      // were made: {key} or {turn: page, focus}. A key is replayed on the page it was typed
      // for, however many turns were asked for before the server caught up.
      const queue = [];
      const shown = () => (model.tiles.length ? model.tiles[0].page : want);
      const pending = () => model.tiles.length > 0 && shown() !== want;
      const clamp = (p) => Math.min(Math.max(p, 0), Math.max(model.pages - 1, 0));
      function target() {  // the page shown once the queue has been replayed
        for (let i = queue.length - 1; i >= 0; i--) if (queue[i].turn !== undefined) return queue[i].turn;
        return want;
      }

      function navState() {
        prev.disabled = target() <= 0;
        next.disabled = target() >= model.pages - 1;
        unvoted.disabled = !model.tiles.length;
        for (const b of [prev, next, unvoted]) { b.style.opacity = b.disabled ? '0.4' : '1'; }
      }
      function showEnd(text) {
        endnote.hidden = !text;
        endnote.textContent = text || '';
        if (text) endnote.scrollIntoView({block: 'nearest'});
      }
      function showFocus() {
        grid.querySelectorAll('.resx-tile').forEach((t, i) => t.classList.toggle('focus', i === model.focus));
        const t = grid.querySelectorAll('.resx-tile')[model.focus];
        if (t && document.activeElement !== null) {
          const r = t.getBoundingClientRect();
          if (r.top < 0 || r.bottom > window.innerHeight) t.scrollIntoView({block: 'nearest'});
        }
      }
      const lineCache = new Map();  // tile element -> the caption last written into it (skip unchanged ones)
      function writeCaption(tile, c) {
        const key = JSON.stringify(c);
        if (lineCache.get(tile) === key) return;
        lineCache.set(tile, key);
        tile.style.borderColor = c.color;
        const mine = tile.querySelector('.resx-mine');
        mine.textContent = c.mine ? 'you: ' + c.mine : 'not voted by you';
        mine.classList.toggle('voted', !!c.mine);
        mine.style.borderColor = c.mine ? c.mine_color : 'transparent';
        const box = tile.querySelector('.resx-caption');
        box.replaceChildren(...c.lines.map((line) => {
          const d = document.createElement('div');
          d.className = 'resx-line';
          d.textContent = line;
          // a hidden consensus (blind mode) says why on hover
          d.title = line.startsWith('consensus: hidden') ? HIDDEN_TIP : line;
          return d;
        }));
      }
      function updateCaptions() {
        const byRow = new Map(model.captions.map((c) => [c.row, c]));
        grid.querySelectorAll('.resx-tile').forEach((tile) => {
          const c = byRow.get(Number(tile.dataset.row));
          if (c) writeCaption(tile, c);
        });
      }
      // Tile size: every panel at tile_px, shrunk when the gallery is narrower than one tile.
      function layout() {
        const n = Math.max(model.labels.length, 1);
        const avail = grid.clientWidth - 8 - 14;  // the grid's padding, a tile's border and padding
        const extra = 14 + 2 * (n - 1);   // a tile's border, padding and gaps between its panels
        const width = grid.clientWidth - 8; // the grid's padding
        let px = model.tile_px;
        if (avail > 0) px = Math.max(32, Math.min(px, Math.floor((avail - 2 * (n - 1)) / n)));
        if (width > 0) {  // one more tile a row when the panels need shrink by at most a fifth for it
          const cols = Math.max(1, Math.floor((width + 8) / (n * px + extra + 8)));
          const smaller = Math.floor(((width + 8) / (cols + 1) - 8 - extra) / n);
          if (smaller >= 0.8 * px && n * smaller + 2 * (n - 1) >= 150) px = smaller;
        }
        const inner = n * px + 2 * (n - 1);
        grid.querySelectorAll('.resx-tile').forEach((tile) => {
          tile.style.width = (Math.max(inner, 150) + 14) + 'px';  // border-box: + border and padding
          tile.querySelectorAll('.resx-panel img').forEach((im) => {
            im.style.width = px + 'px';
            im.style.height = px + 'px';
          });
          tile.querySelectorAll('.resx-panel').forEach((p) => { p.style.width = px + 'px'; });
        });
      }
      function draw() {
        lineCache.clear();
        grid.innerHTML = '';
        const ticked = new Set(model.ticked);
        navState();
        if (!model.tiles.length) {
          const p = document.createElement('div');
          p.className = 'resx-empty';
          p.textContent = 'Nothing selected: draw a lasso or a box on the map, or select by cluster, class or id.';
          grid.appendChild(p);
          return;
        }
        model.tiles.forEach((t, i) => {
          const tile = document.createElement('div');
          tile.className = 'resx-tile' + (i === model.focus ? ' focus' : '') + (ticked.has(t.row) ? ' ticked' : '');
          tile.dataset.row = t.row;
          tile.dataset.id = t.id;
          tile.dataset.page = t.page;
          const imgs = document.createElement('div');
          imgs.className = 'resx-imgs';
          t.imgs.forEach((src, k) => {
            const panel = document.createElement('div');
            panel.className = 'resx-panel';
            const lab = document.createElement('div');
            lab.className = 'resx-plabel';
            lab.textContent = model.labels[k] || '';
            const im = document.createElement('img');
            im.src = src;
            im.alt = (model.labels[k] || '') + ' of ' + t.id;
            panel.append(lab, im);
            imgs.appendChild(panel);
          });
          imgs.title = 'click (or Enter) for every stamp, the metrics and the votes';
          imgs.addEventListener('click', () => {
            if (pending()) return;
            model.focus = i;
            model.send_msg({type: 'open', row: t.row});
          });
          tile.appendChild(imgs);
          const head = document.createElement('label');
          head.className = 'resx-head';
          const cb = document.createElement('input');
          cb.type = 'checkbox';
          cb.checked = ticked.has(t.row);
          cb.addEventListener('change', () => {
            const s = new Set(model.ticked);
            if (cb.checked) { s.add(t.row); } else { s.delete(t.row); }
            model.ticked = Array.from(s);
          });
          head.appendChild(cb);
          const name = document.createElement('span');
          name.className = 'resx-id';
          name.textContent = t.id;
          name.title = t.id;
          head.appendChild(name);
          tile.appendChild(head);
          const mine = document.createElement('div');
          mine.className = 'resx-mine';
          tile.appendChild(mine);
          const caption = document.createElement('div');
          caption.className = 'resx-caption';
          tile.appendChild(caption);
          grid.appendChild(tile);
        });
        updateCaptions();
        layout();
      }
      function columns() {
        const tiles = grid.querySelectorAll('.resx-tile');
        if (tiles.length < 2) return 1;
        const top = tiles[0].offsetTop;
        let n = 0;
        for (const t of tiles) { if (t.offsetTop !== top) break; n++; }
        return Math.max(n, 1);
      }
      // turn to page p with the focus on tile f now (the server sends the page's tiles)
      function doTurn(p, f) {
        p = clamp(p);
        if (p === want) return false;
        want = p;
        atEnd = false;
        showEnd('');
        model.focus = f;
        model.page = p;
        navState();
        return true;
      }
      // a turn asked for by a button: queued behind keys still waiting for their page
      function turn(p, f) {
        if (!pending() && !queue.length) return doTurn(p, f);
        p = clamp(p);
        if (p === target()) return false;
        queue.push({turn: p, focus: f});
        navState();
        return true;
      }
      prev.addEventListener('click', () => turn(target() - 1, 0));
      next.addEventListener('click', () => turn(target() + 1, 0));
      unvoted.addEventListener('click', () => enqueue('g'));

      function openComment(f) {
        const tile = grid.querySelectorAll('.resx-tile')[f];
        if (!tile) return;
        let box = tile.querySelector('.resx-comment');
        if (!box) {
          box = document.createElement('input');
          box.className = 'resx-comment';
          box.type = 'text';
          box.maxLength = 2000;
          box.placeholder = 'comment: Enter saves, Esc cancels';
          const row = model.tiles[f].row;
          box.addEventListener('keydown', (e) => {
            e.stopPropagation();
            if (e.key === 'Enter') {
              model.send_msg({type: 'comment', row: row, text: box.value});
              box.remove();
            } else if (e.key === 'Escape') {
              box.remove();
            }
          });
          tile.appendChild(box);
        }
        box.focus();
      }

      const votes = new Set(['1', '2', '3', '4', '5', 'f', 's']);
      const moves = new Set(['ArrowRight', 'ArrowLeft', 'ArrowDown', 'ArrowUp']);
      const others = new Set(['n', 'p', 'PageDown', 'PageUp', 'Enter', 'Escape', 'u', 'undo', 'c', '?', 'g']);
      // one key on the page shown (the tiles of `want`)
      function apply(key) {
        const n = model.tiles.length;
        if (!n) return;
        let f = Math.min(model.focus, n - 1);
        if (votes.has(key)) {
          if (atEnd) { model.send_msg({type: 'end'}); return; }
          model.send_msg({type: 'key', key: key, row: model.tiles[f].row});
          if (f < n - 1) model.focus = f + 1;  // the browser owns the focus while typing votes
          else if (!doTurn(want + 1, 0)) {     // past the last tile: the next page, or the end
            atEnd = true;
            showEnd('That was the last galaxy of the selection: keys vote again after you move (arrows, p, g).');
          }
          return;
        }
        atEnd = false;
        showEnd('');
        if (key === 'ArrowRight') {
          if (f === n - 1 && doTurn(want + 1, 0)) return;  // past the last tile: the next page
          f = Math.min(f + 1, n - 1);
        } else if (key === 'ArrowLeft') {
          if (f === 0 && doTurn(want - 1, model.per_page - 1)) return;  // before the first: the previous page
          f = Math.max(f - 1, 0);
        } else if (key === 'ArrowDown') f = Math.min(f + columns(), n - 1);
        else if (key === 'ArrowUp') f = Math.max(f - columns(), 0);
        else if (key === 'n' || key === 'PageDown') { doTurn(want + 1, 0); return; }
        else if (key === 'p' || key === 'PageUp') { doTurn(want - 1, 0); return; }
        else if (key === 'Enter') { model.send_msg({type: 'open', row: model.tiles[f].row}); return; }
        else if (key === 'Escape') { keyhelp.hidden = true; model.send_msg({type: 'close'}); return; }
        else if (key === 'u' || key === 'undo') { model.send_msg({type: 'undo'}); return; }
        else if (key === 'c') { openComment(f); return; }
        else if (key === '?') { keyhelp.hidden = !keyhelp.hidden; return; }
        else if (key === 'g') { model.send_msg({type: 'next_unvoted', row: model.tiles[f].row}); return; }
        model.focus = f;
      }
      function flush() {
        while (queue.length && !pending()) {
          const a = queue.shift();
          if (a.turn !== undefined) doTurn(a.turn, a.focus); else apply(a.key);
        }
        navState();
      }
      function enqueue(key) {
        if (pending() || queue.length) { queue.push({key: key}); return; }  // keep the order of the keys
        apply(key);
      }
      const onkey = (e) => {
        if (!model.tiles.length || e.altKey || e.metaKey) return;
        const tgt = e.composedPath()[0];
        if (tgt && (tgt.isContentEditable || ['TEXTAREA', 'SELECT'].includes(tgt.tagName) ||
            (tgt.tagName === 'INPUT' && tgt.type !== 'checkbox'))) return;
        let key = e.key.length === 1 ? e.key.toLowerCase() : e.key;
        if (e.key === '?') key = '?';
        if (e.ctrlKey) {
          if (key !== 'z') return;
          key = 'undo';
        }
        if (['Enter', ' '].includes(e.key) && tgt && ['BUTTON', 'A'].includes(tgt.tagName)) return;
        if (!votes.has(key) && !moves.has(key) && !others.has(key)) return;
        if (key === 'Escape' && !model.modal_open && keyhelp.hidden) return;  // nothing to close
        e.preventDefault();
        enqueue(key);
      };
      const drawWhere = () => { whereEl.textContent = model.where; };
      drawWhere();
      model.on('where', drawWhere);
      drawKeys();
      drawBar();
      draw();
      const resize = new ResizeObserver(() => layout());
      resize.observe(grid);
      model.on(['tiles', 'ticked', 'labels'], () => { draw(); flush(); });
      model.on('tile_px', layout);
      model.on('captions', updateCaptions);  // a vote: only the captions change, the grid stays
      model.on('colorbar', drawBar);
      model.on('keys', drawKeys);
      model.on('focus', showFocus);
      model.on('pages', navState);
      model.on('page', () => {
        if (model.page !== want) {  // the server turned the page (a new selection, sort or next-unvoted): drop held keys
          want = model.page;
          queue.length = 0;
          atEnd = false;
          showEnd('');
          navState();
        }
      });
      // a new selection: bring the gallery into view when it is below (or above) the fold
      model.on('reveal', () => requestAnimationFrame(() => {
        const r = root.getBoundingClientRect();
        if (r.top > window.innerHeight - 120 || r.bottom < 60) root.scrollIntoView({block: 'start'});
      }));
      document.addEventListener('keydown', onkey);
      model.on('remove', () => { document.removeEventListener('keydown', onkey); resize.disconnect(); });
      return root;
    }
    """

    def __init__(self, on_open=None, on_key=None, on_action=None, **params):
        super().__init__(**params)
        self._on_open = on_open
        self._on_key = on_key
        self._on_action = on_action

    def _handle_msg(self, msg: Any) -> None:
        if not isinstance(msg, dict):
            return
        kind = msg.get("type")
        if kind == "open" and self._on_open:
            self._on_open(int(msg["row"]))
        elif kind == "key" and self._on_key:
            self._on_key(str(msg["key"]), int(msg["row"]))
        elif kind in ("close", "undo", "comment", "next_unvoted", "end") and self._on_action:
            self._on_action(kind, msg)


class StampZoom(JSComponent):
    """Every stamp of one galaxy side by side, zoomed and panned together (up to ``max_zoom`` x).

    The wheel over a stamp zooms about the pointer, a drag pans, a double click resets; the
    buttons do the same. All panels share one view, so the same pixel is under the same place in
    each. The images are the stamps' own pixels (drawn without smoothing).
    """

    panels = param.List(default=[], doc="[{label, uri}] in display order")
    colorbar = param.Dict(default={}, doc="the residual stretch's colour bar ({uri, ticks, title})")
    px = param.Integer(default=200, doc="size of a panel at zoom 1 (CSS px)")
    max_zoom = param.Number(default=8.0)

    _stylesheets = [asset("gallery.css").read_text()]

    _esm = _COLORBAR_JS + """
    export function render({ model }) {
      const root = document.createElement('div');
      root.className = 'resx-zoom';
      const bar = document.createElement('div');
      bar.className = 'resx-zoom-bar';
      const mk = (t, title) => { const b = document.createElement('button'); b.type = 'button';
        b.className = 'resx-navbtn'; b.textContent = t; b.title = title; return b; };
      const zin = mk('+', 'zoom in (wheel over a stamp)'), zout = mk('-', 'zoom out'), reset = mk('reset', 'whole stamp (double click)');
      const level = document.createElement('span');
      level.className = 'resx-zoom-level';
      const cb = document.createElement('div');
      cb.className = 'resx-colorbar';
      bar.append(zout, zin, reset, level, cb);
      const row = document.createElement('div');
      row.className = 'resx-zoom-row';
      root.append(bar, row);
      let z = 1, cx = 0.5, cy = 0.5;  // zoom and the stamp fraction at the centre of the views
      function clampView() {
        const half = 0.5 / z;
        cx = Math.min(Math.max(cx, half), 1 - half);
        cy = Math.min(Math.max(cy, half), 1 - half);
      }
      function apply() {
        clampView();
        const size = model.px * z;
        row.querySelectorAll('img').forEach((im) => {
          im.style.width = size + 'px';
          im.style.height = size + 'px';
          im.style.left = (model.px / 2 - cx * size) + 'px';
          im.style.top = (model.px / 2 - cy * size) + 'px';
        });
        level.textContent = '×' + z.toFixed(z < 10 ? 1 : 0);
      }
      function zoomAt(factor, fx, fy) {  // keep the stamp fraction under (fx, fy) of the view in place
        const nz = Math.min(Math.max(z * factor, 1), model.max_zoom);
        const px = cx + (fx - 0.5) / z, py = cy + (fy - 0.5) / z;
        cx = px - (fx - 0.5) / nz;
        cy = py - (fy - 0.5) / nz;
        z = nz;
        apply();
      }
      function draw() {
        row.replaceChildren(...model.panels.map((p) => {
          const fig = document.createElement('div');
          fig.className = 'resx-zoom-panel';
          const lab = document.createElement('div');
          lab.className = 'resx-plabel';
          lab.textContent = p.label;
          const view = document.createElement('div');
          view.className = 'resx-zoom-view';
          view.style.width = model.px + 'px';
          view.style.height = model.px + 'px';
          const im = document.createElement('img');
          im.className = 'resx-big';
          im.src = p.uri;
          im.alt = p.label;
          im.draggable = false;
          view.appendChild(im);
          view.addEventListener('wheel', (e) => {
            e.preventDefault();
            const r = view.getBoundingClientRect();
            zoomAt(e.deltaY < 0 ? 1.25 : 0.8, (e.clientX - r.left) / r.width, (e.clientY - r.top) / r.height);
          }, {passive: false});
          view.addEventListener('pointerdown', (e) => {
            const x0 = e.clientX, y0 = e.clientY, cx0 = cx, cy0 = cy;
            view.setPointerCapture(e.pointerId);
            const move = (m) => { cx = cx0 - (m.clientX - x0) / (model.px * z); cy = cy0 - (m.clientY - y0) / (model.px * z); apply(); };
            const up = () => { view.removeEventListener('pointermove', move); view.removeEventListener('pointerup', up); };
            view.addEventListener('pointermove', move);
            view.addEventListener('pointerup', up);
          });
          view.addEventListener('dblclick', () => { z = 1; cx = cy = 0.5; apply(); });
          fig.append(lab, view);
          return fig;
        }));
        apply();
      }
      function drawBar() { renderColorbar(cb, model.colorbar || {}); }
      zin.addEventListener('click', () => zoomAt(1.5, 0.5, 0.5));
      zout.addEventListener('click', () => zoomAt(1 / 1.5, 0.5, 0.5));
      reset.addEventListener('click', () => { z = 1; cx = cy = 0.5; apply(); });
      draw();
      drawBar();
      model.on('panels', () => { const keep = [z, cx, cy]; draw(); [z, cx, cy] = keep; apply(); });
      model.on('colorbar', drawBar);
      model.on('px', draw);
      return root;
    }
    """


# --------------------------------------------------------------------------------------------
# The view
# --------------------------------------------------------------------------------------------
#: The keyboard shortcuts, as listed on the page (the component's key handler implements them).
KEY_HELP: list[list[str]] = [
    ["1–5", "vote " + ", ".join(CLASSES) + " and go on"],
    ["f", "fit-quality issue"],
    ["s", "skip"],
    ["← → ↑ ↓", "move"],
    ["n / p", "next / previous page (Page Down / Page Up)"],
    ["Enter", "open the detail"],
    ["Esc", "close it"],
    ["u", "undo your last vote (Ctrl+Z)"],
    ["c", "comment on your vote of the focused galaxy"],
    ["g", "next galaxy not voted by you"],
    ["?", "show / hide these keys"],
]

#: What the gallery shows of the selection.
SHOW = ("all", "not yet voted by me", "disputed")


class GalleryView(param.Parameterized):
    """The gallery of the current selection, with its controls and the detail view."""

    sort_by = param.Selector(default="selection order", objects=list(SORT_BY))
    show = param.Selector(default="all", objects=list(SHOW), doc="all, or only the galaxies not yet voted by "
                                                                   "the inspector, or those whose votes disagree")
    stretch = param.Selector(default="asinh", objects=list(STRETCHES), doc="residual stretch (in sky sigma)")
    limit = param.Number(default=5.0, bounds=(0.5, 1000.0), doc="visible residual range: +-limit sigma")
    invert = param.Boolean(default=False)
    panels = param.ListSelector(default=["residual", "object_only"], objects=list(ALL_KINDS),
                                doc="the stamps shown on each tile, in ALL_KINDS order")
    show_triplet = param.Boolean(default=False, doc="also show the GALFIT input and model")
    show_mask = param.Boolean(default=False, doc="also show the GOI mask")
    page = param.Integer(default=0, bounds=(0, None))

    def __init__(self, state: AppState, template=None, **params):
        acfg = state.acfg
        params.setdefault("stretch", acfg.get("stretch") if acfg.get("stretch") in STRETCHES else "asinh")
        params.setdefault("limit", float(acfg.get("stretch_limit") or 5.0))
        super().__init__(**params)
        self.state = state
        self.template = template
        self._order = np.empty(0, dtype=int)
        self.page_rows = np.empty(0, dtype=int)
        self._uris_key: tuple | None = None
        self._uris: dict[str, list[str]] = {}
        self._stretch = SigmaStretch(self.stretch, self.limit, self.invert)
        self._tiles_key: tuple | None = None  # what the browser's tiles show (their images and page)
        self._publishing = False  # True while the grid's focus is being copied into the state
        self.grid = GalleryGrid(on_open=self.open_detail, on_key=self._key, on_action=self._action,
                                keys=KEY_HELP, sizing_mode="stretch_width")
        self.info = pn.pane.Markdown("", margin=(0, 10), css_classes=["resx-gallery-info"])
        self.detail = pn.Column(sizing_mode="stretch_width")
        self.detail_row: int | None = None
        self._detail_head = pn.pane.Markdown("")
        self._detail_votes = pn.pane.Markdown("")
        # the page buttons live in the grid (the browser turns the page and holds back the keys typed meanwhile)
        self.grid.param.watch(self._on_grid_page, ["page"])
        # the focused tile and the ticked tiles are the state's (the voting view reads them there)
        self.grid.param.watch(lambda e: self._publish_focus(), ["focus", "tiles"])
        self.grid.param.watch(lambda e: self._publish_ticked(), ["ticked"])
        state.param.watch(self._on_focused_row, ["focused_row"])
        state.param.watch(self._on_ticked, ["ticked"])
        state.param.watch(self._on_selection, ["selected"])
        state.param.watch(lambda e: self._on_votes(), ["votes_version"])
        state.param.watch(lambda e: self.refresh(), ["run_cnn", "run_cvae", "model", "inspector"])
        self.param.watch(lambda e: self.refresh(), ["stretch", "limit", "invert", "panels"])
        self.param.watch(self._on_triplet, ["show_triplet", "show_mask"])
        self.param.watch(self._on_page, ["page"])
        self.param.watch(lambda e: self._reorder(), ["sort_by", "show"])
        self._reorder()

    # -- selection -> pages -------------------------------------------------------------------
    def _frame(self):
        st = self.state
        if st.embedding_error(st.run_of(st.model)):
            return None
        return st.map_frame()

    def _on_selection(self, event=None) -> None:
        self.state.ticked = []
        self._reorder()
        if len(self.state.selected):
            self.grid.reveal += 1

    def _on_triplet(self, event) -> None:
        """The two check boxes are shortcuts for the panels: triplet = original, model, residual (+ object-only)."""
        kinds = set(self.panels)
        if event.name == "show_triplet":
            kinds = (kinds | {"original", "model", "residual"}) if event.new else (kinds - {"original", "model"})
        else:
            kinds = (kinds | {"goi_mask"}) if event.new else (kinds - {"goi_mask"})
        kinds = [k for k in ALL_KINDS if k in kinds] or ["residual"]
        if kinds != list(self.panels):
            self.panels = kinds

    def _on_votes(self) -> None:
        self.refresh()
        if self.detail_row is not None and self.grid.modal_open:  # the open detail shows the new votes
            self._detail_head.object = self._detail_head_md(self.detail_row)
            self._detail_votes.object = self._votes_md(self.detail_row)

    # -- focus and ticks: the browser's, published in the state --------------------------------
    def _publish_focus(self) -> None:
        tiles = self.grid.tiles
        row = int(tiles[min(self.grid.focus, len(tiles) - 1)]["row"]) if tiles else None
        if self.state.focused_row != row:
            self._publishing = True  # no echo: the browser may have set a focus for tiles still on their way
            try:
                self.state.focused_row = row
            finally:
                self._publishing = False

    def _on_focused_row(self, event) -> None:
        """The state moved the focus (e.g. on to the next tile after a vote): show it."""
        if self._publishing:
            return
        rows = [t["row"] for t in self.grid.tiles]
        if event.new in rows and rows.index(event.new) != self.grid.focus:
            self.grid.focus = rows.index(event.new)

    def _publish_ticked(self) -> None:
        ticked = [int(r) for r in self.grid.ticked]
        if list(self.state.ticked) != ticked:
            self.state.ticked = ticked

    def _on_ticked(self, event) -> None:
        ticked = [int(r) for r in event.new]
        if [int(r) for r in self.grid.ticked] != ticked:
            self.grid.ticked = ticked

    def _reorder(self) -> None:
        """Order (sort) and filter the selection; the filter is applied here, not after each vote,
        so the tiles stay put while the inspector votes through a page."""
        st = self.state
        rows = np.asarray(st.selected, dtype=int)
        if self.show == "not yet voted by me":
            rows = rows[~st.voted_by_me(rows)]
        elif self.show == "disputed":
            rows = rows[st.disputed(rows)]
        if SORT_BY[self.sort_by][0]:
            table = pd.DataFrame({"id": st.ids}, index=np.arange(st.n))
            table["spf"] = st.catalog["spf"].to_numpy(dtype=float) if "spf" in st.catalog else np.nan
            table["disagreement"] = st.consensus_columns()[2]
            frame = self._frame()
            table["confidence"] = frame["confidence"].reindex(table.index) if frame is not None else np.nan
            rows = sort_rows(rows, table, self.sort_by)
        self._order = np.asarray(rows, dtype=int)
        self.grid.focus = 0
        if self.page != 0:
            self.page = 0  # triggers refresh
        else:
            self.refresh()

    def _turn(self, step: int) -> None:
        self.page = int(min(max(self.page + step, 0), n_pages(len(self._order)) - 1))

    def _on_page(self, event=None) -> None:
        if self.grid.page != self.page:  # turned here, not in the browser: start at the first tile
            self.grid.focus = 0
            self.grid.page = self.page
        self.refresh()

    def _on_grid_page(self, event) -> None:
        """The browser turned the page (it has set the focus it wants on the new page)."""
        page = int(min(max(event.new, 0), n_pages(len(self._order)) - 1))
        if page != self.page:
            self.page = page
        elif page != event.new:
            self.grid.page = page

    @property
    def kinds(self) -> list[str]:
        """The stamps on each tile, in :data:`ALL_KINDS` order."""
        return [k for k in ALL_KINDS if k in self.panels] or ["residual"]

    def tile_lines(self, rows: np.ndarray) -> list[tuple[list[str], str]]:
        """Caption lines and border colour of each tile (vectorised over the page)."""
        st = self.state
        label, nvotes, _ = st.consensus_columns()
        cats = st.catalog["catalog_class"].to_numpy()[rows]
        spf = st.catalog["spf"].to_numpy(dtype=float)[rows] if "spf" in st.catalog else np.full(len(rows), np.nan)
        frame = self._frame()
        if frame is not None:
            sub = frame.reindex(rows)
            preds = sub["predicted"].fillna(NO_LABEL).to_numpy()
            confs = sub["confidence"].to_numpy(dtype=float)
        else:
            preds, confs = np.full(len(rows), NO_LABEL, dtype=object), np.full(len(rows), np.nan)
        out = []
        for r, cat, pred, conf, sp in zip(rows, cats, preds, confs, spf):
            lines = [f"SPF {sp:.3g} · catalog: {cat}" if np.isfinite(sp) else f"catalog: {cat}"]
            if pred != NO_LABEL:
                lines.append(f"predicted: {pred} ({conf:.2f})" if np.isfinite(conf) else f"predicted: {pred}")
            n = nvotes[r]
            lines.append("consensus: hidden (blind mode: vote to see)" if label[r] == "hidden"
                         else f"consensus: {label[r]} · {n} vote{'s' if n != 1 else ''}")
            out.append((lines, CLASS_COLORS.get(label[r], CLASS_COLORS.get(cat, "#dddddd"))))
        return out

    def progress(self) -> str:
        """"N of M voted by you" in the selection and across the campaign (every galaxy of the workspace)."""
        st = self.state
        if not st.inspector:
            return "enter your name to vote"
        sel = np.asarray(st.selected, dtype=int)
        mine = st.my_voted_rows()
        in_sel = int(np.isin(sel, mine).sum()) if sel.size else 0
        return (f"{in_sel} of {sel.size} voted by you in this selection · "
                f"{mine.size:,} of {st.n:,} in the campaign")

    def refresh(self) -> None:
        """Redraw the current page."""
        n = len(self._order)
        pages = n_pages(n)
        page = min(self.page, pages - 1)
        rows = page_of(self._order, page)
        self.page_rows = rows
        self.state.page_rows = rows
        self.grid.pages = pages
        src = self.state.selection_source
        nsel = len(self.state.selected)
        shown = f" · showing {n} {self.show}" if self.show != "all" else ""
        self.info.object = (f"**{nsel}** selected{f' ({_md(src)})' if src else ''}{shown} · page {page + 1} / {pages}"
                            f" · {self.progress()}" if nsel else "No selection.")
        self.grid.where = (f"page {page + 1} / {pages} of {n}{' ' + self.show if self.show != 'all' else ''} · "
                           f"{self.progress()}" if nsel else "")
        if rows.size == 0:
            self.grid.param.update(tiles=[], captions=[], colorbar={})
            self._tiles_key = None
            return
        key = (tuple(rows.tolist()), tuple(self.kinds), self.stretch, self.limit, self.invert,
               self.state.workspace_path)
        try:
            if self._uris_key != key:  # votes change only the captions: keep the drawn stamps
                self._uris, self._stretch = self.render(rows, self.kinds)
                self._uris_key = key
            uris = self._uris
        except Exception as exc:
            log.exception("cannot read stamps")
            self.info.object += f"\n\n⚠ cannot read the stamps: {md(exc)}"
            uris = {k: [""] * rows.size for k in self.kinds}
        lines = self.tile_lines(rows)
        mine = self.state.my_labels(rows)
        captions = [{"row": int(r), "lines": lines[i][0], "color": lines[i][1], "mine": str(mine[i]),
                     "mine_color": CLASS_COLORS.get(str(mine[i]), "#888888")} for i, r in enumerate(rows)]
        tiles_key = (key, int(page)) if uris is self._uris and self._uris_key == key else None
        if tiles_key is not None and tiles_key == self._tiles_key:  # a vote or a new run: only the captions go to the browser
            if captions != self.grid.captions:
                self.grid.captions = captions
            return
        tiles = [{"row": int(r), "id": str(self.state.ids[r]), "page": int(page),
                  "imgs": [uris[k][i] for k in self.kinds]} for i, r in enumerate(rows)]
        self._tiles_key = tiles_key
        self.grid.focus = min(self.grid.focus, len(tiles) - 1)
        # captions first: the browser draws the new tiles with their captions in one go
        self.grid.param.update(captions=captions, labels=[KIND_LABELS[k] for k in self.kinds],
                               colorbar=self._stretch.colorbar(), tiles=tiles)

    def render(self, rows: np.ndarray, kinds: list[str], stretch: str | None = None,
               limit: float | None = None) -> tuple[dict[str, list[str]], SigmaStretch]:
        """PNG URIs of the stamps of ``rows`` in the gallery's stretch (or the one given), and that stretch."""
        sigmas = self.state.display_sigma(rows)
        # the GOI mask only when a sigma has to be measured on the stamp (outside the GOI)
        need_mask = "goi_mask" not in kinds and not np.isfinite(sigmas).all()
        stamps = self.state.stamps(rows, list(kinds) + (["goi_mask"] if need_mask else []))
        uris, stretch_used = render_stamps(stamps, stretch or self.stretch, self.invert, sigmas=sigmas,
                                           limit=self.limit if limit is None else limit)
        return {k: uris[k] for k in kinds}, stretch_used

    # -- keys and detail --------------------------------------------------------------------------
    def _key(self, key: str, row: int) -> None:
        self.state.vote_key(key, row)  # the component has already moved its focus on

    def _action(self, kind: str, msg: dict) -> None:
        """A key of the component other than a vote: close, undo, comment, next-unvoted, end."""
        if kind == "close":
            self.close_detail()
        elif kind == "undo":
            try:
                text = self.state.undo_described()
            except Exception as exc:  # noqa: BLE001 - the store refused: say so, keep the page
                text = f"Nothing undone: {exc}"
            _notify(text, "info")
        elif kind == "comment":
            why = self.state.comment(int(msg.get("row", -1)), str(msg.get("text", ""))[:MAX_COMMENT_CHARS])
            _notify(why or "Comment saved.", "warning" if why else "success")
        elif kind == "next_unvoted":
            self.next_unvoted()
        elif kind == "end":
            _notify("That was the last galaxy of the selection: move (arrows, p, g) to vote again.", "info")

    def find_id(self, text: str) -> bool:
        """Go to the galaxy named ``text`` (one id, as it is): its tile when it is in the gallery, else
        select it alone; its detail opens. False (and a message) when the workspace has no such id."""
        gid = str(text).strip()
        if not gid:
            return False
        row = int(self.state.row_of.get_indexer([gid])[0])
        if row < 0:
            _notify(f"No galaxy with the id {gid!r} in this workspace.", "warning")
            return False
        where = np.flatnonzero(self._order == row)
        if where.size == 0:
            self.state.select_ids([gid])
            where = np.flatnonzero(self._order == row)
        if where.size:
            self._go_to(int(where[0]))
        self.open_detail(row)
        return True

    def next_unvoted(self) -> bool:
        """Move to the first galaxy of the gallery's order not yet voted by the inspector; False when none is left."""
        order = self._order
        if order.size == 0:
            return False
        todo = np.flatnonzero(~self.state.voted_by_me(order))
        if todo.size == 0:
            _notify("You have voted on every galaxy of this selection.", "success")
            return False
        self._go_to(int(todo[0]))
        return True

    def _go_to(self, i: int) -> None:
        """Show the ``i``-th galaxy of the gallery's order: its page, its tile focused."""
        page, focus = divmod(i, PER_PAGE)
        if page != self.page:
            self.page = page  # _on_page: the grid's page follows, the focus goes to its first tile
        self.grid.focus = focus

    def detail_view(self, row: int) -> pn.viewable.Viewable:
        """Every stamp (zoom and pan, one stretch for this galaxy), coordinates, metrics, votes and a comment box."""
        st = self.state
        row = int(row)
        gid = str(st.ids[row])
        stretch = pn.widgets.RadioButtonGroup(options=list(STRETCHES), value=self.stretch, color="primary",
                                              variant="outline", width=210, stylesheets=[ACTIVE_CSS])
        limit = pn.widgets.FloatInput(label="range ± σ", value=float(self.limit), start=0.5, end=1000.0, step=1.0,
                                      width=90)
        zoom = StampZoom(px=200, sizing_mode="stretch_width")
        note = pn.pane.Markdown("", margin=(0, 5))

        def draw(*_):
            try:
                uris, used = self.render(np.array([row]), list(ALL_KINDS), stretch=stretch.value, limit=limit.value)
            except Exception as exc:  # noqa: BLE001 - the rest of the detail still shows
                log.exception("cannot read the stamps of %s", gid)
                note.object = f"⚠ Cannot read the stamps of {_md(gid)}: {_md(exc)}"
                return
            zoom.param.update(panels=[{"label": KIND_LABELS[k], "uri": uris[k][0]} for k in ALL_KINDS],
                              colorbar=used.colorbar())

        stretch.param.watch(draw, "value")
        limit.param.watch(draw, "value")
        draw()
        cat = st.catalog.iloc[row]
        keys = [c for c in ("field", "z", "logmass", "hmag", "catalog_class", "fit_quality", "prep_status",
                            "prep_message", "sky_sigma", "stamp_sigma", "spf", "spf_pos", "spf_neg", "bumpiness", "rff",
                            "gf_mag", "gf_re", "gf_n", "gf_ar", "gf_pa", "split") if c in cat.index]
        metrics = "\n".join(f"| {k} | {_fmt(cat[k], k)} |" for k in keys)
        frame = self._frame()
        if frame is not None and row in frame.index:
            fr = frame.loc[row]
            metrics += f"\n| predicted ({st.model.upper()}) | {_md(fr['predicted'])} ({_fmt(fr['confidence'])}) |"
            metrics += f"\n| GMM cluster | {_md(fr['gmm'])} |"
        comment = pn.widgets.TextAreaInput(placeholder="a comment on your vote of this galaxy", height=60,
                                           max_length=MAX_COMMENT_CHARS, sizing_mode="stretch_width")
        save = pn.widgets.Button(label="Save comment", width=120)
        said = pn.pane.Markdown("", margin=(0, 5))

        def save_comment(_):
            why = st.comment(row, comment.value)
            said.object = _md(why) if why else "Comment saved."
            if not why:
                comment.value = ""

        save.on_click(save_comment)
        close = pn.widgets.Button(label="Close", width=80, align="end")
        close.on_click(lambda e: self.close_detail())
        self._detail_head = pn.pane.Markdown(self._detail_head_md(row))
        self._detail_votes = pn.pane.Markdown(self._votes_md(row), sizing_mode="stretch_width")
        return pn.Column(
            pn.Row(self._detail_head, close),
            pn.Row(pn.pane.Markdown("stretch for this galaxy", margin=(8, 5)), stretch, limit, align="end"),
            zoom, note,
            pn.Row(pn.Column(pn.pane.HTML(self._coordinates_html(row), margin=(0, 5)),
                             pn.pane.Markdown("| metric | value |\n|---|---|\n" + metrics), width=380),
                   pn.Column(self._detail_votes, comment, pn.Row(save, said), sizing_mode="stretch_width"),
                   sizing_mode="stretch_width"),
            css_classes=["resx-detail"], sizing_mode="stretch_width",
        )

    def _detail_head_md(self, row: int) -> str:
        label, nvotes, _ = self.state.consensus_columns()
        mine = self.state.my_labels([row])[0]
        you = f" · you: **{_md(mine)}**" if mine else " · not voted by you"
        return f"## {_md(self.state.ids[row])}\nconsensus **{_md(label[row])}** · {nvotes[row]} vote(s){you}"

    def _votes_md(self, row: int) -> str:
        """The galaxy's current votes with their times and comments (every cell escaped), as Markdown."""
        st = self.state
        votes = st.galaxy_votes(str(st.ids[row]))
        if "created_at" in votes:
            votes = votes.assign(time=votes["created_at"].dt.strftime("%Y-%m-%d %H:%M:%S UTC"))
        hidden = st.blind and not st.sees_all and not (len(votes) and st.is_me(votes["inspector"]).any())
        if hidden:
            return f"### Votes\nhidden. {HIDDEN_TIP}"
        if not len(votes):
            return "### Votes\nNo votes yet."
        cols = [c for c in ("inspector", "label", "comment", "time", "source") if c in votes]
        return ("### Votes\n| " + " | ".join(cols) + " |\n|" + "---|" * len(cols) + "\n" + "\n".join(
            "| " + " | ".join(_fmt(v) for v in rec) + " |" for rec in votes[cols].itertuples(index=False)))

    def _coordinates_html(self, row: int) -> str:
        """RA/Dec in full precision (degrees and sexagesimal) and, when the catalog or the config names one,
        a link to a public cutout service."""
        cat = self.state.catalog.iloc[row]
        if "ra" not in cat.index or "dec" not in cat.index:
            return ""
        try:
            ra, dec = float(cat["ra"]), float(cat["dec"])
        except (TypeError, ValueError):
            return ""
        if not (np.isfinite(ra) and np.isfinite(dec)):
            return ""
        from astropy import units as u
        from astropy.coordinates import SkyCoord

        hms = SkyCoord(ra * u.deg, dec * u.deg).to_string("hmsdms", precision=3, sep=":")
        out = (f"<div class='resx-coords'><b>RA, Dec</b> {ra:.8f}°, {dec:+.8f}° "
               f"<span style='color:#555'>({html.escape(hms)})</span></div>")
        url = cutout_url(cat, self.state.acfg.get("cutout_url", ""))
        if url:
            out += f"<div><a href='{html.escape(url, quote=True)}' target='_blank' rel='noopener noreferrer'>" \
                   f"open in the survey's cutout service ↗</a></div>"
        return out

    def open_detail(self, row: int) -> None:
        self.detail_row = int(row)
        self.detail[:] = [self.detail_view(row)]
        self.grid.modal_open = True
        if self.template is not None and hasattr(self.template, "open_modal"):
            self.template.open_modal()

    def close_detail(self) -> None:
        self.grid.modal_open = False
        if self.template is not None and hasattr(self.template, "close_modal"):
            self.template.close_modal()

    # -- layout -------------------------------------------------------------------------------------
    def controls(self) -> pn.viewable.Viewable:
        stretch = pn.widgets.RadioButtonGroup.from_param(self.param.stretch, color="primary",
                                                         variant="outline", width=230,
                                                         css_classes=["resx-stretch"], stylesheets=[ACTIVE_CSS])
        limit = pn.widgets.FloatInput.from_param(self.param.limit, label="range ± σ", step=1.0, width=90)
        panels = pn.widgets.CheckButtonGroup.from_param(self.param.panels, options={KIND_LABELS[k]: k for k in ALL_KINDS},
                                                        color="primary", variant="outline",
                                                        css_classes=["resx-panels"], stylesheets=[ACTIVE_CSS])
        find = pn.widgets.TextInput(label="find one id", placeholder="an id, as it is; Enter", width=200)
        find.param.watch(lambda e: self.find_id(e.new) if e.new else None, "value")
        # FlexBoxes that wrap: at any width from 1280 px every control stays inside the gallery column
        # (a Row does not wrap: its last controls were cut off at the column's right edge)
        return pn.Column(
            pn.FlexBox(find, pn.widgets.Select.from_param(self.param.sort_by, label="sort by", width=190),
                       pn.widgets.Select.from_param(self.param.show, label="show", width=170),
                       pn.Column(pn.pane.Markdown("residual stretch", margin=(0, 5)), stretch, margin=0),
                       pn.Row(limit, pn.widgets.Checkbox.from_param(self.param.invert, label="invert", align="end"),
                              margin=0),
                       flex_wrap="wrap", align_items="flex-end", sizing_mode="stretch_width",
                       css_classes=["resx-gallery-controls"]),
            pn.FlexBox(pn.pane.Markdown("panels", margin=(8, 5)), panels,
                       pn.widgets.Checkbox.from_param(self.param.show_triplet, label="show triplet", align="center"),
                       pn.widgets.Checkbox.from_param(self.param.show_mask, label="mask", align="center"),
                       flex_wrap="wrap", align_items="center", sizing_mode="stretch_width",
                       css_classes=["resx-panel-controls"]),
            margin=0, sizing_mode="stretch_width",
        )

    def panel(self) -> pn.viewable.Viewable:
        return pn.Column(
            self.controls(),
            self.info,
            self.grid,
            sizing_mode="stretch_width",
            name="Gallery",
            css_classes=["resx-gallery-panel"],
        )


def cutout_url(row: Any, template: str) -> str:
    """The public cutout link of a catalog row: its ``cutout_url`` column, else ``template`` (config
    ``app.cutout_url``) filled with ``{ra}``, ``{dec}`` (degrees) and ``{id}`` (URL-quoted); only
    http(s) links, '' when there is none."""
    from urllib.parse import quote

    url = ""
    own = row.get("cutout_url", "") if hasattr(row, "get") else ""
    if isinstance(own, str) and own.strip():
        url = own.strip()
    elif template:
        try:
            url = template.format(ra=float(row["ra"]), dec=float(row["dec"]), id=quote(str(row["id"]), safe=""))
        except (KeyError, ValueError, IndexError, TypeError):
            return ""
    return url if url.lower().startswith(("https://", "http://")) else ""


def _notify(msg: str, kind: str = "info") -> None:
    if pn.state.notifications is not None:
        notify(msg, kind)  # escaped: Notyf renders HTML and the message may quote user text
    else:
        log.info("%s", msg)


def _md(text: Any) -> str:
    """User text (an id, a name, a comment) as literal Markdown: no markup, no HTML."""
    return md(text)


def _fmt(v: Any, key: str = "") -> str:
    """A catalog value for a table cell: RA/Dec in full precision (degrees), other floats to 4 digits."""
    if isinstance(v, (bytes, np.bytes_)):
        v = v.decode(errors="replace")
    if isinstance(v, (float, np.floating)):
        if not np.isfinite(v):
            return "—"
        if key in ("ra", "dec"):
            return f"{float(v):.8f}°"
        return f"{v:.4g}"
    return _md(v)  # text (a field, a prep message) is data
