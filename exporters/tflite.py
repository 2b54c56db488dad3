"""LiteRT/TFLite variants: float conversion with litert-torch, quantization with ai-edge-quantizer.

Why ai-edge-quantizer on the float model (not litert-torch's PT2E path) by default:
see ``benchmarks/quant_paths.py`` and the README; in short, it calibrates on the
converted graph the phone runs, and its per-op recipe lets HARD_SWISH stay float
so XNNPACK keeps the whole INT8 graph in one partition.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np

from edgekit._capture import captured_output
from edgekit._io import interrupts_held
from edgekit.errors import ExportError, UnsupportedOpError, UsageError
from edgekit.exporters import aeq
from edgekit.exporters.registry import ExportContext, declare_flag, register
from edgekit.spec import Layout

# ai-edge-quantizer draws tqdm bars on stderr; we show our own progress instead.
os.environ.setdefault("TQDM_DISABLE", "1")

declare_flag("fp16", "Add float16-weight variants.")
declare_flag("int8", "Add static INT8 variants (needs --calib).")
declare_flag("int8_dynamic", "Add a dynamic-range INT8 TFLite variant.")
declare_flag("int8_io", "Add a static INT8 TFLite variant with int8 input/output.")
declare_flag("sparse", "Add sparse-storage TFLite variants (FP32, FP16, INT8 weight-only) of a pruned model.")


def _layer_of(module: Any, op: str) -> str:
    """Best effort: the module path of the first FX node calling ``op``."""
    try:
        import torch

        ep = torch.export.export(module, (torch.zeros(1, 3, 8, 8),), strict=False)
    except Exception:
        return "unknown layer"
    for node in ep.graph.nodes:
        if op in str(node.target):
            stack = node.meta.get("nn_module_stack") or {}
            if stack:
                path = str(list(stack.values())[-1][0])
                return f"layer {path!r}" if path else "the model's own forward()"
    return "an unknown layer"


def float_tflite(ctx: ExportContext) -> bytes:
    """The FP32 TFLite model, converted once per export and shared by every TFLite variant."""
    return ctx.once("tflite_float", lambda: _convert(ctx))


def _convert(ctx: ExportContext, module: Any = None) -> bytes:
    import torch

    # its import prints optional-kernel load failures; an interrupt inside its native
    # initialisers aborts the interpreter, so it waits until the import is done
    with captured_output(), interrupts_held():
        import litert_torch

    sample = ctx.sample_input()
    module = ctx.module if module is None else module
    if ctx.input_spec.layout is Layout.NHWC:
        module = litert_torch.to_channel_last_io(module, args=[0])
        sample = sample.permute(0, 2, 3, 1).contiguous()
    try:
        with captured_output() as cap, torch.inference_mode(False):
            edge = litert_torch.convert(module, (sample,))
            data = bytes(edge.model_content())
    except Exception as exc:
        text = f"{exc} {cap.text}"
        match = re.search(r"(aten[.:][\w.]+)", text)
        if match:
            op = match.group(1)
            raise UnsupportedOpError(
                f"the LiteRT converter rejected {op} in {_layer_of(ctx.module, op.split('.')[-2] if '.' in op else op)}; "
                "replace that layer with supported ops or register a decomposition"
            ) from exc
        raise ExportError(f"litert-torch conversion failed: {type(exc).__name__}: {str(exc)[:300]}") from exc
    ctx.log.append(cap.tail(3))
    return data


def calibration_batches(ctx: ExportContext) -> list[Any]:
    """The context's calibration batches in the layout of the converted graph."""
    batches = ctx.calibration_batches()
    if ctx.input_spec.layout is Layout.NHWC:
        batches = [b.transpose(0, 2, 3, 1).copy() for b in batches]
    return batches


def quantize_float(ctx: ExportContext, recipe: Any) -> bytes:
    """The float TFLite model quantized with an ai-edge-quantizer recipe, calibrated on the context's data."""
    has_data = ctx.calibration is not None and len(ctx.calibration) > 0
    batches = calibration_batches(ctx) if has_data else None
    return aeq.quantize(float_tflite(ctx), recipe, batches, num_threads=ctx.num_threads)


def static_int8(ctx: ExportContext, float_io: bool = True, label: str = "tflite_int8") -> bytes:
    """Full-integer INT8 (per-channel weights) with edgekit's recipe (see :mod:`edgekit.exporters.aeq`).

    With ``float_io`` the graph inputs/outputs stay float32 (QUANTIZE/DEQUANTIZE at the
    edges), which is what most apps feed; otherwise they are int8. With a target in the
    context, the repair search of :mod:`edgekit.exporters.repair` runs when plain min/max
    calibration misses it; what it did is left in ``ctx.cache["repair:<label>"]``.
    """
    if ctx.int8_target is None:
        return quantize_float(ctx, _int8_recipe(ctx, float_io))
    return _repaired_int8(ctx, float_io, label)


