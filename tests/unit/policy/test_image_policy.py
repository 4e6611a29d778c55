"""The image policy: which images Gyre's Jobs and servers may run, as a cluster admin writes it."""

from __future__ import annotations

import pytest

from gyre.builders.settings import OperatorSettings
from gyre.policy.images import ImagePolicy, parse_image

DIGEST = "sha256:" + "a" * 64
OTHER = "sha256:" + "b" * 64


@pytest.mark.parametrize(
    ("reference", "normalized"),
    [
        ("gyre:dev", "docker.io/library/gyre:dev"),
        ("docker.io/library/gyre:dev", "docker.io/library/gyre:dev"),
        ("team/trainer", "docker.io/team/trainer:latest"),
        ("registry.example.com:5000/ml/trainer:1.4", "registry.example.com:5000/ml/trainer:1.4"),
        ("localhost/gyre@" + DIGEST, "localhost/gyre@" + DIGEST),
        ("ghcr.io/Org/Img:v1@" + DIGEST, "ghcr.io/org/img:v1@" + DIGEST),
    ],
)
def test_references_are_compared_the_way_a_container_runtime_resolves_them(
    reference: str, normalized: str
) -> None:
    assert str(parse_image(reference)) == normalized


@pytest.mark.parametrize(
    ("allowed", "image", "allows"),
    [
        # By default only the operator's image runs, however it is spelled, even pinned to its digest by a webhook.
        ((), "gyre:dev", True),
        ((), "docker.io/library/gyre:dev", True),
        ((), "gyre:dev@" + DIGEST, True),
        ((), "gyre:latest", False),
        ((), "gyre", False),
        ((), "evil.example.com/gyre:dev", False),
        # A prefix ending in / allows whole path segments under it, never a longer sibling name.
        (("registry.example.com/ml/",), "registry.example.com/ml/trainer:1", True),
        (("registry.example.com/ml/",), "registry.example.com/ml/sub/trainer:1", True),
        (("registry.example.com/ml/",), "registry.example.com/ml-evil/trainer:1", False),
        (("registry.example.com/ml/",), "registry.example.com/trainer:1", False),
        # A repository allows every tag and digest of it; a tag allows exactly that tag.
        (("registry.example.com/ml/trainer",), "registry.example.com/ml/trainer:2", True),
        (("registry.example.com/ml/trainer",), "registry.example.com/ml/trainer2:2", False),
        (("registry.example.com/ml/trainer:1.4",), "registry.example.com/ml/trainer:1.4", True),
        (("registry.example.com/ml/trainer:1.4",), "registry.example.com/ml/trainer:1.5", False),
        # A digest allows any reference pinned to it; repo@digest allows exactly that one.
        ((DIGEST,), "anything.example.com/x@" + DIGEST, True),
        ((DIGEST,), "anything.example.com/x@" + OTHER, False),
        ((DIGEST,), "anything.example.com/x:latest", False),
        (("registry.example.com/x@" + DIGEST,), "registry.example.com/x@" + DIGEST, True),
        (("registry.example.com/x@" + DIGEST,), "registry.example.com/x@" + OTHER, False),
        (("registry.example.com/x@" + DIGEST,), "registry.example.com/y@" + DIGEST, False),
        # Docker Hub short names in the list mean what they mean to the runtime.
        (("python",), "docker.io/library/python:3.12", True),
        (("python",), "docker.io/evil/python:3.12", False),
        (("",), "anything:1", False),
    ],
)
def test_the_policy_allows_exactly_what_its_entries_name(
    allowed: tuple[str, ...], image: str, allows: bool
) -> None:
    assert ImagePolicy("gyre:dev", allowed).allows(image) is allows


def test_a_refusal_says_what_was_refused_which_policy_refused_it_and_how_an_admin_allows_it() -> None:
    policy = ImagePolicy("gyre:dev", ("registry.example.com/ml/",))
    message = policy.refusal("evil.example.com/x:1", "spec.image")
    assert message is not None
    assert "spec.image 'evil.example.com/x:1'" in message
    assert "image policy" in message and "'gyre:dev'" in message and "registry.example.com/ml/" in message
    assert "policy.images" in message and "GYRE_ALLOWED_IMAGES" in message
    assert policy.refusal("registry.example.com/ml/x:1", "spec.image") is None


def test_the_operator_reads_allowed_images_from_a_comma_or_space_separated_variable() -> None:
    settings = OperatorSettings.from_env(
        {"GYRE_IMAGE": "gyre:1", "GYRE_ALLOWED_IMAGES": " registry.example.com/ml/, python:3.12\n" + DIGEST}
    )
    assert settings.allowed_images == ("registry.example.com/ml/", "python:3.12", DIGEST)
    assert settings.image_policy.allows("python:3.12") and not settings.image_policy.allows("python:3.11")
    assert OperatorSettings.from_env({}).allowed_images == ()
