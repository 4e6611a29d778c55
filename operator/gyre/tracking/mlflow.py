"""Log a TrainingRun, and each trial of its search, as MLflow runs, through MLflow's documented REST API.

Why the REST API and not the `mlflow-skinny` client: the client adds 20 packages to the training image (a web
server stack, the Databricks SDK, OpenTelemetry, GitPython, cloudpickle; about 40 MB) and takes seconds to import,
for seven endpoints: experiments get-by-name/create, runs search/create/log-batch/update/delete, and the artifact
proxy's upload. Measurements in docs/tracking.md.

Idempotent on Job retry: every run is tagged with the TrainingRun's uid (and trial index), looked up by those tags
first, and reused. A search's trials run in parallel pods, so the parent run is created by whichever trial gets
there first: each pod looks it up, creates it when absent, then looks again and keeps the oldest, deleting its own
if it lost the race. Each trial then logs itself as a child run (`mlflow.parentRunId`) and refreshes the parent's
summary (the best finished trial so far, its metrics at step = trials finished, so the most complete view wins);
the pod that sees every trial finished closes the parent.

Nothing here raises past `log_training`: tracking is best effort, and its outcome goes into the pod's report.
"""

from __future__ import annotations

import base64
import json
import logging
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from gyre.api import env
from gyre.training.report import TrackingOutcome

__all__ = [
    "ROLE_PARENT",
    "ROLE_RUN",
    "ROLE_TRIAL",
    "TAG_ROLE",
    "TAG_TRIAL",
    "TAG_UID",
    "MlflowError",
    "MlflowRest",
    "RunRecord",
    "SearchSummary",
    "TrackingTarget",
    "log_training",
]

log = logging.getLogger(__name__)

API = "/api/2.0/mlflow"
ARTIFACTS_API = "/api/2.0/mlflow-artifacts/artifacts"
TAG_UID = "gyre.trainingrun.uid"
TAG_ROLE = "gyre.role"
TAG_TRIAL = "gyre.trial"
TAG_DONE = "gyre.trials.done"
ROLE_RUN, ROLE_PARENT, ROLE_TRIAL = "run", "parent", "trial"
# MLflow's documented limits per log-batch request.
_BATCH_METRICS, _BATCH_PARAMS, _BATCH_TAGS = 1000, 100, 100
_RETRIABLE = frozenset({429, 500, 502, 503, 504})


class MlflowError(Exception):
    """A tracking request failed; `code` is MLflow's error_code (RESOURCE_DOES_NOT_EXIST, ...) when it gave one."""

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


@dataclass(frozen=True)
class TrackingTarget:
    """Where to log, read from the pod's env (gyre.builders.tracking) or given by `gyre train --local`."""

    uri: str
    experiment: str
    run_uid: str
    """Tags every run of this TrainingRun, so a retried pod finds and reuses its run."""
    token: str | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    image: str | None = None
    """The training Job's image (lineage), when the manifest does not record it."""
    timeout: float = 15.0
    attempts: int = 3

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> TrackingTarget | None:
        """The target the training Job's env names, or None when it names no tracking server."""
        uri = environ.get(env.TRACKING_URI, "").strip()
        if not uri:
            return None
        return cls(
            uri=uri,
            experiment=environ.get(env.TRACKING_EXPERIMENT, "").strip() or "gyre",
            run_uid=environ.get(env.TRAINING_RUN_UID, "").strip(),
            token=environ.get(env.TRACKING_TOKEN) or None,
            username=environ.get(env.TRACKING_USERNAME) or None,
            password=environ.get(env.TRACKING_PASSWORD) or None,
            image=environ.get(env.IMAGE) or None,
        )

    def ui_url(self, experiment_id: str, run_id: str) -> str:
        """The run's page in the MLflow UI."""
        return f"{self.uri.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"


