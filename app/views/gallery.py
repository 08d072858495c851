"""The stamp gallery: the selected galaxies' residual stamps, paged and sortable, with voting keys.

Stamps are drawn server-side as small PNGs (a residual stretch from ``astropy.visualization``:
symmetric limits around zero, a diverging colour map, linear / asinh / zscale, invert, and a
per-stamp or shared scale) and shown by one light JavaScript component (:class:`GalleryGrid`),
which also reports clicks, ticks and the keyboard shortcuts (1–5, f, s, arrows).
"""

from __future__ import annotations

import base64
import io
import logging
from typing import Any

import matplotlib
import numpy as np
import pandas as pd
import panel as pn
import param
from astropy.visualization import AsinhStretch, ZScaleInterval
from panel.custom import JSComponent
from PIL import Image

from app import asset
from app.palettes import CLASS_COLORS, NO_LABEL
from app.selection import PER_PAGE, SORT_BY, n_pages, page_of, sort_rows
from app.state import KEYS, AppState
from app.text import md

__all__ = ["ALL_KINDS", "KEYS", "GalleryGrid", "GalleryView", "render_stamps", "residual_limit", "stretch_residual"]

log = logging.getLogger(__name__)

STRETCHES = ("linear", "asinh", "zscale")
RESIDUAL_KINDS = ("residual", "object_only")
ALL_KINDS = ("original", "model", "residual", "object_only", "goi_mask")


# --------------------------------------------------------------------------------------------
# Stretch and PNG encoding
# --------------------------------------------------------------------------------------------
def residual_limit(images: np.ndarray, method: str) -> float:
    """Symmetric display limit L (the stamps are shown on [-L, L]).

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

    linear and zscale: u = clip(x / L, -1, 1); asinh: sign(u) · AsinhStretch(a=0.1)(|u|).
    """
    u = np.clip(np.nan_to_num(np.asarray(image, dtype=float) / limit), -1.0, 1.0)
    if method == "asinh":
        u = np.sign(u) * AsinhStretch(a=0.1)(np.abs(u), clip=True)
    return 0.5 * (u + 1.0)


def stretch_positive(image: np.ndarray) -> np.ndarray:
    """An input or model image to [0, 1]: zscale-like low end, asinh stretch."""
    data = np.nan_to_num(np.asarray(image, dtype=float))
    lo = float(np.percentile(data, 1.0))
    hi = float(np.percentile(data, 99.8))
    if hi <= lo:
        hi = lo + 1.0
    u = np.clip((data - lo) / (hi - lo), 0, 1)
    return AsinhStretch(a=0.1)(u, clip=True)


def to_png_uri(unit: np.ndarray, cmap: str) -> str:
    """A [0, 1] image as a PNG data URI (row 0 at the bottom, as astronomers expect)."""
    rgba = matplotlib.colormaps[cmap](unit[::-1], bytes=True)
    buf = io.BytesIO()
    Image.fromarray(rgba[..., :3]).save(buf, format="PNG", optimize=False, compress_level=1)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def render_stamps(stamps: dict[str, np.ndarray], method: str = "asinh", shared: bool = False,
                  invert: bool = False) -> dict[str, list[str]]:
    """PNG data URIs for each kind of stamp (kind -> one URI per galaxy)."""
    div = "RdBu" if invert else "RdBu_r"
    out: dict[str, list[str]] = {}
    for kind, imgs in stamps.items():
        if kind in RESIDUAL_KINDS:
            shared_lim = residual_limit(imgs, method) if shared else None
            out[kind] = [to_png_uri(stretch_residual(im, shared_lim or residual_limit(im, method), method), div)
                         for im in imgs]
        elif kind == "goi_mask":
            grey = "gray_r" if invert else "gray"
            out[kind] = [to_png_uri((np.asarray(im) > 0).astype(float), grey) for im in imgs]
        else:
            out[kind] = [to_png_uri(stretch_positive(im), "gray_r" if invert else "gray") for im in imgs]
    return out


