"""The inspection session in a real browser (issue 12): what a person sees at 1366 x 768 and 1920 x 1080.

Reuses the server, browser and helpers of ``test_browser_app`` on a fabricated workspace of 130
galaxies (three gallery pages, no training): tiles that never overlap, plain and triplet; the
colour bar in sigma; the gallery in view after a lasso; the map's wheel and lasso defaults; the
name kept across a reload; check-box labels that toggle their box. Screenshots go to
tests/artifacts/ (``inspect_*.png``).
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from tests.app.test_browser_app import (  # noqa: F401 - fixtures: browser, server
    ARTIFACTS,
    LOAD_TIMEOUT_MS,
    browser,
    draw_lasso,
    server,
    wait_for,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SIZES = [(1366, 768), (1920, 1080)]
#: The (start, end) of every Range1d of the page's Bokeh documents (the map's axes among them).
RANGES_JS = """() => { const out = []; for (const d of Bokeh.documents) { const ms = d._all_models || d.all_models;
  for (const m of (ms.values ? ms.values() : ms)) { if ((m.type || m.constructor.__name__) === 'Range1d')
    out.push([m.id, m.start, m.end]); } } return out.sort(); }"""
N_GALAXIES = 130


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    """130 fabricated galaxies (tests/app_workspace.py) with made-up runs; min_votes 1, not blind."""
    from core.workspace.config import write_config
    from core.workspace.workspace import Workspace
    from tests.app_workspace import make_workspace

    root = tmp_path_factory.mktemp("inspect") / "ws"
    make_workspace(root, n=N_GALAXIES, size=24)
    ws = Workspace.open(root)
    ws.config["votes"]["min_votes"] = 1
    ws.config["app"]["blind"] = False
    write_config(ws.config, ws.root / Workspace.CONFIG)
    return root


def ids_of(workspace) -> list[str]:
    from core.workspace.workspace import Workspace

    return [str(i) for i in Workspace.open(workspace).read_catalog()["id"]]


def open_at(browser, url, width, height):
    page = browser.new_context(viewport={"width": width, "height": height}).new_page()
    page.set_default_timeout(60_000)
    page.goto(url, timeout=LOAD_TIMEOUT_MS, wait_until="commit")
    page.wait_for_selector("canvas", timeout=LOAD_TIMEOUT_MS)
    page.wait_for_selector(".resx-grid", timeout=LOAD_TIMEOUT_MS)
    return page


def paste_ids(page, ids) -> None:
    page.get_by_placeholder("one id per line, or comma-separated").fill("\n".join(ids))
    page.get_by_role("button", name="Select ids").click()
    page.locator(".resx-tile").first.wait_for(timeout=30_000)


def save(page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path


def boxes(page, selector: str) -> list[dict]:
    return page.locator(selector).evaluate_all(
        "els => els.map(e => { const r = e.getBoundingClientRect();"
        " return {x: r.left, y: r.top, w: r.width, h: r.height, tile: e.closest('.resx-tile')?.dataset.row}; })")


def overlap(a: dict, b: dict, tol: float = 0.5) -> bool:
    return (a["x"] + a["w"] - tol > b["x"] and b["x"] + b["w"] - tol > a["x"]
            and a["y"] + a["h"] - tol > b["y"] and b["y"] + b["h"] - tol > a["y"])


def check_colorbar(page, scope: str) -> None:
    """Every tick label of the colour bar under ``scope`` inside the bar's own box (not cut off at an edge)."""
    bar = page.locator(f"{scope} .resx-colorbar").first
    b = bar.bounding_box()
    spans = bar.locator(".resx-cb-ticks span")
    assert spans.count() >= 3
    for sp in spans.all():
        t = sp.bounding_box()
        assert b["x"] - 0.5 <= t["x"] and t["x"] + t["width"] <= b["x"] + b["width"] + 0.5, \
            f"tick {sp.inner_text()!r} runs past the colour bar: {t} {b}"


