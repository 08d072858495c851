"""Runs: the run selector, the run panel, and Retrain (a subprocess with live progress).

Training never runs in the server: :class:`app.retrain.RetrainJob` starts
``python -m core train WS --labels consensus ... --embed`` and this view polls its
``progress.json``; cancel writes ``STOP`` in the run folder.
"""

from __future__ import annotations

import logging

import holoviews as hv
import numpy as np
import pandas as pd
import panel as pn

from app.state import AppState
from app.text import md, md_code, notify
from core.labels import CLASSES
from core.workspace.config import DEFAULT_CONFIG
from core.workspace.workspace import MODELS

log = logging.getLogger(__name__)


class RunsView:
    def __init__(self, state: AppState):
        self.state = state
        self.run_select = pn.widgets.Select(label="run", options={}, sizing_mode="stretch_width")
        self.run_select.param.watch(self._on_select, "value")
        self.make_active = pn.widgets.Checkbox(label="also make it the workspace's active run", value=False)
        # retrain controls
        self.r_model = pn.widgets.RadioButtonGroup(label="model", options=list(MODELS), value=state.model,
                                                   color="light")
        epochs = state.acfg.get("retrain_epochs", DEFAULT_CONFIG["app"]["retrain_epochs"])
        self.r_epochs = pn.widgets.IntInput(label="epochs", value=int(epochs),
                                            start=1, end=1000, width=100, css_classes=["resx-epochs"])
        self.r_mode = pn.widgets.RadioButtonGroup(label="start from", options=["fine-tune", "scratch"],
                                                  value="fine-tune", color="light")
        self.r_start = pn.widgets.Button(label="Retrain on the consensus labels", color="primary",
                                         css_classes=["resx-retrain"])
        self.r_cancel = pn.widgets.Button(label="Cancel", color="danger", disabled=True)
        self.r_start.on_click(lambda e: self.start())
        self.r_cancel.on_click(lambda e: self.cancel())
        self.progress = pn.indicators.Progress(value=0, max=100, bar_color="primary", sizing_mode="stretch_width",
                                               visible=False)
        self.r_status = pn.pane.Markdown("", css_classes=["resx-retrain-status"], sizing_mode="stretch_width")
        # the loss curves' pane lives in a holder that is emptied rather than hidden: toggling ``visible`` on a
        # HoloViews pane logged "TypeError: List parameter 'Bokeh.stylesheets'..." on every retrain
        self.curves = pn.Column(sizing_mode="stretch_width")
        self._curves_pane: pn.pane.HoloViews | None = None
        self.summary = pn.Column(sizing_mode="stretch_width")
        # another session or `resx train` changed the workspace's active run: say so, offer to switch
        self.active_alert = pn.pane.Alert("", alert_type="info", visible=False, sizing_mode="stretch_width",
                                          css_classes=["resx-active-notice"])
        self.switch_active = pn.widgets.Button(label="Show the active runs", visible=False, width=180)
        self.switch_active.on_click(lambda e: self.state.switch_to_active_runs())
        state.param.watch(self._on_active_notice, ["active_notice"])
        state.param.watch(lambda e: self._sync_runs(), ["runs_version", "model", "run_cnn", "run_cvae"])
        self._sync_runs()

    # -- run selector and panel -----------------------------------------------------------------
    def _sync_runs(self) -> None:
        st = self.state
        runs = st.runs_for(st.model)
        self._syncing = True
        try:
            self.run_select.options = {r.label: r.id for r in reversed(runs)}
            self.run_select.value = st.run_of(st.model)
        finally:
            self._syncing = False
        self.summary[:] = [self.run_summary()]

    def _on_select(self, event) -> None:
        if getattr(self, "_syncing", False) or not event.new:
            return
        st = self.state
        st.set_run(st.model, event.new)
        if self.make_active.value:
            try:
                st.activate_run(st.model, event.new)
            except Exception as exc:  # noqa: BLE001 - an unfinished run: shown, the page stays up
                self.r_status.object = f"⚠ {md(exc)}"

    def _on_active_notice(self, event) -> None:
        text = event.new or ""
        self.active_alert.object = md(text)
        self.active_alert.visible = self.switch_active.visible = bool(text)
        if text:
            notify(text, "info")  # escaped: run ids are user text

    def run_summary(self) -> pn.viewable.Viewable:
        """Accuracy, the confusion matrix and the predictions changed for the shown run."""
        st = self.state
        run = st.run_of(st.model)
        if not run:
            return pn.pane.Markdown("No run yet.")
        row = st.run_row(run)
        ev = st.run_evaluation(run)
        lines = [f"**{md(run)}** · {md(row.model.upper()) if row else ''} · {md(row.status) if row else ''}"]
        info = row.info if row else {}
        for key, name in (("labels", "labels"), ("init", "fine-tuned from"), ("epochs", "epochs"),
                          ("created", "created")):
            if info.get(key):
                lines.append(f"{name}: {md(info[key])}")
        acc = ev.get("test_accuracy", ev.get("accuracy", info.get("accuracy")))
        if isinstance(acc, (int, float)):
            lines.append(f"test accuracy: **{100 * acc:.1f} %**")
        tacc = ev.get("train_accuracy")
        if isinstance(tacc, (int, float)):
            lines.append(f"training accuracy: {100 * tacc:.1f} %")
        mse = ev.get("recon_mse", info.get("recon_mse"))
        if isinstance(mse, (int, float)):
            lines.append(f"reconstruction MSE: {mse:.4g}")
        if info.get("warning"):
            lines.append(f"⚠ {md(info['warning'])}")
        per = ev.get("per_class")
        if isinstance(per, dict) and per:
            lines.append("recall: " + ", ".join(f"{md(c)} {100 * v['recall']:.0f} %" for c, v in per.items()
                                                if isinstance(v, dict) and isinstance(v.get("recall"), (int, float))))
        ch = st.predictions_changed(st.model)
        if ch:
            lines.append(f"predictions changed vs {md(ch[2])}: **{ch[0]}** of {ch[1]}")
        parts: list = [pn.pane.Markdown("  \n".join(lines), sizing_mode="stretch_width")]
        cm = ev.get("confusion_matrix", ev.get("confusion"))
        if isinstance(cm, list) and cm and isinstance(cm[0], list):
            labels = ev.get("classes", list(CLASSES))[: len(cm)]
            df = pd.DataFrame(cm, index=[f"true {c}" for c in labels], columns=labels[: len(cm[0])])
            parts.append(pn.pane.DataFrame(df, sizing_mode="stretch_width"))
        for png in st.run_figures(run):
            parts.append(pn.pane.PNG(str(png), width=320))
        return pn.Column(*parts, sizing_mode="stretch_width")

    # -- retrain ------------------------------------------------------------------------------
    def start(self, extra_args=()) -> None:
        st = self.state
        try:
            job = st.start_retrain(self.r_model.value, self.r_epochs.value, self.r_mode.value == "fine-tune",
                                   extra_args=extra_args)
        except Exception as exc:
            self.r_status.object = f"⚠ {md(exc)}"
            return
        self.r_start.disabled = True
        self.r_cancel.disabled = False
        self.progress.visible = True
        self.progress.value = -1  # indeterminate until the first epoch ends
        self.curves[:] = []
        self._curves_pane = None
        self.r_status.object = f"Training **{md(job.run_id)}** ({job.model}, {job.epochs} epochs, " \
                               f"{'from ' + md(job.init) if job.init else 'from scratch'}) in a separate process…"

    def cancel(self) -> None:
        if self.state.cancel_retrain():
            self.r_status.object += "  \nCancelling (the trainer stops at the end of this step)…"
            self.r_cancel.disabled = True

    def poll(self) -> None:
        """Called by the session's periodic callback."""
        job = self.state.job
        if job is None or job.proc is None or getattr(job, "_reported", False):
            return
        prog = job.progress()
        if prog:
            epoch, epochs = int(prog.get("epoch", 0)), int(prog.get("epochs", job.epochs) or job.epochs)
            if epochs:
                self.progress.value = int(round(100 * min(epoch, epochs) / epochs))
            state = prog.get("state", "")
            self.r_status.object = f"**{md(job.run_id)}**: {md(state)} · epoch {epoch} / {epochs}{_eta(prog)}"
            phase = prog.get("phase")
            if phase == "embedding":
                self.r_status.object += " · computing the refreshed map…"
            elif phase == "scoring":
                self.r_cancel.disabled = True  # the model is trained and shown: nothing left to cancel
                self.r_status.object += (f" · map refreshed ({prog.get('map_s', '?')} s after training); "
                                         "scores updating: the queue's acquisition scores are being computed "
                                         "(Inspect next ranks by entropy until they are ready)…")
            hist = prog.get("history") or {}
            if hist:
                plot = self.history_plot(hist)
                if self._curves_pane is None:
                    self._curves_pane = pn.pane.HoloViews(plot, sizing_mode="stretch_width")
                    self.curves[:] = [self._curves_pane]
                else:
                    self._curves_pane.object = plot
        if job.running:
            if not job.map_shown and not getattr(job, "_map_tried", False) and job.map_ready():
                job._map_tried = True  # the map first, the scores after it (tried once; again at the end)
                try:
                    err = self.state.show_retrained_map(make_active=self.make_active.value)
                except Exception as exc:  # noqa: BLE001 - e.g. the run could not be made active
                    err = str(exc)
                if err:
                    log.warning("the retrained map of %s is not shown yet: %s", job.run_id, err)
            return
        job._reported = True
        try:
            status, message = self.state.finish_retrain(make_active=self.make_active.value)
        except Exception as exc:  # noqa: BLE001 - e.g. the run could not be made active
            status, message = "failed", str(exc)
        self.r_start.disabled = False
        self.r_cancel.disabled = True
        self.progress.visible = False
        if status == "done":
            where = ("it is now the workspace's active run" if self.make_active.value
                     else "shown here; the workspace's active run is unchanged")
            self.r_status.object = f"✔ **{md(job.run_id)}** finished; {where} ({job.model.upper()})."
        elif status == "cancelled":
            self.r_status.object = f"Run **{md(job.run_id)}** was cancelled; the active run is unchanged."
        else:
            self.r_status.object = (f"✖ Run **{md(job.run_id)}** failed; the active run is unchanged.\n\n"
                                    f"{md_code(message)}")

    @staticmethod
    def history_plot(history: dict) -> hv.Layout:
        """Loss and accuracy curves (every metric in ``progress.json``'s history)."""
        loss = {k: v for k, v in history.items() if "loss" in k or "mse" in k or "kl" in k}
        acc = {k: v for k, v in history.items() if "acc" in k}
        plots = []
        for title, group in (("loss", loss), ("accuracy", acc)):
            if not group:
                continue
            curves = [hv.Curve((np.arange(1, len(v) + 1), np.asarray(v, dtype=float)), "epoch", title, label=k)
                      for k, v in group.items() if len(v)]
            if curves:
                plots.append(hv.Overlay(curves).opts(title=title, height=220, responsive=True, legend_position="right",
                                                     toolbar=None))
        return hv.Layout(plots).cols(2) if plots else hv.Layout([hv.Curve([])])

    def panel(self) -> pn.viewable.Viewable:
        return pn.Column(
            pn.pane.Markdown("### Run"),
            self.active_alert,
            self.switch_active,
            self.run_select,
            self.make_active,
            self.summary,
            pn.layout.Divider(),
            pn.pane.Markdown("### Retrain"),
            pn.Row(self.r_model, self.r_epochs, self.r_mode, align="center"),
            pn.Row(self.r_start, self.r_cancel),
            self.progress,
            self.r_status,
            self.curves,
            sizing_mode="stretch_width",
            name="Runs",
        )


def _eta(progress: dict) -> str:
    """' · about 1 min 20 s left (at most: ...)' from progress.json's eta_s, '' before the first epoch."""
    eta = progress.get("eta_s")
    if not isinstance(eta, (int, float)) or eta <= 0 or progress.get("state") != "running":
        return ""
    m, sec = divmod(int(round(eta)), 60)
    left = f"{m} min {sec:02d} s" if m else f"{sec} s"
    return f" · about {left} left (at most: early stopping may end it sooner)"
