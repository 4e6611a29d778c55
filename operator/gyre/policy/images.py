"""The image policy: which container images Gyre's Jobs and model servers may run.

By default only the operator's own image runs. A cluster admin allows more with entries (chart value
`policy.images`, env GYRE_ALLOWED_IMAGES), each one of:

- `registry.example.com/ml/`: a prefix ending in `/` allows every image under that registry path;
- `registry.example.com/ml/trainer`: a repository allows any tag or digest of it;
- `registry.example.com/ml/trainer:1.4`: a reference with a tag allows exactly that tag;
- `sha256:<64 hex>` or `repo@sha256:<64 hex>`: a digest allows any reference pinned to it (or exactly that one).

References are compared in their normalized form, so `gyre:dev` and `docker.io/library/gyre:dev` are one image.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from gyre.api import env

__all__ = ["ImagePolicy", "ImageRef", "parse_image"]

_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
_DEFAULT_REGISTRY = "docker.io"


@dataclass(frozen=True)
class ImageRef:
    """A container image reference split into its normalized parts."""

    repository: str
    """Registry host plus path, e.g. `docker.io/library/gyre`."""
    tag: str | None
    digest: str | None

    def __str__(self) -> str:
        out = self.repository
        if self.tag:
            out += f":{self.tag}"
        if self.digest:
            out += f"@{self.digest}"
        return out


def parse_image(reference: str) -> ImageRef:
    """Split and normalize an image reference the way container runtimes resolve it.

    A name without a registry is on Docker Hub, and a one-segment Docker Hub name is under `library/`. A reference
    with neither tag nor digest means the tag `latest`.
    """
    ref = reference.strip()
    digest = None
    if "@" in ref:
        ref, digest = ref.split("@", 1)
    name, tag = ref, None
    last = ref.rsplit("/", 1)[-1]
    if ":" in last:
        name, tag = ref.rsplit(":", 1)
    first, _, rest = name.partition("/")
    if not rest or ("." not in first and ":" not in first and first != "localhost"):
        name = f"{_DEFAULT_REGISTRY}/{name}"
    host, _, path = name.partition("/")
    if host == _DEFAULT_REGISTRY and "/" not in path:
        name = f"{host}/library/{path}"
    if tag is None and digest is None:
        tag = "latest"
    return ImageRef(repository=name.lower(), tag=tag, digest=digest)


def _entry_allows(entry: str, image: ImageRef) -> bool:
    entry = entry.strip()
    if not entry:
        return False
    if _DIGEST.match(entry):
        return image.digest == entry
    if entry.endswith("/"):
        # A path prefix matches whole segments only: `ml/` must not allow `ml-evil/`.
        return (image.repository + "/").startswith(parse_image(entry.rstrip("/") + "/x").repository[:-1])
    wanted = parse_image(entry)
    if wanted.repository != image.repository:
        return False
    if "@" in entry:
        return wanted.digest == image.digest
    bare = ":" not in entry.rsplit("/", 1)[-1]
    return bare or wanted.tag == image.tag


@dataclass(frozen=True)
class ImagePolicy:
    """The operator's own image plus the admin's allowed entries."""

    operator_image: str
    allowed: tuple[str, ...] = ()

    def allows(self, image: str) -> bool:
        """Whether `image` may run as a Gyre Job or model server."""
        ref = parse_image(image)
        return any(_entry_allows(entry, ref) for entry in (self.operator_image, *self.allowed))

    def refusal(self, image: str, where: str) -> str | None:
        """None when `image` is allowed, else a one-paragraph reason: what, which policy, how an admin allows it."""
        if self.allows(image):
            return None
        allowed = ", ".join(self.allowed) if self.allowed else "nothing else"
        return (
            f"{where} {image!r} is refused by the operator's image policy, which allows the operator's image "
            f"{self.operator_image!r} and {allowed}. Remove {where} to use the operator's image, or ask a cluster "
            f"admin to add the image, its repository, a registry prefix ending in '/' or its sha256 digest to the "
            f"chart value policy.images (env {env.ALLOWED_IMAGES} of the operator)"
        )

    def spec_refusal(self, image: str | None) -> str | None:
        """The refusal of a Gyre object's `spec.image`; None when it is unset (the operator's image) or allowed."""
        return self.refusal(image, "spec.image") if image else None

    def first_refusal(self, images: Iterable[tuple[str, str]]) -> str | None:
        """The refusal of the first disallowed (image, where) pair, if any."""
        return next((r for image, where in images if (r := self.refusal(image, where)) is not None), None)
