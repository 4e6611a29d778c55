"""Prometheus metrics of the model server, on a registry of their own (one per server).

The per-request series (request count, latency histogram, predicted classes) are plain Python counters bumped on
the request path and turned into metric families only when /metrics is scraped: a bisect and two additions per
request instead of prometheus_client's locked, per-bucket updates. Everything else uses prometheus_client as is.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator
from typing import Any

import numpy as np
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

__all__ = ["CONTENT_TYPE", "FEEDBACK_OUTCOMES", "LATENCY_BUCKETS", "METRIC_NAMES", "ServerMetrics"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

LATENCY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
FEEDBACK_OUTCOMES = ("accepted", "invalid", "duplicate", "dropped")
"""What becomes of a label sent to the feedback endpoint (`outcome` of gyre_feedback_labels_total)."""

# No `<counter>_created` series: they would double the series count of every counter and histogram, and no query
# reads them (a process-wide switch of prometheus_client).
disable_created_metrics()  # type: ignore[no-untyped-call]  # prometheus_client leaves it unannotated

METRIC_NAMES: frozenset[str] = frozenset(
    {
        "gyre_requests_total",
        *(f"gyre_request_duration_seconds_{s}" for s in ("bucket", "count", "sum")),
        "gyre_predictions_total",
        *(f"gyre_inference_batch_rows_{s}" for s in ("bucket", "count", "sum")),
        "gyre_prediction_log_dropped_rows_total",
        "gyre_prediction_log_written_rows_total",
        "gyre_prediction_log_write_errors_total",
        "gyre_model_info",
        "gyre_feedback_requests_total",
        "gyre_feedback_labels_total",
        "gyre_feedback_unknown_class_labels_total",
        "gyre_feedback_written_labels_total",
        "gyre_feedback_write_errors_total",
    }
)
"""Every series name a model server exports (a unit test proves each appears in a scrape)."""


class _RequestSeries:
    """Counts and latency buckets of one (protocol, code) pair."""

    __slots__ = ("buckets", "count", "total")

    def __init__(self) -> None:
        self.buckets = [0] * (len(LATENCY_BUCKETS) + 1)
        self.count = 0
        self.total = 0.0


class _HotPathCollector(Collector):
    def __init__(self, metrics: ServerMetrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            "gyre_requests",
            "Inference requests by protocol (v1, v2) and HTTP status code.",
            labels=["protocol", "code"],
        )
        latency = HistogramMetricFamily(
            "gyre_request_duration_seconds",
            "Inference request latency inside the server, by protocol and HTTP status code.",
            labels=["protocol", "code"],
        )
        for (protocol, code), series in sorted(self._metrics._requests.items()):
            labels = [protocol, str(code)]
            requests.add_metric(labels, series.count)
            cumulative, buckets = 0, []
            for bound, hits in zip((*LATENCY_BUCKETS, float("inf")), series.buckets, strict=True):
                cumulative += hits
                buckets.append((repr(bound) if bound != float("inf") else "+Inf", cumulative))
            latency.add_metric(labels, buckets, series.total)
        yield requests
        yield latency
        predictions = CounterMetricFamily(
            "gyre_predictions",
            "Predicted rows by class (classification) or 'value' (regression).",
            labels=["class"],
        )
        for label, count in sorted(self._metrics._classes.items(), key=lambda item: str(item[0])):
            predictions.add_metric([str(label)], count)
        yield predictions


class ServerMetrics:
    """Request, prediction, batching, prediction-log and model-identity metrics."""

    def __init__(
        self, *, model: str, version: str, run: str, sha256: str, inference: str, track: str = ""
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._requests: dict[tuple[str, int], _RequestSeries] = {}
        self._classes: dict[Any, int] = {}
        self.registry.register(_HotPathCollector(self))
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
        self.feedback_requests = Counter(
            "gyre_feedback_requests",
            "Requests to the feedback endpoint, by HTTP status code.",
            ["code"],
            registry=self.registry,
        )
        self.feedback_labels = Counter(
            "gyre_feedback_labels",
            "Labels received on the feedback endpoint, by outcome: accepted (buffered for the store), invalid "
            "(wrong type, missing or bad field), duplicate (an id repeated within one request), dropped (buffer full).",
            ["outcome"],
            registry=self.registry,
        )
        for outcome in FEEDBACK_OUTCOMES:
            self.feedback_labels.labels(outcome)
        self.feedback_unknown_class = Counter(
            "gyre_feedback_unknown_class_labels",
            "Accepted classification labels that are not among the model's classes.",
            registry=self.registry,
        )
        self.feedback_written = Counter(
            "gyre_feedback_written_labels",
            "Feedback labels written to the artifact store.",
            registry=self.registry,
        )
        self.feedback_errors = Counter(
            "gyre_feedback_write_errors",
            "Feedback batches that could not be written.",
            registry=self.registry,
        )
        self.model_info = Gauge(
            "gyre_model_info",
            "The served model (always 1): name, version, training run, digest (manifest sha256), inference path, track.",
            ["model", "version", "run", "sha256", "inference", "track"],
            registry=self.registry,
        )
        self.model_info.labels(model, version, run, sha256, inference, track).set(1)

    def observe_request(self, protocol: str, code: int, seconds: float) -> None:
        """Count one request and its latency."""
        series = self._requests.get((protocol, code))
        if series is None:
            series = self._requests[(protocol, code)] = _RequestSeries()
        series.count += 1
        series.total += seconds
        series.buckets[bisect_left(LATENCY_BUCKETS, seconds)] += 1

    def observe_predictions(self, predicted: np.ndarray, classification: bool) -> None:
        """Count predicted rows by class ('value' for regression)."""
        classes = self._classes
        if not classification:
            classes["value"] = classes.get("value", 0) + len(predicted)
        elif len(predicted) == 1:
            label = predicted[0]
            classes[label] = classes.get(label, 0) + 1
        else:
            values, counts = np.unique(predicted, return_counts=True)
            for value, count in zip(values.tolist(), counts.tolist(), strict=True):
                classes[value] = classes.get(value, 0) + count

    def render(self) -> bytes:
        """The text exposition format."""
        return generate_latest(self.registry)