def check_tiles(page, n_panels: int) -> None:
    """Tiles pairwise disjoint; every panel of a tile inside it and inside the gallery (nothing cut off)."""
    tiles = boxes(page, ".resx-tile")
    assert len(tiles) == 48
    for a, b in itertools.combinations(tiles, 2):
        assert not overlap(a, b), f"tiles overlap: {a} {b}"
    grid = boxes(page, ".resx-grid")[0]
    by_row = {t["tile"]: t for t in tiles}
    imgs = boxes(page, ".resx-panel img")
    assert len(imgs) == 48 * n_panels
    for im in imgs:
        t = by_row[im["tile"]]
        assert im["w"] >= 32 and im["h"] >= 32
        assert t["x"] - 0.5 <= im["x"] and im["x"] + im["w"] <= t["x"] + t["w"] + 0.5, (im, t)
        assert t["y"] - 0.5 <= im["y"] and im["y"] + im["h"] <= t["y"] + t["h"] + 0.5, (im, t)
        assert im["x"] + im["w"] <= grid["x"] + grid["w"] + 0.5, "a panel runs past the gallery's right edge"
    labels = page.locator(".resx-tile").first.locator(".resx-plabel").all_inner_texts()
    assert len(labels) == n_panels and "residual" in labels


@pytest.mark.parametrize("width,height", SIZES)
def test_tiles_fit_plain_and_triplet_with_a_colour_bar(browser, server, workspace, width, height):
    page = open_at(browser, server, width, height)
    paste_ids(page, ids_of(workspace))
    check_tiles(page, 2)
    # the colour bar of the sigma stretch, with its range
    bar = page.locator(".resx-colorbar")
    assert bar.is_visible()
    assert page.locator(".resx-cb-img").evaluate("e => e.naturalWidth") > 0
    ticks = page.locator(".resx-cb-ticks span").all_inner_texts()
    assert "+5σ" in ticks and "-5σ" in ticks and "0" in ticks
    assert "sky σ" in page.locator(".resx-cb-title").inner_text()
    check_colorbar(page, ".resx-gallery-panel")
    page.locator(".resx-nav").first.evaluate("e => e.scrollIntoView({block: 'start'})")  # the colour bar in view
    save(page, f"inspect_gallery_{width}x{height}")
    # "show triplet" by a click on its label text (not the 13-px box)
    page.locator(".bk-label", has_text="show triplet").first.click()
    wait_for(lambda: page.locator(".resx-tile").first.locator(".resx-panel img").count() == 4, 30)
    check_tiles(page, 4)
    labels = page.locator(".resx-tile").first.locator(".resx-plabel").all_inner_texts()
    assert labels == ["original", "model", "residual", "object-only"]
    page.locator(".resx-nav").first.evaluate("e => e.scrollIntoView({block: 'start'})")  # the colour bar in view
    save(page, f"inspect_triplet_{width}x{height}")
    page.context.close()


@pytest.mark.parametrize("width,height", SIZES)
def test_gallery_comes_into_view_after_a_lasso(browser, server, width, height):
    page = open_at(browser, server, width, height)
    draw_lasso(page, [(0.15, 0.12), (0.7, 0.12), (0.7, 0.85), (0.15, 0.85)])  # inside the frame
    page.locator(".resx-tile").first.wait_for(timeout=60_000)

    def tile_in_view():
        b = page.locator(".resx-tile").first.bounding_box()
        return b is not None and b["y"] < height and b["y"] + b["height"] > 0

    assert wait_for(tile_in_view, 20), "after the lasso the gallery's first tile is not in the viewport"
    save(page, f"inspect_after_lasso_{width}x{height}")
    page.context.close()


#: How far the page is scrolled: the window's and every scrolled element's offsets (the template
#: scrolls its main area, not the window).
SCROLLED_JS = """() => { let s = window.scrollY; for (const e of document.querySelectorAll('*')) s += e.scrollTop;
  return s; }"""


