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
