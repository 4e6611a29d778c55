"""Local HTTP servers for the source-policy tests: a metadata impostor on 127.0.0.1, a data server on 127.0.0.2.

Both listen on one port, so a redirect and a name (localhost) reach the same server; every request is counted.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from aiohttp import web

from gyre.policy.sources import DEFAULT_REFUSED_HOSTS, SourcePolicy

SENTINEL = "wJalrXUtnFEMI-K7MDENG-SENTINEL-5f3a"
DATA = "a,b\n1,2\n3,4\n"

# The defaults, with the loopback block narrowed to 127.0.0.1 so that 127.0.0.2 can play an allowed host.
TEST_REFUSED = (*(h for h in DEFAULT_REFUSED_HOSTS if h != "127.0.0.0/8"), "127.0.0.1/32")
TEST_POLICY = SourcePolicy(refused_hosts=TEST_REFUSED)
# The same without the refused *names*, so that `localhost` is refused only by what it resolves to.
BY_ADDRESS_POLICY = SourcePolicy(refused_hosts=tuple(h for h in TEST_REFUSED if h[0].isdigit() or ":" in h))


@dataclass
class Servers:
    metadata: str  # base URL on 127.0.0.1 (refused)
    data: str  # base URL on 127.0.0.2 (allowed)
    port: int
    hits: Counter[str]


def _app(hits: Counter[str], port: int) -> web.Application:
    async def handle(request: web.Request) -> web.StreamResponse:
        hits[f"{request.host.split(':')[0]}{request.path}"] += 1
        path = request.path
        if path == "/creds.csv":
            return web.Response(text=f"AccessKeyId,SecretAccessKey\nASIAEXAMPLE,{SENTINEL}\n")
        if path == "/ok.csv":
            return web.Response(text=DATA)
        targets = {
            "/to-metadata.csv": f"http://127.0.0.1:{port}/creds.csv",
            "/to-localhost.csv": f"http://localhost:{port}/creds.csv",
            "/to-ok.csv": f"http://127.0.0.2:{port}/ok.csv",
        }
        if path in targets:
            raise web.HTTPFound(targets[path])
        raise web.HTTPNotFound()

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    return app


@pytest.fixture(scope="session")
def servers() -> Iterator[Servers]:
    # One port on both addresses, so a redirect and a name (localhost) reach the same server.
    probe = socket.socket()
    probe.bind(("127.0.0.2", 0))
    port = probe.getsockname()[1]
    probe.close()
    hits: Counter[str] = Counter()
    loop = asyncio.new_event_loop()
    started = threading.Event()
    runner = web.AppRunner(_app(hits, port))

    async def start() -> None:
        await runner.setup()
        for host in ("127.0.0.1", "127.0.0.2"):
            await web.TCPSite(runner, host, port).start()
        started.set()

    thread = threading.Thread(
        target=lambda: (loop.run_until_complete(start()), loop.run_forever()), daemon=True
    )
    thread.start()
    assert started.wait(10)
    yield Servers(f"http://127.0.0.1:{port}", f"http://127.0.0.2:{port}", port, hits)
    asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
