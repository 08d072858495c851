"""Voting: label the focused tile, the ticked tiles or the whole selection; keys 1–5, f, s.

Every vote goes straight to the vote store (``core.votes.store``) in the session's inspector name:
the login name when the server runs with authentication (it cannot be changed), otherwise a
name entered once in the sidebar.

The view knows the gallery only through :class:`~app.state.AppState`: the focused and the ticked
tiles are the state's ``focused_row`` and ``ticked``; the gallery's keys vote through
:meth:`~app.state.AppState.vote_key`; every vote's outcome (``vote_outcome``) is shown here.
"""

from __future__ import annotations

import logging

import numpy as np
import panel as pn

from app.palettes import CLASS_COLORS
from app.state import KEYS, AppState
from app.text import md as _md
from app.text import notify
from core.labels import DEFINITIONS, VOTE_LABELS
from core.workspace.config import DEFAULT_CONFIG

log = logging.getLogger(__name__)

SCOPES = ("focused tile", "ticked tiles", "whole selection")
_KEY_OF = {label: key for key, label in KEYS.items()}

#: A class definition under its vote button, wrapped to a readable width (Panel's own tooltip for
#: a button string is one unwrapped line to the button's right, cut off at the window's edge).
TOOLTIP_CSS = ":host { white-space: normal; width: max-content; max-width: min(340px, 90vw); line-height: 1.35; }"


def definition_tooltip(text: str):
    """A Bokeh tooltip below a button, wrapping ``text`` (plain text: Bokeh shows it as text)."""
    from bokeh.models import Tooltip

    return Tooltip(content=str(text), position="bottom", attachment="below", stylesheets=[TOOLTIP_CSS])


