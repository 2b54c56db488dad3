"""ONNX variants: torch.onnx (dynamo) export, FP16 cast and INT8 QDQ static quantization.

INT8 uses unsigned activations and signed per-channel weights (U8S8) at their full 8-bit range,
configured for the phone, not the host: ARM kernels (sdot/i8mm) do not saturate, so 8-bit
weights are what a phone runs best (the sample: 0/256 flips, 28.5 dB on arm64). onnxruntime's
x86 U8S8 kernels without VNNI saturate their int16 intermediates on 8-bit weights (the same
file: 12/256 flips, 12.8 dB on an AVX2 CPU): the old 7-bit ``reduce_range`` work-around made
that host's verdict pass and the phone's model worse (min/max: 29.5 dB with 7-bit weights,
30.8 dB with 8-bit on arm64; benchmarks/results/arm64.md). So the configuration never depends on the host,
the repair search is judged on the arm64 kernels when the environment exists
(``ExportContext.target``), and a saturating host without it is named in the summary.
MinMax calibration is used because
onnxruntime's Percentile held 12 GB for 128 samples on a 4M-parameter model; narrower
ranges come from edgekit's own bounded sample of each tensor, as ``TensorQuantOverrides``.
"""

from __future__ import annotations

import dataclasses
import tempfile
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
    """INT8 QDQ static (per-channel 8-bit QInt8 weights, QUInt8 activations, MinMax calibration);
    with a repair aim in the context and MinMax missing it: percentile, then MSE-optimal
    activation ranges, then float Conv/Gemm nodes of the layers whose INT8 weights hurt most
    (see :mod:`edgekit.exporters.repair`), each judged on the arm64 kernels when they are at hand."""
    if ctx.int8_target is None:
        return quantize_int8(ctx)
    from edgekit.compress.ranges import activation_range
    from edgekit.exporters.repair import (
        ACT_STEPS,
        DISTILLED,
        LEARNED,
        activation_equalized,
        activation_skip,
        cached_sites,
        degenerate_reference,
        diagnose,
        fallback_name,
        fallback_skip,
        learn_from_better,
        learned_module,
        learned_skip,
        record,
        repair_aim,
        search,
        weak_sites,
    )
    from edgekit.parity import compare
    from edgekit.runners.base import run_batch
    from edgekit.runners.onnxruntime import OnnxRuntimeRunner

    x, ref = ctx.check_set()
    aim = repair_aim(ctx.int8_target)
    # "config": the activation ranges of the step being measured; "scored": how each such
    # configuration measured, so later steps build on the best
    state: dict[str, Any] = {"scored": [], "config": None, "localised": None, "changes": {},
                             "ranges": {}}  # fmt: skip

    def outputs(model: bytes) -> np.ndarray:
        if ctx.target is not None:  # the phone's kernels: what the verdict will be taken on
            return np.asarray(ctx.target.run_bytes("onnx", model, x), dtype=np.float32)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp, "m.onnx")
            path.write_bytes(model)
            return run_batch(OnnxRuntimeRunner(path), x)

    def measure(model: bytes) -> tuple[int, int, float, bool]:
        r = compare(ref, outputs(model), ctx.output, aim, ctx.threshold)
        if state["config"] is not None:
            state["scored"].append((r.sqnr_db, state["config"]))
            state["config"] = None
        if state.get("equalized") is not None:  # the learned rungs start from it if it did better
            module, ranges = state.pop("equalized")
            best = max((s for s, _ in state["scored"]), default=float("-inf"))
            learn_from_better(state, r.sqnr_db, best, (module, ranges))
        return r.flips, r.samples, r.sqnr_db, r.passed

    def best() -> str | None:
        """The activation ranges of the configuration that measured best so far."""
        return max(state["scored"], key=lambda s: s[0])[1][0]  # type: ignore[no-any-return]

    def plain() -> bytes:
        state["config"] = (None,)
        state["plain"] = quantize_int8(ctx)
        return state["plain"]  # type: ignore[no-any-return]

    def ranged(percentile: float | None) -> Any:
        def build() -> bytes:
            if "samples" not in state:
                state["samples"] = onnx_activation_samples(_preprocessed(ctx), x)
            key = "mse" if percentile is None else f"p{percentile}"
            state["ranges"][key] = {n: activation_range(v, percentile) for n, v in state["samples"].items()}
            state["config"] = (key,)
            return quantize_int8(ctx, ranges=state["ranges"][key])

        return build

    def act_equalized(step: str) -> Any:
        def build() -> bytes:
            module, changes = activation_equalized(ctx, step)
            state["changes"][step] = changes
            # the rescaled channels move the activation ranges: sample the rescaled model's own
            sub = dataclasses.replace(ctx, module=module, cache={})
            samples = onnx_activation_samples(_preprocessed(sub), x)
            ranges = {n: activation_range(v, None) for n, v in samples.items()}
            state["equalized"] = (module, ranges)
            return quantize_int8(sub, ranges=ranges)

        return build

    def learned(step: str) -> Any:
        def build() -> bytes:
            # onnxruntime folds BatchNorm in its pre-processing and rounds the folded weights to
            # nearest on the same symmetric per-channel grid: learned grid points come through
            sub = dataclasses.replace(ctx, module=learned_module(ctx, state, step), cache={})
            ranges = state.get("learn_ranges") or state["ranges"].get(best())
            if ranges and not set(ranges) <= set(onnx_activation_samples(_preprocessed(sub), x[:1])):
                ranges = None  # the re-exported graph names its tensors otherwise: its own min/max
            state["config"] = (None,)
            return quantize_int8(sub, ranges=ranges)

        return build

    def sites() -> list[Any]:
        found, state["order"] = cached_sites(ctx, x, levels=127)  # 8-bit weights: 127 steps a side
        return found  # type: ignore[no-any-return]

    def fallback(k: int) -> Any:
        def build() -> bytes:
            chosen = weak_sites(sites(), k)
            nodes = layer_nodes(_preprocessed(ctx), state["order"])
            layers = sorted({layer for site in chosen for layer in site.layers() if layer in nodes})
            exclude = [nodes[layer] for layer in layers]
            if not exclude:  # the graphs' weight ops do not line up: rank ONNX's own nodes instead
                if state["localised"] is None:
                    state["localised"] = onnx_localise(_preprocessed(ctx), state["plain"], x[:8], top=8)
                exclude = layers = [o["node"] for o in state["localised"][:k]]
            state["changes"][fallback_name(k)] = {"float_layers": layers}
            key = best()
            return quantize_int8(ctx, exclude=exclude, ranges=state["ranges"].get(key))

        return build

    # onnxruntime's own Percentile and Entropy calibrations are not used: ranges from one bounded
    # sample of every tensor (as for TFLite) cost one pass instead of ~20 s each on CREPE, and
    # Entropy gave MinMax's result to the digit on both real networks of benchmarks/int8_real.py
    steps: list[tuple[str, Any]] = [("min/max ranges", plain), ("percentile 99.99 ranges", ranged(99.99)),
                                    ("MSE-optimal ranges", ranged(None))]  # fmt: skip
    steps += [(s, act_equalized(s)) for s in ACT_STEPS]
    steps += [(LEARNED, learned(LEARNED)), (DISTILLED, learned(DISTILLED))]
    steps += [(fallback_name(k), fallback(k)) for k in (1, 2, 4)]

    degenerate = degenerate_reference(ref)

    def skip(step: str) -> str | None:
        if degenerate and step != steps[0][0]:
            return degenerate
        if learned_skip(ctx, step) or activation_skip(ctx, step):
            return learned_skip(ctx, step) or activation_skip(ctx, step)
        return fallback_skip(step, sites()) if step.startswith("float") else None

    model, attempts, skipped = search(steps, measure, skip, say=ctx.say, effort=ctx.int8_effort)
    offenders = [] if attempts[0].passed else (state["localised"] or [s.to_dict() for s in sites()])
    entry = record(attempts, skipped, aim, len(x), state["changes"], offenders)
    if not entry["passed"]:
        best_attempt = next(a for a in attempts if a.step == entry["chosen"])
        profile = onnx_localise(_preprocessed(ctx), model, x[:8], top=None)
        # PyTorch layer paths where the graphs' weight ops line up, node names otherwise
        layer_of = {
            node: layer for layer, node in layer_nodes(_preprocessed(ctx), state.get("order") or []).items()
        }
        profile = [{**row, "layer": layer_of.get(row["node"], row["node"])} for row in profile]
        entry["diagnosis"] = diagnose(ref, outputs(model), ctx.output, ctx.threshold, profile, best_attempt,
                                      (entry["changes"] or {}).get("float_layers") or [])  # fmt: skip
    ctx.cache["repair:onnx_int8"] = entry
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


