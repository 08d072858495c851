"""Blind mode in a real browser: "hidden" says why, on hover, wherever it is shown.

A workspace in blind mode where another inspector voted on every galaxy; this session (no auth, so
it does not see everything) has voted on none. A gallery tile's "consensus: hidden" line carries the
explanation as its tooltip, the "?" of the sidebar's consensus filter shows it on hover, the detail
view's votes section says it, and the map's legend (coloured by consensus) names "hidden" and why.
"""

from __future__ import annotations


import pytest

from tests.app.test_browser_app import (  # noqa: E402
    CHROME_ARGS, CHROMIUM, LOAD_TIMEOUT_MS, goto, panel_server, select_option, shot, wait_for)

pytestmark = [pytest.mark.browser, pytest.mark.slow]
sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")

#: Screen centre of the "?" description icon of the widget labelled ``label`` (shadow roots included).
ICON_JS = """(label) => {
  const found = [];
  const walk = (root) => { for (const el of root.querySelectorAll('*')) {
      if (el.classList && el.classList.contains('bk-description')) {
        const lab = el.parentElement;
        if (lab && lab.textContent.trim() === label) {
          const r = el.getBoundingClientRect();
          found.push([r.left + r.width / 2, r.top + r.height / 2]);
        }
      }
      if (el.shadowRoot) walk(el.shadowRoot); } };
  walk(document);
  return found;
}"""

TOOLTIPS_JS = """() => {
  const out = [];
  const walk = (root) => { for (const el of root.querySelectorAll('*')) {
      if (el.classList && el.classList.contains('bk-tooltip-content')) out.push(el.textContent);
      if (el.shadowRoot) walk(el.shadowRoot); } };
  walk(document);
  return out.join('\\n');
}"""


@pytest.fixture(scope="module")
def blind_server(tmp_path_factory):
    from core.votes.store import open_store
    from core.workspace.config import write_config
    from core.workspace.workspace import Workspace
    from tests.app_workspace import make_workspace

    tmp = tmp_path_factory.mktemp("blind")
    ws = make_workspace(tmp / "ws", n=60, size=16)
    ws.config["app"]["blind"] = True
    ws.config["votes"]["min_votes"] = 1
    write_config(ws.config, ws.root / Workspace.CONFIG)
    store = open_store(ws)
    store.add_inspector("sim")
    store.cast(list(ws.read_catalog()["id"]), "sim", "Core", source="simulated")
    store.close()
    with panel_server(ws.root, tmp / "server.log") as url:
        yield url


def test_hidden_says_why_on_hover(blind_server):
    from app.state import HIDDEN_TIP

    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROME_ARGS)
        page = browser.new_context(viewport={"width": 1500, "height": 1100}).new_page()
        page.set_default_timeout(60_000)
        goto(page, blind_server)
        page.wait_for_selector(".resx-grid", timeout=LOAD_TIMEOUT_MS)
        # the sidebar's consensus filter: its "?" shows the explanation on hover
        (icon,) = page.evaluate(ICON_JS, "consensus")
        assert HIDDEN_TIP not in page.evaluate(TOOLTIPS_JS)
        page.mouse.move(*icon)
        assert wait_for(lambda: HIDDEN_TIP in page.evaluate(TOOLTIPS_JS), 10), page.evaluate(TOOLTIPS_JS)
        shot(page, "blind_filter_tooltip")
        page.mouse.move(5, 5)
        # a tile's hidden consensus line: its tooltip is the explanation; a visible line's is itself
        page.get_by_placeholder("one id per line, or comma-separated").fill("G0000001\nG0000002")
        page.get_by_role("button", name="Select ids").click()
        page.locator(".resx-tile").first.wait_for(timeout=30_000)
        lines = page.locator(".resx-tile .resx-line").evaluate_all("els => els.map(e => [e.textContent, e.title])")
        hidden = [t for text, t in lines if text.startswith("consensus: hidden")]
        assert len(hidden) == 2 and set(hidden) == {HIDDEN_TIP}
        assert all(t == text for text, t in lines if not text.startswith("consensus"))
        # the detail view's votes section says it too
        page.locator(".resx-tile .resx-imgs").first.click()
        page.locator(".resx-detail").first.wait_for(timeout=30_000)
        assert page.locator(".resx-detail").get_by_text("Blind mode: the other inspectors").count() == 1
        page.locator(".resx-detail").get_by_role("button", name="Close").first.click()
        # the map coloured by consensus: the legend's entry for hidden
        select_option(page, "catalog class", "consensus")
        legend = """() => [...window.Bokeh.documents[0]._all_models.values()]
            .filter(m => m.type === 'LegendItem' && m.label).map(m => m.label.value || m.label.field || '')"""
        assert wait_for(lambda: "hidden (blind mode: vote to see)" in page.evaluate(legend), 30), page.evaluate(legend)
        page.locator("canvas").first.scroll_into_view_if_needed()
        shot(page, "blind_legend")
        browser.close()
