"""Inspect next without a server: the state's queue hooks, the queue view, the map's rings and colours,
the Agreement tab's skill table."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

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


class _FakeJob:
    """A retrain whose trainer has written run cnn-a's map; its scores still pending."""

    def __init__(self, run_id="cnn-a", model="cnn"):
        self.run_id, self.model, self.map_shown, self.released = run_id, model, False, False

    def outcome(self):
        return "done", ""

    def release(self):
        self.released = True


def test_a_retrain_shows_its_map_first_and_the_queue_flags_its_pending_scores(state):
    """show_retrained_map while the trainer scores: the queue in use is rebuilt, ranked by entropy
    and marked "Scores updating"; once the trainer has ended (scores written) finish_retrain
    rebuilds it without the flag and does not show the map a second time."""
    from app.views.queue import QueueView
    from core.latent.queue import ACQUISITION_PENDING, mark_acquisition_pending

    view = QueueView(state)
    state.queue_strategy = "bald"
    view.start.clicks += 1
    assert not state.queue_info.get("scores_pending")
    run_dir = state.ws.run_dir("cnn-a")
    mark_acquisition_pending(run_dir)  # the trainer (alive: this process) is scoring
    state.job = job = _FakeJob()
    assert state.show_retrained_map(make_active=False) == ""
    assert job.map_shown and state.run_cnn == "cnn-a"
    assert state.queue_info["scores_pending"] and state.queue_info["strategy"] == "entropy"
    assert "Scores updating" in view.info.object and "ranked by entropy" in view.info.object
    # the trainer ends: the marker is gone, the queue is rebuilt and no longer flagged
    (run_dir / ACQUISITION_PENDING).unlink()
    shown = []
    state.param.watch(lambda e: shown.append(e.new), ["run_cnn"])
    assert state.finish_retrain(make_active=False) == ("done", "")
    assert job.released and shown == []  # the map was not shown again
    assert not state.queue_info["scores_pending"] and "Scores updating" not in view.info.object


def test_the_runs_view_shows_the_new_map_while_the_trainer_still_scores(state, tmp_path):
    """The dashboard's poll: once progress.json says "scoring" (the map written) the session shows
    the new run although the trainer is still running; the queue in use says its scores are
    updating; when the trainer ends, the queue is rebuilt on the written scores."""
    import json
    import sys

    from app.retrain import RetrainJob
    from app.views.runs import RunsView
    from core.labels import CLASSES
    from tests.app_workspace import write_run

    runs = RunsView(state)
    state.queue_strategy = "bald"
    state.inspect_next(batch=0)
    job = RetrainJob(state.ws, "cnn", 1, "cnn-a", run_id="cnn-new")
    classes = np.array([CLASSES.index(c) for c in state.catalog["catalog_class"]])
    write_run(state.ws, "cnn-new", "cnn", classes, state.ids, seed=5, init="cnn-a", flip=0.3)
    state.ws.set_active_run("cnn", "cnn-new")  # as with "make active", so the queue ranks on it
    go = tmp_path / "go"
    # the fake trainer: scoring (the marker is its own) until the test lets it finish
    script = (f"import json, pathlib, time, sys\nsys.path.insert(0, {str(Path(__file__).resolve().parents[2])!r})\n"
              f"from core.latent.queue import mark_acquisition_pending\n"
              f"d = pathlib.Path({str(job.run_dir)!r})\nmark_acquisition_pending(d)\n"
              "(d / 'progress.json').write_text(json.dumps({'state': 'done', 'epoch': 1, 'epochs': 1, "
              "'history': {}, 'phase': 'embedding'}))\n"
              "time.sleep(0.5)\n"
              "(d / 'progress.json').write_text(json.dumps({'state': 'done', 'epoch': 1, 'epochs': 1, "
              "'history': {}, 'phase': 'scoring', 'map_s': 0.5}))\n"
              f"while not pathlib.Path({str(go)!r}).exists(): time.sleep(0.05)\n"
              "(d / 'acquisition.pending').unlink()\n")
    job.cmd = [sys.executable, "-c", script]
    state.job = job
    job.start()
    runs.r_cancel.disabled = False  # as after the Retrain button
    deadline = time.time() + 60
    while not job.map_ready() and time.time() < deadline:
        assert not job.map_shown
        runs.poll()
        time.sleep(0.1)
    assert job.map_ready() and job.running
    runs.poll()
    assert job.map_shown and state.run_cnn == "cnn-new", "the map waited for the scores"
    assert state.queue_info["scores_pending"] and "scores updating" in runs.r_status.object
    assert runs.r_cancel.disabled  # trained and shown: Cancel would stop nothing
    go.write_text("")
    job.proc.wait(timeout=60)
    runs.poll()
    assert not state.queue_info["scores_pending"] and "finished" in runs.r_status.object
