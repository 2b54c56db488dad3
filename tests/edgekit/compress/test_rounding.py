"""Learned rounding (GPTQ and AdaRound): the rung of the INT8 repair where it is the fix, the converted
weights equal to the learned ones, and the time bound."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest
import torch

from edgekit.compress.equalize import find_units, folded_weight
from edgekit.compress.rounding import int8_grid, learn_rounding
from tests.exporters.test_repair import _groups, _onnx_repair, _repair


class RoundingNet(torch.nn.Module):
    """A class signal on 36 small conv weights of about half an INT8 step each, sharing their
    output channels with one large weight: round-to-nearest sends each up or down by chance and
    the channel sums drift (12.6 dB); choosing up or down per weight holds them (no range,
    correction or equalization can: the error is in the weights' integers)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3, padding=1, bias=False)
        self.fc = torch.nn.Linear(4, 1)
        g = torch.Generator().manual_seed(0)
        step = 20.0 / 127
        with torch.no_grad():
            self.conv.weight.zero_()
            self.conv.weight[:, 0, 1, 1] = 20.0
            self.conv.weight[:, 1] = step * (0.3 + 0.4 * torch.rand(4, 3, 3, generator=g))
            self.fc.weight.fill_(1.0)
            self.fc.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.conv(x).mean((2, 3)))


