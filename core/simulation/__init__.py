"""A CANDELS-like mock survey with the residual classes of the paper's Table 1, and simulated inspectors.

``__all__`` lists the public names; each is imported from its module on first use.
"""

from core._exports import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(__name__, {
    ".survey": ["simulate_galaxy", "simulate_survey", "wfc3_psf", "assign_classes", "write_previews"],
    ".inspectors": ["INSPECTORS", "simulate_votes", "write_votes"],
    ".errors": ["SimulationError"],
})
