"""The latent map: PCs of the active run, coloured, with lasso and box selection.

Large samples are rasterized by datashader; the selection is computed on the data from the
lasso's polygon (``Lasso`` stream) or the box (``BoundsXY`` stream) by
:func:`app.state.points_in_polygon`, never from drawn glyphs, so it is exact at 10⁶ points.
(``Selection1D`` does not fire on rasterized plots, holoviews#6436.)
"""

from __future__ import annotations

import logging

import holoviews as hv
import numpy as np
import pandas as pd
import panel as pn

from app.palettes import color_key
from app.state import COLOR_BY, AppState
from app.text import html_text

log = logging.getLogger(__name__)

#: Above this many points the map is rasterized (no per-point hover).
RASTER_N = 20_000
MAX_HIGHLIGHT = 20_000
HOVER = [("id", "@id"), ("catalog", "@catalog_class"), ("consensus", "@consensus"),
         ("predicted", "@predicted"), ("SPF", "@spf{0.000}")]
SELECTED_COLOR = "#000000"
QUEUE_COLOR = "#ff7f0e"


#: Without focus the map zooms with the wheel only while this key is held (the wheel scrolls the page).
ZOOM_MODIFIER = "ctrl"
#: What the map's header says about the wheel.
WHEEL_HINT = "click the map, then the wheel zooms (or hold Ctrl) · Esc or a click elsewhere: the wheel scrolls the page"

#: Keeps the lasso on when its toolbar icon is clicked while it is already the active tool (a new
#: user's first click on the icon would otherwise turn it off); choosing another drag tool still works.
_KEEP_LASSO = """
if (lasso.active) return;
setTimeout(() => { if (!others.some((t) => t.active)) lasso.active = true; }, 0);
"""

#: The map takes the wheel once it has focus: a tap, a drag (the lasso) or a press on the plot
#: drops the wheel zoom's modifier; any pointer-down elsewhere on the page (a document listener in
#: the capture phase, so it runs before the plot's own tap) or Esc gives it back, and the wheel
#: scrolls the page again. One listener per page, shared by every map on it.
_FOCUS_WHEEL = """
const reg = window.resxMapWheel || (window.resxMapWheel = {tools: new Set(), modifier: null});
reg.modifier = modifier;
if (!reg.installed) {
  reg.installed = true;
  const blur = () => { for (const t of reg.tools) t.modifiers = {[reg.modifier]: true}; reg.tools.clear(); };
  document.addEventListener('pointerdown', blur, {capture: true});
  document.addEventListener('keydown', (e) => { if (e.key === 'Escape') blur(); }, {capture: true});
}
if (!reg.tools.has(wheel)) { reg.tools.add(wheel); wheel.modifiers = {}; }
"""


def tool_defaults(plot, element) -> None:
    """HoloViews hook: the wheel zooms once the map has focus (a click or a lasso on it) or with
    Ctrl held; the lasso stays the active drag tool when its icon is clicked again."""
    from bokeh.models import BoxSelectTool, BoxZoomTool, CustomJS, LassoSelectTool, PanTool, WheelZoomTool

    fig = plot.state
    tools = list(getattr(fig, "tools", []))
    wheel = [t for t in tools if isinstance(t, WheelZoomTool)]
    for tool in wheel:
        tool.modifiers = {ZOOM_MODIFIER: True}
        tool.description = "Wheel zoom (click the map first, or hold Ctrl)"
    if wheel and not fig.js_event_callbacks.get("tap"):
        focus = CustomJS(args={"wheel": wheel[0], "modifier": ZOOM_MODIFIER}, code=_FOCUS_WHEEL)
        for event in ("tap", "panstart", "press"):
            fig.js_on_event(event, focus)
    lasso = [t for t in tools if isinstance(t, LassoSelectTool)]
    drags = [t for t in tools if isinstance(t, (BoxSelectTool, BoxZoomTool, PanTool))]
    if lasso and not lasso[0].js_property_callbacks.get("change:active"):
        lasso[0].js_on_change("change:active", CustomJS(args={"lasso": lasso[0], "others": drags}, code=_KEEP_LASSO))


def _legend_name(key) -> str:
    """A colour key's legend entry; "hidden" says why (blind mode: vote on a galaxy to see its consensus)."""
    return "hidden (blind mode: vote to see)" if str(key) == "hidden" else str(key)


def _continuous_cmap(column: str) -> str:
    return "fire" if column in ("disagreement", "acquisition") else "viridis"