# --------------------------------------------------------------------------------------------
# The JavaScript tile grid
# --------------------------------------------------------------------------------------------
class GalleryGrid(JSComponent):
    """Tiles of stamps with their page buttons; reports clicks ('open'), ticks, focus, page turns and voting keys.

    The browser owns the page turns and the keyboard focus: "next ▶" (or an arrow key past the
    page's last tile) sets ``page`` at once, and every key typed before the server has sent that
    page's tiles is held back and replayed on them (otherwise it would label a tile of the old
    page: the server answers the turn only after the votes queued before it). Turns asked for
    meanwhile wait in the same queue, so each key lands on the page it was typed for. Each tile carries
    the page it belongs to, so the browser knows which page it shows.

    The stamps (``tiles``) and the captions (``captions``) are separate properties: a vote
    changes only the captions, which the browser patches into the tiles it has drawn, so a
    keyboard vote does not send the page's images again nor rebuild the grid.
    """

    tiles = param.List(default=[], doc="[{row, id, page, imgs: [uri]}]: changes only with the page, "
                                        "the selection, the sort or the stretch")
    captions = param.List(default=[], doc="[{row, lines: [str], color}]: the tiles' captions and border "
                                          "colours, updated in place after a vote (small; no images)")
    ticked = param.List(default=[], doc="catalog rows whose tick box is on")
    focus = param.Integer(default=0, doc="index of the focused tile on the page")
    page = param.Integer(default=0, doc="the page asked for (0-based); set by the browser's buttons and arrows")
    pages = param.Integer(default=1, doc="number of pages")
    per_page = param.Integer(default=PER_PAGE)
    tile_px = param.Integer(default=104)

    _stylesheets = [asset("gallery.css").read_text()]

    _esm = """
    export function render({ model, el }) {
      const root = document.createElement('div');
      const nav = document.createElement('div');
      nav.className = 'resx-nav';
      nav.style.cssText = 'display: flex; gap: 6px; padding: 4px;';
      const prev = document.createElement('button');
      prev.textContent = '◀ previous';
      const next = document.createElement('button');
      next.textContent = 'next ▶';
      for (const b of [prev, next]) {
        b.type = 'button';
        b.style.cssText = 'width: 100px; padding: 4px; border: 1px solid #ccc; border-radius: 4px; background: #fff; cursor: pointer;';
      }
      nav.append(prev, next);
      const grid = document.createElement('div');
      grid.className = 'resx-grid';
      root.append(nav, grid);

      let want = model.page;  // the page the browser asked for; the tiles follow from the server
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
        for (const b of [prev, next]) { b.style.opacity = b.disabled ? '0.4' : '1'; }
      }
      function showFocus() {
        grid.querySelectorAll('.resx-tile').forEach((t, i) => t.classList.toggle('focus', i === model.focus));
      }
      const lineCache = new Map();  // tile element -> the caption last written into it (skip unchanged ones)
      function writeCaption(tile, c) {
        const key = JSON.stringify(c);
        if (lineCache.get(tile) === key) return;
        lineCache.set(tile, key);
        tile.style.borderColor = c.color;
        const box = tile.querySelector('.resx-caption');
        box.replaceChildren(...c.lines.map((line) => {
          const d = document.createElement('div');
          d.className = 'resx-line';
          d.textContent = line;
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
          for (const src of t.imgs) {
            const im = document.createElement('img');
            im.src = src;
            im.style.width = model.tile_px + 'px';
            im.style.height = model.tile_px + 'px';
            imgs.appendChild(im);
          }
          imgs.title = 'click for every stamp, the metrics and the votes';
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
          head.appendChild(name);
          tile.appendChild(head);
          const caption = document.createElement('div');
          caption.className = 'resx-caption';
          tile.appendChild(caption);
          grid.appendChild(tile);
        });
        updateCaptions();
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

      const keys = new Set(['1', '2', '3', '4', '5', 'f', 's']);
      const arrows = new Set(['ArrowRight', 'ArrowLeft', 'ArrowDown', 'ArrowUp']);
      // one key on the page shown (the tiles of `want`)
      function apply(key) {
        const n = model.tiles.length;
        let f = Math.min(model.focus, n - 1);
        if (keys.has(key)) {
          model.send_msg({type: 'key', key: key, row: model.tiles[f].row});
          model.focus = Math.min(f + 1, n - 1);  // the browser owns the focus while typing votes
          return;
        }
        if (key === 'ArrowRight') {
          if (f === n - 1 && doTurn(want + 1, 0)) return;  // past the last tile: the next page
          f = Math.min(f + 1, n - 1);
        } else if (key === 'ArrowLeft') {
          if (f === 0 && doTurn(want - 1, model.per_page - 1)) return;  // before the first: the previous page
          f = Math.max(f - 1, 0);
        } else if (key === 'ArrowDown') f = Math.min(f + columns(), n - 1);
        else if (key === 'ArrowUp') f = Math.max(f - columns(), 0);
        model.focus = f;
      }
      function flush() {
        while (queue.length && !pending()) {
          const a = queue.shift();
          if (a.turn !== undefined) doTurn(a.turn, a.focus); else apply(a.key);
        }
        navState();
      }
      const onkey = (e) => {
        if (!model.tiles.length || e.ctrlKey || e.metaKey || e.altKey) return;
        const tgt = e.composedPath()[0];
        if (tgt && (tgt.isContentEditable || ['TEXTAREA', 'SELECT'].includes(tgt.tagName) ||
            (tgt.tagName === 'INPUT' && tgt.type !== 'checkbox'))) return;
        const key = keys.has(e.key.toLowerCase()) ? e.key.toLowerCase() : e.key;
        if (!keys.has(key) && !arrows.has(key)) return;
        e.preventDefault();
        if (pending() || queue.length) { queue.push({key: key}); return; }  // keep the order of the keys
        apply(key);
      };
      draw();
      model.on(['tiles', 'ticked', 'tile_px'], () => { draw(); flush(); });
      model.on('captions', updateCaptions);  // a vote: only the captions change, the grid stays
      model.on('focus', showFocus);
      model.on('pages', navState);
      model.on('page', () => {
        if (model.page !== want) {  // the server turned the page (a new selection or sort): drop held keys
          want = model.page;
          queue.length = 0;
          navState();
        }
      });
      document.addEventListener('keydown', onkey);
      model.on('remove', () => document.removeEventListener('keydown', onkey));
      return root;
    }
    """

    def __init__(self, on_open=None, on_key=None, **params):
        super().__init__(**params)
        self._on_open = on_open
        self._on_key = on_key

    def _handle_msg(self, msg: Any) -> None:
        if not isinstance(msg, dict):
            return
        if msg.get("type") == "open" and self._on_open:
            self._on_open(int(msg["row"]))
        elif msg.get("type") == "key" and self._on_key:
            self._on_key(str(msg["key"]), int(msg["row"]))


