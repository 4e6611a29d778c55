"""Prediction logging: sampled inputs and outputs kept in memory and written to the artifact store in the
background, one gzipped JSON-lines batch per flush (see docs/architecture.md, "Prediction log").

The request path only appends references to arrays it already holds, with the request's id; turning them into
JSON rows (each with its prediction id), gzip and the store write happen in a worker thread. The buffer is bounded:
when it is full, rows are dropped and counted rather than slowing the server down. `BatchWriter` is that buffer and
flusher, shared with the feedback endpoint's writer (gyre.serving.feedback).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import random
import time
from collections.abc import Callable
from typing import Any, Generic, Required, TypedDict, TypeVar, Unpack

import numpy as np

from gyre.serving.model import Prediction
from gyre.store.batches import write_stamped_batch
from gyre.store.layout import prediction_batch_path
from gyre.store.store import ArtifactStore

__all__ = [
    "BatchWriter",
    "PredictionLogger",
    "WriterOptions",
    "encode_rows",
    "new_prediction_id",
    "prediction_ids",
]

log = logging.getLogger(__name__)

_Chunk = tuple[float, str, np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]
"""(ts, request id, inputs, predict, proba, kept row positions of a sampled batch or None for all rows)."""

C = TypeVar("C")


def _value(value: Any) -> Any:
    # JSON has no NaN: a missing numeric input is logged as null.
    if type(value) is float and value != value:
        return None
    return value


_IDS_PER_DRAW = 256
_ids: collections.deque[str] = collections.deque()
# A forked child must not hand out the ids its parent still holds.
os.register_at_fork(after_in_child=_ids.clear)


def _draw_ids() -> None:
    # One urandom call and one hex() for many ids: per id, this leaves a deque pop (a tenth of the cost of a
    # urandom call and the formatting of a 128-bit int each time).
    raw = np.frombuffer(bytearray(os.urandom(16 * _IDS_PER_DRAW)), dtype=np.uint8).reshape(_IDS_PER_DRAW, 16)
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40  # version 4
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80  # RFC 4122 variant
    text = raw.tobytes().hex()
    _ids.extend([text[i : i + 32] for i in range(0, len(text), 32)])


def new_prediction_id() -> str:
    """A random uuid4 as 32 hex digits, as `uuid.uuid4().hex` gives (122 random bits from os.urandom), cut from a
    batch drawn at once: it runs once per request that brings no id."""
    while True:
        try:
            return _ids.popleft()  # atomic: threads never share an id
        except IndexError:
            _draw_ids()


def prediction_ids(request_id: str, rows: int, positions: np.ndarray | None = None) -> list[str]:
    """The prediction ids of a request's rows: the request id for a single row, `{request id}.{i}` for row `i`
    (from 0) of a batch; `positions` picks some rows of a batch (a sample), by their place in the request."""
    if positions is not None:
        return [f"{request_id}.{i}" for i in positions.tolist()]
    if rows == 1:
        return [request_id]
    return [f"{request_id}.{i}" for i in range(rows)]


def encode_rows(
    chunks: list[_Chunk], *, model: str, version: str, feature_names: tuple[str, ...]
) -> list[dict[str, Any]]:
    """Turn buffered (ts, request id, inputs, predict, proba, positions) chunks into prediction-log rows."""
    rows: list[dict[str, Any]] = []
    for ts, request_id, inputs, predict, proba, positions in chunks:
        predicted = predict.tolist()
        probabilities = proba.tolist() if proba is not None else None
        ids = prediction_ids(request_id, len(predicted), positions)
        for i, values in enumerate(inputs.tolist()):
            outputs: dict[str, Any] = {"predict": predicted[i]}
            if probabilities is not None:
                outputs["predict_proba"] = probabilities[i]
            rows.append(
                {
                    "id": ids[i],
                    "ts": ts,
                    "model": model,
                    "version": version,
                    "inputs": {name: _value(v) for name, v in zip(feature_names, values, strict=True)},
                    "outputs": outputs,
                }
            )
    return rows


class WriterOptions(TypedDict, total=False):
    """Where a BatchWriter writes and how it buffers: its keyword arguments, for subclasses to pass through."""

    namespace: Required[str]
    deployment: Required[str]
    pod: Required[str]
    max_batch_rows: int
    flush_interval_s: float
    max_buffer_rows: int | None
    on_dropped: Callable[[int], None] | None
    on_written: Callable[[int], None] | None
    on_error: Callable[[], None] | None


class BatchWriter(Generic[C]):
    """A bounded in-memory buffer of chunks, flushed by size or age to one artifact-store file per flush.

    Adding a chunk never blocks: when the buffer is full it is refused and counted. Encoding, gzip and the store
    write run in a worker thread. Subclasses say how chunks become rows (`encode`) and where a flush goes (`path_at`).
    """

    kind = "batch"
    """What the rows are, in log lines and the flusher task's name."""

    def __init__(
        self,
        store: ArtifactStore,
        *,
        namespace: str,
        deployment: str,
        pod: str,
        max_batch_rows: int = 1000,
        flush_interval_s: float = 10.0,
        max_buffer_rows: int | None = None,
        on_dropped: Callable[[int], None] | None = None,
        on_written: Callable[[int], None] | None = None,
        on_error: Callable[[], None] | None = None,
    ) -> None:
        self.store = store
        self.namespace, self.deployment, self.pod = namespace, deployment, pod
        self.max_batch_rows = max_batch_rows
        self.flush_interval_s = flush_interval_s
        self.max_buffer_rows = max_buffer_rows or max_batch_rows * 10
        self.on_dropped, self.on_written, self.on_error = on_dropped, on_written, on_error
        self._chunks: list[C] = []
        self._rows = 0
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.written_paths: list[str] = []

    def encode(self, chunks: list[C]) -> list[dict[str, Any]]:
        """The rows of one flush (runs in a worker thread)."""
        raise NotImplementedError

    def path_at(self, unix_ms: int) -> str:
        """The store path of a flush at `unix_ms`."""
        raise NotImplementedError

    def add(self, chunk: C, rows: int) -> bool:
        """Buffer a chunk of `rows` rows; False (and counted as dropped) when the buffer has no room for it."""
        if self._rows + rows > self.max_buffer_rows:
            if self.on_dropped is not None:
                self.on_dropped(rows)
            return False
        self._chunks.append(chunk)
        self._rows += rows
        if self._rows >= self.max_batch_rows:
            self._wake.set()
        return True

    def start(self) -> None:
        """Start the background flusher on the running loop."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._loop(), name=f"gyre-{self.kind}")

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
            log.exception("writing a %s batch failed; %d chunks lost", self.kind, len(chunks))
            if self.on_error is not None:
                self.on_error()

    def _write(self, chunks: list[C]) -> None:
        rows = self.encode(chunks)
        relpath = write_stamped_batch(self.store, rows, self.path_at)
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


class PredictionLogger(BatchWriter[_Chunk]):
    """Sampled predictions with their ids, written to `prediction_batch_path` files."""

    kind = "prediction-log"

    def __init__(
        self,
        store: ArtifactStore,
        *,
        model: str,
        version: str,
        feature_names: tuple[str, ...],
        sample_rate: float = 1.0,
        **options: Unpack[WriterOptions],
    ) -> None:
        if not 0.0 <= sample_rate <= 1.0:
            raise ValueError("sample_rate must be between 0 and 1")
        super().__init__(store, **options)
        self.model, self.version, self.feature_names = model, version, feature_names
        self.sample_rate = sample_rate
        self._random = random.Random()

    def record(self, inputs: np.ndarray, prediction: Prediction, request_id: str) -> None:
        """Maybe buffer a request's rows (sampled) under their prediction ids; never blocks, never raises."""
        n = len(inputs)
        predict, proba = prediction.predict, prediction.proba
        positions = None
        if self.sample_rate < 1.0:
            if n == 1:
                if self._random.random() >= self.sample_rate:
                    return
            else:
                # Kept rows remember their place in the request: a row's id is its request's id and that place.
                positions = np.flatnonzero(np.random.random(n) < self.sample_rate)
                if not len(positions):
                    return
                inputs, predict = inputs[positions], predict[positions]
                proba = proba[positions] if proba is not None else None
                n = len(inputs)
        self.add((time.time(), request_id, inputs, predict, proba, positions), n)

    def encode(self, chunks: list[_Chunk]) -> list[dict[str, Any]]:
        return encode_rows(chunks, model=self.model, version=self.version, feature_names=self.feature_names)

    def path_at(self, unix_ms: int) -> str:
        return prediction_batch_path(self.namespace, self.deployment, unix_ms, self.pod)
