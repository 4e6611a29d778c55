#!/usr/bin/env python
"""Serving benchmark: `gyre serve` against MLServer and KServe's Python model server, same model, same machine.

What runs (all on loopback, one worker each):
- gyre: `gyre serve` on the model directory written by Gyre's trainer (skops + verified ONNX); v2 and v1 requests,
  ONNX path (default) and the forced scikit-learn path.
- gyre-imported: `gyre serve` on the peers' joblib pipeline brought in with `gyre model import --from-joblib` (its
  ONNX twin verified on rows generated from the forest's splits); default path and the forced scikit-learn path.
- MLServer (mlserver + mlserver-sklearn) with the same fitted forest saved with joblib: in-process inference
  (parallel_workers=0), without and with adaptive batching.
- Boosted models (only when one of their labels is named in --only): gyre-xgboost-v2 / gyre-lightgbm-v2
  serve a 100-round XGBClassifier / LGBMClassifier that Gyre's trainer fitted on iris (its verified ONNX
  twin, the default path); mlserver-xgboost / mlserver-lightgbm (and -adaptive) serve that model's native
  file (XGBoost UBJSON, LightGBM text) with MLServer's own runtimes, mlserver-xgboost and mlserver-lightgbm.
- KServe: kserve.ModelServer with a kserve.Model that predicts with the joblib model, v1 protocol.
- echo: a bare aiohttp server (web.Application) that parses the JSON body with orjson and returns a fixed reply:
  the HTTP ceiling; echo-lowlevel: the same on aiohttp's low-level server, which is what `gyre serve` runs on.

The load generator is `wrk` (closed loop: C connections each with one request in flight, fixed duration) with a Lua
script POSTing one body. Server processes are pinned to CPU 0 and wrk to CPU 1 with taskset, so they do not fight
over a core. Peers live in their own venvs under ${GYRE_CACHE:-~/.cache/gyre}/bench, created on first run (and
again when PEERS changes).

Each cell also records the server's CPU share (its CPU seconds per wall second): a server saturating its one
CPU reads about 1.0 when it has the CPU to itself. The header records the load average and the kernel's CPU
pressure. On a machine shared with other sessions, read both: with the scheduler's autogroup on (Debian's
default), `nice` orders tasks only inside one session, so other sessions' niced work still takes an equal
share of the CPU from every server, and throughput falls with that share (docs/benchmarks.md, "Serving",
2026-12-02 12:01).

Usage: .venv/bin/python benchmarks/serving/run.py [--duration 3] [--repeat 2] [--only gyre-v2,mlserver,echo]
       ... --only gyre-xgboost-v2,mlserver-xgboost,gyre-lightgbm-v2,mlserver-lightgbm --rows 1
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("GYRE_CACHE", Path.home() / ".cache" / "gyre")) / "bench"
SERVER_CPU = os.environ.get("GYRE_BENCH_SERVER_CPU", "0")
CLIENT_CPU = os.environ.get("GYRE_BENCH_CLIENT_CPU", "1")
SKLEARN_VERSION = "1.9.1"  # the peers must unpickle the very same estimator
XGBOOST_VERSION = "3.2.0"  # the peers load the native model files Gyre's venv writes
LIGHTGBM_VERSION = "4.7.0"
PEERS = {
    "mlserver": [
        "mlserver==1.7.1",
        "mlserver-sklearn==1.7.1",
        "mlserver-xgboost==1.7.1",
        "mlserver-lightgbm==1.7.1",
        f"scikit-learn=={SKLEARN_VERSION}",
        "joblib",
        f"xgboost=={XGBOOST_VERSION}",
        f"lightgbm=={LIGHTGBM_VERSION}",
    ],
    "kserve": ["kserve==0.21.0", f"scikit-learn=={SKLEARN_VERSION}", "joblib"],
}
FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


# -- the model ---------------------------------------------------------------------------------------------------


@dataclass
class BenchModel:
    gyre_dir: Path
    joblib_path: Path
    imported_dir: Path
    """The joblib pipeline the peers serve, brought in with `gyre model import` (no data: generated rows)."""
    rows: np.ndarray  # query rows (float64, feature order)
    expected: np.ndarray  # sklearn's labels for `rows`
    pipeline: Any
    numpy_pipeline: Any


def _write_model_dir(result: Any, directory: Path) -> None:
    """Gyre's model directory via the trainer's artifact writer (skops + verified ONNX + manifest)."""
    from gyre.training.artifact import write_model_dir

    manifest = write_model_dir(directory, result, name="iris", dataset=None)
    if manifest.onnx.status != "verified":
        raise RuntimeError(f"the benchmark model has no verified ONNX export: {manifest.onnx.reason}")


def build_model(work: Path) -> BenchModel:
    """A 100-tree random forest on iris through Gyre's trainer; the peers get the same fitted objects."""
    import joblib
    import pandas as pd
    from sklearn.datasets import load_iris
    from sklearn.pipeline import Pipeline

    from gyre.training.trainer import TrainOptions, train_model

    frame = load_iris(as_frame=True).frame
    frame.columns = [*FEATURES, "target"]
    result = train_model(
        frame, TrainOptions(target="target", estimator="RandomForestClassifier", params={"n_estimators": 100})
    )
    gyre_dir = work / "gyre-model"
    _write_model_dir(result, gyre_dir)
    # The trainer's pipeline selects columns by name (a DataFrame in); the peers are sent plain arrays, so they get
    # the same fitted imputer, scaler and forest chained for arrays. Predictions are checked identical below.
    ct = result.pipeline.named_steps["preprocess"]
    numeric = ct.named_transformers_["numeric"]
    numpy_pipeline = copy.deepcopy(
        Pipeline([*numeric.steps, ("model", result.pipeline.named_steps["model"])])
    )
    for step in numpy_pipeline.steps[:-1]:
        with contextlib.suppress(AttributeError):
            del step[1].feature_names_in_
    joblib_path = work / "model.joblib"
    joblib.dump(numpy_pipeline, joblib_path)
    rows = frame[FEATURES].to_numpy(dtype=np.float64)
    expected = result.pipeline.predict(pd.DataFrame(rows, columns=FEATURES))
    assert (numpy_pipeline.predict(rows) == expected).all(), "array pipeline disagrees with the trained one"
    imported_dir = work / "imported-model"
    imported = subprocess.run(
        [
            str(ROOT / ".venv" / "bin" / "python"), "-m", "gyre.cli", "model", "import", "--from-joblib",
            str(joblib_path), "--trust-pickle", "--name", "iris", "--feature-names", ",".join(FEATURES),
            "--out", str(imported_dir),
        ],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    print(imported.stdout.strip(), flush=True)
    if json.loads((imported_dir / "manifest.json").read_text())["onnx"]["status"] != "verified":
        raise RuntimeError(f"the imported benchmark model has no verified ONNX twin: {imported.stdout}")
    return BenchModel(gyre_dir, joblib_path, imported_dir, rows, expected, result.pipeline, numpy_pipeline)


@dataclass
class BoostedModel:
    """An XGBoost or LightGBM model trained by Gyre: its model directory (ONNX twin) and native file."""

    kind: str  # xgboost | lightgbm
    gyre_dir: Path
    native_path: Path
    expected: np.ndarray  # the Gyre pipeline's labels for BenchModel.rows


BOOSTED = {"xgboost": "XGBClassifier", "lightgbm": "LGBMClassifier"}


def build_boosted(work: Path, kind: str, rows: np.ndarray) -> BoostedModel:
    """A 100-round XGBoost or LightGBM classifier on iris from Gyre's trainer, written with its native file.

    Trained with n_jobs=1: LightGBM's text file records the training thread count (`num_threads`), a Booster
    loaded from it keeps that setting, and more than one thread on the one CPU each server is pinned to can
    only contend. Gyre's ONNX path ignores it. The preprocessing of a boosted model is
    a median imputer only (gyre.training.preprocess), which changes no complete row, so the peers are sent the
    same raw rows."""
    import pandas as pd
    from sklearn.datasets import load_iris

    from gyre.training.trainer import TrainOptions, train_model

    frame = load_iris(as_frame=True).frame
    frame.columns = [*FEATURES, "target"]
    options = TrainOptions(
        target="target", estimator=BOOSTED[kind], params={"n_estimators": 100, "n_jobs": 1}, importances=False
    )
    result = train_model(frame, options)
    directory = work / f"gyre-{kind}"
    _write_model_dir(result, directory)
    manifest = json.loads((directory / "manifest.json").read_text())
    expected = result.pipeline.predict(pd.DataFrame(rows, columns=FEATURES))
    return BoostedModel(kind, directory, directory / manifest["native"]["path"], np.asarray(expected))


BASE_MODEL = """
import sys
from sklearn.datasets import load_iris
from gyre.training.artifact import write_model_dir
from gyre.training.trainer import TrainOptions, train_model

frame = load_iris(as_frame=True).frame
frame.columns = [*sys.argv[2].split(","), "target"]
options = TrainOptions(target="target", estimator="RandomForestClassifier", params={"n_estimators": 100})
write_model_dir(sys.argv[1], train_model(frame, options), name="iris", dataset=None)
"""


def build_base_model(tree: Path, work: Path) -> Path:
    """The benchmark's forest written by another source tree's trainer, so that tree's `gyre serve` reads a
    manifest of its own version (fields added since are refused by an older reader)."""
    directory = work / "gyre-model-base"
    subprocess.run(
        [str(ROOT / ".venv" / "bin" / "python"), "-c", BASE_MODEL, str(directory), ",".join(FEATURES)],
        env={**os.environ, "PYTHONPATH": str(tree / "operator")},
        check=True,
        capture_output=True,
    )
    return directory


# -- peers' venvs --------------------------------------------------------------------------------------------------


def ensure_venv(name: str) -> Path:
    """`CACHE/<name>/bin/python`, created with uv (or python -m venv + pip) on first use."""
    venv = CACHE / name
    python = venv / "bin" / "python"
    marker = venv / ".gyre-bench-ready"
    wanted = "\n".join(PEERS[name])
    if marker.exists() and marker.read_text() == wanted:
        return python
    if venv.exists():
        shutil.rmtree(venv)  # built for another requirement list
    CACHE.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "UV_NATIVE_TLS": "1", "PIP_CERT": "/etc/ssl/certs/ca-certificates.crt"}
    print(f"creating the {name} venv in {venv} (first run only)...", flush=True)
    uv = shutil.which("uv")
    if uv:
        subprocess.run(
            [uv, "venv", "-q", "--allow-existing", "-p", "python3.11", str(venv)], check=True, env=env
        )
        subprocess.run([uv, "pip", "install", "-q", "-p", str(python), *PEERS[name]], check=True, env=env)
    else:
        subprocess.run(["python3", "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *PEERS[name]], check=True, env=env)
    marker.write_text(wanted)
    return python


# -- servers -------------------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str, timeout: float = 2.0) -> int:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except (urllib.error.URLError, OSError):
        return 0


def post_json(url: str, body: bytes, timeout: float = 10.0) -> Any:
    request = urllib.request.Request(
        url, data=body, headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())


@dataclass
class Server:
    name: str
    cmd: list[str]
    ready_url: str
    base: str
    cwd: Path | None = None
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None
    log: Path | None = None

    def start(self, timeout: float = 120.0) -> None:
        self.log = Path(tempfile.mkstemp(prefix=f"bench-{self.name}-", suffix=".log")[1])
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                ["taskset", "-c", SERVER_CPU, *self.cmd],
                cwd=self.cwd,
                env={**os.environ, **self.env},
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited: {self.log.read_text()[-2000:]}")
            if _get(self.ready_url) == 200:
                return
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} not ready after {timeout}s: {self.log.read_text()[-2000:]}")

    def cpu_seconds(self) -> float:
        """User + system CPU time of every process in the server's session (workers included)."""
        if self.proc is None:
            return 0.0
        total = 0
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError, ValueError, IndexError):
                fields = stat.read_text().rsplit(")", 1)[1].split()
                if int(fields[3]) == self.proc.pid:  # process group == the session leader we started
                    total += int(fields[11]) + int(fields[12])
        return total / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def gyre_server(
    model: BenchModel,
    *,
    inference: str = "auto",
    batching: bool = True,
    extra: list[str] | None = None,
    imported: bool = False,
    tree: Path | None = None,
    directory: Path | None = None,
) -> Server:
    """`gyre serve` of this checkout, or of the source tree `tree` (same venv: a baseline of the same code base)."""
    port = free_port()
    python = ROOT / ".venv" / "bin" / "python"
    directory = directory or (model.imported_dir if imported else model.gyre_dir)
    cmd = [
        str(python), "-m", "gyre.cli", "serve", "--model-dir", str(directory), "--host", "127.0.0.1",
        "--port", str(port), "--inference", inference, "--batching" if batching else "--no-batching",
        *(extra or []),
    ]  # fmt: skip
    env = {"GYRE_LOG_STORE": "", "GYRE_ARTIFACT_STORE": ""}
    if tree is not None:
        env["PYTHONPATH"] = str(tree / "operator")  # ahead of the venv's editable install of this checkout
    base = f"http://127.0.0.1:{port}"
    return Server("gyre-base" if tree else "gyre", cmd, f"{base}/v2/health/ready", base, env=env)


