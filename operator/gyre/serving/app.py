"""The HTTP model server: KServe v1 and Open Inference Protocol v2 over aiohttp.

Routes (MODEL is the served model's name, VERSION its version, the first 12 hex digits of the model's digest):

    GET  /v1/models                                   {"models": [MODEL]}
    GET  /v1/models/MODEL                             {"name": MODEL, "ready": bool}
    POST /v1/models/MODEL:predict                     {"instances": [...]} -> {"predictions": [...]}
    GET  /v2                                          server metadata
    GET  /v2/health/live, /v2/health/ready            liveness, readiness (503 while starting or draining)
    GET  /v2/models/MODEL[/versions/VERSION]          model metadata (inputs, outputs, inference path)
    GET  /v2/models/MODEL[/versions/VERSION]/ready    model readiness
    POST /v2/models/MODEL[/versions/VERSION]/infer    OIP v2 inference
    GET  /metrics                                     Prometheus text format

Every error is JSON `{"error": "..."}` with a 4xx status for anything the client can fix.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from time import perf_counter
from typing import Any

import numpy as np
import orjson
from aiohttp import web, web_server
from multidict import CIMultiDict

from gyre.serving.batching import MicroBatcher, PredictionFailed
from gyre.serving.metrics import CONTENT_TYPE, ServerMetrics
from gyre.serving.model import Prediction, ServedModel
from gyre.serving.predlog import PredictionLogger
from gyre.serving.schema import RequestError, v2_datatype

__all__ = ["INFERENCE_HEADER", "ModelServer", "ServerConfig"]

log = logging.getLogger(__name__)

INFERENCE_HEADER = "X-Gyre-Inference"
"""Response header naming the inference path (onnx or sklearn) that produced a prediction."""

_JSON = "application/json"
_NUMPY = orjson.OPT_SERIALIZE_NUMPY
_OUTPUTS = ("predict", "predict_proba")
_PREDICT_ONLY = ("predict",)
_Handler = Callable[[web.BaseRequest, str | None], Awaitable[web.Response]]


@dataclass(frozen=True)
class ServerConfig:
    """Tunables of the HTTP layer and the batcher."""

    max_body_bytes: int = 1 << 20
    batching: bool = True
    max_batch_rows: int | None = None
    """Most rows per model run; None picks by path: 256 for onnxruntime (cost grows with rows, keep latency flat),
    4096 for scikit-learn (a forest's per-call overhead is milliseconds, so bigger batches pay)."""
    max_wait_ms: float = 0.0
    sklearn_workers: int = 1
    """Threads running scikit-learn predictions (scikit-learn holds the GIL for much of a forest's work)."""


def _error(status: int, reason: str, headers: CIMultiDict[str] | None = None) -> web.Response:
    return web.Response(
        body=orjson.dumps({"error": reason}), status=status, content_type=_JSON, headers=headers
    )


def _truthy(value: object) -> bool:
    return value is True or (isinstance(value, str) and value.lower() in ("1", "true", "yes"))


class ModelServer:
    """One served model behind the HTTP API; `server()` is the aiohttp low-level server answering it."""

    def __init__(
        self,
        model: ServedModel,
        config: ServerConfig | None = None,
        *,
        prediction_logger: PredictionLogger | None = None,
        track: str = "",
    ) -> None:
        self.model = model
        self.config = config or ServerConfig()
        self.schema = model.schema
        self.classification = model.manifest.task == "classification"
        self.ready = False
        # While draining, every answer closes its connection so keep-alive clients reconnect to a pod that stays.
        self.draining = False
        self.metrics = ServerMetrics(
            model=model.name,
            version=model.version,
            run=model.manifest.lineage.training_run or "",
            sha256=model.sha256,
            inference=model.inference_path,
            track=track,
        )
        self.executor: concurrent.futures.ThreadPoolExecutor | None = None
        if not model.predictor.inline:
            self.executor = concurrent.futures.ThreadPoolExecutor(
                max_workers=self.config.sklearn_workers, thread_name_prefix="gyre-predict"
            )
        self.batcher = MicroBatcher(
            model.predictor,
            enabled=self.config.batching,
            max_batch_rows=self.config.max_batch_rows or (256 if model.predictor.inline else 4096),
            max_wait_s=self.config.max_wait_ms / 1000.0,
            executor=self.executor,
            on_batch=self.metrics.batch_rows.observe,
        )
        self.prediction_logger = prediction_logger
        if prediction_logger is not None:
            prediction_logger.on_dropped = self.metrics.log_dropped.inc
            prediction_logger.on_written = self.metrics.log_written.inc
            prediction_logger.on_error = self.metrics.log_errors.inc
        self.has_proba = bool(getattr(model.predictor, "has_proba", False)) and self.classification
        self._label_datatype, self._proba_datatype = self._warm_up()
        self._headers: CIMultiDict[str] = CIMultiDict(
            {"Content-Type": _JSON, INFERENCE_HEADER: model.inference_path}
        )
        self._v1_single: dict[Any, bytes] = {}
        self._v2_single: dict[Any, bytes] = {}
        self._v2_head = {"model_name": model.name, "model_version": model.version}
        self._metadata_body = orjson.dumps(self.metadata())
        self._build_routes()

    # -- startup ------------------------------------------------------------------------------------------------

    def _warm_up(self) -> tuple[str, str]:
        """One prediction on a placeholder row: allocates onnxruntime's buffers and tells the output datatypes."""
        row = np.empty((1, self.schema.width), dtype=np.float64 if self.schema.all_numeric else object)
        for i, spec in enumerate(self.schema.features):
            cats = [c for c in (spec.categories or []) if c is not None]
            row[0, i] = 0.0 if self.schema.numeric[i] else (str(cats[0]) if cats else "")
        try:
            out = self.model.predictor.predict(row, self.has_proba)
            proba_type = v2_datatype(out.proba) if out.proba is not None else "FP64"
            return v2_datatype(out.predict), proba_type
        except Exception as exc:  # metadata falls back to the manifest's view
            log.warning("warm-up prediction failed (%s); output datatypes come from the manifest", exc)
            classes = self.model.manifest.target.classes or []
            if not self.classification:
                return "FP64", "FP64"
            return v2_datatype(np.asarray(classes)), "FP64"

    # -- responses ---------------------------------------------------------------------------------------------

    def _json(self, payload: Any, status: int = 200) -> web.Response:
        return web.Response(body=orjson.dumps(payload, option=_NUMPY), status=status, content_type=_JSON)

    @staticmethod
    def _serialisable(array: np.ndarray) -> Any:
        # orjson writes numeric numpy arrays natively; strings and objects go through lists.
        return array if array.dtype.kind in "biuf" else array.tolist()

    def _v1_body(self, prediction: Prediction) -> bytes:
        predict = prediction.predict
        if prediction.proba is None and len(predict) == 1 and self.classification:
            key = predict[0]
            cached = self._v1_single.get(key)
            if cached is None:
                cached = orjson.dumps({"predictions": self._serialisable(predict)}, option=_NUMPY)
                if len(self._v1_single) < 1024:
                    self._v1_single[key] = cached
            return cached
        payload: dict[str, Any] = {"predictions": self._serialisable(predict)}
        if prediction.proba is not None:
            payload["probabilities"] = prediction.proba
        return orjson.dumps(payload, option=_NUMPY)

    # -- request handling --------------------------------------------------------------------------------------

    async def _read_json(self, request: web.BaseRequest) -> dict[str, Any]:
        limit = self.config.max_body_bytes
        length = request.content_length
        if length is not None and length > limit:
            raise RequestError(413, f"request body of {length} bytes exceeds the limit of {limit}")
        if length == 0:
            raw = b""
        elif length is not None:
            try:
                raw = await request.content.readexactly(length)
            except asyncio.IncompleteReadError:
                raise RequestError(400, "request body shorter than its Content-Length") from None
        else:
            # Chunked: read the stream ourselves so the limit holds whatever aiohttp's default is.
            chunks: list[bytes] = []
            size = 0
            while chunk := await request.content.readany():
                size += len(chunk)
                if size > limit:
                    raise RequestError(413, f"request body exceeds the limit of {limit} bytes")
                chunks.append(chunk)
            raw = b"".join(chunks)
        if not raw:
            raise RequestError(400, "empty request body; send a JSON object")
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise RequestError(400, f"malformed JSON: {exc}") from None
        if type(body) is not dict:
            raise RequestError(400, "the request body must be a JSON object")
        return body

    async def _predict(self, rows: np.ndarray, want_proba: bool) -> Prediction:
        try:
            prediction = await self.batcher.predict(rows, want_proba)
        except PredictionFailed as exc:
            raise RequestError(422, f"the model rejected the input: {exc}") from None
        self.metrics.observe_predictions(prediction.predict, self.classification)
        if self.prediction_logger is not None:
            self.prediction_logger.record(rows, prediction)
        return prediction

    async def v1_predict(self, request: web.BaseRequest, _version: str | None = None) -> web.Response:
        """KServe v1 predict; `"predict_proba": true` in the body or `?predict_proba=true` adds probabilities."""
        start = perf_counter()
        try:
            body = await self._read_json(request)
            instances = body.get("instances")
            if instances is None:
                instances = body.get("inputs")
                if instances is None:
                    raise RequestError(422, 'the request needs "instances": an array of rows')
            want_proba = _truthy(body.get("predict_proba")) or (
                bool(request.query_string) and _truthy(request.query.get("predict_proba"))
            )
            if want_proba and not self.has_proba:
                raise RequestError(422, "this model has no predict_proba output")
            rows = self.schema.parse_instances(instances)
            prediction = await self._predict(rows, want_proba)
            response = web.Response(body=self._v1_body(prediction), headers=self._headers)
        except RequestError as exc:
            response = _error(exc.status, exc.reason)
        except Exception:
            log.exception("unexpected error in v1 predict")
            response = _error(500, "internal server error")
        self.metrics.observe_request("v1", response.status, perf_counter() - start)
        return response

    async def v2_infer(self, request: web.BaseRequest, version: str | None = None) -> web.Response:
        """Open Inference Protocol v2 infer; `outputs` may ask for `predict` and/or `predict_proba`."""
        start = perf_counter()
        try:
            self._check_version(version)
            body = await self._read_json(request)
            request_id = body.get("id")
            if request_id is not None and type(request_id) is not str:
                raise RequestError(422, '"id" must be a string')
            names = self._requested_outputs(body.get("outputs"))
            rows = self.schema.parse_v2_inputs(body.get("inputs"))
            prediction = await self._predict(rows, "predict_proba" in names)
            response = web.Response(body=self._v2_body(prediction, names, request_id), headers=self._headers)
        except RequestError as exc:
            response = _error(exc.status, exc.reason)
        except Exception:
            log.exception("unexpected error in v2 infer")
            response = _error(500, "internal server error")
        self.metrics.observe_request("v2", response.status, perf_counter() - start)
        return response

    def _requested_outputs(self, outputs: object) -> tuple[str, ...]:
        if outputs is None:
            return _PREDICT_ONLY
        if type(outputs) is not list or not outputs:
            raise RequestError(422, '"outputs" must be a non-empty array of {"name": ...} objects')
        names: list[str] = []
        for item in outputs:
            name = item.get("name") if type(item) is dict else None
            if name not in _OUTPUTS:
                raise RequestError(
                    422, f"unknown output {name!r}; this model has {list(self._output_names())}"
                )
            if name == "predict_proba" and not self.has_proba:
                raise RequestError(422, "this model has no predict_proba output")
            if name not in names:
                names.append(name)
        return tuple(names)

    def _output_names(self) -> tuple[str, ...]:
        return _OUTPUTS if self.has_proba else ("predict",)

    def _v2_body(self, prediction: Prediction, names: tuple[str, ...], request_id: str | None) -> bytes:
        # The commonest answer (one row, one label, no id) is prebuilt per class.
        single = request_id is None and names == _PREDICT_ONLY and len(prediction.predict) == 1
        if single and self.classification:
            key = prediction.predict[0]
            cached = self._v2_single.get(key)
            if cached is None:
                cached = orjson.dumps(self._v2_payload(prediction, names, None), option=_NUMPY)
                if len(self._v2_single) < 1024:
                    self._v2_single[key] = cached
            return cached
        return orjson.dumps(self._v2_payload(prediction, names, request_id), option=_NUMPY)

    def _v2_payload(
        self, prediction: Prediction, names: tuple[str, ...], request_id: str | None
    ) -> dict[str, Any]:
        outputs: list[dict[str, Any]] = []
        n = len(prediction.predict)
        for name in names:
            if name == "predict":
                outputs.append(
                    {
                        "name": "predict",
                        "datatype": v2_datatype(prediction.predict),
                        "shape": [n],
                        "data": self._serialisable(prediction.predict),
                    }
                )
            elif prediction.proba is not None:
                proba = prediction.proba
                outputs.append(
                    {
                        "name": "predict_proba",
                        "datatype": v2_datatype(proba),
                        "shape": [n, proba.shape[1]],
                        "data": proba.ravel(),
                    }
                )
        payload: dict[str, Any] = dict(self._v2_head)
        if request_id is not None:
            payload["id"] = request_id
        payload["outputs"] = outputs
        return payload

    def _check_version(self, version: str | None) -> None:
        if version is not None and version != self.model.version:
            raise RequestError(
                404, f"model {self.model.name!r} has no version {version!r} (serving {self.model.version})"
            )

    # -- metadata and health -----------------------------------------------------------------------------------

    def metadata(self) -> dict[str, Any]:
        """OIP v2 model metadata: one input tensor per feature, the outputs, and how inference runs."""
        manifest = self.model.manifest
        inputs = [
            {"name": name, "datatype": "FP64" if numeric else "BYTES", "shape": [-1]}
            for name, numeric in zip(self.schema.names, self.schema.numeric, strict=True)
        ]
        outputs: list[dict[str, Any]] = [{"name": "predict", "datatype": self._label_datatype, "shape": [-1]}]
        if self.has_proba:
            width = len(manifest.target.classes or [])
            outputs.append(
                {"name": "predict_proba", "datatype": self._proba_datatype, "shape": [-1, width or -1]}
            )
        return {
            "name": self.model.name,
            "versions": [self.model.version],
            "platform": "onnxruntime" if self.model.inference_path == "onnx" else "sklearn",
            "inputs": inputs,
            "outputs": outputs,
            "parameters": {
                "inference_path": self.model.inference_path,
                "task": manifest.task,
                "estimator": manifest.estimator,
                "sha256": self.model.sha256,
                "training_run": manifest.lineage.training_run,
                "classes": manifest.target.classes,
                "batch_input": {"name": "input-0", "shape": [-1, self.schema.width]}
                if self.schema.all_numeric
                else None,
            },
        }

    async def v2_metadata(self, _request: web.BaseRequest, version: str | None = None) -> web.Response:
        """GET /v2/models/MODEL."""
        try:
            self._check_version(version)
        except RequestError as exc:
            return _error(exc.status, exc.reason)
        return web.Response(
            body=self._metadata_body,
            content_type=_JSON,
            headers={INFERENCE_HEADER: self.model.inference_path},
        )

    async def model_ready(self, _request: web.BaseRequest, version: str | None = None) -> web.Response:
        """GET /v1/models/MODEL and /v2/models/MODEL/ready: 200 when ready, 503 otherwise."""
        try:
            self._check_version(version)
        except RequestError as exc:
            return _error(exc.status, exc.reason)
        return self._json({"name": self.model.name, "ready": self.ready}, 200 if self.ready else 503)

    async def server_ready(self, _request: web.BaseRequest, _version: str | None = None) -> web.Response:
        """GET /v2/health/ready."""
        return self._json({"ready": self.ready}, 200 if self.ready else 503)

    async def server_live(self, _request: web.BaseRequest, _version: str | None = None) -> web.Response:
        """GET /v2/health/live."""
        return web.Response(body=b'{"live":true}', content_type=_JSON)

    async def server_metadata(self, _request: web.BaseRequest, _version: str | None = None) -> web.Response:
        """GET /v2."""
        from importlib.metadata import PackageNotFoundError, version

        try:
            gyre_version = version("gyre")
        except PackageNotFoundError:
            gyre_version = "dev"
        return self._json({"name": "gyre", "version": gyre_version, "extensions": []})

    async def list_models(self, _request: web.BaseRequest, _version: str | None = None) -> web.Response:
        """GET /v1/models."""
        return self._json({"models": [self.model.name]})

    async def metrics_endpoint(self, _request: web.BaseRequest, _version: str | None = None) -> web.Response:
        """GET /metrics."""
        response = web.Response(body=self.metrics.render())
        response.headers["Content-Type"] = CONTENT_TYPE
        return response

    async def not_found(self, request: web.BaseRequest) -> web.Response:
        """Any other path: an unknown model or version, or no such endpoint (404)."""
        path = request.path
        if path.startswith(("/v1/models/", "/v2/models/")) and len(path) > len("/v1/models/"):
            name = path[len("/v1/models/") :].split("/", 1)[0].split(":", 1)[0]
            if name and name != self.model.name:
                return _error(
                    404, f"model {name!r} is not served here (this server serves {self.model.name!r})"
                )
        return _error(404, f"no such endpoint: {request.method} {request.path}")

    # -- dispatch ---------------------------------------------------------------------------------------------------

    def _build_routes(self) -> None:
        name = self.model.name
        self._exact: dict[str, dict[str, _Handler]] = {}
        for method, path, handler in (
            ("GET", "/v1/models", self.list_models),
            ("GET", f"/v1/models/{name}", self.model_ready),
            ("POST", f"/v1/models/{name}:predict", self.v1_predict),
            ("GET", "/v2", self.server_metadata),
            ("GET", "/v2/health/live", self.server_live),
            ("GET", "/v2/health/ready", self.server_ready),
            ("GET", f"/v2/models/{name}", self.v2_metadata),
            ("GET", f"/v2/models/{name}/ready", self.model_ready),
            ("POST", f"/v2/models/{name}/infer", self.v2_infer),
            ("GET", "/metrics", self.metrics_endpoint),
        ):
            self._exact.setdefault(path, {})[method] = handler
        self._versioned_prefix = f"/v2/models/{name}/versions/"
        self._versioned: dict[str, dict[str, _Handler]] = {
            "": {"GET": self.v2_metadata},
            "ready": {"GET": self.model_ready},
            "infer": {"POST": self.v2_infer},
        }

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        response = await self._dispatch(request)
        if self.draining:
            response.force_close()
        return response

    async def _dispatch(self, request: web.BaseRequest) -> web.StreamResponse:
        """The aiohttp low-level handler: exact paths by dict lookup, then versioned v2 paths, else 404/405.

        No Application, router or middleware: they cost every request, and every answer here, errors included,
        is already JSON.
        """
        try:
            path = request.path
            methods = self._exact.get(path)
            version: str | None = None
            if methods is None and path.startswith(self._versioned_prefix):
                version, _, tail = path[len(self._versioned_prefix) :].partition("/")
                methods = self._versioned.get(tail) if version else None
            if methods is None:
                return await self.not_found(request)
            handler = methods.get(request.method)
            if handler is None:
                return _error(405, f"method {request.method} is not allowed on {path}")
            return await handler(request, version)
        except Exception:
            log.exception("unhandled error on %s %s", request.method, request.path)
            return _error(500, "internal server error")

    def server(self, **kwargs: Any) -> web_server.Server:
        """An aiohttp low-level server for `handle` (run it with web.ServerRunner)."""
        return web_server.Server(self.handle, **kwargs)

    async def start(self) -> None:
        """Start background work (the prediction-log flusher) and report ready."""
        if self.prediction_logger is not None:
            self.prediction_logger.start()
        self.ready = True

    def begin_drain(self) -> None:
        """Report unready and close each connection after its next answer, while the endpoint is withdrawn."""
        self.ready = False
        self.draining = True

    async def close(self) -> None:
        """After the listener is closed and in-flight requests are done: finish batches, flush the log."""
        self.ready = False
        await self.batcher.drain()
        if self.prediction_logger is not None:
            await self.prediction_logger.close()
        if self.executor is not None:
            self.executor.shutdown(wait=True)
