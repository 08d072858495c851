"""The dashboard's state and selection logic, without a server (app/state.py, app/selection.py, app/retrain.py,
app/views/*)."""

from __future__ import annotations

import base64
import io
import sys

import numpy as np
import pandas as pd
import pytest

from app.selection import n_pages, page_of, parse_id_list, points_in_bounds, points_in_polygon, sort_rows  # noqa: E402
from app.state import AppState  # noqa: E402
from core.labels import CLASSES  # noqa: E402
from core.workspace.workspace import WorkspaceError  # noqa: E402


@pytest.fixture(scope="module")
def ws_path(tmp_path_factory):
    from tests.app_workspace import make_workspace

    root = tmp_path_factory.mktemp("appws") / "ws"
    make_workspace(root, n=200, seed=1, size=16)
    return root


@pytest.fixture
def state(ws_path, tmp_path):
    # a fresh copy per test so votes do not leak between tests
    import shutil

    root = tmp_path / "ws"
    shutil.copytree(ws_path, root)
    return AppState(root)


# -- pure selection helpers -------------------------------------------------------------------
def test_points_in_polygon_square_and_concave():
    x = np.array([0.5, 1.5, 0.5, 2.5, 1.5])
    y = np.array([0.5, 0.5, 1.5, 2.5, 1.5])
    # unit-2 square: the first three and the fifth are inside, (2.5, 2.5) is not
    inside = points_in_polygon(x, y, [0, 2, 2, 0], [0, 0, 2, 2])
    assert inside.tolist() == [True, True, True, False, True]
    # an L shape (concave): the square minus its upper-right quadrant [1,2]x[1,2]
    inside = points_in_polygon(x, y, [0, 2, 2, 1, 1, 0], [0, 0, 1, 1, 2, 2])
    assert inside.tolist() == [True, True, True, False, False]


def test_points_in_polygon_matches_triangle_inequality_on_a_grid():
    g = (np.arange(1000) + 0.25) / 1000  # 10^6 points, none on the edge x + y = 1
    x, y = (a.ravel() for a in np.meshgrid(g, g))
    inside = points_in_polygon(x, y, [0, 1, 0], [0, 0, 1])
    assert inside.sum() == int((x + y < 1).sum())
    assert np.array_equal(inside, x + y < 1)


def test_points_in_polygon_degenerate():
    assert not points_in_polygon(np.array([0.0]), np.array([0.0]), [0, 1], [0, 1]).any()
    assert points_in_polygon(np.array([]), np.array([]), [0, 1, 0], [0, 0, 1]).size == 0


