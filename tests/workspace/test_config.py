"""The configuration schema: validation, schema versions and migrations (core/workspace/config.py)."""

import logging
import tomllib

import pytest
import tomli_w

from core.workspace.config import (
    DEFAULT_CONFIG,
    MIGRATIONS,
    SCHEMA,
    SCHEMA_VERSION,
    ConfigError,
    default_config,
    load_config,
    problems,
    read_config,
    write_config,
)
from core.workspace.workspace import Workspace

#: DEFAULT_CONFIG as the code wrote it before the schema existed (schema 1): no schema_version,
#: no [app] section, the dashboard's blind mode under [votes], None written as "none".
OLD_DEFAULT_CONFIG = {
    "catalog": {"columns": {}},
    "cuts": {"hmag_max": 24.5, "logmass_min": 9.5, "z_min": 1.0, "z_max": 3.0, "photflag": 0},
    "prep": {"kernel_radius": 5.0, "thresh": 0.75, "minarea": 7, "deblend_nthresh": 32, "deblend_cont": 0.005,
             "goi_search_radius": 3.0, "sky_block": 5, "cutout": 50, "seed": 0, "chunk": 256,
             "rff_absolute": False},
    "scaling": {"method": "maxabs", "per": "stamp"},
    "split": {"test_fraction": 0.2, "seed": 42},
    "augment": {"per_class": 5000, "rotation_step_deg": 45, "flip": True, "seed": 42},
    "models": {"input_size": "none", "filters": [32, 64, 128], "kernel_size": 3, "latent_dim": 512,
               "noise_stddev": 0.02, "dropout": 0.5, "kl_weight": 1.0, "kl_reduction": "mean",
               "recon_reduction": "sum", "kernel_initializer": "he_normal", "log_var_bias": -6.0,
               "output_init": "zeros", "kl_warmup": 0.3333333333333333},
    "train": {"epochs": 100, "batch_size": 32, "learning_rate": 1.0e-4, "lr_drop_every": 0.3333333333333333,
              "lr_factor": 0.5, "per_class": "none", "seed": 42, "deterministic": False},
    "embed": {"n_components": 3, "k_max": 15, "cluster_dims": 2, "svc_gamma": 0.7, "svc_c": 1.0,
              "svc_kernel_cnn": "rbf", "svc_kernel_cvae": "linear", "svc_target": "labels",
              "svc_max_train": 5000, "grid": 300, "batch_size": 256, "dask_threshold": 50000, "align": True,
              "seed": 0},
    "votes": {"min_votes": 3, "fraction": 2 / 3, "blind": True, "database_url": "none", "experts": []},
}


def old_workspace(root, **changes) -> str:
    """A workspace folder whose config.toml is a schema-1 file (``changes``: {"section.key": value})."""
    cfg = {s: dict(body) for s, body in OLD_DEFAULT_CONFIG.items()}
    for dotted, value in changes.items():
        section, key = dotted.split(".")
        cfg.setdefault(section, {})[key] = value
    root.mkdir(parents=True)
    (root / "runs").mkdir()
    text = tomli_w.dumps(cfg)
    (root / "config.toml").write_text(text)
    return text


