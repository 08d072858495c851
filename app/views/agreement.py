"""Agreement between inspectors: Fleiss' κ and per-inspector agreement with the consensus."""

from __future__ import annotations

import numpy as np
import pandas as pd
import panel as pn

from app.state import AppState


def agreement_panel(state: AppState) -> pn.viewable.Viewable:
    """Redrawn whenever the vote store changes (``state.votes_version``)."""

    def view(_version):
        try:
            ag = state.store.agreement()
        except Exception as exc:
            return pn.pane.Alert(f"No agreement statistics: {exc}", alert_type="warning")
        kappa = getattr(ag, "kappa", np.nan)
        n = getattr(ag, "n_galaxies", 0)
        kappa_txt = "undefined" if kappa is None or not np.isfinite(kappa) else f"{kappa:.3f}"
        per = getattr(ag, "per_inspector", pd.DataFrame())
        parts = [pn.pane.Markdown(f"**Fleiss' κ = {kappa_txt}** over {n} galaxies with ≥ 2 non-skip votes "
                                  f"· {len(state.votes)} current votes", margin=(0, 5))]
        if isinstance(per, pd.DataFrame) and len(per):
            table = per.copy()
            if "agreement" in table:
                table["agreement"] = [("—" if not np.isfinite(a) else f"{100 * a:.1f} %") for a in table["agreement"]]
            parts.append(pn.pane.DataFrame(table, index=False, sizing_mode="stretch_width"))
        else:
            parts.append(pn.pane.Markdown("No votes yet."))
        return pn.Column(*parts, sizing_mode="stretch_width")

    return pn.Column(pn.bind(view, state.param.votes_version), sizing_mode="stretch_width", name="Agreement")
