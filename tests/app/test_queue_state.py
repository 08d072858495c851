"""Inspect next without a server: the state's queue hooks, the queue view, the map's rings and colours,
the Agreement tab's skill table."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from app.state import AppState
from core.latent.queue import build_queue


@pytest.fixture(scope="module")
def ws_path(tmp_path_factory):
    from tests.app_workspace import make_workspace

    root = tmp_path_factory.mktemp("queuews") / "ws"
    make_workspace(root, n=200, seed=1, size=16)
    return root


@pytest.fixture
def state(ws_path, tmp_path):
    root = tmp_path / "ws"
    shutil.copytree(ws_path, root)
    return AppState(root)


def test_inspect_next_fills_the_selection_in_the_queue_order(state):
    table = state.inspect_next("margin")
    expected = build_queue(state.ws, "margin", 48).table
    assert table["id"].tolist() == expected["id"].tolist()
    assert state.selected.tolist() == expected["row"].tolist() == state.queue_rows.tolist()
    assert state.selection_source == "Inspect next (margin, batch 1)"
    assert state.queue_info["source"] == "CNN run cnn-a" and not state.queue_info["cold_start"]
    # the map can be coloured by the score: every unretired galaxy has one
    frame = state.map_frame()
    assert np.isfinite(frame["acquisition"]).all()
    # the next batch continues the queue
    nxt = state.next_batch()
    assert nxt["rank"].iloc[0] == 49 and state.queue_batch == 1
    assert nxt["id"].tolist() == build_queue(state.ws, "margin", 48, offset=48).table["id"].tolist()
    # votes retire galaxies: the first batch rebuilt after three votes no longer holds the first galaxy
    first = table["id"].iloc[0]
    for who in ("ann", "bob", "cy"):
        state.inspector = who
        state.vote([int(table["row"].iloc[0])], "Core")
    again = state.inspect_next(batch=0)
    assert first not in again["id"].tolist()
    assert state.queue_info["n_retired"] == 1


def test_queue_view_says_where_the_queue_comes_from_and_what_is_missing(state):
    from app.views.queue import QueueView

    view = QueueView(state)
    assert view.skip.disabled
    view.start.clicks += 1  # the button's on_click
    assert len(state.selected) == 48 and not view.skip.disabled
    assert "Batch 1: 48 galaxies by" in view.info.object and "CNN run cnn-a" in view.info.object
    view.skip.clicks += 1
    assert state.queue_batch == 1 and "Batch 2" in view.info.object
    # cold start: no CNN run -> the CvAE map, and how many labels are missing
    state.ws.set_active_run("cnn", None)
    state.queue_strategy = "bald"
    view.start.clicks += 1
    assert state.queue_info["cold_start"]
    assert "Cold start:" in view.info.object and "100 more decided consensus labels" in view.info.object
    # text from the workspace is escaped
    state.queue_info = {"error": "<img src=x onerror=alert(1)>"}
    assert "<img" not in view.info.object and "&lt;img" in view.info.object


def test_map_rings_the_queue_and_colours_by_acquisition(state):
    import holoviews as hv
    from bokeh.models import ColorBar, GlyphRenderer

    from app.views.map import QUEUE_COLOR, MapView

    hv.extension("bokeh")
    state.color_by = "acquisition score"
    view = MapView(state)
    state.inspect_next("entropy")
    fig = hv.render(view.plot(), backend="bokeh")
    rings = [r for r in fig.select(GlyphRenderer) if type(r.glyph).__name__ == "Scatter"
             and getattr(r.glyph, "line_color", None) == QUEUE_COLOR]
    assert len(rings) == 1 and len(rings[0].data_source.data["x"]) == 48
    frame = state.map_frame()
    np.testing.assert_array_equal(frame.loc[state.queue_rows, "x"].to_numpy(), rings[0].data_source.data["x"])
    assert len(list(fig.select(ColorBar))) == 1  # coloured by the (continuous) score


def test_agreement_tab_shows_estimated_skills(state):
    from app.views.agreement import AgreementView

    rows = np.arange(120)
    truth = state.catalog["catalog_class"].to_numpy()[rows]
    for who in ("ann", "bob"):
        state.inspector = who
        for c in set(truth):
            state.vote(rows[truth == c], c)
    state.inspector = "cy"
    state.vote(rows, "Peculiar")  # careless: one answer for everything
    view = AgreementView(state)
    view.set_visible(True)
    assert view.skills.visible
    table = view.skills.object.set_index("inspector")
    assert list(table.index) == ["ann", "bob", "cy"]
    skill = {k: float(v.rstrip(" %")) for k, v in table["skill"].items()}
    # ann and bob agree on everything: near-perfect; cy's recall is 1 on Peculiar only, the
    # prior's 4 of 5 pseudo-votes on the other diagonals are swamped by ~24 votes per class
    assert skill["ann"] > 85 and skill["cy"] < 40


def test_the_queue_refreshes_after_a_retrain_only_when_in_use(state, monkeypatch):
    calls = []
    monkeypatch.setattr(state, "inspect_next", lambda strategy=None, batch=None: calls.append(batch))
    state.refresh_queue()
    assert calls == []  # never opened: nothing to refresh
    state.queue_info = {"strategy": "margin", "n": 48}
    state.refresh_queue()
    assert calls == [0]  # rebuilt from the first batch with the new run's scores
