"""Object-only residual stamps and residual metrics (paper §3.1, §3.3), per galaxy and at survey scale.

Public names (imported from their modules on first use):

* ``residual``: ``PrepError``, ``cutout``, ``object_only``, ``resample_sky``
* ``metrics``: ``METRIC_COLUMNS``, ``MetricError``, ``ResidualMetrics``
* ``galaxy``: ``PrepResult``, ``galaxy_seed``, ``prep_block``, ``prep_galaxy``
* ``pipeline``: ``assign_split``, ``prep_report``, ``prep_workspace``
"""

from core._exports import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(__name__, {
    "PrepError": ".residual",
    "cutout": ".residual",
    "object_only": ".residual",
    "resample_sky": ".residual",
    "METRIC_COLUMNS": ".metrics",
    "MetricError": ".metrics",
    "ResidualMetrics": ".metrics",
    "PrepResult": ".galaxy",
    "galaxy_seed": ".galaxy",
    "prep_block": ".galaxy",
    "prep_galaxy": ".galaxy",
    "assign_split": ".pipeline",
    "prep_report": ".pipeline",
    "prep_workspace": ".pipeline",
})