class MlflowRest:
    """The few MLflow REST calls Gyre makes, with retries on connection errors, 429 and 5xx."""

    def __init__(self, target: TrackingTarget, *, sleep: Callable[[float], None] = time.sleep) -> None:
        self.target = target
        self.base = target.uri.rstrip("/")
        self._sleep = sleep
        self.headers = {"Content-Type": "application/json", "User-Agent": "gyre"}
        if target.token:
            self.headers["Authorization"] = f"Bearer {target.token}"
        elif target.username is not None:
            basic = base64.b64encode(f"{target.username}:{target.password or ''}".encode()).decode()
            self.headers["Authorization"] = f"Basic {basic}"

    def _send(self, method: str, url: str, data: bytes | None, headers: Mapping[str, str]) -> bytes:
        request = urllib.request.Request(url, data=data, method=method, headers=dict(headers))
        last: MlflowError | None = None
        for attempt in range(self.target.attempts):
            if attempt:
                self._sleep(0.5 * 2 ** (attempt - 1))
            try:
                with urllib.request.urlopen(request, timeout=self.target.timeout) as response:
                    body: bytes = response.read()
                    return body
            except urllib.error.HTTPError as exc:
                last = _api_error(exc, method, url)
                if exc.code not in _RETRIABLE:
                    raise last from None
            except (urllib.error.URLError, OSError) as exc:
                reason = getattr(exc, "reason", exc)
                last = MlflowError(f"cannot reach the MLflow server at {self.base}: {reason}")
        assert last is not None
        raise last

    def call(self, method: str, endpoint: str, body: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """One JSON call to /api/2.0/mlflow/<endpoint>: GET with `body` as the query, POST with it as JSON."""
        url = f"{self.base}{API}/{endpoint}"
        data = None
        if method == "GET" and body:
            url += "?" + urllib.parse.urlencode(body)
        elif body is not None:
            data = json.dumps(body).encode()
        raw = self._send(method, url, data, self.headers)
        parsed = json.loads(raw) if raw.strip() else {}
        return parsed if isinstance(parsed, dict) else {}

    def experiment_id(self, name: str) -> str:
        """The id of experiment `name`, created when absent (a concurrent creator's experiment is reused)."""
        try:
            found = self.call("GET", "experiments/get-by-name", {"experiment_name": name})
            return str(found["experiment"]["experiment_id"])
        except MlflowError as exc:
            if exc.code != "RESOURCE_DOES_NOT_EXIST":
                raise
        try:
            return str(self.call("POST", "experiments/create", {"name": name})["experiment_id"])
        except MlflowError as exc:
            if exc.code != "RESOURCE_ALREADY_EXISTS":
                raise
        found = self.call("GET", "experiments/get-by-name", {"experiment_name": name})
        return str(found["experiment"]["experiment_id"])

    def search_runs(self, experiment_id: str, tags: Mapping[str, str]) -> list[dict[str, Any]]:
        """Active runs of the experiment carrying every tag in `tags`, oldest first."""
        clauses = [f"tags.`{key}` = '{_quote(value)}'" for key, value in tags.items()]
        runs: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            body: dict[str, Any] = {
                "experiment_ids": [experiment_id],
                "filter": " and ".join(clauses),
                "max_results": 1000,
                "order_by": ["attributes.start_time ASC"],
            }
            if token:
                body["page_token"] = token
            page = self.call("POST", "runs/search", body)
            runs.extend(page.get("runs") or [])
            token = page.get("next_page_token")
            if not token:
                return runs

    def create_run(
        self, experiment_id: str, name: str, tags: Mapping[str, str], start_ms: int
    ) -> dict[str, Any]:
        """A new run; returns its `info` (run_id, artifact_uri, ...)."""
        body = {
            "experiment_id": experiment_id,
            "run_name": name,
            "start_time": start_ms,
            "tags": [{"key": k, "value": v} for k, v in tags.items()],
        }
        info: dict[str, Any] = self.call("POST", "runs/create", body)["run"]["info"]
        return info

    def log_batch(
        self,
        run_id: str,
        *,
        metrics: Mapping[str, float] | None = None,
        params: Mapping[str, str] | None = None,
        tags: Mapping[str, str] | None = None,
        step: int = 0,
        timestamp_ms: int,
    ) -> None:
        """Metrics (at `step`), params and tags, in as many requests as MLflow's per-request limits need."""
        metric_rows = [
            {"key": k, "value": v, "timestamp": timestamp_ms, "step": step}
            for k, v in (metrics or {}).items()
        ]
        param_rows = [{"key": k, "value": v} for k, v in (params or {}).items()]
        tag_rows = [{"key": k, "value": v} for k, v in (tags or {}).items()]
        while metric_rows or param_rows or tag_rows:
            body = {
                "run_id": run_id,
                "metrics": metric_rows[:_BATCH_METRICS],
                "params": param_rows[:_BATCH_PARAMS],
                "tags": tag_rows[:_BATCH_TAGS],
            }
            self.call("POST", "runs/log-batch", body)
            metric_rows = metric_rows[_BATCH_METRICS:]
            param_rows = param_rows[_BATCH_PARAMS:]
            tag_rows = tag_rows[_BATCH_TAGS:]

    def set_status(self, run_id: str, status: str, end_ms: int | None = None) -> None:
        """RUNNING, FINISHED or FAILED (with its end time)."""
        body: dict[str, Any] = {"run_id": run_id, "status": status}
        if end_ms is not None:
            body["end_time"] = end_ms
        self.call("POST", "runs/update", body)

    def delete_run(self, run_id: str) -> None:
        """Mark a run deleted (a parent run that lost the creation race)."""
        self.call("POST", "runs/delete", {"run_id": run_id})

    def upload_artifact(self, artifact_uri: str, path: str, data: bytes, content_type: str) -> None:
        """Upload one file under the run's artifact root, through the server's artifact proxy.

        Only `mlflow-artifacts:` roots (a server started with artifact serving, the default) can be written
        through the tracking server; a root the server does not proxy (s3://, a local path) is refused with a
        message saying so.
        """
        scheme, sep, rest = artifact_uri.partition(":")
        if not sep or scheme != "mlflow-artifacts":
            raise MlflowError(
                f"the server stores this run's artifacts at {artifact_uri}, which it does not proxy; start the "
                "MLflow server with artifact serving (--serve-artifacts, the default) so Gyre can upload them"
            )
        if rest.startswith("//"):
            rest = "/" + rest[2:].partition("/")[2]
        quoted = urllib.parse.quote(f"{rest.strip('/')}/{path}")
        url = f"{self.base}{ARTIFACTS_API}/{quoted}"
        headers = {**self.headers, "Content-Type": content_type}
        self._send("PUT", url, data, headers)


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "\\'")


