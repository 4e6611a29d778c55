"""Live model performance: ground-truth labels joined with the prediction log, the task's metrics with intervals,
and the comparison with the served model's test metrics (docs/monitoring.md)."""

from gyre.performance.check import (
    Baseline,
    PerformanceConfig,
    PerformanceConfigError,
    PerformanceReport,
    check_feedback,
    check_joined,
)
from gyre.performance.join import JoinedWindow, JoinStats, join_feedback, join_rows
from gyre.performance.labels import LabelRead, LabelRecord, read_labels

__all__ = [
    "Baseline",
    "JoinStats",
    "JoinedWindow",
    "LabelRead",
    "LabelRecord",
    "PerformanceConfig",
    "PerformanceConfigError",
    "PerformanceReport",
    "check_feedback",
    "check_joined",
    "join_feedback",
    "join_rows",
    "read_labels",
]