def _int8_recipe(ctx: ExportContext, float_io: bool) -> Any:
    """edgekit's static INT8 recipe for this model: sign activations and their inputs stay float."""
    return aeq.static_int8_recipe(float_io=float_io, float_tensors=aeq.sign_inputs(float_tflite(ctx)))


def step_name(cle: bool) -> str:
    """The repair step that bias-corrects (after equalizing, with ``cle``) the PyTorch graph."""
    return "cross-layer equalization + bias correction" if cle else "bias correction"


def _repaired_int8(ctx: ExportContext, float_io: bool, label: str) -> bytes:
    from edgekit.exporters.repair import (
        ACT_STEPS,
        DISTILLED,
        LEARNED,
        activation_equalized,
        activation_skip,
        cached_sites,
        degenerate_reference,
        diagnose,
        equalization_gain,
        fallback_name,
        fallback_skip,
        int32_bias_overflow,
        layer_tensors,
        learn_from_better,
        learned_module,
        learned_skip,
        localise,
        record,
        repair_aim,
        search,
        weak_sites,
    )
    from edgekit.parity import compare
    from edgekit.runners.base import run_batch
    from edgekit.runners.litert import LiteRTRunner

    base = float_tflite(ctx)
    batches = calibration_batches(ctx)
    recipe = _int8_recipe(ctx, float_io)
    minmax = aeq.calibrate(base, recipe, batches, ctx.num_threads)
    x, ref = ctx.check_set()
    x_run = x if ctx.input_spec.layout is Layout.NCHW else np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    assert ctx.int8_target is not None
    aim = repair_aim(ctx.int8_target)
    # "pending": the ranges a range step just used, kept with how they measured for later steps;
    # "changes": what each step changed in the model, for the manifest entry of the chosen one
    state: dict[str, Any] = {"pending": None, "sites": None, "ranges": [], "changes": {}, "localised": None}

    def measure(model: bytes) -> tuple[int, int, float, bool]:
        r = compare(ref, run_batch(LiteRTRunner(model), x_run), ctx.output, aim, ctx.threshold)
        if state["pending"] is not None:
            state["ranges"].append((r.sqnr_db, state["pending"]))
            state["pending"] = None
        if state.get("equalized") is not None:  # the learned rungs start from it if it did better
            module, eq_base, qsvs = state.pop("equalized")
            best = max((s for s, _ in state["ranges"]), default=float("-inf"))
            learn_from_better(state, r.sqnr_db, best, (module, (qsvs, eq_base)))
        return r.flips, r.samples, r.sqnr_db, r.passed

    def best_ranges() -> Any:
        return max(state["ranges"], key=lambda s: s[0])[1]

    def samples() -> dict[str, np.ndarray]:
        if "samples" not in state:
            state["samples"] = aeq.activation_samples(base, minmax, batches[:64])
        return state["samples"]  # type: ignore[no-any-return]

    def ranges(percentile: float | None) -> Callable[[], bytes]:
        def build() -> bytes:
            state["pending"] = aeq.narrowed_qsvs(minmax, samples(), percentile)
            return aeq.quantize(base, recipe, qsvs=state["pending"])

        return build

    def plain() -> bytes:
        state["pending"] = minmax
        state["plain"] = aeq.quantize(base, recipe, qsvs=minmax)
        return state["plain"]  # type: ignore[no-any-return]

    def corrected(cle: bool) -> Callable[[], bytes]:
        def build() -> bytes:
            from edgekit.compress.equalize import equalize

            module, ranges_of = ctx.module, (base, best_ranges())
            changes: dict[str, Any] = {}
            if cle:
                module, report = equalize(module, ctx.sample_input(), bias_correction=False)
                changes["equalized_pairs"] = len(report.pairs)
                # equalization moves activation ranges: calibrate the equalized float model
                equalized_base = _convert(ctx, module)
                ranges_of = (equalized_base, aeq.calibrate(equalized_base, recipe, batches, ctx.num_threads))
            module, report = equalize(module, ctx.sample_input(), ctx.calibration_batches()[:64], cle=False)
            changes.update(bias_corrected=len(report.corrected), max_bias_shift=round(report.max_shift, 6))
            state["changes"][step_name(cle)] = changes
            corrected_base = _convert(ctx, module)
            # activation ranges from the uncorrected model: its activations are what the INT8
            # model computes, while the corrected float model's are shifted by the correction
            own = aeq.calibrate(corrected_base, recipe, batches[:1], ctx.num_threads)
            qsvs = aeq.transplant_ranges(ranges_of[1], ranges_of[0], own, corrected_base)
            return aeq.quantize(corrected_base, recipe, qsvs=qsvs)

        return build

    def act_equalized(step: str) -> Callable[[], bytes]:
        def build() -> bytes:
            module, changes = activation_equalized(ctx, step)
            state["changes"][step] = changes
            # the rescaled channels move the activation ranges: calibrate the rescaled float model
            eq_base = _convert(ctx, module)
            eq_minmax = aeq.calibrate(eq_base, recipe, batches, ctx.num_threads)
            qsvs = aeq.narrowed_qsvs(
                eq_minmax, aeq.activation_samples(eq_base, eq_minmax, batches[:64]), None
            )
            state["equalized"] = (module, eq_base, qsvs)
            return aeq.quantize(eq_base, recipe, qsvs=qsvs)

        return build

    def learned(step: str) -> Callable[[], bytes]:
        def build() -> bytes:
            # the converter folds BatchNorm and rounds the folded weights to nearest: weights
            # already on the learned grid points come through unchanged (tests read them back)
            learned_base = _convert(ctx, learned_module(ctx, state, step))
            own = aeq.calibrate(learned_base, recipe, batches[:1], ctx.num_threads)
            src_qsvs, src = state.get("learn_ranges", (best_ranges(), base))
            qsvs = aeq.transplant_ranges(src_qsvs, src, own, learned_base)
            return aeq.quantize(learned_base, recipe, qsvs=qsvs)

        return build

    def sites() -> list[Any]:
        if state["sites"] is None:
            state["sites"], state["order"] = cached_sites(ctx, x)
        return state["sites"]  # type: ignore[no-any-return]

    def fallback(k: int) -> Callable[[], bytes]:
        def build() -> bytes:
            chosen = weak_sites(sites(), k)
            tensors = layer_tensors(base, state["order"])
            layers = sorted({layer for site in chosen for layer in site.layers() if layer in tensors})
            keep = [tensors[layer] for layer in layers]
            # on the uncorrected model: a bias correction assumes its layer runs INT8, so on a
            # layer kept float it over-corrects (measured on MobileNetV2: 9.8 dB instead of 24.5)
            if not keep:  # no layer maps to a TFLite op: rank the TFLite graph's own ops instead
                if state["localised"] is None:
                    state["localised"] = localise(base, state["plain"], x_run[:8], top=8)
                layers = [o["layer"] for o in state["localised"][:k]]
                keep = [o["tensor"] for o in state["localised"][:k]]
            state["changes"][fallback_name(k)] = {"float_layers": layers}
            return aeq.quantize(
                base,
                aeq.mixed_recipe([*keep, *aeq.sign_inputs(base)], [], float_io=float_io),
                qsvs=best_ranges(),
            )

        return build

    steps = [("min/max ranges", plain), ("percentile 99.99 ranges", ranges(99.99)),
             ("MSE-optimal ranges", ranges(None)), (step_name(False), corrected(False)),
             (step_name(True), corrected(True)), *[(s, act_equalized(s)) for s in ACT_STEPS],
             (LEARNED, learned(LEARNED)), (DISTILLED, learned(DISTILLED))]  # fmt: skip
    steps += [(fallback_name(k), fallback(k)) for k in (1, 2, 4)]

    degenerate = degenerate_reference(ref)

    def skip(step: str) -> str | None:
        if degenerate and step != "min/max ranges":
            return degenerate
        if learned_skip(ctx, step) or activation_skip(ctx, step):
            return learned_skip(ctx, step) or activation_skip(ctx, step)
        if step.startswith("cross-layer"):
            pairs, before, after = equalization_gain(ctx, x)
            if not pairs:
                return "no conv pair with only ReLU or nothing between"
            if after < before + 1.0:
                return f"equalizing {pairs} pair(s) does not improve simulated INT8 ({before:.1f} -> {after:.1f} dB)"
        return fallback_skip(step, sites()) if step.startswith("float fallback") else None

    model, attempts, skipped = search(steps, measure, skip, say=ctx.say, effort=ctx.int8_effort)
    offenders = [] if attempts[0].passed else (state["localised"] or [site.to_dict() for site in sites()])
    entry = record(attempts, skipped, aim, len(x), state["changes"], offenders)
    if not entry["passed"]:
        best = next(a for a in attempts if a.step == entry["chosen"])
        entry["diagnosis"] = diagnose(ref, run_batch(LiteRTRunner(model), x_run), ctx.output, ctx.threshold,
                                      localise(base, model, x_run[:8], top=None), best,
                                      (entry["changes"] or {}).get("float_layers") or [])  # fmt: skip
    overflow = int32_bias_overflow(model)
    if overflow:
        entry["bias_overflow"] = overflow
    ctx.cache[f"repair:{label}"] = entry
    return model


