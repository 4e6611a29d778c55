"""The recorder writes each object's records in order, merges a waiting status patch with a newer one, and keeps
going when a write fails. The writers here are plain functions that log what they were given."""

from __future__ import annotations

import threading
from typing import Any

from gyre.api.reasons import EventType
from gyre.builders.meta import Owner
from gyre.controllers.recorder import Recorder
from gyre.reconcile.plan import Event

RUN = Owner(kind="TrainingRun", name="run", namespace="ml", uid="uid-run")
OTHER = Owner(kind="TrainingRun", name="other", namespace="ml", uid="uid-other")
STARTED = Event(EventType.NORMAL, "Started", "Job run-train created")


class Log:
    def __init__(self, gate: threading.Event | None = None) -> None:
        self.writes: list[tuple[str, str, Any]] = []
        self.gate = gate
        self.lock = threading.Lock()
        self.in_flight: dict[str, int] = {}
        self.most_in_flight = 0

    def status(self, owner: Owner, patch: dict[str, Any]) -> None:
        with self.lock:
            self.in_flight[owner.name] = self.in_flight.get(owner.name, 0) + 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight[owner.name])
        if self.gate is not None:
            self.gate.wait(5)
        with self.lock:
            self.in_flight[owner.name] -= 1
            self.writes.append(("status", owner.name, dict(patch)))

    def event(self, owner: Owner, event: Event) -> None:
        with self.lock:
            self.writes.append(("event", owner.name, event.reason))


def test_the_status_is_written_before_the_events_of_the_same_plan() -> None:
    log = Log()
    recorder = Recorder(log.status, log.event)
    recorder.record(RUN, {"phase": "Running", "jobName": "run-train"}, [STARTED])
    assert recorder.idle(5)
    assert log.writes == [
        ("status", "run", {"phase": "Running", "jobName": "run-train"}),
        ("event", "run", "Started"),
    ]


def test_a_status_patch_still_waiting_is_merged_with_a_newer_one_into_one_write() -> None:
    gate = threading.Event()
    log = Log(gate)
    recorder = Recorder(log.status, log.event, threads=1)
    recorder.record(OTHER, {"phase": "Pending"})  # holds the only thread until the gate opens
    recorder.record(RUN, {"phase": "Running", "jobName": "run-train"}, [STARTED])
    recorder.record(RUN, {"phase": "Succeeded", "completionTime": "t"})
    gate.set()
    assert recorder.idle(5)
    run_writes = [w for w in log.writes if w[1] == "run"]
    assert run_writes == [
        ("status", "run", {"phase": "Succeeded", "jobName": "run-train", "completionTime": "t"}),
        ("event", "run", "Started"),
    ]


def test_records_of_one_object_are_never_written_at_the_same_time_or_out_of_order() -> None:
    gate = threading.Event()
    log = Log(gate)
    recorder = Recorder(log.status, log.event, threads=4)
    recorder.record(RUN, {"phase": "Running"})
    # The second record waits for the first write to finish, although three threads are free.
    threading.Timer(0.2, lambda: recorder.record(RUN, {"phase": "Succeeded"})).start()
    threading.Timer(0.5, gate.set).start()
    threading.Event().wait(0.3)
    assert log.writes == []
    assert recorder.idle(5)
    assert [w[2] for w in log.writes] == [{"phase": "Running"}, {"phase": "Succeeded"}]
    assert log.most_in_flight == 1


def test_a_failed_status_write_does_not_stop_the_events_nor_the_other_objects() -> None:
    log = Log()

    def refuse_run(owner: Owner, patch: dict[str, Any]) -> None:
        if owner.name == "run":
            raise RuntimeError("422")
        log.status(owner, patch)

    recorder = Recorder(refuse_run, log.event)
    recorder.record(RUN, {"phase": "Running"}, [STARTED])
    recorder.record(OTHER, {"phase": "Running"})
    assert recorder.idle(5)
    assert sorted(log.writes) == [("event", "run", "Started"), ("status", "other", {"phase": "Running"})]


def test_an_empty_record_writes_nothing() -> None:
    log = Log()
    recorder = Recorder(log.status, log.event)
    recorder.record(RUN, {}, [])
    assert recorder.idle(1) and log.writes == []


def test_a_stopped_recorder_drops_what_is_queued_and_records_nothing_more() -> None:
    gate = threading.Event()
    log = Log(gate)
    recorder = Recorder(log.status, log.event, threads=1)
    recorder.record(OTHER, {"phase": "Running"})  # being written when the lease is lost
    while log.in_flight.get("other") != 1:
        threading.Event().wait(0.01)
    recorder.record(RUN, {"phase": "Running"}, [STARTED])
    recorder.stop()
    recorder.record(RUN, {"phase": "Succeeded"})
    gate.set()
    assert recorder.idle(5)
    assert log.writes == [("status", "other", {"phase": "Running"})]