MLSERVER_RUNTIMES = {
    # runtime: (implementation, the file name the runtime looks for)
    "sklearn": ("mlserver_sklearn.SKLearnModel", "model.joblib"),
    "xgboost": ("mlserver_xgboost.XGBoostModel", "model.ubj"),
    # LightGBM's text format, under the name the runtime looks for
    "lightgbm": ("mlserver_lightgbm.LightGBMModel", "model.bst"),
}


def mlserver_server(model_file: Path, work: Path, *, adaptive: bool, runtime: str = "sklearn") -> Server:
    """MLServer's `runtime` serving `model_file` (joblib pipeline, XGBoost UBJSON, LightGBM text)."""
    python = ensure_venv("mlserver")
    port, grpc, metrics = free_port(), free_port(), free_port()
    name = "mlserver" + ("" if runtime == "sklearn" else f"-{runtime}") + ("-adaptive" if adaptive else "")
    implementation, filename = MLSERVER_RUNTIMES[runtime]
    folder = work / name
    folder.mkdir(exist_ok=True)
    shutil.copy(model_file, folder / filename)
    settings = {
        "host": "127.0.0.1",
        "http_port": port,
        "grpc_port": grpc,
        "metrics_port": metrics,
        "parallel_workers": 0,  # inference in the server process: fastest for a small model
        "debug": False,
    }
    model_settings: dict[str, Any] = {
        "name": "iris",
        "implementation": implementation,
        "parameters": {"uri": f"./{filename}", "version": "v1"},
    }
    if adaptive:
        model_settings["max_batch_size"] = 32
        model_settings["max_batch_time"] = 0.002
    (folder / "settings.json").write_text(json.dumps(settings))
    (folder / "model-settings.json").write_text(json.dumps(model_settings))
    base = f"http://127.0.0.1:{port}"
    cmd = [str(python.parent / "mlserver"), "start", str(folder)]
    return Server(name, cmd, f"{base}/v2/models/iris/ready", base, env={"MLSERVER_LOGGING_LEVEL": "WARNING"})


