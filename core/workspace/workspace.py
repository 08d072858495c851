"""The workspace folder: one directory that holds everything a campaign needs.

Layout::

    WORKSPACE/
      config.toml        every setting (core.workspace.config.SCHEMA, overridden), with its schema_version
      config.v1.toml     the original config.toml, kept when Workspace.open migrated it from schema 1
      catalog.fits       one row per galaxy; row i <-> stamp i
      stamps.zarr/       chunked stamp arrays (original, model, residual, object_only, goi_mask)
      votes.sqlite       the vote store (unless config votes.database_url names another)
      runs/<run-id>/     one folder per training run (see core.learn.runs)
      active.json        the active run per model: {"cnn": "...", "cvae": "..."}
      selections/        selections saved by name in the dashboard (one id per line)
      prep/              prep's journal while a run is in progress (deleted when it completes)
      cache/             derived data, safe to delete: the catalog's columns as .npy files that the
                         dashboard memory-maps (core.workspace.mapdata), rebuilt when catalog.fits changes

Catalog columns (standard names; ``core.io.catalog`` maps a user's names onto these):
``id`` (str, unique), ``field``, ``ra``, ``dec``, ``z``, ``logmass``, ``hmag``, ``photflag``,
``block`` (path of the GALFIT block), ``catalog_class`` (str, "" when unknown),
``fit_quality`` (bool), GALFIT parameters ``gf_xc gf_yc gf_mag gf_re gf_n gf_ar gf_pa`` and
what ingest read from the headers (the galaxy's component, the pixel scale, units and pixel type:
:mod:`core.workspace.ingestion`), then what prep adds: ``prep_status`` ("pending" | "ok" |
"flagged" | "error"), ``prep_message``, ``prep_flags``, the metrics (``sky_sigma``, ``spf``,
``spf_pos``, ``spf_neg``, ``bumpiness``, ``rff``, ``goi_model_flux``, ``spf_norm``), the stamp's
geometry (``cutout_px``, ``cutout_arcsec``, ``stamp_sigma``, ``sky_seam``, ``goi_outside``,
``goi_fill``), ``cutout_padded``, and ``split`` ("train" | "test" | "excluded").

Text in ``catalog.fits``: FITS tables hold ASCII, so every text column is stored as UTF-8 bytes
and the table header says so (``TEXTENC = 'UTF-8'``); a header value (the catalog's ``SOURCE``
path...) with non-ASCII characters is stored percent-encoded (RFC 3986, listed in
``PCTMETA``) (:func:`core.io.catalog.write_fits_table`). :meth:`Workspace.read_catalog` decodes both, so ids, class names, paths and
messages in any script round-trip; ``resx catalog --out FILE.ecsv`` writes UTF-8 text. A FITS
reader that ignores ``TEXTENC`` shows non-ASCII characters as their UTF-8 bytes. Column
descriptions are stored as ``TCOMMn`` cards (the FITS column-comment convention) and read back.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import Any

from astropy.table import Table

from core.errors import ResxError
from core.workspace.config import (
    SCHEMA_VERSION,
    ConfigError,
    ConfigFile,
    default_config,
    load_config,
    merge,
    validate,
    write_config,
)
from core.workspace.locations import default_workspace, source_checkout  # noqa: F401 - re-exported
from core.workspace.sharedfile import read_json, update_json

log = logging.getLogger(__name__)

MODELS = ("cnn", "cvae")


class WorkspaceError(ResxError):
    """A workspace that does not exist, is incomplete, or is corrupt."""


def _write_migrated(path: Path, loaded: ConfigFile) -> None:
    """Keep the original of a migrated ``config.toml``, write the migrated one, and say so."""
    backup = path.with_name(f"{path.stem}.v{loaded.version}{path.suffix}")
    try:
        try:
            with open(backup, "xb") as fh:  # exclusive: a second process keeps the first copy
                fh.write(path.read_bytes())
        except FileExistsError:
            pass
        write_config(loaded.config, path)
        done = f"rewritten (the original is kept as {backup.name})"
    except OSError as exc:
        done = f"not rewritten ({exc}): migrated in memory at every open"
    log.warning("%s is schema %d; migrated to schema %d and %s: %s", path, loaded.version, SCHEMA_VERSION,
                done, "; ".join(loaded.changes) or "no setting changed")


class Workspace:
    """A campaign's folder: config, catalog, stamps, votes and runs.

    Use :meth:`create` for a new folder and :meth:`open` for an existing one.
    """

    CONFIG = "config.toml"
    CATALOG = "catalog.fits"
    STAMPS = "stamps.zarr"
    VOTES = "votes.sqlite"
    RUNS = "runs"
    ACTIVE = "active.json"

    def __init__(self, root: str | Path, config: dict[str, Any]):
        self.root = Path(root)
        self.config = config

    # -- creation -----------------------------------------------------------------------
    @classmethod
    def create(
        cls, root: str | Path, config: dict[str, Any] | None = None, *, exist_ok: bool = False
    ) -> "Workspace":
        """Create the folder and write its ``config.toml`` (defaults merged with ``config``).

        Parameters
        ----------
        root : str or Path
            The workspace folder (created if needed).
        config : dict, optional
            Overrides of :data:`core.workspace.config.DEFAULT_CONFIG`.
        exist_ok : bool
            Overwrite the config of an existing workspace.

        Raises
        ------
        ConfigError
            ``config`` has an unknown key or a wrong value (nothing is created).
        WorkspaceError
            ``root`` is already a workspace and ``exist_ok`` is false.
        """
        root = Path(root)
        validate(config or {}, "the configuration given to Workspace.create")
        if (root / cls.CONFIG).exists() and not exist_ok:
            raise WorkspaceError(f"{root} is already a workspace (found {cls.CONFIG})")
        root.mkdir(parents=True, exist_ok=True)
        (root / cls.RUNS).mkdir(exist_ok=True)
        cfg = merge(default_config(), config or {})
        write_config(cfg, root / cls.CONFIG)
        return cls(root, cfg)

    @classmethod
    def open(cls, root: str | Path) -> "Workspace":
        """Open an existing workspace.

        Its ``config.toml`` is checked against the schema. A file of an older schema version
        (every workspace written before ``schema_version`` existed is version 1) is migrated:
        the changes are logged as a warning, and the migrated file is written back atomically
        (temporary file + rename) so the migration happens once; the original is kept as
        ``config.v<N>.toml``. If the file cannot be written (a read-only copy), the workspace
        opens with the migrated settings in memory.

        Parameters
        ----------
        root : str or Path
            The workspace folder.

        Returns
        -------
        Workspace

        Raises
        ------
        WorkspaceError
            The folder or its ``config.toml`` is missing, or the file is not readable TOML.
        ConfigError
            ``config.toml`` has an unknown key or a wrong value (every problem listed), or was
            written by a newer Residual Explorer.
        """
        root = Path(root)
        if not root.exists():
            raise WorkspaceError(
                f"No workspace at {root}. Build the demo with `resx demo {root}`, or create one "
                f"from GALFIT blocks with `resx ingest SOURCE {root}`."
            )
        cfg_path = root / cls.CONFIG
        if not cfg_path.exists():
            raise WorkspaceError(f"{root} is not a workspace: {cls.CONFIG} is missing (run `resx ingest`).")
        try:
            loaded = load_config(cfg_path)
        except ConfigError:
            raise
        except Exception as exc:  # tomllib.TOMLDecodeError, OSError, ...
            raise WorkspaceError(f"{cfg_path} cannot be read: {exc}") from exc
        if loaded.migrated:
            _write_migrated(cfg_path, loaded)
        return cls(root, loaded.config)

    def save_config(self) -> None:
        """Write :attr:`config` to ``config.toml`` (atomically; :class:`ConfigError` if invalid)."""
        write_config(self.config, self.root / self.CONFIG)

    # -- paths ----------------------------------------------------------------------------
    @property
    def catalog_path(self) -> Path:
        return self.root / self.CATALOG

    @property
    def stamps_path(self) -> Path:
        return self.root / self.STAMPS

    def stamps(self):
        """The stamp store (:class:`core.io.stamps.StampStore`) of this workspace."""
        from core.io.stamps import StampStore

        return StampStore.open(self.stamps_path)

    @property
    def votes_url(self) -> str:
        """SQLAlchemy URL of the vote store (config ``votes.database_url`` or the SQLite file)."""
        url = self.config.get("votes", {}).get("database_url")
        return url or f"sqlite:///{(self.root / self.VOTES).resolve()}"

    @property
    def runs_dir(self) -> Path:
        return self.root / self.RUNS

    def run_dir(self, run_id: str) -> Path:
        path = self.runs_dir / run_id
        if not path.is_dir():
            raise WorkspaceError(f"No run {run_id!r} in {self.runs_dir}")
        return path

    # -- catalog --------------------------------------------------------------------------
    def read_catalog(self) -> Table:
        """The workspace catalog (one row per galaxy, in stamp order).

        NaN and empty strings are kept as values, not masked (``Table.read`` of a FITS table
        masks them by default), and string columns are ``str``, decoded from UTF-8 (see the
        module docstring and :func:`core.io.catalog.read_fits_table`).
        """
        from core.io.catalog import read_fits_table

        if not self.catalog_path.exists():
            raise WorkspaceError(f"{self.catalog_path} is missing: run `resx ingest` first.")
        try:
            return read_fits_table(self.catalog_path)
        except Exception as exc:
            raise WorkspaceError(f"{self.catalog_path} is corrupt: {exc}") from exc

    def write_catalog(self, table: Table) -> None:
        """Write the catalog atomically (temporary file + rename), so readers never see half a file.

        Text is stored as UTF-8 (:func:`core.io.catalog.write_fits_table`).
        """
        from core.io.catalog import write_fits_table

        fd, tmp = tempfile.mkstemp(dir=self.root, suffix=".fits")
        os.close(fd)
        try:
            write_fits_table(table, tmp)
            os.replace(tmp, self.catalog_path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    # -- active runs ----------------------------------------------------------------------
    def active_runs(self) -> dict[str, str | None]:
        """The active run of each model (``active.json``; None for a model without one).

        Read without a lock: every writer replaces the file atomically, so this sees a whole file.
        """
        active: dict[str, str | None] = {m: None for m in MODELS}
        found = read_json(self.root / self.ACTIVE, default={})
        if isinstance(found, dict):
            active.update(found)
        return active

    def active_run(self, model: str) -> str | None:
        return self.active_runs().get(model)

    def set_active_run(self, model: str, run_id: str | None) -> None:
        """Make ``run_id`` the active run of ``model`` in ``active.json``.

        The file is re-read and rewritten under its lock (:func:`core.workspace.sharedfile.update_json`),
        so a concurrent writer's change of the other model is never lost. Whether the run may be
        active (only a finished one) is :func:`core.learn.runs.activate`'s rule.
        """
        if model not in MODELS:
            raise ValueError(f"model must be one of {MODELS}, not {model!r}")

        def change(active: Any) -> dict[str, str | None]:
            active = dict(active) if isinstance(active, dict) else {}
            active[model] = run_id
            return active

        update_json(self.root / self.ACTIVE, change, default={})

    def __repr__(self) -> str:
        return f"Workspace({str(self.root)!r})"
