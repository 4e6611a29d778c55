"""One pin for everything served: the digest is manifest.json's sha256, and the manifest pins every other file."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from serving_helpers import Trained, flip_byte, serve

from gyre.api import env
from gyre.cli import main
from gyre.serving.model import ModelLoadError, load_served_model


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _edit_manifest(directory: Path, edit: Callable[[dict[str, Any]], None]) -> None:
    manifest = json.loads((directory / "manifest.json").read_text())
    edit(manifest)
    (directory / "manifest.json").write_text(json.dumps(manifest, indent=2))


def _swap_onnx_and_edit_manifest(directory: Path) -> None:
    flip_byte(directory / "model.onnx")
    digest = _sha256(directory / "model.onnx")
    _edit_manifest(directory, lambda m: m["onnx"].update(sha256=digest))


def _swap_skops_and_edit_manifest(directory: Path) -> None:
    flip_byte(directory / "model.skops")
    digest = _sha256(directory / "model.skops")
    _edit_manifest(directory, lambda m: m["artifact"].update(sha256=digest))


def _reverse_feature_order(directory: Path) -> None:
    _edit_manifest(directory, lambda m: m["features"].reverse())


def _reformat_manifest(directory: Path) -> None:
    # Same JSON, other bytes: the pin is on bytes, not on a parsed meaning.
    _edit_manifest(directory, lambda m: None)


# What an attacker with write access to the model directory tries; each is refused under the approved pin.
PINNED_TAMPERING: list[tuple[str, Callable[[Path], None], str]] = [
    ("a tampered ONNX file with the manifest edited to match", _swap_onnx_and_edit_manifest, "manifest.json"),
    (
        "a tampered skops file with the manifest edited to match",
        _swap_skops_and_edit_manifest,
        "manifest.json",
    ),
    ("the manifest's feature order edited", _reverse_feature_order, "manifest.json"),
    ("the manifest rewritten with the same content", _reformat_manifest, "manifest.json"),
    ("a changed skops file", lambda d: flip_byte(d / "model.skops"), "model.skops"),
    ("a changed ONNX file", lambda d: flip_byte(d / "model.onnx"), "model.onnx"),
]


@pytest.mark.parametrize(
    ("tampering", "file"), [(t, f) for _, t, f in PINNED_TAMPERING], ids=[c for c, _, _ in PINNED_TAMPERING]
)
@pytest.mark.parametrize("inference", ["auto", "sklearn"])
def test_any_change_to_any_file_is_refused_under_the_pin_with_a_one_line_reason(
    trained: dict[str, Trained],
    copy_model: Callable[[Path], Path],
    tampering: Callable[[Path], None],
    file: str,
    inference: str,
) -> None:
    directory = copy_model(trained["iris"].directory)
    pin = _sha256(directory / "manifest.json")
    recorded = json.loads((directory / "manifest.json").read_text())
    tampering(directory)
    with pytest.raises(ModelLoadError) as info:
        load_served_model(str(directory), expect_sha256=pin, inference=inference)  # type: ignore[arg-type]
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"{file} in {directory} has sha256")
    # Both digests: what the file is now, and what it should be (the pin, or the manifest's record).
    expected = {
        "manifest.json": pin,
        "model.skops": recorded["artifact"]["sha256"],
        "model.onnx": recorded["onnx"]["sha256"],
    }[file]
    assert _sha256(directory / file) in message and expected in message


@pytest.mark.parametrize("file", ["model.skops", "model.onnx"])
def test_an_unpinned_load_still_checks_every_file_against_the_manifest(
    trained: dict[str, Trained], copy_model: Callable[[Path], Path], file: str
) -> None:
    directory = copy_model(trained["iris"].directory)
    flip_byte(directory / file)
    with pytest.raises(
        ModelLoadError, match=rf"^{file.replace('.', '[.]')} in .* has sha256 [0-9a-f]{{64}}, but"
    ):
        load_served_model(str(directory))


def test_the_pin_is_the_sha256_of_the_manifest_bytes_and_the_default_version(
    trained: dict[str, Trained],
) -> None:
    directory = trained["iris"].directory
    pin = _sha256(directory / "manifest.json")
    model = load_served_model(str(directory), expect_sha256=pin)
    assert model.sha256 == pin == model.manifest.sha256() and model.version == pin[:12]
    assert model.inference_path == "onnx"


def test_the_onnx_bytes_are_read_once_and_handed_to_onnxruntime(
    trained: dict[str, Trained], monkeypatch: pytest.MonkeyPatch
) -> None:
    import onnxruntime

    directory = trained["iris"].directory
    pin = _sha256(directory / "manifest.json")
    reads: list[str] = []
    sessions: list[Any] = []
    read_bytes = Path.read_bytes
    session = onnxruntime.InferenceSession

    def counting_read(path: Path) -> bytes:
        reads.append(path.name)
        return read_bytes(path)

    def recording_session(model: Any, *args: Any, **kwargs: Any) -> Any:
        sessions.append(model)
        return session(model, *args, **kwargs)

    monkeypatch.setattr(Path, "read_bytes", counting_read)
    monkeypatch.setattr(onnxruntime, "InferenceSession", recording_session)
    model = load_served_model(str(directory), expect_sha256=pin)
    assert model.inference_path == "onnx"
    assert sorted(reads) == ["manifest.json", "model.onnx", "model.skops"]
    assert sessions == [(directory / "model.onnx").read_bytes()]  # bytes, not a path onnxruntime would reopen


def test_gyre_serve_refuses_to_start_with_the_reason_in_one_line_and_in_the_termination_message(
    trained: dict[str, Trained],
    copy_model: Callable[[Path], Path],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    directory = copy_model(trained["iris"].directory)
    pin = _sha256(directory / "manifest.json")
    _reverse_feature_order(directory)
    # How the ModelDeployment builder configures the server: the pin comes from the environment.
    monkeypatch.setenv(env.MODEL_SHA256, pin)
    monkeypatch.setenv(env.TERMINATION_LOG, str(tmp_path / "termination-log"))
    assert main(["serve", "--model-dir", str(directory), "--port", "0"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    line = err.strip()
    assert line.startswith(f"gyre serve: cannot serve {directory}: manifest.json in {directory} has sha256 ")
    assert _sha256(directory / "manifest.json") in line and pin in line and "did not approve" in line
    assert (tmp_path / "termination-log").read_text() == line


async def test_the_approved_model_is_served_under_its_pin(trained: dict[str, Trained]) -> None:
    iris = trained["iris"]
    model = load_served_model(str(iris.directory), expect_sha256=_sha256(iris.directory / "manifest.json"))
    rows = iris.rows.head(5)
    async with serve(model) as (client, _):
        response = await client.post("/v1/models/iris:predict", json={"instances": rows.to_dict("records")})
        assert response.status == 200
        predictions = (await response.json())["predictions"]
    assert np.array_equal(predictions, iris.result.pipeline.predict(rows))
