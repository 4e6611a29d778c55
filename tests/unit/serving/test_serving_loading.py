"""Loading: integrity is checked before anything is deserialised, and `gyre serve` refuses with a reason."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import fsspec
import pytest
from serving_helpers import Trained, flip_byte

from gyre.cli import main
from gyre.serving.model import ModelLoadError, load_served_model


def test_serve_exits_non_zero_with_the_reason(
    trained: dict[str, Trained], copy_model: Callable[[Path], Path], capsys: pytest.CaptureFixture[str]
) -> None:
    directory = copy_model(trained["iris"].directory)
    flip_byte(directory / "model.skops")
    code = main(["serve", "--model-dir", str(directory), "--port", "0"])
    assert code != 0
    err = capsys.readouterr().err
    assert "sha256" in err and "refusing" in err


def test_missing_directory_and_manifest(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--model-dir", str(tmp_path / "nowhere")]) != 0
    assert "does not exist" in capsys.readouterr().err
    with pytest.raises(ModelLoadError, match="manifest"):
        load_served_model(str(tmp_path))


def test_onnx_forced_without_a_verified_export(trained: dict[str, Trained]) -> None:
    with pytest.raises(ModelLoadError, match="onnx"):
        load_served_model(str(trained["iris-sklearn"].directory), inference="onnx")


def test_inference_path_selection(trained: dict[str, Trained]) -> None:
    assert load_served_model(str(trained["iris"].directory)).inference_path == "onnx"
    assert load_served_model(str(trained["iris"].directory), inference="sklearn").inference_path == "sklearn"
    assert load_served_model(str(trained["iris-sklearn"].directory)).inference_path == "sklearn"


def test_remote_url_is_downloaded_to_the_cache_and_verified(
    trained: dict[str, Trained], tmp_path: Path
) -> None:
    fs = fsspec.filesystem("memory")
    source = trained["iris"].directory
    for file in source.iterdir():
        fs.pipe(f"/models/iris/{file.name}", file.read_bytes())
    model = load_served_model("memory://models/iris", cache_dir=tmp_path / "cache")
    assert model.directory.is_relative_to(tmp_path / "cache")
    assert model.manifest.name == "iris" and model.inference_path == "onnx"

    manifest = json.loads((source / "manifest.json").read_text())
    manifest["artifact"]["sha256"] = "0" * 64
    fs.pipe("/models/bad/manifest.json", json.dumps(manifest).encode())
    fs.pipe("/models/bad/model.skops", (source / "model.skops").read_bytes())
    with pytest.raises(ModelLoadError, match="sha256"):
        load_served_model("memory://models/bad", cache_dir=tmp_path / "cache")
    with pytest.raises(ModelLoadError, match="download"):
        load_served_model("memory://models/absent", cache_dir=tmp_path / "cache")


def test_pvc_url_is_read_in_place_from_the_mount(
    trained: dict[str, Trained], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    source = trained["iris"].directory
    monkeypatch.setenv("GYRE_PVC_MOUNT", str(source.parent))
    model = load_served_model(f"pvc://gyre-artifacts/{source.name}", cache_dir=tmp_path / "cache")
    assert model.directory == source
    assert not (tmp_path / "cache").exists()  # nothing downloaded


def test_pinned_sha256_and_version(trained: dict[str, Trained], capsys: pytest.CaptureFixture[str]) -> None:
    directory = str(trained["iris"].directory)
    digest = hashlib.sha256((trained["iris"].directory / "manifest.json").read_bytes()).hexdigest()
    assert load_served_model(directory).sha256 == digest
    pinned = load_served_model(directory, expect_sha256=digest, version="run-7")
    assert pinned.version == "run-7"
    assert load_served_model(directory, expect_sha256=f"sha256:{digest}").version == digest[:12]
    with pytest.raises(ModelLoadError, match="did not approve"):
        load_served_model(directory, expect_sha256="f" * 64)
    assert main(["serve", "--model-dir", directory, "--expect-sha256", "f" * 64]) != 0
    assert "did not approve" in capsys.readouterr().err


def test_a_pin_of_model_skops_alone_is_refused_and_explained(trained: dict[str, Trained]) -> None:
    # The digest TrainingRuns recorded before the manifest was pinned; it pins nothing the server reads first.
    directory = str(trained["iris"].directory)
    old_pin = load_served_model(directory).manifest.artifact.sha256
    with pytest.raises(ModelLoadError, match="retrain or re-import"):
        load_served_model(directory, expect_sha256=old_pin)
