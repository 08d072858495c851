"""The simulator's error."""

from __future__ import annotations

from core.errors import ResxError

__all__ = ["SimulationError"]


class SimulationError(ResxError, ValueError):
    """Simulation parameters that cannot give a survey."""