def tensor_values(model: bytes, names: list[str], inputs: np.ndarray) -> dict[str, np.ndarray]:
    """The named float tensors of ``model`` (made graph outputs) for each sample of ``inputs``,
    one row per sample; names the graph does not compute are left out."""
    import onnx
    import onnxruntime as ort

    m = onnx.load_from_string(model)
    computed = {o for node in m.graph.node for o in node.output}
    outputs = {o.name for o in m.graph.output}
    wanted = list(dict.fromkeys(n for n in names if n in computed))
    for name in wanted:
        if name not in outputs:
            m.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    if not wanted:
        return {}
    with captured_output():
        sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    feed = sess.get_inputs()[0].name
    rows: dict[str, list[np.ndarray]] = {n: [] for n in wanted}
    for i in range(len(inputs)):
        x = np.ascontiguousarray(inputs[i : i + 1], dtype=np.float32)
        for name, v in zip(wanted, sess.run(wanted, {feed: x}), strict=True):
            rows[name].append(np.asarray(v, np.float32).reshape(1, -1))
    return {n: np.concatenate(v) for n, v in rows.items()}


def onnx_localise(
    float_model: bytes, qdq_model: bytes, inputs: np.ndarray, top: int | None = 5
) -> list[dict[str, Any]]:
    """The Conv/Gemm/MatMul nodes that add the most INT8 noise, charged as in
    :func:`edgekit.exporters.repair.localise` (all of them with ``top=None``)."""
    import onnx

    from edgekit.exporters.repair import added_noise
    from edgekit.parity import sqnr_db

    kinds = ("Conv", "Gemm", "MatMul")
    graph = onnx.load_from_string(float_model).graph
    consumers: dict[str, list[Any]] = {}
    for n in graph.node:
        for tensor in n.input:
            consumers.setdefault(tensor, []).append(n)

    def compared(n: Any) -> str:
        # the quantizer fuses a Relu/Clip into the Conv before it (the QDQ Conv's output is the
        # activation's), so both graphs are compared after the activation
        after = consumers.get(n.output[0], [])
        fused = len(after) == 1 and after[0].op_type in ("Relu", "Clip")
        return str(after[0].output[0]) if fused else str(n.output[0])

    nodes = [(n.name, n.op_type, compared(n)) for n in graph.node if n.op_type in kinds and n.output]
    # in the QDQ graph a node's value is what its QuantizeLinear/DequantizeLinear pair gives (that
    # rounding, and the clipping of a fused activation, is part of the node's INT8 error); an
    # excluded node's output keeps its name
    candidates = {t: (f"{t}_DequantizeLinear_Output", t, f"{t}_QuantizeLinear_Input") for _, _, t in nodes}
    ref = tensor_values(float_model, [t for _, _, t in nodes], inputs)
    quant = tensor_values(qdq_model, [c for names in candidates.values() for c in names], inputs)
    rows: list[dict[str, Any]] = []
    previous = 200.0
    for node, kind, tensor in nodes:
        q = next((quant[c] for c in candidates[tensor] if c in quant), None)
        f = ref.get(tensor)
        if q is None or f is None or q.shape != f.shape:
            continue
        sqnr = min(sqnr_db(f, q), 200.0)
        rows.append({"op": kind, "node": node, "layer": node, "tensor": tensor, "sqnr_db": round(sqnr, 2),
                     "loss_db": round(max(previous - sqnr, 0.0), 2), "added_noise": added_noise(previous, sqnr)})  # fmt: skip
        previous = sqnr
    return sorted(rows, key=lambda r: -r["added_noise"])[:top]


