"""The artifact store: one fsspec URL root with atomic local writes and streaming sha256."""

from __future__ import annotations

import hashlib
import os
import posixpath
import re
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import IO, Any

import fsspec
from fsspec.implementations.local import LocalFileSystem

from gyre.api import env
from gyre.api.reasons import Reason

__all__ = [
    "PVC_MOUNT_PATH",
    "ArtifactStore",
    "StoreError",
    "check_store_credentials",
    "namespace_store_url",
    "resolve_store_url",
    "sha256_file",
    "sha256_stream",
]

PVC_MOUNT_PATH = env.DEFAULT_PVC_MOUNT
"""Where builders mount the artifact claim in every pod."""

_CHUNK = 1 << 20


class StoreError(Exception):
    """The store URL is malformed or an artifact cannot be read or written.

    `reason` is the CamelCase reason a pod reports (the condition reason the operator shows).
    """

    def __init__(self, message: str, *, reason: str = "StoreError") -> None:
        super().__init__(message)
        self.reason = reason


def check_store_credentials(url: str, environ: Mapping[str, str] | None = None) -> None:
    """Refuse to use an object store whose namespace Secret (named by $GYRE_STORE_SECRET) did not arrive.

    The builders reference the Secret's keys as optional, so a missing Secret or key surfaces here, at once and
    by name, rather than as a pod that never starts or as a silent fallback to other credentials.
    """
    source = os.environ if environ is None else environ
    secret = source.get(env.STORE_SECRET, "")
    if not secret:
        return  # no Secret configured: the platform's own credentials (workload identity), or a local run
    if url.startswith("s3://"):
        missing = [key for key in env.STORE_SECRET_REQUIRED_S3 if not source.get(key)]
    elif url.startswith("gs://"):
        path = source.get(env.GCS_CREDENTIALS, "")
        missing = [] if path and os.path.isfile(path) else [env.GCS_CREDENTIALS_KEY]
    else:
        return
    if missing:
        raise StoreError(
            f"the store Secret {secret!r} of this namespace is missing or has no key {', '.join(missing)}: "
            f"an admin creates it in this namespace (keys: {', '.join(_secret_keys(url))})",
            reason=Reason.STORE_CREDENTIALS_MISSING,
        )


def _secret_keys(url: str) -> tuple[str, ...]:
    if url.startswith("s3://"):
        return env.STORE_SECRET_REQUIRED_S3 + tuple(f"{k} (optional)" for k in env.STORE_SECRET_OPTIONAL_S3)
    return (env.GCS_CREDENTIALS_KEY,)


NAMESPACE_PLACEHOLDER = "{namespace}"
_OBJECT_SCHEMES = ("s3://", "gs://")
_OBJECT_SCHEME_NAMES = ("s3", "s3a", "gs", "gcs")
_NAMESPACE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def namespace_store_url(url: str, namespace: str) -> str:
    """The store root of one namespace's workloads.

    An object store (s3://, gs://) is split per namespace, so each namespace's credentials need reach only its own
    part: `{namespace}` in the URL is replaced (`s3://gyre-{namespace}/artifacts`, a bucket each), otherwise the
    namespace is appended as the last path segment (`s3://bucket/prefix` -> `s3://bucket/prefix/<namespace>`).
    pvc:// and file:// URLs are returned unchanged: a pvc:// claim is already one per namespace.
    """
    if not _NAMESPACE.match(namespace) or len(namespace) > 63:
        raise StoreError(f"namespace {namespace!r} is not a valid Kubernetes namespace name")
    if not url.startswith(_OBJECT_SCHEMES):
        return url
    if NAMESPACE_PLACEHOLDER in url:
        return url.replace(NAMESPACE_PLACEHOLDER, namespace)
    return f"{url.rstrip('/')}/{namespace}"


