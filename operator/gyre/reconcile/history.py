"""Bounded history of the finished Jobs Gyre creates, as CronJob keeps it.

The rule (docs/architecture.md, "Finished Jobs"): of an owner's finished Jobs of one component, keep the newest
`keep_succeeded` that succeeded and the newest `keep_failed` that failed, so the last failure stays for debugging;
delete the rest. A Job still running, or the one the owner's status still points at, is never deleted.
"""

from __future__ import annotations

from collections.abc import Iterable

from gyre.reconcile.observed import JobView
from gyre.reconcile.plan import Delete

__all__ = ["prune_finished_jobs"]


def prune_finished_jobs(
    jobs: Iterable[JobView], *, keep_succeeded: int, keep_failed: int, keep: Iterable[str] = ()
) -> list[Delete]:
    """Deletions that bring the finished Jobs down to the history limits (newest kept, by creation time)."""
    protected = set(keep)
    finished = sorted(
        (j for j in jobs if j.outcome.finished), key=lambda j: (j.created, j.name), reverse=True
    )
    kept = {True: 0, False: 0}
    limit = {True: keep_succeeded, False: keep_failed}
    doomed: list[str] = []
    for job in finished:  # newest first; a protected Job counts toward its quota but is never deleted
        ok = job.outcome.succeeded
        if job.name in protected or kept[ok] < limit[ok]:
            kept[ok] += 1
        else:
            doomed.append(job.name)
    return [Delete("batch/v1", "Job", name) for name in sorted(doomed)]
