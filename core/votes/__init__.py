"""The inspectors' votes: the store (SQLite or PostgreSQL), consensus, agreement, vote files.

``__all__`` lists the public names; each is imported from its module on first use.
"""

from core._exports import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(__name__, {
    ".store": ["ImportReport", "VoteStore", "open_store"],
    ".errors": ["VoteImportError", "VoteStoreError"],
    ".schema": ["SCHEMA_VERSION", "make_engine", "migrate"],
    ".validation": ["normalize_label"],
    ".consensus": ["UNDECIDED", "consensus_from_votes", "count_votes", "decide"],
    ".agreement": ["Agreement", "compute_agreement", "fleiss_kappa"],
    ".methods": ["METHODS", "ConsensusResult", "compute_consensus", "dawid_skene", "store_consensus"],
    ".files": ["VoteFileError", "consensus_catalog", "read_vote_file", "write_table"],
})
