"""Lava deployment: an IntNetwork as a Lava process graph on Lava's fixed-point simulator."""
from .runner import build, run, run_many

__all__ = ["build", "run", "run_many"]
