"""End-to-end `edgekit export` through the CLI on a tiny model, plus one test per bad input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from edgekit.cli import app
from edgekit.manifest import load_manifest
from tests.conftest import TINY_ARCH, TINY_SHAPE

runner = CliRunner()
ALL = ["--fp16", "--int8", "--int8-dynamic", "--int8-io", "--onnx"]


def invoke(*args: Any) -> Any:
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory, image_dir: Path) -> tuple[Path, Any]:
    out = tmp_path_factory.mktemp("export")
    result = invoke(
        "export", "--arch", TINY_ARCH, "--arch-kwargs", '{"width": 64}', "--input-shape", TINY_SHAPE,
        "--calib", image_dir, "--calib-samples", 24, "--parity-samples", 12, *ALL, "-o", out, "--name", "tiny",
    )  # fmt: skip
    return out, result


def test_export_writes_every_variant(exported: tuple[Path, Any]) -> None:
    out, result = exported
    assert result.exit_code == 0, result.output
    m = load_manifest(out)
    names = [v.name for v in m.variants]
    assert names == [
        "tflite_fp32", "tflite_fp16", "tflite_int8", "tflite_int8_io",
        "tflite_int8_dynamic", "onnx_fp32", "onnx_fp16", "onnx_int8",
    ]  # fmt: skip
    for v in m.variants:
        assert v.status == "ok", v.error
        assert v.file is not None
        path = out / v.file
        assert path.stat().st_size == v.size_bytes
        assert v.parity is not None and v.parity["samples"] == 12
    assert m.calibration is not None and m.calibration["samples"] == 24
    assert sum(m.calibration["class_balance"].values()) == 24
    assert m.parity_data["source"].startswith("held out")
    assert "tflite_int8_dynamic" in result.output and "manifest" in result.output


def test_float_variants_match_torch_closely(exported: tuple[Path, Any]) -> None:
    m = load_manifest(exported[0])
    for name in ("tflite_fp32", "onnx_fp32"):
        p = m.variant(name).parity
        assert p is not None and p["passed"] and p["max_abs_diff"] < 1e-4 and p["flips"] == 0


def test_int8_variants_are_smaller_and_record_quantization(exported: tuple[Path, Any]) -> None:
    m = load_manifest(exported[0])
    fp32 = m.variant("tflite_fp32").size_bytes
    assert fp32
    for name in ("tflite_int8", "tflite_int8_dynamic", "tflite_fp16"):
        size = m.variant(name).size_bytes
        assert size is not None and size < fp32
    int8_io = m.variant("tflite_int8_io")
    assert int8_io.input["dtype"] == "int8" and "scale" in int8_io.input["quantization"]
    assert m.variant("tflite_int8").input["dtype"] == "float32"
    delegation = m.variant("tflite_int8").delegation
    assert delegation is not None and delegation["partitions"] >= 1


def test_parity_files_and_reference(exported: tuple[Path, Any]) -> None:
    out = exported[0]
    m = load_manifest(out)
    x = np.load(out / m.parity_data["inputs_file"])
    ref = np.load(out / m.parity_data["reference_file"])
    assert x.shape == (12, 3, 32, 32) and ref.shape == (12, 1)


def test_strict_turns_parity_failure_into_exit_1(tmp_path: Path, image_dir: Path) -> None:
    result = invoke(
        "export", "--arch", TINY_ARCH, "--input-shape", TINY_SHAPE, "--calib", image_dir,
        "--calib-samples", 8, "--parity-samples", 4, "--tol", "fp32:min_sqnr_db=1000", "--strict", "-o", tmp_path,
    )  # fmt: skip
    assert result.exit_code == 1, result.output
    assert "--strict" in result.output
    assert (tmp_path / "manifest.json").exists()  # the data is kept even when strict fails


def test_json_prints_the_manifest(tmp_path: Path, tiny_pt2: Path) -> None:
    result = invoke("export", tiny_pt2, "--json", "--parity-samples", 3, "-o", tmp_path)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["schema"] == "edgekit.manifest" and data["input"]["shape"] == [1, 3, 32, 32]
    assert data["parity_data"]["source"].startswith("random")


def test_nhwc_layout(tmp_path: Path, tiny_pt2: Path, image_dir: Path) -> None:
    result = invoke("export", tiny_pt2, "--layout", "nhwc", "--calib", image_dir, "--calib-samples", 4,
                    "--parity-samples", 4, "-o", tmp_path)  # fmt: skip
    assert result.exit_code == 0, result.output
    v = load_manifest(tmp_path).variant("tflite_fp32")
    assert v.input["shape"] == [1, 32, 32, 3] and v.input["layout"] == "nhwc"
    assert v.parity is not None and v.parity["passed"]


def _error(result: Any, match: str) -> None:
    assert result.exit_code == 2, result.output
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), result.output
    assert "Traceback" not in result.output
    assert match in result.output, result.output


def test_error_missing_model(tmp_path: Path) -> None:
    _error(invoke("export", tmp_path / "none.pt2", "-o", tmp_path / "o"), "does not exist")


def test_error_corrupt_model(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pt2"
    bad.write_bytes(b"garbage")
    _error(invoke("export", bad, "-o", tmp_path / "o"), "not a readable")


def test_error_torchscript(tmp_path: Path) -> None:
    import torch

    from tests.models import build_tiny

    path = tmp_path / "ts.pt"
    torch.jit.save(torch.jit.trace(build_tiny(), torch.zeros(1, 3, 32, 32)), str(path))
    _error(invoke("export", path, "-o", tmp_path / "o"), "TorchScript")


def test_error_pickle_without_trust(tmp_path: Path) -> None:
    import torch

    from tests.models import build_tiny

    path = tmp_path / "whole.pt"
    torch.save(build_tiny(), path)
    _error(invoke("export", path, "-o", tmp_path / "o"), "--trust-pickle")


def test_error_arch_not_importable(tmp_path: Path) -> None:
    _error(invoke("export", "--arch", "nope.models:x", "-o", tmp_path), "cannot import")


def test_error_shape_mismatch(tmp_path: Path) -> None:
    _error(invoke("export", "--arch", TINY_ARCH, "--input-shape", "1x5x32x32", "-o", tmp_path), "channels")
    _error(
        invoke("export", "--arch", TINY_ARCH, "--input-shape", "2x3x32", "-o", tmp_path), "4 positive dims"
    )


def test_error_pt2_shape_conflict(tmp_path: Path, tiny_pt2: Path) -> None:
    _error(invoke("export", tiny_pt2, "--input-shape", "1x3x64x64", "-o", tmp_path), "does not match")


def test_error_int8_without_calibration(tmp_path: Path) -> None:
    _error(invoke("export", "--arch", TINY_ARCH, "--int8", "-o", tmp_path / "o"), "--calib")
    assert not (tmp_path / "o").exists()  # refused before anything was written


def test_error_empty_calibration(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("no images")
    _error(
        invoke("export", "--arch", TINY_ARCH, "--int8", "--calib", empty, "-o", tmp_path / "o"), "no images"
    )


def test_error_unusable_calibration(tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    bad.mkdir()
    for i in range(4):
        (bad / f"{i}.png").write_bytes(b"not an image")
    _error(
        invoke(
            "export",
            "--arch",
            TINY_ARCH,
            "--input-shape",
            TINY_SHAPE,
            "--int8",
            "--calib",
            bad,
            "-o",
            tmp_path / "o",
        ),
        "could be used",
    )


def test_error_output_not_writable(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    _error(invoke("export", "--arch", TINY_ARCH, "-o", blocker / "out"), "output folder")


def test_error_unsupported_op(tmp_path: Path) -> None:
    result = invoke(
        "export", "--arch", "tests.models:build_unconvertible", "--input-shape", TINY_SHAPE, "--parity-samples", 2,
        "-o", tmp_path,
    )  # fmt: skip
    _error(result, "bessel_j0")


def test_error_bad_options(tmp_path: Path) -> None:
    _error(invoke("export", "--arch", TINY_ARCH, "--layout", "chw", "-o", tmp_path), "--layout")
    _error(invoke("export", "--arch", TINY_ARCH, "--tol", "int8:bogus=1", "-o", tmp_path), "--tol")
    # a NaN bar passes every comparison, a flip rate past 1 means nothing: both refused
    _error(invoke("export", "--arch", TINY_ARCH, "--tol", "int8:min_sqnr_db=nan", "-o", tmp_path), "finite")
    _error(invoke("export", "--arch", TINY_ARCH, "--tol", "int8:max_flip_rate=1.5", "-o", tmp_path), "[0, 1]")
    _error(invoke("export", "--arch", TINY_ARCH, "--arch-kwargs", "[1]", "-o", tmp_path), "JSON object")
    _error(invoke("export", "-o", tmp_path), "give a model file")


def test_export_sparse_records_the_lint_and_the_fixes(image_dir: Path, tmp_path: Path) -> None:
    result = invoke(
        "export", "--arch", "tests.models:build_sparse_net", "--arch-kwargs", '{"sparsity": 0.85}',
        "--input-shape", "1x3x32x32", "--sparse", "--calib", image_dir, "--parity-samples", 8, "-o", tmp_path,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    m = load_manifest(tmp_path)
    dense = m.variant("tflite_fp32")
    assert dense.sparsity is not None and dense.sparsity["verdict"] == "blocked"
    for name in ("tflite_sparse_fp32", "tflite_sparse_fp16", "tflite_sparse_int8w"):
        v = m.variant(name)
        assert v.passed, v.parity
        assert v.sparsity is not None and v.sparsity["verdict"] == "eligible"
        assert v.sparsity["applied"][0].startswith(f"{v.sparsity['sparse_tensors']} weights stored sparse")
        assert any("TRANSPOSE+MEAN" in a for a in v.sparsity["applied"])
        assert (v.size_bytes or 0) < 0.5 * (dense.size_bytes or 0)
    assert "eligible" in result.output and "weights stored sparse" in result.output


def test_sparse_cell_says_dense_for_unpruned_models() -> None:
    from edgekit.exporters.sparsity import sparsity_label as _sparse_cell

    region = {"zero_ratio": 0.01}
    assert _sparse_cell({"verdict": "blocked", "sparse_tensors": 0, "regions": [region]}) == "dense"
    assert (
        _sparse_cell({"verdict": "blocked", "sparse_tensors": 0, "regions": [{"zero_ratio": 0.8}]})
        == "blocked"
    )
    assert _sparse_cell({"verdict": "too-dense", "sparse_tensors": 3, "regions": [region]}) == "too-dense"
    assert _sparse_cell(None) == "-"