def map_centre(page) -> tuple[float, float]:
    from tests.app.test_browser_app import map_box

    box = map_box(page)
    return box["x"] + box["width"] * 0.4, box["y"] + box["height"] * 0.4


def test_map_keeps_the_lasso_and_takes_the_wheel_only_with_focus_or_ctrl(browser, server):
    page = open_at(browser, server, 1366, 768)
    lasso = page.locator(".bk-OnOffButton[title='Lasso Select']").first
    assert "bk-active" in lasso.get_attribute("class")
    lasso.click()  # what a new user does first: it must stay on
    assert wait_for(lambda: "bk-active" in lasso.get_attribute("class"), 5)
    page.wait_for_timeout(300)  # give a wrong toggle the chance to show: the check below must still hold
    assert "bk-active" in lasso.get_attribute("class"), "a click on the active lasso turned it off"
    assert "click the map, then the wheel zooms" in page.locator(".resx-map-title").inner_text()
    # unfocused: the plain wheel over the map scrolls the page and leaves the map's ranges alone
    before = page.evaluate(RANGES_JS)
    assert len(before) >= 2
    page.mouse.move(*map_centre(page))
    page.mouse.wheel(0, 200)
    assert wait_for(lambda: page.evaluate(SCROLLED_JS) > 0, 10), "the wheel over an unfocused map did not scroll the page"
    page.wait_for_timeout(500)  # a zoom would have happened by now; the check is the equality below
    assert page.evaluate(RANGES_JS) == before, "the wheel zoomed an unfocused map"
    # Ctrl + wheel zooms it
    page.mouse.move(*map_centre(page))
    page.keyboard.down("Control")
    page.mouse.wheel(0, -200)
    page.keyboard.up("Control")
    assert wait_for(lambda: page.evaluate(RANGES_JS) != before, 20), "Ctrl + wheel did not zoom the map"
    # a click on the map gives it the wheel: the plain wheel zooms, the page stays where it is
    page.mouse.click(*map_centre(page))
    page.wait_for_timeout(300)
    zoomed, scrolled = page.evaluate(RANGES_JS), page.evaluate(SCROLLED_JS)
    page.mouse.wheel(0, -200)
    assert wait_for(lambda: page.evaluate(RANGES_JS) != zoomed, 20), "the wheel did not zoom the focused map"
    assert page.evaluate(SCROLLED_JS) == scrolled, "the page scrolled under a focused map's zoom"
    # Esc takes the focus away again; so does a click elsewhere (after a second click on the map)
    for leave in (lambda: page.keyboard.press("Escape"), lambda: page.locator(".resx-keyline").click()):
        leave()
        page.wait_for_timeout(300)
        now = page.evaluate(RANGES_JS)
        page.mouse.move(*map_centre(page))
        page.mouse.wheel(0, 150)
        page.wait_for_timeout(800)  # a zoom would have happened by now
        assert page.evaluate(RANGES_JS) == now, "the map kept the wheel after losing focus"
        page.mouse.click(*map_centre(page))
        page.wait_for_timeout(300)
    page.context.close()


#: Widths from the narrow laptop to a large desktop (issue 12: every width from 1280 to 2560 px).
LAYOUT_SIZES = [(1366, 768), (1600, 1000), (1920, 1080), (2560, 1440)]


