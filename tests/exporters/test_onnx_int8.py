"""ONNX INT8 on layers onnxruntime's quantizer cannot take as they come."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

from edgekit.exporters import get_variant
from edgekit.exporters.onnx import kept_float_by_onnxruntime, quantize_int8
from edgekit.exporters.registry import ExportContext
from edgekit.spec import InputSpec


class FrameNorm(torch.nn.Module):
    """PESTO's front (pesto-pitch): a LayerNorm over two axes of a 1-D frame, then 1-D convs."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.norm = torch.nn.LayerNorm([1, 48])
        self.conv = torch.nn.Conv1d(1, 8, 5, padding=2)
        self.fc = torch.nn.Linear(8 * 48, 1)
        with torch.no_grad():  # a trained LayerNorm's affine part is not the identity
            self.norm.weight.uniform_(0.5, 1.5)
            self.norm.bias.uniform_(-0.2, 0.2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.conv(self.norm(x[:, :1].reshape(x.shape[0], 1, 48))))
        return self.fc(y.flatten(1))  # type: ignore[no-any-return]


class _Reader(CalibrationDataReader):
    def __init__(self, x: np.ndarray) -> None:
        self.items = iter([{"input": x[i : i + 1]} for i in range(len(x))])

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self.items, None)


def test_a_layernorm_over_two_axes_stays_float_instead_of_failing_the_variant() -> None:
    """Before: onnxruntime 1.32's quantize_static failed on the LayerNorm's 2-D bias ("The truth
    value of an array with more than one element is ambiguous") and the ONNX INT8 variant with it."""
    x = np.random.default_rng(0).uniform(0, 1, (32, 3, 6, 8)).astype(np.float32)
    ctx = ExportContext(module=FrameNorm().eval(), input_spec=InputSpec(shape=(1, 3, 6, 8)), calibration=x)
    fp32 = get_variant("onnx_fp32").build(ctx)
    assert len(kept_float_by_onnxruntime(fp32)) == 1
    with tempfile.TemporaryDirectory() as tmp, pytest.raises(ValueError, match="ambiguous"):
        Path(tmp, "f.onnx").write_bytes(fp32)
        quantize_static(str(Path(tmp, "f.onnx")), str(Path(tmp, "q.onnx")), _Reader(x),
                        quant_format=QuantFormat.QDQ, per_channel=True, activation_type=QuantType.QUInt8,
                        weight_type=QuantType.QInt8)  # fmt: skip
    model = onnx.load_from_string(quantize_int8(ctx))
    ops = [n.op_type for n in model.graph.node]
    assert "LayerNormalization" in ops and ops.count("DequantizeLinear") >= 4  # the conv and FC are INT8
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    with torch.no_grad():
        ref = FrameNorm().eval()(torch.from_numpy(x)).numpy()
    out = np.concatenate([sess.run(None, {"input": x[i : i + 1]})[0] for i in range(len(x))])
    assert np.abs(out - ref).max() < 0.05 * np.abs(ref).max()
