"""INT8 repair: each step on a small net where that step is what fixes it, localisation, and the
record the manifest keeps."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import torch

from edgekit.exporters.registry import ExportContext
from edgekit.exporters.repair import localise, search
from edgekit.exporters.tflite import float_tflite, static_int8
from edgekit.spec import InputSpec, Tolerance

TARGET = Tolerance(max_flip_rate=0.01, min_sqnr_db=15.0)


class PooledNet(torch.nn.Module):
    """1x1 conv, ReLU, global mean, one logit: a pooled feature that separates two groups."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(3, 8, 1)
        self.fc = torch.nn.Linear(8, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.relu(self.conv(x)).mean((2, 3)))


class SharedChannelNet(torch.nn.Module):
    """The class signal rides on small conv weights that share an output channel with one large
    weight: per-channel INT8 rounds the small ones to zero, whatever the activation ranges, with
    nothing in front to trade scale with."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3, padding=1, bias=False)
        self.fc = torch.nn.Linear(4, 1)
        with torch.no_grad():
            self.conv.weight.zero_()
            self.conv.weight[:, 0, 1, 1] = 20.0
            self.conv.weight[:, 1] = 0.05
            self.fc.weight.fill_(1.0)
            self.fc.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.conv(x).mean((2, 3)))


class EqualizableNet(torch.nn.Module):
    """SharedChannelNet's conv behind an identity 1x1 conv: the large and small weights can trade
    scale with the conv in front (cross-layer equalization), which no fallback is then needed for."""

    def __init__(self) -> None:
        super().__init__()
        self.front = torch.nn.Conv2d(3, 3, 1, bias=False)
        self.shared = SharedChannelNet()
        with torch.no_grad():
            self.front.weight.copy_(torch.eye(3).reshape(3, 3, 1, 1))
            # 0.39 of an INT8 step of its row (rounds to 0); equalized, exactly 7 steps
            self.shared.conv.weight[:, 1] = 20.0 * (7 / 127) ** 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shared(self.front(x))


class QuietChannelNet(torch.nn.Module):
    """MobileNetV2's first blocks in miniature: a 1x1 conv + BatchNorm + ReLU6 whose channel 1
    carries the class at 1/1000 of the other channels' level, and a depthwise conv whose
    BatchNorm amplifies that channel back (gain 1000). The depthwise input's one 8-bit range
    spans the loud channels, so channel 1 rounds to 0 for both classes whatever the range; only
    rescaling it against the depthwise weights (activation equalization) keeps it."""

    def __init__(self) -> None:
        super().__init__()
        self.front = torch.nn.Conv2d(3, 4, 1)
        self.front_bn = torch.nn.BatchNorm2d(4)
        self.dw = torch.nn.Conv2d(4, 4, 3, padding=1, groups=4, bias=False)
        self.dw_bn = torch.nn.BatchNorm2d(4)
        self.fc = torch.nn.Linear(4, 1)
        with torch.no_grad():
            self.front.weight.zero_()
            self.front.weight[[0, 2, 3], [0, 2, 0]] = 1.0
            self.front.bias.copy_(torch.tensor([3.0, 0.0, 3.0, 2.0]))
            self.front.weight[1, 1] = 0.002  # the class: 0.007 or 0.003, a fraction of one step
            self.front.bias[1] = 0.005
            self.dw.weight.zero_()
            self.dw.weight[:, 0, 1, 1] = 1.0
            self.dw_bn.weight.copy_(torch.tensor([1.0, 1000.0, 1.0, 1.0]))
            self.fc.weight.copy_(torch.tensor([[0.01, 1.0, 0.01, 0.01]]))
            self.fc.bias.fill_(-5.0)  # the threshold between the classes' 3 and 7

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.nn.functional.relu6(self.front_bn(self.front(x)))
        return self.fc(self.dw_bn(self.dw(h)).mean((2, 3)))


def _groups(n: int, channel: int) -> np.ndarray:
    x = np.random.default_rng(0).standard_normal((n, 3, 32, 32)).astype(np.float32) * 0.3
    x[::2, channel] += 1.0
    x[1::2, channel] -= 1.0
    return x


def _repair(module: torch.nn.Module, calibration: np.ndarray, effort: float = 0.0) -> dict[str, Any]:
    """The TFLite repair record; ``effort`` 0 (the default here) skips the learned rungs, which
    tests/edgekit/compress/test_rounding.py runs where they are the fix."""
    ctx = ExportContext(module=module.eval(), input_spec=InputSpec(shape=(1, 3, 32, 32)),
                        calibration=calibration, int8_target=TARGET, int8_effort=effort)  # fmt: skip
    static_int8(ctx)
    record: dict[str, Any] = ctx.cache["repair:tflite_int8"]
    return record


def test_percentile_ranges_fix_an_outlier_stretched_range() -> None:
    x = _groups(65, 0)
    x[64, :, 10, 10] = 1000.0  # one pixel of one calibration image (outside the 64-image check set)
    module = PooledNet()
    with torch.no_grad():
        module.fc.bias -= float(np.median(module(torch.from_numpy(x[:64])).numpy()))
    record = _repair(module, x)
    steps = [(a["step"], a["flips"], a["passed"]) for a in record["attempts"]]
    assert steps[0][0] == "min/max ranges" and steps[0][1] > 10 and not steps[0][2]  # min/max: broken
    assert record["chosen"] == "percentile 99.99 ranges" and record["passed"]
    assert record["attempts"][1]["flips"] == 0 and record["attempts"][1]["sqnr_db"] > 30


def test_float_fallback_fixes_what_no_range_can() -> None:
    record = _repair(SharedChannelNet(), _groups(64, 1))
    by_step = {a["step"]: a for a in record["attempts"]}
    assert all(
        by_step[s]["flips"] > 10
        for s in ("min/max ranges", "percentile 99.99 ranges", "MSE-optimal ranges", "bias correction")
    )
    assert record["chosen"] == "float fallback of 1 layer site" and record["passed"]
    assert record["offenders"][0]["layer"] == "conv" and record["offenders"][0]["op"] == "Conv2d"


def test_bias_correction_fixes_a_systematic_rounding_shift() -> None:
    from tests.models import Offset, offset_inputs

    record = _repair(Offset(), offset_inputs(64))
    by_step = {a["step"]: a for a in record["attempts"]}
    assert all(by_step[s]["flips"] > 10 for s in ("min/max ranges", "percentile 99.99 ranges"))
    assert record["chosen"] == "bias correction" and record["passed"]
    assert record["changes"]["bias_corrected"] == 2


def test_cross_layer_equalization_fixes_a_row_dominated_by_one_input_channel() -> None:
    record = _repair(EqualizableNet(), _groups(64, 1))
    by_step = {a["step"]: a for a in record["attempts"]}
    assert all(by_step[s]["flips"] > 10 for s in ("min/max ranges", "MSE-optimal ranges", "bias correction"))
    assert record["chosen"] == "cross-layer equalization + bias correction" and record["passed"]
    assert record["changes"]["equalized_pairs"] == 1


def _quiet_inputs(n: int) -> np.ndarray:
    x = np.random.default_rng(0).standard_normal((n, 3, 32, 32)).astype(np.float32) * 0.3
    x[:, 1] = np.where(np.arange(n)[:, None, None] % 2 == 0, 1.0, -1.0)  # the class, on channel 1
    x[:, 1] += np.random.default_rng(1).standard_normal((n, 32, 32)).astype(np.float32) * 0.1
    return x


def test_activation_equalization_fixes_a_channel_below_its_shared_range() -> None:
    record = _repair(QuietChannelNet(), _quiet_inputs(96))
    by_step = {a["step"]: a for a in record["attempts"]}
    assert all(by_step[s]["flips"] > 10 for s in ("min/max ranges", "MSE-optimal ranges", "bias correction"))
    step = "activation equalization (depthwise consumers)"
    assert record["chosen"] == step and record["passed"]
    assert by_step[step]["flips"] == 0 and by_step[step]["sqnr_db"] > 25
    assert record["changes"]["rescaled_pairs"] >= 1


def test_onnx_activation_equalization_fixes_the_same_channel() -> None:
    record = _onnx_repair(QuietChannelNet(), _quiet_inputs(96), None)
    assert record["attempts"][0]["flips"] > 10
    assert record["chosen"] == "activation equalization (depthwise consumers)" and record["passed"]


def test_activation_equalization_leaves_the_float_model_alone_on_unseen_inputs() -> None:
    from edgekit.compress.equalize import activation_equalize, find_units

    module = QuietChannelNet().eval()
    x = _quiet_inputs(96)
    gm = torch.export.export(module, (torch.from_numpy(x[:1]),)).module()
    pairs = activation_equalize(gm, find_units(gm), x[:64])
    assert pairs  # front -> dw across the ReLU6
    with torch.no_grad():
        before = np.concatenate([module(torch.from_numpy(x[i : i + 1])).numpy() for i in range(64, 96)])
        after = np.concatenate([gm(torch.from_numpy(x[i : i + 1])).numpy() for i in range(64, 96)])
    np.testing.assert_allclose(after, before, rtol=1e-4, atol=1e-4)


def test_a_model_that_quantizes_well_is_left_alone() -> None:
    from tests.models import build_tiny

    x = np.random.default_rng(1).standard_normal((16, 3, 32, 32)).astype(np.float32)
    record = _repair(build_tiny(), x)
    assert [a["step"] for a in record["attempts"]] == ["min/max ranges"] and record["passed"]
    assert record["offenders"] == []


def test_search_stops_at_the_first_pass_and_otherwise_returns_the_best() -> None:
    built: list[str] = []

    def step(name: str) -> Any:
        return lambda: (built.append(name), name.encode())[1]

    scores = {
        b"a": (5, 64, 10.0, False),
        b"b": (1, 64, 20.0, False),
        b"c": (0, 64, 30.0, True),
        b"d": (0, 64, 40.0, True),
    }
    model, attempts, _ = search([(n, step(n)) for n in "abcd"], scores.__getitem__)
    assert model == b"c" and built == ["a", "b", "c"] and attempts[-1].passed
    model, attempts, _ = search([(n, step(n)) for n in "ab"], scores.__getitem__)
    assert model == b"b" and not any(a.passed for a in attempts)


def test_localise_names_the_op_that_loses_the_signal() -> None:
    from edgekit.exporters import aeq

    module = SharedChannelNet().eval()
    x = _groups(16, 1)
    ctx = ExportContext(module=module, input_spec=InputSpec(shape=(1, 3, 32, 32)), calibration=x)
    base = float_tflite(ctx)
    quant = aeq.quantize(base, aeq.static_int8_recipe(), ctx.calibration_batches())
    rows = localise(base, quant, x[:4])
    assert {r["layer"] for r in rows} >= {"conv"} and all(r["sqnr_db"] < 200 for r in rows)
    # the first op is charged from what the INT8 input lost (~40 dB), not from 200 dB
    assert all(r["loss_db"] < 60 for r in rows)


@pytest.fixture(scope="module")
def arm64() -> Iterator[Any]:
    """The phone's kernels when the arm64 environment is built (CI builds it), else None: ONNX INT8
    is judged there, as the export judges it (a host without VNNI saturates 8-bit weights)."""
    from edgekit.arm64 import Arm64Worker, find_env

    env, _ = find_env()
    if env is None:
        yield None
        return
    with Arm64Worker(env) as worker:
        yield worker


def _onnx_repair(module: torch.nn.Module, x: np.ndarray, arm64: Any, effort: float = 0.0) -> dict[str, Any]:
    from edgekit.exporters import get_variant

    ctx = ExportContext(module=module.eval(), input_spec=InputSpec(shape=(1, 3, 32, 32)), calibration=x,
                        int8_target=TARGET, target=arm64, int8_effort=effort)  # fmt: skip
    get_variant("onnx_int8").build(ctx)
    record: dict[str, Any] = ctx.cache["repair:onnx_int8"]
    return record


@pytest.mark.slow
def test_onnx_percentile_ranges_fix_the_outlier_range(arm64: Any) -> None:
    x = _groups(65, 0)
    x[64, :, 10, 10] = 1000.0
    module = PooledNet()
    with torch.no_grad():
        module.fc.bias -= float(np.median(module(torch.from_numpy(x[:64])).numpy()))
    record = _onnx_repair(module, x, arm64)
    assert record["attempts"][0]["step"] == "min/max ranges" and record["attempts"][0]["flips"] > 10
    assert record["chosen"] == "percentile 99.99 ranges" and record["passed"]


@pytest.mark.slow
def test_onnx_excluding_the_node_localisation_names_fixes_it(arm64: Any) -> None:
    record = _onnx_repair(SharedChannelNet(), _groups(64, 1), arm64)
    assert record["chosen"] == "float fallback of 1 layer site" and record["passed"]
    assert record["offenders"][0]["op"] == "Conv2d" and record["offenders"][0]["layer"] == "conv"


def test_the_summary_says_what_was_done_or_which_ops_must_stay_float() -> None:
    from edgekit.cli.export_cmd import repair_line

    record = _repair(SharedChannelNet(), _groups(64, 1))
    line = repair_line("tflite_int8", record)
    assert line is not None and "INT8 repaired by float fallback of 1 layer site (conv)" in line
    assert "0/64 flips" in line and record["changes"]["float_layers"] == ["conv"]
    failed = {**record, "passed": False, "chosen": "min/max ranges"}
    line = repair_line("tflite_int8", failed)
    assert line is not None and "no repair step reached 0 flips and 25 dB" in line
    assert "at INT8): conv (Conv2d" in line
    ok = {
        "attempts": [{"step": "min/max ranges", "flips": 0, "samples": 64, "sqnr_db": 40.0, "passed": True}]
    }
    assert repair_line("tflite_int8", ok) is None  # nothing to say when plain INT8 holds


class SevenBitNet(SharedChannelNet):
    """Small weights exactly three 8-bit steps of their row: 8-bit weights keep them exactly,
    onnxruntime's default 7-bit ``reduce_range`` (half the levels) makes them 1.5 steps, a third off."""

    def __init__(self) -> None:
        super().__init__()
        with torch.no_grad():
            self.conv.weight[:, 1] = 3 * 20.0 / 127


