"""Run inside .venv-clients (hack/clients-venv.sh): tritonclient's HTTP client and the KServe SDK's REST client,
used the way their documentation shows (binary tensors by default), against a running `gyre serve`.

Reads on stdin a list of {"url": ..., "model": ..., "matrix": [[...]] or null, "columns": {feature: [values]}}
(one per running server: importing the KServe SDK takes seconds, so one process does them all) and prints on
stdout, as a JSON list in the same order, what each client call returned; the test compares that with
scikit-learn's answers.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import numpy as np


def _labels(array: Any) -> list[Any]:
    return [v.decode() if isinstance(v, bytes) else v for v in np.asarray(array).ravel().tolist()]


def _triton_inputs(spec: dict[str, Any], binary: bool, float32: bool = False) -> list[Any]:
    import tritonclient.http as httpclient

    if spec["matrix"] is not None:
        matrix = np.asarray(spec["matrix"], dtype=np.float32 if float32 else np.float64)
        tensor = httpclient.InferInput("input-0", list(matrix.shape), "FP32" if float32 else "FP64")
        tensor.set_data_from_numpy(matrix, binary_data=binary)
        return [tensor]
    inputs = []
    for name, values in spec["columns"].items():
        is_text = any(isinstance(v, str) for v in values)
        array = np.asarray(values, dtype=object if is_text else np.float64)
        tensor = httpclient.InferInput(name, [len(values)], "BYTES" if is_text else "FP64")
        tensor.set_data_from_numpy(array, binary_data=binary)
        inputs.append(tensor)
    return inputs


def triton(spec: dict[str, Any]) -> dict[str, Any]:
    import tritonclient.http as httpclient

    model = spec["model"]
    client = httpclient.InferenceServerClient(url=spec["url"].removeprefix("http://"))
    out: dict[str, Any] = {
        "live": client.is_server_live(),
        "ready": client.is_server_ready(),
        "model_ready": client.is_model_ready(model),
        "metadata": client.get_model_metadata(model),
        "server": client.get_server_metadata(),
        "index": client.get_model_repository_index(),
    }
    # The default: binary inputs, and (no outputs named) binary_data_output for every output.
    default = client.infer(model, _triton_inputs(spec, binary=True))
    out["default"] = _labels(default.as_numpy("predict"))
    out["generated_id"] = default.get_response().get("id")
    # A request id set by the client comes back as the response's id.
    chosen = client.infer(model, _triton_inputs(spec, binary=True), request_id="triton-request-7")
    out["request_id"] = chosen.get_response().get("id")
    # Named outputs, binary by default for each (InferRequestedOutput's binary_data=True).
    named = client.infer(
        model,
        _triton_inputs(spec, binary=True),
        outputs=[
            httpclient.InferRequestedOutput("predict"),
            httpclient.InferRequestedOutput("predict_proba"),
        ],
    )
    out["named_predict"] = _labels(named.as_numpy("predict"))
    out["named_proba"] = np.asarray(named.as_numpy("predict_proba")).tolist()
    # All JSON, both ways.
    as_json = client.infer(
        model,
        _triton_inputs(spec, binary=False),
        outputs=[httpclient.InferRequestedOutput("predict", binary_data=False)],
    )
    out["json"] = _labels(as_json.as_numpy("predict"))
    # gzip-compressed request bodies.
    gzipped = client.infer(model, _triton_inputs(spec, binary=True), request_compression_algorithm="gzip")
    out["gzip"] = _labels(gzipped.as_numpy("predict"))
    if spec["matrix"] is not None:
        out["fp32"] = _labels(
            client.infer(model, _triton_inputs(spec, binary=True, float32=True)).as_numpy("predict")
        )
    client.close()
    return out


def _kserve_inputs(spec: dict[str, Any]) -> list[Any]:
    from kserve import InferInput

    if spec["matrix"] is not None:
        matrix = np.asarray(spec["matrix"], dtype=np.float64)
        tensor = InferInput(name="input-0", shape=list(matrix.shape), datatype="FP64")
        tensor.set_data_from_numpy(matrix)  # binary_data=True is the SDK's default
        return [tensor]
    inputs = []
    for name, values in spec["columns"].items():
        is_text = any(isinstance(v, str) for v in values)
        tensor = InferInput(name=name, shape=[len(values)], datatype="BYTES" if is_text else "FP64")
        tensor.set_data_from_numpy(np.asarray(values, dtype=object if is_text else np.float64))
        inputs.append(tensor)
    return inputs


async def kserve(spec: dict[str, Any]) -> dict[str, Any]:
    from kserve import InferenceRESTClient, InferRequest, RESTConfig

    url, model = spec["url"], spec["model"]
    out: dict[str, Any] = {}
    v2 = InferenceRESTClient(RESTConfig(protocol="v2"))
    out["v2_live"] = await v2.is_server_live(url)
    out["v2_ready"] = await v2.is_server_ready(url)
    out["v2_model_ready"] = await v2.is_model_ready(url, model)
    response = await v2.infer(
        url, InferRequest(model_name=model, infer_inputs=_kserve_inputs(spec)), model_name=model
    )
    out["v2"] = _labels(response.outputs[0].as_numpy())
    out["v2_model_name"] = response.model_name
    chosen = await v2.infer(
        url,
        InferRequest(model_name=model, infer_inputs=_kserve_inputs(spec), request_id="kserve-request-7"),
        model_name=model,
    )
    out["v2_request_id"] = chosen.id
    binary_out = await v2.infer(
        url,
        InferRequest(
            model_name=model, infer_inputs=_kserve_inputs(spec), parameters={"binary_data_output": True}
        ),
        model_name=model,
    )
    out["v2_binary_output"] = _labels(binary_out.outputs[0].as_numpy())
    await v2.close()
    v1 = InferenceRESTClient(RESTConfig(protocol="v1"))
    out["v1_live"] = await v1.is_server_live(url)
    out["v1_model_ready"] = await v1.is_model_ready(url, model)
    rows = spec["matrix"] or [
        dict(zip(spec["columns"], r, strict=True)) for r in zip(*spec["columns"].values(), strict=True)
    ]
    out["v1"] = (await v1.infer(url, {"instances": rows}, model_name=model))["predictions"]
    await v1.close()
    return out


def main() -> None:
    results = [{"triton": triton(spec), "kserve": asyncio.run(kserve(spec))} for spec in json.load(sys.stdin)]
    json.dump(results, sys.stdout, default=str)


if __name__ == "__main__":
    main()
