"""Voting: label the focused tile, the ticked tiles or the whole selection; keys 1–5, f, s.

Every vote goes straight to the vote store (``core.votes.store``) in the session's inspector name:
the login name when the server runs with authentication (it cannot be changed), otherwise a
name entered once in the sidebar.
"""

from __future__ import annotations

import logging

import numpy as np
import panel as pn

from app.palettes import CLASS_COLORS
from app.state import AppState
from app.views.gallery import KEYS, GalleryView
from core.labels import VOTE_LABELS

log = logging.getLogger(__name__)

SCOPES = ("focused tile", "ticked tiles", "whole selection")
_KEY_OF = {label: key for key, label in KEYS.items()}


class VotingView:
    """The vote buttons above the gallery, and the keyboard shortcuts."""

    def __init__(self, state: AppState, gallery: GalleryView):
        self.state = state
        self.gallery = gallery
        gallery.on_vote_key = self.vote_row
        self.scope = pn.widgets.RadioButtonGroup(label="apply to", options=list(SCOPES), value=SCOPES[0],
                                                 color="light", width=330)
        self.buttons = []
        for label in VOTE_LABELS:
            key = _KEY_OF.get(label, "")
            b = pn.widgets.Button(label=f"{key} · {label}" if key else label, width=120, margin=(2, 3),
                                  stylesheets=[f":host {{ --resx-vote: {CLASS_COLORS.get(label, '#888')}; }}"],
                                  css_classes=["resx-vote"])
            b.on_click(lambda e, lab=label: self.vote_scope(lab))
            self.buttons.append(b)
        self.undo = pn.widgets.Button(label="↶ undo my last vote", width=160, color="light")
        self.undo.on_click(lambda e: self._undo())
        self.status = pn.pane.Markdown("", margin=(0, 10), css_classes=["resx-vote-status"])
        state.param.watch(lambda e: self._role(), ["inspector"])
        self._role()

    def _role(self) -> None:
        st = self.state
        if not st.inspector:
            self.status.object = "Enter your inspector name in the sidebar to vote."
        elif st.is_expert:
            self.status.object = f"Voting as **{st.inspector}** (expert: your vote validates the label)."
        else:
            self.status.object = f"Voting as **{st.inspector}**."

    def rows_for(self, scope: str) -> np.ndarray:
        if scope == "focused tile":
            row = self.gallery.focused_row()
            return np.array([row] if row is not None else [], dtype=int)
        if scope == "ticked tiles":
            return self.gallery.ticked_rows()
        return np.asarray(self.state.selected, dtype=int)

    def _cast(self, rows: np.ndarray, label: str) -> int:
        try:
            n = self.state.vote(rows, label)
        except PermissionError as exc:
            self._notify(str(exc), "warning")
            return 0
        except Exception as exc:  # the store refused (unknown id, database down): say so, keep the page
            log.exception("vote failed")
            self._notify(f"The vote was not recorded: {exc}", "error")
            return 0
        self.status.object = (f"Recorded **{label}** for {n} galax{'y' if n == 1 else 'ies'} "
                              f"as **{self.state.inspector}**.")
        return n

    def vote_scope(self, label: str) -> None:
        rows = self.rows_for(self.scope.value)
        if rows.size == 0:
            self._notify(f"No {self.scope.value.replace('whole ', '')} to label.", "warning")
            return
        n = self._cast(rows, label)
        if n and self.scope.value == "focused tile":
            g = self.gallery.grid
            g.focus = min(g.focus + 1, max(len(g.tiles) - 1, 0))

    def vote_row(self, label: str, row: int) -> None:
        """A keyboard vote on one tile."""
        self._cast(np.array([row]), label)

    def _undo(self) -> None:
        try:
            out = self.state.undo()
        except Exception as exc:
            self._notify(f"Nothing undone: {exc}", "warning")
            return
        self.status.object = f"Undone: {out}" if out else "Nothing to undo."

    @staticmethod
    def _notify(msg: str, kind: str = "info") -> None:
        notif = pn.state.notifications
        if notif is not None:
            getattr(notif, kind if kind in ("info", "warning", "error", "success") else "info")(msg, duration=5000)

    def panel(self) -> pn.viewable.Viewable:
        return pn.Column(
            pn.Row(*self.buttons, sizing_mode="stretch_width", css_classes=["resx-vote-row"]),
            pn.Row(self.scope, self.undo, self.status, align="center"),
            pn.pane.Markdown("Keys: **1–5** classes · **f** fit quality · **s** skip · **arrows** move "
                             "(keys label the focused tile, then move to the next).", margin=(0, 10),
                             css_classes=["resx-hint"]),
            sizing_mode="stretch_width",
        )
