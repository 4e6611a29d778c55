"""The Lease election's decisions, on plain data: who may act, and when a standby may take over."""

from __future__ import annotations

import socket
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import kubernetes
import pytest

from gyre.controllers import leader
from gyre.controllers.leader import Decision, LeaseRecord, Observation, decide, observe


def record(holder: str, rv: str = "1", duration: int = 15) -> LeaseRecord:
    return LeaseRecord(holder=holder, duration_s=duration, transitions=0, resource_version=rv)


@pytest.mark.parametrize(
    ("lease", "observed", "now", "expected"),
    [
        pytest.param(None, None, 0.0, Decision.CREATE, id="no lease yet: create it"),
        pytest.param(record("me"), None, 0.0, Decision.RENEW, id="our lease: renew"),
        pytest.param(record(""), None, 0.0, Decision.ACQUIRE, id="released lease: take it at once"),
        pytest.param(record("other"), None, 100.0, Decision.WAIT, id="first sight of a holder: wait"),
        pytest.param(
            record("other"),
            Observation("1", 0.0),
            14.9,
            Decision.WAIT,
            id="unchanged for less than the duration",
        ),
        pytest.param(
            record("other"),
            Observation("1", 0.0),
            15.0,
            Decision.ACQUIRE,
            id="unchanged for the duration: expired",
        ),
        pytest.param(
            record("other", rv="2"),
            Observation("1", 0.0),
            60.0,
            Decision.WAIT,
            id="the holder renewed since we last looked: wait",
        ),
        pytest.param(
            record("other", duration=5),
            Observation("1", 0.0),
            5.0,
            Decision.ACQUIRE,
            id="the lease's own duration",
        ),
    ],
)
def test_decide(
    lease: LeaseRecord | None, observed: Observation | None, now: float, expected: Decision
) -> None:
    assert decide(lease, "me", now, observed) is expected


def test_a_standby_takes_over_only_after_seeing_the_same_record_for_a_full_duration() -> None:
    seen: Observation | None = None
    timeline = [(0.0, "1"), (5.0, "2"), (10.0, "3"), (12.0, "3"), (24.0, "3"), (25.0, "3")]
    decisions = []
    for now, rv in timeline:
        lease = record("other", rv=rv)
        seen = observe(lease, seen, now)
        decisions.append(decide(lease, "me", now, seen))
    # The holder renewed at 5 and 10; it stopped after 10, so the lease is ours at 10 + 15.
    assert decisions == [Decision.WAIT] * 5 + [Decision.ACQUIRE]


def test_observe_restarts_the_clock_only_when_the_record_changes() -> None:
    first = observe(record("a", rv="7"), None, 3.0)
    assert first == Observation("7", 3.0)
    assert observe(record("a", rv="7"), first, 9.0) is first
    assert observe(record("a", rv="8"), first, 9.0) == Observation("8", 9.0)
    assert observe(None, first, 9.0) is None


def test_the_default_timing_gives_up_before_a_standby_may_take_over() -> None:
    for timing in (leader.Timing(), leader.Timing.for_duration(15), leader.Timing.for_duration(6)):
        assert timing.retry <= timing.renew_every < timing.renew_deadline < timing.duration
    assert leader.Timing.for_duration(15) == leader.Timing()


def test_identity_is_unique_per_process_and_names_the_pod(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POD_NAME", "gyre-operator-abc")
    assert leader.default_identity().startswith("gyre-operator-abc_")


def test_lease_namespace_comes_from_the_downward_api_or_the_service_account(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("POD_NAMESPACE", "gyre-system")
    assert leader.default_namespace() == "gyre-system"
    monkeypatch.delenv("POD_NAMESPACE")
    sa = tmp_path / "namespace"
    monkeypatch.setattr(leader, "SERVICEACCOUNT_NAMESPACE", sa)
    assert leader.default_namespace() is None
    sa.write_text("ops\n")
    assert leader.default_namespace() == "ops"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_standby_answers_the_liveness_probe_and_frees_the_port_for_kopf() -> None:
    port = _free_port()
    url = f"http://127.0.0.1:{port}/healthz"
    state = {"alive": True}
    with leader.standby_health(url, lambda: state["alive"]):
        with urllib.request.urlopen(url, timeout=5) as resp:
            assert resp.status == 200
        state["alive"] = False
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(url, timeout=5)
        assert err.value.code == 503
    # kopf binds the same address next.
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))


def test_a_leader_that_cannot_reach_the_api_server_gives_up_within_the_deadline() -> None:
    # A real client pointed at a closed port: every renewal fails with "connection refused".
    config = kubernetes.client.Configuration(host=f"https://127.0.0.1:{_free_port()}")
    api = kubernetes.client.CoordinationV1Api(kubernetes.client.ApiClient(config))
    timing = leader.Timing(duration=4.0, renew_every=0.3, renew_deadline=1.0, retry=0.1)
    elector = leader.Elector("ns", "gyre-operator", "me", timing, api=api)
    lost = threading.Event()
    started = time.monotonic()
    elector.keep(lost.set)
    assert lost.wait(5), "the leader kept working without its Lease"
    # Never later than the deadline plus one bounded request: before a standby may take over (the duration).
    assert time.monotonic() - started < timing.duration
    elector.stop()