@pytest.mark.parametrize("width,height", LAYOUT_SIZES)
def test_stretch_buttons_and_map_title_are_not_cut_off(browser, server, width, height):
    """Every stretch button inside the gallery's controls and the viewport; the map's title wraps
    inside its column instead of running past it."""
    page = open_at(browser, server, width, height)
    controls = page.locator(".resx-gallery-controls").first.bounding_box()
    buttons = page.locator(".resx-stretch button")
    assert buttons.all_inner_texts() == ["linear", "asinh", "zscale"]
    for b in buttons.all():
        box = b.bounding_box()
        assert box["width"] >= 40, box
        assert controls["x"] - 0.5 <= box["x"] and box["x"] + box["width"] <= controls["x"] + controls["width"] + 0.5, \
            f"a stretch button runs past the gallery controls: {box} {controls}"
        assert box["x"] + box["width"] <= width, f"a stretch button runs past the viewport: {box}"
        # not hidden under an ancestor that clips it: the button itself is what is drawn at its centre
        hit = b.evaluate("e => { const r = e.getBoundingClientRect(); const x = r.left + r.width / 2, y = r.top + r.height / 2;"
                         " let n = document.elementFromPoint(x, y); while (n && n.shadowRoot) {"
                         " const m = n.shadowRoot.elementFromPoint(x, y); if (!m || m === n) break; n = m; }"
                         " return n === e || e.contains(n); }")
        # elementFromPoint is only meaningful inside the viewport
        if 0 <= box["y"] + box["height"] / 2 <= height:
            assert hit, f"a stretch button is covered or clipped: {b.inner_text()}"
    title = page.locator(".resx-map-title").first
    assert "run cnn-a" in title.inner_text() and "130 galaxies" in title.inner_text()
    tb = title.bounding_box()
    column = page.locator(".resx-map").first.bounding_box()  # the map's column: title, legend, plot
    assert tb["x"] >= -0.5 and tb["x"] + tb["width"] <= width + 0.5, f"the map title runs past the viewport: {tb}"
    assert column["x"] - 0.5 <= tb["x"] and tb["x"] + tb["width"] <= column["x"] + column["width"] + 0.5, \
        f"the map title runs past its column: {tb} {column}"
    assert title.evaluate("e => e.scrollWidth <= e.clientWidth + 1"), "the map title's text overflows its box"
    if (width, height) in SIZES:
        save(page, f"inspect_top_{width}x{height}")
    page.context.close()


@pytest.mark.parametrize("width,height", SIZES)
def test_vote_buttons_show_their_class_definition_inside_the_window(browser, server, width, height):
    """Hovering a vote button shows its class's definition (paper Table 1), wrapped, inside the window."""
    from core.labels import DEFINITIONS

    page = open_at(browser, server, width, height)
    for name, label in (("4 · Asymmetric", "Asymmetric"), ("s · Skip", "Skip")):
        button = page.get_by_role("button", name=name)
        button.evaluate("e => e.scrollIntoView({block: 'center'})")
        page.wait_for_timeout(300)
        button.hover()
        tip = page.locator(".bk-Tooltip")
        assert wait_for(lambda: tip.count() >= 1 and tip.first.is_visible(), 10), f"no tooltip on {name}"
        box = tip.first.bounding_box()
        text = deep_text(tip.first)
        assert DEFINITIONS[label][:40] in text, text
        assert box["x"] >= 0 and box["x"] + box["width"] <= width + 0.5, f"the tooltip runs past the window: {box}"
        assert box["y"] >= 0 and box["y"] + box["height"] <= height + 0.5, f"the tooltip runs past the window: {box}"
        assert box["width"] <= 341, "the definition is not wrapped"
        page.mouse.move(5, height - 5)
        assert wait_for(lambda: tip.count() == 0 or not tip.first.is_visible(), 10)
    page.context.close()


def test_name_is_kept_across_a_reload(browser, server):
    context = browser.new_context(viewport={"width": 1366, "height": 768})
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.goto(server, timeout=LOAD_TIMEOUT_MS, wait_until="commit")
    box = page.get_by_placeholder("enter your name once")
    box.wait_for(timeout=LOAD_TIMEOUT_MS)
    box.fill("Zoë <b>O'Neil</b>")
    box.press("Enter")
    assert wait_for(lambda: page.evaluate("() => localStorage.getItem('resx.inspector')") == "Zoë <b>O'Neil</b>", 20)
    page.reload(wait_until="commit")
    box = page.get_by_placeholder("enter your name once")
    box.wait_for(timeout=LOAD_TIMEOUT_MS)
    assert wait_for(lambda: box.input_value() == "Zoë <b>O'Neil</b>", 30)
    # the name is shown as text, never as markup
    assert page.locator("b", has_text="O'Neil").count() == 0
    context.close()


