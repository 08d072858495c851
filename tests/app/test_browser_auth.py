"""`panel serve app --basic-auth users.json`: votes are cast in the logged-in user's name only."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from tests.app.test_browser_app import CHROME_ARGS, CHROMIUM, PROJECT, current_votes, free_port, shot, wait_for  # noqa: E402

pytestmark = [pytest.mark.browser, pytest.mark.slow]
sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory):
    from core.workspace.config import write_config
    from core.workspace.workspace import Workspace
    from tests.app_workspace import make_workspace

    tmp = tmp_path_factory.mktemp("auth")
    ws = make_workspace(tmp / "ws", n=120, size=16)
    ws.config["votes"]["experts"] = ["carol"]
    write_config(ws.config, ws.root / Workspace.CONFIG)
    users = tmp / "users.json"
    users.write_text(json.dumps({"carol": "secret-c", "dave": "secret-d"}))
    port = free_port()
    log = open(tmp / "server.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "panel", "serve", str(PROJECT / "app"), "--port", str(port),
                             "--address", "127.0.0.1", "--allow-websocket-origin", f"127.0.0.1:{port}",
                             "--basic-auth", str(users), "--cookie-secret", "resx-test-secret",
                             "--args", "--workspace", str(ws.root)],
                            stdout=log, stderr=subprocess.STDOUT, cwd=PROJECT,
                            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    time.sleep(3)
    yield f"http://127.0.0.1:{port}", ws.root
    proc.terminate()
    proc.wait(timeout=20)
    log.close()


def test_login_name_is_the_inspector(auth_server):
    base, ws = auth_server
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROME_ARGS)
        page = browser.new_context(viewport={"width": 1500, "height": 1100}).new_page()
        page.set_default_timeout(60_000)
        for _ in range(120):  # the server may still be starting
            try:
                page.goto(f"{base}/app", timeout=240_000, wait_until="commit")
                break
            except Exception:
                time.sleep(1)
        page.wait_for_selector("input[name='username']", timeout=120_000)
        page.fill("input[name='username']", "carol")
        page.fill("input[name='password']", "secret-c")
        page.locator("input[name='password']").press("Enter")
        page.wait_for_selector(".resx-grid", timeout=240_000)
        name = page.get_by_placeholder("enter your name once")
        assert name.input_value() == "carol"
        assert name.is_disabled()  # the vote cannot be cast in another name
        page.get_by_placeholder("one id per line, or comma-separated").fill("G0000003")
        page.get_by_role("button", name="Select ids").click()
        page.locator(".resx-tile[data-id='G0000003']").wait_for()
        page.locator(".resx-keyline").click()
        page.keyboard.press("2")
        votes = wait_for(lambda: (v := current_votes(ws)) is not None and len(v) > 0 and v, 20)
        assert votes is not None and len(votes) == 1
        row = votes.iloc[0]
        assert (row["id"], row["inspector"], row["label"]) == ("G0000003", "carol", "General")
        assert row["role"] == "expert"  # carol is an expert in the workspace config
        shot(page, "09_basic_auth_vote", scroll_to=".resx-grid")
        browser.close()


def test_changing_the_inspector_widget_from_page_javascript_changes_nothing(auth_server):
    """The page's JavaScript sets the inspector field's Bokeh model to another login (dave, or the
    expert's name for dave): the server keeps the session's login, and the vote is recorded as it."""
    base, ws = auth_server
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROME_ARGS)
        page = browser.new_context(viewport={"width": 1500, "height": 1100}).new_page()
        page.set_default_timeout(60_000)
        page.goto(f"{base}/app", timeout=240_000, wait_until="commit")
        page.wait_for_selector("input[name='username']", timeout=120_000)
        page.fill("input[name='username']", "dave")
        page.fill("input[name='password']", "secret-d")
        page.locator("input[name='password']").press("Enter")
        page.wait_for_selector(".resx-grid", timeout=240_000)
        changed = page.evaluate("""() => {
            const doc = window.Bokeh.documents[0];
            const models = [...doc._all_models.values()].filter(m => m.placeholder === 'enter your name once');
            for (const m of models) { m.disabled = false; m.value = 'carol'; m.value_input = 'carol'; }
            return models.length;
        }""")
        assert changed >= 1
        time.sleep(2)  # the change reaches the server
        page.get_by_placeholder("one id per line, or comma-separated").fill("G0000005")
        page.get_by_role("button", name="Select ids").click()
        page.locator(".resx-tile[data-id='G0000005']").wait_for()
        page.locator(".resx-hint").first.click()
        page.keyboard.press("3")
        votes = wait_for(lambda: (v := current_votes(ws)) is not None and (v["id"] == "G0000005").any() and v, 20)
        assert votes is not None
        row = votes[votes["id"] == "G0000005"].iloc[0]
        assert (row["inspector"], row["label"], row["role"]) == ("dave", "Core", "inspector")  # not carol, no expert
        from core.votes.store import open_store

        with open_store(ws) as store:
            c = store.consensus(ids=["G0000005"])
        assert not bool(c.loc[0, "expert"])
        browser.close()
