"""Load benchmark (not a test): K sessions voting at a human pace on one ``resx serve`` server.

    .venv/bin/python tests/benchmarks/bench_load.py --quick
    .venv/bin/python tests/benchmarks/bench_load.py --n 10000 --k 8 --seconds 120 --rate 0.67
    .venv/bin/python tests/benchmarks/bench_load.py --n 1000000 --k 8 --seconds 120 [--num-procs 2]

**Status (2026-12-02): incomplete.** The Chromium session works end to end; the K - 1 light
clients connect (3-9 s each) but their lasso never gives them a gallery (the server logs no
error; whether the selection or the update to the client fails is not yet known), so they do not
vote and a run today measures one voting session. Its numbers do not answer the issue's
8-session goals.

One server (``python -m core serve WORKSPACE``: ``resx serve``, i.e. ``panel serve app``) on a
workspace of ``--n`` galaxies (map-only at 10⁶: the stamp store is created empty, as in
``bench_app.py``, so stamp decoding is not in the numbers; real 50 x 50 residual stamps up to
20,000 galaxies). ``--k`` sessions vote on it for ``--seconds``, each one vote every ``1/--rate``
seconds on average (uniformly jittered between 0.5x and 1.5x that interval):

* **one real Chromium** (Playwright, ``/usr/bin/chromium``): types its name, lassoes the "Clean"
  cluster with the mouse, clicks the first tile and presses the vote keys 1-5. The figure is
  **key -> tile caption**: measured *in the page* (``performance.now()``) from the ``keydown``
  event to the moment the voted tile's caption reads "you: <label>" (a ``MutationObserver`` on
  it), so the Python driver's own delays are not in it;
* **K - 1 light clients**: ``bokeh.client.pull_session`` documents, each a real server session
  (the app script runs for it, exactly as for a browser). A light client does on its Bokeh
  document what the browser's JavaScript does on the same models: it sets the inspector
  ``TextInput.value``; it lassoes with a ``SelectionGeometry`` event (``final``, polygon in data
  coordinates) on the map's figure, which HoloViews' ``Lasso`` stream turns into
  ``AppState.select_polygon``, as a mouse lasso does; and it votes by sending the gallery
  component's ``esm_event`` ``{type: 'key', key, row}`` (what ``model.send_msg`` sends on a key
  press), then sets the component's ``focus`` (and ``page`` past a page's last tile) as the
  browser does. Its key -> caption is the time until the server's patch of ``captions`` gives
  that row ``mine`` (measured in the client process, so it includes that process's own delays).
  Nothing is rendered: no map image is decoded, no DOM is built. The light clients lasso the
  other ("Core"-side) cluster and start on different pages, so they vote on galaxies Chromium
  does not see change.

For every vote of every session: **key -> committed row**, the time from the key (Chromium: the
driver's press; light clients: the event's dispatch) until the vote's row is in the vote store,
polled every 0.1 s from this process through :meth:`core.votes.store.VoteStore.history` (so up to
~0.1 s of it is the poll period). **Votes lost**: votes sent minus the rows of that inspector in
the store after a final settling time (must be 0). **Server memory**: RSS (and PSS, which counts
the pages forked processes share once) of the server's process tree (psutil) once the Chromium
session is up (1 session), once all K are up, and after the voting.

The machine's load average is recorded at the start and the end; on the shared development
machine other work (a long science run) competes for the same 2 cores, so the figures there are
upper bounds of what the server does on idle cores.

Writes ``--out`` (JSON, default ``bench_load.json`` in the current folder) and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

PROJECT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(PROJECT), str(PROJECT / "tests"), str(Path(__file__).resolve().parent)]
CHROMIUM = "/usr/bin/chromium"
CHROME_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
#: the light clients' lasso (data coordinates of the map): the cluster right of the "Clean" one
LIGHT_POLY = ([1.5, 7.0, 7.0, 1.5], [-3.0, -3.0, 3.0, 3.0])
VOTE_KEYS = "12345"


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ----------------------------------------------------------------------------------------------
# the server and its memory
# ----------------------------------------------------------------------------------------------
def start_server(root: Path, num_procs: int, log_path: str | None = None) -> tuple[subprocess.Popen, str]:
    """``resx serve ROOT`` on a free port (``python -m core serve``); returns the process and the app's URL."""
    port = free_port()
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    cmd = [sys.executable, "-m", "core", "serve", str(root), "--port", str(port),
           "--allow-websocket-origin", f"127.0.0.1:{port}", "--allow-websocket-origin", f"localhost:{port}"]
    if num_procs != 1:
        cmd += ["--num-procs", str(num_procs)]
    out = open(log_path, "w") if log_path else subprocess.DEVNULL  # noqa: SIM115 - the server's lifetime
    proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT if log_path else subprocess.DEVNULL,
                            cwd=PROJECT, env=env,
                            start_new_session=True)
    return proc, f"http://127.0.0.1:{port}/app"


