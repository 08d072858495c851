"""Reading and writing what the pipeline exchanges: GALFIT blocks, FITS images, catalogs, the stamp store.

Public names (imported from their modules on first use):

* ``galfit``: ``GalfitBlock``, ``GalfitBlockError``, ``GalfitParameter``, ``read_block``, ``write_block``, ``parse_parameter``, ``format_parameter``
* ``images``: ``ImageReadError``, ``read_image``
* ``catalog``: ``CatalogError``, ``STANDARD_COLUMNS``, ``parse_column_mapping``, ``read_catalog``
* ``stamps``: ``STAMP_KINDS``, ``StampStore``, ``StampStoreError``
"""

from core._exports import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(__name__, {
    "GalfitBlock": ".galfit",
    "GalfitBlockError": ".galfit",
    "GalfitParameter": ".galfit",
    "read_block": ".galfit",
    "write_block": ".galfit",
    "parse_parameter": ".galfit",
    "format_parameter": ".galfit",
    "ImageReadError": ".images",
    "read_image": ".images",
    "CatalogError": ".catalog",
    "STANDARD_COLUMNS": ".catalog",
    "parse_column_mapping": ".catalog",
    "read_catalog": ".catalog",
    "STAMP_KINDS": ".stamps",
    "StampStore": ".stamps",
    "StampStoreError": ".stamps",
})