def _api_error(exc: urllib.error.HTTPError, method: str, url: str) -> MlflowError:
    try:
        body = json.loads(exc.read() or b"{}")
    except (ValueError, OSError):
        body = {}
    code = body.get("error_code") if isinstance(body, dict) else None
    message = body.get("message") if isinstance(body, dict) else None
    path = urllib.parse.urlsplit(url).path
    if exc.code in (401, 403):
        detail = "check the tracking credentials (MLFLOW_TRACKING_TOKEN or _USERNAME/_PASSWORD)"
        return MlflowError(
            f"MLflow refused {method} {path} with HTTP {exc.code}: {detail}", code=code, status=exc.code
        )
    return MlflowError(
        f"MLflow answered {method} {path} with HTTP {exc.code}" + (f": {message}" if message else ""),
        code=code,
        status=exc.code,
    )


@dataclass(frozen=True)
class SearchSummary:
    """What a search's parent run needs: how many trials, and how to rank them."""

    trials: int
    metric: str
    goal: str
    params: dict[str, str]
    """The parent's params: the search itself (strategy, space, metric) and what every trial shares."""


@dataclass(frozen=True)
class RunRecord:
    """Everything one pod logs: built from the spec, the report and the manifest (gyre.tracking.records)."""

    name: str
    status: str
    """FINISHED or FAILED."""
    params: dict[str, str]
    metrics: dict[str, float]
    tags: dict[str, str]
    artifacts: tuple[tuple[str, bytes], ...] = ()
    """(path under the run's artifact root, content)."""
    trial: int | None = None
    search: SearchSummary | None = None
    parent_tags: dict[str, str] = field(default_factory=dict)
    """The lineage tags the parent run shares with its trials."""


def _tags(run: Mapping[str, Any]) -> dict[str, str]:
    return {t["key"]: t.get("value", "") for t in (run.get("data") or {}).get("tags") or []}


def _metrics(run: Mapping[str, Any]) -> dict[str, float]:
    return {m["key"]: float(m["value"]) for m in (run.get("data") or {}).get("metrics") or []}


def _own_run(
    client: MlflowRest, experiment_id: str, lookup: dict[str, str], name: str, tags: dict[str, str], now: int
) -> dict[str, Any]:
    found = client.search_runs(experiment_id, lookup)
    if found:
        info: dict[str, Any] = found[0]["info"]
        return info
    return client.create_run(experiment_id, name, {**tags, **lookup}, now)


def _parent_run(
    client: MlflowRest, experiment_id: str, target: TrackingTarget, record: RunRecord, now: int
) -> str:
    assert record.search is not None
    lookup = {TAG_UID: target.run_uid, TAG_ROLE: ROLE_PARENT}
    found = client.search_runs(experiment_id, lookup)
    if found:
        return str(found[0]["info"]["run_id"])
    name = record.parent_tags.get("gyre.trainingrun.name", record.name)
    mine = client.create_run(experiment_id, name, {**record.parent_tags, **lookup}, now)
    # Parallel trials may have created a parent too: all keep the oldest, and the others delete their own.
    found = client.search_runs(experiment_id, lookup)
    oldest = min(found, key=lambda r: (int(r["info"].get("start_time") or 0), str(r["info"]["run_id"])))
    winner = str(oldest["info"]["run_id"])
    if winner != mine["run_id"]:
        client.delete_run(str(mine["run_id"]))
        return winner
    client.log_batch(winner, params=record.search.params, timestamp_ms=now)
    return winner


