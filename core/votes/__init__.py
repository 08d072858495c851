"""The inspectors' votes: the store (SQLite or PostgreSQL), consensus, agreement, vote files.

Public names (imported from their modules on first use):

* ``store``: ``ImportReport``, ``VoteStore``, ``open_store``
* ``errors``: ``VoteImportError``, ``VoteStoreError``
* ``schema``: ``SCHEMA_VERSION``, ``make_engine``, ``migrate``
* ``validation``: ``normalize_label``
* ``consensus``: ``UNDECIDED``, ``consensus_from_votes``, ``count_votes``, ``decide``
* ``agreement``: ``Agreement``, ``compute_agreement``, ``fleiss_kappa``
* ``files``: ``VoteFileError``, ``consensus_catalog``, ``read_vote_file``, ``write_table``
"""

from core._exports import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(__name__, {
    "ImportReport": ".store",
    "VoteStore": ".store",
    "open_store": ".store",
    "VoteImportError": ".errors",
    "VoteStoreError": ".errors",
    "SCHEMA_VERSION": ".schema",
    "make_engine": ".schema",
    "migrate": ".schema",
    "normalize_label": ".validation",
    "UNDECIDED": ".consensus",
    "consensus_from_votes": ".consensus",
    "count_votes": ".consensus",
    "decide": ".consensus",
    "Agreement": ".agreement",
    "compute_agreement": ".agreement",
    "fleiss_kappa": ".agreement",
    "VoteFileError": ".files",
    "consensus_catalog": ".files",
    "read_vote_file": ".files",
    "write_table": ".files",
})