class MapView:
    """The PC map of one model (``model=None`` follows ``state.model``)."""

    def __init__(self, state: AppState, model: str | None = None, height: int = 520):
        self.state = state
        self.fixed_model = model
        self.height = height
        self.streams: list = []
        self.shown = True
        self._stale = False
        self.header = pn.pane.HTML(self.header_html(), margin=(0, 10), sizing_mode="stretch_width")
        self.legend = pn.pane.HTML(self.legend_html(), margin=(0, 10))
        self.pane = self._pane()
        self.container = pn.Column(self.header, self.legend, self.pane, sizing_mode="stretch_width", css_classes=["resx-map"],
                                   stylesheets=[":host { flex: 1 1 520px; min-width: 0; }"])
        state.param.watch(self._redraw, ["model", "run_cnn", "run_cvae", "pc_x", "pc_y", "color_by", "show_svc",
                                         "show_gmm", "class_filter", "consensus_filter"])
        state.param.watch(self._votes_changed, ["votes_version"])
        state.param.watch(self._queue_changed, ["queue_version"])

    def _redraw(self, *_) -> None:
        if not self.shown:  # drawn when shown again
            self._stale = True
            return
        self._stale = False
        # a fresh pane: updating a HoloViews pane in place loses overlay layers that come and go
        self.pane = self._pane()
        self.header.object = self.header_html()
        self.legend.object = self.legend_html()
        self.container[:] = [self.header, self.legend, self.pane]

    def _pane(self) -> pn.pane.HoloViews:
        return pn.pane.HoloViews(self.plot(), sizing_mode="stretch_width", min_height=self.height, linked_axes=False)

    def show(self, shown: bool) -> None:
        self.shown = shown
        if shown and self._stale:
            self._redraw()

    def _votes_changed(self, *_) -> None:
        """New votes change the map only when it is coloured or filtered by votes."""
        if COLOR_BY[self.state.color_by][0] in ("consensus", "disagreement") or self.state.consensus_filter:
            self._redraw()

    def _queue_changed(self, *_) -> None:
        """A rebuilt queue changes the map's colours only when coloured by the acquisition score."""
        if COLOR_BY[self.state.color_by][0] == "acquisition":
            self._redraw()

    @property
    def model(self) -> str:
        return self.fixed_model or self.state.model

    # -- the plot ----------------------------------------------------------------------------------
    def plot(self, *_):
        st = self.state
        model = self.model
        err = st.embedding_error(st.run_of(model))
        if err:
            return hv.Text(0, 0, err).opts(height=self.height, responsive=True, xaxis=None, yaxis=None,
                                           toolbar=None, text_font_size="11pt")
        frame = st.map_frame(model)
        column, kind = COLOR_BY[st.color_by]
        xl, yl = f"PC{st.pc_x}", f"PC{st.pc_y}"
        data = frame[["x", "y", "id", "catalog_class", "consensus", "predicted", "spf"]].copy()
        data["color"] = frame[column]
        data["row"] = frame.index.to_numpy()
        vdims = ["color", "id", "catalog_class", "consensus", "predicted", "spf", "row"]
        common = dict(responsive=True, height=self.height, xlabel=xl, ylabel=yl, title="",
                      tools=["lasso_select", "box_select"], active_tools=["lasso_select", "wheel_zoom"],
                      show_grid=True, hooks=[tool_defaults])
        legend = None
        if kind == "categorical":
            data["color"] = data["color"].astype(str)
            key = color_key(column, data["color"].unique())
        if len(frame) > RASTER_N:
            # imported here: datashader costs seconds at the first session's start, and small
            # samples are drawn as plain points
            import datashader as ds
            from holoviews.operation.datashader import datashade, dynspread, rasterize

            if kind == "categorical":
                data["color"] = data["color"].astype("category")
                pts = hv.Points(data, ["x", "y"], vdims)
                base = dynspread(datashade(pts, aggregator=ds.count_cat("color"), color_key=key,
                                           min_alpha=80), threshold=0.6, max_px=3)
                # the legend of a datashaded map is drawn beside it (self.legend): a Bokeh legend
                # inside a dynamic overlay gains duplicate entries on every re-render
            else:
                pts = hv.Points(data, ["x", "y"], vdims)
                base = dynspread(rasterize(pts, aggregator=ds.mean("color")), threshold=0.6, max_px=3).opts(
                    cmap=_continuous_cmap(column), colorbar=True, clabel=st.color_by, cnorm="linear")
            base = base.opts(**common)
        else:
            pts = hv.Points(data, ["x", "y"], vdims)
            if kind == "categorical":
                base = pts.opts(color=hv.dim("color").categorize(key, default="#444444"), show_legend=False)
                # an NdOverlay's legend names its keys (not its elements' labels): key by the legend name
                legend = hv.NdOverlay({_legend_name(k): hv.Points([(np.nan, np.nan)]).opts(color=c, size=8)
                                       for k, c in key.items()})
            else:
                base = pts.opts(color="color", cmap=_continuous_cmap(column), colorbar=True, clabel=st.color_by)
            base = base.opts(size=5 if len(frame) < 3000 else 3, alpha=0.8, hover_tooltips=HOVER,
                             nonselection_alpha=0.8, selection_alpha=0.8, **common)
        self._attach_streams(base, model)
        layers = [base]
        if st.show_svc and (st.pc_x, st.pc_y) == (1, 2):
            layers += self.svc_overlay(model)
        if st.show_gmm and (st.pc_x, st.pc_y) == (1, 2):
            layers += self.gmm_overlay(model)
        layers.append(self.highlight(model))
        layers.append(self.queue_rings(model))
        if legend is not None:
            layers.append(legend)
        overlay = layers[0]
        for layer in layers[1:]:
            overlay = overlay * layer
        return overlay.opts(legend_position="right", responsive=True, height=self.height)

    def header_html(self, *_) -> str:
        """The map's title (model, run, galaxies shown) and how its wheel works, as HTML that wraps
        (a Bokeh title is cut off at the plot's edge on narrow screens)."""
        st = self.state
        model = self.model
        run = st.run_of(model)
        parts = [model.upper(), f"run {run}"]
        if not st.embedding_error(run):
            parts.append(f"{len(st.map_frame(model)):,} galaxies")
        return (f'<div class="resx-map-title" style="overflow-wrap:anywhere"><b>{html_text(" · ".join(parts))}</b>'
                f' <span class="resx-map-hint" style="color:#666;font-size:90%">{html_text(WHEEL_HINT)}</span></div>')

    def legend_html(self, *_) -> str:
        """Colour key of a datashaded categorical map ('' otherwise: Bokeh draws the legend)."""
        st = self.state
        column, kind = COLOR_BY[st.color_by]
        if kind != "categorical" or st.embedding_error(st.run_of(self.model)):
            return ""
        frame = st.map_frame(self.model)
        if len(frame) <= RASTER_N:
            return ""
        key = color_key(column, frame[column].astype(str).unique())
        items = "".join(f'<span style="margin-right:12px;white-space:nowrap"><span style="display:inline-block;'
                        f'width:10px;height:10px;border-radius:5px;background:{html_text(c)};margin-right:4px"></span>'
                        f'{html_text(_legend_name(k))}</span>'
                        for k, c in key.items())
        return f'<div class="resx-legend">{html_text(st.color_by)}: {items}</div>'

    def _attach_streams(self, source, model: str) -> None:
        st = self.state
        lasso = hv.streams.Lasso(source=source)
        box = hv.streams.BoundsXY(source=source)

        def on_lasso(geometry=None, **_):
            if geometry is not None and len(geometry) >= 3:
                g = np.asarray(geometry, dtype=float)
                st.select_polygon(g[:, 0], g[:, 1], model)

        def on_box(bounds=None, **_):
            if bounds is not None:
                st.select_bounds(bounds, model)

        lasso.add_subscriber(on_lasso)
        box.add_subscriber(on_box)
        self.streams = [lasso, box]

    def _rows_layer(self, model: str, rows_param, limit: int | None = None) -> hv.DynamicMap:
        """The galaxies of a row list (``state.selected``, ``state.queue_rows``) as points on the map,
        redrawn when the list, the axes, the runs or the filters change; at most ``limit`` drawn."""
        st = self.state

        def points(rows, pc_x, pc_y, run_cnn, run_cvae, class_filter, consensus_filter):
            if st.embedding_error(st.run_of(model)):
                return hv.Points([], ["x", "y"])
            frame = st.map_frame(model)
            rows = np.asarray(rows, dtype=int)
            sub = frame.reindex(rows).dropna(subset=["x"]) if rows.size else frame.iloc[:0]
            if limit is not None and len(sub) > limit:  # drawing only: the list itself keeps every galaxy
                sub = sub.iloc[:: -(-len(sub) // limit)]
            return hv.Points(sub[["x", "y"]], ["x", "y"])

        return hv.DynamicMap(pn.bind(points, rows_param, st.param.pc_x, st.param.pc_y, st.param.run_cnn,
                                     st.param.run_cvae, st.param.class_filter, st.param.consensus_filter))

    def highlight(self, model: str):
        """The selected galaxies drawn on top (a DynamicMap following ``state.selected``)."""
        dmap = self._rows_layer(model, self.state.param.selected, limit=MAX_HIGHLIGHT)
        if self.state.n > RASTER_N:
            return dmap.opts(color=SELECTED_COLOR, size=2, alpha=0.5, tools=[])
        return dmap.opts(fill_alpha=0, line_color=SELECTED_COLOR, size=7, line_width=1.2, tools=[])

    def queue_rings(self, model: str):
        """The Inspect-next queue's galaxies ringed on the map (a DynamicMap following ``state.queue_rows``)."""
        dmap = self._rows_layer(model, self.state.param.queue_rows)
        return dmap.opts(fill_alpha=0, line_color=QUEUE_COLOR, size=13, line_width=2.2, tools=[])

    def svc_overlay(self, model: str) -> list:
        emb = self.state.embedding(self.state.run_of(model))
        if emb is None or emb.get("svc_z") is None:
            return []
        x, y, z = (np.asarray(emb[k], dtype=float) for k in ("svc_x", "svc_y", "svc_z"))
        if x.ndim == 2:
            x, y = x[0], y[:, 0]
        img = hv.Image((x, y, z), ["x", "y"], "svc")
        levels = np.unique(np.round(z[np.isfinite(z) & (z >= 0)]))
        if levels.size < 2:
            return []
        lines = hv.operation.contours(img, levels=list((levels[:-1] + levels[1:]) / 2) if levels.size > 1 else [0.0],
                                      filled=False)
        return [lines.opts(color="#333333", line_width=1.5, line_dash="dashed", show_legend=False)]

    def gmm_overlay(self, model: str) -> list:
        emb = self.state.embedding(self.state.run_of(model))
        if emb is None or emb.get("gmm_means") is None or emb.get("gmm_covariances") is None:
            return []
        out = []
        for k, (mu, cov) in enumerate(zip(np.asarray(emb["gmm_means"]), np.asarray(emb["gmm_covariances"]))):
            cov = np.asarray(cov, dtype=float)
            if cov.ndim == 1:
                cov = np.diag(cov[:2])
            vals, vecs = np.linalg.eigh(cov[:2, :2])
            angle = float(np.arctan2(vecs[1, 1], vecs[0, 1]))
            w, h = 2 * 2 * np.sqrt(np.maximum(vals[::-1], 0))  # 2-sigma ellipse, major first
            out.append(hv.Ellipse(float(mu[0]), float(mu[1]), (float(w), float(h)), orientation=angle).opts(
                color="#222222", line_width=1.5))
            out.append(hv.Text(float(mu[0]), float(mu[1]), str(k)).opts(text_font_size="10pt", text_color="#222222"))
        return out

    def panel(self):
        return self.container


def elbow_plot(state: AppState, model: str | None = None, *_):
    """k-means inertia against k with the chosen elbow, and the PCs' explained variance."""
    model = model or state.model
    err = state.embedding_error(state.run_of(model))
    if err:
        return pn.pane.Markdown("")
    emb = state.embedding(state.run_of(model))
    plots = []
    inertia = emb.get("inertia")
    if inertia is not None:
        inertia = np.asarray(inertia, dtype=float)
        ks = np.arange(1, inertia.size + 1)
        curve = hv.Curve((ks, inertia), "k", "inertia").opts(line_width=2, tools=["hover"])
        dots = hv.Scatter((ks, inertia), "k", "inertia").opts(size=5)
        el = emb.get("elbow_k")
        parts = curve * dots
        if el is not None:
            parts = parts * hv.VLine(float(el)).opts(color="#ee6677", line_dash="dashed")
        plots.append(parts.opts(title=f"k-means elbow (k = {int(el) if el is not None else '?'})", height=220,
                                responsive=True, toolbar=None))
    ev = emb.get("explained_variance")
    if ev is not None:
        ev = np.asarray(ev, dtype=float)
        bars = hv.Bars(pd.DataFrame({"PC": [f"PC{i + 1}" for i in range(ev.size)], "fraction": ev}), "PC",
                       "fraction").opts(title="explained variance", height=200, responsive=True, toolbar=None,
                                        color="#4477aa", tools=["hover"])
        plots.append(bars)
    if not plots:
        return pn.pane.Markdown("")
    return pn.Column(*[pn.pane.HoloViews(p, sizing_mode="stretch_width") for p in plots], sizing_mode="stretch_width")


def map_area(state: AppState) -> pn.viewable.Viewable:
    """One map (the model chosen in the sidebar) or the CNN and CvAE maps side by side."""
    single = MapView(state)
    side = pn.Column(pn.bind(lambda model, *a: elbow_plot(state, model), state.param.model, state.param.run_cnn,
                             state.param.run_cvae), sizing_mode="stretch_width",
                     stylesheets=[":host { flex: 1 1 240px; max-width: 320px; min-width: 0; }"])
    # the elbow beside the map when there is room, below it when the map's column is narrow
    holder = pn.FlexBox(single.panel(), side, flex_wrap="wrap", sizing_mode="stretch_width")
    pair: list[MapView] = []

    def switch(event=None) -> None:
        if state.side_by_side:
            if not pair:  # built on first use
                pair.extend([MapView(state, "cnn", height=460), MapView(state, "cvae", height=460)])
            single.show(False)
            for view in pair:
                view.show(True)
            holder[:] = [pair[0].panel(), pair[1].panel()]
        else:
            for view in pair:
                view.show(False)
            single.show(True)
            holder[:] = [single.panel(), side]

    state.param.watch(switch, "side_by_side")
    return holder
