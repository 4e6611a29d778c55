"""Slow or hostile clients cannot hold the server: half-sent requests are dropped and their files recovered,
connections beyond the cap wait in the listen queue until a slot frees, and a bad request costs at most one log
line, never a traceback."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import orjson
import pytest
from aiohttp import web
from serving_helpers import Trained, gyre_serve, serve

from gyre.serving.app import CappedSite, ModelServer, ServerConfig
from gyre.serving.model import ServedModel

HALF_HEAD = b"POST /v1/models/iris:predict HTTP/1.1\r\nHost: gyre\r\nContent-Len"
HALF_BODY = b'POST /v1/models/iris:predict HTTP/1.1\r\nHost: gyre\r\nContent-Length: 100\r\n\r\n{"instan'


def _until(condition: Callable[[], bool], what: str, seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.2)


def _read_to_eof(sock: socket.socket) -> bytes:
    sock.settimeout(90)
    chunks = []
    while chunk := sock.recv(4096):
        chunks.append(chunk)
    return b"".join(chunks)


def test_half_sent_requests_are_dropped_and_their_files_recovered(trained: dict[str, Trained]) -> None:
    flags = ("--header-timeout", "1", "--body-timeout", "1")
    with gyre_serve(trained["iris"].directory, *flags) as server:
        before = server.open_files()
        sockets = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(60)]
        try:
            for i, sock in enumerate(sockets):
                sock.sendall(HALF_HEAD if i % 2 else HALF_BODY)
            answers = [_read_to_eof(sock) for sock in sockets]
        finally:
            for sock in sockets:
                sock.close()
        # A half-sent head is closed without an answer; a half-sent body gets a 408 that says why.
        assert all(answer == b"" for answer in answers[1::2])
        for answer in answers[::2]:
            assert answer.startswith(b"HTTP/1.1 408"), answer
            assert b"did not arrive within 1s" in answer
        _until(lambda: server.open_files() <= before, f"open files stayed above {before}")
        assert server.predict_one() == 200


PREDICT = (
    b"POST /v1/models/iris:predict HTTP/1.1\r\nHost: gyre\r\nContent-Type: application/json\r\n"
    b'Content-Length: 37\r\n\r\n{"instances": [[5.1, 3.5, 1.4, 0.2]]}'
)


@asynccontextmanager
async def capped(model: ServedModel, config: ServerConfig) -> AsyncIterator[tuple[ModelServer, int]]:
    """A ModelServer behind the listener `gyre serve` uses, on a loopback port."""
    server = ModelServer(model, config)
    runner = web.ServerRunner(server.server(access_log=None))
    await runner.setup()
    site = CappedSite(runner, "127.0.0.1", 0)
    await site.start()
    await server.start()
    try:
        yield server, site.port
    finally:
        await runner.cleanup()
        await server.close()


def _listen_queue(port: int) -> int:
    """Connections the kernel has completed on a loopback listener that the server has not accepted yet."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        # State 0A is LISTEN; a listener's rx_queue is its accept queue.
        if fields[3] == "0A" and int(fields[1].split(":")[1], 16) == port:
            return int(fields[4].split(":")[1], 16)
    raise AssertionError(f"nothing listens on port {port}")


async def _until_async(condition: Callable[[], bool], what: str) -> None:
    for _ in range(900):
        if condition():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(what)


async def test_at_the_connection_cap_new_connections_wait_in_the_listen_queue_and_are_then_served(
    served: Callable[[str, str], ServedModel],
) -> None:
    async with capped(served("iris", "auto"), ServerConfig(max_connections=3)) as (server, port):
        held = [await asyncio.open_connection("127.0.0.1", port) for _ in range(3)]
        await _until_async(lambda: server.open_connections == 3, "the held connections were never accepted")
        # The kernel completes these handshakes all the same, and queues the connections.
        waiting = [await asyncio.open_connection("127.0.0.1", port) for _ in range(2)]
        for _reader, writer in waiting:
            writer.write(PREDICT)
        for _ in range(50):  # turns in which a listener that had not paused would accept them
            await asyncio.sleep(0)
        assert server.open_connections == 3
        assert _listen_queue(port) == 2, (
            "connections beyond the cap should wait, neither accepted nor refused"
        )
        _held_reader, first = held.pop(0)
        first.close()
        # A slot is free: the first waiting request is served, and as another client still waits, its answer
        # closes the connection so the slot goes round. The last one is served and kept alive: nobody waits now.
        (first_reader, _), (last_reader, _) = waiting
        first_answer = await asyncio.wait_for(first_reader.read(), timeout=60)
        assert first_answer.startswith(b"HTTP/1.1 200"), first_answer
        assert b"Connection: close" in first_answer
        last_head = await asyncio.wait_for(last_reader.readuntil(b"\r\n\r\n"), timeout=60)
        assert last_head.startswith(b"HTTP/1.1 200") and b"Connection: close" not in last_head
        assert server.open_connections == 3
        for _reader, writer in [*held, *waiting]:
            writer.close()
        await _until_async(lambda: server.open_connections == 0, "the closed connections were never dropped")


