"""The gallery's stamps in sky sigma (app/views/gallery.py), without a server."""

from __future__ import annotations

import base64
import io
import re

import matplotlib
import numpy as np
import pytest
from PIL import Image

from app.views.gallery import KEY_HELP, SigmaStretch, in_sigma, render_stamps, robust_sigma


def pixels(uri: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))).convert("RGB"), dtype=int)


def expected(values, cmap="RdBu_r") -> np.ndarray:
    return np.asarray(matplotlib.colormaps[cmap](np.asarray(values, dtype=float), bytes=True))[..., :3].astype(int)


@pytest.mark.parametrize("sigma", [0.003, 1.0, 250.0])
def test_linear_sigma_stretch_maps_known_sigmas_to_the_colour_map(sigma):
    """A stamp of -10, -5, -2.5, 0, 2.5, 5, 10 sigma, shown linear on +-5 sigma: the colours are those of
    the diverging map at 0, 0, 0.25, 0.5, 0.75, 1, 1, whatever the stamp's units (its sigma)."""
    row = np.array([-10.0, -5.0, -2.5, 0.0, 2.5, 5.0, 10.0])
    stamp = np.tile(row * sigma, (3, 1))[None]
    uris, stretch = render_stamps({"residual": stamp}, "linear", sigmas=np.array([sigma]), limit=5.0)
    got = pixels(uris["residual"][0])
    assert got.shape == (3, 7, 3)
    want = expected([0, 0, 0.25, 0.5, 0.75, 1, 1])
    assert np.abs(got[0] - want).max() <= 1
    assert (stretch.method, stretch.limit) == ("linear", 5.0)
    # invert swaps the ends: +5 sigma gets the colour -5 sigma had
    inv = pixels(render_stamps({"residual": stamp}, "linear", invert=True, sigmas=np.array([sigma]))[0]["residual"][0])
    assert np.abs(inv[0] - expected([0, 0, 0.25, 0.5, 0.75, 1, 1], "RdBu")).max() <= 1


def test_pure_noise_looks_like_noise_and_a_strong_residual_stands_out():
    """One shared range in sigma: a noise stamp stays near the middle of the colour map (the old per-stamp
    stretch spread it over the whole range); a 20-sigma feature saturates."""
    rng = np.random.default_rng(0)
    sigma = 0.02
    noise = rng.normal(0, sigma, (50, 50))
    strong = noise.copy()
    strong[20:30, 20:30] += 20 * sigma
    uris, _ = render_stamps({"residual": np.stack([noise, strong])}, "linear", sigmas=np.array([sigma, sigma]))
    red_end, blue_end = expected([1.0])[0], expected([0.0])[0]
    noise_px = pixels(uris["residual"][0]).reshape(-1, 3)
    strong_px = pixels(uris["residual"][1]).reshape(-1, 3)
    saturated = lambda px: (np.abs(px - red_end).sum(axis=1) <= 3) | (np.abs(px - blue_end).sum(axis=1) <= 3)
    assert saturated(noise_px).mean() < 0.001  # |noise| > 5 sigma: essentially never
    assert saturated(strong_px).sum() >= 100  # the 10 x 10 px feature


def test_asinh_and_zscale_stay_symmetric_and_share_one_range():
    stretch = SigmaStretch("asinh", 5.0)
    u = stretch.unit(np.array([-5.0, -1.0, 0.0, 1.0, 5.0]))
    assert u[2] == pytest.approx(0.5) and u[0] == pytest.approx(0.0) and u[4] == pytest.approx(1.0)
    assert u[1] + u[3] == pytest.approx(1.0) and u[3] > 0.6  # faint structure lifted
    rng = np.random.default_rng(1)
    stamps = rng.normal(0, 1, (4, 30, 30)) * np.array([1, 1, 1, 1])[:, None, None]
    _, z = render_stamps({"residual": stamps}, "zscale", sigmas=np.ones(4))
    assert 0.5 < z.limit < 10  # from the zscale of the stamps in sigma: one limit for the page


def test_missing_sigma_is_measured_on_the_stamp():
    rng = np.random.default_rng(2)
    img = rng.normal(0, 3.0, (60, 60))
    assert robust_sigma(img) == pytest.approx(3.0, rel=0.1)
    scaled = in_sigma(img[None], np.array([np.nan]))
    assert np.std(scaled) == pytest.approx(1.0, rel=0.1)


