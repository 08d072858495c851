"""Residual Explorer dashboard: ``panel serve app [--args --workspace DIR]``.

Builds the session's state, the template and the views, and calls ``.servable()``. The
workspace is ``--workspace DIR`` (after ``--args``), else ``$RESX_WORKSPACE``, else the demo
workspace (:func:`core.workspace.workspace.default_workspace`). A missing or broken workspace gives a
page that says what is wrong and how to build one.
"""

from __future__ import annotations

import argparse
import base64
import logging
import sys
import traceback
from pathlib import Path

import holoviews as hv
import panel as pn

from app import asset
from app.browser import PageGlue
from app.state import COLOR_BY, HIDDEN_TIP, AppState
from app.text import md
from core.cli.serve import is_loopback
from core.workspace.workspace import WorkspaceError, default_workspace

log = logging.getLogger("app")
POLL_MS = 2000
#: The map's column: beside the tabs from 620 + 720 px of main area on; it stays in view (sticky)
#: while the gallery beside it scrolls.
MAP_COLUMN_CSS = """
:host { flex: 1 1 620px; min-width: 0; }
@media (min-width: 1700px) { :host { position: sticky; top: 0; align-self: flex-start; } }
"""

pn.extension(notifications=True, raw_css=[asset("resx.css").read_text()])
hv.extension("bokeh")


def workspace_from_args(argv: list[str]) -> Path:
    parser = argparse.ArgumentParser(prog="panel serve app --args", add_help=False)
    parser.add_argument("--workspace", default=None)
    args, _ = parser.parse_known_args(argv)
    return Path(args.workspace) if args.workspace else default_workspace()


def listen_address(argv: list[str]) -> str | None:
    """The address the server listens on: ``--args --address A`` (``resx serve`` passes it), else
    the ``--address`` of the ``panel serve`` command line; None when neither names one (Bokeh
    then listens on every interface)."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--address", default=None)
    args, _ = parser.parse_known_args(argv)
    if args.address:
        return args.address
    try:
        import psutil

        cmd = psutil.Process().cmdline()
    except Exception:  # noqa: BLE001 - unknown: treated as every interface
        return None
    args, _ = parser.parse_known_args([a for a in cmd if a != "--args"])
    return args.address




def logo() -> str:
    return "data:image/svg+xml;base64," + base64.b64encode(asset("logo.svg").read_bytes()).decode()


def template(**kw):
    return pn.template.FastListTemplate(title="Residual Explorer", logo=logo(), accent="#0b1d3a",
                                        header_background="#0b1d3a", sidebar_width=330, **kw)


def error_page(path: Path, exc: BaseException) -> pn.template.BaseTemplate:
    """A readable page for a missing or broken workspace."""
    detail = str(exc) if isinstance(exc, WorkspaceError) else f"{type(exc).__name__}: {exc}"
    text = f"""
## The workspace cannot be opened

**{md(path)}**

{md(detail)}

### How to get a workspace

* the demo survey (simulated, ~3 min on 2 cores): `resx demo WORKSPACE`
* your own GALFIT fits: `resx ingest CATALOG WORKSPACE --blocks BLOCKS`, then `resx prep WORKSPACE`,
  `resx train WORKSPACE --model cnn --embed` and `resx train WORKSPACE --model cvae --embed`

