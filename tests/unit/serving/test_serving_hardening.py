"""Slow or hostile clients cannot hold the server: half-sent requests are dropped and their files recovered,
connections beyond the cap are refused with a 503, and a bad request costs at most one log line, never a traceback."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Callable

import orjson
import pytest
from serving_helpers import Trained, gyre_serve, serve

from gyre.serving.app import ServerConfig
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


async def test_connections_beyond_the_cap_get_503_and_are_closed(
    served: Callable[[str, str], ServedModel],
) -> None:
    async with serve(served("iris", "auto"), ServerConfig(max_connections=3)) as (client, _server):
        port = client.server.port
        assert port is not None
        held = [await asyncio.open_connection("127.0.0.1", port) for _ in range(3)]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        refused = await asyncio.wait_for(reader.read(), timeout=60)
        writer.close()
        assert refused.startswith(b"HTTP/1.1 503")
        assert b"too many connections" in refused
        for _reader, held_writer in held:
            held_writer.close()
            await held_writer.wait_closed()
        # Once the held connections are gone, new ones are served again.
        for _ in range(600):
            response = await client.post(
                "/v1/models/iris:predict", json={"instances": [[5.1, 3.5, 1.4, 0.2]]}
            )
            if response.status == 200:
                break
            await asyncio.sleep(0.1)
        assert response.status == 200


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