def test_colour_bar_has_ticks_in_sigma():
    bar = SigmaStretch("asinh", 5.0).colorbar()
    labels = [t[1] for t in bar["ticks"]]
    assert labels == ["-5σ", "-3σ", "-1σ", "0", "+1σ", "+3σ", "+5σ"]
    positions = dict((t[1], t[0]) for t in bar["ticks"])
    assert positions["0"] == pytest.approx(0.5, abs=0.01) and positions["-5σ"] == pytest.approx(0.0)
    assert "σ" in bar["title"] and bar["uri"].startswith("data:image/png;base64,")


def test_every_key_of_the_flow_is_listed():
    listed = " ".join(k for k, _ in KEY_HELP)
    for key in ("1–5", "f", "s", "n / p", "Enter", "Esc", "u", "c", "?", "g"):
        assert key in listed


# -- ids as they are, the gallery's filters and keys (an AppState on a small fabricated workspace) ----------------
ODD_IDS = ["SIM 00024", "a,b", "x;y z", "<b>bold</b>", "G0000004"]


@pytest.fixture
def odd_state(tmp_path):
    """A workspace whose first ids hold spaces, commas, semicolons and markup (ingest accepts them)."""
    from app.state import AppState
    from tests.app_workspace import make_workspace

    ws = make_workspace(tmp_path / "ws", n=120, seed=2, size=16)
    cat = ws.read_catalog()
    ids = [str(i) for i in cat["id"]]
    ids[: len(ODD_IDS)] = ODD_IDS
    ids[4] = "G9999999"
    cat.replace_column("id", np.array(ids))
    ws.write_catalog(cat)
    # the made-up runs were written with the old ids: write them again with these
    from core.labels import CLASSES
    from tests.app_workspace import write_run

    classes = np.array([CLASSES.index(c) for c in cat["catalog_class"]])
    write_run(ws, "cnn-a", "cnn", classes, cat["id"], seed=2)
    write_run(ws, "cvae-a", "cvae", classes, cat["id"], seed=3)
    return AppState(ws.root)


def test_pasted_ids_are_one_per_line_with_any_characters(odd_state):
    from app.selection import parse_id_list

    st = odd_state
    rows, unknown = st.select_ids(parse_id_list("SIM 00024\n  a,b  \nx;y z\n<b>bold</b>\nnope here\n"))
    assert list(st.ids[rows]) == ["SIM 00024", "a,b", "x;y z", "<b>bold</b>"] and unknown == ["nope here"]
    # a line of several known ids separated by commas still reads as those ids
    rows, unknown = st.select_ids(parse_id_list("G0000005, G0000006;G0000007\n"))
    assert list(st.ids[rows]) == ["G0000005", "G0000006", "G0000007"] and unknown == []
    # a saved selection keeps the ids as they are
    st.select_ids(["SIM 00024", "a,b", "x;y z"])
    st.save_selection("odd")
    rows, unknown = st.load_selection("odd")
    assert list(st.ids[rows]) == ["SIM 00024", "a,b", "x;y z"] and unknown == []


def test_filters_progress_next_unvoted_and_search(odd_state):
    from app.views.gallery import GalleryView

    st = odd_state
    gallery = GalleryView(st)
    st.select_ids([str(i) for i in st.ids[:100]])
    st.inspector = "ann"
    assert gallery.progress() == "0 of 100 voted by you in this selection · 0 of 120 in the campaign"
    first = [t["row"] for t in gallery.grid.tiles[:3]]
    for row in first:
        gallery.grid._handle_msg({"type": "key", "key": "2", "row": row})
    assert gallery.progress() == "3 of 100 voted by you in this selection · 3 of 120 in the campaign"
    caps = {c["row"]: c for c in gallery.grid.captions}
    assert caps[first[0]]["mine"] == "General" and caps[gallery.grid.tiles[5]["row"]]["mine"] == ""
    # next unvoted: the fourth tile of page 1
    assert gallery.next_unvoted() and gallery.page == 0 and gallery.grid.focus == 3
    # "not yet voted by me" leaves out the three
    gallery.show = "not yet voted by me"
    assert len(gallery._order) == 97 and not set(first) & set(gallery._order.tolist())
    # disputed: a second inspector disagrees on one of them
    st.inspector = "bob"
    st.vote([first[0]], "Core")
    st.inspector = "ann"
    gallery.show = "disputed"
    assert gallery._order.tolist() == [first[0]]
    gallery.show = "all"
    # one id, as it is: on page 3 of the gallery -> that page, focused, detail open
    target = int(st.row_of.get_indexer(["G0000099"])[0])
    assert gallery.find_id(" G0000099 ") and gallery.page == 2 and gallery.grid.tiles[gallery.grid.focus]["row"] == target
    assert gallery.detail_row == target
    # an id outside the selection selects it alone
    assert gallery.find_id("G0000110") and list(st.ids[st.selected]) == ["G0000110"]
    assert not gallery.find_id("no such id")