KSERVE_LAUNCHER = """
import logging, sys
import joblib, numpy as np, uvicorn
import kserve

_config = uvicorn.Config.__init__
def _loopback(self, *args, **kwargs):  # the benchmark only listens on loopback
    kwargs["host"] = "127.0.0.1"
    _config(self, *args, **kwargs)
uvicorn.Config.__init__ = _loopback

class Forest(kserve.Model):
    def __init__(self, name, path):
        super().__init__(name)
        self.model = joblib.load(path)
        self.ready = True

    def predict(self, payload, headers=None):
        instances = payload["instances"]
        return {"predictions": self.model.predict(np.asarray(instances)).tolist()}

if __name__ == "__main__":
    port, path = int(sys.argv[1]), sys.argv[2]
    server = kserve.ModelServer(http_port=port, workers=1, enable_grpc=False, enable_latency_logging=False)
    logging.getLogger("uvicorn.access").disabled = True
    logging.getLogger("kserve").setLevel(logging.WARNING)
    logging.getLogger("kserve.trace").setLevel(logging.WARNING)
    server.start([Forest("iris", path)])
"""


def kserve_server(model: BenchModel, work: Path) -> Server:
    python = ensure_venv("kserve")
    launcher = work / "kserve_launcher.py"
    launcher.write_text(textwrap.dedent(KSERVE_LAUNCHER))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    cmd = [str(python), str(launcher), str(port), str(model.joblib_path)]
    return Server("kserve", cmd, f"{base}/v1/models/iris", base)


