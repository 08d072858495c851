"""The dashboard's colours: one fixed colour per class and per GMM cluster.

A class has the same colour on every map, legend, tile border and vote button, in every
session. The class colours are Paul Tol's "bright" scheme (colour-blind safe); the cluster
colours his "muted" and "light" schemes.
"""

from __future__ import annotations

from typing import Iterable

from core.labels import FIT_QUALITY, SKIP
from core.votes.consensus import UNDECIDED

__all__ = ["CLASS_COLORS", "CLUSTER_COLORS", "NO_LABEL", "UNDECIDED", "color_key"]

#: Shown for a galaxy without a label (no catalog class, no vote, no prediction).
NO_LABEL = "—"

#: Fixed colours, so a class looks the same on every map, legend and tile.
CLASS_COLORS: dict[str, str] = {
    "Clean": "#4477aa",
    "General": "#66ccee",
    "Core": "#228833",
    "Asymmetric": "#ccbb44",
    "Peculiar": "#ee6677",
    FIT_QUALITY: "#aa3377",
    SKIP: "#999999",
    UNDECIDED: "#bbbbbb",
    "hidden": "#e8e8e8",
    NO_LABEL: "#dddddd",
}

#: Colours of the GMM clusters, in cluster order (repeated past 15 clusters).
CLUSTER_COLORS: list[str] = ["#332288", "#88ccee", "#44aa99", "#117733", "#999933", "#ddcc77", "#cc6677",
                             "#882255", "#aa4499", "#dddddd", "#6699cc", "#997700", "#ee99aa", "#004488",
                             "#bbbbbb"]


def color_key(column: str, values: Iterable[str]) -> dict[str, str]:
    """Colours for the categories of a categorical colour column.

    Parameters
    ----------
    column : str
        Column of :meth:`app.state.AppState.map_frame` (``gmm`` gets the cluster colours,
        every other column the class colours).
    values : iterable of str
        The categories present.

    Returns
    -------
    dict
        Category -> hex colour; a category without a fixed colour is dark grey.
    """
    values = sorted(set(values), key=str)
    if column == "gmm":
        return {v: CLUSTER_COLORS[i % len(CLUSTER_COLORS)] for i, v in enumerate(values)}
    return {v: CLASS_COLORS.get(v, "#444444") for v in values}