def test_undo_names_what_it_undid_and_comments_attach_to_the_vote(odd_state):
    st = odd_state
    st.inspector = "ann"
    st.select_ids([str(i) for i in st.ids[:60]])
    st.record_vote(st.selected, "Core", scope="whole selection")
    row = int(st.selected[0])
    st.record_vote([row], "Peculiar", scope="key")
    assert st.comment(int(st.selected[1]), "") == "An empty comment is not saved."
    assert "first" in st.comment(int(st.row_of.get_indexer(["G0000070"])[0]), "hm")  # no vote there yet
    assert st.comment(row, "tidal <tail>? | see ds9") == ""
    votes = st.store.votes_for(str(st.ids[row]))
    mine = votes[votes["inspector"] == "ann"]
    assert mine["label"].tolist() == ["Peculiar"] and mine["comment"].tolist() == ["tidal <tail>? | see ds9"]
    assert st.undo_described() == "Undone: 1 vote Peculiar with a comment on SIM 00024."
    assert st.undo_described() == "Undone: 1 vote Peculiar on SIM 00024."
    assert st.undo_described() == "Undone: 60 votes Core on the whole selection (id list)."
    assert st.undo_described() == "Nothing to undo."


def test_bulk_votes_above_the_threshold_ask_first(odd_state):
    from app.views.voting import VotingView

    st = odd_state
    st.inspector = "ann"
    voting = VotingView(st)
    assert voting.bulk_confirm == 50  # app.bulk_confirm's default
    st.select_ids([str(i) for i in st.ids[:80]])
    voting.scope.value = "whole selection"
    voting.vote_scope("Core")
    assert len(st.store.current_votes()) == 0 and voting.confirm_row.visible
    assert "**80**" in voting.confirm_text.object and "Core" in voting.confirm_text.object
    voting._confirm(False)
    assert len(st.store.current_votes()) == 0 and not voting.confirm_row.visible
    voting.vote_scope("Core")
    voting._confirm(True)
    assert len(st.store.current_votes()) == 80
    voting._undo()
    shown = re.sub(r"\\(.)", r"\1", voting.status.object)  # the Markdown's escapes removed: what is read
    assert shown.startswith("Undone: 80 votes Core on the whole selection")
    # at or under the threshold: no question
    st.select_ids([str(i) for i in st.ids[:50]])
    voting.vote_scope("Clean")
    assert len(st.store.current_votes()) == 50 and not voting.confirm_row.visible


def test_detail_coordinates_cutout_link_and_escaped_votes(odd_state):
    from app.views.gallery import GalleryView, cutout_url

    st = odd_state
    gallery = GalleryView(st)
    st.inspector = "<img src=x onerror=alert(1)>"
    row = int(st.row_of.get_indexer(["<b>bold</b>"])[0])
    st.vote([row], "Core")
    assert st.comment(row, "**not bold** <script>x</script> | pipe") == ""
    detail = gallery.detail_view(row)
    ra, dec = float(st.catalog["ra"].iloc[row]), float(st.catalog["dec"].iloc[row])
    coords = gallery._coordinates_html(row)
    assert f"{ra:.8f}°" in coords and f"{dec:+.8f}°" in coords
    votes = gallery._votes_md(row)
    assert "<script>" not in votes and "<img" not in votes and "&lt;script&gt;" in votes
    assert r"\*\*not bold\*\*" in votes and "UTC" in votes
    head = str(detail[0][0].object)
    assert "<b>" not in head and "&lt;b&gt;bold&lt;/b&gt;" in head
    # every stamp kind in the zoom component, one stretch
    zoom = next(o for o in detail.select() if type(o).__name__ == "StampZoom")
    assert [p["label"] for p in zoom.panels] == ["original", "model", "residual", "object-only", "mask"]
    assert "σ" in zoom.colorbar["title"]
    # the cutout link: a template from the config, only http(s)
    cat = st.catalog.iloc[row]
    assert cutout_url(cat, "") == ""
    url = cutout_url(cat, "https://example.org/cutout?ra={ra:.6f}&dec={dec:.6f}&name={id}")
    assert url.startswith("https://example.org/cutout?ra=") and "name=%3Cb%3Ebold%3C%2Fb%3E" in url
    assert cutout_url(cat, "javascript:alert({ra})") == ""


def test_help_lists_the_papers_definitions():
    from app.views.help import class_table
    from core.labels import DEFINITIONS

    table = class_table()
    for label in ("Clean", "General", "Core", "Asymmetric", "Peculiar"):
        assert DEFINITIONS[label] in table
    assert "38.0 %" in table and "5.1 %" in table  # Table 1's shares
