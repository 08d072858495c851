"""Inspect next: the gallery filled from the active-learning queue (:mod:`core.latent.queue`).

A strategy chooser (BALD, entropy, margin, vote disagreement, random), a button that fills the
gallery with the queue's first batch, one that skips to the next batch, and a line that says
where the ranking comes from — and, before the first CNN run, how many consensus labels are
still missing. Everything goes through :class:`app.state.AppState` (``inspect_next``,
``next_batch``, ``queue_info``); the map rings the queue's galaxies and can be coloured by the
acquisition score (``state.queue_rows``, colour by "acquisition score").
"""

from __future__ import annotations

import html

import panel as pn

from app.state import QUEUE_STRATEGIES, AppState

#: What each strategy is, for the chooser's tooltip line.
STRATEGY_HELP = {
    "bald": "BALD: where Monte-Carlo dropout passes of the CNN disagree",
    "entropy": "predictive entropy of the CNN",
    "margin": "smallest gap between the two most probable classes",
    "disagreement": "where the inspectors' votes disagree (live)",
    "random": "at random (seeded)",
}


class QueueView:
    """The Inspect-next controls (sidebar)."""

    def __init__(self, state: AppState):
        self.state = state
        self.strategy = pn.widgets.Select.from_param(state.param.queue_strategy, options=list(QUEUE_STRATEGIES),
                                                     label="strategy", width=140)
        self.start = pn.widgets.Button(label="Inspect next", color="primary", width=130,
                                       css_classes=["resx-inspect-next"])
        self.skip = pn.widgets.Button(label="Skip to next batch", color="light", width=150,
                                      disabled=True, css_classes=["resx-next-batch"])
        self.info = pn.pane.HTML("", margin=(0, 5), css_classes=["resx-queue-info"])
        self.start.on_click(lambda _e: self.state.inspect_next(batch=0))
        self.skip.on_click(lambda _e: self.state.next_batch())
        state.param.watch(self._show, ["queue_info"])
        state.param.watch(lambda _e: self._show(), ["queue_strategy"])
        self._show()

    def _show(self, *_e) -> None:
        info = self.state.queue_info
        help_line = html.escape(STRATEGY_HELP.get(self.state.queue_strategy, ""))
        if not info:
            self.info.object = f'<div class="resx-queue-hint">{help_line}</div>'
            return
        if "error" in info:
            self.info.object = f'<div class="resx-queue-error">Queue unavailable: {html.escape(info["error"])}</div>'
            self.skip.disabled = True
            return
        parts = [f"Batch {int(info['batch']) + 1}: {int(info['n'])} galaxies by {html.escape(str(info['strategy']))} "
                 f"({html.escape(str(info['source']))}); {int(info['n_candidates']):,} unretired, "
                 f"{int(info['n_retired']):,} retired."]
        if info.get("scores_pending"):  # never silently on a stand-in ranking
            parts.insert(0, '<b class="resx-queue-pending">Scores updating</b> (a retrain is computing the new '
                            "run's acquisition scores):")
        if info.get("note"):
            parts.append(html.escape(str(info["note"])) + ".")
        if info.get("cold_start") and int(info.get("labels_missing", 0)):
            parts.append(f"<b>Cold start:</b> {int(info['labels_missing'])} more decided consensus labels are "
                         "needed before the first CNN can be trained on them (Retrain, labels: consensus).")
        self.info.object = '<div class="resx-queue">' + " ".join(parts) + "</div>"
        self.skip.disabled = int(info["n"]) == 0

    def panel(self) -> pn.viewable.Viewable:
        return pn.Column(pn.Row(self.strategy, self.start), self.skip, self.info, sizing_mode="stretch_width")
