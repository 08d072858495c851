"""Agreement between inspectors: Fleiss' κ and per-inspector agreement with the consensus."""

from __future__ import annotations

import numpy as np
import pandas as pd
import panel as pn

from app.state import AppState
from app.text import md


class AgreementView:
    """Fleiss' κ and a table of each inspector's agreement with the consensus.

    The statistics read every current vote, so they are computed only while the panel is shown:
    a vote marks them stale (``state.votes_version``) and :meth:`set_visible` recomputes them
    when the tab is opened. The panes are updated in place, never replaced, so a vote does not
    rebuild the page's document.
    """

    def __init__(self, state: AppState):
        self.state = state
        self.summary = pn.pane.Markdown("", margin=(0, 5), css_classes=["resx-kappa"])
        self.table = pn.pane.DataFrame(pd.DataFrame(), index=False, escape=True, sizing_mode="stretch_width",
                                       visible=False)
        self.skill_title = pn.pane.Markdown("", margin=(10, 5, 0, 5))
        self.skills = pn.pane.DataFrame(pd.DataFrame(), index=False, escape=True, sizing_mode="stretch_width", visible=False,
                                        css_classes=["resx-skills"])
        self.visible = False
        self._stale = True
        state.param.watch(self._votes_changed, ["votes_version"])

    def _votes_changed(self, _event=None) -> None:
        self._stale = True
        if self.visible:
            self.refresh()

    def set_visible(self, visible: bool) -> None:
        """Tell the view whether its tab is shown; opening it brings stale numbers up to date."""
        self.visible = bool(visible)
        if self.visible and self._stale:
            self.refresh()

    def refresh(self) -> None:
        """Recompute κ and the per-inspector table from the store."""
        self._stale = False
        try:
            ag = self.state.agreement()
        except Exception as exc:  # noqa: BLE001 - shown to the user, the page stays up
            self.summary.object = f"**No agreement statistics:** {md(exc)}"
            self.table.visible = False
            return
        kappa = getattr(ag, "kappa", np.nan)
        n = getattr(ag, "n_galaxies", 0)
        kappa_txt = "undefined" if kappa is None or not np.isfinite(kappa) else f"{kappa:.3f}"
        self.summary.object = (f"**Fleiss' κ = {kappa_txt}** over {n} galaxies with ≥ 2 non-skip votes "
                               f"· {len(self.state.votes)} current votes")
        per = getattr(ag, "per_inspector", pd.DataFrame())
        if isinstance(per, pd.DataFrame) and len(per):
            table = per.copy()
            if "agreement" in table:
                table["agreement"] = [("—" if not np.isfinite(a) else f"{100 * a:.1f} %") for a in table["agreement"]]
            self.table.object = table
            self.table.visible = True
        else:
            self.summary.object += "\n\nNo votes yet."
            self.table.visible = False
        self.refresh_skills()

    def refresh_skills(self) -> None:
        """Each inspector's skill as estimated by Dawid–Skene (:mod:`core.votes.methods`)."""
        try:
            result = self.state.inspector_skills()
            skills = result.skills()
        except Exception as exc:  # noqa: BLE001 - shown to the user, the page stays up
            self.skill_title.object = f"**No skill estimates:** {md(exc)}"
            self.skills.visible = False
            return
        if skills.empty:
            self.skill_title.object = ""
            self.skills.visible = False
            return
        table = skills.copy()
        for c in table.columns[1:]:
            table[c] = [f"{100 * v:.1f} %" for v in table[c]]
        self.skill_title.object = ("**Estimated skill per inspector** (Dawid–Skene: skill = expected accuracy, "
                                   "recall = P(votes the class | true class); a new inspector starts near "
                                   "reliable)")
        self.skills.object = table
        self.skills.visible = True

    def panel(self) -> pn.viewable.Viewable:
        return pn.Column(self.summary, self.table, self.skill_title, self.skills, sizing_mode="stretch_width",
                         name="Agreement")