def stop_server(proc: subprocess.Popen) -> None:
    import psutil

    try:
        tree = psutil.Process(proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        tree = []
    for p in [psutil.Process(proc.pid), *tree] if proc.poll() is None else tree:
        try:
            p.terminate()
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(tree, timeout=20)
    for p in alive:
        p.kill()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


def server_memory(proc: subprocess.Popen) -> dict[str, float]:
    """RSS and PSS (MB) summed over the server's process tree (``resx serve`` -> ``panel serve`` [-> forks])."""
    import psutil

    root = psutil.Process(proc.pid)
    rss = pss = 0.0
    n = 0
    for p in [root, *root.children(recursive=True)]:
        try:
            info = p.memory_full_info()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        rss += info.rss / 2**20
        pss += getattr(info, "pss", info.rss) / 2**20
        n += 1
    return {"rss_mb": round(rss, 1), "pss_mb": round(pss, 1), "processes": n}


def wait_http(url: str, timeout: float = 300) -> float:
    import urllib.request

    t = time.perf_counter()
    while time.perf_counter() - t < timeout:
        try:
            with urllib.request.urlopen(url, timeout=60) as r:
                if r.status == 200:
                    return time.perf_counter() - t
        except Exception:  # noqa: BLE001 - not up yet
            time.sleep(0.3)
    raise TimeoutError(f"{url} did not answer within {timeout} s")


# ----------------------------------------------------------------------------------------------
# the vote store, polled
# ----------------------------------------------------------------------------------------------
class StorePoller(threading.Thread):
    """Polls the vote store every ``period`` s; records when each (inspector, galaxy id, label) row first appears."""

    def __init__(self, root: Path, period: float = 0.1):
        super().__init__(daemon=True)
        from core.votes.store import open_store

        self.store = open_store(root)
        self.period = period
        self.seen: dict[tuple[str, str], float] = {}  # (inspector, id) -> first time seen (perf_counter)
        self.rows: dict[str, int] = {}  # inspector -> rows in the store (every vote, re-votes included)
        self.stop_flag = threading.Event()
        self.polls = 0
        self.poll_ms: list[float] = []

    def poll_once(self) -> None:
        t0 = time.perf_counter()
        h = self.store.history()
        now = time.perf_counter()
        self.poll_ms.append(1000 * (now - t0))
        self.polls += 1
        if not len(h):
            return
        self.rows = h.groupby("inspector").size().to_dict()
        for insp, gid in zip(h["inspector"].to_numpy(), h["id"].to_numpy()):
            self.seen.setdefault((str(insp), str(gid)), now)

    def run(self) -> None:
        while not self.stop_flag.is_set():
            try:
                self.poll_once()
            except Exception as exc:  # noqa: BLE001 - a locked database: try again
                log(f"store poll failed: {exc}")
            time.sleep(self.period)


# ----------------------------------------------------------------------------------------------
# light clients (bokeh.client sessions)
# ----------------------------------------------------------------------------------------------
def _register_dynamic_models() -> None:
    """Let ``bokeh.client`` read Panel's per-component data models (``GalleryGrid1``, ``PageGlue1``, ...).

    Panel builds a Bokeh ``DataModel`` class per ``JSComponent`` class at run time; a client
    process has no such class, so the document would not deserialize. This defines, for any
    unknown model name, a ``DataModel`` with an ``Any`` property per attribute it arrives with.
    """
    import bokeh.plotting  # noqa: F401 - registers "figure"
    import panel.models  # noqa: F401 - Panel's Bokeh models
    from bokeh.core import properties as bp
    from bokeh.core.serialization import Deserializer
    from bokeh.model import DataModel, Model

    if getattr(Deserializer, "_resx_dynamic", False):
        return
    original = Deserializer._decode_object_ref
    skip = {"name", "tags", "js_property_callbacks", "js_event_callbacks", "subscribed_events", "syncable"}

    import param
    from panel.custom import JSComponent

    import app.main  # noqa: F401 - every component class of the dashboard

    components = param.concrete_descendents(JSComponent)

    def decode(self, obj):
        name = obj["name"]
        if name != "Figure" and Model.model_class_reverse_map.get(name) is None:
            names = set(obj.get("attributes") or {})  # only the attributes that differ from their defaults
            cls = components.get(name.rstrip("0123456789"))
            if cls is not None:
                names |= set(cls.param)
            props = {k: bp.Any() for k in names if k not in skip}
            props["__qualified_model__"] = name
            type(name, (DataModel,), props)
        return original(self, obj)

    Deserializer._decode_object_ref = decode
    Deserializer._resx_dynamic = True


class LightClient(threading.Thread):
    """One server session driven through its Bokeh document (see the module docstring)."""

    def __init__(self, url: str, name: str, start_page: int, interval: float, seed: int):
        super().__init__(daemon=True)
        self.url, self.name, self.start_page, self.interval = url, name, start_page, interval
        self.rng = random.Random(seed)
        self.ready = threading.Event()
        self.go = threading.Event()
        self.error: str | None = None
        self.sent: list[dict] = []  # {id, row, t_key, t_caption}
        self.pull_s = float("nan")
        self.session = None
        self.until = 0.0

    # -- inside the client's own IOLoop thread ---------------------------------------------
    def run(self) -> None:
        try:
            from bokeh.client import pull_session

            t = time.perf_counter()
            self.session = pull_session(url=self.url)
            self.pull_s = time.perf_counter() - t
            log(f"{self.name}: session pulled in {self.pull_s:.1f} s")
            self.loop = self.session._connection._loop
            self.loop.add_callback(self._setup)
            self.session._connection.loop_until_closed()
        except Exception as exc:  # noqa: BLE001 - reported in the results
            self.error = f"{type(exc).__name__}: {exc}"
            self.ready.set()

    def _find(self) -> None:
        from bokeh.models import LassoSelectTool, Plot, TextInput

        doc = self.session.document
        self.grid = self.inspector = self.figure = None
        for m in doc.models:
            data = getattr(m, "data", None)
            if data is not None and type(data).__name__.startswith("GalleryGrid"):
                self.grid = m
            elif isinstance(m, TextInput) and str(m.title).startswith("inspector"):
                self.inspector = m
            elif isinstance(m, Plot) and any(isinstance(t, LassoSelectTool) for t in m.toolbar.tools):
                log(f"{self.name}: lasso plot {m.id} {m.width}x{m.height} visible={m.visible}")
                self.figure = self.figure or m
        missing = [k for k in ("grid", "inspector", "figure") if getattr(self, k) is None]
        if missing:
            raise RuntimeError(f"models not found in the session's document: {missing}")

    def _setup(self) -> None:
        try:
            self._find()
            self.inspector.value = self.name
            self.grid.data.on_change("captions", self._on_captions)
            self.grid.data.on_change("tiles", self._on_tiles)
            self.loop.call_later(1.0, self._lasso)
        except Exception as exc:  # noqa: BLE001
            self.error = f"{type(exc).__name__}: {exc}"
            self.ready.set()

    def _lasso(self) -> None:
        from bokeh.events import SelectionGeometry

        xs, ys = LIGHT_POLY
        geometry = {"type": "poly", "x": list(xs) + [xs[0]], "y": list(ys) + [ys[0]],
                    "sx": [0.0] * (len(xs) + 1), "sy": [0.0] * (len(ys) + 1)}
        event = SelectionGeometry(self.figure, geometry=geometry, final=True)
        base = event.event_values
        # Bokeh's Python SelectionGeometry (an event it normally only receives) serializes only its model
        event.event_values = lambda: dict(base(), geometry=geometry, final=True)
        self.session.document.callbacks.send_event(event)
        self.loop.call_later(0.5, self._wait_tiles)

    def _wait_tiles(self, tries: int = 0) -> None:
        tiles = self.grid.data.tiles or []
        if tries % 20 == 0:
            log(f"{self.name}: {len(tiles)} tiles, page {self.grid.data.page} (waiting for page {self.start_page})")
        if tiles and (self.start_page == 0 or tiles[0].get("page") == self.start_page):
            self.ready.set()
            self.loop.add_callback(self._wait_go)
            return
        if tiles and self.start_page and self.grid.data.page != self.start_page:
            self.grid.data.page = self.start_page  # the "next ▶" button sets the page
        if tries > 1200:
            self.error = "no selection after 600 s"
            self.ready.set()
            return
        self.loop.call_later(0.5, self._wait_tiles, tries + 1)

    def _wait_go(self) -> None:
        if self.go.is_set():
            self.loop.call_later(self.rng.uniform(0, self.interval), self._vote)
        else:
            self.loop.call_later(0.05, self._wait_go)

    def _vote(self) -> None:
        try:
            self._vote_once()
        except Exception as exc:  # noqa: BLE001 - reported in the results; this client stops voting
            self.error = f"{type(exc).__name__}: {exc}"

    def _vote_once(self) -> None:
        from panel.models.esm import ESMEvent

        if time.perf_counter() >= self.until:
            return
        data = self.grid.data
        tiles = data.tiles or []
        f = min(int(data.focus or 0), len(tiles) - 1)
        if not tiles or tiles[f].get("page") != data.page:  # a page turn not answered yet: wait
            self.loop.call_later(0.1, self._vote)
            return
        tile = tiles[f]
        key = self.rng.choice(VOTE_KEYS)
        rec = {"id": str(tile["id"]), "row": int(tile["row"]), "key": key, "t_key": time.perf_counter(),
               "t_caption": None}
        self.sent.append(rec)
        self._pending = rec
        self.session.document.callbacks.send_event(
            ESMEvent(model=self.grid, data={"type": "key", "key": key, "row": int(tile["row"])}))
        if f < len(tiles) - 1:
            data.focus = f + 1
        else:
            data.page = int(data.page) + 1
            data.focus = 0
        self.loop.call_later(self.interval * self.rng.uniform(0.5, 1.5), self._vote)

    def _on_captions(self, attr, old, new) -> None:
        now = time.perf_counter()
        mine = {int(c["row"]) for c in new or [] if c.get("mine")}
        for rec in self.sent[-5:]:
            if rec["t_caption"] is None and rec["row"] in mine:
                rec["t_caption"] = now

    def _on_tiles(self, attr, old, new) -> None:
        self._on_captions(attr, None, self.grid.data.captions)

    def close(self) -> None:
        if self.session is not None:
            try:
                self.loop.add_callback(self.session.close)
            except Exception:  # noqa: BLE001
                pass


# ----------------------------------------------------------------------------------------------
# the Chromium session
# ----------------------------------------------------------------------------------------------
_KEY_PROBE = """
() => {
  if (window.__resxProbe) return;
  window.__resxProbe = true;
  document.addEventListener('keydown', () => { window.__tKey = performance.now(); }, true);
}
"""

_WATCH = """
(tile) => {
  const mine = tile.querySelector('.resx-mine');
  window.__tCap = null; window.__tKey = null;
  const before = mine.textContent;
  const obs = new MutationObserver(() => {
    if (window.__tCap === null && mine.textContent !== before && mine.textContent.startsWith('you:')) {
      window.__tCap = performance.now(); obs.disconnect();
    }
  });
  obs.observe(mine, {childList: true, characterData: true, subtree: true});
  return [tile.dataset.row, tile.dataset.id, before];
}
"""


def chromium_open(p, url: str, name: str):
    """Open the app, type the name, lasso the "Clean" cluster with the mouse, focus the first tile."""
    browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROME_ARGS)
    page = browser.new_context(viewport={"width": 1500, "height": 1100}).new_page()
    t = time.perf_counter()
    page.goto(url, timeout=600_000, wait_until="commit")
    page.wait_for_selector("canvas", timeout=600_000)
    page.wait_for_selector(".resx-grid", timeout=600_000)
    first_map = time.perf_counter() - t
    page.get_by_placeholder("enter your name once").fill(name)
    page.get_by_placeholder("enter your name once").press("Enter")
    time.sleep(2)
    boxes = [c.bounding_box() for c in page.locator("canvas").all()]
    box = max((b for b in boxes if b), key=lambda b: b["width"] * b["height"])
    pts = [(0.12, 0.2), (0.4, 0.2), (0.4, 0.75), (0.12, 0.75)]
    pts = [(box["x"] + box["width"] * fx, box["y"] + box["height"] * fy) for fx, fy in pts]
    page.mouse.move(*pts[0])
    page.mouse.down()
    for q in pts[1:] + [pts[0]]:
        page.mouse.move(*q, steps=4)
    page.mouse.up()
    page.wait_for_selector(".resx-tile", timeout=600_000)
    time.sleep(1)
    page.locator(".resx-hint").first.click()
    page.evaluate(_KEY_PROBE)
    return browser, page, first_map


