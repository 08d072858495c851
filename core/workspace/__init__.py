"""The workspace folder, its configuration, the sample cuts and ingest.

Public names (imported from their modules on first use):

* ``workspace``: ``MODELS``, ``Workspace``, ``WorkspaceError``
* ``locations``: ``default_workspace``
* ``config``: ``DEFAULT_CONFIG``, ``ConfigError``, ``default_config``, ``read_config``, ``write_config``
* ``cuts``: ``CutReport``, ``apply_cuts``
* ``ingestion``: ``IngestReport``, ``ingest``, ``write_catalog``
"""

from core._exports import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(__name__, {
    "MODELS": ".workspace",
    "Workspace": ".workspace",
    "WorkspaceError": ".workspace",
    "default_workspace": ".locations",
    "DEFAULT_CONFIG": ".config",
    "ConfigError": ".config",
    "default_config": ".config",
    "read_config": ".config",
    "write_config": ".config",
    "CutReport": ".cuts",
    "apply_cuts": ".cuts",
    "IngestReport": ".ingestion",
    "ingest": ".ingestion",
    "write_catalog": ".ingestion",
})