ECHO = """
import sys, orjson
from aiohttp import web

REPLY = b'{"predictions":[0]}'

async def echo(request):
    orjson.loads(await request.read())
    return web.Response(body=REPLY, content_type="application/json")

async def ready(request):
    return web.Response(body=b"{}", content_type="application/json")

try:  # the same event loop `gyre serve` uses, when installed
    import uvloop
    uvloop.install()
except ImportError:
    pass

app = web.Application()
app.router.add_post("/echo", echo)
app.router.add_get("/ready", ready)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)
"""


ECHO_LOWLEVEL = """
import asyncio, sys, orjson
from aiohttp import web, web_server

REPLY = b'{"predictions":[0]}'

async def handle(request):
    if request.path == "/echo" and request.method == "POST":
        orjson.loads(await request.read())
        return web.Response(body=REPLY, content_type="application/json")
    return web.Response(body=b"{}", content_type="application/json")

async def main():
    runner = web.ServerRunner(web_server.Server(handle, access_log=None))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", int(sys.argv[1])).start()
    await asyncio.Event().wait()

try:  # the same event loop `gyre serve` uses, when installed
    import uvloop
    uvloop.install()
except ImportError:
    pass
asyncio.run(main())
"""


def echo_lowlevel_server(work: Path) -> Server:
    """The same echo on aiohttp's low-level server (no Application/router), which is what `gyre serve` uses."""
    script = work / "echo_lowlevel.py"
    script.write_text(textwrap.dedent(ECHO_LOWLEVEL))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    return Server(
        "echo-lowlevel",
        [str(ROOT / ".venv" / "bin" / "python"), str(script), str(port)],
        f"{base}/ready",
        base,
    )


