"""Help: the class definitions (the paper's Table 1), how to inspect, and the keys.

Text only, from :data:`core.labels.DEFINITIONS` and :data:`core.labels.TABLE1_FRACTIONS`, and
the gallery's :data:`app.views.gallery.KEY_HELP`; it reads nothing from the session.
"""

from __future__ import annotations

import panel as pn

from app.palettes import CLASS_COLORS
from app.views.gallery import KEY_HELP
from core.labels import DEFINITIONS, TABLE1_FRACTIONS, VOTE_LABELS

__all__ = ["HOW_TO_INSPECT", "class_table", "help_panel"]

HOW_TO_INSPECT = """
### How to inspect

1. **Select** a region of the map (lasso, or box), a GMM cluster, a class, or paste ids (one per line).
   The gallery shows the selection, page by page; *show: not yet voted by me* hides what you have done.
2. **Read the residual in σ.** Residual and object-only stamps are in units of each galaxy's sky σ on one
   range for the whole gallery (±5σ by default; the colour bar says which). Pure noise looks pale and
   grainy; red is light the single-Sérsic model misses, blue light it puts where there is none. Compare with
   the original and the model (*show triplet*) before deciding between *General*, *Asymmetric* and *Peculiar*.
3. **Vote with the keys**: 1–5 for the classes, **f** for a fit-quality issue, **s** to skip; the focus moves
   on, and on to the next page after its last tile. **Enter** opens every stamp large (zoom with the wheel,
   drag to pan), **Esc** closes it; **c** adds a comment to your vote; **u** undoes.
4. **Bulk votes** (ticked tiles, the whole selection) ask for a confirmation above a size; undo names
   what it undid.
5. A label becomes the **consensus** with two thirds of at least three inspectors' votes; an expert's vote
   validates it. *Skip* never enters training.
"""


def class_table() -> str:
    """The classes, their definitions and their share in the paper's sample (Table 1), as Markdown."""
    rows = []
    for label in VOTE_LABELS:
        share = TABLE1_FRACTIONS.get(label)
        colour = CLASS_COLORS.get(label, "#888888")
        rows.append(f'| <span style="color:{colour}">■</span> **{label}** | {DEFINITIONS[label]} | '
                    f'{f"{100 * share:.1f} %" if share is not None else "—"} |')
    return ("### The classes (the paper's Table 1)\n\n| class | definition | share of the paper's 10,046 |\n"
            "|---|---|---|\n" + "\n".join(rows))


def help_panel() -> pn.viewable.Viewable:
    """The Help tab."""
    keys = "\n".join(f"| `{k}` | {what} |" for k, what in KEY_HELP)
    return pn.Column(
        pn.pane.Markdown(class_table(), sizing_mode="stretch_width", css_classes=["resx-help-classes"]),
        pn.pane.Markdown(HOW_TO_INSPECT, sizing_mode="stretch_width"),
        pn.pane.Markdown("### Keys\n\n| key | does |\n|---|---|\n" + keys, sizing_mode="stretch_width"),
        sizing_mode="stretch_width", name="Help",
    )