@register("tflite_fp32", format="tflite", precision="fp32", suffix="fp32")
def export_fp32(ctx: ExportContext) -> bytes:
    """Float32 TFLite (litert-torch)."""
    return float_tflite(ctx)


@register("tflite_fp16", format="tflite", precision="fp16", suffix="fp16", flags=("fp16",))
def export_fp16(ctx: ExportContext) -> bytes:
    """Float16 weights, float32 compute (half the size; GPU-friendly)."""
    return aeq.fp16_weights(float_tflite(ctx))


@register(
    "tflite_int8", format="tflite", precision="int8", suffix="int8", needs_calibration=True, flags=("int8",)
)
def export_int8(ctx: ExportContext) -> bytes:
    """Static full-integer INT8, calibrated on the user's images (float I/O)."""
    return static_int8(ctx)


@register(
    "tflite_int8_io",
    format="tflite",
    precision="int8",
    suffix="int8io",
    needs_calibration=True,
    flags=("int8_io",),
)
def export_int8_io(ctx: ExportContext) -> bytes:
    """Static INT8 with int8 input and output tensors (no float quantize/dequantize at the edges)."""
    return static_int8(ctx, float_io=False, label="tflite_int8_io")


@register("tflite_int8_dynamic", format="tflite", precision="int8", suffix="int8dyn", flags=("int8_dynamic",))
def export_int8_dynamic(ctx: ExportContext) -> bytes:
    """Dynamic-range INT8: int8 weights, activations quantized at run time (no calibration)."""
    return quantize_float(ctx, aeq.named_recipe("dynamic_wi8_afp32"))


