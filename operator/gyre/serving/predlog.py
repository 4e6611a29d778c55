"""Prediction logging: sampled inputs and outputs kept in memory and written to the artifact store in the
background, one gzipped JSON-lines batch per flush (see docs/architecture.md, "Prediction log").

The request path only appends references to arrays it already holds; turning them into JSON rows, gzip and
the store write happen in a worker thread. The buffer is bounded: when it is full, rows are dropped and
counted rather than slowing the server down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from gyre.drift.window import write_prediction_batch
from gyre.serving.model import Prediction
from gyre.store.store import ArtifactStore

__all__ = ["PredictionLogger", "encode_rows"]

log = logging.getLogger(__name__)

_Chunk = tuple[float, np.ndarray, np.ndarray, np.ndarray | None]


def _value(value: Any) -> Any:
    # JSON has no NaN: a missing numeric input is logged as null.
    if type(value) is float and value != value:
        return None
    return value


def encode_rows(
    chunks: list[_Chunk], *, model: str, version: str, feature_names: tuple[str, ...]
) -> list[dict[str, Any]]:
    """Turn buffered (ts, inputs, predict, proba) chunks into prediction-log rows."""
    rows: list[dict[str, Any]] = []
    for ts, inputs, predict, proba in chunks:
        predicted = predict.tolist()
        probabilities = proba.tolist() if proba is not None else None
        for i, values in enumerate(inputs.tolist()):
            outputs: dict[str, Any] = {"predict": predicted[i]}
            if probabilities is not None:
                outputs["predict_proba"] = probabilities[i]
            rows.append(
                {
                    "ts": ts,
                    "model": model,
                    "version": version,
                    "inputs": {name: _value(v) for name, v in zip(feature_names, values, strict=True)},
                    "outputs": outputs,
                }
            )
    return rows


class PredictionLogger:
    """A bounded in-memory buffer of sampled predictions, flushed by size or age to the artifact store."""

    def __init__(
        self,
        store: ArtifactStore,
        *,
        namespace: str,
        deployment: str,
        pod: str,
        model: str,
        version: str,
        feature_names: tuple[str, ...],
        sample_rate: float = 1.0,
        max_batch_rows: int = 1000,
        flush_interval_s: float = 10.0,
        max_buffer_rows: int | None = None,
        on_dropped: Callable[[int], None] | None = None,
        on_written: Callable[[int], None] | None = None,
        on_error: Callable[[], None] | None = None,
    ) -> None:
        if not 0.0 <= sample_rate <= 1.0:
            raise ValueError("sample_rate must be between 0 and 1")
        self.store = store
        self.namespace, self.deployment, self.pod = namespace, deployment, pod
        self.model, self.version, self.feature_names = model, version, feature_names
        self.sample_rate = sample_rate
        self.max_batch_rows = max_batch_rows
        self.flush_interval_s = flush_interval_s
        self.max_buffer_rows = max_buffer_rows or max_batch_rows * 10
        self.on_dropped, self.on_written, self.on_error = on_dropped, on_written, on_error
        self._chunks: list[_Chunk] = []
        self._rows = 0
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._random = random.Random()
        self._closing = False
        self.written_paths: list[str] = []

    def record(self, inputs: np.ndarray, prediction: Prediction) -> None:
        """Maybe buffer a request's rows (sampled); never blocks, never raises."""
        n = len(inputs)
        predict, proba = prediction.predict, prediction.proba
        if self.sample_rate < 1.0:
            if n == 1:
                if self._random.random() >= self.sample_rate:
                    return
            else:
                keep = np.random.random(n) < self.sample_rate
                if not keep.any():
                    return
                inputs, predict = inputs[keep], predict[keep]
                proba = proba[keep] if proba is not None else None
                n = len(inputs)
        if self._rows + n > self.max_buffer_rows:
            if self.on_dropped is not None:
                self.on_dropped(n)
            return
        self._chunks.append((time.time(), inputs, predict, proba))
        self._rows += n
        if self._rows >= self.max_batch_rows:
            self._wake.set()

    def start(self) -> None:
        """Start the background flusher on the running loop."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._loop(), name="gyre-prediction-log")

    async def _loop(self) -> None:
        while not self._closing:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.flush_interval_s)
            self._wake.clear()
            await self.flush()

    async def flush(self) -> None:
        """Write what is buffered now (in a worker thread); a failed write is logged and counted, not raised."""
        if not self._chunks:
            return
        chunks, self._chunks, self._rows = self._chunks, [], 0
        try:
            await asyncio.get_running_loop().run_in_executor(None, self._write, chunks)
        except Exception:
            log.exception("writing a prediction-log batch failed; %d chunks lost", len(chunks))
            if self.on_error is not None:
                self.on_error()

    def _write(self, chunks: list[_Chunk]) -> None:
        rows = encode_rows(chunks, model=self.model, version=self.version, feature_names=self.feature_names)
        relpath = write_prediction_batch(self.store, self.namespace, self.deployment, self.pod, rows)
        if relpath is not None:
            self.written_paths.append(relpath)
        if self.on_written is not None:
            self.on_written(len(rows))

    async def close(self) -> None:
        """Stop the flusher and write what is left (called on shutdown)."""
        self._closing = True
        if self._task is not None:
            # Let a flush under way finish (its rows are already out of the buffer), then write the rest.
            self._wake.set()
            await self._task
            self._task = None
        await self.flush()
