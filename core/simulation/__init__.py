"""A CANDELS-like mock survey with the residual classes of the paper's Table 1, and simulated inspectors.

Public names (imported from their modules on first use):

* ``survey``: ``simulate_galaxy``, ``simulate_survey``, ``wfc3_psf``, ``assign_classes``, ``write_previews``
* ``inspectors``: ``INSPECTORS``, ``simulate_votes``, ``write_votes``
* ``errors``: ``SimulationError``
"""

from core._exports import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(__name__, {
    "simulate_galaxy": ".survey",
    "simulate_survey": ".survey",
    "wfc3_psf": ".survey",
    "assign_classes": ".survey",
    "write_previews": ".survey",
    "INSPECTORS": ".inspectors",
    "simulate_votes": ".inspectors",
    "write_votes": ".inspectors",
    "SimulationError": ".errors",
})