def chromium_vote(page, rng: random.Random, timeout_s: float = 60.0) -> dict | None:
    """One key on the focused tile; returns {id, row, key, t_key, caption_ms} (caption_ms None: not seen)."""
    t_wait = time.perf_counter()
    while True:  # the focused tile, not yet voted by this session (after a page turn: the new page's)
        focus = page.locator(".resx-tile.focus")
        if focus.count() == 1 and "not voted" in focus.locator(".resx-mine").inner_text():
            break
        if time.perf_counter() - t_wait > timeout_s:
            return None
        time.sleep(0.05)
    row, gid, _ = focus.element_handle().evaluate(_WATCH)
    key = rng.choice(VOTE_KEYS)
    t_key = time.perf_counter()
    page.keyboard.press(key)
    rec = {"id": gid, "row": int(row), "key": key, "t_key": t_key, "caption_ms": None}
    try:
        page.wait_for_function("window.__tCap !== null && window.__tKey !== null", timeout=timeout_s * 1000,
                               polling=20)
        rec["caption_ms"] = page.evaluate("window.__tCap - window.__tKey")
    except Exception:  # noqa: BLE001 - recorded as not seen
        pass
    return rec


# ----------------------------------------------------------------------------------------------
# the run
# ----------------------------------------------------------------------------------------------
def stats(values: list[float]) -> dict:
    v = np.asarray([x for x in values if x is not None and np.isfinite(x)], dtype=float)
    if not v.size:
        return {"n": 0, "median": None, "p95": None, "max": None}
    return {"n": int(v.size), "median": round(float(np.median(v)), 1), "p95": round(float(np.percentile(v, 95)), 1),
            "max": round(float(v.max()), 1)}


