"""Experiment tracking: TrainingRuns and search trials logged as MLflow runs (docs/tracking.md)."""