# --------------------------------------------------------------------------------------------
# The view
# --------------------------------------------------------------------------------------------
class GalleryView(param.Parameterized):
    """The gallery of the current selection, with its controls and the detail view."""

    sort_by = param.Selector(default="selection order", objects=list(SORT_BY))
    stretch = param.Selector(default="asinh", objects=list(STRETCHES))
    invert = param.Boolean(default=False)
    shared_scale = param.Boolean(default=False, doc="one display limit for every stamp on the page")
    show_triplet = param.Boolean(default=False, doc="also show the GALFIT input and model")
    show_mask = param.Boolean(default=False, doc="also show the GOI mask")
    page = param.Integer(default=0, bounds=(0, None))

    def __init__(self, state: AppState, template=None, **params):
        super().__init__(**params)
        self.state = state
        self.template = template
        self._order = np.empty(0, dtype=int)
        self.page_rows = np.empty(0, dtype=int)
        self._uris_key: tuple | None = None
        self._uris: dict[str, list[str]] = {}
        self._tiles_key: tuple | None = None  # what the browser's tiles show (their images and page)
        self._publishing = False  # True while the grid's focus is being copied into the state
        self.grid = GalleryGrid(on_open=self.open_detail, on_key=self._key, sizing_mode="stretch_width")
        self.info = pn.pane.Markdown("", margin=(0, 10))
        self.detail = pn.Column(sizing_mode="stretch_width")
        # the page buttons live in the grid (the browser turns the page and holds back the keys typed meanwhile)
        self.grid.param.watch(self._on_grid_page, ["page"])
        # the focused tile and the ticked tiles are the state's (the voting view reads them there)
        self.grid.param.watch(lambda e: self._publish_focus(), ["focus", "tiles"])
        self.grid.param.watch(lambda e: self._publish_ticked(), ["ticked"])
        state.param.watch(self._on_focused_row, ["focused_row"])
        state.param.watch(self._on_ticked, ["ticked"])
        state.param.watch(self._on_selection, ["selected"])
        state.param.watch(lambda e: self.refresh(), ["votes_version", "run_cnn", "run_cvae", "model", "inspector"])
        self.param.watch(lambda e: self.refresh(), ["stretch", "invert", "shared_scale", "show_triplet",
                                                    "show_mask"])
        self.param.watch(self._on_page, ["page"])
        self.param.watch(lambda e: self._reorder(), ["sort_by"])
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
        st = self.state
        rows = st.selected
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
        kinds = ["residual", "object_only"]
        if self.show_triplet:
            kinds = ["original", "model"] + kinds
        if self.show_mask:
            kinds.append("goi_mask")
        return kinds

    def tile_lines(self, rows: np.ndarray) -> list[tuple[list[str], str]]:
        """Caption lines and border colour of each tile (vectorised over the page)."""
        st = self.state
        label, nvotes, _ = st.consensus_columns()
        cats = st.catalog["catalog_class"].to_numpy()[rows]
        frame = self._frame()
        if frame is not None:
            sub = frame.reindex(rows)
            preds = sub["predicted"].fillna(NO_LABEL).to_numpy()
            confs = sub["confidence"].to_numpy(dtype=float)
        else:
            preds, confs = np.full(len(rows), NO_LABEL, dtype=object), np.full(len(rows), np.nan)
        out = []
        for r, cat, pred, conf in zip(rows, cats, preds, confs):
            lines = [f"catalog: {cat}"]
            if pred != NO_LABEL:
                lines.append(f"predicted: {pred} ({conf:.2f})" if np.isfinite(conf) else f"predicted: {pred}")
            n = nvotes[r]
            lines.append(f"consensus: {label[r]} · {n} vote{'s' if n != 1 else ''}")
            out.append((lines, CLASS_COLORS.get(label[r], CLASS_COLORS.get(cat, "#dddddd"))))
        return out

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
        self.info.object = (f"**{n}** selected{f' ({md(src)})' if src else ''} · page {page + 1} / {pages}"
                            if n else "No selection.")
        if rows.size == 0:
            self.grid.param.update(tiles=[], captions=[])
            self._tiles_key = None
            return
        key = (tuple(rows.tolist()), tuple(self.kinds), self.stretch, self.shared_scale, self.invert,
               self.state.workspace_path)
        try:
            if self._uris_key != key:  # votes change only the captions: keep the drawn stamps
                stamps = self.state.stamps(rows, self.kinds)
                self._uris = render_stamps(stamps, self.stretch, self.shared_scale, self.invert)
                self._uris_key = key
            uris = self._uris
        except Exception as exc:
            log.exception("cannot read stamps")
            self.info.object += f"\n\n⚠ cannot read the stamps: {md(exc)}"
            uris = {k: [""] * rows.size for k in self.kinds}
        lines = self.tile_lines(rows)
        captions = [{"row": int(r), "lines": lines[i][0], "color": lines[i][1]} for i, r in enumerate(rows)]
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
        self.grid.param.update(captions=captions, tiles=tiles)

    # -- keys and detail --------------------------------------------------------------------------
    def _key(self, key: str, row: int) -> None:
        self.state.vote_key(key, row)  # the component has already moved its focus on

    def detail_view(self, row: int) -> pn.viewable.Viewable:
        """Every stamp, the metrics and every vote of one galaxy."""
        st = self.state
        gid = str(st.ids[row])
        try:
            stamps = self.state.stamps(np.array([row]), ALL_KINDS)
            uris = render_stamps(stamps, self.stretch, self.shared_scale, self.invert)
            imgs = pn.Row(*[pn.Column(pn.pane.Markdown(f"**{k.replace('_', '-')}**", margin=(0, 5)),
                                      pn.pane.HTML(f'<img src="{uris[k][0]}" class="resx-big">', margin=0))
                            for k in ALL_KINDS])
        except Exception as exc:
            imgs = pn.pane.Alert(f"Cannot read the stamps of {md(gid)}: {md(exc)}", alert_type="danger")
        cat = st.catalog.iloc[row]
        keys = [c for c in ("field", "ra", "dec", "z", "logmass", "hmag", "catalog_class", "fit_quality", "prep_status",
                            "prep_message", "sky_sigma", "spf", "spf_pos", "spf_neg", "bumpiness", "rff", "gf_mag",
                            "gf_re", "gf_n", "gf_ar", "gf_pa", "split") if c in cat.index]
        metrics = "\n".join(f"| {k} | {_fmt(cat[k])} |" for k in keys)
        frame = self._frame()
        if frame is not None and row in frame.index:
            fr = frame.loc[row]
            metrics += f"\n| predicted ({st.model.upper()}) | {_fmt(fr['predicted'])} ({_fmt(fr['confidence'])}) |"
            metrics += f"\n| GMM cluster | {_fmt(fr['gmm'])} |"
        label, nvotes, _ = st.consensus_columns()
        votes = st.galaxy_votes(gid)  # every current vote with its comment and time
        if "created_at" in votes:
            votes = votes.assign(time=votes["created_at"].dt.strftime("%Y-%m-%d %H:%M UTC"))
        hidden = st.blind and not st.sees_all and not (len(votes) and st.is_me(votes["inspector"]).any())
        if hidden:
            vote_md = f"{nvotes[row]} vote(s); blind mode: vote first to see them."
        elif len(votes):
            cols = [c for c in ("inspector", "label", "comment", "time", "source") if c in votes]
            vote_md = "| " + " | ".join(cols) + " |\n|" + "---|" * len(cols) + "\n" + "\n".join(
                "| " + " | ".join(_fmt(v) for v in rec) + " |" for rec in votes[cols].itertuples(index=False))
        else:
            vote_md = "No votes yet."
        close = pn.widgets.Button(label="Close", width=80, align="end")
        close.on_click(lambda e: self.close_detail())
        return pn.Column(
            pn.Row(pn.pane.Markdown(f"## {md(gid)}\nconsensus **{md(label[row])}** · {nvotes[row]} vote(s)"), close),
            imgs,
            pn.Row(pn.pane.Markdown("| metric | value |\n|---|---|\n" + metrics, width=380),
                   pn.pane.Markdown("### Votes\n" + vote_md, width=420)),
            css_classes=["resx-detail"],
        )

    def open_detail(self, row: int) -> None:
        self.detail[:] = [self.detail_view(row)]
        if self.template is not None and hasattr(self.template, "open_modal"):
            self.template.open_modal()

    def close_detail(self) -> None:
        if self.template is not None and hasattr(self.template, "close_modal"):
            self.template.close_modal()

    # -- layout -------------------------------------------------------------------------------------
    def controls(self) -> pn.viewable.Viewable:
        w = pn.Param(self.param, parameters=["sort_by", "stretch", "invert", "shared_scale", "show_triplet",
                                            "show_mask"],
                     widgets={"sort_by": {"type": pn.widgets.Select, "width": 190},
                              "stretch": {"type": pn.widgets.RadioButtonGroup, "width": 190}},
                     show_name=False, default_layout=pn.Row, margin=0)
        return w

    def panel(self) -> pn.viewable.Viewable:
        return pn.Column(
            self.controls(),
            self.info,
            self.grid,
            sizing_mode="stretch_width",
            name="Gallery",
        )


def _fmt(v: Any) -> str:
    """A value for a Markdown table cell: numbers formatted, text escaped (names, comments are data)."""
    if isinstance(v, (bytes, np.bytes_)):
        v = v.decode(errors="replace")
    if isinstance(v, (float, np.floating)):
        return "—" if not np.isfinite(v) else f"{v:.4g}"
    return md(v)