@pytest.mark.slow
def test_onnx_int8_keeps_8_bit_weights_on_every_host(arm64: Any) -> None:
    """The configuration is the phone's, never the host's: full 8-bit weights (127 steps a side),
    so weights three 8-bit steps apart stay exact and plain min/max holds (7-bit rounds them a third off)."""
    import onnx
    from onnx import numpy_helper

    from edgekit.exporters import get_variant

    ctx = ExportContext(module=SevenBitNet().eval(), input_spec=InputSpec(shape=(1, 3, 32, 32)),
                        calibration=_groups(64, 1), int8_target=TARGET, target=arm64)  # fmt: skip
    model = onnx.load_from_string(get_variant("onnx_int8").build(ctx))
    weights = [
        numpy_helper.to_array(t) for t in model.graph.initializer if t.data_type == onnx.TensorProto.INT8
    ]
    assert weights and max(int(np.abs(w).max()) for w in weights) == 127
    record = ctx.cache["repair:onnx_int8"]
    assert record["chosen"] == "min/max ranges" and record["passed"], record["attempts"]
    assert record["attempts"][0]["sqnr_db"] > 40
    assert not any("reduce_range" in a["step"] for a in record["attempts"])


def test_mse_ranges_pick_a_clip_with_less_error_than_min_max_or_a_fixed_percentile() -> None:
    """A long-tailed activation (Laplace): min/max wastes levels on the tail, 99.99 clips too
    much of it; the MSE choice lies between and beats both (measured: 6.5e-4 vs 8.3e-4, 8.7e-4).
    Far outliers are another matter: clipping three values of 80 in 200,000 costs more squared
    error than it saves, so MSE keeps them and percentile ranges are the step that helps there."""
    from edgekit.compress.ranges import activation_range, quantization_mse

    values = np.random.default_rng(0).laplace(0.0, 1.0, 200_000).astype(np.float32)
    lo, hi = activation_range(values)
    err = quantization_mse(values, lo, hi)
    assert err < 0.9 * quantization_mse(values, float(values.min()), float(values.max()))
    assert err < 0.9 * quantization_mse(values, *activation_range(values, 99.99))
    assert values.min() < lo < 0 < hi < values.max()


