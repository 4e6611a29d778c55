"""The HTTP model server: KServe v1 and Open Inference Protocol v2 over aiohttp.

Routes (MODEL is the served model's name, VERSION its version, the first 12 hex digits of the model's digest):

    GET  /                                            KServe v1 liveness: {"status": "alive"}
    GET  /v1/models                                   {"models": [MODEL]}
    GET  /v1/models/MODEL                             {"name": MODEL, "ready": bool}
    POST /v1/models/MODEL:predict                     {"instances": [...]} -> {"predictions": [...]}
    POST /v1/models/MODEL:explain                     feature attributions per row, when enabled (gyre.serving.explain)
    GET  /v2                                          server metadata
    GET  /v2/health/live, /v2/health/ready            liveness, readiness (503 while starting or draining)
    GET  /v2/models                                   {"models": [MODEL]} (KServe's model list)
    POST /v2/repository/index                         [{"name": MODEL, "version": VERSION, "state": "READY"}]
    GET  /v2/models/MODEL[/versions/VERSION]          model metadata (inputs, outputs, inference path)
    GET  /v2/models/MODEL[/versions/VERSION]/ready    model readiness
    POST /v2/models/MODEL[/versions/VERSION]/infer    OIP v2 inference
    POST /v2/models/MODEL/feedback                    ground-truth labels for earlier predictions (gyre.serving.feedback)
    GET  /metrics                                     Prometheus text format

v2 inference also speaks the binary tensor data extension (gyre.serving.binary), in requests and in responses.
Request bodies may be gzip or deflate encoded. Every error is JSON `{"error": "..."}` with a 4xx status for anything
the client can fix.

Every answered prediction has an id (docs/architecture.md, "Prediction log"): the v2 request's `id`, echoed, or a
generated uuid4 hex in the response's `id`; in v1 the `Gyre-Prediction-Id` response header, which a client may set
on its request to choose the id. Row `i` of a batch is `{id}.{i}` in the prediction log.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import errno
import logging
import select
import socket
import time
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from time import perf_counter
from typing import Any

import numpy as np
import orjson
from aiohttp import hdrs, web, web_protocol, web_server
from aiohttp.http_exceptions import HttpProcessingError
from multidict import CIMultiDict

from gyre.serving.batching import MicroBatcher, PredictionFailed
from gyre.serving.binary import HEADER_LENGTH, attach_binary, encode_tensor
from gyre.serving.explain import ExplainWorker, explain_instances
from gyre.serving.feedback import FeedbackWriter, LabelChecker, parse_feedback
from gyre.serving.metrics import CONTENT_TYPE, ServerMetrics
from gyre.serving.model import Prediction, ServedModel
from gyre.serving.predlog import PredictionLogger, new_prediction_id
from gyre.serving.schema import RequestError, load_json_body, v2_datatype

__all__ = ["INFERENCE_HEADER", "PREDICTION_ID_HEADER", "CappedSite", "ModelServer", "ServerConfig"]

log = logging.getLogger(__name__)

INFERENCE_HEADER = "X-Gyre-Inference"
"""Response header naming the inference path (onnx or sklearn) that produced a prediction."""
PREDICTION_ID_HEADER = "Gyre-Prediction-Id"
"""KServe v1: the prediction id, in the response; a request may carry it to choose the id itself."""

_JSON = "application/json"
_OCTETS = "application/octet-stream"
# Request Content-Encodings Gyre decodes itself (aiohttp's decoder is off: it counts the limit on the compressed
# bytes and answers unknown encodings with a plain-text 400 before any handler runs), with zlib's wbits for each.
# deflate is zlib-wrapped by the standard, raw in some clients: both are accepted.
_WBITS = {
    "gzip": (16 + zlib.MAX_WBITS,),
    "x-gzip": (16 + zlib.MAX_WBITS,),
    "deflate": (zlib.MAX_WBITS, -zlib.MAX_WBITS),
}
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
    header_timeout_s: float = 15.0
    """A connection must send a complete request head this soon after it opens or after its previous answer, else
    it is closed: this bounds both half-sent heads and idle keep-alive connections."""
    body_timeout_s: float = 30.0
    """A request body must arrive whole this soon after its head, else the answer is 408 and the connection closes."""
    max_connections: int = 1024
    """Open connections at most. At the cap the listener (CappedSite) stops accepting, so new connections wait in
    the kernel's listen queue; while some wait, each answer closes its connection so that they get a turn."""
    explain: bool = False
    """Answer :explain (off: 404 saying how to turn it on)."""
    explain_max_rows: int = 100
    """Most rows one :explain request may ask about (more: 422)."""


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
        feedback_writer: FeedbackWriter | None = None,
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
        self.explainer = (
            ExplainWorker(model.manifest, model.directory, model.sha256) if self.config.explain else None
        )
        self.prediction_logger = prediction_logger
        if prediction_logger is not None:
            prediction_logger.on_dropped = self.metrics.log_dropped.inc
            prediction_logger.on_written = self.metrics.log_written.inc
            prediction_logger.on_error = self.metrics.log_errors.inc
        self.feedback_writer = feedback_writer
        if feedback_writer is not None:
            feedback_writer.on_dropped = self.metrics.feedback_labels.labels("dropped").inc
            feedback_writer.on_written = self.metrics.feedback_written.inc
            feedback_writer.on_error = self.metrics.feedback_errors.inc
        self.label_checker = LabelChecker(model.manifest.task, model.manifest.target.classes)
        self.has_proba = bool(getattr(model.predictor, "has_proba", False)) and self.classification
        self._label_datatype, self._proba_datatype = self._warm_up()
        self._headers: CIMultiDict[str] = CIMultiDict(
            {"Content-Type": _JSON, INFERENCE_HEADER: model.inference_path}
        )
        self._v1_single: dict[Any, bytes] = {}
        self._v2_single: dict[Any, bytes] = {}
        self._v2_head = {"model_name": model.name, "model_version": model.version}
        # A v2 answer is this, the id as a JSON string, and a cached tail for the commonest outputs.
        self._v2_id_head = orjson.dumps(self._v2_head)[:-1] + b',"id":'
        self._metadata_body = orjson.dumps(self.metadata())
        self._connections: _CappedServer | None = None
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

    def _buffered_body(self, request: web.BaseRequest) -> bytes | None:
        """The body without a coroutine or a timer when it is already buffered whole, within the limit and not
        compressed (the common case); else None, for `_read_body`."""
        content = request.content
        length = request.content_length
        if (
            length is None
            or length > self.config.max_body_bytes
            or not content.is_eof()
            or hdrs.CONTENT_ENCODING in request.headers
        ):
            return None
        raw = content.read_nowait()
        if len(raw) != length:
            raise RequestError(400, "request body shorter than its Content-Length")
        return raw

    async def _read_body(self, request: web.BaseRequest) -> bytes:
        """The whole body, decompressed, within the size limit and the body timeout."""
        content = request.content
        if content.is_eof():  # already buffered whole: the common case, no timer needed
            return await self._read_within_limit(request)
        try:
            async with asyncio.timeout(self.config.body_timeout_s):
                return await self._read_within_limit(request)
        except TimeoutError:
            raise RequestError(
                408, f"the request body did not arrive within {self.config.body_timeout_s:g}s", close=True
            ) from None

    async def _read_within_limit(self, request: web.BaseRequest) -> bytes:
        limit = self.config.max_body_bytes
        length = request.content_length
        if length is not None and length > limit:
            raise RequestError(
                413, f"request body of {length} bytes exceeds the limit of {limit}", close=True
            )
        encoding = request.headers.get(hdrs.CONTENT_ENCODING)
        if encoding is not None:
            encoding = encoding.strip().lower()
            if encoding == "identity":
                encoding = None
            elif encoding not in _WBITS:
                raise RequestError(
                    415, f"unsupported Content-Encoding {encoding!r}; send gzip, deflate or none", close=True
                )
        try:
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
                        raise RequestError(
                            413, f"request body exceeds the limit of {limit} bytes", close=True
                        )
                    chunks.append(chunk)
                raw = b"".join(chunks)
        except (HttpProcessingError, web_protocol.RequestPayloadError) as exc:
            # e.g. broken chunked framing. Nothing more can be read: mark the stream finished, or aiohttp would try
            # to read the rest after the answer and log the same error again as a traceback.
            request.content.feed_eof()
            raise RequestError(400, f"unreadable request body: {_one_line(exc)}", close=True) from None
        return raw if encoding is None else _decompress(raw, encoding, limit)

    @staticmethod
    def _parse_json(raw: bytes | memoryview) -> dict[str, Any]:
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            body = load_json_body(raw, "a JSON object")  # raises, with the reason
        if type(body) is not dict:
            raise RequestError(400, "the request body must be a JSON object")
        return body

    async def _read_json(self, request: web.BaseRequest) -> dict[str, Any]:
        raw = self._buffered_body(request)
        return self._parse_json(raw if raw is not None else await self._read_body(request))

    def _split_v2(self, request: web.BaseRequest, raw: bytes) -> tuple[dict[str, Any], memoryview | None]:
        """The JSON header of a v2 request and, under the binary extension, the bytes after it."""
        header = request.headers.get(HEADER_LENGTH)
        if header is None:
            return self._parse_json(raw), None
        try:
            length = int(header)
        except ValueError:
            length = -1
        if not 0 <= length <= len(raw):
            raise RequestError(
                400,
                f"{HEADER_LENGTH} must be an integer between 0 and the body's {len(raw)} bytes, got {header!r}",
            )
        view = memoryview(raw)
        return self._parse_json(view[:length]), view[length:]

    async def _predict(self, rows: np.ndarray, want_proba: bool, request_id: str) -> Prediction:
        try:
            prediction = await self.batcher.predict(rows, want_proba)
        except PredictionFailed as exc:
            raise RequestError(422, f"the model rejected the input: {exc}") from None
        self.metrics.observe_predictions(prediction.predict, self.classification)
        if self.prediction_logger is not None:
            self.prediction_logger.record(rows, prediction, request_id)
        return prediction

    async def v1_predict(self, request: web.BaseRequest, _version: str | None = None) -> web.Response:
        """KServe v1 predict; `"predict_proba": true` in the body or `?predict_proba=true` adds probabilities."""
        start = perf_counter()
        try:
            raw = self._buffered_body(request)
            body = self._parse_json(raw if raw is not None else await self._read_body(request))
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
            request_id = request.headers.get(PREDICTION_ID_HEADER) or new_prediction_id()
            prediction = await self._predict(rows, want_proba, request_id)
            response = web.Response(body=self._v1_body(prediction), headers=self._headers)
            response.headers[PREDICTION_ID_HEADER] = request_id
        except RequestError as exc:
            response = self._refusal(request, exc)
        except Exception:
            log.exception("unexpected error in v1 predict")
            response = _error(500, "internal server error")
        self.metrics.observe_request("v1", response.status, perf_counter() - start)
        return response

    async def v2_infer(self, request: web.BaseRequest, version: str | None = None) -> web.Response:
        """Open Inference Protocol v2 infer; `outputs` may ask for `predict` and/or `predict_proba`."""
        start = perf_counter()
        try:
            if version is not None:
                self._check_version(version)
            raw = self._buffered_body(request)
            body, binary = self._split_v2(request, raw if raw is not None else await self._read_body(request))
            request_id = body.get("id")
            if request_id is not None and type(request_id) is not str:
                raise RequestError(422, '"id" must be a string')
            request_id = request_id or new_prediction_id()
            parameters = body.get("parameters")
            outputs = body.get("outputs")
            names: tuple[str, ...] = _PREDICT_ONLY
            binary_names: tuple[str, ...] = ()
            if parameters is not None or outputs is not None:  # else the commonest request: labels, as JSON
                binary_default = type(parameters) is dict and parameters.get("binary_data_output") is True
                names, binary_names = self._requested_outputs(outputs, binary_default)
            inputs = body.get("inputs")
            if binary is not None:
                inputs = attach_binary(inputs, binary)
            rows = self.schema.parse_v2_inputs(inputs)
            prediction = await self._predict(rows, "predict_proba" in names, request_id)
            if binary_names:
                response = self._v2_binary_response(prediction, names, request_id, binary_names)
            else:
                response = web.Response(
                    body=self._v2_body(prediction, names, request_id), headers=self._headers
                )
        except RequestError as exc:
            response = self._refusal(request, exc)
        except Exception:
            log.exception("unexpected error in v2 infer")
            response = _error(500, "internal server error")
        self.metrics.observe_request("v2", response.status, perf_counter() - start)
        return response

    async def feedback(self, request: web.BaseRequest, _version: str | None = None) -> web.Response:
        """POST /v2/models/MODEL/feedback: labels for earlier predictions, checked, buffered, written in the
        background; 200 with per-item counts and reasons when any was accepted, else a 4xx saying why."""
        try:
            if self.feedback_writer is None:
                raise RequestError(503, "feedback is off: this server has no artifact store (GYRE_LOG_STORE)")
            report = parse_feedback(await self._read_body(request), self.label_checker, time.time())
            counted = self.metrics.feedback_labels
            counted.labels("invalid").inc(report.invalid)
            counted.labels("duplicate").inc(report.duplicate)
            if report.rows and not self.feedback_writer.add(report.rows, len(report.rows)):
                raise RequestError(503, "the feedback buffer is full; retry later")
            counted.labels("accepted").inc(len(report.rows))
            self.metrics.feedback_unknown_class.inc(report.unknown_class)
            status, payload = report.answer()
            response = self._json(payload, status)
        except RequestError as exc:
            response = self._refusal(request, exc)
        self.metrics.feedback_requests.labels(str(response.status)).inc()
        return response

    async def v1_explain(self, request: web.BaseRequest, _version: str | None = None) -> web.Response:
        """KServe v1 explain: feature attributions per row, computed in the explanation worker."""
        start = perf_counter()
        try:
            if self.explainer is None:
                raise RequestError(
                    404,
                    "explanations are off for this model: set spec.explain.enabled on the ModelDeployment "
                    "(gyre serve --explain)",
                )
            body = await self._read_json(request)
            rows = self.schema.parse_instances(explain_instances(body, self.config.explain_max_rows))
            response = web.Response(body=await self.explainer.explain(rows), content_type=_JSON)
        except RequestError as exc:
            response = self._refusal(request, exc)
        except Exception:
            log.exception("unexpected error in v1 explain")
            response = _error(500, "internal server error")
        self.metrics.observe_request("explain", response.status, perf_counter() - start)
        return response

    def _refusal(self, request: web.BaseRequest, exc: RequestError) -> web.Response:
        # One line per refused request, at INFO: the client's mistake, not the server's.
        log.info("%s %s refused (%d): %s", request.method, request.path, exc.status, _one_line(exc.reason))
        response = _error(exc.status, exc.reason)
        if exc.close:
            response.force_close()
        return response

    def _requested_outputs(
        self, outputs: object, binary_default: bool
    ) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """The outputs asked for, and those of them to send as binary data (binary_data_output, or an output's own
        binary_data parameter, which wins)."""
        if outputs is None:
            return _PREDICT_ONLY, (_PREDICT_ONLY if binary_default else ())
        if type(outputs) is not list or not outputs:
            raise RequestError(422, '"outputs" must be a non-empty array of {"name": ...} objects')
        names: list[str] = []
        binary: list[str] = []
        for item in outputs:
            name = item.get("name") if type(item) is dict else None
            if name not in _OUTPUTS:
                raise RequestError(
                    422, f"unknown output {name!r}; this model has {list(self._output_names())}"
                )
            if name == "predict_proba" and not self.has_proba:
                raise RequestError(422, "this model has no predict_proba output")
            if name in names:
                continue
            names.append(name)
            assert type(item) is dict
            parameters = item.get("parameters")
            wanted = parameters.get("binary_data") if type(parameters) is dict else None
            if wanted is True or (wanted is None and binary_default):
                binary.append(name)
        if names == ["predict"] and not binary:
            return _PREDICT_ONLY, ()
        return tuple(names), tuple(binary)

    def _output_names(self) -> tuple[str, ...]:
        return _OUTPUTS if self.has_proba else ("predict",)

    def _v2_body(self, prediction: Prediction, names: tuple[str, ...], request_id: str) -> bytes:
        # The commonest answer (one row, one label) has a tail prebuilt per class: only the id is encoded.
        if names == _PREDICT_ONLY and len(prediction.predict) == 1 and self.classification:
            key = prediction.predict[0]
            tail = self._v2_single.get(key)
            if tail is None:
                outputs = self._v2_payload(prediction, names, request_id)["outputs"]
                tail = b',"outputs":' + orjson.dumps(outputs, option=_NUMPY) + b"}"
                if len(self._v2_single) < 1024:
                    self._v2_single[key] = tail
            return b"".join((self._v2_id_head, orjson.dumps(request_id), tail))
        return orjson.dumps(self._v2_payload(prediction, names, request_id), option=_NUMPY)

    def _v2_binary_response(
        self,
        prediction: Prediction,
        names: tuple[str, ...],
        request_id: str,
        binary_names: tuple[str, ...],
    ) -> web.Response:
        """JSON header, then the raw bytes of each binary output in the order the header lists them."""
        payload = self._v2_payload(prediction, names, request_id)
        blobs: list[bytes] = []
        for output in payload["outputs"]:
            if output["name"] in binary_names:
                blob = encode_tensor(np.asarray(output.pop("data")))
                output["parameters"] = {"binary_data_size": len(blob)}
                blobs.append(blob)
        header = orjson.dumps(payload, option=_NUMPY)
        headers = CIMultiDict(self._headers)
        headers[hdrs.CONTENT_TYPE] = _OCTETS
        headers[HEADER_LENGTH] = str(len(header))
        return web.Response(body=b"".join([header, *blobs]), headers=headers)

    def _v2_payload(self, prediction: Prediction, names: tuple[str, ...], request_id: str) -> dict[str, Any]:
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
        """GET /v1/models and /v2/models."""
        return self._json({"models": [self.model.name]})

    async def repository_index(self, _request: web.BaseRequest, _version: str | None = None) -> web.Response:
        """POST /v2/repository/index (Triton's model repository extension, as tritonclient asks for it)."""
        state = "READY" if self.ready else "UNAVAILABLE"
        return self._json([{"name": self.model.name, "version": self.model.version, "state": state}])

    async def alive(self, _request: web.BaseRequest, _version: str | None = None) -> web.Response:
        """GET /: KServe v1 liveness."""
        return web.Response(body=b'{"status":"alive"}', content_type=_JSON)

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
            ("GET", "/", self.alive),
            ("GET", "/v1/models", self.list_models),
            ("GET", f"/v1/models/{name}", self.model_ready),
            ("POST", f"/v1/models/{name}:predict", self.v1_predict),
            ("POST", f"/v1/models/{name}:explain", self.v1_explain),
            ("GET", "/v2", self.server_metadata),
            ("GET", "/v2/health/live", self.server_live),
            ("GET", "/v2/health/ready", self.server_ready),
            ("GET", "/v2/models", self.list_models),
            ("POST", "/v2/repository/index", self.repository_index),
            ("GET", f"/v2/models/{name}", self.v2_metadata),
            ("GET", f"/v2/models/{name}/ready", self.model_ready),
            ("POST", f"/v2/models/{name}/infer", self.v2_infer),
            ("POST", f"/v2/models/{name}/feedback", self.feedback),
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
        """The aiohttp low-level handler: exact paths by dict lookup, then versioned v2 paths, else 404/405.

        No Application, router or middleware: they cost every request, and every answer here, errors included,
        is already JSON. One coroutine around the endpoint's: each level of awaiting costs every request.
        """
        try:
            path = request.path
            methods = self._exact.get(path)
            version: str | None = None
            if methods is None and path.startswith(self._versioned_prefix):
                version, _, tail = path[len(self._versioned_prefix) :].partition("/")
                methods = self._versioned.get(tail) if version else None
            if methods is None:
                response = await self.not_found(request)
            else:
                handler = methods.get(request.method)
                if handler is None:
                    response = _error(405, f"method {request.method} is not allowed on {path}")
                else:
                    response = await handler(request, version)
        except Exception:
            log.exception("unhandled error on %s %s", request.method, request.path)
            response = _error(500, "internal server error")
        # Draining: keep-alive clients move to a pod that stays. At the cap: the slot goes to a waiting client.
        connections = self._connections
        if self.draining or (connections is not None and connections.full and connections.clients_waiting()):
            response.force_close()
        return response

    def server(self, **kwargs: Any) -> web_server.Server:
        """An aiohttp low-level server for `handle`, with the head timeout and one-line logs for malformed requests.
        Run it with web.ServerRunner and a CappedSite, which holds it to the connection cap."""
        kwargs.setdefault("keepalive_timeout", self.config.header_timeout_s)
        kwargs.setdefault("auto_decompress", False)
        kwargs.setdefault("logger", _OneLineLog(log))
        self._connections = _CappedServer(self.handle, max_connections=self.config.max_connections, **kwargs)
        return self._connections

    @property
    def open_connections(self) -> int:
        """Connections the server holds now."""
        return 0 if self._connections is None else self._connections.open

    async def start(self) -> None:
        """Start background work (the prediction-log flusher) and report ready."""
        if self.prediction_logger is not None:
            self.prediction_logger.start()
        if self.feedback_writer is not None:
            self.feedback_writer.start()
        if self.explainer is not None:
            self.explainer.start()
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
        if self.feedback_writer is not None:
            await self.feedback_writer.close()
        if self.executor is not None:
            self.executor.shutdown(wait=True)
        if self.explainer is not None:
            self.explainer.close()


