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
    page.locator(".resx-grid").scroll_into_view_if_needed()
    save(page, f"inspect_gallery_{width}x{height}")
    # "show triplet" by a click on its label text (not the 13-px box)
    page.get_by_text("show triplet", exact=True).click()
    wait_for(lambda: page.locator(".resx-tile").first.locator(".resx-panel img").count() == 4, 30)
    check_tiles(page, 4)
    labels = page.locator(".resx-tile").first.locator(".resx-plabel").all_inner_texts()
    assert labels == ["original", "model", "residual", "object-only"]
    page.locator(".resx-grid").scroll_into_view_if_needed()
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


def test_map_keeps_the_lasso_and_zooms_only_with_ctrl(browser, server):
    page = open_at(browser, server, 1920, 1080)
    lasso = page.locator(".bk-OnOffButton[title='Lasso Select']").first
    assert "bk-active" in lasso.get_attribute("class")
    lasso.click()  # what a new user does first: it must stay on
    assert wait_for(lambda: "bk-active" in lasso.get_attribute("class"), 5)
    page.wait_for_timeout(300)  # give a wrong toggle the chance to show: the check below must still hold
    assert "bk-active" in lasso.get_attribute("class"), "a click on the active lasso turned it off"
    # the wheel over the map without Ctrl does not zoom it (the page scrolls); with Ctrl it does
    box = page.locator("canvas").first.bounding_box()
    before = page.evaluate(RANGES_JS)
    assert len(before) >= 2
    page.mouse.move(box["x"] + box["width"] * 0.4, box["y"] + box["height"] * 0.4)
    page.mouse.wheel(0, -400)
    page.wait_for_timeout(500)  # a zoom would have happened by now; the check is the equality below
    assert page.evaluate(RANGES_JS) == before, "the wheel zoomed the map without Ctrl"
    box = page.locator("canvas").first.bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.4, box["y"] + box["height"] * 0.4)
    page.keyboard.down("Control")
    page.mouse.wheel(0, -400)
    page.keyboard.up("Control")
    assert wait_for(lambda: page.evaluate(RANGES_JS) != before, 20), "Ctrl + wheel did not zoom the map"
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
