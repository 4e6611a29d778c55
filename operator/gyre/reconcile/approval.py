"""Approval of a TrainingRun's model for promotion: read from the run's annotations, pinned to its digest.

A person in the approvers group approves a run with one command (`approval_command`): two annotations on the
TrainingRun, their own username and the model digest they approve. The chart's ValidatingAdmissionPolicy
(`gyre-approval`) admits that write only from a member of the group, naming themselves, for the run's current digest;
this module only reads what admission let through.

Invariants:
- An approval counts only for the digest it names: a run whose status.modelSha256 differs (a run deleted and
  recreated under the same name, retrained on other data) is not approved by it.
- `approved_at` is when the approval annotation was last written (the managedFields entry that owns it), so it is the
  same on every read and across operator restarts.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gyre.api.modeldeployment import APPROVED_BY_ANNOTATION, APPROVED_SHA256_ANNOTATION

__all__ = ["RunApproval", "approval_command", "bare_digest", "run_approval"]

_OWNED_BY = "f:" + APPROVED_BY_ANNOTATION


@dataclass(frozen=True)
class RunApproval:
    """What a TrainingRun's approval annotations say: who approved which digest, and when it was written."""

    by: str
    sha256: str
    """The approved digest, without a sha256: prefix ("" when the annotation is missing)."""
    at: datetime | None = None

    def covers(self, model_sha256: str | None) -> bool:
        """Whether this approval is for exactly that model digest."""
        return bool(self.by and self.sha256 and model_sha256) and self.sha256 == bare_digest(model_sha256)


def bare_digest(digest: str | None) -> str:
    """A digest without its optional `sha256:` prefix."""
    return (digest or "").strip().removeprefix("sha256:")


def _written_at(managed_fields: Any) -> datetime | None:
    """The time of the newest managedFields entry that owns the approved-by annotation."""
    times: list[datetime] = []
    for entry in managed_fields or []:
        fields = (entry or {}).get("fieldsV1") or {}
        annotations = (fields.get("f:metadata") or {}).get("f:annotations") or {}
        if _OWNED_BY in annotations and entry.get("time"):
            try:
                times.append(datetime.fromisoformat(str(entry["time"]).replace("Z", "+00:00")))
            except ValueError:
                continue
    return max(times, default=None)


def run_approval(metadata: Mapping[str, Any]) -> RunApproval | None:
    """The approval a TrainingRun's metadata carries, or None when it has no approved-by annotation."""
    annotations = metadata.get("annotations") or {}
    by = str(annotations.get(APPROVED_BY_ANNOTATION) or "").strip()
    if not by:
        return None
    return RunApproval(
        by=by,
        sha256=bare_digest(str(annotations.get(APPROVED_SHA256_ANNOTATION) or "")),
        at=_written_at(metadata.get("managedFields")),
    )


def approval_command(namespace: str, run: str, sha256: str) -> str:
    """The one command a member of the approvers group runs to approve `run` at `sha256` (docs/approval.md)."""
    whoami = "$(kubectl auth whoami -o jsonpath='{.status.userInfo.username}')"
    return (
        f"kubectl annotate trainingrun -n {shlex.quote(namespace)} {shlex.quote(run)} --overwrite "
        f'{APPROVED_BY_ANNOTATION}="{whoami}" {APPROVED_SHA256_ANNOTATION}={bare_digest(sha256)}'
    )