def echo_server(work: Path) -> Server:
    script = work / "echo.py"
    script.write_text(textwrap.dedent(ECHO))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    return Server(
        "echo", [str(ROOT / ".venv" / "bin" / "python"), str(script), str(port)], f"{base}/ready", base
    )


# -- load generation ---------------------------------------------------------------------------------------------------

WRK_LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = io.open("{body}", "rb")
wrk.body = f:read("*a")
f:close()

function done(summary, latency, requests)
  io.write(string.format("GYRE %d %d %d %d %d %d %d %d\\n", summary.requests, summary.duration,
    summary.errors.status, summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50), latency:percentile(99), latency.mean, latency.max))
end
"""


@dataclass
class Cell:
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    cpu_us: float = 0.0
    """Server CPU time per request (all its processes): robust to the noise of a shared machine."""
    cpu_share: float = 0.0
    """Server CPU seconds per wall second during the cell. A server that saturates its one pinned CPU reads
    about 1.0 on a quiet machine; well below that at c=32 means other work took the CPU, and req/s fell with
    it."""


def run_wrk(url: str, body: bytes, connections: int, duration: float, work: Path) -> Cell:
    """One closed-loop wrk run (one thread, `connections` requests in flight)."""
    body_path = work / f"body-{abs(hash(body))}.json"
    body_path.write_bytes(body)
    script = work / f"wrk-{abs(hash(body))}.lua"
    script.write_text(WRK_LUA.replace("{body}", str(body_path)))
    cmd = [
        "taskset", "-c", CLIENT_CPU, "wrk", "-t1", f"-c{connections}", f"-d{max(1, round(duration))}s", "--timeout", "5s",
        "-s", str(script), url,
    ]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    match = re.search(r"^GYRE (\d+) (\d+) (\d+) (\d+) (\d+) (\d+) (\d+) (\d+)$", out, re.M)
    if not match:
        raise RuntimeError(f"unexpected wrk output: {out}")
    requests, duration_us, status_errors, socket_errors, p50, p99, _mean, _max = (
        int(g) for g in match.groups()
    )
    return Cell(requests / (duration_us / 1e6), p50 / 1000, p99 / 1000, status_errors + socket_errors)


# -- request bodies ----------------------------------------------------------------------------------------------------


def v2_body(rows: np.ndarray) -> bytes:
    tensor = {"name": "input-0", "shape": list(rows.shape), "datatype": "FP64", "data": rows.ravel().tolist()}
    return json.dumps({"inputs": [tensor]}).encode()


def v1_body(rows: np.ndarray) -> bytes:
    return json.dumps({"instances": rows.tolist()}).encode()


def v2_labels(reply: Any) -> list[Any]:
    return list(reply["outputs"][0]["data"])


def v2_argmax_labels(reply: Any) -> list[Any]:
    """Labels from a v2 reply carrying class probabilities ([N, K]), as LightGBM's Booster.predict returns
    them."""
    output = reply["outputs"][0]
    labels: list[Any] = np.asarray(output["data"]).reshape(output["shape"]).argmax(axis=1).tolist()
    return labels


def v1_labels(reply: Any) -> list[Any]:
    return list(reply["predictions"])


# -- the run -------------------------------------------------------------------------------------------------------------


@dataclass
class Target:
    label: str
    server: Server
    path: str
    protocol: str  # v1 | v2 | v2-proba (a v2 reply of class probabilities) | echo
    expected: np.ndarray | None = None


def in_process_limits(model: BenchModel, rows_per_request: int) -> dict[str, float]:
    """Calls/s of the model call alone, single thread: sklearn predict, and onnxruntime for the same rows; and
    calls per CPU-second of this thread (`*_cpu`), which other load on the machine disturbs less."""
    import onnxruntime as ort

    rows = model.rows[:rows_per_request]
    out: dict[str, float] = {}

    def rate(name: str, fn: Any, budget: float = 1.0) -> None:
        fn()
        n, start, cpu = 0, time.perf_counter(), time.thread_time()
        while time.perf_counter() - start < budget:
            fn()
            n += 1
        out[name] = n / (time.perf_counter() - start)
        out[f"{name}_cpu"] = n / max(time.thread_time() - cpu, 1e-9)

    rate("sklearn", lambda: model.numpy_pipeline.predict(rows))
    manifest = json.loads((model.gyre_dir / "manifest.json").read_text())
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(model.gyre_dir / manifest["onnx"]["path"]), options)
    inputs = manifest["onnx"].get("inputs") or {f: f for f in FEATURES}
    feed = {inputs[f]: rows[:, i : i + 1].astype(np.float32) for i, f in enumerate(FEATURES)}
    rate("onnx", lambda: session.run(None, feed))
    return out


def check(target: Target, model: BenchModel) -> None:
    rows = model.rows
    if target.protocol == "echo":
        return
    body = v1_body(rows) if target.protocol == "v1" else v2_body(rows)
    reply = post_json(target.server.base + target.path, body)
    decode = {"v1": v1_labels, "v2": v2_labels, "v2-proba": v2_argmax_labels}[target.protocol]
    expected = model.expected if target.expected is None else target.expected
    if decode(reply) != expected.tolist():
        raise RuntimeError(f"{target.label}: predictions differ from the trained pipeline's")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per cell")
    parser.add_argument("--only", default="", help="comma-separated target labels to run")
    parser.add_argument("--concurrency", default="1,8,32")
    parser.add_argument("--rows", default="1,64")
    parser.add_argument(
        "--repeat", type=int, default=2, help="rounds over all servers; the best run of each cell is kept"
    )
    parser.add_argument("--json", type=Path, help="also write raw results here")
    parser.add_argument(
        "--baseline",
        type=Path,
        metavar="TREE",
        help="also run gyre-base-v2/-v1: `gyre serve` from another source tree of Gyre (e.g. `git archive main` "
        "unpacked), in the same rounds, to measure what a change costs",
    )
    args = parser.parse_args(argv)
    if not shutil.which("wrk"):
        print("wrk is required: apt-get install wrk", file=sys.stderr)
        return 2
    concurrency = [int(c) for c in args.concurrency.split(",")]
    row_counts = [int(r) for r in args.rows.split(",")]
    only = {x for x in args.only.split(",") if x}
    work = Path(tempfile.mkdtemp(prefix="gyre-bench-serving-"))
    model = build_model(work)
    boosted_labels = {"xgboost": ("gyre-xgboost-v2", "mlserver-xgboost", "mlserver-xgboost-adaptive")}
    boosted_labels["lightgbm"] = ("gyre-lightgbm-v2", "mlserver-lightgbm", "mlserver-lightgbm-adaptive")
    boosted = {
        kind: build_boosted(work, kind, model.rows)
        for kind, labels in boosted_labels.items()
        if only & set(labels)  # trained only when asked for by name
    }

    # One gyre process answers both protocols; every server is started up front and the rounds interleave them,
    # so a burst of load from elsewhere on the machine hits all of them rather than one.
    gyre = gyre_server(model)
    servers: dict[str, Any] = {
        "gyre": lambda: gyre,
        "gyre-nobatch": lambda: gyre_server(model, batching=False),
        "gyre-sklearn": lambda: gyre_server(model, inference="sklearn"),
        "gyre-imported": lambda: gyre_server(model, imported=True),
        "gyre-imported-sklearn": lambda: gyre_server(model, inference="sklearn", imported=True),
        "mlserver": lambda: mlserver_server(model.joblib_path, work, adaptive=False),
        "mlserver-adaptive": lambda: mlserver_server(model.joblib_path, work, adaptive=True),
        "kserve": lambda: kserve_server(model, work),
        "echo": lambda: echo_server(work),
        "echo-lowlevel": lambda: echo_lowlevel_server(work),
        "gyre-base": lambda: gyre_server(
            model, tree=args.baseline, directory=build_base_model(args.baseline, work)
        ),
    }
    for kind, bm in boosted.items():
        servers[f"gyre-{kind}"] = lambda bm=bm: gyre_server(model, directory=bm.gyre_dir)
        for adaptive in (False, True):
            servers[f"mlserver-{kind}" + ("-adaptive" if adaptive else "")] = (
                lambda bm=bm, adaptive=adaptive: mlserver_server(
                    bm.native_path, work, adaptive=adaptive, runtime=bm.kind
                )
            )
    plan = [
        ("gyre-v2", "gyre", "/v2/models/iris/infer", "v2"),
        ("gyre-v1", "gyre", "/v1/models/iris:predict", "v1"),
        ("gyre-base-v2", "gyre-base", "/v2/models/iris/infer", "v2"),
        ("gyre-base-v1", "gyre-base", "/v1/models/iris:predict", "v1"),
        ("gyre-v2-nobatch", "gyre-nobatch", "/v2/models/iris/infer", "v2"),
        ("gyre-v2-sklearn", "gyre-sklearn", "/v2/models/iris/infer", "v2"),
        ("gyre-imported-v2", "gyre-imported", "/v2/models/iris/infer", "v2"),
        ("gyre-imported-v2-sklearn", "gyre-imported-sklearn", "/v2/models/iris/infer", "v2"),
        ("mlserver", "mlserver", "/v2/models/iris/infer", "v2"),
        ("mlserver-adaptive", "mlserver-adaptive", "/v2/models/iris/infer", "v2"),
        ("kserve", "kserve", "/v1/models/iris:predict", "v1"),
        ("echo", "echo", "/echo", "echo"),
        ("echo-lowlevel", "echo-lowlevel", "/echo", "echo"),
    ]
    model_of: dict[
        str, str
    ] = {}  # server key -> boosted kind, for the labels its answers are checked against
    for kind in boosted:  # the same v2 body; MLServer's LightGBM runtime answers class probabilities
        peer = "v2-proba" if kind == "lightgbm" else "v2"
        plan += [
            (f"gyre-{kind}-v2", f"gyre-{kind}", "/v2/models/iris/infer", "v2"),
            (f"mlserver-{kind}", f"mlserver-{kind}", "/v2/models/iris/infer", peer),
            (f"mlserver-{kind}-adaptive", f"mlserver-{kind}-adaptive", "/v2/models/iris/infer", peer),
        ]
        model_of |= {f"gyre-{kind}": kind, f"mlserver-{kind}": kind, f"mlserver-{kind}-adaptive": kind}
    plan = [p for p in plan if (not only or p[0] in only) and (args.baseline or p[1] != "gyre-base")]
    started: dict[str, Server] = {}
    results: dict[str, dict[str, Cell]] = {label: {} for label, *_ in plan}
    pressure_before = _cpu_pressure()
    try:
        for label, key, path, protocol in plan:
            if key not in started:
                started[key] = servers[key]()
                print(f"starting {key}", flush=True)
                started[key].start()
            expected = boosted[model_of[key]].expected if key in model_of else None
            check(Target(label, started[key], path, protocol, expected), model)
            if protocol != "echo":
                print(
                    f"{label}: predictions for all {len(model.rows)} rows equal the trained pipeline's",
                    flush=True,
                )
        for round_ in range(args.repeat):
            for label, key, path, protocol in plan:
                server = started[key]
                print(f"== {label} (round {round_ + 1}/{args.repeat})", flush=True)
                for n in row_counts:
                    rows = model.rows[:n]
                    body = v1_body(rows) if protocol == "v1" else v2_body(rows)
                    run_wrk(server.base + path, body, 8, 1, work)  # warm-up
                    for c in concurrency:
                        cpu_before, wall_before = server.cpu_seconds(), time.monotonic()
                        cell = run_wrk(server.base + path, body, c, args.duration, work)
                        cpu = server.cpu_seconds() - cpu_before
                        requests = cell.rps * max(1, round(args.duration))
                        cell.cpu_us = cpu / max(requests, 1) * 1e6
                        cell.cpu_share = cpu / (time.monotonic() - wall_before)
                        print(
                            f"  rows={n:<3} c={c:<3} {cell.rps:9.0f} req/s  p50 {cell.p50_ms:7.2f} ms  "
                            f"p99 {cell.p99_ms:7.2f} ms  cpu {cell.cpu_us:7.0f} us/req  "
                            f"share {cell.cpu_share:4.2f}  errors {cell.errors}",
                            flush=True,
                        )
                        best = results[label].get(f"{n}x{c}")
                        if best is None or cell.rps > best.rps:  # keep the least disturbed run
                            results[label][f"{n}x{c}"] = cell
    finally:
        for server in started.values():
            server.stop()
    pressure = f"{pressure_before} before, {_cpu_pressure()} after"
    limits = {n: in_process_limits(model, n) for n in row_counts}
    report = render(results, limits, row_counts, concurrency, args.duration, args.repeat, pressure)
    print(report)
    if args.json:
        args.json.write_text(
            json.dumps({k: {c: vars(v) for c, v in cells.items()} for k, cells in results.items()}, indent=1)
        )
    shutil.rmtree(work, ignore_errors=True)
    return 0


def _cpu_pressure() -> str:
    """The kernel's CPU pressure (share of time some runnable task waited for a CPU), avg10/avg60 in
    percent."""
    try:
        fields = dict(f.split("=") for f in Path("/proc/pressure/cpu").read_text().split()[1:3])
        return f"{fields['avg10']}/{fields['avg60']}%"
    except (OSError, ValueError, KeyError):
        return "unknown"


def _autogroup() -> str:
    """Whether the scheduler groups tasks by session (then `nice` does not lower one session's share against
    another: each session's group gets an equal share of the CPUs)."""
    try:
        return "on" if Path("/proc/sys/kernel/sched_autogroup_enabled").read_text().strip() == "1" else "off"
    except OSError:
        return "unknown"


def _loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = 0.0
    with contextlib.suppress(OSError, ValueError):
        mem = int(Path("/proc/meminfo").read_text().split()[1]) / 1024 / 1024
    return f"{os.cpu_count()} CPUs ({cpu}), {mem:.0f} GiB RAM, Python {platform.python_version()}"


def render(
    results: dict[str, dict[str, Cell]],
    limits: dict[int, dict[str, float]],
    row_counts: list[int],
    concurrency: list[int],
    duration: float,
    repeat: int,
    pressure: str = "unknown",
) -> str:
    """Markdown tables: absolute numbers, then Gyre's ratios to each peer."""
    lines = [
        f"Run {datetime.now(tz=UTC).strftime('%Y-%m-%d %H:%M UTC')} on {machine()}; load average {_loadavg()}; "
        f"CPU pressure (some, avg10/avg60) {pressure}; scheduler autogroup {_autogroup()}; "
        f"wrk, {duration:g} s per cell, best of {repeat} interleaved rounds; server on CPU {SERVER_CPU}, "
        f"wrk on CPU {CLIENT_CPU}.",
        "",
        "| server | rows | conc | req/s | p50 ms | p99 ms | server CPU µs/req | server CPU share | errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for label, cells in results.items():
        for key, cell in cells.items():
            n, c = key.split("x")
            lines.append(
                f"| {label} | {n} | {c} | {cell.rps:,.0f} | {cell.p50_ms:.2f} | {cell.p99_ms:.2f} | {cell.cpu_us:,.0f} "
                f"| {cell.cpu_share:.2f} | {cell.errors} |"
            )
    lines += ["", "In-process model call limit (one thread, same rows), calls/s (calls per CPU-second):", ""]
    for rows, lim in limits.items():
        lines.append(
            f"- {rows} row(s): scikit-learn predict {lim['sklearn']:,.0f}/s ({lim['sklearn_cpu']:,.0f}), "
            f"onnxruntime {lim['onnx']:,.0f}/s ({lim['onnx_cpu']:,.0f})"
        )
    pairs = [
        ("gyre-v2", "gyre-base-v2"),
        ("gyre-v1", "gyre-base-v1"),
        ("gyre-v2", "mlserver"),
        ("gyre-v2", "mlserver-adaptive"),
        ("gyre-v1", "kserve"),
        ("gyre-v2-sklearn", "mlserver-adaptive"),
        ("gyre-imported-v2", "mlserver-adaptive"),
        ("gyre-imported-v2", "mlserver"),
        ("gyre-imported-v2-sklearn", "mlserver-adaptive"),
        ("gyre-imported-v2-sklearn", "mlserver"),
        ("gyre-xgboost-v2", "mlserver-xgboost"),
        ("gyre-xgboost-v2", "mlserver-xgboost-adaptive"),
        ("gyre-lightgbm-v2", "mlserver-lightgbm"),
        ("gyre-lightgbm-v2", "mlserver-lightgbm-adaptive"),
        ("gyre-v2", "echo"),
        ("gyre-v1", "echo"),
        ("gyre-v2", "echo-lowlevel"),
        ("gyre-v1", "echo-lowlevel"),
    ]
    lines += [
        "",
        "| ratio | rows | conc | throughput | p50 | p99 | CPU/req |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for ours, peer in pairs:
        if ours not in results or peer not in results:
            continue
        for key, cell in results[ours].items():
            other = results[peer].get(key)
            if other is None or other.rps == 0:
                continue
            n, c = key.split("x")
            lines.append(
                f"| {ours} / {peer} | {n} | {c} | {cell.rps / other.rps:.2f}x | "
                f"{cell.p50_ms / max(other.p50_ms, 1e-9):.2f} | {cell.p99_ms / max(other.p99_ms, 1e-9):.2f} | "
                f"{cell.cpu_us / max(other.cpu_us, 1e-9):.2f} |"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
