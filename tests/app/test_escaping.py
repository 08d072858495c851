"""User text is data: hostile names, comments, ids, file names and messages render as text in every view.

Each view is built on a workspace whose votes, catalog and files carry payloads; every Markdown,
HTML and Alert pane is rendered exactly as Panel sends it to the browser, and no payload may
come out as markup (an element, an attribute, a link). The browser test
(``test_browser_security.py``) checks the same end to end with a ``window`` flag.
"""

from __future__ import annotations

import html
from html.parser import HTMLParser
from types import SimpleNamespace

import panel as pn
import pytest

from app.state import AppState

PAYLOADS = [
    '<img src=x onerror="window.__xss=1">',
    "<script>window.__xss=1</script>",
    "[click](javascript:window.__xss=1)",
    "<svg/onload=window.__xss=1>",
    "**bold** `code` | pipe | <b>b</b>",
    "~~~\n<img src=x onerror=window.__xss=1>\n~~~",
]
_BAD_TAGS = {"script", "img", "svg", "iframe", "b", "a", "object", "embed", "style"}


class _Tags(HTMLParser):
    """Elements and attributes of an HTML text (what the browser would create from it)."""

    def __init__(self):
        super().__init__()
        self.bad: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        ours = (tag == "img" and (attrs.get("src") or "").startswith("data:image/png;base64,")  # our stamps
                or tag == "a" and attrs.get("class") == "header-anchor" and (attrs.get("href") or "").startswith("#"))
        if tag in _BAD_TAGS and not ours:
            self.bad.append(f"<{tag} {attrs}>")
        for k, v in attrs.items():
            if k.startswith("on") or "javascript:" in (v or "").lower():
                self.bad.append(f"<{tag} {k}={v!r}>")


def markup(text: str) -> list[str]:
    parser = _Tags()
    parser.feed(text)
    return parser.bad


def rendered(pane) -> str:
    """The HTML that the browser receives for a Markdown / HTML / Alert pane."""
    return html.unescape(pane._transform_object(pane.object)["object"])


def markup_in(viewable) -> list[str]:
    """Payload markup found in any text pane of ``viewable`` (empty = safe)."""
    panes = viewable.select(pn.pane.Markdown) + viewable.select(pn.pane.HTML)
    return [f"{type(p).__name__}: {m}" for p in panes if isinstance(p.object, str) for m in markup(rendered(p))]


@pytest.fixture(scope="module")
def ws_path(tmp_path_factory):
    from tests.app_workspace import make_workspace

    root = tmp_path_factory.mktemp("escws") / "ws"
    make_workspace(root, n=120, seed=3, size=16)
    return root


@pytest.fixture
def state(ws_path, tmp_path):
    import shutil

    root = tmp_path / "ws"
    shutil.copytree(ws_path, root)
    st = AppState(root)
    st.blind = False
    return st


def test_escape_helpers_leave_no_markup():
    from app.text import html_text, md, md_code

    assert markup(rendered(pn.pane.Markdown(PAYLOADS[0]))) != []  # the check can fail: raw text is markup
    for p in PAYLOADS:
        for text in (md(p), html_text(p), md_code("failed:\n" + p)):
            out = rendered(pn.pane.Markdown(text))
            assert markup(out) == [], (p, out)
        assert "window.__xss=1" in rendered(pn.pane.Markdown(md(p))) or "window" not in p  # shown as typed


def test_votes_table_status_and_messages_render_hostile_text_as_text(state):
    from app.views.export import ExportView, SelectByView
    from app.views.gallery import GalleryView
    from app.views.runs import RunsView
    from app.views.voting import VotingView

    gid = str(state.ids[0])
    for i, p in enumerate(PAYLOADS):
        name = f"{p} #{i}"
        state.store.add_inspector(name)
        state.store.cast([gid], name, "Core", comment=p)
    state.refresh_votes()
    gallery, voting = GalleryView(state), VotingView(state)
    select_by, export, runs = SelectByView(state), ExportView(state), RunsView(state)
    # the detail view's votes table: every name and comment, shown as typed
    detail = gallery.detail_view(0)
    assert markup_in(detail) == []
    assert 'onerror="window.__xss=1"' in html.unescape(rendered(detail.select(pn.pane.Markdown)[-1]))  # as typed
    # one's own status line, after a vote
    state.inspector = PAYLOADS[0]
    assert markup_in(voting.panel()) == []
    voting.scope.value = "whole selection"
    state.select_ids([gid])
    voting.vote_scope("Clean")
    assert "Recorded" in voting.status.object and markup_in(voting.panel()) == []
    # the paste box's unknown ids
    select_by.ids.value = "\n".join(PAYLOADS[:4])
    select_by._select_ids()
    assert "Unknown ids" in select_by.msg.object and markup_in(select_by.panel()) == []
    # a saved selection's name and its error message
    export.name.value = PAYLOADS[1]
    export._save()
    assert markup_in(export.panel()) == []
    export.name.value = "<>"
    export._save()
    assert markup_in(export.panel()) == []
    # an error message (a retrain refused) and the gallery's selection source
    state.selection_source = PAYLOADS[3]
    gallery.refresh()
    assert markup_in(gallery.panel()) == []
    runs.r_status.object = ""
    state.start_retrain = lambda *a, **k: (_ for _ in ()).throw(RuntimeError(PAYLOADS[0]))
    runs.start()
    assert "⚠" in runs.r_status.object and markup_in(runs.panel()) == []


def test_hostile_catalog_values_in_the_detail_and_the_legend(state):
    from app.views.gallery import GalleryView
    from app.views.map import MapView

    state.catalog.loc[0, "catalog_class"] = PAYLOADS[0]
    if "field" in state.catalog:
        state.catalog.loc[0, "field"] = PAYLOADS[2]
    detail = GalleryView(state).detail_view(0)
    assert markup_in(detail) == []
    import app.views.map as M

    view = SimpleNamespace(state=state, model="cnn")  # the legend alone (no plot: no HoloViews backend here)
    old = M.RASTER_N
    M.RASTER_N = 0  # the datashaded map's HTML legend, with every catalog class
    try:
        state._frames.clear()
        legend = pn.pane.HTML(MapView.legend_html(view))
    finally:
        M.RASTER_N = old
    assert markup_in(pn.Column(legend)) == []
    assert "&lt;img" in legend.object