def resolve_store_url(url: str, *, pvc_mount: str | None = None) -> str:
    """Turn the operator's store setting into an fsspec URL usable inside a pod.

    `pvc://CLAIM/SUBPATH` becomes `file://<mount>/SUBPATH` (mount defaults to $GYRE_PVC_MOUNT or
    /var/lib/gyre/artifacts); a bare absolute path becomes `file://PATH`; other URLs pass through.
    """
    url = url.strip()
    if not url:
        raise StoreError("empty artifact store URL")
    if url.startswith("pvc://"):
        rest = url[len("pvc://") :].strip("/")
        claim, _, subpath = rest.partition("/")
        if not claim:
            raise StoreError(f"pvc store URL needs a claim name: {url!r} (use pvc://CLAIM[/SUBPATH])")
        mount = pvc_mount or os.environ.get(env.PVC_MOUNT) or PVC_MOUNT_PATH
        root = posixpath.join(mount, subpath) if subpath else mount
        return "file://" + posixpath.normpath(root)
    if url.startswith("/"):
        return "file://" + posixpath.normpath(url)
    if "://" not in url:
        raise StoreError(f"artifact store URL needs a scheme: {url!r} (file://, s3://, gs://, pvc://)")
    return url.rstrip("/") if not url.endswith(":///") else url


def sha256_stream(stream: IO[bytes]) -> str:
    """Hex sha256 of a binary stream, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    for chunk in iter(lambda: stream.read(_CHUNK), b""):
        digest.update(chunk)
    return digest.hexdigest()


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a local file."""
    with open(path, "rb") as fh:
        return sha256_stream(fh)


def _modified(info: Mapping[str, Any]) -> float | None:
    """A file's modification time from an fsspec info dict: `mtime` (local), `LastModified` (s3), `updated`
    (gcs)."""
    from datetime import datetime

    for key in ("mtime", "LastModified", "updated", "last_modified"):
        value = info.get(key)
        if isinstance(value, int | float):
            return float(value)
        if isinstance(value, datetime):
            return value.timestamp()
        if isinstance(value, str):
            try:
                return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
            except ValueError:
                continue
    return None


