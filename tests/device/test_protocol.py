"""The shared protocol vectors (android_app/protocol/vectors) as the Python host sees them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

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
    return decode_tensor(data, TensorFile("t.bin", v["dtype"], tuple(v["shape"])))


@pytest.mark.parametrize("vector", INDEX, ids=[v["file"] for v in INDEX])
def test_vector(vector: dict[str, Any]) -> None:
    if vector["valid"]:
        parsed = _parse(vector)
        if vector["kind"] == "tensor":
            np.testing.assert_allclose(parsed.ravel(), vector["values"], rtol=1e-6)
    else:
        with pytest.raises(ProtocolError) as err:
            _parse(vector)
        assert vector["error_contains"] in str(err.value)
        assert isinstance(err.value, DeviceError)  # a bench worker records it as the cell's error


def test_every_kind_has_valid_and_invalid_vectors() -> None:
    kinds = {(v["kind"], v["valid"]) for v in INDEX}
    assert kinds == {(k, ok) for k in ("config", "result", "tensor") for ok in (True, False)}


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