def layer_nodes(float_model: bytes, order: list[str]) -> dict[str, str]:
    """PyTorch layer path -> ONNX Conv/Gemm/MatMul node, by position when both graphs have as many
    weight ops (the exporter fuses BatchNorm into Conv under BatchNorm's name, so names do not line up)."""
    import onnx

    graph = onnx.load_from_string(float_model).graph
    nodes = [n.name for n in graph.node if n.op_type in ("Conv", "Gemm", "MatMul")]
    return dict(zip(order, nodes, strict=True)) if len(nodes) == len(order) else {}


def saturating_host() -> str | None:
    """Why this host's onnxruntime INT8 parity is not the phone's, or None.

    onnxruntime's x86 kernels without VNNI multiply u8 activations by s8 weights with
    pairwise 16-bit saturation. Phones (ARM) and VNNI hosts do not saturate; the export is the
    same everywhere, so on such a host only the arm64 run judges it as the phone runs it.
    """
    from edgekit.hostinfo import host_cpu

    info = host_cpu()
    if info["machine"] in ("x86_64", "AMD64") and not {"avx512_vnni", "avx_vnni"} & set(info["isa"]):
        return "this x86 host has no VNNI: onnxruntime's 8-bit weight kernels saturate here"
    return None


def onnx_activation_samples(model: bytes, inputs: np.ndarray) -> dict[str, np.ndarray]:
    """A bounded sample (at most 8192 values per input) of every float tensor a node of ``model``
    computes, on ``inputs``; the graph's outputs are left out (they keep min/max)."""
    import onnx
    import onnxruntime as ort

    m = onnx.load_from_string(model)
    floats = {vi.name for vi in m.graph.value_info if vi.type.tensor_type.elem_type == onnx.TensorProto.FLOAT}
    outputs = {o.name for o in m.graph.output}
    names = [o for node in m.graph.node for o in node.output if o in floats and o not in outputs]
    for name in names:
        m.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    with captured_output():
        sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    feed = sess.get_inputs()[0].name
    rng = np.random.default_rng(0)
    samples: dict[str, list[np.ndarray]] = {feed: [], **{n: [] for n in names}}
    for i in range(len(inputs)):
        x = np.ascontiguousarray(inputs[i : i + 1], dtype=np.float32)
        values = dict(zip(names, sess.run(names, {feed: x}), strict=True))
        values[feed] = x
        for name, v in values.items():
            flat = np.asarray(v, dtype=np.float32).ravel()
            samples[name].append(rng.choice(flat, 8192, replace=False) if flat.size > 8192 else flat)
    return {n: np.concatenate(v) for n, v in samples.items() if v}