def build(root: Path, n: int) -> None:
    from bench_app import build as build_ws

    build_ws(root, n)
    # the first session's work on a new workspace (galaxies registered in the store, the catalog
    # cache written) is done once here, as bench_app does, so the server starts on a served workspace
    from app.state import AppState

    AppState(root).map_frame()


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def run(args) -> dict:
    from playwright.sync_api import sync_playwright

    _register_dynamic_models()
    # bokeh.client's connection handles each incoming message one level deeper in its coroutines
    # (ClientConnection._next -> _handle_messages -> _next ...): a session that receives a few
    # thousand patches needs a deep stack
    sys.setrecursionlimit(200_000)
    threading.stack_size(512 * 2**20)
    tmp = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="bench_load_"))
    root = tmp / f"ws{args.n}"
    result: dict = {"n": args.n, "k": args.k, "seconds": args.seconds, "rate_per_s": args.rate,
                    "num_procs": args.num_procs, "loadavg_start": loadavg(), "cpus": os.cpu_count()}
    if not root.exists() or not any(root.iterdir()):
        t = time.perf_counter()
        build(root, args.n)
        result["build_s"] = round(time.perf_counter() - t, 1)
    log(f"workspace {root} ({args.n:,} galaxies)")
    proc, url = start_server(root, args.num_procs, args.server_log)
    poller = StorePoller(root)
    interval = 1.0 / args.rate
    tag = time.strftime("%H%M%S")  # this run's inspector names: a reused workspace's older votes are not counted
    result["inspectors"] = [f"chromium-{tag}"] + [f"light{i}-{tag}" for i in range(1, args.k)]
    try:
        t_up = wait_http(url)
        log(f"server up in {t_up:.1f} s: {url}")
        with sync_playwright() as p:
            browser, page, first_map = chromium_open(p, url, result["inspectors"][0])
            result["chromium_first_map_s"] = round(first_map, 1)
            time.sleep(2)
            result["memory_1_session"] = server_memory(proc)
            log(f"Chromium session up (first map {first_map:.1f} s); server {result['memory_1_session']}")
            clients = [LightClient(url, result["inspectors"][i], start_page=i, interval=interval, seed=i)
                       for i in range(1, args.k)]
            t = time.perf_counter()
            for c in clients:  # one after the other, as people arrive
                c.start()
                c.ready.wait(timeout=args.session_timeout)
                if not c.ready.is_set():
                    c.error = c.error or f"no selection shown within {args.session_timeout} s (tiles: {len(c.grid.data.tiles or []) if getattr(c, 'grid', None) else 'no grid'})"
            result["light_sessions_up_s"] = round(time.perf_counter() - t, 1)
            result["light_pull_s"] = [round(c.pull_s, 2) for c in clients]
            errors = {c.name: c.error for c in clients if c.error}
            if errors:
                result["errors"] = errors
                log(f"light client errors: {errors}")
            time.sleep(3)
            result["memory_k_sessions"] = server_memory(proc)
            log(f"{args.k} sessions up in {result['light_sessions_up_s']} s; server {result['memory_k_sessions']}")
            poller.poll_once()
            poller.start()
            rng = random.Random(0)
            t_end = time.perf_counter() + args.seconds
            for c in clients:
                c.until = t_end
                c.go.set()
            chrome: list[dict] = []
            while time.perf_counter() < t_end:
                t_next = time.perf_counter() + interval * rng.uniform(0.5, 1.5)
                rec = chromium_vote(page, rng)
                if rec is None:
                    log("Chromium: no focused unvoted tile within 60 s; stopping its votes")
                    break
                chrome.append(rec)
                time.sleep(max(0.0, t_next - time.perf_counter()))
            log(f"voting over: Chromium {len(chrome)} votes, light {[len(c.sent) for c in clients]}")
            time.sleep(args.settle)
            poller.stop_flag.set()
            poller.join(timeout=30)
            poller.poll_once()
            result["memory_after_voting"] = server_memory(proc)
            browser.close()
    finally:
        for c in locals().get("clients", []):
            c.close()
        stop_server(proc)
        if not args.keep and not args.workdir:
            shutil.rmtree(tmp, ignore_errors=True)
    result["loadavg_end"] = loadavg()

    def committed(name: str, recs: list[dict]) -> list[float]:
        return [1000 * (poller.seen[(name, r["id"])] - r["t_key"]) if (name, r["id"]) in poller.seen else None
                for r in recs]

    cname = result["inspectors"][0]
    sessions = {"chromium": {"kind": "chromium", "sent": len(chrome), "stored": poller.rows.get(cname, 0),
                             "key_to_caption_ms": stats([r["caption_ms"] for r in chrome]),
                             "captions_not_seen": sum(r["caption_ms"] is None for r in chrome),
                             "key_to_committed_ms": stats(committed(cname, chrome))}}
    for c in clients:
        sessions[c.name] = {"kind": "bokeh.client", "sent": len(c.sent), "stored": poller.rows.get(c.name, 0),
                            "key_to_caption_ms": stats([1000 * (r["t_caption"] - r["t_key"]) if r["t_caption"]
                                                        else None for r in c.sent]),
                            "captions_not_seen": sum(r["t_caption"] is None for r in c.sent),
                            "key_to_committed_ms": stats(committed(c.name, c.sent))}
    all_committed = committed(cname, chrome) + sum((committed(c.name, c.sent) for c in clients), [])
    light_caption = [1000 * (r["t_caption"] - r["t_key"]) for c in clients for r in c.sent if r["t_caption"]]
    sent = sum(s["sent"] for s in sessions.values())
    stored = sum(s["stored"] for s in sessions.values())
    m1, mk = result["memory_1_session"], result["memory_k_sessions"]
    result.update({
        "sessions": sessions,
        "chromium_key_to_caption_ms": sessions["chromium"]["key_to_caption_ms"],
        "light_key_to_caption_ms": stats(light_caption),
        "all_key_to_committed_ms": stats(all_committed),
        "votes_sent": sent, "votes_stored": stored, "votes_lost": sent - stored,
        "rss_per_extra_session_mb": round((mk["rss_mb"] - m1["rss_mb"]) / max(args.k - 1, 1), 1),
        "pss_per_extra_session_mb": round((mk["pss_mb"] - m1["pss_mb"]) / max(args.k - 1, 1), 1),
        "store_poll_ms": stats(poller.poll_ms),
    })
    return result