# -- validation -------------------------------------------------------------------------------
def test_unknown_key_names_the_file_and_the_nearest_valid_one(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text("[prep]\ncutot = 64\n")
    with pytest.raises(ConfigError) as err:
        read_config(path)
    assert str(err.value) == f"{path}: unknown key 'prep.cutot'; did you mean 'prep.cutout'?"
    assert err.value.source == str(path)


def test_a_key_in_the_wrong_section_or_section_misspelt_is_pointed_to_the_right_place():
    found = problems({"votes": {"blind": False}, "pep": {"cutout": 50}, "cutout": 50})
    assert found == [
        "unknown key 'votes.blind'; did you mean 'app.blind'?",
        "unknown section [pep]; did you mean [prep]?",
        "unknown key 'cutout'; did you mean 'prep.cutout' (under [prep])?",
    ]
    assert "the keys of [prep] are kernel_radius, thresh" in problems({"prep": {"zzzz": 1}})[0]


def test_mistyped_values_are_named_with_the_expected_type(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text('[prep]\ncutout = "fifty"\n')
    with pytest.raises(ConfigError, match=r"prep\.cutout must be an integer, not 'fifty'$"):
        read_config(path)
    assert problems({"prep": {"minarea": True}}) == ["prep.minarea must be an integer, not true"]  # bool is no int
    assert problems({"prep": {"rff_absolute": 1}}) == ["prep.rff_absolute must be true or false, not 1"]
    assert problems({"prep": {"cutout": 50.0}}) == ["prep.cutout must be an integer, not 50.0"]
    assert problems({"cuts": {"hmag_max": "faint"}}) == ['cuts.hmag_max must be a number or "none", not \'faint\'']
    assert problems({"models": {"filters": [8, "16"]}}) == ["models.filters must be a list of integers, not [8, '16']"]
    assert problems({"catalog": {"columns": {"hmag": 3}}}) == ["catalog.columns.hmag must be a string, not 3"]
    assert problems({"prep": 5}) == ["[prep] must be a table of settings, not 5"]


def test_valid_values_pass_int_for_float_none_where_optional_and_a_free_column_mapping(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text('[prep]\nthresh = 1\n[cuts]\nhmag_max = "none"\n'
                    '[catalog.columns]\nhmag = "H_F160W"\nanything = "goes"\n')
    cfg = read_config(path)
    assert cfg["prep"]["thresh"] == 1 and cfg["cuts"]["hmag_max"] is None
    assert cfg["catalog"]["columns"] == {"hmag": "H_F160W", "anything": "goes"}
    assert problems({"prep": {"cutout": None}}) == ['prep.cutout must be an integer, not "none"']


def test_fixed_choices_are_enforced_with_a_suggestion():
    assert problems({"scaling": {"method": "maxab"}}) == [
        "scaling.method must be one of 'maxabs', 'standard', 'robust', 'minmax', 'power', 'quantile', "
        "not 'maxab' (did you mean 'maxabs'?)"]
    for dotted, bad in [("scaling.per", "galaxy"), ("models.kl_reduction", "max"), ("models.recon_reduction", "avg"),
                        ("embed.svc_target", "clusters"), ("embed.svc_kernel_cnn", "gauss"),
                        ("embed.svc_kernel_cvae", "gauss")]:
        section, key = dotted.split(".")
        assert len(problems({section: {key: bad}})) == 1, dotted
        assert problems({section: {key: SCHEMA[section][key].choices[-1]}}) == []


def test_every_problem_is_reported_at_once(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text('[prep]\ncutot = 64\nthresh = "high"\n[scaling]\nmethod = "maxab"\n[embedd]\ngrid = 10\n')
    with pytest.raises(ConfigError) as err:
        read_config(path)
    assert len(err.value.problems) == 4
    text = str(err.value)
    assert text.startswith(f"{path} has 4 problems:\n")
    for part in ("'prep.cutot'; did you mean 'prep.cutout'?", "prep.thresh must be a number, not 'high'",
                 "did you mean 'maxabs'?", "unknown section [embedd]; did you mean [embed]?"):
        assert part in text


def test_workspace_open_and_create_refuse_a_bad_config(tmp_path):
    ws = Workspace.create(tmp_path / "ws")
    (ws.root / "config.toml").write_text(f"schema_version = {SCHEMA_VERSION}\n[train]\nepoch = 3\n")
    with pytest.raises(ConfigError, match="did you mean 'train.epochs'"):
        Workspace.open(ws.root)
    with pytest.raises(ConfigError, match="unknown key 'prep.cutot'"):
        Workspace.create(tmp_path / "new", {"prep": {"cutot": 64}})
    assert not (tmp_path / "new").exists()


def test_write_config_refuses_an_invalid_config_and_writes_nothing(tmp_path):
    path = tmp_path / "config.toml"
    with pytest.raises(ConfigError, match="prep.cutout must be an integer"):
        write_config({"prep": {"cutout": "big"}}, path)
    assert list(tmp_path.iterdir()) == []
    write_config(default_config(), path)
    assert tomllib.loads(path.read_text())["schema_version"] == SCHEMA_VERSION
    assert [p.name for p in tmp_path.iterdir()] == ["config.toml"]  # no temporary file left


def test_cli_ingest_config_with_a_typo_names_the_key(tmp_path, capsys):
    from core.cli.main import main

    over = tmp_path / "over.toml"
    over.write_text("[cuts]\nhmag_mx = 25.0\n")
    assert main(["ingest", str(tmp_path / "nosuchsource"), str(tmp_path / "ws"), "--config", str(over)]) != 0
    err = capsys.readouterr().err
    assert f"{over}: unknown key 'cuts.hmag_mx'; did you mean 'cuts.hmag_max'?" in err
    assert not (tmp_path / "ws").exists()


# -- the schema covers what the code reads ---------------------------------------------------
def test_every_key_the_code_reads_is_declared_with_a_valid_default():
    read_by_code = {
        "app": ["blind", "retrain_epochs", "leads", "stretch", "stretch_limit", "bulk_confirm", "cutout_url"],  # app/
        "votes": ["min_votes", "fraction", "database_url", "experts"],
        "embed": ["n_components", "k_max", "cluster_dims", "svc_gamma", "svc_c", "svc_kernel_cnn",
                  "svc_kernel_cvae", "svc_target", "svc_max_train", "grid", "batch_size", "dask_threshold",
                  "align", "seed"],
        "train": ["epochs", "batch_size", "learning_rate", "lr_drop_every", "lr_factor", "per_class", "seed",
                  "deterministic"],
        "augment": ["per_class", "rotation_step_deg", "flip"],
        "split": ["test_fraction", "seed"],
        "scaling": ["method", "per"],
        "prep": ["kernel_radius", "thresh", "minarea", "deblend_nthresh", "deblend_cont", "goi_search_radius",
                 "sky_block", "sky_background_box", "seam_max", "cutout", "cutout_size", "cutout_unit",
                 "pixel_scale", "goi_outside_max", "goi_fill_max", "seed", "chunk", "rff_absolute"],
        "cuts": ["hmag_max", "logmass_min", "z_min", "z_max", "photflag"],
        "catalog": ["columns", "goi_radius"],
    }
    cfg = default_config()
    for section, keys in read_by_code.items():
        for key in keys:
            assert key in cfg[section], f"{section}.{key}"
            assert SCHEMA[section][key].doc, f"{section}.{key} has no doc"
    assert cfg["app"] == {"blind": True, "retrain_epochs": 10, "leads": [], "stretch": "asinh",
                          "stretch_limit": 5.0, "bulk_confirm": 50, "cutout_url": ""}
    assert "blind" not in cfg["votes"]  # one place: app.blind
    assert problems(cfg) == []  # every default has its declared type and is among its choices
    from core.learn.models import DEFAULTS

    assert {k: v for k, v in DEFAULTS.items() if k not in ("input_size", "filters")} == {
        k: v for k, v in DEFAULT_CONFIG["models"].items() if k not in ("input_size", "filters")}


# -- schema versions and migrations ------------------------------------------------------------
def test_a_schema_1_workspace_is_migrated_once_says_what_changed_and_round_trips(tmp_path, caplog):
    root = tmp_path / "ws"
    original = old_workspace(root, **{"votes.blind": False, "prep.cutout": 64, "votes.experts": ["boss"]})
    assert "schema_version" not in original and "[app]" not in original and 'database_url = "none"' in original
    with caplog.at_level(logging.WARNING, logger="core.workspace.workspace"):
        ws = Workspace.open(root)
    (msg,) = [r.getMessage() for r in caplog.records]
    assert f"config.toml is schema 1; migrated to schema {SCHEMA_VERSION} and rewritten" in msg
    assert "votes.blind -> app.blind (= false)" in msg and "new section [app]" in msg
    # schema 3: what the workspace ran with is kept, and the message says so
    assert "prep.rff_absolute = false kept; the default is now true" in msg
    assert "prep.cutout_unit = 'px', prep.cutout_size = 64 (the native cutout" in msg
    # the settings it ran with are kept; the dashboard's blind mode moved, not reset to the default
    assert ws.config["app"] == {**DEFAULT_CONFIG["app"], "blind": False}
    assert "blind" not in ws.config["votes"] and ws.config["votes"]["experts"] == ["boss"]
    assert ws.config["prep"]["cutout"] == 64 and ws.config["models"]["input_size"] is None
    assert (ws.config["prep"]["cutout_unit"], ws.config["prep"]["cutout_size"]) == ("px", 64)
    assert ws.config["prep"]["rff_absolute"] is False and ws.config["prep"]["sky_background_box"] == 0
    assert ws.config["votes"]["database_url"] is None and ws.votes_url.startswith("sqlite:///")
    # written back once, with its version; the original is kept beside it
    written = tomllib.loads((root / "config.toml").read_text())
    assert written["schema_version"] == SCHEMA_VERSION and written["app"]["blind"] is False
    assert (root / "config.v1.toml").read_text() == original
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="core.workspace.workspace"):
        again = Workspace.open(root)
    assert caplog.records == [] and again.config == ws.config
    assert read_config(root / "config.toml") == ws.config
    assert load_config(root / "config.toml").changes == []


def test_read_config_migrates_a_schema_1_file_in_memory_only(tmp_path):
    root = tmp_path / "run"
    original = old_workspace(root)
    loaded = load_config(root / "config.toml")
    assert loaded.version == 1 and loaded.migrated
    assert loaded.changes[:2] == ["votes.blind -> app.blind (= true)",
                                  "new section [app] for the dashboard (app.blind, app.retrain_epochs)"]
    # the old defaults are today's, moved, except the defaults schema 3 changed: kept as they ran
    ran_with = {"rff_absolute": False, "sky_background_box": 0, "cutout_unit": "px", "cutout_size": 50}
    expected = default_config()
    expected["prep"].update(ran_with)
    expected["train"]["early_stopping"] = False  # schema 4: old workspaces trained every planned epoch
    assert loaded.config == expected
    assert read_config(root / "config.toml") == expected
    assert (root / "config.toml").read_text() == original  # a run's record is not rewritten


def test_migration_1_to_2_keeps_a_hand_written_app_section():
    raw = {"votes": {"blind": True, "experts": ["a"]}, "app": {"blind": False, "experts": ["b", "a"],
                                                                   "retrain_epochs": 3}}
    changes = MIGRATIONS[1](raw)
    assert raw == {"votes": {"experts": ["a", "b"]}, "app": {"blind": False, "retrain_epochs": 3}}
    assert changes == ["votes.blind = true dropped: app.blind = false is also set and wins",
                       "app.experts merged into votes.experts (= ['a', 'b']): one list of experts for the "
                       "vote store and the dashboard"]
    assert problems(raw) == []


def test_a_newer_schema_is_refused(tmp_path):
    ws = Workspace.create(tmp_path / "ws")
    text = (ws.root / "config.toml").read_text()
    assert text.startswith(f"schema_version = {SCHEMA_VERSION}\n")
    (ws.root / "config.toml").write_text(text.replace(f"schema_version = {SCHEMA_VERSION}",
                                                      f"schema_version = {SCHEMA_VERSION + 1}"))
    with pytest.raises(ConfigError, match="written by a newer Residual Explorer"):
        Workspace.open(ws.root)
    (ws.root / "config.toml").write_text('schema_version = "two"\n')
    with pytest.raises(ConfigError, match="schema_version must be a positive integer, not 'two'"):
        read_config(ws.root / "config.toml")


def test_every_older_version_has_a_migration():
    assert sorted(MIGRATIONS) == list(range(1, SCHEMA_VERSION))


def test_a_read_only_workspace_opens_migrated_in_memory(tmp_path, monkeypatch, caplog):
    import core.workspace.workspace as workspace_module

    root = tmp_path / "ws"
    original = old_workspace(root, **{"votes.blind": False})

    def refuse(*args, **kwargs):
        raise PermissionError("read-only file system")

    monkeypatch.setattr(workspace_module, "write_config", refuse)
    with caplog.at_level(logging.WARNING, logger="core.workspace.workspace"):
        ws = Workspace.open(root)
    assert ws.config["app"]["blind"] is False
    assert "not rewritten (read-only file system)" in caplog.text
    assert (root / "config.toml").read_text() == original


def test_schema_3_changed_defaults_keep_what_old_workspaces_ran_with(tmp_path):
    relied = tmp_path / "relied.toml"  # schema 2, partial: ran with the old defaults
    relied.write_text('schema_version = 2\n[prep]\ncutout = 64\n')
    loaded = load_config(relied)
    prep = loaded.config["prep"]
    assert prep["rff_absolute"] is False and prep["sky_background_box"] == 0
    assert (prep["cutout_unit"], prep["cutout_size"], prep["cutout"]) == ("px", 64, 64)
    assert loaded.changes[:3] == [
        "prep.rff_absolute = false (the default this file was written with) kept; new workspaces get true",
        "prep.sky_background_box = 0 (the default this file was written with) kept; new workspaces get 8",
        "prep.cutout_unit = 'px', prep.cutout_size = 64 (the native cutout this file was written with) kept; "
        "new workspaces cut 3.0 arcsec, resampled to prep.cutout px"]

    explicit = tmp_path / "explicit.toml"  # schema 1, full (as every old workspace): its value is kept
    explicit.write_text(tomli_w.dumps(OLD_DEFAULT_CONFIG))
    loaded = load_config(explicit)
    assert loaded.config["prep"]["rff_absolute"] is False
    assert "prep.rff_absolute = false kept; the default is now true" in loaded.changes

    chose_new = tmp_path / "new.toml"
    chose_new.write_text('schema_version = 2\n[prep]\nrff_absolute = true\nsky_background_box = 8\n'
                         'cutout_unit = "arcsec"\ncutout_size = 3.0\n')
    loaded = load_config(chose_new)
    assert loaded.config["prep"]["rff_absolute"] is True and loaded.config["prep"]["cutout_unit"] == "arcsec"
    assert not any("kept" in c for c in loaded.changes if c.startswith("prep."))  # (schema 4 keeps train.*)
    new = default_config()["prep"]  # new workspaces get the new defaults
    assert (new["rff_absolute"], new["sky_background_box"], new["cutout_unit"], new["cutout_size"]) == (
        True, 8, "arcsec", 3.0)
