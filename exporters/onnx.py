"""ONNX variants: torch.onnx (dynamo) export, FP16 cast and INT8 QDQ static quantization.

INT8 uses unsigned activations and signed per-channel weights (U8S8): on x86 ONNX
Runtime runs signed-activation QDQ about 3x slower. Weights use a 7-bit range
(``reduce_range``): on x86 CPUs without VNNI, U8S8 kernels saturate their int16
intermediates; on the bundled detector full-range weights flipped 9 of 64
decisions (SQNR 6.8 dB) and 7-bit weights none (SQNR 30 dB). MinMax calibration is
used because Percentile held 12 GB for 128 samples on a 4M-parameter model.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from edgekit._capture import captured_output
from edgekit.errors import ExportError
from edgekit.exporters.registry import ExportContext, declare_flag, register

_OPSET = 18


def float_onnx(ctx: ExportContext) -> bytes:
    """The FP32 ONNX model (NCHW input named ``input``), exported once per run."""
    return ctx.once("onnx_float", lambda: _export(ctx))


def _export(ctx: ExportContext) -> bytes:
    import torch

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp, "model.onnx")
        try:
            with captured_output():
                torch.onnx.export(
                    ctx.module,
                    (ctx.sample_input(),),
                    str(path),
                    input_names=["input"],
                    output_names=["output"],
                    opset_version=_OPSET,
                    dynamo=True,
                    external_data=False,
                )
        except Exception as exc:
            raise ExportError(f"torch.onnx.export failed: {type(exc).__name__}: {str(exc)[:300]}") from exc
        return path.read_bytes()


class _Reader:
    """onnxruntime CalibrationDataReader over the calibration batches."""

    def __init__(self, name: str, batches: list[np.ndarray]) -> None:
        self._it = iter([{name: b} for b in batches])

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._it, None)

    def __iter__(self) -> Iterator[dict[str, np.ndarray]]:  # qdq_loss_debug iterates the reader
        return self._it


declare_flag("onnx", "Also export ONNX (FP32; FP16/INT8 with --fp16/--int8).")


@register("onnx_fp32", format="onnx", precision="fp32", suffix="fp32", flags=("onnx",))
def export_onnx_fp32(ctx: ExportContext) -> bytes:
    """Float32 ONNX (torch.onnx dynamo exporter)."""
    return float_onnx(ctx)


@register("onnx_fp16", format="onnx", precision="fp16", suffix="fp16", flags=("onnx", "fp16"))
def export_onnx_fp16(ctx: ExportContext) -> bytes:
    """Float16 ONNX with float32 inputs and outputs kept."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = onnx.load_from_string(float_onnx(ctx))
    with captured_output():
        half = convert_float_to_float16(model, keep_io_types=True)
    return bytes(half.SerializeToString())


@register(
    "onnx_int8",
    format="onnx",
    precision="int8",
    suffix="int8",
    needs_calibration=True,
    flags=("onnx", "int8"),
)
def export_onnx_int8(ctx: ExportContext) -> bytes:
    """INT8 QDQ static (per-channel 7-bit QInt8 weights, QUInt8 activations, MinMax calibration;
    with a target in the context, Percentile then Entropy calibration, then float Conv/Gemm
    nodes named by localisation, when MinMax misses it)."""
    if ctx.int8_target is None:
        return _onnx_int8(ctx, "MinMax")
    from edgekit.exporters.repair import search
    from edgekit.parity import compare
    from edgekit.runners.base import run_batch
    from edgekit.runners.onnxruntime import OnnxRuntimeRunner

    x, ref = ctx.check_set()
    target = ctx.int8_target
    state: dict[str, Any] = {"offenders": [], "scored": [], "method": "MinMax"}

    def measure(model: bytes) -> tuple[int, int, float, bool]:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp, "m.onnx")
            path.write_bytes(model)
            r = compare(ref, run_batch(OnnxRuntimeRunner(path), x), ctx.output, target, ctx.threshold)
        state["scored"].append((r.flips, -r.sqnr_db, state["method"]))
        return r.flips, r.samples, r.sqnr_db, r.passed

    def calibrated(method: str) -> Any:
        def build() -> bytes:
            state["method"] = method
            model = _onnx_int8(ctx, method)
            state.setdefault("plain", model)
            return model

        return build

    def fallback(k: int) -> Any:
        def build() -> bytes:
            if not state["offenders"]:
                state["offenders"] = onnx_localise(_preprocessed(ctx), state["plain"], x[:8], top=4)
            state["method"] = min(state["scored"], key=lambda s: (s[0], s[1]))[2]
            return _onnx_int8(ctx, state["method"], exclude=[o["node"] for o in state["offenders"][:k]])

        return build

    steps: list[tuple[str, Any]] = [
        (f"{m} calibration", calibrated(m)) for m in ("MinMax", "Percentile", "Entropy")
    ]
    steps += [(f"float fallback of {k} node{'s' * (k > 1)}", fallback(k)) for k in (1, 2, 4)]
    model, attempts = search(steps, measure)
    if not attempts[0].passed and not state["offenders"]:
        state["offenders"] = onnx_localise(_preprocessed(ctx), state["plain"], x[:8], top=4)
    chosen = next((a for a in attempts if a.passed), None)
    ctx.cache["repair:onnx_int8"] = {
        "check_set": f"{len(x)} calibration images",
        "attempts": [a.to_dict() for a in attempts],
        "chosen": chosen.step if chosen else min(attempts, key=lambda a: (a.flips, -a.sqnr_db)).step,
        "passed": chosen is not None,
        "offenders": state["offenders"],
    }
    return model