class VanishingNet(torch.nn.Module):
    """Features that vanish (a conv with weights of 1e-9) under a head whose bias decides: the
    random-weight 2-class EfficientNet case. Its INT8 input scale is tiny and the int32 bias overflows."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.fc = torch.nn.Linear(8, 2)
        with torch.no_grad():
            self.conv.weight.fill_(1e-9)
            self.conv.bias.zero_()
            self.fc.bias.copy_(torch.tensor([0.02, -0.008]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.relu(self.conv(x)).mean((2, 3)))


def test_an_overflowed_int32_bias_is_named() -> None:
    from edgekit.cli.export_cmd import repair_line

    record = _repair(VanishingNet(), np.abs(_groups(64, 1)))
    assert record["bias_overflow"] == ["fc"]
    line = repair_line("tflite_int8", record)
    assert line is not None and "int32 bias of fc overflowed" in line


def test_error_reduction_for_no_flips_is_the_smallest_factor_that_flips_nothing() -> None:
    from edgekit.exporters.repair import error_reduction_for_no_flips
    from edgekit.spec import OutputKind, OutputSpec

    ref = np.array([[2.0], [0.1], [-0.05], [-3.0]])
    cand = ref + np.array([[0.5], [-0.4], [0.3], [1.0]])  # samples 2 and 3 flip
    logits = OutputSpec()
    f = error_reduction_for_no_flips(ref, cand, logits, 0.5)
    assert f == pytest.approx(6.0, rel=1e-3)  # sample 3's error 0.3 over its margin 0.05 from logit 0
    err = cand - ref
    assert not ((ref + err / (f * 1.001) > 0) != (ref > 0)).any()
    assert ((ref + err / (f * 0.99) > 0) != (ref > 0)).any()
    assert error_reduction_for_no_flips(ref, ref + 0.01, logits, 0.5) == 1.0
    two = OutputSpec(kind=OutputKind.LOGITS, classes=2)  # softmax over two logits: the margin is their gap
    ref2 = np.array([[0.0, 0.2], [1.0, -1.0]])
    cand2 = ref2 + np.array([[0.2, -0.2], [0.0, 0.0]])
    assert error_reduction_for_no_flips(ref2, cand2, two, 0.5) == pytest.approx(2.0, rel=1e-3)


def _attempt(step: str, flips: int, sqnr: float) -> Any:
    from edgekit.exporters.repair import Attempt

    return Attempt(step, flips, 64, sqnr, False, 1.0)


def test_diagnosis_tells_spread_error_from_concentrated_error() -> None:
    from edgekit.exporters.repair import diagnose
    from edgekit.spec import OutputSpec

    rng = np.random.default_rng(0)
    ref = rng.choice([-1.0, 1.0], (64, 1)) * (0.5 + rng.random((64, 1)) * 3.0)  # all 0.5+ from logit 0
    ref[0, 0] = 0.02
    cand = ref + rng.standard_normal((64, 1)) * 0.1
    cand[0, 0] = -0.1  # one flip, 0.02 logit (0.005 score) from the threshold
    spread = [{"added_noise": 1e-3, "layer": f"l{i}"} for i in range(20)]
    found = diagnose(ref, cand, OutputSpec(), 0.5, spread, _attempt("float fallback of 2 layer sites", 1, 22.0),
                     ["a", "b"])  # fmt: skip
    assert found["spread"] and found["ops_losing"] == 20 and found["top4_share"] == pytest.approx(0.2)
    assert found["flips"] == 1 and found["flipped_within"] < 0.01
    assert found["sqnr_for_no_flips_db"] > 22.0 + 10  # the error must shrink more than 3x
    assert "every op would have to stay float" in found["why"] and "kept float: a, b" in found["why"]
    concentrated = [{"added_noise": 1e-2, "layer": "x"}] + [
        {"added_noise": 1e-5, "layer": f"l{i}"} for i in range(20)
    ]
    found = diagnose(ref, cand, OutputSpec(), 0.5, concentrated, _attempt("MSE-optimal ranges", 1, 22.0), [])
    assert (
        not found["spread"] and found["worst_ops"][0] == "x (98%)" and "no layer kept float" in found["why"]
    )
    unmatched = diagnose(ref, cand, OutputSpec(), 0.5, [], _attempt("MSE-optimal ranges", 1, 22.0), [])
    assert not unmatched["spread"] and "the loss is not located" in unmatched["why"]
    line = __import__("edgekit.cli.export_cmd", fromlist=["repair_line"]).repair_line(
        "tflite_int8",
        {
            "attempts": [_attempt("min/max ranges", 1, 22.0).to_dict()],
            "passed": False,
            "chosen": "min/max ranges",
            "diagnosis": found,
        },
    )
    assert line == f"tflite_int8: {found['why']}"


class ClippedNet(torch.nn.Module):
    """Conv -> ReLU6 -> conv -> ReLU -> pooled FC: onnxruntime's quantizer fuses each activation
    into the conv before it."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.a, self.b = torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.Conv2d(8, 8, 1)
        self.fc = torch.nn.Linear(8, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.b(torch.nn.functional.relu6(self.a(x))))
        return self.fc(y.mean((2, 3)))


