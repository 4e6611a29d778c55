"""Which Dataset sources may be read: the cluster admin's source policy and every decision it makes.

Pure (no DNS, no filesystem). The operator checks a Dataset's source with `check_source` before it creates the
profiling Job; the profiling pod checks it again, then every address and file it actually opens
(gyre.data.guard), with the same functions, so both sides refuse for the same reasons with the same words.

A source is read only when its scheme is allowed, its host (http/https) is allowed and not refused, and a file
lies in a declared data root: the namespace's own `sources/` area of the artifact store, or a root the admin
declared. Nothing else in the artifact store (models, datasets, predictions, other namespaces) is ever a source,
except through the `feedback` scheme: a deployment's prediction log and labels in the Dataset's own namespace.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import posixpath
import re
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, field_validator
from pydantic.alias_generators import to_camel

from gyre.api import env

__all__ = [
    "DEFAULT_REFUSED_HOSTS",
    "DEFAULT_SCHEMES",
    "KNOWN_SCHEMES",
    "HostVerdict",
    "Refusal",
    "SourcePolicy",
    "SourceScope",
    "check_address",
    "check_file_path",
    "check_host",
    "check_source",
    "redact",
    "source_scope",
]

KNOWN_SCHEMES = ("builtin", "file", "s3", "gs", "http", "https", "postgresql", "feedback")
DEFAULT_SCHEMES = KNOWN_SCHEMES

DEFAULT_REFUSED_HOSTS = (
    "127.0.0.0/8",  # loopback
    "::1/128",
    "0.0.0.0/8",  # "this host": connecting to 0.0.0.0 reaches the pod itself
    "::/128",
    "169.254.0.0/16",  # link-local, incl. 169.254.169.254 (AWS, GCP, Azure, OpenStack metadata)
    "fe80::/10",
    "fd00:ec2::254/128",  # AWS metadata over IPv6
    "100.100.100.200/32",  # Alibaba Cloud metadata
    "localhost",
    "*.localhost",
    "metadata",
    "metadata.*",  # metadata.google.internal
    "instance-data",
    "instance-data.*",  # AWS's name for its metadata service
)
"""Refused by default: loopback, link-local and cloud metadata addresses and names."""

_SETTING = f"policy.sources (env {env.SOURCE_POLICY})"
# Legacy IPv4 spellings (2130706433, 0x7f.1, 0177.0.0.1) that resolvers map onto an address.
_NUMERIC_HOST = re.compile(r"^(0x[0-9a-f]*|[0-9]+)(\.(0x[0-9a-f]*|[0-9]+)){0,3}\.?$")
_Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def _network(entry: str) -> _Network | None:
    """The network an entry names (an IP is a /32 or /128), or None for a host name or glob."""
    try:
        return ipaddress.ip_network(entry.strip("[]"), strict=False)
    except ValueError:
        return None


def _address(host: str) -> _Address | None:
    """An IP literal as the address it reaches (IPv4-mapped IPv6 is its IPv4 address), else None."""
    try:
        address = ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


class SourcePolicy(BaseModel):
    """The cluster admin's source policy (chart `policy.sources`, env GYRE_SOURCE_POLICY as JSON)."""

    model_config = ConfigDict(frozen=True, alias_generator=to_camel, populate_by_name=True, extra="forbid")

    schemes: tuple[str, ...] = DEFAULT_SCHEMES
    """Schemes sources may use, of builtin, file, s3, gs, http, https, postgresql (a Dataset's sql source) and
    feedback (a Dataset built from a deployment's labelled predictions)."""
    hosts: tuple[str, ...] = ("*",)
    """Hosts http(s) and postgresql sources may reach: `*`, names, globs (`*.example.com`), IPs and CIDRs. A name that matches
    no name entry is allowed only when every address it resolves to lies in a CIDR entry."""
    refused_hosts: tuple[str, ...] = DEFAULT_REFUSED_HOSTS
    """Hosts never reached, whatever `hosts` says, and whatever name leads to them: names, globs, IPs, CIDRs."""
    file_roots: tuple[str, ...] = ()
    """Directories (in the profiling pod) that file:// sources may read, besides the namespace's own
    `sources/` area of the artifact store."""

    @field_validator("schemes")
    @classmethod
    def _known_schemes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = sorted(set(value) - set(KNOWN_SCHEMES))
        if unknown:
            raise ValueError(f"unknown schemes {unknown}; known: {', '.join(KNOWN_SCHEMES)}")
        return value

    @field_validator("hosts", "refused_hosts")
    @classmethod
    def _lowercase_hosts(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(entry.strip().lower().rstrip(".") for entry in value if entry.strip())

    @field_validator("file_roots")
    @classmethod
    def _absolute_roots(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for root in value:
            if not root.startswith("/") or any(part in (".", "..") for part in root.split("/")):
                raise ValueError(f"file root {root!r} must be an absolute path without . or .. segments")
        return tuple(posixpath.normpath(root) for root in value)

    @classmethod
    def from_json(cls, raw: str | None) -> SourcePolicy:
        """The policy in GYRE_SOURCE_POLICY; unset or empty means the defaults."""
        if raw is None or not raw.strip():
            return cls()
        return cls.model_validate_json(raw)

    def to_json(self) -> str:
        """The policy as GYRE_SOURCE_POLICY carries it."""
        return self.model_dump_json(by_alias=True)


@dataclass(frozen=True)
class SourceScope:
    """The policy as it applies to one namespace's Datasets, with the artifact store's areas."""

    policy: SourcePolicy
    own_area: str | None = None
    """URL prefix (ending in /) of the namespace's `sources/` area of the artifact store: always readable."""
    store_area: str | None = None
    """URL prefix (ending in /) of the artifact store: never a source, except own_area."""


def source_scope(
    policy: SourcePolicy, store_url: str | None, namespace: str, *, pvc_mount: str = env.DEFAULT_PVC_MOUNT
) -> SourceScope:
    """The scope of `namespace`'s sources under the artifact store at `store_url`, as the profiling pod sees it.

    A pvc:// claim belongs to its namespace, so its own area is `sources/` under the store root; a file://, s3://
    or gs:// root is shared by every namespace, so the own area is `sources/<namespace>/`. For a pvc:// store the
    whole mounted claim counts as the store, whatever the subpath.
    """
    if not store_url:
        return SourceScope(policy)
    if store_url.startswith("pvc://"):
        subpath = store_url[len("pvc://") :].partition("/")[2].strip("/")
        mount = "file://" + posixpath.normpath(pvc_mount) + "/"
        root = mount + (subpath + "/" if subpath else "")
        return SourceScope(policy, own_area=root + "sources/", store_area=mount)
    scheme, sep, rest = store_url.partition("://")
    if not sep:
        return SourceScope(policy)
    scheme = "gs" if scheme == "gcs" else scheme
    root = f"{scheme}://{rest.rstrip('/')}/"
    if scheme == "file":
        root = "file://" + posixpath.normpath(rest) + "/"
    return SourceScope(policy, own_area=f"{root}sources/{namespace}/", store_area=root)


@dataclass(frozen=True)
class Refusal:
    """Why a source (or an address or file it led to) is refused, and how an admin would allow it."""

    source: str
    """The source, with any credentials in it replaced by ***."""
    rule: str
    """The part of the policy that refused it: schemes, hosts, refusedHosts, fileRoots, artifactStore, syntax."""
    detail: str
    remedy: str

    @property
    def message(self) -> str:
        """One line for a condition, an Event and the profiling report."""
        remedy = self.remedy or "no policy setting allows it"
        return f"source {self.source} refused by the source policy ({self.rule}): {self.detail}; {remedy}"


HostVerdict = Literal["name", "address"]
"""How an allowed host was allowed: by a name entry (any address it resolves to that is not refused), or only
if each address it resolves to lies in an allowed CIDR (checked at connection time)."""


def redact(uri: str) -> str:
    """The URI fit for messages: any user:password@ part becomes ***@ and any query string (presigned URLs and
    tokens live there) becomes ?***."""
    uri, question, _query = uri.partition("?")
    tail = "?***" if question else ""
    scheme, sep, rest = uri.partition("://")
    authority, slash, path = rest.partition("/")
    if not sep or "@" not in authority:
        return uri + tail
    return f"{scheme}://***@{authority.rpartition('@')[2]}{slash}{path}{tail}"


def _refused_entry(policy: SourcePolicy, host: str, address: _Address | None) -> str | None:
    for entry in policy.refused_hosts:
        network = _network(entry)
        if network is None:
            if address is None and fnmatch.fnmatchcase(host, entry):
                return entry
        elif address is not None and address.version == network.version and address in network:
            return entry
    return None


def _allowed_by_cidr(policy: SourcePolicy, address: _Address) -> bool:
    for entry in policy.hosts:
        network = _network(entry)
        if entry == "*" or (
            network is not None and address.version == network.version and address in network
        ):
            return True
    return False


def _refused_host(source: str, what: str, entry: str) -> Refusal:
    return Refusal(
        redact(source),
        "refusedHosts",
        f"{what} matches the refused host {entry!r}",
        f"a cluster admin allows it by removing {entry!r} from refusedHosts in {_SETTING}",
    )


def _not_allowed_host(source: str, what: str) -> Refusal:
    return Refusal(
        redact(source),
        "hosts",
        f"{what} is not among the allowed hosts",
        f"a cluster admin allows it by adding it (a name, glob or CIDR) to hosts in {_SETTING}",
    )


def check_host(host: str, policy: SourcePolicy, source: str) -> Refusal | HostVerdict:
    """Decide on a URL's host without DNS: refused, allowed by name, or allowed subject to its addresses."""
    host = host.strip("[]").lower().rstrip(".")
    address = _address(host)
    if address is None and _NUMERIC_HOST.match(host):
        return Refusal(
            redact(source),
            "syntax",
            f"host {host!r} is a legacy numeric IP address form",
            "write the address in dotted decimal",
        )
    entry = _refused_entry(policy, host, address)
    if entry is not None:
        return _refused_host(source, f"host {host}", entry)
    if address is not None:
        return (
            "address" if _allowed_by_cidr(policy, address) else _not_allowed_host(source, f"address {host}")
        )
    if any(_network(e) is None and fnmatch.fnmatchcase(host, e) for e in policy.hosts):
        return "name"
    if any(_network(e) is not None for e in policy.hosts):
        return "address"
    return _not_allowed_host(source, f"host {host}")


def check_address(address: str, policy: SourcePolicy, source: str, *, by_name: bool) -> Refusal | None:
    """Decide on an address a connection is about to reach; `by_name` when its host was allowed by a name entry."""
    parsed = _address(address)
    if parsed is None:
        return Refusal(redact(source), "syntax", f"{address!r} is not an IP address", "")
    entry = _refused_entry(policy, str(parsed), parsed)
    if entry is not None:
        return _refused_host(source, f"address {parsed}", entry)
    if by_name or _allowed_by_cidr(policy, parsed):
        return None
    return _not_allowed_host(source, f"address {parsed}")


def _scheme_of(uri: str) -> tuple[str, str]:
    """(scheme, the rest after ://); a bare absolute path is a file."""
    if "://" not in uri:
        return ("file", uri) if uri.startswith("/") else ("", uri)
    scheme, _, rest = uri.partition("://")
    return scheme.lower(), rest


def _in_area(url: str, area: str | None) -> bool:
    return area is not None and (url + "/").startswith(area)


def check_file_path(path: str, scope: SourceScope, source: str) -> Refusal | None:
    """Decide on a local path (as given, or as the pod resolved it): in a declared data root, outside the store."""
    if not path.startswith("/") or any(part in (".", "..") for part in path.split("/")):
        return Refusal(
            redact(source), "syntax", f"{path!r} is not an absolute path without . or .. segments", ""
        )
    url = "file://" + posixpath.normpath(path)
    if _in_area(url, scope.own_area):
        return None
    if _in_area(url, scope.store_area):
        return Refusal(
            redact(source),
            "artifactStore",
            f"{path} is inside the artifact store, which is never a source except its area "
            f"{(scope.own_area or '')[len('file://') :]}",
            f"copy the data into that area; no setting of {_SETTING} opens the rest of the store",
        )
    roots = [r for r in scope.policy.file_roots if _in_area(url, "file://" + r.rstrip("/") + "/")]
    if roots:
        return None
    declared = [a[len("file://") :] for a in (scope.own_area,) if a and a.startswith("file://")]
    declared += list(scope.policy.file_roots)
    return Refusal(
        redact(source),
        "fileRoots",
        f"{path} is outside the declared data roots ({', '.join(declared) or 'none'})",
        f"copy the data into one of them, or a cluster admin declares its directory in fileRoots in {_SETTING}",
    )


def check_source(uri: str, scope: SourceScope) -> Refusal | None:
    """Decide on a source URI without DNS or filesystem access; None means "read it" (the pod checks again)."""
    policy = scope.policy
    scheme, rest = _scheme_of(uri)
    if "::" in _strip_ipv6_host(rest):
        return Refusal(redact(uri), "syntax", "fsspec URL chains (::) are not sources", "name one source")
    if scheme not in KNOWN_SCHEMES:
        return Refusal(
            redact(uri),
            "schemes",
            f"scheme {scheme or '(none)'!r} is not a source scheme",
            f"use one of {', '.join(KNOWN_SCHEMES)}",
        )
    if scheme not in policy.schemes:
        return Refusal(
            redact(uri),
            "schemes",
            f"scheme {scheme}:// is not allowed",
            f"a cluster admin allows it by adding {scheme!r} to schemes in {_SETTING}",
        )
    if scheme in ("builtin", "feedback"):
        # feedback://<deployment> names no location: the pod reads that deployment's prediction log and labels in
        # the Dataset's own namespace of the store, which the operator resolves; nothing else can be reached.
        return None
    if scheme == "file":
        return check_file_path(rest, scope, uri)
    if scheme in ("s3", "gs"):
        if _in_area(f"{scheme}://{rest}", scope.own_area) or not _in_area(
            f"{scheme}://{rest}", scope.store_area
        ):
            return None
        return Refusal(
            redact(uri),
            "artifactStore",
            f"it is inside the artifact store, which is never a source except its area {scope.own_area}",
            f"copy the data into that area; no setting of {_SETTING} opens the rest of the store",
        )
    return _check_http(uri, policy)  # http(s), and postgresql://host:port/db (a sql source's location)


def _strip_ipv6_host(rest: str) -> str:
    """The URI after :// with a bracketed IPv6 host removed, so its colons are not taken for a chain."""
    authority, slash, path = rest.partition("/")
    return re.sub(r"\[[^\]]*\]", "", authority) + slash + path


def _check_http(uri: str, policy: SourcePolicy) -> Refusal | None:
    from yarl import URL

    try:
        host = URL(uri).raw_host
    except ValueError:
        host = None
    if not host:
        return Refusal(redact(uri), "syntax", "the URL has no host", "")
    verdict = check_host(host, policy, uri)
    return verdict if isinstance(verdict, Refusal) else None
