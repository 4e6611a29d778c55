"""Prometheus metrics of the model server, on a registry of their own (one per app).

Label children are resolved once and cached, so the per-request cost is a dict lookup and an increment.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = ["CONTENT_TYPE", "ServerMetrics"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_LATENCY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


class ServerMetrics:
    """Request, prediction, batching and prediction-log metrics."""

    def __init__(self, *, model: str, version: str, run: str, sha256: str, inference: str) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "gyre_requests",
            "Inference requests by protocol (v1, v2) and HTTP status code.",
            ["protocol", "code"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "gyre_request_duration_seconds",
            "Inference request latency in the server, by protocol and HTTP status code.",
            ["protocol", "code"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.predictions = Counter(
            "gyre_predictions",
            "Predicted rows by class (classification) or 'value' (regression).",
            ["class"],
            registry=self.registry,
        )
        self.batch_rows = Histogram(
            "gyre_inference_batch_rows",
            "Rows per model run (after micro-batching).",
            buckets=_BATCH_BUCKETS,
            registry=self.registry,
        )
        self.log_dropped = Counter(
            "gyre_prediction_log_dropped_rows",
            "Prediction-log rows dropped because the buffer was full.",
            registry=self.registry,
        )
        self.log_written = Counter(
            "gyre_prediction_log_written_rows",
            "Prediction-log rows written to the artifact store.",
            registry=self.registry,
        )
        self.log_errors = Counter(
            "gyre_prediction_log_write_errors",
            "Prediction-log batches that could not be written.",
            registry=self.registry,
        )
        self.model_info = Gauge(
            "gyre_model_info",
            "The served model (always 1): name, version, training run, artifact sha256 and inference path.",
            ["model", "version", "run", "sha256", "inference"],
            registry=self.registry,
        )
        self.model_info.labels(model, version, run, sha256, inference).set(1)
        self._children: dict[tuple[str, int], tuple[Any, Any]] = {}
        self._classes: dict[Any, Any] = {}
        self._regression = self.predictions.labels("value")

    def observe_request(self, protocol: str, code: int, seconds: float) -> None:
        """Count one request and its latency."""
        key = (protocol, code)
        pair = self._children.get(key)
        if pair is None:
            label = str(code)
            pair = (self.requests.labels(protocol, label), self.latency.labels(protocol, label))
            self._children[key] = pair
        pair[0].inc()
        pair[1].observe(seconds)

    def observe_predictions(self, predicted: np.ndarray, classification: bool) -> None:
        """Count predicted rows by class."""
        if not classification:
            self._regression.inc(len(predicted))
            return
        if len(predicted) == 1:
            self._class_child(predicted[0]).inc()
            return
        values, counts = np.unique(predicted, return_counts=True)
        for value, count in zip(values.tolist(), counts.tolist(), strict=True):
            self._class_child(value).inc(count)

    def _class_child(self, value: Any) -> Any:
        child = self._classes.get(value)
        if child is None:
            # Bounded by the model's classes.
            child = self.predictions.labels(str(value.item() if isinstance(value, np.generic) else value))
            self._classes[value] = child
        return child

    def render(self) -> bytes:
        """The text exposition format."""
        return generate_latest(self.registry)

