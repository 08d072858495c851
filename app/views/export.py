"""Export: the consensus catalog (FITS / CSV) and the current selection; save/load named selections.

Every download is written by the one export writer, :func:`core.io.export.write_export`: it records
the provenance (runs, consensus rule, configuration, time, who exported) in the FITS header, and
neutralises formula cells in CSV; a CSV download's provenance is the JSON offered beside it.
"""

from __future__ import annotations

import io
import logging

import numpy as np
import pandas as pd
import panel as pn
from astropy.table import Table

from app.palettes import NO_LABEL
from app.selection import parse_id_list
from app.state import AppState
from app.text import md

log = logging.getLogger(__name__)


def consensus_catalog(state: AppState) -> Table:
    """The workspace catalog with the consensus, vote counts, votes, and the runs' predictions and clusters."""
    rows = np.arange(state.n)
    extra = state.selection_table(rows)
    table = state.catalog.copy()
    for c in extra.columns:
        if c not in table:
            table[c] = extra[c].to_numpy()
    for model in ("cnn", "cvae"):
        run = state.run_of(model)
        if model == state.model or not run or state.embedding_error(run):
            continue
        frame = state.map_frame(model).reindex(rows)
        table[f"{model}_gmm_cluster"] = frame["gmm"].fillna("").to_numpy()
    return _to_table(table)


def export_provenance(state: AppState, what: str) -> dict:
    """The provenance of a download from this session (:func:`core.io.export.provenance`)."""
    from core.io.export import consensus_rule, provenance

    rule = consensus_rule(state.vcfg, method="majority", experts=state.experts_enabled)  # what the dashboard shows
    return provenance(state.ws, runs={"cnn": state.run_cnn, "cvae": state.run_cvae}, consensus=rule,
                      exported_by=state.inspector or "", blind=bool(state.blind and not state.sees_all), what=what)


def _to_table(frame: pd.DataFrame) -> Table:
    """pandas -> astropy, with text columns as plain str and "no label" written as an empty string."""
    frame = frame.copy()
    for c in frame.columns:
        if frame[c].dtype == object or isinstance(frame[c].dtype, pd.StringDtype):
            frame[c] = frame[c].fillna("").astype(str).replace(NO_LABEL, "")
    return Table.from_pandas(frame)


def table_bytes(table: Table | pd.DataFrame, fmt: str, prov: dict | None = None) -> io.BytesIO:
    """A table as FITS or CSV bytes (for ``pn.widgets.FileDownload``), with its provenance.

    Written by :func:`core.io.export.write_export`: CSV text cells that a spreadsheet would run
    as a formula are neutralised; FITS keeps the raw text.
    """
    from core.io.export import write_export

    if isinstance(table, pd.DataFrame):
        table = _to_table(table)
    buf = io.BytesIO()
    write_export(table, buf, fmt, prov)
    buf.seek(0)
    return buf