def _refresh_parent(
    client: MlflowRest, experiment_id: str, parent_id: str, search: SearchSummary, now: int
) -> None:
    children = client.search_runs(experiment_id, {"mlflow.parentRunId": parent_id})
    done = [c for c in children if c["info"].get("status") in ("FINISHED", "FAILED")]
    scored = [
        (c, _metrics(c)[search.metric])
        for c in done
        if c["info"].get("status") == "FINISHED" and search.metric in _metrics(c)
    ]
    tags = {TAG_DONE: str(len(done))}
    metrics: dict[str, float] = {}
    if scored:
        sign = -1.0 if search.goal == "maximize" else 1.0
        best, _score = min(scored, key=lambda item: (sign * item[1], int(_tags(item[0]).get(TAG_TRIAL, "0"))))
        metrics = _metrics(best)
        tags.update(
            {
                "gyre.best_trial": _tags(best).get(TAG_TRIAL, ""),
                "gyre.best_run_id": str(best["info"]["run_id"]),
            }
        )
    # Metrics at step len(done): MLflow shows the value of the highest step, i.e. the most complete view. Tags have
    # no step: a pod whose view is older than the one recorded leaves them alone.
    current = client.call("GET", "runs/get", {"run_id": parent_id}).get("run") or {}
    recorded = _tags(current).get(TAG_DONE, "0")
    if recorded.isdigit() and int(recorded) > len(done):
        tags = {}
    client.log_batch(parent_id, metrics=metrics, tags=tags, step=len(done), timestamp_ms=now)
    if len(done) >= search.trials:
        client.set_status(parent_id, "FINISHED" if scored else "FAILED", now)


def log_training(
    target: TrackingTarget, record: RunRecord, *, now: Callable[[], int] | None = None
) -> TrackingOutcome:
    """Log one pod's run (and, for a search trial, its share of the parent run); never raises."""
    clock = now or (lambda: int(time.time() * 1000))
    client = MlflowRest(target)
    experiment_id = run_id = parent_id = None
    try:
        experiment_id = client.experiment_id(target.experiment)
        started = clock()
        tags = dict(record.tags)
        lookup = {TAG_UID: target.run_uid, TAG_ROLE: ROLE_RUN}
        if record.search is not None:
            parent_id = _parent_run(client, experiment_id, target, record, started)
            lookup = {TAG_UID: target.run_uid, TAG_ROLE: ROLE_TRIAL, TAG_TRIAL: str(record.trial)}
            tags["mlflow.parentRunId"] = parent_id
        info = _own_run(client, experiment_id, lookup, record.name, tags, started)
        run_id = str(info["run_id"])
        client.set_status(run_id, "RUNNING")
        client.log_batch(
            run_id, metrics=record.metrics, params=record.params, tags=tags, timestamp_ms=clock()
        )
        problems = []
        for path, data in record.artifacts:
            try:
                client.upload_artifact(str(info.get("artifact_uri", "")), path, data, _content_type(path))
            except MlflowError as exc:
                problems.append(f"artifact {path} not uploaded: {exc}")
                break
        client.set_status(run_id, record.status, clock())
        if record.search is not None and parent_id is not None:
            _refresh_parent(client, experiment_id, parent_id, record.search, clock())
    except Exception as exc:  # best effort: whatever goes wrong is reported, training stands
        log.warning("MLflow tracking failed: %s", exc)
        return _outcome(
            target, experiment_id, run_id, parent_id, False, f"{type(exc).__name__}: {exc}"[:1000]
        )
    if problems:
        return _outcome(target, experiment_id, run_id, parent_id, False, "; ".join(problems)[:1000])
    return _outcome(target, experiment_id, run_id, parent_id, True, None)


def _outcome(
    target: TrackingTarget,
    experiment_id: str | None,
    run_id: str | None,
    parent_id: str | None,
    logged: bool,
    message: str | None,
) -> TrackingOutcome:
    return TrackingOutcome(
        logged=logged,
        experiment_id=experiment_id,
        run_id=run_id,
        parent_run_id=parent_id,
        url=target.ui_url(experiment_id, run_id) if experiment_id and run_id else None,
        parent_url=target.ui_url(experiment_id, parent_id) if experiment_id and parent_id else None,
        message=message,
    )


def _content_type(path: str) -> str:
    if path.endswith(".json"):
        return "application/json"
    if path.endswith(".html"):
        return "text/html; charset=utf-8"
    if path.endswith(".md"):
        return "text/markdown; charset=utf-8"
    return "application/octet-stream"
