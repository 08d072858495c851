"""Sérsic profiles in GALFIT's conventions and the single-Sérsic fitter (``resx fit``).

Public names (imported from their modules on first use):

* ``sersic``: ``PSFConvolver``, ``SersicRenderer``, ``convolve_psf``, ``sersic_bn``, ``sersic_flux``, ``sersic_image``
* ``fit``: ``FIT_PARAMS``, ``SersicFit``, ``SersicFitError``, ``fit_sersic``, ``fit_to_block``
* ``batch``: ``fit_images``
"""

from core._exports import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(__name__, {
    "PSFConvolver": ".sersic",
    "SersicRenderer": ".sersic",
    "convolve_psf": ".sersic",
    "sersic_bn": ".sersic",
    "sersic_flux": ".sersic",
    "sersic_image": ".sersic",
    "FIT_PARAMS": ".fit",
    "SersicFit": ".fit",
    "SersicFitError": ".fit",
    "fit_sersic": ".fit",
    "fit_to_block": ".fit",
    "fit_images": ".batch",
})
