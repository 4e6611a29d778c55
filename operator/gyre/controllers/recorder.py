"""The recorder: status writes and Events, written behind the writes that make things happen.

A handler writes the children its plan asks for (a run's Job) itself, then hands the status that records them and
the Events about them to the recorder, whose few threads write them. Under a burst the API server thus takes the
Jobs first and the records after, instead of one record per Job in between; in steady state the queue is empty and
a record lands milliseconds after its handler returns.

Records of one object are written in order, one at a time. A status patch still waiting when a newer one for the
same object arrives is merged into it (top-level fields, as `status_patch` makes them), so a burst of changes to
one object costs one write. Nothing depends on a record having landed: plans derive where an object is from its
children (a run is Running when its Job exists), and a record lost with the process is planned again when the
operator lists its objects at start-up.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gyre.builders.meta import Owner
from gyre.reconcile.plan import Event

__all__ = ["EventWriter", "Recorder", "StatusWriter"]

StatusWriter = Callable[[Owner, dict[str, Any]], None]
EventWriter = Callable[[Owner, Event], None]
THREADS = 2
log = logging.getLogger(__name__)


@dataclass
class _Record:
    owner: Owner
    status: dict[str, Any] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)


class Recorder:
    """A queue of records per object (status patch, then Events), drained oldest object first by `threads`
    daemon threads started on first use. A failed write is logged and counted by the writer; it is not retried
    here (the writers retry transient failures themselves)."""

    def __init__(self, write_status: StatusWriter, write_event: EventWriter, threads: int = THREADS) -> None:
        self._write_status = write_status
        self._write_event = write_event
        self._threads = threads
        self._waiting: OrderedDict[tuple[str, str, str], _Record] = OrderedDict()
        self._writing: set[tuple[str, str, str]] = set()
        self._changed = threading.Condition()
        self._started = False
        self._stopped = False

    def record(
        self, owner: Owner, status: dict[str, Any] | None = None, events: list[Event] | None = None
    ) -> None:
        """Queue a status patch and Events of `owner`; returns at once."""
        if not status and not events:
            return
        key = (owner.kind, owner.namespace, owner.name)
        with self._changed:
            if self._stopped:
                return
            waiting = self._waiting.get(key)
            if waiting is None:
                waiting = self._waiting[key] = _Record(owner)
            waiting.owner = owner
            waiting.status.update(status or {})
            waiting.events.extend(events or [])
            if not self._started:
                self._start()
            self._changed.notify()

    def idle(self, timeout: float) -> bool:
        """Wait until every queued record is written (or `timeout` seconds pass); True when idle."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while self._waiting or self._writing:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(left)
        return True

    def stop(self) -> None:
        """Drop what is queued and record nothing more: a replica that lost its lease must not write over what the
        new leader records (the new leader plans every object again when it starts)."""
        with self._changed:
            self._stopped = True
            self._waiting.clear()
            self._changed.notify_all()

    def _start(self) -> None:
        for i in range(self._threads):
            threading.Thread(target=self._drain, name=f"gyre-recorder-{i}", daemon=True).start()
        self._started = True

    def _next(self) -> tuple[tuple[str, str, str], _Record]:
        with self._changed:
            while True:
                key = next((k for k in self._waiting if k not in self._writing), None)
                if key is not None:
                    self._writing.add(key)
                    return key, self._waiting.pop(key)
                self._changed.wait()

    def _drain(self) -> None:
        while True:
            key, record = self._next()
            try:
                self._write(record)
            finally:
                with self._changed:
                    self._writing.discard(key)
                    self._changed.notify_all()

    def _write(self, record: _Record) -> None:
        if record.status:
            try:
                self._write_status(record.owner, record.status)
            except Exception:
                log.exception("status write of %s %s/%s failed", *_name(record.owner))
        for event in record.events:
            try:
                self._write_event(record.owner, event)
            except Exception:
                log.exception("Event %s of %s %s/%s failed", event.reason, *_name(record.owner))


def _name(owner: Owner) -> tuple[str, str, str]:
    return owner.kind, owner.namespace, owner.name
