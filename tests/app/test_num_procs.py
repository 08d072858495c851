"""Several server processes on one workspace: `resx serve --num-procs N`, votes shared through the store.

Each process holds its own copy of the map data (core.workspace.mapdata) and they share the vote
store (SQLite in WAL mode, or PostgreSQL — both are tested): a session in one process sees a vote cast in another at its next
poll (the dashboard polls every app.main.POLL_MS).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(PROJECT / "tests"))

pytestmark = pytest.mark.slow

#: A session in another process: opens the workspace, votes row 3 as "remote", then waits until it
#: sees the test's vote on row 5 through its polls (the dashboard's poll, every POLL_MS), and says so.
REMOTE = """
import sys, time
from app.main import POLL_MS
from app.state import AppState
st = AppState(sys.argv[1])
st.inspector = "remote"
st.vote([3], "Core")
print("voted", flush=True)
deadline = time.monotonic() + 120
while time.monotonic() < deadline:
    st.poll()
    if st.consensus.loc["G0000005", "n_votes"] >= 1:
        print("seen", st.consensus.loc["G0000005", "Peculiar"], flush=True)
        break
    time.sleep(POLL_MS / 1000)
"""


@pytest.fixture(params=["sqlite", "postgresql"])
def ws_path(request, tmp_path):
    """A 40-galaxy workspace whose vote store is its SQLite file or a fresh PostgreSQL database."""
    from app_workspace import make_workspace

    from core.workspace.workspace import Workspace

    root = make_workspace(tmp_path / "ws", n=40).root
    if request.param == "postgresql":
        from tests.pg_server import pg_database

        url, drop = pg_database(request.getfixturevalue("pg_server"))
        request.addfinalizer(drop)
        ws = Workspace.open(root)
        ws.config["votes"]["database_url"] = url
        ws.save_config()
        assert Workspace.open(root).votes_url == url
    return root


def test_sessions_in_two_processes_see_each_others_votes(ws_path):
    from app.main import POLL_MS
    from app.state import AppState

    state = AppState(ws_path)
    state.inspector = "ann"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(PROJECT))
    remote = subprocess.Popen([sys.executable, "-c", REMOTE, str(ws_path)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, cwd=PROJECT, env=env)
    try:
        assert remote.stdout.readline().strip() == "voted", remote.stderr.read()
        before = state.votes_version
        state.poll()  # the next poll of this process's session
        assert state.votes_version == before + 1
        assert state.consensus.loc["G0000003", "n_votes"] == 1 and state.consensus.loc["G0000003", "Core"] == 1
        state.vote([5], "Peculiar")
        t0 = time.monotonic()
        line = remote.stdout.readline().strip()
        assert line == "seen 1", remote.stderr.read()
        # the other process saw it at one of its polls (generous bound for a loaded CI machine)
        assert time.monotonic() - t0 < 60 * POLL_MS / 1000
    finally:
        remote.kill()
        remote.wait()
    assert remote.returncode is not None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _children(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry))
    return out


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_resx_serve_num_procs_starts_that_many_server_processes(ws_path, tmp_path):
    from core.cli.main import build_parser

    args = build_parser().parse_args(["serve", str(ws_path), "--num-procs", "2"])
    assert args.num_procs == 2
    assert build_parser().parse_args(["serve"]).num_procs == 1
    port = _free_port()
    log = open(tmp_path / "serve.log", "wb")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    proc = subprocess.Popen([sys.executable, "-m", "core", "serve", str(ws_path), "--port", str(port),
                             "--num-procs", "2"], stdout=log, stderr=subprocess.STDOUT, cwd=PROJECT, env=env,
                            start_new_session=True)  # its own process group: stopped as one below
    try:
        deadline = time.monotonic() + 180
        page = None
        while time.monotonic() < deadline and page is None:
            if proc.poll() is not None:
                pytest.fail("resx serve exited: " + (tmp_path / "serve.log").read_text()[-2000:])
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/app", timeout=60) as r:
                    page = r.read().decode()
            except OSError:
                time.sleep(0.5)
        assert page is not None and "bokeh" in page.lower()
        panel = _children(proc.pid)  # resx -> panel serve -> 2 forked server processes
        assert len(panel) == 1
        assert len(_children(panel[0])) == 2
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()
    shutil.rmtree(ws_path / "cache", ignore_errors=True)