async def test_idle_connections_at_the_cap_time_out_so_waiting_clients_are_served(
    served: Callable[[str, str], ServedModel],
) -> None:
    config = ServerConfig(max_connections=2, header_timeout_s=1)
    async with capped(served("iris", "auto"), config) as (server, port):
        idle = [await asyncio.open_connection("127.0.0.1", port) for _ in range(2)]
        await _until_async(lambda: server.open_connections == 2, "the idle connections were never accepted")
        waiting = [await asyncio.open_connection("127.0.0.1", port) for _ in range(5)]
        for _reader, writer in waiting:
            writer.write(PREDICT)
        # Nobody closes the idle connections: the header timeout does, and each answer frees its slot in turn.
        answers = [await asyncio.wait_for(reader.read(), timeout=60) for reader, _writer in waiting]
        assert all(answer.startswith(b"HTTP/1.1 200") for answer in answers), answers
        assert [await asyncio.wait_for(reader.read(), timeout=60) for reader, _ in idle] == [b"", b""]
        for _reader, writer in [*idle, *waiting]:
            writer.close()


def test_gyre_serve_holds_clients_beyond_its_cap_until_a_slot_frees(trained: dict[str, Trained]) -> None:
    flags = ("--max-connections", "8", "--header-timeout", "1")
    with gyre_serve(trained["iris"].directory, *flags) as server:
        idle = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(8)]
        waiting = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(40)]
        try:
            for sock in waiting:
                sock.sendall(PREDICT)
            answers = [_read_to_eof(sock) for sock in waiting]
        finally:
            for sock in [*idle, *waiting]:
                sock.close()
        assert all(answer.startswith(b"HTTP/1.1 200") for answer in answers), [a[:40] for a in answers]
        assert server.predict_one() == 200


@pytest.mark.parametrize(
    "raw",
    [
        b"GET / HTTP/1.1\r\nHost: gyre\r\nthis is not a header\r\n\r\n",
        b"GET /\x00 HTTP/1.1\r\nHost: gyre\r\n\r\n",
        b'POST /v1/models/iris:predict HTTP/1.1\r\nHost: gyre\r\nContent-Length: 3\r\n\r\n{"i',
        b"POST /v1/models/iris:predict HTTP/1.1\r\nHost: gyre\r\nContent-Length: 5\r\nContent-Encoding: gzip\r\n"
        b"\r\nnot-z",
        b"POST /v2/models/iris/infer HTTP/1.1\r\nHost: gyre\r\nContent-Length: 2\r\n"
        b"Inference-Header-Content-Length: 9\r\n\r\n{}",
    ],
    ids=["bad header line", "bad request line", "malformed json", "bad gzip", "bad binary header"],
)
async def test_a_bad_request_logs_one_line_without_traceback(
    served: Callable[[str, str], ServedModel], caplog: pytest.LogCaptureFixture, raw: bytes
) -> None:
    async with serve(served("iris", "auto")) as (client, _server):
        port = client.server.port
        assert port is not None
        with caplog.at_level(logging.DEBUG, logger="gyre"), caplog.at_level(logging.DEBUG, logger="aiohttp"):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(raw)
            answer = await asyncio.wait_for(reader.read(), timeout=60)
            writer.close()
            await asyncio.sleep(0.05)  # let the server finish with the connection
    assert answer.split(b" ")[1].startswith(b"4"), answer
    lines = [r for r in caplog.records if r.levelno >= logging.INFO]
    assert len(lines) <= 1, [r.getMessage() for r in lines]
    assert all(r.levelno <= logging.WARNING and not r.exc_info for r in lines), [
        r.getMessage() for r in lines
    ]
    assert all("\n" not in r.getMessage() for r in lines)


async def test_valid_requests_log_nothing(
    served: Callable[[str, str], ServedModel], caplog: pytest.LogCaptureFixture
) -> None:
    async with serve(served("iris", "auto")) as (client, _server):
        with caplog.at_level(logging.INFO):
            body = orjson.dumps({"instances": [[5.1, 3.5, 1.4, 0.2]]})
            assert (await client.post("/v1/models/iris:predict", data=body)).status == 200
    assert [r for r in caplog.records if r.name.startswith(("gyre", "aiohttp"))] == []