class ArtifactStore:
    """A directory tree under one fsspec URL; every method takes paths relative to the root."""

    def __init__(self, url: str, *, pvc_mount: str | None = None) -> None:
        self.url = resolve_store_url(url, pvc_mount=pvc_mount)
        check_store_credentials(self.url)
        try:
            fs, root = fsspec.core.url_to_fs(self.url)
        except (ImportError, ValueError) as exc:
            raise StoreError(f"cannot open artifact store {self.url!r}: {exc}") from exc
        self.fs: fsspec.AbstractFileSystem = fs
        self.root: str = root.rstrip("/") or "/"
        self._scheme = self.url.split("://", 1)[0]

    @property
    def is_local(self) -> bool:
        """Whether the store is a local filesystem (atomic rename available)."""
        return isinstance(self.fs, LocalFileSystem)

    def path(self, relpath: str) -> str:
        """The filesystem path (no scheme) of `relpath`."""
        rel = relpath.strip("/")
        if any(part == ".." for part in rel.split("/")):
            raise StoreError(f"path escapes the store root: {relpath!r}")
        return posixpath.join(self.root, rel) if rel else self.root

    def uri(self, relpath: str) -> str:
        """The full URL of `relpath`, e.g. `s3://bucket/prefix/models/ns/run`."""
        return (
            f"{self._scheme}://{self.path(relpath)}"
            if self._scheme != "file"
            else "file://" + self.path(relpath)
        )

    @contextmanager
    def _access(self, relpath: str) -> Iterator[None]:
        """Turn an object store's refusal (s3fs and gcsfs raise PermissionError) into a StoreError naming the path.

        `from None`: the backend's exception carries request details; the message names only the path, never a
        credential.
        """
        try:
            yield
        except PermissionError:
            raise StoreError(
                f"access denied to {self.uri(relpath)}: this namespace's store credentials do not allow it "
                "(each namespace may use only its own part of an object store)",
                reason=Reason.STORE_ACCESS_DENIED,
            ) from None

    def exists(self, relpath: str) -> bool:
        """Whether a file or directory exists at `relpath`."""
        with self._access(relpath):
            return bool(self.fs.exists(self.path(relpath)))

    def list_names(self, relpath: str) -> list[str]:
        """The names (last path segment) of the entries directly under `relpath`; FileNotFoundError if none."""
        with self._access(relpath):
            found = self.fs.ls(self.path(relpath), detail=False)
        return [str(p).rstrip("/").rsplit("/", 1)[-1] for p in found]

    def find_files(self, relpath: str) -> list[tuple[str, float | None]]:
        """Every file under `relpath` (recursively) as (store-relative path, modification time in unix seconds or
        None when the backend does not say); an empty list when nothing is there."""
        base = self.path(relpath)
        with self._access(relpath):
            try:
                found = self.fs.find(base, detail=True)
            except FileNotFoundError:
                return []
        root = self.root.rstrip("/")
        out: list[tuple[str, float | None]] = []
        for name, info in sorted(found.items()):
            if info.get("type", "file") != "file":
                continue
            rel = posixpath.relpath(str(name), root) if root != "/" else str(name).lstrip("/")
            out.append((rel, _modified(info)))
        return out

    def read_bytes(self, relpath: str) -> bytes:
        """The whole content of a file."""
        try:
            with self._access(relpath):
                data: bytes = self.fs.cat_file(self.path(relpath))
        except FileNotFoundError as exc:
            raise StoreError(f"artifact not found: {self.uri(relpath)}") from exc
        return data

    def write_bytes(self, relpath: str, data: bytes) -> str:
        """Write a file (atomically on local filesystems); returns its URL."""
        with self.open_write(relpath) as fh:
            fh.write(data)
        return self.uri(relpath)

    @contextmanager
    def open_write(self, relpath: str) -> Iterator[IO[bytes]]:
        """A binary file handle whose content appears at `relpath` only when the block exits cleanly.

        Local stores write a temp file beside the target and rename it; object stores upload on close, which is
        atomic from a reader's point of view.
        """
        target = self.path(relpath)
        if self.is_local:
            directory = posixpath.dirname(target)
            os.makedirs(directory, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=directory)
            try:
                with os.fdopen(fd, "wb") as fh:
                    yield fh
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, target)
            except BaseException:
                if os.path.exists(tmp):
                    os.unlink(tmp)
                raise
        else:
            parent = posixpath.dirname(target)
            with self._access(relpath):
                # Object stores have no directories; makedirs there asks about the bucket, which a namespace
                # allowed only its own prefix of a shared bucket may not do.
                if parent and self._scheme not in _OBJECT_SCHEME_NAMES:
                    self.fs.makedirs(parent, exist_ok=True)
                with self.fs.open(target, "wb") as remote:
                    yield remote

    def open_read(self, relpath: str) -> Any:
        """A binary read handle (a context manager)."""
        with self._access(relpath):
            return self.fs.open(self.path(relpath), "rb")

    def sha256(self, relpath: str) -> str:
        """Hex sha256 of a stored file, streamed."""
        with self.open_read(relpath) as fh:
            return sha256_stream(fh)

    def put_dir(self, local_dir: str | os.PathLike[str], relpath: str, *, last: Sequence[str] = ()) -> str:
        """Upload every file under a local directory to `relpath` (each file written atomically); returns its URL.

        Files named in `last` (relative paths) are uploaded after all others, so a reader that waits for them (a
        manifest) sees a complete directory.
        """
        base = os.fspath(local_dir)
        files: list[str] = []
        for dirpath, _dirnames, filenames in os.walk(base):
            files.extend(
                os.path.relpath(os.path.join(dirpath, f), base).replace(os.sep, "/") for f in filenames
            )
        files.sort(key=lambda rel: (rel in last, last.index(rel) if rel in last else 0, rel))
        for rel in files:
            with (
                open(os.path.join(base, rel), "rb") as fh,
                self.open_write(f"{relpath.rstrip('/')}/{rel}") as out,
            ):
                for chunk in iter(lambda: fh.read(_CHUNK), b""):
                    out.write(chunk)
        return self.uri(relpath)

    def get_dir(self, relpath: str, local_dir: str | os.PathLike[str]) -> None:
        """Download every file under `relpath` into a local directory."""
        src_root = self.path(relpath)
        dest = os.fspath(local_dir)
        with self._access(relpath):
            found = self.fs.find(src_root)
            if not found:
                raise StoreError(f"nothing stored at {self.uri(relpath)}")
            for remote in found:
                rel = posixpath.relpath(remote, src_root)
                local = os.path.join(dest, *rel.split("/"))
                os.makedirs(os.path.dirname(local), exist_ok=True)
                self.fs.get_file(remote, local)
