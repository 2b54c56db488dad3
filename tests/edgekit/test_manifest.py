from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgekit.errors import UsageError
from edgekit.manifest import SCHEMA_VERSION, Manifest, VariantRecord, load_manifest


def _manifest() -> Manifest:
    return Manifest(
        name="m",
        created="2026-01-01T00:00:00+00:00",
        source={"path": "m.pt2", "sha256": "ab"},
        input={"shape": [1, 3, 8, 8]},
        output={"kind": "logits", "classes": 1, "positive_index": 0},
        preprocess={"height": 8, "width": 8, "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]},
        threshold=0.5,
        calibration=None,
        parity_data={
            "samples": 2,
            "inputs_file": "parity_inputs.npy",
            "reference_file": "parity_reference.npy",
        },
        reference={"backend": "torch", "auc": None},
        variants=(
            VariantRecord(
                "tflite_fp32",
                "m.fp32.tflite",
                "tflite",
                "fp32",
                "ok",
                size_bytes=3,
                sha256="0" * 64,
                parity={"passed": True},
            ),
            VariantRecord("onnx_int8", None, "onnx", "int8", "failed", error="boom"),
        ),
        tools={"edgekit": "0"},
    )


def test_roundtrip_and_schema_first(tmp_path: Path) -> None:
    m = _manifest()
    path = m.save(tmp_path)
    text = path.read_text(encoding="utf-8")
    assert list(json.loads(text))[:2] == ["schema", "schema_version"]
    back = load_manifest(tmp_path)
    assert back == m
    assert not back.all_passed and back.variant("tflite_fp32").passed
    assert not list(tmp_path.glob(".*tmp"))


def test_other_schema_version_is_refused(tmp_path: Path) -> None:
    d = _manifest().to_dict()
    d["schema_version"] = SCHEMA_VERSION + 1
    (tmp_path / "manifest.json").write_text(json.dumps(d))
    with pytest.raises(UsageError, match="re-run 'edgekit export'"):
        load_manifest(tmp_path)


def test_missing_and_garbage(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no manifest"):
        load_manifest(tmp_path)
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(UsageError, match="not valid JSON"):
        load_manifest(tmp_path)
