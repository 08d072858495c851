"""Sérsic profiles in GALFIT's conventions and the single-Sérsic fitter (``resx fit``).

``__all__`` lists the public names; each is imported from its module on first use.
"""

from core._exports import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(__name__, {
    ".sersic": ["PSFConvolver", "SersicRenderer", "convolve_psf", "sersic_bn", "sersic_flux", "sersic_image"],
    ".fit": ["FIT_FLAGS", "FIT_PARAMS", "SersicFit", "SersicFitError", "fit_sersic", "fit_to_block"],
    ".psf": ["PreparedPSF", "PSFError", "delta_psf", "prepare_psf"],
    ".jobs": ["FitJob", "read_targets"],
    ".batch": ["fit_images"],
})