@register("tflite_recipe", format="tflite", precision="mixed", suffix="recipe", flags=("recipe",))
def export_recipe(ctx: ExportContext) -> bytes:
    """An ai-edge-quantizer recipe file (e.g. INT4 weights for some layers, INT8 elsewhere)."""

    if ctx.recipe is None:
        raise UsageError("the recipe variant needs --recipe FILE.json")
    return quantize_float(ctx, aeq.read_recipe(ctx.recipe))


def sparsify(ctx: ExportContext, base: bytes, label: str) -> bytes:
    """Apply the sparse-region graph fixes and store pruned weights in CSR form (see sparsity.py)."""
    from edgekit.exporters.sparsity import encode_sparse, fix_graph, isolate_dense_fc
    from edgekit.exporters.tflite_graph import TFLiteGraph

    graph = TFLiteGraph(base)
    changes = fix_graph(graph)
    encoded = encode_sparse(graph)
    if not encoded:
        raise ExportError(
            f"{label}: no 1x1-conv or fully-connected weight is at least half zeros; "
            "prune the model first (edgekit prune MODEL --sparsity 0.8)"
        )
    changes += isolate_dense_fc(graph)
    saved = sum(e.dense_bytes - e.sparse_bytes for e in encoded)
    kinds = Counter(c.split(": ", 1)[-1] for c in changes)
    ctx.cache[f"notes:{label}"] = [
        f"{len(encoded)} weights stored sparse (CSR), {saved / 1e6:.2f} MB saved",
        *(f"{kind} (x{n})" if n > 1 else kind for kind, n in kinds.items()),
    ]
    return graph.to_bytes()


@register("tflite_sparse_fp32", format="tflite", precision="fp32", suffix="sparse", flags=("sparse",))
def export_sparse_fp32(ctx: ExportContext) -> bytes:
    """FP32 with pruned 1x1-conv/FC weights in sparse storage (XNNPACK sparse inference on ARM64)."""
    return sparsify(ctx, float_tflite(ctx), "tflite_sparse_fp32")


@register("tflite_sparse_fp16", format="tflite", precision="fp16", suffix="sparse16", flags=("sparse",))
def export_sparse_fp16(ctx: ExportContext) -> bytes:
    """FP16 weight storage, sparse where pruned; computes in FP32 so the sparse path still applies."""
    return sparsify(ctx, ctx.once("tflite_fp16", lambda: export_fp16(ctx)), "tflite_sparse_fp16")


@register("tflite_sparse_int8w", format="tflite", precision="int8", suffix="sparse8w", flags=("sparse",))
def export_sparse_int8w(ctx: ExportContext) -> bytes:
    """INT8 weight-only storage (dequantized to FP32 at load), sparse where pruned; FP32 compute."""
    base = ctx.once("tflite_int8w", lambda: quantize_float(ctx, aeq.named_recipe("weight_only_wi8_afp32")))
    return sparsify(ctx, base, "tflite_sparse_int8w")