@pytest.mark.slow
def test_onnx_localisation_compares_every_weight_node_after_its_fused_activation() -> None:
    from edgekit.exporters.onnx import _preprocessed, export_onnx_int8, onnx_localise

    x = _groups(16, 0)
    ctx = ExportContext(module=ClippedNet().eval(), input_spec=InputSpec(shape=(1, 3, 32, 32)), calibration=x)
    rows = onnx_localise(_preprocessed(ctx), export_onnx_int8(ctx), x[:4], top=None)
    # both convs are compared although their QDQ outputs carry the activations' names
    assert sorted(r["op"] for r in rows) == ["Conv", "Conv", "Gemm"]
    # after its rounding and clipping, each fused conv's value is close to the float one
    assert all(15 < r["sqnr_db"] < 200 for r in rows), rows
    assert all(r["added_noise"] >= 0 for r in rows)


class ConstantNet(PooledNet):
    """PooledNet whose logit ignores its features (weights of 1e-9): the same output for every input."""

    def __init__(self) -> None:
        super().__init__()
        with torch.no_grad():
            self.fc.weight.fill_(1e-9)
            self.fc.bias.fill_(0.3)


def test_no_repair_is_spent_on_a_model_that_ignores_its_input(arm64: Any) -> None:
    x = _groups(64, 0)
    for record in (_repair(ConstantNet(), x), _onnx_repair(ConstantNet(), x, arm64)):
        assert [a["step"] for a in record["attempts"]] == ["min/max ranges"]
        if not record["passed"]:  # every later step named as not spent, with why
            assert len(record["skipped"]) >= 4
            assert all("ignores its" in s["why"] for s in record["skipped"]), record["skipped"]


def test_the_repair_search_says_each_step_as_it_starts() -> None:
    """Issue 25: a long repair search is never a silent clock: each step is announced with its
    place, the time so far and, for the learned steps, the bound --int8-effort puts on them."""
    from edgekit.exporters.repair import LEARNED, search

    heard: list[str] = []
    steps = [("MSE-optimal ranges", lambda: b"a"), ("bias correction", lambda: b"b"), (LEARNED, lambda: b"c")]
    model, attempts, skipped = search(
        steps, lambda m: (0, 8, 40.0, m == b"c"), skip=lambda s: "n/a" if s == "bias correction" else None,
        say=heard.append, effort=120,
    )  # fmt: skip
    assert model == b"c" and [a.step for a in attempts] == ["MSE-optimal ranges", LEARNED]
    assert skipped == [{"step": "bias correction", "why": "n/a"}]
    assert heard[0].startswith("INT8 repair: MSE-optimal ranges (step 1 of 3, 0 s so far)")
    assert heard[1].startswith(f"INT8 repair: {LEARNED} (step 3 of 3,") and heard[1].endswith(
        "at most 120 s for the learned steps)"
    )
