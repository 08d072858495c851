"""Object-only residual stamps and residual metrics (paper §3.1, §3.3), per galaxy and at survey scale.

``__all__`` lists the public names; each is imported from its module on first use.
"""

from core._exports import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(__name__, {
    ".residual": ["PrepError", "cutout", "object_only", "resample_sky"],
    ".metrics": ["METRIC_COLUMNS", "MetricError", "ResidualMetrics"],
    ".galaxy": ["PrepResult", "galaxy_seed", "prep_block", "prep_galaxy"],
    ".pipeline": ["assign_split", "prep_report", "prep_workspace"],
})
