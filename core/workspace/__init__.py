"""The workspace folder, its configuration, the sample cuts and ingest.

``__all__`` lists the public names; each is imported from its module on first use.
"""

from core._exports import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(__name__, {
    ".workspace": ["MODELS", "Workspace", "WorkspaceError"],
    ".locations": ["default_workspace"],
    ".config": ["DEFAULT_CONFIG", "ConfigError", "default_config", "read_config", "write_config"],
    ".cuts": ["CutReport", "apply_cuts"],
    ".ingestion": ["IngestReport", "ingest", "write_catalog"],
    ".mapdata": ["MapData", "VoteSnapshot", "shared_map_data"],
})