def kept_float_by_onnxruntime(model: bytes) -> list[str]:
    """Nodes onnxruntime's QDQ quantizer cannot quantize with per-channel weights: a
    LayerNormalization whose scale or bias has more than one dimension (a LayerNorm over several
    axes, as PESTO's ``LayerNorm([1, 264])``). onnxruntime 1.32's int32-bias scale check indexes
    such a bias per channel and fails ("The truth value of an array with more than one element
    is ambiguous"), which took the whole INT8 variant down; these nodes stay float instead."""
    import onnx

    m = onnx.load_from_string(model)
    ranks = {i.name: len(i.dims) for i in m.graph.initializer}
    return [
        n.name
        for n in m.graph.node
        if n.op_type == "LayerNormalization" and any(ranks.get(i, 0) > 1 for i in list(n.input)[1:])
    ]


def quantize_int8(
    ctx: ExportContext,
    exclude: list[str] | None = None,
    reduce_range: bool = False,
    ranges: dict[str, tuple[float, float]] | None = None,
) -> bytes:
    """One INT8 QDQ model: MinMax calibration (or ``ranges`` per tensor), ``exclude`` nodes kept float.

    ``reduce_range`` (7-bit weights) is never what edgekit exports; benchmarks use it to show
    what the old host-driven choice cost on the phone.
    """
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    batches = ctx.calibration_batches()
    extra: dict[str, Any] = {}
    if ranges:
        extra["TensorQuantOverrides"] = {
            n: [{"rmin": np.float32(lo), "rmax": np.float32(hi)}] for n, (lo, hi) in ranges.items()
        }
    with tempfile.TemporaryDirectory() as tmp:
        pre, dst = Path(tmp, "p.onnx"), Path(tmp, "q.onnx")
        preprocessed = _preprocessed(ctx)
        pre.write_bytes(preprocessed)
        exclude = [*(exclude or []), *kept_float_by_onnxruntime(preprocessed)]
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
                    reduce_range=reduce_range,
                    calibrate_method=CalibrationMethod.MinMax,
                    extra_options=extra,
                    nodes_to_exclude=list(exclude or []),
                )
        except Exception as exc:
            raise ExportError(
                f"onnxruntime quantize_static failed: {type(exc).__name__}: {str(exc)[:300]}"
            ) from exc
        return dst.read_bytes()