then reload this page, or serve another workspace with `resx serve DIR`
(or `panel serve app --args --workspace DIR`, or `RESX_WORKSPACE=DIR panel serve app`).
"""
    tmpl = template()
    tmpl.main.append(pn.Column(pn.pane.Alert(text, alert_type="warning", css_classes=["resx-error"]),
                               name="Workspace"))
    return tmpl


def build(path: Path) -> pn.template.BaseTemplate:
    from app.views.agreement import AgreementView
    from app.views.export import ExportView, SelectByView
    from app.views.gallery import GalleryView
    from app.views.help import help_panel
    from app.views.map import map_area
    from app.views.queue import QueueView
    from app.views.runs import RunsView
    from app.views.voting import VotingView

    # basic auth or OAuth: the login (from the session's signed cookie, read on the server) is the
    # inspector; no widget can change it
    state = AppState(path, login=pn.state.user or None, loopback=is_loopback(listen_address(sys.argv[1:])))

    tmpl = template()
    gallery = GalleryView(state, template=tmpl)
    voting = VotingView(state)
    runs = RunsView(state)
    export = ExportView(state)
    select_by = SelectByView(state)
    agreement = AgreementView(state)

    # -- sidebar ---------------------------------------------------------------------------------
    n_pc = max(state.n_pcs("cnn") if state.run_cnn else 2, state.n_pcs("cvae") if state.run_cvae else 2)
    pcs = {f"PC{i}": i for i in range(1, n_pc + 1)}
    if state.authenticated:  # shown only: not linked to the state, so a change from the page does nothing
        inspector = pn.widgets.TextInput(value=state.login, name=f"inspector (your login · {state.role})",
                                         placeholder="enter your name once", disabled=True)
        who = pn.pane.Alert(  # a login, but no lead: say which key makes one (lead actions are refused)
            "**Nobody has the lead role** on this server: `app.leads` in the workspace config is empty, so "
            "retraining, changing the active run and the blind-mode export are refused.",
            alert_type="warning", css_classes=["resx-no-lead"], margin=(0, 5), visible=not state.leads)
    else:
        inspector = pn.widgets.TextInput.from_param(state.param.inspector, label="inspector (your name)",
                                                    placeholder="enter your name once")
        who = pn.pane.Alert(
            "**No authentication**: votes are recorded under the name you type (unauthenticated), expert "
            "overrides are disabled" + ("; lead actions are open to this machine (loopback)." if state.is_lead else
                                        "; lead actions (retrain, active run, blind export) are disabled."),
            alert_type="warning", css_classes=["resx-noauth"], margin=(0, 5))
    sidebar = [
        pn.pane.Markdown(f"**Workspace** {md(state.ws.root)} · {state.n:,} galaxies"),
        inspector,
        who,
        pn.widgets.RadioButtonGroup.from_param(state.param.model, label="latent space", color="light",
                                               options={"CNN": "cnn", "CvAE": "cvae"}),
        pn.widgets.Checkbox.from_param(state.param.side_by_side, label="CNN and CvAE side by side"),
        runs.run_select,
        runs.make_active,
        pn.Row(pn.widgets.Select.from_param(state.param.pc_x, options=pcs, label="x axis", width=140),
               pn.widgets.Select.from_param(state.param.pc_y, options=pcs, label="y axis", width=140)),
        pn.widgets.Select.from_param(state.param.color_by, options=list(COLOR_BY), label="colour by"),
        pn.Row(pn.widgets.Checkbox.from_param(state.param.show_svc, label="SVC boundaries"),
               pn.widgets.Checkbox.from_param(state.param.show_gmm, label="GMM ellipses")),
        pn.pane.Markdown("**Filters** (none ticked = all)", margin=(10, 5, 0, 5)),
        pn.widgets.MultiChoice.from_param(state.param.class_filter, label="catalog class"),
        pn.widgets.MultiChoice.from_param(state.param.consensus_filter, label="consensus",
                                          description=("consensus labels shown (none = all). 'hidden': " + HIDDEN_TIP)
                                          if state.blind else "consensus labels shown (none = all)"),
        pn.pane.Markdown("**Selection**", margin=(10, 5, 0, 5)),
        select_by.panel(),
        pn.pane.Markdown("**Inspect next**", margin=(10, 5, 0, 5)),
        QueueView(state).panel(),
    ]
    tmpl.sidebar.extend(sidebar)

    # -- main --------------------------------------------------------------------------------------
    # The map and the inspection tabs side by side when the page is wide enough (the map stays in
    # view while the gallery scrolls), the tabs below the map otherwise; a new selection opens the
    # gallery tab and the gallery scrolls itself into view (GalleryGrid.reveal).
    area = map_area(state)
    tab_items = [
        ("Gallery", pn.Column(voting.panel(), gallery.panel(), sizing_mode="stretch_width")),
        ("Run & retrain", runs.panel()),
        ("Agreement", agreement.panel()),
        ("Export", export.panel()),
        ("Help", help_panel()),
    ]
    tabs = pn.Tabs(*tab_items, dynamic=False, sizing_mode="stretch_width")
    # The agreement statistics read every vote: computed only while their tab is open.
    agreement_tab = [name for name, _ in tab_items].index("Agreement")
    tabs.param.watch(lambda e: agreement.set_visible(e.new == agreement_tab), "active")
    state.param.watch(lambda e: setattr(tabs, "active", 0) if len(e.new) else None, "selected")
    layout = pn.FlexBox(
        pn.Column(area, sizing_mode="stretch_width", name="Latent map", css_classes=["resx-map-col"],
                  stylesheets=[MAP_COLUMN_CSS]),
        pn.Column(tabs, sizing_mode="stretch_width", name="Inspect", css_classes=["resx-inspect-col"],
                  stylesheets=[":host { flex: 1 1 720px; min-width: 0; }"]),
        flex_wrap="wrap", align_items="flex-start", sizing_mode="stretch_width", css_classes=["resx-layout"],
        styles={"gap": "12px"},
    )
    tmpl.main.append(layout)
    tmpl.modal.append(gallery.detail)
    # the name kept in the browser across reloads (without a login), clickable check-box labels
    glue = PageGlue(inspector=state.inspector, locked=state.inspector_locked, width=0, height=0, margin=0)
    if not state.inspector_locked:
        glue.link(state, inspector="inspector", bidirectional=True)
    tmpl.sidebar.append(glue)

    def poll():
        try:
            state.poll()
            runs.poll()
        except Exception:
            log.exception("periodic refresh failed")

    pn.state.add_periodic_callback(poll, period=POLL_MS)
    return tmpl


def main() -> None:
    path = workspace_from_args(sys.argv[1:])
    try:
        page = build(path)
    except Exception as exc:  # noqa: BLE001 - every failure becomes a readable page
        if not isinstance(exc, WorkspaceError):
            log.error("cannot open %s:\n%s", path, traceback.format_exc())
        page = error_page(path, exc)
    page.servable()


main()
