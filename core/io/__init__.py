"""Reading and writing what the pipeline exchanges: GALFIT blocks, FITS images and headers, catalogs, the stamp store.

``__all__`` lists the public names; each is imported from its module on first use.
"""

from core._exports import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(__name__, {
    ".galfit": ["GalfitBlock", "GalfitBlockError", "GalfitComponent", "GalfitParameter", "choose_component",
                "read_block", "write_block", "parse_parameter", "format_parameter"],
    ".calibration": ["bunit_kind", "celestial_wcs", "exposure_time", "image_unit", "pixel_scale", "pixel_type",
                     "zeropoint"],
    ".images": ["FitsImage", "ImageReadError", "image_hdus", "parse_selector", "read_fits_image", "read_image"],
    ".catalog": ["CatalogError", "STANDARD_COLUMNS", "parse_column_mapping", "read_catalog"],
    ".stamps": ["STAMP_KINDS", "StampStore", "StampStoreError"],
})
