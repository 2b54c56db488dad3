"""The export issue's bar on the bundled detector: INT8 <= 0.3x FP32 and <= 1% flipped decisions."""

from __future__ import annotations

import pytest

from edgekit.exporting import export
from edgekit.manifest import Manifest
from edgekit.sample.bundle import write_sample
from edgekit.spec import ExportSpec, ModelSource


@pytest.fixture(scope="module")
def sample_manifest(tmp_path_factory: pytest.TempPathFactory) -> Manifest:
    root = tmp_path_factory.mktemp("sample")
    files = write_sample(root, count=160)
    spec = ExportSpec(
        source=ModelSource(path=files.model),
        out_dir=root / "out",
        variants=("tflite_fp32", "tflite_int8"),
        calib_dir=files.data,
        calib_samples=96,
        parity_samples=64,
        mean=(0.5, 0.5, 0.5),
        std=(0.5, 0.5, 0.5),
        name="sample",
    )
    return export(spec)


def test_int8_is_small_and_keeps_decisions(sample_manifest: Manifest) -> None:
    fp32, int8 = sample_manifest.variant("tflite_fp32"), sample_manifest.variant("tflite_int8")
    assert fp32.size_bytes and int8.size_bytes and int8.parity and fp32.parity and int8.delegation
    assert int8.size_bytes / fp32.size_bytes <= 0.30
    assert int8.parity["flip_rate"] <= 0.01 and int8.parity["passed"]
    assert int8.delegation["fully_delegated"]
    assert fp32.parity["passed"] and fp32.parity["max_abs_diff"] < 1e-3


def test_manifest_records_the_sample_run(sample_manifest: Manifest) -> None:
    m = sample_manifest
    assert m.source["kind"] == "pt2" and len(m.source["sha256"]) == 64
    assert m.input["shape"] == [1, 3, 128, 128]
    assert list(m.preprocess["mean"]) == [0.5, 0.5, 0.5]
    assert m.calibration is not None and m.calibration["class_balance"] is not None
    assert m.reference["auc"] is not None and m.reference["auc"] >= 0.95
    auc = m.variant("tflite_int8").auc
    assert auc is not None and auc >= 0.95