class WideRoundingNet(torch.nn.Module):
    """RoundingNet's failure on a layer too wide for GPTQ (a 12,288-input dense layer: its Gram
    matrix would take 1.2 GB): 4,096 class weights of 0.05 to 0.45 of an INT8 step share their
    row with one large weight, so nearest rounding sets every one to 0 and the class is gone.
    Learned rounding must leave the layer at nearest; distillation, whose cost grows with the
    weights and not their square, learns which quarter of them to round up."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(3 * 64 * 64, 1)
        g = torch.Generator().manual_seed(0)
        step = 20.0 / 127
        with torch.no_grad():
            self.fc.weight.zero_()
            self.fc.weight[0, 32 * 64 + 32] = 20.0  # channel 0's centre pixel
            self.fc.weight[0, 4096:8192] = step * (0.05 + 0.4 * torch.rand(4096, generator=g))
            self.fc.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.flatten(1))


def _wide_groups(n: int) -> np.ndarray:
    x = np.random.default_rng(0).standard_normal((n, 3, 64, 64)).astype(np.float32) * 0.3
    x[::2, 1] += 1.0
    x[1::2, 1] -= 1.0
    return x


def test_learned_rounding_fixes_what_nearest_rounding_breaks() -> None:
    record = _repair(RoundingNet(), _groups(64, 1), effort=600)
    by_step = {a["step"]: a for a in record["attempts"]}
    for step in ("min/max ranges", "MSE-optimal ranges", "bias correction"):
        assert by_step[step]["sqnr_db"] < 15 and not by_step[step]["passed"], step
    assert record["chosen"] == "learned rounding" and record["passed"], record["attempts"]
    assert by_step["learned rounding"]["sqnr_db"] > 30 and by_step["learned rounding"]["flips"] == 0
    changes = record["changes"]
    assert changes["flipped"] > 0 and changes["error_learned"] < changes["error_nearest"] / 2


@pytest.mark.parametrize("solver", ["gptq", "adaround"])
def test_both_solvers_hold_the_channel_sums_nearest_rounding_lets_drift(solver: str) -> None:
    said: list[str] = []
    _, report = learn_rounding(RoundingNet().eval(), _groups(32, 1), solver=solver, progress=said.append)
    assert report.layers == 2 and report.flipped > 0
    nearest, learned = (float(v) for v in said[0].split("(")[1].rstrip(")").split(" -> "))
    assert learned < nearest / 3, said[0]  # the conv's output error


def test_an_unknown_solver_is_refused() -> None:
    with pytest.raises(ValueError, match="gptq or adaround"):
        learn_rounding(RoundingNet().eval(), _groups(4, 1), solver="brecq")


def _tflite_weights(model: bytes) -> list[tuple[str, np.ndarray]]:
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    it = Interpreter(model_content=model, experimental_preserve_all_tensors=True,
                     experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)  # fmt: skip
    it.allocate_tensors()
    return [(o["op_name"], it.get_tensor(int(o["inputs"][1]))) for o in it._get_ops_details()
            if o["op_name"] in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")]  # fmt: skip


def _learned_integers(gm: Any) -> dict[str, np.ndarray]:
    """Weight parameter path -> its learned INT8 integers (BatchNorm folded), in graph order."""
    out = {}
    for unit in find_units(gm).values():
        scaled = int8_grid(folded_weight(gm, unit)[0])[1]
        assert float((scaled - scaled.round()).abs().max()) < 1e-3  # on the grid
        out[unit.weight] = scaled.round().numpy().astype(np.int32)
    return out


@pytest.mark.parametrize("solver", ["gptq", "adaround"])
def test_the_converter_keeps_the_learned_integers_exactly(solver: str) -> None:
    """BatchNorm folded, per-channel scales recomputed by ai-edge-quantizer: the INT8 weights in
    the .tflite are the learned ones, conv, depthwise and dense alike, whichever solver chose them
    (GPTQ's refit sets its own grid: the converter must find the same one)."""
    from edgekit.exporters import aeq
    from edgekit.exporters.registry import ExportContext
    from edgekit.exporters.tflite import quantize_float
    from edgekit.spec import InputSpec
    from tests.models import build_tiny

    x = np.random.default_rng(0).standard_normal((16, 3, 32, 32)).astype(np.float32)
    gm, report = learn_rounding(build_tiny().eval(), x, iterations=60, solver=solver)
    assert report.layers == len(find_units(gm)) >= 4 and report.flipped > 0
    ctx = ExportContext(module=gm, input_spec=InputSpec(shape=(1, 3, 32, 32)), calibration=x)
    converted = _tflite_weights(quantize_float(ctx, aeq.static_int8_recipe(float_io=True)))
    kinds = [k for k, _ in converted]
    assert {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"} <= set(kinds)
    for (kind, got), want in zip(converted, _learned_integers(gm).values(), strict=True):
        layout = {"CONV_2D": (0, 2, 3, 1), "DEPTHWISE_CONV_2D": (1, 2, 3, 0)}.get(kind)
        want = want.transpose(layout) if layout else want  # OIHW -> OHWI / 1HWC
        assert got.dtype == np.int8 and np.array_equal(got.astype(np.int32), want), kind


def test_a_spent_budget_leaves_the_remaining_layers_at_nearest() -> None:
    x = _groups(8, 1)
    gm, report = learn_rounding(RoundingNet().eval(), x, budget_s=0.0)
    assert report.budget_hit and report.layers == 0 and report.flipped == 0
    weight = dict(gm.named_parameters())["conv.weight"]
    assert torch.equal(weight, RoundingNet().conv.weight)  # untouched: the converter rounds to nearest


def test_onnxruntime_keeps_the_learned_integers_exactly() -> None:
    """onnxruntime's pre-processing folds BatchNorm and quantize_static recomputes the symmetric
    per-channel scales: the QDQ model's INT8 weights are the learned ones."""
    import onnx
    from onnx import numpy_helper

    from edgekit.exporters.onnx import quantize_int8
    from edgekit.exporters.registry import ExportContext
    from edgekit.spec import InputSpec
    from tests.models import build_tiny

    x = np.random.default_rng(0).standard_normal((16, 3, 32, 32)).astype(np.float32)
    gm, report = learn_rounding(build_tiny().eval(), x, iterations=60)
    assert report.flipped > 0
    ctx = ExportContext(module=gm, input_spec=InputSpec(shape=(1, 3, 32, 32)), calibration=x)
    graph = onnx.load_from_string(quantize_int8(ctx)).graph
    inits = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    weights = {n.input[0].removesuffix("_quantized"): inits[n.input[0]] for n in graph.node
               if n.op_type == "DequantizeLinear" and inits.get(n.input[0], np.zeros(0)).dtype == np.int8}  # fmt: skip
    want = _learned_integers(gm)
    assert set(weights) >= set(want) and len(want) >= 4
    for name, learned in want.items():
        assert np.array_equal(weights[name].astype(np.int32), learned), name


def test_the_onnx_ladder_learns_the_rounding_too() -> None:
    """The same net through the ONNX ladder (judged on the host's onnxruntime here)."""
    record = _onnx_repair(RoundingNet(), _groups(64, 1), None, effort=600)
    by_step = {a["step"]: a for a in record["attempts"]}
    assert not by_step["MSE-optimal ranges"]["passed"] and by_step["MSE-optimal ranges"]["sqnr_db"] < 15
    assert record["chosen"] == "learned rounding" and record["passed"], record["attempts"]


def test_distillation_lifts_the_simulated_int8_student_within_a_test_budget() -> None:
    """The float model teaches its INT8-simulating copy on calibration images; the check images
    early-stop it; the weights come back on the converters' grid."""
    import time

    from edgekit.compress.distill import distill
    from tests.models import build_tiny

    x = np.random.default_rng(0).standard_normal((48, 3, 32, 32)).astype(np.float32)
    started = time.perf_counter()
    gm, report = distill(build_tiny().eval(), x[:32], x[32:], steps=200, budget_s=20.0)
    assert time.perf_counter() - started < 40 and report.steps <= 200
    assert report.sqnr_after_db > report.sqnr_before_db + 3, report
    assert 0 < report.best_step <= report.steps
    _learned_integers(gm)  # asserts every conv/linear weight sits on its INT8 grid point


def test_a_layer_too_wide_for_gptq_keeps_nearest_rounding(monkeypatch: pytest.MonkeyPatch) -> None:
    """GPTQ's Gram matrix grows with the square of a layer's weights per output channel (CREPE's
    second conv would need 34 GB): past the bound the layer is never built; its float weights
    come back untouched (the converter rounds them to nearest), counted in the report."""
    import edgekit.compress.rounding as rounding

    monkeypatch.setattr(rounding, "_GRAM_ENTRIES", 10 * 10)  # the conv's 27 inputs are too many
    gm, report = learn_rounding(RoundingNet().eval(), _groups(16, 1))
    assert report.too_wide == 1 and report.layers == 1  # the 4-input linear layer was still learned
    assert torch.equal(dict(gm.named_parameters())["conv.weight"], RoundingNet().conv.weight)
    folded, _ = folded_weight(gm, find_units(gm)["linear"])
    _, scaled = int8_grid(folded)
    assert torch.allclose(scaled, scaled.round(), atol=1e-4)  # the learned layer sits on its grid


def test_the_onnx_ladder_reuses_what_the_tflite_ladder_learned() -> None:
    """One export learns once: the ONNX ladder, starting from the same model, takes the rounded
    model the TFLite ladder learned (the same weight grid), says so, and holds with it too."""
    from edgekit.exporters import get_variant
    from edgekit.exporters.registry import ExportContext
    from edgekit.spec import InputSpec
    from tests.exporters.test_repair import TARGET

    ctx = ExportContext(module=RoundingNet().eval(), input_spec=InputSpec(shape=(1, 3, 32, 32)),
                        calibration=_groups(64, 1), int8_target=TARGET, int8_effort=600)  # fmt: skip
    get_variant("tflite_int8").build(ctx)
    tflite = ctx.cache["repair:tflite_int8"]
    assert tflite["chosen"] == "learned rounding" and tflite["passed"]
    assert "learned_for_another_format" not in tflite["changes"]
    get_variant("onnx_int8").build(ctx)
    onnx = ctx.cache["repair:onnx_int8"]
    assert onnx["changes"].get("learned_for_another_format") is True, onnx["changes"]
    assert onnx["chosen"] == "learned rounding" and onnx["passed"], onnx["attempts"]
    assert len(ctx.cache["learned_rung:learned rounding"]) == 1


def test_distillation_fixes_a_layer_too_wide_for_learned_rounding() -> None:
    """The ladder's distillation rung where it is the fix: every range, the bias correction and
    learned rounding (which cannot take the layer) miss; distillation holds, within the effort."""
    from edgekit.exporters.registry import ExportContext
    from edgekit.exporters.tflite import static_int8
    from edgekit.spec import InputSpec
    from tests.exporters.test_repair import TARGET

    ctx = ExportContext(module=WideRoundingNet().eval(), input_spec=InputSpec(shape=(1, 3, 64, 64)),
                        calibration=_wide_groups(128), int8_target=TARGET, int8_effort=120)  # fmt: skip
    model = static_int8(ctx)
    record = ctx.cache["repair:tflite_int8"]
    by_step = {a["step"]: a for a in record["attempts"]}
    for step in ("min/max ranges", "MSE-optimal ranges", "bias correction", "learned rounding"):
        assert by_step[step]["sqnr_db"] < 5 and not by_step[step]["passed"], (step, record["attempts"])
    assert record["chosen"] == "distillation" and record["passed"], record["attempts"]
    assert by_step["distillation"]["flips"] == 0 and by_step["distillation"]["sqnr_db"] >= 25
    changes = record["changes"]
    assert changes["best_step"] > 0 and changes["seconds"] < 120, changes
    ((_, _, rounding, _),) = ctx.cache["learned_rung:learned rounding"]
    assert rounding["too_wide"] == 1 and rounding["layers"] == 0, rounding
    plain = static_int8(dataclasses.replace(ctx, int8_target=None, cache={}))
    assert len(model) <= 1.02 * len(plain)  # no op kept float: the size of plain INT8