def kims(workspace, who="kim"):
    from tests.app.test_browser_app import current_votes

    v = current_votes(workspace)
    return v[v["inspector"] == who].set_index("id")


def history_of(workspace, who="kim"):
    from core.votes.store import open_store

    store = open_store(workspace)
    try:
        h = store.history()
    finally:
        store.close()
    return h[h["inspector"] == who]


#: The text of an element and of every shadow root below it (Panel renders panes in shadow DOM).
DEEP_TEXT_JS = """e => { const parts = []; const walk = (n) => { if (n.nodeType === 3) parts.push(n.textContent);
  if (n.shadowRoot) walk(n.shadowRoot); for (const c of n.childNodes || []) walk(c); }; walk(e); return parts.join(' '); }"""


def deep_text(locator) -> str:
    return locator.evaluate(DEEP_TEXT_JS)


def focused(page) -> int:
    return page.locator(".resx-tile").evaluate_all("els => els.findIndex(e => e.classList.contains('focus'))")


def test_the_key_flow_across_pages_past_the_last_tile_with_detail_undo_and_comment(browser, server, workspace):
    ids = ids_of(workspace)
    assert len(ids) == N_GALAXIES  # pages of 48, 48, 34
    page = open_at(browser, server, 1366, 768)
    paste_ids(page, ids)
    page.get_by_placeholder("enter your name once").fill("kim")
    page.get_by_placeholder("enter your name once").press("Enter")
    page.locator(".resx-keyline").click()  # focus off the text box, so keys vote
    assert page.locator(".resx-keyline").inner_text().startswith("1–5 vote")
    # page 1: to tile 46, then three votes: tiles 46, 47 (the last), and -- the page turns -- page 2's first
    for _ in range(46):
        page.keyboard.press("ArrowRight")
    assert wait_for(lambda: focused(page) == 46, 10)
    for key in ("1", "2", "3"):
        page.keyboard.press(key)
    page.locator(".resx-tile[data-page='1']").first.wait_for(timeout=30_000)
    assert wait_for(lambda: len(kims(workspace)) >= 3, 30)
    got = kims(workspace)["label"].to_dict()
    assert got == {ids[46]: "Clean", ids[47]: "General", ids[48]: "Core"}
    assert wait_for(lambda: focused(page) == 1, 10)
    # n: page 3 (34 tiles); to its last tile; votes past the end of the selection do nothing
    page.keyboard.press("n")
    page.locator(".resx-tile[data-page='2']").first.wait_for(timeout=30_000)
    assert page.locator(".resx-tile").count() == 34
    for _ in range(32):
        page.keyboard.press("ArrowRight")
    assert wait_for(lambda: focused(page) == 32, 10)
    for key in ("4", "5", "5", "5", "5"):
        page.keyboard.press(key)
    assert wait_for(lambda: len(kims(workspace)) >= 5, 30)
    page.locator(".resx-endnote").wait_for(timeout=10_000)
    save(page, "inspect_keys_end_of_selection")
    got = kims(workspace)["label"].to_dict()
    assert got[ids[128]] == "Asymmetric" and got[ids[129]] == "Peculiar"
    h = history_of(workspace)
    assert (h["id"] == ids[129]).sum() == 1, "keys past the last tile voted it again"
    assert len(h) == 5
    # u: undo the last vote (the last tile's)
    page.keyboard.press("u")
    assert wait_for(lambda: ids[129] not in kims(workspace).index, 20)
    # Enter: the detail of the focused (last) tile; a vote typed while it is open shows in it
    page.keyboard.press("Enter")
    detail = page.locator(".resx-detail").first
    detail.wait_for(timeout=30_000)
    assert wait_for(lambda: ids[129] in deep_text(detail), 20)
    page.keyboard.press("3")
    assert wait_for(lambda: kims(workspace).get("label", {}).get(ids[129]) == "Core", 20)
    assert wait_for(lambda: "kim" in deep_text(page.locator(".resx-detail").first), 20), "the detail missed the vote"
    save(page, "inspect_detail_after_vote")
    # Esc closes the detail
    page.keyboard.press("Escape")
    page.locator(".resx-detail").first.wait_for(state="hidden", timeout=20_000)
    # c: a comment on the focused galaxy's vote (saved as text), Ctrl+Z undoes it
    page.keyboard.press("c")
    box = page.locator(".resx-comment")
    box.wait_for(timeout=10_000)
    box.fill("tidal <tail>?, see ds9")
    box.press("Enter")
    assert wait_for(lambda: kims(workspace).get("comment", {}).get(ids[129]) == "tidal <tail>?, see ds9", 20)
    assert kims(workspace).loc[ids[129], "label"] == "Core"
    page.locator(".resx-keyline").click()
    page.keyboard.press("Control+z")
    assert wait_for(lambda: kims(workspace).get("comment", {}).get(ids[129]) == "", 20)
    # ?: the list of keys
    page.keyboard.press("?")
    page.locator(".resx-keyhelp").wait_for(timeout=10_000)
    assert "next galaxy not voted by you" in page.locator(".resx-keyhelp").inner_text()
    save(page, "inspect_keys_help")
    page.keyboard.press("?")
    page.locator(".resx-keyhelp").wait_for(state="hidden", timeout=10_000)
    # p: back to page 2, where the first vote of the page turn landed
    page.keyboard.press("p")
    page.locator(".resx-tile[data-page='1']").first.wait_for(timeout=30_000)
    mine = page.locator(f".resx-tile[data-id='{ids[48]}'] .resx-mine").inner_text()
    assert mine == "you: Core"
    page.context.close()


