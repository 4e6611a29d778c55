"""The Gyre model server (`gyre serve`): one verified model directory behind KServe v1 and Open Inference
Protocol v2, with Prometheus metrics and sampled prediction logging. No kopf or Kubernetes imports here.

Modules: `model` (loading, sha256-first, onnxruntime or scikit-learn predictors), `schema` (request bodies ->
feature matrix, checked against the manifest), `batching` (micro-batching of concurrent requests), `app` (aiohttp
routes), `explain` (per-prediction attributions), `metrics`, `predlog` (prediction log buffer), `cli` (`gyre serve`).

Protocol notes for clients:

- v1 `POST /v1/models/MODEL:predict` takes `{"instances": [...]}` (or `{"inputs": [...]}`); each instance is an
  array in feature order or an object keyed by feature name (extra keys are ignored). The reply is
  `{"predictions": [...]}`; add `"predict_proba": true` to the body (or `?predict_proba=true`) to also get
  `"probabilities": [[...], ...]` in the manifest's class order.
- v2 `POST /v2/models/MODEL[/versions/VERSION]/infer` takes one tensor per feature (shape `[N]` or `[N, 1]`,
  numeric datatypes for number features, BYTES for string features) or, for all-numeric models, a single `[N, F]`
  tensor of any name; `data` may be flat (row-major) or nested. Outputs are `predict` and, when asked for in the
  request's `outputs` field, `predict_proba` (`[N, C]`). Without `outputs` only `predict` is returned (as MLServer
  does), so the common request pays for nothing it did not ask for. `id` is echoed.
- v1 `POST /v1/models/MODEL:explain` (only with `--explain`, a ModelDeployment's `spec.explain.enabled`) takes
  the same body and returns feature attributions per row, computed in a worker process of their own
  (`explain`; docs/explanations.md).
- `null` is a missing value, as in training: NaN for number features (imputed by the pipeline), "" for strings.
- VERSION is the first 12 hex digits of the model's digest (sha256 of manifest.json). The `X-Gyre-Inference` response header, the
  `gyre_model_info` metric and the v2 metadata's `parameters.inference_path` say whether onnxruntime or
  scikit-learn answered.
- Errors are `{"error": "..."}`: 400 malformed JSON or body not an object, 404 unknown model, version or path,
  405 wrong method, 413 body over --max-body-bytes, 422 well-formed but not matching the feature schema (or
  rejected by the model), 503 from readiness endpoints while starting or draining.
"""

__all__: list[str] = []