def test_point_index_selects_exactly_what_the_plain_test_selects():
    from app.selection import PointIndex

    rng = np.random.default_rng(5)
    n = 20000
    x = np.concatenate([rng.normal(c, 0.7, n // 4) for c in (-4, 0, 4, 0)])
    y = np.concatenate([rng.normal(c, 0.7, n // 4) for c in (0, 4, 0, -4)])
    x[:50] = np.round(x[:50], 1)  # points on a lattice: some lie on the polygons' edges below
    y[:50] = np.round(y[:50], 1)
    x[50], y[51] = np.nan, np.inf  # never selected
    index = PointIndex(x, y)
    polygons = [([-7.0, -1.5, -1.5, -7.0], [-3.0, -3.0, 3.0, 3.0]), ([0, 2, 2, 1, 1, 0], [0, 0, 1, 1, 2, 2]),
                ([-100, 100, 0], [-100, -100, 100]),  # larger than the map
                ([20, 30, 25], [20, 20, 30]),  # beside it
                ([-1.0, 1.0, 1.0, -1.0], [-1.0, -1.0, 1.0, 1.0])]  # edges through lattice points
    for _ in range(150):
        m = int(rng.integers(3, 12))
        if rng.random() < 0.3:  # self-intersecting
            polygons.append((rng.uniform(-8, 8, m), rng.uniform(-8, 8, m)))
        else:
            ang = np.sort(rng.uniform(0, 2 * np.pi, m))
            r = rng.uniform(0.05, 6) * rng.uniform(0.2, 1, m)
            cx, cy = rng.uniform(-6, 6, 2)
            polygons.append((cx + r * np.cos(ang), cy + r * np.sin(ang)))
    for xs, ys in polygons:
        np.testing.assert_array_equal(index.in_polygon(xs, ys), points_in_polygon(x, y, xs, ys))
    assert not index.in_polygon([0, 1], [0, 1]).any()
    # degenerate clouds: one point, a vertical line
    for px, py in ((np.array([0.5]), np.array([0.5])), (np.zeros(100), np.linspace(-1, 1, 100))):
        one = PointIndex(px, py)
        for xs, ys in (([0, 1, 1, 0], [0, 0, 1, 1]), ([-1, 1, 0], [-2, -2, 2])):
            np.testing.assert_array_equal(one.in_polygon(xs, ys), points_in_polygon(px, py, xs, ys))


def test_point_index_tests_only_the_points_near_the_outline():
    from app.selection import PointIndex

    rng = np.random.default_rng(0)
    x, y = rng.uniform(0, 100, 200_000), rng.uniform(0, 100, 200_000)
    index = PointIndex(x, y)
    small = index.in_polygon([10, 12, 12, 10], [10, 10, 12, 12])
    assert small.sum() > 0 and index.last_tested < 0.005 * x.size
    large = index.in_polygon([5, 95, 95, 5], [5, 5, 95, 95])  # 81 % of the points inside ...
    assert large.sum() > 0.75 * x.size and index.last_tested < 0.1 * x.size  # ... few tested one by one


def test_points_in_bounds_any_corner_order():
    x, y = np.array([0.0, 1.0, 2.0]), np.array([0.0, 1.0, 2.0])
    assert points_in_bounds(x, y, (1.5, 1.5, -0.5, -0.5)).tolist() == [True, True, False]


def test_parse_id_list():
    # one id per line, whatever it holds (ids with spaces and commas exist: SIM 00024)
    assert parse_id_list(" a, b;c\n d\te,,\n\n  SIM 00024 \r\n") == ["a, b;c", "d\te,,", "SIM 00024"]
    assert parse_id_list("  ") == []


def test_sort_rows_and_pages():
    frame = pd.DataFrame({"spf": [3.0, np.nan, 1.0, 2.0], "id": ["d", "c", "b", "a"]}, index=[0, 1, 2, 3])
    rows = np.array([0, 1, 2, 3])
    assert sort_rows(rows, frame, "SPF (high first)").tolist() == [0, 3, 2, 1]  # NaN last
    assert sort_rows(rows, frame, "id").tolist() == [3, 2, 1, 0]
    assert sort_rows(rows[::-1], frame, "selection order").tolist() == [3, 2, 1, 0]
    assert n_pages(0) == 1 and n_pages(48) == 1 and n_pages(49) == 2
    r = np.arange(100)
    assert page_of(r, 0).tolist() == list(range(48))
    assert page_of(r, 2).tolist() == list(range(96, 100))
    assert page_of(r, 9).tolist() == list(range(96, 100))  # clipped to the last page


# -- the state on a fabricated workspace -------------------------------------------------------------
def test_missing_and_corrupt_workspace(tmp_path):
    with pytest.raises(WorkspaceError, match="resx demo"):
        AppState(tmp_path / "nowhere")
    from core.workspace.workspace import Workspace

    ws = Workspace.create(tmp_path / "bad")
    ws.catalog_path.write_bytes(b"SIMPLE  = not a fits file")
    with pytest.raises(WorkspaceError, match="catalog"):
        AppState(ws.root)


def test_state_opens_active_runs_and_aligns_by_id(state):
    assert state.run_cnn == "cnn-a" and state.run_cvae == "cvae-a"
    frame = state.map_frame("cnn")
    assert len(frame) == state.n == 200
    emb = state.embedding("cnn-a")
    # the row of every point is the catalog row of its id
    assert (state.ids[frame.index.to_numpy()] == frame["id"].to_numpy()).all()
    np.testing.assert_allclose(frame["x"].to_numpy(), emb["pcs"][:, 0])
    assert set(frame["predicted"]) <= set(CLASSES)
    assert frame["confidence"].between(0, 1).all()
    state.pc_x, state.pc_y = 3, 1
    frame = state.map_frame("cnn")
    np.testing.assert_allclose(frame["x"].to_numpy(), emb["pcs"][:, 2])
    np.testing.assert_allclose(frame["y"].to_numpy(), emb["pcs"][:, 0])


def test_embedding_in_another_order_is_aligned(state, tmp_path):
    from core.latent.embedding import Embedding

    emb = Embedding.load(state.ws.runs_dir / "cnn-a")
    perm = np.random.default_rng(0).permutation(len(emb.ids))
    for name in ("ids", "rows", "latents", "pcs", "pcs_raw", "gmm_labels", "probabilities", "predicted"):
        setattr(emb, name, getattr(emb, name)[perm])
    emb.run_id = "cnn-perm"
    folder = state.ws.runs_dir / "cnn-perm"
    folder.mkdir()
    emb.save(folder)
    state.set_run("cnn", "cnn-perm")
    frame = state.map_frame("cnn")
    ref = Embedding.load(state.ws.runs_dir / "cnn-a")
    # same galaxy -> same PCs whatever the storage order
    by_id = pd.Series(ref.pcs[:, 0], index=ref.ids.astype(str))
    np.testing.assert_allclose(frame["x"].to_numpy(), by_id.loc[frame["id"]].to_numpy())


def test_lasso_selects_exactly_the_points_inside(state):
    frame = state.map_frame()
    xs, ys = [-7, -2, -2, -7], [-3, -3, 3, 3]  # around the Clean cluster
    rows = state.select_polygon(xs, ys)
    expect = frame.index[(frame["x"] > -7) & (frame["x"] < -2) & (frame["y"] > -3) & (frame["y"] < 3)]
    assert sorted(rows.tolist()) == sorted(expect.tolist())
    assert len(rows) > 10
    assert (state.catalog["catalog_class"].to_numpy()[rows] == "Clean").mean() > 0.9
    assert state.selection_source.startswith("lasso")
    box = state.select_bounds((-7, -3, -2, 3))
    assert sorted(box.tolist()) == sorted(expect.tolist())


def test_select_by_cluster_class_and_ids(state):
    rows = state.select_where("catalog_class", ["Core"])
    assert (state.catalog["catalog_class"].to_numpy()[rows] == "Core").all()
    assert len(rows) == (state.catalog["catalog_class"] == "Core").sum()
    rows = state.select_where("gmm", ["2"])
    assert len(rows) == (state.embedding("cnn-a")["gmm_labels"] == 2).sum()
    rows, unknown = state.select_ids(["G0000005", "nope", "G0000001", "G0000005"])
    assert rows.tolist() == [5, 1] and unknown == ["nope"]


def test_filters_limit_map_and_lasso(state):
    state.class_filter = ["Core", "Peculiar"]
    frame = state.map_frame()
    assert set(frame["catalog_class"]) == {"Core", "Peculiar"}
    rows = state.select_polygon([-20, 20, 20, -20], [-20, -20, 20, 20])
    assert set(state.catalog["catalog_class"].to_numpy()[rows]) == {"Core", "Peculiar"}


def test_vote_needs_a_name_and_updates_consensus(state):
    with pytest.raises(PermissionError):
        state.vote([0], "Core")
    version = state.votes_version
    for name in ("ann", "bob", "cy"):
        state.inspector = name
        assert state.vote([0, 1], "Core") == 2
    assert state.votes_version > version
    label, nvotes, disagree = state.consensus_columns()
    # blind mode (default) does not hide what cy voted on
    assert label[0] == "Core" and nvotes[0] == 3 and disagree[0] == 0
    assert label[2] == "hidden" and nvotes[2] == 0  # blind: not voted on by cy, so nothing is told
    stored = state.store.current_votes()
    assert len(stored) == 6 and set(stored["source"]) == {"ui-unauth"}  # no login: typed names
    state.inspector = "dee"
    state.vote([1], "Clean")
    label, nvotes, disagree = state.consensus_columns()
    assert nvotes[1] == 4 and label[1] == "Core"  # 3 of 4 >= 2/3
    np.testing.assert_allclose(disagree[1], 0.25)
    state.undo()
    assert state.consensus_columns(reveal=True)[1][1] == 3  # (dee has no vote on it now: blind hides it)
    with pytest.raises(ValueError):
        state.vote([0], "Spiral")


def test_blind_mode_hides_others_votes_until_voted(state):
    state.blind = True
    state.inspector = "ann"
    state.vote([0], "Core")
    state.inspector = "bob"
    label, nvotes, disagree = state.consensus_columns()
    # nothing derived from others' votes: not the label, the count or the disagreement, not even
    # whether anyone voted (a galaxy nobody voted on looks the same)
    assert label[0] == "hidden" and nvotes[0] == 0 and np.isnan(disagree[0])
    assert label[1] == "hidden" and nvotes[1] == 0
    assert state.selection_table(np.array([0]))["votes"].iloc[0] == ""
    assert not state.disputed(np.array([0])).any()
    # the lead's export carries the real consensus and votes; nobody else may ask for it
    lead = state.selection_table(np.array([0]), reveal=True)  # the loopback session is the lead
    assert lead["votes"].iloc[0] == "ann:Core" and lead["n_votes"].iloc[0] == 1
    remote = AppState(state.ws.root, loopback=False)
    with pytest.raises(PermissionError, match="lead role"):
        remote.selection_table(np.array([0]), reveal=True)
    state.vote([0], "Clean")
    label, _, _ = state.consensus_columns()
    assert label[0] != "hidden"
    state.blind = False
    state.inspector = "zed"
    assert state.consensus_columns()[0][0] != "hidden"


def test_votes_from_another_session_are_picked_up(state):
    other = AppState(state.ws.root)
    other.inspector = "remote"
    other.vote([7], "Peculiar")
    before = state.votes_version
    state.poll()
    assert state.votes_version == before + 1
    assert state.consensus.loc["G0000007", "n_votes"] == 1
    state.poll()  # nothing new: no redraw
    assert state.votes_version == before + 1


def test_own_vote_reads_only_its_galaxies_yet_misses_no_other_write(state, monkeypatch):
    """After a vote the session re-reads the voted galaxies only; the result equals a full read,
    and a vote another process slipped in meanwhile still arrives on the next poll."""
    from core.votes.store import open_store
    from core.workspace.mapdata import _by_id

    elsewhere = open_store(state.ws.votes_url)  # another server process, or a script
    elsewhere.add_inspector("remote")
    state.inspector = "ann"
    full_reads = []
    original = type(state.store).consensus
    monkeypatch.setattr(type(state.store), "consensus",
                        lambda self, *a, **k: (full_reads.append(k.get("ids") is None), original(self, *a, **k))[1])
    state.vote([4, 5, 6], "General")
    assert full_reads == [False]  # the voted galaxies only
    state.poll()
    assert full_reads == [False]  # up to date: the poll reads nothing
    fresh = _by_id(original(elsewhere))
    assert state.consensus.loc[fresh.index].equals(fresh)
    pd.testing.assert_frame_equal(state.votes.sort_values(["id", "inspector"], ignore_index=True),
                                  elsewhere.current_labels().sort_values(["id", "inspector"], ignore_index=True),
                                  check_dtype=False)
    elsewhere.cast(["G0000009"], "remote", "Peculiar")  # another process writes ...
    state.vote([10], "Core")  # ... before this session's next vote
    assert state.consensus.loc["G0000009", "n_votes"] == 0  # not seen yet
    state.poll()  # the version moved by two actions: a full read
    assert full_reads[-1] is True
    assert state.consensus.loc["G0000009", "n_votes"] == 1
    assert state.consensus.loc["G0000010", "label"] == "undecided" and state.consensus.loc["G0000010", "Core"] == 1


def test_sessions_of_one_process_share_the_map_data_and_see_each_others_votes(state):
    """One copy of the catalog, embeddings, consensus and map table per process; a vote cast in
    one session updates the shared consensus once, and the other session redraws on its poll."""
    other = AppState(state.ws.root)
    assert other.shared is state.shared
    assert other.catalog is state.catalog and other.embedding(other.run_cnn) is state.embedding(state.run_cnn)
    assert other.map_frame() is state.map_frame()
    state.blind = other.blind = False  # blind mode: each inspector's own table (below)
    other.inspector = "remote"
    other.vote([7], "Peculiar")
    assert other.consensus is state.consensus  # the same table, updated once
    assert other.map_frame().loc[7, "n_votes"] == 1
    before = state.votes_version
    state.poll()
    assert state.votes_version == before + 1
    assert state.map_frame() is other.map_frame() and state.map_frame().loc[7, "n_votes"] == 1
    state.poll()
    assert state.votes_version == before + 1  # nothing new: no redraw
    # filters are the session's own
    state.class_filter = [state.param.class_filter.objects[0]]
    assert len(state.map_frame()) < len(other.map_frame())
    # in blind mode each inspector sees only the consensus of what they voted on
    state.class_filter = []
    state.blind = other.blind = True
    state.inspector = "ann"
    assert state.map_frame().loc[7, "consensus"] == "hidden" and other.map_frame().loc[7, "consensus"] != "hidden"


def test_agreement_panel_computes_only_while_shown(state, monkeypatch):
    from app.views.agreement import AgreementView

    calls = []
    original = type(state.store).agreement
    monkeypatch.setattr(type(state.store), "agreement", lambda self: (calls.append(1), original(self))[1])
    view = AgreementView(state)
    for name, label in (("ann", "Core"), ("bob", "Core"), ("cy", "Clean")):
        state.inspector = name
        state.vote([0, 1], label)
    assert calls == []  # hidden tab: votes only mark it stale
    view.set_visible(True)
    assert len(calls) == 1
    # ann and bob agree with the 2-of-3 consensus (Core) on both galaxies, cy with none
    assert "over 2 galaxies" in view.summary.object and "6 current votes" in view.summary.object
    per = view.table.object.set_index("inspector")
    assert per.loc["ann", "agreement"] == "100.0 %" and per.loc["cy", "agreement"] == "0.0 %"
    state.inspector = "dee"
    state.vote([2], "Skip")
    assert len(calls) == 2 and "7 current votes" in view.summary.object  # shown: live
    view.set_visible(False)
    state.vote([3], "Core")
    view.set_visible(False)
    assert len(calls) == 2


def test_expert_override_needs_the_login_a_typed_expert_name_gets_none(state):
    from core.workspace.config import write_config
    from core.workspace.workspace import Workspace

    state.ws.config["votes"]["experts"] = ["Boss"]
    write_config(state.ws.config, state.ws.root / Workspace.CONFIG)
    # without authentication: typing the expert's name records an unauthenticated vote, no override
    typed = AppState(state.ws.root)
    typed.inspector = " boss"
    assert not typed.is_expert and typed.role == "lead" and not typed.experts_enabled  # lead: loopback
    for name in ("ann", "bob"):
        typed.inspector = name
        typed.vote([3], "Clean")
    typed.inspector = " boss"
    typed.vote([3], "Asymmetric")
    # the 2/3 majority (Clean), not the expert's label
    assert typed.consensus.loc["G0000003", "label"] == "Clean" and not typed.consensus.loc["G0000003", "expert"]
    assert typed.store.consensus().set_index("id").loc["G0000003", "label"] == "Clean"  # the CLI and training agree
    # with authentication: the login named in votes.experts validates
    boss = AppState(state.ws.root, login="boss", loopback=False)
    assert boss.is_expert and boss.role == "expert" and not boss.is_lead
    boss.inspector = "ann"  # a change from the page: put back to the login on the server
    assert boss.inspector == "boss" and boss.voter == "boss"
    boss.vote([3], "Asymmetric")
    from core.votes.validation import inspector_key

    people = boss.store.inspectors()
    assert people.loc[people["name"].map(inspector_key) == "boss", "role"].tolist() == ["expert"]  # one person
    assert boss.consensus.loc["G0000003", "label"] == "Asymmetric"  # an expert's vote validates
    assert {inspector_key(n) for n in boss.store.current_votes(["G0000003"])["inspector"]} == {"ann", "bob", "boss"}


def test_roles_come_from_the_config_bound_to_logins(state):
    from core.workspace.config import write_config
    from core.workspace.workspace import Workspace

    state.ws.config["app"]["leads"] = ["Lea"]
    write_config(state.ws.config, state.ws.root / Workspace.CONFIG)
    lea = AppState(state.ws.root, login="lea", loopback=False)
    ann = AppState(state.ws.root, login="ann", loopback=True)
    assert (lea.role, ann.role) == ("lead", "inspector")
    with pytest.raises(PermissionError, match="needs the lead role"):
        ann.lead_only("starting a retrain")
    lea.lead_only("starting a retrain")
    remote = AppState(state.ws.root, loopback=False)  # no auth, beyond the loopback: nobody is the lead
    remote.inspector = "lea"
    assert remote.role == "inspector"
    with pytest.raises(PermissionError, match="beyond the loopback"):
        remote.lead_only("changing the active run")


def test_selection_table_and_saved_selections(state):
    state.inspector = "ann"
    state.blind = False
    state.vote([4], "General")
    state.select_ids(["G0000004", "G0000009"])
    table = state.selection_table()
    assert table["id"].tolist() == ["G0000004", "G0000009"]
    assert table["votes"].tolist() == ["ann:General", ""]
    assert {"spf", "predicted", "gmm_cluster", "consensus", "n_votes"} <= set(table.columns)
    path = state.save_selection("my pick!")
    assert path.name == "my_pick.txt" and path.read_text().split() == ["G0000004", "G0000009"]
    state.clear_selection()
    rows, unknown = state.load_selection("my_pick")
    assert rows.tolist() == [4, 9] and unknown == []
    with pytest.raises(ValueError):
        state.save_selection(" !! ")


def test_consensus_catalog_export(state):
    from astropy.table import Table

    from app.views.export import consensus_catalog, table_bytes

    state.inspector = "ann"
    state.vote([0], "Core")
    t = consensus_catalog(state)
    assert len(t) == state.n and t["id"][0] == "G0000000"
    assert {"consensus", "n_votes", "predicted", "spf"} <= set(t.colnames)
    from app.views.export import export_provenance

    prov = export_provenance(state, "consensus catalog (dashboard)")
    back = Table.read(table_bytes(t, "fits", prov), format="fits")
    assert len(back) == state.n
    assert back.meta["RUN_CNN"] == state.run_cnn and back.meta["EXPORTBY"] == "ann" and back.meta["EXPORTED"]
    assert "majority" in back.meta["CONSENS"] and len(back.meta["CFGSHA"]) == 64
    csv = table_bytes(t, "csv", prov).getvalue().decode()
    assert csv.splitlines()[0].startswith("id,") and len(csv.splitlines()) == state.n + 1


def test_one_retrain_at_a_time_per_workspace_and_only_for_the_lead(state):
    other = AppState(state.ws.root)  # a second session of the same workspace
    job = state.start_retrain("cnn", 1, finetune=False, extra_args=["--no-such-option"])
    with pytest.raises(RuntimeError, match="already running .*run " + job.run_id):
        other.start_retrain("cnn", 1, finetune=False, extra_args=["--no-such-option"])
    job.proc.wait(timeout=120)
    assert state.finish_retrain()[0] == "failed"  # its outcome read: the lock is free again
    again = other.start_retrain("cnn", 1, finetune=False, extra_args=["--no-such-option"])
    again.proc.wait(timeout=120)
    other.finish_retrain()
    remote = AppState(state.ws.root, loopback=False)  # no auth beyond the loopback: not the lead
    with pytest.raises(PermissionError, match="needs the lead role"):
        remote.start_retrain("cnn", 1, finetune=False)


def test_failed_retrain_keeps_the_active_run(state):
    job = state.start_retrain("cnn", 1, finetune=True, extra_args=["--no-such-option"])
    assert job.init == "cnn-a" and "--init" in job.cmd and "--labels" in job.cmd
    job.proc.wait(timeout=120)
    status, message = state.finish_retrain()
    assert status == "failed" and message
    assert state.run_cnn == "cnn-a"


def test_finished_retrain_is_shown_and_made_active_only_when_asked(state):
    """A run that ends 'done' with an embedding becomes the shown run (process faked by a script);
    the workspace's active run (active.json) changes only when asked."""
    from app.retrain import RetrainJob
    from tests.app_workspace import write_run

    classes = np.array([CLASSES.index(c) for c in state.catalog["catalog_class"]])
    job = RetrainJob(state.ws, "cnn", 1, "cnn-a", run_id="cnn-new")
    assert "--no-activate" in job.cmd  # the trainer never activates the run itself
    write_run(state.ws, "cnn-new", "cnn", classes, state.ids, seed=5, init="cnn-a", flip=0.3)
    job.cmd = [sys.executable, "-c", "pass"]
    job.start()
    job.proc.wait(timeout=60)
    state.job = job
    assert state.finish_retrain() == ("done", "")
    assert state.run_cnn == "cnn-new" and any(r.id == "cnn-new" for r in state.runs)
    assert state.ws.active_run("cnn") == "cnn-a"  # not asked: the workspace's active run is unchanged
    assert state.finish_retrain(make_active=True) == ("done", "")
    assert state.ws.active_run("cnn") == "cnn-new"
    changed, compared, prev = state.predictions_changed("cnn")
    a, b = state.embedding("cnn-new")["predicted"], state.embedding("cnn-a")["predicted"]
    assert (changed, compared, prev) == (int((a != b).sum()), state.n, "cnn-a")


# -- gallery rendering ---------------------------------------------------------------------------
def test_residual_stretch_is_symmetric():
    from app.views.gallery import residual_limit, stretch_residual

    img = np.array([[-2.0, -1.0, 0.0, 1.0, 2.0]])
    for method in ("linear", "asinh", "zscale"):
        u = stretch_residual(img, 2.0, method)
        assert u[0, 2] == pytest.approx(0.5)
        assert u[0, 0] == pytest.approx(0.0) and u[0, 4] == pytest.approx(1.0)
        assert u[0, 1] + u[0, 3] == pytest.approx(1.0)  # odd about zero
    assert stretch_residual(img, 2.0, "linear")[0, 3] == pytest.approx(0.75)
    assert stretch_residual(img, 2.0, "asinh")[0, 3] > 0.75  # asinh lifts faint residuals
    data = np.linspace(-1, 1, 2001)
    assert residual_limit(data, "linear") == pytest.approx(np.percentile(np.abs(data), 99.5))
    assert residual_limit(np.full(10, np.nan), "linear") == 1.0


def test_render_stamps_gives_pngs_of_the_stamp_size():
    from PIL import Image

    from app.views.gallery import render_stamps

    rng = np.random.default_rng(0)
    stamps = {"residual": rng.normal(size=(3, 16, 16)), "goi_mask": np.ones((3, 16, 16), np.uint8),
              "original": rng.random((3, 16, 16))}
    uris, stretch = render_stamps(stamps, "zscale", invert=True)
    assert stretch.method == "zscale" and stretch.invert and stretch.limit > 0
    assert {k: len(v) for k, v in uris.items()} == {"residual": 3, "goi_mask": 3, "original": 3}
    img = Image.open(io.BytesIO(base64.b64decode(uris["residual"][0].split(",", 1)[1])))
    assert img.size == (16, 16)
    mask = np.zeros((1, 4, 4), np.uint8)
    mask[0, :2] = 1
    png = render_stamps({"goi_mask": mask})[0]["goi_mask"][0]
    pix = np.asarray(Image.open(io.BytesIO(base64.b64decode(png.split(",", 1)[1]))).convert("L"))
    # GOI pixels white, the rest black; row 0 is drawn at the bottom
    assert (pix[2:] == 255).all() and (pix[:2] == 0).all()


def test_gallery_pages_and_keys(state):
    from app.views.gallery import GalleryView
    from app.views.voting import VotingView

    gallery = GalleryView(state)
    voting = VotingView(state)
    state.select_where("catalog_class", ["Clean", "Core"])
    n = len(state.selected)
    assert len(gallery.grid.tiles) == min(48, n)
    first = gallery.grid.tiles[0]
    assert first["id"] == state.ids[state.selected[0]] and len(first["imgs"]) == 2
    gallery.page = 1
    assert gallery.grid.tiles[0]["row"] == state.selected[48]
    gallery.show_triplet = True
    assert len(gallery.grid.tiles[0]["imgs"]) == 4
    gallery.sort_by = "SPF (high first)"
    spf = state.catalog["spf"].to_numpy()[[t["row"] for t in gallery.grid.tiles]]
    assert (np.diff(spf) <= 0).all()
    # keyboard: '3' labels the tile the browser reports Core (the browser moves its focus on)
    state.inspector = "ann"
    row = gallery.grid.tiles[2]["row"]
    sent = []  # a vote sends only the captions, never the tiles (their images) again
    gallery.grid.param.watch(lambda e: sent.append(e.name), ["tiles", "captions"])
    tiles_before = gallery.grid.tiles
    gallery.grid._handle_msg({"type": "key", "key": "3", "row": row})
    assert state.store.current_votes().set_index("id").loc[state.ids[row], "label"] == "Core"
    assert sent == ["captions"] and gallery.grid.tiles is tiles_before
    assert [c["row"] for c in gallery.grid.captions] == [t["row"] for t in gallery.grid.tiles]
    cap = next(c for c in gallery.grid.captions if c["row"] == row)
    assert cap["lines"][-1].startswith("consensus: ") and "· 1 vote" in cap["lines"][-1]
    gallery.grid._handle_msg({"type": "key", "key": "x", "row": row})  # not a voting key: nothing
    assert len(state.store.current_votes()) == 1
    # ticked tiles
    rows = [t["row"] for t in gallery.grid.tiles[:3]]
    gallery.grid.ticked = rows
    voting.scope.value = "ticked tiles"
    voting.vote_scope("Skip")
    cur = state.store.current_votes()
    assert set(cur.loc[cur["label"] == "Skip", "id"]) == set(state.ids[rows])
    detail = gallery.detail_view(rows[0])
    assert state.ids[rows[0]] in str(detail[0][0].object)


def test_views_talk_only_through_the_state(state):
    """The voting view reads the gallery's focus and ticks from the state, never from the gallery;
    a key typed in the gallery is a state method whose outcome the voting view shows."""
    from app.views.gallery import GalleryView
    from app.views.voting import VotingView

    gallery = GalleryView(state)
    voting = VotingView(state)
    assert not any(isinstance(v, GalleryView) for v in vars(voting).values())
    state.select_where("catalog_class", ["Clean", "Core"])
    tiles = gallery.grid.tiles
    assert state.page_rows.tolist() == [t["row"] for t in tiles]
    assert state.focused_row == tiles[0]["row"]
    gallery.grid.focus = 4  # the browser moved the focus
    assert state.focused_row == tiles[4]["row"]
    assert voting.rows_for("focused tile").tolist() == [tiles[4]["row"]]
    # without a name the vote is refused and said so, nothing is raised
    assert state.vote_key("2", tiles[4]["row"]) == 0
    assert state.vote_outcome["level"] == "warning" and "inspector name" in state.vote_outcome["error"]
    state.inspector = "bea"
    assert state.vote_key("2", tiles[4]["row"]) == 1
    assert state.vote_outcome["label"] == "General" and state.vote_outcome["scope"] == "key"
    assert "Recorded **General** for 1 galaxy as **bea**" in voting.status.object
    assert state.vote_key("q", tiles[4]["row"]) == 0  # not a voting key
    # a button vote on the focused tile moves the gallery's focus on, through the state
    voting.scope.value = "focused tile"
    voting.vote_scope("Peculiar")
    assert gallery.grid.focus == 5 and state.focused_row == tiles[5]["row"]
    cur = state.store.current_votes().set_index("id")
    assert cur.loc[state.ids[tiles[4]["row"]], "label"] == "Peculiar"
    # ticks made in the browser are the state's; a new selection clears them
    gallery.grid.ticked = [tiles[1]["row"], tiles[2]["row"]]
    assert state.ticked == [tiles[1]["row"], tiles[2]["row"]]
    state.select_where("catalog_class", ["Core"])
    assert state.ticked == [] and gallery.grid.ticked == []
    # stamps come through the state, in the order asked for
    rows = np.array([7, 3, 5])
    st = state.stamps(rows, ["residual"])["residual"]
    assert st.shape[0] == 3
    np.testing.assert_array_equal(st[1], state.stamps(np.array([3]), ["residual"])["residual"][0])


def test_run_panel_reads_and_activates_runs_through_the_state(state):
    from core.workspace.workspace import Workspace

    ev = state.run_evaluation("cnn-a")
    assert "accuracy" in ev and "confusion_matrix" in ev
    assert state.run_evaluation("no-such-run") == {} and state.run_evaluation(None) == {}
    assert state.run_figures("cnn-a") == []
    (state.ws.runs_dir / "cnn-a" / "confusion.png").write_bytes(b"")
    assert [p.name for p in state.run_figures("cnn-a")] == ["confusion.png"]
    assert state.run_row("cnn-a").model == "cnn" and state.run_row("nope") is None
    state.activate_run("cvae", "cvae-a")
    assert state.run_cvae == "cvae-a" and Workspace.open(state.ws.root).active_runs()["cvae"] == "cvae-a"
    from core.learn.runs import RunError, read_run, write_run_json

    record = read_run(state.ws, "cvae-a").to_dict()
    record.pop("path"), record.pop("active")
    write_run_json(state.ws.runs_dir / "cvae-a", {**record, "status": "failed"})
    state.ws.set_active_run("cvae", None)
    with pytest.raises(RunError, match="only a finished"):
        state.activate_run("cvae", "cvae-a")  # only a finished run can become active
    with pytest.raises(RunError, match="not a cnn run"):
        state.activate_run("cnn", "cvae-a")
    assert Workspace.open(state.ws.root).active_runs()["cvae"] is None
    assert not state.cancel_retrain()  # nothing running


def test_serve_command(tmp_path):
    from core.cli.serve import serve_command

    cmd = serve_command(tmp_path, 5123)
    assert cmd[1:4] == ["-m", "panel", "serve"] and cmd[4].endswith("app")
    assert cmd[cmd.index("--port") + 1] == "5123"
    assert cmd[-5:] == ["--args", "--address", "127.0.0.1", "--workspace", str(tmp_path.resolve())]
    assert cmd[cmd.index("--address") + 1] == "127.0.0.1"  # the loopback only, unless asked


def test_resx_serve_options_pass_through_and_warn_beyond_the_loopback(tmp_path, capsys, monkeypatch):
    import core.cli.serve as S
    from core.cli.main import main

    seen = []
    monkeypatch.setattr(S.subprocess, "call", lambda cmd: seen.append(cmd) or 0)
    users = tmp_path / "users.json"
    users.write_text('{"ann": "pw"}')
    assert main(["serve", str(tmp_path), "--port", "5999"]) == 0
    assert "without authentication" not in capsys.readouterr().err  # loopback: no warning
    assert main(["serve", str(tmp_path), "--address", "0.0.0.0", "--allow-websocket-origin", "resx.example.org",
                 "--allow-websocket-origin", "lab:5006", "--use-xheaders", "--prefix", "/resx", "--num-procs", "2"]) == 0
    err = capsys.readouterr().err
    assert "listening on 0.0.0.0 without authentication" in err and "--basic-auth" in err
    cmd = seen[-1]
    before = cmd[:cmd.index("--args")]
    assert before[before.index("--address") + 1] == "0.0.0.0" and "--use-xheaders" in before
    assert [before[i + 1] for i, a in enumerate(before) if a == "--allow-websocket-origin"] == [
        "resx.example.org", "lab:5006"]
    assert before[before.index("--prefix") + 1] == "/resx" and before[before.index("--num-procs") + 1] == "2"
    assert cmd[-4:-2] == ["--address", "proxy"]  # behind a proxy: reachable from anywhere, whatever it listens on
    assert main(["serve", str(tmp_path), "--address", "0.0.0.0"]) == 0
    assert seen[-1][-4:-2] == ["--address", "0.0.0.0"]  # the dashboard knows it listens beyond the loopback
    assert "without authentication" in capsys.readouterr().err
    assert main(["serve", str(tmp_path), "--address", "0.0.0.0", "--basic-auth", str(users),
                 "--cookie-secret", "s3cret", "--oauth-extra-params", "{}"]) == 0
    assert "without authentication" not in capsys.readouterr().err
    cmd = seen[-1]
    assert cmd[cmd.index("--basic-auth") + 1] == str(users) and cmd[cmd.index("--cookie-secret") + 1] == "s3cret"
    assert main(["serve", str(tmp_path), "--basic-auth", str(tmp_path / "nope.json")]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main(["serve", str(tmp_path), "--basic-auth", str(users)]) == 2
    assert "--cookie-secret" in capsys.readouterr().err
    assert main(["serve", str(tmp_path), "--oauth-provider", "github", "--cookie-secret", "x"]) == 2
    assert "--oauth-key" in capsys.readouterr().err
    assert not S.is_loopback("0.0.0.0") and S.is_loopback("::1") and S.is_loopback("localhost")
    assert not S.is_loopback(None) and not S.is_loopback("resx.example.org")


def test_cancel_writes_stop_and_keeps_the_active_run(state):
    """Cancel = a STOP file in the run folder; a cancelled run is not made active (trainer faked)."""
    from app.retrain import RetrainJob

    job = RetrainJob(state.ws, "cnn", 5, "cnn-a", run_id="cnn-cancel")
    run_dir = job.run_dir
    fake = (f"import json, pathlib, time\nd = pathlib.Path({str(run_dir)!r}); d.mkdir(parents=True, exist_ok=True)\n"
            "while not (d / 'STOP').exists(): time.sleep(0.05)\n"
            "(d / 'run.json').write_text(json.dumps({'id': 'cnn-cancel', 'model': 'cnn', 'status': 'cancelled'}))\n")
    job.cmd = [sys.executable, "-c", fake]
    job.start()
    state.job = job
    assert job.running
    job.cancel()
    assert (run_dir / "STOP").exists()
    job.proc.wait(timeout=60)
    assert state.finish_retrain()[0] == "cancelled"
    assert state.run_cnn == "cnn-a"


@pytest.mark.parametrize("color_by, glyph", [("catalog class", "ImageRGBA"), ("log SPF", "Image")])
def test_large_maps_are_rasterized_and_keep_the_lasso(state, monkeypatch, color_by, glyph):
    """Above RASTER_N points the map is a datashader image (categorical: RGBA with a key beside
    it; continuous: a colour-mapped mean), and the lasso still selects on the data."""
    import holoviews as hv
    from bokeh.models import GlyphRenderer

    from app.views import map as map_view

    monkeypatch.setattr(map_view, "RASTER_N", 50)  # the 200-galaxy workspace counts as large
    state.color_by = color_by
    view = map_view.MapView(state)
    fig = hv.render(view.plot(), backend="bokeh")
    glyphs = {type(r.glyph).__name__ for r in fig.select(GlyphRenderer)}
    assert glyph in glyphs  # an image of the points ...
    scatter = [r for r in fig.select(GlyphRenderer) if type(r.glyph).__name__ == "Scatter"]
    assert all(len(r.data_source.data.get("x", [])) < 50 for r in scatter)  # ... not 200 markers (only the highlight)
    legend = view.legend_html()
    assert (color_by == "catalog class") == ("resx-legend" in legend)
    if color_by == "catalog class":
        assert all(c in legend for c in set(state.catalog["catalog_class"]))
    frame = state.map_frame()
    lasso = view.streams[0]
    x0, x1 = np.percentile(frame["x"], [20, 80])
    y0, y1 = np.percentile(frame["y"], [20, 80])
    lasso.event(geometry=np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]]))
    inside = frame.index[(frame["x"] > x0) & (frame["x"] < x1) & (frame["y"] > y0) & (frame["y"] < y1)]
    assert sorted(state.selected.tolist()) == sorted(inside.tolist()) and len(inside) > 10


def test_a_change_of_the_active_run_elsewhere_is_told_to_every_session(state):
    """Another session (or `resx train`) rewrites active.json: this session is told on its next poll,
    keeps showing its run until it switches; its own change tells it nothing."""
    import shutil

    from core.learn.runs import activate, read_run, write_run_json

    src = state.ws.runs_dir / "cnn-a"
    shutil.copytree(src, state.ws.runs_dir / "cnn-<b>")
    record = read_run(state.ws, "cnn-a").to_dict()
    record.pop("path"), record.pop("active")
    write_run_json(state.ws.runs_dir / "cnn-<b>", {**record, "id": "cnn-<b>"})
    other = AppState(state.ws.root)
    state.poll()
    assert state.active_notice == ""  # nothing changed yet
    activate(state.ws, "cnn-<b>")  # as a CLI train ending, or a lead in another session
    state.poll()
    assert state.active_notice == "The workspace's active run changed: CNN: cnn-<b> (was cnn-a)."
    assert state.run_cnn == "cnn-a"  # still the run it showed
    assert state.run_row("cnn-<b>") is not None  # the runs list was re-read
    state.poll()
    assert state.active_notice.startswith("The workspace's active run changed")  # told once, kept until acted on
    state.switch_to_active_runs()
    assert state.run_cnn == "cnn-<b>" and state.active_notice == ""
    # the session that makes a run active is not told about its own change
    other.activate_run("cnn", "cnn-a")
    other.poll()
    assert other.active_notice == ""
    state.poll()
    assert state.active_notice == "The workspace's active run changed: CNN: cnn-a (was cnn-<b>)."


def test_the_runs_view_shows_the_active_run_notice_escaped(state):
    from app.views.runs import RunsView

    view = RunsView(state)
    assert not view.active_alert.visible and not view.switch_active.visible
    state.active_notice = "The workspace's active run changed: CNN: <img src=x onerror=alert(1)> (was cnn-a)."
    assert view.active_alert.visible and view.switch_active.visible
    assert "<img" not in view.active_alert.object and "&lt;img" in view.active_alert.object
    view.switch_active.clicks += 1
    assert state.active_notice == "" and not view.active_alert.visible


def test_the_runs_view_flags_a_cvae_run_no_better_than_zeros(state):
    import json

    from app.views.runs import RunsView

    run = state.run_of("cvae")
    path = state.ws.runs_dir / run / "run.json"
    rec = json.loads(path.read_text())
    rec.update(recon_mse_ratio=0.999, warning="reconstruction MSE is 0.999 of the all-zero <b>reconstruction</b>'s")
    path.write_text(json.dumps(rec))
    state.refresh_runs()
    state.model = "cvae"
    text = RunsView(state).run_summary()[0].object
    assert "⚠ reconstruction MSE is 0\\.999" in text  # Markdown-escaped engine text
    assert "<b>" not in text and "&lt;b&gt;reconstruction&lt;/b&gt;" in text


def test_with_auth_and_no_lead_configured_nobody_is_lead_and_the_message_names_app_leads(state):
    from core.workspace.config import write_config
    from core.workspace.workspace import Workspace

    state.ws.config["app"]["leads"] = []
    state.ws.config["votes"]["experts"] = ["ann"]
    write_config(state.ws.config, state.ws.root / Workspace.CONFIG)
    for login, loopback in (("ann", True), ("bob", False)):  # an expert on the loopback is no lead either
        st = AppState(state.ws.root, login=login, loopback=loopback)
        assert not st.is_lead
        with pytest.raises(PermissionError, match=r"nobody has it on this server: app\.leads in .*config\.toml "
                                                  r"is empty"):
            st.lead_only("starting a retrain")
    with pytest.raises(PermissionError, match="app.leads"):
        AppState(state.ws.root, login="bob", loopback=True).start_retrain("cnn", 1, False)
