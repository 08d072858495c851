"""Dashboard benchmarks (not tests): start-up, lasso -> gallery at 10⁴ and 10⁶ points, 100 UI votes.

    .venv/bin/python tests/benchmarks/bench_app.py [--sizes 10000 1000000] [--votes 100] [--no-browser]

Each number comes with a baseline measured in the same run:

* server start -> first map render (Chromium), against the same for a one-curve Panel app;
* lasso -> gallery page ready, in the server process (point-in-polygon on every point + sort +
  48 tiles read and drawn), against a plain numpy bounding-box cut of the same points; and the
  same through the browser (mouse lasso -> tiles shown), against the in-process time;
* 100 keyboard votes through the UI until all are in the store, against 100 direct
  ``VoteStore.cast`` calls;
* a second and third browser session's first map on the same server, and the server's resident
  memory with 1 and with 3 sessions (memory per extra session).

The in-process step runs first in this script: it registers the galaxies in the vote store and
writes the workspace's catalog cache (``cache/``), as the first session on a workspace does, so
"server start" is a start on a workspace that has been served before.

The 10⁶ workspace's stamp store is created empty (stamps read as zeros, so stamp decoding is not
in that number); the 10⁴ one has real 50 x 50 residual stamps.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

PROJECT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(PROJECT), str(PROJECT / "tests")]
CHROMIUM = "/usr/bin/chromium"
CHROME_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
POLY = ([-7.0, -1.5, -1.5, -7.0], [-3.0, -3.0, 3.0, 3.0])  # around the "Clean" cluster


def build(root: Path, n: int) -> Path:
    from app_workspace import make_workspace, write_stamps

    from core.labels import CLASSES

    t = time.perf_counter()
    if n <= 20_000:
        ws = make_workspace(root, n=n, size=50, stamps=False)
        classes = np.array([CLASSES.index(c) for c in ws.read_catalog()["catalog_class"]])
        write_stamps(ws, classes, size=50)
    else:
        make_workspace(root, n=n, size=50, stamps="empty")
    print(f"  built a {n:,}-galaxy workspace in {time.perf_counter() - t:.1f} s")
    return root


def ms(t0: float) -> float:
    return 1000 * (time.perf_counter() - t0)


def bench_in_process(root: Path, n: int) -> float:
    from app.state import AppState
    from app.views.gallery import GalleryView

    t = time.perf_counter()
    st = AppState(root)
    t_open = ms(t)
    gallery = GalleryView(st)
    t = time.perf_counter()
    frame = st.map_frame()
    t_frame = ms(t)
    rss0 = rss_mb(os.getpid())
    t = time.perf_counter()
    st2 = AppState(root)  # a second session of this process: shares the map data
    st2.map_frame()
    t_second = ms(t)
    print(f"  n = {n:,}: a second session's state + map table {t_second:.1f} ms = {t_second / (t_open + t_frame):.4f} x "
          f"the first's ({t_open + t_frame:.0f} ms); +{rss_mb(os.getpid()) - rss0:.1f} MB resident")
    del st2
    x, y = frame["x"].to_numpy(), frame["y"].to_numpy()
    from matplotlib.path import Path as MplPath

    from app.selection import points_in_polygon

    reps = 5
    t = time.perf_counter()
    for _ in range(reps):
        inside = points_in_polygon(x, y, *POLY)
    t_pip = ms(t) / reps
    t = time.perf_counter()
    for _ in range(reps):
        naive = MplPath(np.column_stack(POLY)).contains_points(np.column_stack([x, y]))
    t_naive = ms(t) / reps
    assert (inside == naive).all()
    from app.selection import PointIndex

    t = time.perf_counter()
    index = PointIndex(x, y)
    t_build = ms(t)
    t = time.perf_counter()
    for _ in range(reps):
        indexed = index.in_polygon(*POLY)
    t_index = ms(t) / reps
    assert (indexed == inside).all()
    st.select_polygon([1.5, 7, 7, 1.5], [-3, -3, 3, 3])  # warm the caches on another cluster
    st.clear_selection()
    t = time.perf_counter()
    rows = st.select_polygon(*POLY)  # the gallery redraws its first page on the selection change
    t_sel_gallery = ms(t)
    assert len(gallery.grid.tiles) == min(48, len(rows))
    t = time.perf_counter()
    gallery.sort_by = "SPF (high first)"
    t_sort = ms(t)
    print(f"  n = {n:,}: open state {t_open:.0f} ms, map table {t_frame:.0f} ms, {len(rows):,} selected")
    print(f"    point-in-polygon: {t_pip:.1f} ms = {t_pip / t_naive:.2f} x Path.contains_points on every point "
          f"({t_naive:.1f} ms)")
    print(f"    grid index (PointIndex): {t_index:.1f} ms = {t_index / t_pip:.3f} x points_in_polygon "
          f"({index.last_tested:,} points tested one by one; index built once per map in {t_build:.0f} ms)")
    print(f"    lasso -> gallery page ready (48 tiles): {t_sel_gallery:.0f} ms = {t_sel_gallery / t_pip:.1f} x the "
          f"point-in-polygon alone; re-sort by SPF + redraw {t_sort:.0f} ms")
    return t_sel_gallery


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(app: Path, args: list[str]):
    port = free_port()
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    proc = subprocess.Popen([sys.executable, "-m", "panel", "serve", str(app), "--port", str(port), "--address",
                             "127.0.0.1", "--allow-websocket-origin", f"127.0.0.1:{port}", *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=PROJECT, env=env)
    return proc, f"http://127.0.0.1:{port}/{app.stem}"


def first_render(browser, app: Path, args: list[str], wait: str) -> tuple[float, object, object]:
    t = time.perf_counter()
    proc, url = serve(app, args)
    page = browser.new_context(viewport={"width": 1500, "height": 1100}).new_page()
    while True:
        try:
            page.goto(url, timeout=300_000, wait_until="commit")
            break
        except Exception:
            if time.perf_counter() - t > 120:
                raise
            time.sleep(0.2)
    page.wait_for_selector(wait, timeout=300_000)
    return ms(t), proc, page


def stop(proc) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


def rss_mb(pid: int) -> float:
    """Resident memory of a process (VmRSS), MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def bench_browser(root: Path, n: int, tmp: Path, n_votes: int, baseline_ms: float, in_process_ms: float,
                  extra_sessions: int = 2) -> None:
    from playwright.sync_api import sync_playwright

    from core.votes.store import open_store

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROME_ARGS)
        t_start, proc, page = first_render(browser, PROJECT / "app", ["--args", "--workspace", str(root)], "canvas")
        first_url = page.url
        page.wait_for_selector(".resx-grid", timeout=300_000)
        print(f"  n = {n:,}: server start -> first map render {t_start:.0f} ms = {t_start / baseline_ms:.2f} x "
              f"a one-curve Panel app ({baseline_ms:.0f} ms)")
        time.sleep(2)
        boxes = [c.bounding_box() for c in page.locator("canvas").all()]
        box = max((b for b in boxes if b), key=lambda b: b["width"] * b["height"])
        pts = [(0.12, 0.2), (0.4, 0.2), (0.4, 0.75), (0.12, 0.75)]
        pts = [(box["x"] + box["width"] * fx, box["y"] + box["height"] * fy) for fx, fy in pts]
        page.mouse.move(*pts[0])
        page.mouse.down()
        for q in pts[1:] + [pts[0]]:
            page.mouse.move(*q, steps=4)
        t = time.perf_counter()
        page.mouse.up()
        page.wait_for_selector(".resx-tile img", timeout=300_000)
        imgs = page.locator(".resx-tile img")
        while not imgs.evaluate_all("els => els.length > 0 && els.every(i => i.complete && i.naturalWidth > 0)"):
            time.sleep(0.02)
        t_lasso = ms(t)
        print(f"    mouse lasso -> gallery shown: {t_lasso:.0f} ms = {t_lasso / in_process_ms:.1f} x the in-process "
              f"lasso -> page ({in_process_ms:.0f} ms)")
        if n_votes:
            page.get_by_placeholder("enter your name once").fill("bench")
            page.get_by_placeholder("enter your name once").press("Enter")
            time.sleep(1)
            page.locator(".resx-hint").first.click()
            store = open_store(root)
            n_selected = int(page.locator(".resx-tile").count())
            pages_text = page.locator(".resx-nav").first.inner_text() if page.locator(".resx-nav").count() else ""

            def arrived():  # every vote the bench inspector cast, re-votes included
                h = store.history()
                return h[(h["inspector"] == "bench") & (h["source"] == "ui")]

            t = time.perf_counter()
            for i in range(n_votes):
                page.keyboard.press(str(1 + i % 5))
                if (i + 1) % 48 == 0:  # the focus stops at the page's last tile: next page
                    page.get_by_role("button", name="next ▶").click()
                    time.sleep(0.3)
                    page.locator(".resx-hint").first.click()
            while len(arrived()) < n_votes and time.perf_counter() - t < 300:
                time.sleep(0.2)
            t_ui = ms(t)
            mine = arrived()
            got, distinct = len(mine), mine["id"].nunique()
            print(f"    ({n_selected} tiles on the first page; pager: {pages_text!r}; {got} votes arrived "
                  f"on {distinct} distinct galaxies)")
            ids = list(mine["id"].unique()[:n_votes]) or ["G0000000"]
            store.add_inspector("direct")
            t = time.perf_counter()
            for i in range(n_votes):
                store.cast([ids[i % len(ids)]], "direct", "Clean")
            t_direct = ms(t)
            print(f"    {n_votes} keyboard votes through the UI: {t_ui:.0f} ms ({got} stored; "
                  f"{t_ui / n_votes:.0f} ms per vote) = {t_ui / t_direct:.1f} x {n_votes} direct "
                  f"VoteStore.cast calls ({t_direct:.0f} ms)")
            store.close()
        rss1 = rss_mb(proc.pid)
        extra, t_second = [], []
        for _ in range(extra_sessions):  # more sessions of the same server: each one's first map
            t = time.perf_counter()
            other = browser.new_context(viewport={"width": 1500, "height": 1100}).new_page()
            other.goto(first_url, timeout=300_000, wait_until="commit")
            other.wait_for_selector("canvas", timeout=300_000)
            other.wait_for_selector(".resx-grid", timeout=300_000)
            t_second.append(ms(t))
            extra.append(other)
        if extra:
            time.sleep(2)
            rss_k = rss_mb(proc.pid)
            print(f"    another session's first map: {', '.join(f'{v:.0f}' for v in t_second)} ms "
                  f"(sessions 2..{1 + len(extra)})")
            print(f"    server RSS {rss1:.0f} MB with 1 session, {rss_k:.0f} MB with {1 + len(extra)}: "
                  f"{(rss_k - rss1) / len(extra):.1f} MB per extra session")
            for other in extra:
                other.context.close()
        stop(proc)
        browser.close()


def baseline_start(tmp: Path) -> float:
    from playwright.sync_api import sync_playwright

    app = tmp / "hello.py"
    app.write_text("import holoviews as hv, panel as pn\nhv.extension('bokeh')\n"
                   "pn.panel(hv.Curve([1, 2, 3])).servable()\n")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROME_ARGS)
        t, proc, _ = first_render(browser, app, [], "canvas")
        stop(proc)
        browser.close()
    return t


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 1_000_000])
    ap.add_argument("--votes", type=int, default=100, help="UI votes to time at the smallest size (0: skip)")
    ap.add_argument("--no-browser", action="store_true", help="only the in-process numbers")
    args = ap.parse_args()
    browser = not args.no_browser and Path(CHROMIUM).exists()
    tmp = Path(tempfile.mkdtemp(prefix="bench_app_"))
    try:
        base = baseline_start(tmp) if browser else None
        for i, n in enumerate(sorted(args.sizes)):
            print(f"\n== {n:,} galaxies ==")
            root = build(tmp / f"ws{n}", n)
            t_in = bench_in_process(root, n)
            if browser:
                bench_browser(root, n, tmp, args.votes if i == 0 else 0, base, t_in)
            shutil.rmtree(root, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
