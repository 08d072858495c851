"""Hostile text end to end, in a real browser: two sessions on one server, no script ever runs.

Session A (an inspector with bad intentions) puts payloads through every text field of the page
(its inspector name, a vote comment, the paste-ids box, the find-one-id box, a saved selection's
name); a votes file imported with ``resx votes import`` (hostile names, comments and file name),
a catalog ingested with hostile ids and fields, and a hostile saved-selection file name come in
through the workspace. Session B opens every view on them: the map's hover, the gallery, the
detail view with its votes table, the queue, Run & retrain, Agreement, Export and Help. Each
payload sets ``window.__pwned`` when it runs; the flag must stay undefined in both pages, and the
payload text must be shown as text where it belongs.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np
import pytest

from tests.app.test_browser_app import (  # noqa: E402
    CHROME_ARGS, CHROMIUM, LOAD_TIMEOUT_MS, PROJECT, current_votes, goto, panel_server, shot, wait_for)

pytestmark = [pytest.mark.browser, pytest.mark.slow]
sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")

IMG = '<img src=x onerror="window.__pwned=1">'
SCRIPT = "<script>window.__pwned=1</script>"
JS_LINK = "[click me](javascript:window.__pwned=1)"
MD_IMG = '![x](x" onerror="window.__pwned=1)'
SVG = "<svg onload=window.__pwned=1>"
TEMPLATE = "{{ window.__pwned=1 }} ${window.__pwned=1} @{id}"
A_HREF = '<a href="javascript:window.__pwned=1">link</a>'
ALL = [IMG, SCRIPT, JS_LINK, MD_IMG, SVG, TEMPLATE, A_HREF]

#: Catalog ids that came in through ingest (rows 0–3 of the workspace).
HOSTILE_IDS = [IMG, SCRIPT + "1", JS_LINK, SVG]
NAME_A = IMG + " A"  # session A's inspector name
COMMENT_A = SCRIPT + " " + MD_IMG + " " + TEMPLATE
COMMENT_D = A_HREF + " " + SVG + " (detail)"
IMPORTED = [  # (id row, inspector, label, comment) of the imported votes file
    (0, SVG + " imp", "Core", A_HREF),
    (1, JS_LINK + " imp", "Clean", IMG),
    (4, TEMPLATE, "Asymmetric", SCRIPT),
]
FILE_NAME = "<img src=x onerror=window.__pwned=1>.csv"  # the imported file's name (recorded in the store)
SELECTION_FILE = "<svg onload=window.__pwned=1>"  # a saved-selection file dropped into the workspace


def hostile_workspace(root):
    """The fabricated dashboard workspace, with hostile ids and fields in its catalog (as ingested)."""
    from core.labels import CLASSES
    from core.workspace.config import write_config
    from core.workspace.workspace import Workspace
    from tests.app_workspace import make_workspace, write_run

    ws = make_workspace(root, n=120, size=16, runs=False)
    cat = ws.read_catalog()
    ids = np.array(list(cat["id"]), dtype=object)
    ids[:len(HOSTILE_IDS)] = HOSTILE_IDS
    cat["id"] = ids.astype(str)
    field = np.array(list(cat["field"]), dtype=object)
    field[:len(ALL)] = ALL
    cat["field"] = field.astype(str)
    ws.write_catalog(cat)
    classes = np.array([CLASSES.index(c) for c in cat["catalog_class"]])
    write_run(ws, "cnn-a", "cnn", classes, cat["id"])
    write_run(ws, "cvae-a", "cvae", classes, cat["id"], seed=1)
    ws.set_active_run("cnn", "cnn-a")
    ws.set_active_run("cvae", "cvae-a")
    ws = Workspace.open(root)
    ws.config["votes"]["min_votes"] = 1
    ws.config["app"]["blind"] = False
    write_config(ws.config, ws.root / Workspace.CONFIG)
    sel = ws.root / "selections"
    sel.mkdir(exist_ok=True)
    (sel / f"{SELECTION_FILE}.txt").write_text("\n".join(HOSTILE_IDS) + "\n")
    return ws


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("security")
    ws = hostile_workspace(tmp / "ws")
    ids = [str(i) for i in ws.read_catalog()["id"]]
    assert ids[:len(HOSTILE_IDS)] == HOSTILE_IDS  # the catalog kept the ids as given
    with panel_server(ws.root, tmp / "server.log") as url:
        yield url, ws.root, ids, tmp


def open_page(browser, url):
    page = browser.new_context(viewport={"width": 1500, "height": 1100}).new_page()
    page.set_default_timeout(60_000)
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.dialogs = dialogs
    goto(page, url)
    page.wait_for_selector("canvas", timeout=LOAD_TIMEOUT_MS)
    page.wait_for_selector(".resx-grid", timeout=LOAD_TIMEOUT_MS)
    time.sleep(1)
    return page


def pwned(page) -> object:
    """``window.__pwned`` in the page (None while no payload ran), and no dialog opened."""
    assert page.dialogs == []
    return page.evaluate("() => window.__pwned === undefined ? null : window.__pwned")


def deep_text(page) -> str:
    """Every text of the page, shadow roots included (Panel renders its panes in shadow DOM)."""
    return page.evaluate("""() => {
        const out = [];
        const walk = (root) => {
            for (const el of root.querySelectorAll('*')) {
                if (el.shadowRoot) walk(el.shadowRoot);
            }
            const w = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
            let n; while ((n = w.nextNode())) out.push(n.nodeValue);
        };
        walk(document);
        return out.join('\\n');
    }""")


def bad_elements(page) -> list[str]:
    """Elements a payload would create (an ``img`` not ours, ``script`` in a pane, ``svg`` with
    ``onload``, a ``javascript:`` link, any ``on*`` attribute naming ``__pwned``), shadow roots included."""
    return page.evaluate("""() => {
        const bad = [];
        const walk = (root) => {
            for (const el of root.querySelectorAll('*')) {
                for (const a of el.attributes) {
                    // (a heading's own anchor, href="#<its text>", is harmless)
                    if (/__pwned/.test(a.value) && (a.name.startsWith('on') || a.name === 'src'
                                                    || (a.name === 'href' && !a.value.startsWith('#'))))
                        bad.push(el.tagName + ' ' + a.name + '=' + a.value);
                }
                if (el.tagName === 'A' && /^\\s*javascript:/i.test(el.getAttribute('href') || ''))
                    bad.push('A href=' + el.getAttribute('href'));
                if (el.tagName === 'SCRIPT' && /__pwned/.test(el.textContent)) bad.push('SCRIPT ' + el.textContent);
                if (el.shadowRoot) walk(el.shadowRoot);
            }
        };
        walk(document);
        return bad;
    }""")


#: Screen positions of the CNN map's points with the given ids: [[id, x, y], ...] (from the Bokeh views).
POINTS_JS = """(ids) => {
  const out = [], seen = new Set();
  const walk = (v) => {
    if (!v || seen.has(v)) return;
    seen.add(v);
    if (v.frame && v.model && v.model.title && v.model.title.text.startsWith('CNN')) {
      const rect = v.canvas_view.el.getBoundingClientRect();
      for (const r of v.model.renderers) {
        const data = r.data_source && r.data_source.data;
        if (!data || !data.id || !r.glyph || !r.glyph.x || !r.glyph.x.field) continue;
        for (let i = 0; i < data.id.length; i++) {
          if (ids.includes(data.id[i]))
            out.push([data.id[i], rect.left + v.frame.x_scale.compute(data[r.glyph.x.field][i]),
                      rect.top + v.frame.y_scale.compute(data[r.glyph.y.field][i])]);
        }
      }
    }
    for (const k of (v.child_views || [])) walk(k);
  };
  for (const v of Object.values(Bokeh.index)) walk(v);
  return out;
}"""


def tooltip_values(page) -> list[str]:
    """The texts of the map's hover tooltip rows now shown (shadow roots included)."""
    return page.evaluate("""() => {
        const out = [];
        const walk = (root) => { for (const el of root.querySelectorAll('*')) {
            if (el.classList && el.classList.contains("bk-tooltip-row-value")) out.push(el.textContent.trim());
            if (el.shadowRoot) walk(el.shadowRoot); } };
        walk(document);
        return out;
    }""")