class VotingView:
    """The vote buttons above the gallery, and the keyboard shortcuts."""

    def __init__(self, state: AppState):
        self.state = state
        self.scope = pn.widgets.RadioButtonGroup(label="apply to", options=list(SCOPES), value=SCOPES[0],
                                                 color="primary", variant="outline", width=330,
                                                 stylesheets=[".bk-btn.bk-active { font-weight: 700; color: #fff !important; }"])
        self.buttons = []
        for label in VOTE_LABELS:
            key = _KEY_OF.get(label, "")
            b = pn.widgets.Button(label=f"{key} · {label}" if key else label, width=120, margin=(2, 3),
                                  description=definition_tooltip(DEFINITIONS.get(label, label)),
                                  stylesheets=[f":host {{ --resx-vote: {CLASS_COLORS.get(label, '#888')}; }}"],
                                  css_classes=["resx-vote"])
            b.on_click(lambda e, lab=label: self.vote_scope(lab))
            self.buttons.append(b)
        self.undo = pn.widgets.Button(label="↶ undo my last vote", width=160, color="light")
        self.undo.on_click(lambda e: self._undo())
        self.status = pn.pane.Markdown("", margin=(0, 10), css_classes=["resx-vote-status"])
        # a bulk vote above app.bulk_confirm galaxies waits here for a confirmation
        self.bulk_confirm = int(state.acfg.get("bulk_confirm", DEFAULT_CONFIG["app"]["bulk_confirm"]))
        self._pending: tuple[np.ndarray, str, str] | None = None
        self.confirm_text = pn.pane.Markdown("", margin=(0, 10))
        self.confirm = pn.widgets.Button(label="Confirm", color="warning", width=90)
        self.cancel = pn.widgets.Button(label="Cancel", width=80)
        self.confirm.on_click(lambda e: self._confirm(True))
        self.cancel.on_click(lambda e: self._confirm(False))
        self.confirm_row = pn.Row(self.confirm_text, self.confirm, self.cancel, visible=False,
                                  css_classes=["resx-bulk-confirm"], align="center")
        state.param.watch(lambda e: self._role(), ["inspector"])
        state.param.watch(self._on_outcome, ["vote_outcome"])
        self._role()

    def _role(self) -> None:
        st = self.state
        if not st.voter.strip():
            self.status.object = "Enter your inspector name in the sidebar to vote."
        elif st.is_expert:
            self.status.object = f"Voting as **{_md(st.voter)}** (expert: your vote validates the label)."
        elif st.authenticated:
            self.status.object = f"Voting as **{_md(st.voter)}** ({st.role})."
        else:
            self.status.object = f"Voting as **{_md(st.voter)}** (unauthenticated name: no expert override)."

    def rows_for(self, scope: str) -> np.ndarray:
        """Catalog rows that a vote with ``scope`` (one of :data:`SCOPES`) labels."""
        st = self.state
        if scope == "focused tile":
            return np.array([st.focused_row] if st.focused_row is not None else [], dtype=int)
        if scope == "ticked tiles":
            return np.asarray(st.ticked, dtype=int)
        return np.asarray(st.selected, dtype=int)

    def _on_outcome(self, event) -> None:
        """Show a vote's outcome, whichever view cast it (a button here, a key in the gallery)."""
        out = event.new or {}
        if out.get("error"):
            self._notify(out["error"], out.get("level", "error"))
            return
        if "n" not in out:
            return
        n = int(out["n"])
        self.status.object = (f"Recorded **{_md(out['label'])}** for {n} galax{'y' if n == 1 else 'ies'} "
                              f"as **{_md(out.get('inspector', ''))}**.")

    def vote_scope(self, label: str) -> None:
        """Label the galaxies of the chosen scope; after the focused tile, the focus moves on."""
        scope = self.scope.value
        rows = self.rows_for(scope)
        if rows.size == 0:
            self._notify(f"No {scope.replace('whole ', '')} to label.", "warning")
            return
        if rows.size > self.bulk_confirm:
            self._pending = (rows, label, scope)
            self.confirm_text.object = (f"Label **{rows.size}** galaxies **{_md(label)}** "
                                        f"({_md(scope)}{': ' + _md(self.state.selection_source) if scope == 'whole selection' and self.state.selection_source else ''})?")
            self.confirm_row.visible = True
            return
        self._cast(rows, label, scope)

    def _cast(self, rows: np.ndarray, label: str, scope: str) -> None:
        n = self.state.record_vote(rows, label, scope=scope)
        if n and scope == "focused tile":
            self.state.focus_next()

    def _confirm(self, ok: bool) -> None:
        """The answer to a bulk vote's confirmation."""
        pending, self._pending = self._pending, None
        self.confirm_row.visible = False
        if ok and pending is not None:
            self._cast(*pending)
        elif pending is not None:
            self.status.object = "Bulk vote cancelled: nothing recorded."

    def _undo(self) -> None:
        try:
            out = self.state.undo_described()
        except Exception as exc:
            self._notify(f"Nothing undone: {exc}", "warning")
            return
        self.status.object = _md(out)

    @staticmethod
    def _notify(msg: str, kind: str = "info") -> None:
        notify(msg, kind)  # escaped: the message may quote a name or a comment

    def panel(self) -> pn.viewable.Viewable:
        return pn.Column(
            pn.FlexBox(*self.buttons, flex_wrap="wrap", sizing_mode="stretch_width", css_classes=["resx-vote-row"]),
            pn.FlexBox(self.scope, self.undo, self.status, flex_wrap="wrap", align_items="center",
                       sizing_mode="stretch_width"),
            self.confirm_row,
            pn.pane.Markdown("Keys: **1–5** classes · **f** fit quality · **s** skip · **arrows** move · **n / p** "
                             "pages · **Enter** detail · **Esc** close · **u** undo · **c** comment · **g** next "
                             "unvoted · **?** all keys (keys label the focused tile, then move to the next; "
                             "hover a button for its class's definition).", margin=(0, 10),
                             css_classes=["resx-hint"]),
            sizing_mode="stretch_width",
        )

