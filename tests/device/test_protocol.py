"""The shared protocol vectors (android_app/protocol/vectors) as the Python host sees them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edgekit.device.placement import Placement, from_ort_profile, from_tflite_log
from edgekit.device.protocol import (
    RunConfig,
    RunResult,
    TensorFile,
    decode_tensor,
    encode_tensor,
)
from edgekit.errors import DeviceError, ProtocolError

VECTORS = Path(__file__).resolve().parents[2] / "android_app" / "protocol" / "vectors"
INDEX = json.loads((VECTORS / "index.json").read_text())["vectors"]


def _parse(v: dict[str, Any]) -> Any:
    data = (VECTORS / v["file"]).read_bytes()
    if v["kind"] == "config":
        return RunConfig.from_json(data.decode())
    if v["kind"] == "result":
        return RunResult.from_json(data.decode())
    if v["kind"] == "placement_tflite_log":
        return from_tflite_log(data.decode().splitlines())
    if v["kind"] == "placement_ort_profile":
        return from_ort_profile(data.decode())
    return decode_tensor(data, TensorFile("t.bin", v["dtype"], tuple(v["shape"])))


@pytest.mark.parametrize("vector", INDEX, ids=[v["file"] for v in INDEX])
def test_vector(vector: dict[str, Any]) -> None:
    if vector["valid"]:
        parsed = _parse(vector)
        if vector["kind"] == "tensor":
            np.testing.assert_allclose(parsed.ravel(), vector["values"], rtol=1e-6)
        if vector["kind"].startswith("placement_"):  # the app's Placement.java reads the same
            got, want = parsed.to_dict(), vector["expected"]
            assert (got["source"], got["total_ops"]) == (want["source"], want["total_ops"])
            for key in ("ops", "partitions", "op_times_ms"):
                assert got[key] == pytest.approx(want[key]), key
            for accelerator, share in vector["fractions"].items():
                assert parsed.fraction(accelerator) == pytest.approx(share, abs=1e-6)
    else:
        with pytest.raises(ProtocolError) as err:
            _parse(vector)
        assert vector["error_contains"] in str(err.value)
        assert isinstance(err.value, DeviceError)  # a bench worker records it as the cell's error


def test_every_kind_has_valid_and_invalid_vectors() -> None:
    kinds = {(v["kind"], v["valid"]) for v in INDEX}
    both = ("config", "result", "tensor", "placement_ort_profile")
    assert kinds == {(k, ok) for k in both for ok in (True, False)} | {("placement_tflite_log", True)}


def test_config_roundtrip_and_defaults() -> None:
    minimal = RunConfig.from_json((VECTORS / "config_minimal.json").read_text())
    assert (minimal.threads, minimal.runs, minimal.accelerator, minimal.engine) == (
        4,
        100,
        "cpu",
        "compiled_model",
    )
    again = RunConfig.from_json(minimal.to_json())
    assert again == minimal


def test_result_roundtrip_keeps_fallback() -> None:
    r = RunResult.from_json((VECTORS / "result_ok_fallback.json").read_text())
    assert r.accelerator_requested == "gpu" and r.accelerator_used == "cpu" and r.fallback_reason
    assert r.memory["after_runs"].pss_total_kb == 70000
    assert RunResult.from_json(r.to_json()) == r


def test_tensor_encoding_is_little_endian() -> None:
    raw = encode_tensor(np.array([1.0], np.float32), "float32")
    assert raw == b"\x00\x00\x80\x3f"
    assert encode_tensor(np.array([1], np.int32), "int32") == b"\x01\x00\x00\x00"


def _result_with(placement: Any) -> str:
    d = json.loads(RunResult("r1", "ok", "1", "compiled_model", "gpu", "gpu", ("cpu", "gpu"), 2,
                             timings_ms=(1.0,)).to_json())  # fmt: skip
    d["placement"] = placement
    return json.dumps(d)


def test_a_placement_from_the_device_is_checked_before_it_is_believed() -> None:
    good = {"source": "tflite_log", "total_ops": 10, "ops": {"TfLiteGpuDelegateV2": 7, "builtin": 3}}
    parsed = RunResult.from_json(_result_with(good)).placement
    assert parsed == Placement("tflite_log", 10, {"TfLiteGpuDelegateV2": 7, "builtin": 3})
    assert parsed.fraction("gpu") == pytest.approx(0.7)
    assert parsed.fraction("cpu") == 0.0  # nothing on XNNPACK
    bad = [
        ({**good, "ops": {"TfLiteGpuDelegateV2": 70}}, "add up to more"),
        ({**good, "source": "my_guess"}, "source"),
        ({**good, "total_ops": -1}, "total_ops"),
        ({**good, "total_ops": True}, "total_ops"),
        ({**good, "ops": {"gpu": "7"}}, "number"),
        ({**good, "ops": {f"d{i}": 0 for i in range(65)}}, "at most 64"),
        ({**good, "op_times_ms": {"Conv": -1.0}}, "out of range"),
        ([1, 2], "not an object"),
    ]
    for placement, message in bad:
        with pytest.raises(ProtocolError, match=message):
            RunResult.from_json(_result_with(placement))


def test_an_ort_profile_that_nests_without_end_is_refused_not_a_crash() -> None:
    with pytest.raises(ProtocolError, match="ONNX Runtime profile .*nested too deeply"):
        from_ort_profile("[" * 100_000)
    assert from_tflite_log(["nothing about delegates"]) is None