def close_detail(page) -> None:
    page.locator(".resx-detail").get_by_role("button", name="Close").first.click()
    page.locator(".resx-detail").first.wait_for(state="hidden", timeout=20_000)


def tab(page, name: str) -> None:
    page.locator(".bk-tab", has_text=name).first.click()
    time.sleep(1.5)


def select_ids(page, lines) -> None:
    page.get_by_placeholder("one id per line, or comma-separated").fill("\n".join(lines))
    page.get_by_role("button", name="Select ids").click()
    page.locator(".resx-tile").first.wait_for(timeout=30_000)
    time.sleep(1)


def tile_ids(page) -> list[str]:
    return page.locator(".resx-tile .resx-id").all_inner_texts()


def test_two_sessions_hostile_text_everywhere_runs_no_script(hostile):
    url, ws, ids, tmp = hostile
    # -- a votes file with hostile names, comments and file name, imported through the CLI ------------
    vote_file = tmp / FILE_NAME
    import pandas as pd

    pd.DataFrame([{"id": ids[r], "inspector": who, "label": lab, "comment": com} for r, who, lab, com in IMPORTED]
                 ).to_csv(vote_file, index=False)
    out = subprocess.run([sys.executable, "-m", "core", "votes", "import", str(ws), str(vote_file)],
                         cwd=PROJECT, capture_output=True, text=True, timeout=300,
                         env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    assert out.returncode == 0, out.stderr
    assert len(current_votes(ws)) == len(IMPORTED)

    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROME_ARGS)
        a = open_page(browser, url)
        # -- session A: every text field ----------------------------------------------------------------
        box = a.get_by_placeholder("enter your name once")
        box.fill(NAME_A)
        box.press("Enter")
        time.sleep(1)
        # the paste box: unknown ids (payloads) and hostile ids that exist
        select_ids(a, [SCRIPT, A_HREF, MD_IMG, *HOSTILE_IDS, ids[10]])
        assert pwned(a) is None and bad_elements(a) == []
        text = deep_text(a)
        assert "Unknown ids" in text and SCRIPT in text  # the unknown ids shown as typed
        assert tile_ids(a) == [*HOSTILE_IDS, ids[10]]  # hostile ids are tiles, their text as typed
        # keyboard votes on every tile (the keys stay on the last one), as the hostile name
        a.locator(".resx-keyline").click()
        for _ in range(5):
            a.keyboard.press("2")
            time.sleep(0.7)
        mine = wait_for(lambda: (v := current_votes(ws)) is not None
                        and (v := v[v["inspector"] == NAME_A]) is not None and len(v) >= 5 and v, 30)
        assert mine is not False and set(mine["id"]) == {*HOSTILE_IDS, ids[10]}
        # a hostile comment on the focused (last) galaxy's vote, with the c key
        a.keyboard.press("c")
        comment = a.locator(".resx-comment")
        comment.wait_for(timeout=10_000)
        comment.fill(COMMENT_A)
        comment.press("Enter")
        assert wait_for(lambda: (v := current_votes(ws)) is not None
                        and v[(v["inspector"] == NAME_A) & (v["comment"] == COMMENT_A)].shape[0] == 1, 30), \
            current_votes(ws)
        # and one through the detail view's comment box, on the fourth (hostile) id
        a.locator(".resx-tile .resx-imgs").nth(3).click()
        a.locator(".resx-detail").first.wait_for(timeout=30_000)
        time.sleep(1)
        a.get_by_placeholder("a comment on your vote of this galaxy").fill(COMMENT_D)
        a.get_by_role("button", name="Save comment").click()
        assert wait_for(lambda: (v := current_votes(ws)) is not None
                        and v[(v["id"] == HOSTILE_IDS[3]) & (v["comment"] == COMMENT_D)].shape[0] == 1, 30), \
            current_votes(ws)
        close_detail(a)
        # the detail view of a hostile id, with the votes table (its own and the imported ones)
        a.locator(".resx-tile .resx-imgs").first.click()
        a.locator(".resx-detail").first.wait_for(timeout=30_000)
        time.sleep(1.5)
        text = deep_text(a)
        assert IMG in text and (SVG + " imp") in text and A_HREF in text  # id, imported name and comment
        shot(a, "security_a_detail")
        close_detail(a)
        # the find-one-id box: an unknown payload, then a hostile id
        find = a.get_by_placeholder("an id, as it is; Enter")
        find.fill(TEMPLATE)
        find.press("Enter")
        time.sleep(1.5)
        assert TEMPLATE in deep_text(a)  # the notification names the id as typed (Notyf renders HTML)
        find.fill(HOSTILE_IDS[1])
        find.press("Enter")
        a.locator(".resx-detail").first.wait_for(timeout=30_000)  # its detail opens
        time.sleep(1)
        assert pwned(a) is None and bad_elements(a) == []
        close_detail(a)
        # a saved selection's name (a refused one: the message shows it), then a good one
        tab(a, "Export")
        name = a.get_by_placeholder("e.g. tidal-candidates")
        name.fill("<>")
        a.get_by_role("button", name="Save selection").click()
        time.sleep(1)
        name.fill(SVG + "sel")
        a.get_by_role("button", name="Save selection").click()
        time.sleep(1.5)
        assert "Saved" in deep_text(a)
        assert pwned(a) is None and bad_elements(a) == []
        shot(a, "security_a_export")

        # -- session B: every view -------------------------------------------------------------------------
        b = open_page(browser, url)
        box = b.get_by_placeholder("enter your name once")
        box.fill("bob")
        box.press("Enter")
        # the map's hover on each hostile point: the tooltip shows its id as text
        for gid, x, y in b.evaluate(POINTS_JS, HOSTILE_IDS):
            b.mouse.move(x, y)
            assert wait_for(lambda: gid in tooltip_values(b), 10), (gid, tooltip_values(b))
            assert pwned(b) is None and bad_elements(b) == []
        shot(b, "security_b_hover")
        # the saved selection loaded (the hostile file name is an option, shown as text)
        tab(b, "Export")
        options = b.locator("select option").all_inner_texts()
        assert SELECTION_FILE in options
        b.locator("select").filter(has=b.locator("option", has_text=SELECTION_FILE)).first.select_option(
            label=SELECTION_FILE)
        b.get_by_role("button", name="Load", exact=True).click()
        time.sleep(2)
        tab(b, "Gallery")
        assert wait_for(lambda: tile_ids(b) == HOSTILE_IDS, 30)
        text = deep_text(b)
        for h in HOSTILE_IDS:
            assert h in text
        shot(b, "security_b_gallery")
        # the detail views of the hostile ids: A's name and comment, the imported names, comments, fields
        for i in range(len(HOSTILE_IDS)):
            b.locator(".resx-tile .resx-imgs").nth(i).click()
            b.locator(".resx-detail").first.wait_for(timeout=30_000)
            time.sleep(1.5)
            text = deep_text(b)
            assert HOSTILE_IDS[i] in text and ALL[i] in text  # its id and its field
            if i < 3:
                assert NAME_A in text
            if i == 3:
                assert COMMENT_D in text
            if i == 1:
                assert (JS_LINK + " imp") in text and IMG in text
            if i == 0:
                shot(b, "security_b_detail")
            assert pwned(b) is None and bad_elements(b) == [], (i, bad_elements(b))
            close_detail(b)
        # the queue, and every other tab
        b.get_by_role("button", name="Inspect next").click()
        time.sleep(3)
        for name in ("Run & retrain", "Agreement", "Export", "Help"):
            tab(b, name)
            assert pwned(b) is None and bad_elements(b) == [], name
        tab(b, "Agreement")
        time.sleep(2)
        text = deep_text(b)
        assert NAME_A in text or (SVG + " imp") in text  # the inspectors' names as text
        shot(b, "security_b_agreement")
        # session A, after the periodic refresh brought it B's views of the same workspace
        time.sleep(3)
        assert pwned(a) is None and bad_elements(a) == []
        assert pwned(b) is None and bad_elements(b) == []
        browser.close()