class ExportView:
    def __init__(self, state: AppState):
        self.state = state
        self.fmt = pn.widgets.RadioButtonGroup(label="format", options=["fits", "csv"], value="fits",
                                               color="light", width=120)
        self.catalog_dl = pn.widgets.FileDownload(callback=self._catalog, filename="consensus_catalog.fits",
                                                  label="Download the consensus catalog", color="primary",
                                                  sizing_mode="stretch_width")
        self.sel_dl = pn.widgets.FileDownload(callback=self._selection, filename="selection.csv",
                                              label="Download the selection (ids, votes, metrics)",
                                              sizing_mode="stretch_width")
        self.prov_dl = pn.widgets.FileDownload(callback=self._provenance, filename="provenance.json",
                                               label="Provenance of the last CSV download (JSON)",
                                               sizing_mode="stretch_width", visible=False)
        self._last_prov: dict | None = None
        self.fmt.param.watch(self._fmt, "value")
        self.name = pn.widgets.TextInput(label="save the selection as", placeholder="e.g. tidal-candidates")
        self.save = pn.widgets.Button(label="Save selection", width=130)
        self.save.on_click(lambda e: self._save())
        self.saved = pn.widgets.Select(label="saved selections", options=state.saved_selections())
        self.load = pn.widgets.Button(label="Load", width=80)
        self.load.on_click(lambda e: self._load())
        self.msg = pn.pane.Markdown("")

    def _fmt(self, event) -> None:
        self.catalog_dl.filename = f"consensus_catalog.{event.new}"
        self.sel_dl.filename = f"selection.{event.new}"
        self.prov_dl.visible = event.new == "csv"

    def _catalog(self) -> io.BytesIO:
        self._last_prov = export_provenance(self.state, "consensus catalog (dashboard)")
        return table_bytes(consensus_catalog(self.state), self.fmt.value, self._last_prov)

    def _selection(self) -> io.BytesIO:
        self._last_prov = export_provenance(self.state, f"selection: {self.state.selection_source}")
        return table_bytes(self.state.selection_table(), self.fmt.value, self._last_prov)

    def _provenance(self) -> io.BytesIO:
        from core.io.export import provenance_json

        prov = self._last_prov or export_provenance(self.state, "nothing downloaded yet")
        return io.BytesIO(provenance_json(prov).encode("utf-8"))

    def _save(self) -> None:
        try:
            if len(self.state.selected) == 0:
                raise ValueError("nothing is selected")
            path = self.state.save_selection(self.name.value)
        except Exception as exc:
            self.msg.object = f"⚠ {md(exc)}"
            return
        self.saved.options = self.state.saved_selections()
        self.saved.value = path.stem
        self.msg.object = f"Saved {len(self.state.selected)} ids to {md(path)}."

    def _load(self) -> None:
        if not self.saved.value:
            return
        rows, unknown = self.state.load_selection(self.saved.value)
        self.msg.object = f"Loaded {len(rows)} galaxies" + (f"; {len(unknown)} unknown ids" if unknown else "") + "."

    def panel(self) -> pn.viewable.Viewable:
        return pn.Column(
            pn.Row(pn.pane.Markdown("format", margin=(8, 5)), self.fmt),
            self.catalog_dl, self.sel_dl, self.prov_dl,
            pn.Row(self.name, self.save, align="end"),
            pn.Row(self.saved, self.load, align="end"),
            self.msg,
            sizing_mode="stretch_width", name="Export",
        )


class SelectByView:
    """Select by GMM cluster, class or a pasted id list (the map's lasso and box do the rest)."""

    COLUMNS = {"GMM cluster": "gmm", "catalog class": "catalog_class", "consensus": "consensus",
               "predicted class": "predicted"}

    def __init__(self, state: AppState):
        self.state = state
        self.column = pn.widgets.Select(label="select by", options=list(self.COLUMNS), width=140)
        self.values = pn.widgets.MultiChoice(label="values", options=[], sizing_mode="stretch_width")
        self.go = pn.widgets.Button(label="Select", width=80)
        self.ids = pn.widgets.TextAreaInput(label="or paste ids", placeholder="one id per line, or comma-separated",
                                            height=70, sizing_mode="stretch_width")
        self.go_ids = pn.widgets.Button(label="Select ids", width=100)
        self.clear = pn.widgets.Button(label="Clear selection", width=130)
        self.msg = pn.pane.Markdown("")
        self.column.param.watch(lambda e: self._options(), "value")
        state.param.watch(lambda e: self._options(), ["run_cnn", "run_cvae", "model"])
        # Votes change only the consensus column's values: other columns need no new options.
        state.param.watch(lambda e: self._options() if self.column.value == "consensus" else None, ["votes_version"])
        self.go.on_click(lambda e: self._select())
        self.go_ids.on_click(lambda e: self._select_ids())
        self.clear.on_click(lambda e: state.clear_selection())
        self._options()

    def _options(self) -> None:
        st = self.state
        if st.embedding_error(st.run_of(st.model)):
            self.values.options = []
            return
        col = self.COLUMNS[self.column.value]
        vals = sorted(map(str, st.map_frame()[col].unique()), key=lambda v: (len(v), v))
        self.values.options = vals
        self.values.value = [v for v in self.values.value if v in vals]

    def _select(self) -> None:
        rows = self.state.select_where(self.COLUMNS[self.column.value], self.values.value)
        self.msg.object = f"{len(rows)} selected."

    def _select_ids(self) -> None:
        rows, unknown = self.state.select_ids(parse_id_list(self.ids.value))
        self.msg.object = f"{len(rows)} selected." + (f" Unknown ids: {md(', '.join(unknown[:10]))}"
                                                      f"{'…' if len(unknown) > 10 else ''}" if unknown else "")

    def panel(self) -> pn.viewable.Viewable:
        return pn.Column(pn.Row(self.column, self.values, self.go, align="end"),
                         pn.Row(self.ids, self.go_ids, align="end"), pn.Row(self.clear, self.msg),
                         sizing_mode="stretch_width", name="Select")