def test_detail_zooms_and_pans_every_stamp_and_help_shows_table_1(browser, server, workspace):
    ids = ids_of(workspace)
    page = open_at(browser, server, 1920, 1080)
    paste_ids(page, ids[:10])
    page.locator(".resx-tile").first.locator(".resx-imgs").click()
    page.locator(".resx-zoom-view").first.wait_for(timeout=30_000)
    assert page.locator(".resx-big").count() == 5
    labels = page.locator(".resx-zoom-panel .resx-plabel").all_inner_texts()
    assert labels == ["original", "model", "residual", "object-only", "mask"]
    view = page.locator(".resx-zoom-view").nth(2)
    side = view.bounding_box()["width"]
    img_width = lambda: page.locator(".resx-big").nth(2).evaluate("e => e.getBoundingClientRect().width")
    assert img_width() == pytest.approx(side, abs=3)
    for _ in range(4):  # 1.5^4 = 5x
        page.get_by_role("button", name="+", exact=True).click()
    assert wait_for(lambda: img_width() >= 4 * side - 3, 10), img_width()
    widths = page.locator(".resx-big").evaluate_all("els => els.map(e => e.getBoundingClientRect().width)")
    assert max(widths) - min(widths) < 1, "the panels are not zoomed together"
    left = lambda: page.locator(".resx-big").nth(2).evaluate("e => e.getBoundingClientRect().left")
    before = left()
    box = view.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] / 2 + 40, box["y"] + box["height"] / 2, steps=5)
    page.mouse.up()
    assert wait_for(lambda: abs(left() - before - 40) < 3, 10), "a drag did not pan the stamp"
    assert "σ" in page.locator(".resx-zoom .resx-cb-title").inner_text()
    check_colorbar(page, ".resx-zoom")
    save(page, "inspect_detail_zoom")
    page.keyboard.press("Escape")
    page.locator(".resx-zoom-view").first.wait_for(state="hidden", timeout=20_000)
    # Help: the paper's Table 1 definitions
    page.get_by_text("Help", exact=True).first.click()
    page.get_by_text("consistent with the background noise", exact=False).first.wait_for(timeout=20_000)
    assert page.get_by_text("How to inspect").count() >= 1
    page.context.close()
