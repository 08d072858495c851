import numpy as np
import pytest
from astropy.table import Table

from core.workspace.config import default_config, read_config, write_config
from core.workspace.workspace import Workspace, WorkspaceError


def test_config_round_trip_keeps_none_and_defaults(tmp_path):
    cfg = default_config()
    cfg["cuts"]["hmag_max"] = None
    cfg["prep"]["cutout"] = 64
    write_config(cfg, tmp_path / "c.toml")
    back = read_config(tmp_path / "c.toml")
    assert back["cuts"]["hmag_max"] is None
    assert back["prep"]["cutout"] == 64
    assert back["prep"]["thresh"] == 0.75


def test_missing_workspace_says_how_to_build_it(tmp_path):
    with pytest.raises(WorkspaceError, match="resx demo"):
        Workspace.open(tmp_path / "nope")


def test_corrupt_config_is_a_workspace_error(tmp_path):
    (tmp_path / "config.toml").write_text("this is [not toml")
    with pytest.raises(WorkspaceError, match="cannot be read"):
        Workspace.open(tmp_path)


def test_catalog_and_active_runs(tmp_path):
    ws = Workspace.create(tmp_path / "ws", {"prep": {"cutout": 64}})
    t = Table({"id": ["a", "b"], "spf": np.array([1.0, 2.0])})
    ws.write_catalog(t)
    ws2 = Workspace.open(tmp_path / "ws")
    assert ws2.config["prep"]["cutout"] == 64
    assert list(ws2.read_catalog()["id"]) == ["a", "b"]
    assert ws2.active_run("cnn") is None
    ws2.set_active_run("cnn", "run1")
    assert Workspace.open(tmp_path / "ws").active_run("cnn") == "run1"
    with pytest.raises(WorkspaceError, match="already a workspace"):
        Workspace.create(tmp_path / "ws")


def test_catalog_keeps_nan_and_empty_strings_unmasked(tmp_path):
    ws = Workspace.create(tmp_path / "ws")
    ws.write_catalog(Table({"id": ["a", "b"], "msg": ["", "bad"], "spf": np.array([np.nan, 1.0])}))
    t = ws.read_catalog()
    assert not t.has_masked_values
    assert t["msg"][0] == "" and np.isnan(t["spf"][0])


# ---------------------------------------------------------------------------------------------
# active.json and other shared JSON: locked, re-read, atomically replaced
# ---------------------------------------------------------------------------------------------
def _set_active_many(root: str, model: str, n: int, go) -> tuple[int, int]:
    """Set ``model``'s active run n times; count writes lost (own key changed back) and corrupt reads."""
    import json

    ws = Workspace.open(root)
    go.wait()
    lost = corrupt = 0
    for i in range(n):
        ws.set_active_run(model, f"{model}-{i}")
        try:
            seen = json.loads((ws.root / Workspace.ACTIVE).read_text())
        except ValueError:
            corrupt += 1
            continue
        lost += seen.get(model) != f"{model}-{i}"
    return lost, corrupt


def _increment_many(path: str, n: int, go) -> None:
    from core.workspace.sharedfile import update_json

    go.wait()
    for _ in range(n):
        update_json(path, lambda d: {**d, "n": d.get("n", 0) + 1}, default={})


def test_concurrent_active_json_writers_lose_nothing(tmp_path):
    import multiprocessing

    ws = Workspace.create(tmp_path / "ws")
    ctx = multiprocessing.get_context("spawn")
    with ctx.Manager() as manager:
        go = manager.Event()
        with ctx.Pool(2) as pool:
            jobs = [pool.apply_async(_set_active_many, (str(ws.root), m, 300, go)) for m in ("cnn", "cvae")]
            go.set()
            results = [j.get(timeout=300) for j in jobs]
    assert results == [(0, 0), (0, 0)]  # no write undone by the other writer, no half-written file
    assert ws.active_runs() == {"cnn": "cnn-299", "cvae": "cvae-299"}
    assert not list(ws.root.glob("*.tmp"))  # every temporary file was moved into place


def test_concurrent_json_updates_are_serialised(tmp_path):
    import multiprocessing

    from core.workspace.sharedfile import read_json

    path = tmp_path / "shared.json"
    ctx = multiprocessing.get_context("spawn")
    with ctx.Manager() as manager:
        go = manager.Event()
        with ctx.Pool(4) as pool:
            jobs = [pool.apply_async(_increment_many, (str(path), 150, go)) for _ in range(4)]
            go.set()
            for j in jobs:
                j.get(timeout=300)
    assert read_json(path) == {"n": 600}  # 600 read-change-writes, none lost


def test_corrupt_active_json_reads_as_no_active_run(tmp_path):
    ws = Workspace.create(tmp_path / "ws")
    (ws.root / Workspace.ACTIVE).write_text('{"cnn": "run')
    assert ws.active_runs() == {"cnn": None, "cvae": None}
    ws.set_active_run("cvae", "v1")
    assert ws.active_runs() == {"cnn": None, "cvae": "v1"}