def table(r: dict) -> str:
    def f(s: dict) -> str:
        return "—" if not s["n"] else f"{s['median']:.0f} / {s['p95']:.0f} / {s['max']:.0f} (n={s['n']})"

    lines = [f"bench_load: {r['n']:,} galaxies, K = {r['k']} sessions (1 Chromium + {r['k'] - 1} bokeh.client), "
             f"{r['seconds']} s at {r['rate_per_s']} votes/s per session, --num-procs {r['num_procs']}",
             f"load average at start {r['loadavg_start']}, at end {r['loadavg_end']} ({r['cpus']} CPUs)", "",
             f"{'session':<10} {'sent':>5} {'stored':>6} {'key -> caption ms med/p95/max':>34} "
             f"{'key -> committed ms med/p95/max':>34}"]
    for name, s in r["sessions"].items():
        lines.append(f"{name:<10} {s['sent']:>5} {s['stored']:>6} {f(s['key_to_caption_ms']):>34} "
                     f"{f(s['key_to_committed_ms']):>34}")
    m1, mk, ma = r["memory_1_session"], r["memory_k_sessions"], r["memory_after_voting"]
    lines += ["",
              f"Chromium key -> caption (in page): {f(r['chromium_key_to_caption_ms'])}",
              f"light clients key -> caption: {f(r['light_key_to_caption_ms'])}",
              f"every session key -> committed row: {f(r['all_key_to_committed_ms'])} "
              f"(store polled every 0.1 s; one poll {f(r['store_poll_ms'])} ms)",
              f"votes sent {r['votes_sent']}, stored {r['votes_stored']}, lost {r['votes_lost']}",
              f"server RSS {m1['rss_mb']:.0f} MB at 1 session, {mk['rss_mb']:.0f} MB at {r['k']}, "
              f"{ma['rss_mb']:.0f} MB after voting: {r['rss_per_extra_session_mb']} MB per extra session "
              f"(PSS {m1['pss_mb']:.0f} -> {mk['pss_mb']:.0f} MB: {r['pss_per_extra_session_mb']} MB; "
              f"{mk['processes']} processes)",
              f"Chromium first map {r.get('chromium_first_map_s')} s; {r['k'] - 1} light sessions up in "
              f"{r.get('light_sessions_up_s')} s (pull_session each: {r.get('light_pull_s')})"]
    if r.get("errors"):
        lines.append(f"ERRORS: {r['errors']}")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=10_000, help="galaxies in the workspace")
    ap.add_argument("--k", type=int, default=8, help="sessions: 1 Chromium + K-1 light clients")
    ap.add_argument("--seconds", type=float, default=120, help="how long the sessions vote")
    ap.add_argument("--rate", type=float, default=0.67, help="votes per second per session (mean)")
    ap.add_argument("--num-procs", type=int, default=1, help="server processes (resx serve --num-procs)")
    ap.add_argument("--session-timeout", type=float, default=300, help="seconds for a light session to show its selection")
    ap.add_argument("--server-log", default=None, help="write the server's output here")
    ap.add_argument("--settle", type=float, default=5.0, help="seconds after the last vote before counting rows")
    ap.add_argument("--workdir", default=None, help="build (or reuse) the workspace here and keep it")
    ap.add_argument("--keep", action="store_true", help="keep the temporary workspace")
    ap.add_argument("--out", default="bench_load.json")
    ap.add_argument("--quick", action="store_true", help="a short check: 2,000 galaxies, K = 3, 20 s")
    args = ap.parse_args()
    if args.quick:
        args.n, args.k, args.seconds = min(args.n, 2_000), min(args.k, 3), min(args.seconds, 20)
    if not Path(CHROMIUM).exists():
        print(f"no Chromium at {CHROMIUM}", file=sys.stderr)
        return 2
    r = run(args)
    Path(args.out).write_text(json.dumps(r, indent=1))
    print()
    print(table(r))
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
