"""Micro-batching: concurrent requests coalesced into one model run.

Requests that arrive while the event loop is busy (or, with a wait window, within `max_wait_s`) are
concatenated and predicted together, then each caller gets back exactly its own rows. With the default zero
wait the flush runs on the next loop iteration, so a lone request waits for nothing; and while requests keep
arriving alone, inline predictors are called directly (with a periodic probe through the queue).

Inline predictors (onnxruntime, microseconds per call) run on the event loop; slow ones (scikit-learn) run
in a thread pool, one batch at a time, while the next batch accumulates.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable
from typing import Any

import numpy as np

from gyre.serving.model import Prediction, Predictor

__all__ = ["MicroBatcher", "PredictionFailed"]


_PROBE_EVERY = 8


class PredictionFailed(Exception):
    """The model raised on a request's rows (for example NaN without an imputer); the message says why."""


_Item = tuple[np.ndarray, bool, "asyncio.Future[Prediction]"]


class MicroBatcher:
    """Runs predictions for the HTTP handlers, batching concurrent requests when `enabled`."""

    def __init__(
        self,
        predictor: Predictor,
        *,
        enabled: bool = True,
        max_batch_rows: int = 256,
        max_wait_s: float = 0.0,
        executor: concurrent.futures.Executor | None = None,
        on_batch: Callable[[int], None] | None = None,
    ) -> None:
        if max_batch_rows < 1:
            raise ValueError("max_batch_rows must be >= 1")
        self.predictor = predictor
        self.enabled = enabled
        self.max_batch_rows = max_batch_rows
        self.max_wait_s = max_wait_s
        self._executor = executor
        self._on_batch = on_batch
        self._pending: list[_Item] = []
        self._pending_rows = 0
        self._scheduled = False
        self._busy = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._direct = False
        self._direct_calls = 0
        self._requests_per_flush = 2.0

    def _run(self, rows: np.ndarray, want_proba: bool) -> Prediction:
        try:
            return self.predictor.predict(rows, want_proba)
        except (ValueError, TypeError, RuntimeError) as exc:
            raise PredictionFailed(str(exc)) from exc
        except Exception as exc:  # onnxruntime raises its own exception types on bad values
            raise PredictionFailed(f"{type(exc).__name__}: {exc}") from exc

    async def predict(self, rows: np.ndarray, want_proba: bool) -> Prediction:
        """Predict `rows`; raises PredictionFailed when the model rejects them."""
        if not self.enabled:
            if self._on_batch is not None:
                self._on_batch(len(rows))
            if self.predictor.inline:
                return self._run(rows, want_proba)
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._executor, self._run, rows, want_proba)
        if self._direct and not self._pending and self.predictor.inline:
            self._direct_calls += 1
            if self._direct_calls % _PROBE_EVERY:
                # Low concurrency: a future and two extra event-loop turns would buy nothing. Every
                # _PROBE_EVERY-th request goes through the queue instead, and requests arriving meanwhile join
                # it, which is how a rise in concurrency is noticed.
                if self._on_batch is not None:
                    self._on_batch(len(rows))
                return self._run(rows, want_proba)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Prediction] = loop.create_future()
        self._pending.append((rows, want_proba, future))
        self._pending_rows += len(rows)
        if not self._scheduled and not self._busy:
            self._scheduled = True
            if self.max_wait_s > 0 and self._pending_rows < self.max_batch_rows:
                loop.call_later(self.max_wait_s, self._flush)
            else:
                loop.call_soon(self._flush)
        return await future

    def _take(self) -> list[_Item]:
        taken = 0
        count = 0
        for rows, _want, _future in self._pending:
            if count and taken + len(rows) > self.max_batch_rows:
                break
            taken += len(rows)
            count += 1
        batch, self._pending = self._pending[:count], self._pending[count:]
        self._pending_rows -= taken
        return batch

    def _flush(self) -> None:
        self._scheduled = False
        if self._busy or not self._pending:
            return
        batch = self._take()
        # Smoothed number of requests per flush: about one means nobody shares, so go direct.
        self._requests_per_flush = 0.7 * self._requests_per_flush + 0.3 * len(batch)
        self._direct = self._requests_per_flush < 1.5
        if self.predictor.inline:
            self._deliver(batch, self._predict_batch(batch))
            if self._pending:
                self._scheduled = True
                asyncio.get_running_loop().call_soon(self._flush)
        else:
            self._busy = True
            task = asyncio.get_running_loop().create_task(self._flush_in_executor(batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _flush_in_executor(self, batch: list[_Item]) -> None:
        loop = asyncio.get_running_loop()
        try:
            outcome = await loop.run_in_executor(self._executor, self._predict_batch, batch)
            self._deliver(batch, outcome)
        except BaseException as exc:  # never leave a caller hanging
            for _rows, _want, future in batch:
                if not future.done():
                    future.set_exception(PredictionFailed(str(exc)))
            raise
        finally:
            self._busy = False
            if self._pending and not self._scheduled:
                self._scheduled = True
                loop.call_soon(self._flush)

    def _predict_batch(self, batch: list[_Item]) -> list[Prediction | PredictionFailed]:
        if self._on_batch is not None:
            self._on_batch(sum(len(rows) for rows, _w, _f in batch))
        if len(batch) == 1:
            rows, want_proba, _future = batch[0]
            try:
                return [self._run(rows, want_proba)]
            except PredictionFailed as exc:
                return [exc]
        want_proba = any(want for _rows, want, _future in batch)
        try:
            joined = self._run(np.concatenate([rows for rows, _w, _f in batch]), want_proba)
        except PredictionFailed:
            # One caller's bad rows must not fail the others: retry each alone.
            results: list[Prediction | PredictionFailed] = []
            for rows, want, _future in batch:
                try:
                    results.append(self._run(rows, want))
                except PredictionFailed as exc:
                    results.append(exc)
            return results
        out: list[Prediction | PredictionFailed] = []
        start = 0
        for rows, want, _future in batch:
            end = start + len(rows)
            proba = joined.proba[start:end] if want and joined.proba is not None else None
            out.append(Prediction(joined.predict[start:end], proba))
            start = end
        return out

    @staticmethod
    def _deliver(batch: list[_Item], results: list[Any]) -> None:
        for (_rows, _want, future), result in zip(batch, results, strict=True):
            if future.done():  # the client went away
                continue
            if isinstance(result, PredictionFailed):
                future.set_exception(result)
            else:
                future.set_result(result)

    async def drain(self) -> None:
        """Wait for batches already running in the executor."""
        while self._pending or self._busy or self._tasks:
            await asyncio.sleep(0.005)
