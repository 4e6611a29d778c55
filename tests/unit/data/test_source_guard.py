"""The source policy inside the profiling pod, against real local HTTP servers and real files.

Two servers run in a thread: one on 127.0.0.1 plays a cloud metadata service (it serves a CSV holding a secret and
counts who asked), one on 127.0.0.2 plays an allowed data server (it serves data, and redirects). The policy refuses
127.0.0.1 and allows 127.0.0.2, so every check here goes through the real resolver, sockets and redirects.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pandas as pd
import pytest
from source_servers import BY_ADDRESS_POLICY, DATA, SENTINEL, TEST_POLICY, Servers

from gyre.data.errors import DataError
from gyre.data.guard import SourceGuard, SourceRefusedError
from gyre.data.sources import load_source
from gyre.policy.sources import SourcePolicy, SourceScope, source_scope


def read(source: str, policy: SourcePolicy = TEST_POLICY) -> pd.DataFrame:
    guard = SourceGuard(SourceScope(policy), source)
    return load_source(source, "csv", guard=guard)


def refused(source: str, policy: SourcePolicy = TEST_POLICY) -> DataError:
    with pytest.raises(DataError) as caught:
        read(source, policy)
    assert caught.value.reason == "SourceRefused", str(caught.value)
    assert SENTINEL not in str(caught.value)
    return caught.value


def test_an_allowed_http_source_is_read(servers: Servers) -> None:
    frame = read(f"{servers.data}/ok.csv")
    assert frame.to_dict("list") == {"a": [1, 3], "b": [2, 4]}


def test_a_redirect_between_allowed_hosts_is_followed(servers: Servers) -> None:
    frame = read(f"{servers.data}/to-ok.csv")
    assert list(frame.columns) == ["a", "b"]


def test_the_metadata_address_is_refused_before_any_request(servers: Servers) -> None:
    before = servers.hits["127.0.0.1/creds.csv"]
    error = refused(f"{servers.metadata}/creds.csv")
    assert "refusedHosts" in str(error) and "127.0.0.1/32" in str(error)
    assert servers.hits["127.0.0.1/creds.csv"] == before


def test_a_redirect_from_an_allowed_host_to_a_refused_one_is_not_followed(servers: Servers) -> None:
    before = servers.hits["127.0.0.1/creds.csv"]
    error = refused(f"{servers.data}/to-metadata.csv")
    assert "host 127.0.0.1 matches the refused host '127.0.0.1/32'" in str(error)
    assert servers.hits["127.0.0.2/to-metadata.csv"] >= 1  # the allowed hop was made
    assert servers.hits["127.0.0.1/creds.csv"] == before  # the refused one never was


def test_a_name_that_resolves_to_a_refused_address_is_refused_at_connection(servers: Servers) -> None:
    before = servers.hits["localhost/creds.csv"]
    error = refused(f"http://localhost:{servers.port}/creds.csv", BY_ADDRESS_POLICY)
    assert "localhost resolves only to refused addresses" in str(error)
    assert servers.hits["localhost/creds.csv"] == before


def test_a_redirect_to_a_name_that_resolves_to_a_refused_address_is_not_followed(servers: Servers) -> None:
    before = servers.hits["localhost/creds.csv"]
    refused(f"{servers.data}/to-localhost.csv", BY_ADDRESS_POLICY)
    refused(f"{servers.data}/to-localhost.csv", TEST_POLICY)  # there, refused by its name already
    assert servers.hits["localhost/creds.csv"] == before


def test_without_a_refusal_the_metadata_server_would_have_answered(servers: Servers) -> None:
    # The harness can fail: with loopback allowed, the same read returns the secret.
    frame = read(f"{servers.metadata}/creds.csv", SourcePolicy(refused_hosts=()))
    assert SENTINEL in frame.to_csv()


def test_every_socket_is_checked_before_it_connects() -> None:
    guard = SourceGuard(SourceScope(SourcePolicy()), "http://example.com/x.csv")
    with pytest.raises(SourceRefusedError):
        guard.open_socket((socket.AF_INET, socket.SOCK_STREAM, 6, "", ("169.254.169.254", 80)))
    with pytest.raises(SourceRefusedError):
        guard.open_socket((socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("::ffff:127.0.0.1", 80, 0, 0)))
    allowed = guard.open_socket((socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", 80)))
    allowed.close()


# Files -------------------------------------------------------------------------------------------------------


@pytest.fixture
def store(tmp_path: Path) -> Path:
    own = tmp_path / "store" / "sources" / "ml"
    own.mkdir(parents=True)
    (own / "ok.csv").write_text(DATA)
    (tmp_path / "store" / "models").mkdir()
    (tmp_path / "store" / "models" / "m.csv").write_text(DATA)
    (tmp_path / "outside.csv").write_text(DATA)
    return tmp_path / "store"


def read_file(store: Path, source: str) -> pd.DataFrame:
    scope = source_scope(SourcePolicy(), f"file://{store}", "ml")
    return load_source(source, "csv", guard=SourceGuard(scope, source))


def test_a_file_in_the_namespaces_own_area_is_read(store: Path) -> None:
    assert list(read_file(store, f"file://{store}/sources/ml/ok.csv").columns) == ["a", "b"]


@pytest.mark.parametrize(
    ("link", "target"),
    [
        ("environ.csv", "/proc/self/environ"),
        ("outside.csv", "../../../outside.csv"),
        ("model.csv", "../../models/m.csv"),
    ],
)
def test_a_symlink_out_of_the_own_area_is_refused(store: Path, link: str, target: str) -> None:
    os.symlink(target, store / "sources" / "ml" / link)
    with pytest.raises(DataError) as caught:
        read_file(store, f"file://{store}/sources/ml/{link}")
    assert caught.value.reason == "SourceRefused"


def test_a_fifo_in_the_own_area_is_refused_without_hanging(store: Path) -> None:
    os.mkfifo(store / "sources" / "ml" / "pipe.csv")
    with pytest.raises(DataError) as caught:
        read_file(store, f"file://{store}/sources/ml/pipe.csv")
    assert caught.value.reason == "SourceRefused" and "not a regular file" in str(caught.value)


def test_the_stores_internal_areas_and_other_namespaces_are_refused(store: Path) -> None:
    other = store / "sources" / "other"
    other.mkdir()
    (other / "x.csv").write_text(DATA)
    for source in (f"file://{store}/models/m.csv", f"file://{other}/x.csv"):
        with pytest.raises(DataError) as caught:
            read_file(store, source)
        assert caught.value.reason == "SourceRefused", source
