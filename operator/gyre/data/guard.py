"""The source policy inside the profiling pod: check the source, then every file and address actually opened.

The operator's check (gyre.policy.sources.check_source) sees only the URI. Here the pod also refuses what the URI
leads to: a symlink out of a data root (the path checked is the one the kernel opened, read back from
/proc/self/fd), a name that resolves to a refused address, DNS rebinding (the resolver's filtered answer is what
the connection uses, and every socket is checked again before it connects), and an HTTP redirect to a refused host
(every hop passes the same host check). Each refusal is kept, so the caller reports it instead of the transport
error it caused.
"""

from __future__ import annotations

import os
import socket
import stat
from typing import IO, Any

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

from gyre.data.errors import DataError
from gyre.policy.sources import (
    Refusal,
    SourceScope,
    check_address,
    check_file_path,
    check_host,
    check_source,
    redact,
)

__all__ = ["REFUSED", "SourceGuard", "SourceRefusedError"]

REFUSED = "SourceRefused"


class SourceRefusedError(OSError):
    """A connection or file the source policy refuses (an OSError, so transports pass it on as their own)."""


class SourceGuard:
    """Opens one source under a SourceScope, refusing whatever the policy refuses on the way."""

    def __init__(self, scope: SourceScope, source: str) -> None:
        self.scope = scope
        self.source = source
        self.refusals: list[Refusal] = []

    def refuse(self, refusal: Refusal) -> SourceRefusedError:
        """Keep a refusal; the error to raise in the transport's code path."""
        self.refusals.append(refusal)
        return SourceRefusedError(refusal.message)

    def error(self) -> DataError | None:
        """The first refusal as the DataError to report, or None when nothing was refused."""
        if not self.refusals:
            return None
        return DataError(self.refusals[0].message, reason=REFUSED)

    def check(self) -> None:
        """The operator's check, again, in the pod. Raises DataError(SourceRefused)."""
        refusal = check_source(self.source, self.scope)
        if refusal is not None:
            self.refusals.append(refusal)
            raise DataError(refusal.message, reason=REFUSED)

    # Files --------------------------------------------------------------------------------------------------

    def open_file(self, path: str) -> IO[bytes]:
        """Open a local file, then check the path the kernel actually opened (symlinks and races included)."""
        # O_NONBLOCK: a FIFO planted in a data root must not hang the open; regular files ignore it.
        fd = os.open(path, os.O_RDONLY | os.O_NOCTTY | os.O_NONBLOCK)
        try:
            opened = _opened_path(fd, path)
            refusal = check_file_path(opened, self._resolved_scope(), self.source)
            if refusal is not None:
                raise self.refuse(refusal)
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise self.refuse(
                    Refusal(self.source, "fileRoots", f"{opened} is not a regular file", "name a file")
                )
            os.set_blocking(fd, True)
            return os.fdopen(fd, "rb")
        except BaseException:
            os.close(fd)
            raise

    def _resolved_scope(self) -> SourceScope:
        """The scope with its directories resolved as the kernel sees them, to compare with an opened path."""
        policy = self.scope.policy

        def real(url: str | None) -> str | None:
            if url is None or not url.startswith("file://"):
                return url
            return "file://" + os.path.realpath(url[len("file://") :]).rstrip("/") + "/"

        roots = tuple(os.path.realpath(r) for r in policy.file_roots)
        return SourceScope(
            policy.model_copy(update={"file_roots": roots}),
            own_area=real(self.scope.own_area),
            store_area=real(self.scope.store_area),
        )

    # HTTP ---------------------------------------------------------------------------------------------------

    def check_url(self, url: str, host: str | None) -> bool:
        """Check one request (the first, or a redirect hop); True when its host was allowed by a name entry."""
        scheme = url.partition("://")[0].lower()
        if scheme not in self.scope.policy.schemes:
            raise self.refuse(
                Refusal(
                    redact(self.source),
                    "schemes",
                    f"it leads to {redact(url)}, whose scheme {scheme}:// is not allowed",
                    f"a cluster admin allows it by adding {scheme!r} to schemes in policy.sources",
                )
            )
        return self.check_name(host or "")

    def check_name(self, host: str) -> bool:
        """Check a host about to be resolved or reached; True when a name entry allowed it."""
        verdict = check_host(host, self.scope.policy, self.source)
        if isinstance(verdict, Refusal):
            raise self.refuse(verdict)
        return verdict == "name"

    def check_connect(self, address: str, *, by_name: bool) -> None:
        """Check one address a connection is about to reach."""
        refusal = check_address(address, self.scope.policy, self.source, by_name=by_name)
        if refusal is not None:
            raise self.refuse(refusal)

    async def client(self, **kwargs: Any) -> aiohttp.ClientSession:
        """fsspec HTTPFileSystem's get_client: a session whose every hop, answer and socket is checked."""
        connector = aiohttp.TCPConnector(resolver=_Resolver(self), socket_factory=self.open_socket)

        async def middleware(
            request: aiohttp.ClientRequest, handler: aiohttp.ClientHandlerType
        ) -> aiohttp.ClientResponse:
            self.check_url(str(request.url), request.url.raw_host)
            return await handler(request)

        kwargs.pop("trust_env", None)  # no proxy from the environment: the proxy would make the connection
        return aiohttp.ClientSession(
            connector=connector, middlewares=(middleware,), trust_env=False, **kwargs
        )

    def open_socket(self, addr_info: Any) -> socket.socket:
        """aiohttp's socket factory: refuse an address before the socket connects to it."""
        family, type_, proto, _, sockaddr = addr_info
        # Names were checked by the resolver; this refuses what no name may reach, for IP literals too.
        self.check_connect(str(sockaddr[0]), by_name=True)
        return socket.socket(family=family, type=type_, proto=proto)


def _opened_path(fd: int, fallback: str) -> str:
    """The path of an open file as the kernel resolved it (Linux), else the resolved path that was opened."""
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return os.path.realpath(fallback)


class _Resolver(AbstractResolver):
    """aiohttp's resolver, minus the answers the policy refuses: the connection uses only what is left."""

    def __init__(self, guard: SourceGuard) -> None:
        self._guard = guard
        self._inner = aiohttp.ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        """The addresses of `host` that the policy allows; SourceRefusedError when there are none."""
        guard = self._guard
        by_name = guard.check_name(host)
        answers = await self._inner.resolve(host, port, family)
        policy, source = guard.scope.policy, guard.source
        kept = [a for a in answers if check_address(a["host"], policy, source, by_name=by_name) is None]
        if not kept:
            refusal = check_address(answers[0]["host"], policy, source, by_name=by_name) if answers else None
            if refusal is not None:
                raise guard.refuse(
                    Refusal(
                        refusal.source,
                        refusal.rule,
                        f"host {host} resolves only to refused addresses ({refusal.detail})",
                        refusal.remedy,
                    )
                )
        return kept

    async def close(self) -> None:
        """Release the inner resolver."""
        await self._inner.close()