class _CappedServer(web_server.Server):
    """aiohttp's low-level server, counting its connections from the moment they are accepted; `room` is set while
    they are below the cap."""

    def __init__(self, handler: Any, *, max_connections: int, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self.max_connections = max_connections
        self.open = 0
        self.full = False
        self.room = asyncio.Event()
        self.room.set()
        self.listeners: list[socket.socket] = []
        """The CappedSite's listening sockets: while it is paused, a readable one has clients waiting."""
        self._accepted: set[int] = set()  # file descriptors counted at accept, not yet set up
        self._warned = -float("inf")

    def clients_waiting(self) -> bool:
        """Whether a connection waits in a listen queue (asked only at the cap, when nothing accepts)."""
        return bool(self.listeners) and bool(select.select(self.listeners, [], [], 0)[0])

    def accepted(self, fd: int) -> None:
        """The site accepted a connection; it counts from now on, while its transport is set up."""
        self._accepted.add(fd)
        self.open += 1
        self._count()

    def not_set_up(self, fd: int) -> None:
        """An accepted connection could not be set up."""
        if fd in self._accepted:
            self._accepted.discard(fd)
            self.open -= 1
            self._count()

    def connection_made(self, handler: web_protocol.RequestHandler, transport: asyncio.Transport) -> None:
        super().connection_made(handler, transport)
        sock = transport.get_extra_info("socket")
        fd = sock.fileno() if sock is not None else -1
        if fd in self._accepted:
            self._accepted.discard(fd)
        else:  # a connection from another site (the tests' aiohttp TestServer)
            self.open += 1
            self._count()

    def connection_lost(self, handler: web_protocol.RequestHandler, exc: BaseException | None = None) -> None:
        super().connection_lost(handler, exc)
        self.open -= 1
        self._count()

    def _count(self) -> None:
        full = self.open >= self.max_connections
        if full == self.full:
            return
        self.full = full
        if not full:
            self.room.set()
            return
        self.room.clear()
        now = time.monotonic()
        if now - self._warned >= 60:  # the cap may be reached and left many times a second
            self._warned = now
            log.warning(
                "%d connections open, the limit: new ones wait in the listen queue until one closes",
                self.open,
            )


# accept() errors that say the process or system is out of something: wait, as asyncio's own accept loop does.
_OUT_OF_RESOURCES = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


class CappedSite(web.BaseSite):
    """A TCP listener for a ModelServer's low-level server that stops accepting while the server is at its
    connection cap and resumes below it.

    Connections beyond the cap are not accepted and refused (which would cost a file descriptor, a write and a
    close each, and fail requests a moment's wait would have served): they wait in the kernel's listen queue, up to
    `backlog` of them (and net.core.somaxconn); beyond that the kernel drops their SYNs and clients retry. The wait
    is bounded: at the cap each answer closes its connection while clients wait, and idle connections close after
    the header timeout.
    """

    def __init__(self, runner: web.BaseRunner, host: str | None, port: int, *, backlog: int = 2048) -> None:
        super().__init__(runner, backlog=backlog)
        self._host = host
        self._port = port
        self._sockets: list[socket.socket] = []
        self._accepting: list[asyncio.Task[None]] = []
        self._setting_up: set[asyncio.Task[None]] = set()

    @property
    def name(self) -> str:
        return f"http://{self._host or '0.0.0.0'}:{self.port}"

    @property
    def port(self) -> int:
        """The bound port (the one the kernel chose for port 0) once started."""
        return int(self._sockets[0].getsockname()[1]) if self._sockets else self._port

    async def start(self) -> None:
        await super().start()
        server = self._runner.server
        if not isinstance(server, _CappedServer):
            raise TypeError("CappedSite serves the server of ModelServer.server()")
        self._sockets = await _listen(self._host, self._port, self._backlog)
        server.listeners = self._sockets
        loop = asyncio.get_running_loop()
        self._accepting = [loop.create_task(self._accept(sock, server)) for sock in self._sockets]

    async def stop(self) -> None:
        for task in self._accepting:
            task.cancel()
        await asyncio.gather(*self._accepting, return_exceptions=True)
        for sock in self._sockets:
            sock.close()
        self._accepting = []
        server = self._runner.server
        if isinstance(server, _CappedServer):
            server.listeners = []
        await super().stop()

    async def _accept(self, listener: socket.socket, server: _CappedServer) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await server.room.wait()
            try:
                conn, _ = await loop.sock_accept(listener)
            except OSError as exc:
                if exc.errno in _OUT_OF_RESOURCES:
                    log.warning("cannot accept connections: %s; retrying in 1s", exc.strerror)
                    await asyncio.sleep(1)
                # Anything else (ECONNABORTED, EPROTO...) concerns one client that has gone already.
                continue
            # Set the connection up in a task of its own, as asyncio's accept loop does, so that a burst of clients
            # is accepted in one go rather than one per event-loop turn.
            server.accepted(conn.fileno())
            task = loop.create_task(self._set_up(conn, server))
            self._setting_up.add(task)
            task.add_done_callback(self._setting_up.discard)

    @staticmethod
    async def _set_up(conn: socket.socket, server: _CappedServer) -> None:
        fd = conn.fileno()
        try:
            await asyncio.get_running_loop().connect_accepted_socket(server, conn)
        except Exception:  # the client went away meanwhile, or out of memory: drop this one, keep accepting
            conn.close()
            server.not_set_up(fd)


async def _listen(host: str | None, port: int, backlog: int) -> list[socket.socket]:
    """Bound, listening, non-blocking sockets for every address `host` names (all interfaces when empty)."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    sockets: list[socket.socket] = []
    try:
        for family, address in dict.fromkeys((info[0], info[4]) for info in infos):
            sock = socket.socket(family, socket.SOCK_STREAM)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
            sock.listen(backlog)
            sock.setblocking(False)
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    return sockets


def _decompress(raw: bytes, encoding: str, limit: int) -> bytes:
    """A gzip or deflate body, expanded to at most `limit` bytes (a small bomb must not become a large body)."""
    error: zlib.error | None = None
    for wbits in _WBITS[encoding]:
        decoder = zlib.decompressobj(wbits)
        try:
            body = decoder.decompress(raw, limit + 1)
        except zlib.error as exc:
            error = exc
            continue
        if len(body) > limit:
            raise RequestError(413, f"the request body expands beyond the limit of {limit} bytes", close=True)
        if not decoder.eof:
            raise RequestError(400, f"the request body is truncated {encoding} data", close=True)
        return body
    raise RequestError(400, f"the request body is not valid {encoding} data: {error}", close=True)


def _one_line(error: object) -> str:
    """An error's text on one line (aiohttp's parser errors span several)."""
    text = error.message if isinstance(error, HttpProcessingError) and error.message else str(error)
    return " ".join(text.split())


class _OneLineLog:
    """aiohttp's server logger, minus the tracebacks of requests that are not valid HTTP: one INFO line each."""

    def __init__(self, logger: logging.Logger) -> None:
        self._log = logger

    def debug(self, msg: str, *args: Any, **kwargs: Any) -> None:
        self._log.debug(msg, *args, **kwargs)

    def warning(self, msg: str, *args: Any, **kwargs: Any) -> None:
        self._log.warning(msg, *args, **kwargs)

    def exception(self, msg: str, *args: Any, exc_info: Any = True, **kwargs: Any) -> None:
        if isinstance(exc_info, HttpProcessingError):
            self._log.info("%s: %s", msg % args if args else msg, _one_line(exc_info))
        else:
            self._log.error(msg, *args, exc_info=exc_info, **kwargs)