def _preprocessed(ctx: ExportContext) -> bytes:
    """The float model after onnxruntime's quantization pre-processing (what quantize_static reads)."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    def build() -> bytes:
        with tempfile.TemporaryDirectory() as tmp:
            src, pre = Path(tmp, "f.onnx"), Path(tmp, "p.onnx")
            src.write_bytes(float_onnx(ctx))
            with captured_output():
                quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
            return pre.read_bytes()

    return ctx.once("onnx_preprocessed", build)


def onnx_localise(
    float_model: bytes, qdq_model: bytes, inputs: np.ndarray, top: int = 5
) -> list[dict[str, Any]]:
    """The Conv/Gemm/MatMul nodes that lose the most SQNR (onnxruntime's QDQ debugging helpers),
    charged as in :func:`edgekit.exporters.repair.localise`."""
    import onnx
    from onnxruntime.quantization.qdq_loss_debug import (
        collect_activations,
        modify_model_output_intermediate_tensors,
    )

    from edgekit.parity import sqnr_db

    kinds = ("Conv", "Gemm", "MatMul")
    graph = onnx.load_from_string(float_model).graph
    nodes = [(n.name, n.op_type, n.output[0]) for n in graph.node if n.op_type in kinds and n.output]
    name = graph.input[0].name
    with tempfile.TemporaryDirectory() as tmp, captured_output():
        acts = {}
        for tag, model in (("float", float_model), ("qdq", qdq_model)):
            src, aug = Path(tmp, f"{tag}.onnx"), Path(tmp, f"{tag}.aug.onnx")
            src.write_bytes(model)
            modify_model_output_intermediate_tensors(str(src), str(aug), op_types_for_saving=list(kinds))
            acts[tag] = collect_activations(
                str(aug), _Reader(name, [inputs[i : i + 1] for i in range(len(inputs))])
            )
    rows: list[dict[str, Any]] = []
    previous = 200.0
    for node, kind, tensor in nodes:
        # in the QDQ graph a node's output keeps its name, or becomes the input of its QuantizeLinear
        quant = acts["qdq"].get(tensor) or acts["qdq"].get(f"{tensor}_QuantizeLinear_Input")
        ref = acts["float"].get(tensor)
        if not quant or not ref:
            continue
        sqnr = min(sqnr_db(np.concatenate(ref), np.concatenate(quant)), 200.0)
        rows.append({"op": kind, "node": node, "layer": node, "tensor": tensor, "sqnr_db": round(sqnr, 2),
                     "loss_db": round(max(previous - sqnr, 0.0), 2)})  # fmt: skip
        previous = sqnr
    return sorted(rows, key=lambda r: -r["loss_db"])[:top]


def _onnx_int8(ctx: ExportContext, method: str, exclude: list[str] | None = None) -> bytes:
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    batches = ctx.calibration_batches()
    extra = {"CalibPercentile": 99.99} if method == "Percentile" else {}
    with tempfile.TemporaryDirectory() as tmp:
        pre, dst = Path(tmp, "p.onnx"), Path(tmp, "q.onnx")
        pre.write_bytes(_preprocessed(ctx))
        reader: Any = _Reader("input", batches)
        try:
            with captured_output():
                quantize_static(
                    str(pre),
                    str(dst),
                    reader,
                    quant_format=QuantFormat.QDQ,
                    per_channel=True,
                    activation_type=QuantType.QUInt8,
                    weight_type=QuantType.QInt8,
                    reduce_range=True,
                    calibrate_method=getattr(CalibrationMethod, method),
                    extra_options=extra,
                    nodes_to_exclude=list(exclude or []),
                )
        except Exception as exc:
            raise ExportError(
                f"onnxruntime quantize_static failed: {type(exc).__name__}: {str(exc)[:300]}"
            ) from exc
        return dst.read_bytes()
