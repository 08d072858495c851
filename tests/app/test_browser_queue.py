"""Inspect next in a real browser: the gallery fills in `resx queue`'s order, and the next batch follows.

Reuses the server, browser and page helpers of tests/app/test_browser_app.py on its own small
fabricated workspace (tests/app_workspace.py: made-up CNN and CvAE runs, no votes), so every
galaxy is in the queue. Screenshots go to tests/artifacts/queue_*.png.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.app.test_browser_app import browser, open_page, select_option, server, shot, wait_for  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    from core.workspace.config import write_config
    from core.workspace.workspace import Workspace
    from tests.app_workspace import make_workspace

    root = tmp_path_factory.mktemp("browser_queue") / "ws"
    make_workspace(root, n=300, size=24)
    ws = Workspace.open(root)
    ws.config["app"]["blind"] = False
    write_config(ws.config, ws.root / Workspace.CONFIG)
    return root


def tile_ids(page) -> list[str]:
    return page.locator(".resx-tile").evaluate_all("els => els.map(e => e.getAttribute('data-id'))")


def expected(workspace, strategy: str, offset: int = 0) -> list[str]:
    from core.latent.queue import build_queue
    from core.workspace.workspace import Workspace

    return build_queue(Workspace.open(workspace), strategy, 48, offset=offset).table["id"].tolist()


def test_inspect_next_fills_the_gallery_in_the_queue_order(browser, server, workspace):  # noqa: F811
    page = open_page(browser, server)
    select_option(page, "bald", "margin")  # the strategy chooser (the only select offering bald)
    time.sleep(1)
    page.get_by_role("button", name="Inspect next").click()
    page.locator(".resx-tile").first.wait_for(timeout=60_000)
    want = expected(workspace, "margin")
    got = wait_for(lambda: (ids := tile_ids(page)) == want and ids, timeout=30)
    assert got == want  # the gallery's first page (48 tiles) is the queue's first batch, in order
    assert page.get_by_text("Batch 1: 48 galaxies by margin").count() == 1
    shot(page, "queue_01_map_rings")
    shot(page, "queue_02_gallery", scroll_to=".resx-grid")

    page.get_by_role("button", name="Skip to next batch").click()
    want2 = expected(workspace, "margin", offset=48)
    got2 = wait_for(lambda: (ids := tile_ids(page)) == want2 and ids, timeout=30)
    assert got2 == want2 and not set(got2) & set(want)
    assert page.get_by_text("Batch 2: 48 galaxies by margin").count() == 1

    select_option(page, "bald", "entropy")
    time.sleep(1)
    page.get_by_role("button", name="Inspect next").click()
    want3 = expected(workspace, "entropy")
    assert wait_for(lambda: (ids := tile_ids(page)) == want3 and ids, timeout=30) == want3
    # colour the map by the acquisition score
    select_option(page, "model confidence", "acquisition score")
    time.sleep(3)
    shot(page, "queue_03_colour_by_score", scroll_to="canvas")
    shot(page, "queue_04_sidebar", scroll_to=".resx-queue")
