"""INT8 that holds: find where quantization breaks, and repair it, cheapest step first.

When a static INT8 variant misses its tolerance on a check set (the calibration images, so
the parity set stays unseen), the exporters try, in order and stopping at the first that
holds: percentile and MSE-optimal activation ranges instead of min/max, bias correction
(after cross-layer equalization where a simulation says it helps), 8-bit ONNX weights, then
keeping the 1, 2, then 4 layer sites whose INT8 weights cost the output most in float. Each
attempt is recorded (flips, SQNR, seconds). When nothing holds, :func:`diagnose` says why in
numbers: how close to the threshold the flips sit, the SQNR no flip would need, and whether
the noise comes from a few ops (named: what is left to try) or from many (only a float
model holds)."""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from edgekit._capture import captured_output
from edgekit.parity import sqnr_db
from edgekit.spec import Tolerance

#: the ops whose INT8 error localisation ranks (the ones that carry weights)
WEIGHT_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")


def readable_name(tensor_name: str) -> str:
    """``...Sequential_blocks/...InvertedResidual_0/...Conv2d_3;2`` -> ``blocks.0.3`` style module path."""
    segments = [s for s in tensor_name.split(";") if "/" in s]
    seg = next(
        (s for s in segments if re.search(r"(Conv2d|Linear)_", s)), segments[0] if segments else tensor_name
    )
    parts = []
    for part in seg.split("/")[1:]:
        _, sep, suffix = part.rpartition("_")
        if sep:
            parts.append(suffix)
    return ".".join(parts) or tensor_name


class TensorProbe:
    """Runs a TFLite model without delegates, keeping every tensor, to read one op's output."""

    def __init__(self, model: bytes) -> None:
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        with captured_output():
            self.interp = Interpreter(
                model_content=model,
                experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
                experimental_preserve_all_tensors=True,
            )
            self.interp.allocate_tensors()
        self.by_name = {d["name"]: d for d in self.interp.get_tensor_details()}
        self.inp = self.interp.get_input_details()[0]["index"]
        self.out = self.interp.get_output_details()[0]

    def run(self, x: np.ndarray, tensor: str | None) -> tuple[np.ndarray, np.ndarray | None]:
        outs, layers = [], []
        for i in range(len(x)):
            self.interp.set_tensor(self.inp, x[i : i + 1])
            self.interp.invoke()
            outs.append(self._read(self.out))
            detail = self.by_name.get(tensor) if tensor else None
            if detail is not None:
                layers.append(self._read(detail))
        return np.concatenate(outs), (np.concatenate(layers) if layers else None)

    def ops(self) -> list[tuple[str, str]]:
        """(op name, first output tensor name) of every node, in execution order."""
        names = {d["index"]: d["name"] for d in self.interp.get_tensor_details()}
        return [
            (op["op_name"], names.get(int(op["outputs"][0]), ""))
            for op in self.interp._get_ops_details()
            if len(op["outputs"])
        ]

    def tensors(self, x: np.ndarray, names: list[str]) -> dict[str, np.ndarray]:
        """Every named tensor (dequantized) for each sample of ``x``, one invoke per sample."""
        found: dict[str, list[np.ndarray]] = {n: [] for n in names if n in self.by_name}
        for i in range(len(x)):
            self.interp.set_tensor(self.inp, x[i : i + 1])
            self.interp.invoke()
            for name in found:
                found[name].append(self._read(self.by_name[name]))
        return {n: np.concatenate(v) for n, v in found.items() if v}

    def _read(self, detail: dict[str, Any]) -> np.ndarray:
        y: np.ndarray = np.asarray(self.interp.get_tensor(detail["index"]), dtype=np.float32)
        scale, zero = detail["quantization"]
        if detail["dtype"] != np.float32 and scale:
            y = (y - zero) * scale
        return y.reshape(1, -1) if y.shape[0] == 1 else y


@dataclass(frozen=True)
class Attempt:
    """One repair step and how it measured on the check set."""

    step: str
    flips: int
    samples: int
    sqnr_db: float
    passed: bool
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form (an infinite SQNR is capped at 200 dB)."""
        d = asdict(self)
        d["sqnr_db"] = round(min(self.sqnr_db, 200.0), 2) if math.isfinite(self.sqnr_db) else 200.0
        d["seconds"] = round(self.seconds, 2)
        return d


def search(
    steps: Iterable[tuple[str, Callable[[], bytes]]],
    measure: Callable[[bytes], tuple[int, int, float, bool]],
    skip: Callable[[str], str | None] | None = None,
    say: Callable[[str], None] | None = None,
    effort: float = 0.0,
) -> tuple[bytes, list[Attempt], list[dict[str, str]]]:
    """Build and measure each step in order; stop at the first that passes.

    ``say`` hears each step as it starts (step k of n, seconds so far, and for the learned
    rungs the bound ``effort`` puts on them), so a long search is never a silent clock.

    ``measure(model) -> (flips, samples, sqnr_db, passed)``; ``skip(step)`` may name why a
    step cannot help (it is then listed with the reason and not built). When none passes,
    the best attempt (fewest flips, then highest SQNR) is returned with every attempt listed.
    """
    attempts: list[Attempt] = []
    built: list[bytes] = []
    skipped: list[dict[str, str]] = []
    steps = list(steps)
    began = time.perf_counter()
    for k, (name, build) in enumerate(steps):
        reason = skip(name) if skip else None
        if reason:
            skipped.append({"step": name, "why": reason})
            continue
        if say is not None:
            bound = (
                f"; at most {effort:.0f} s for the learned steps"
                if name in (LEARNED, DISTILLED) and effort
                else ""
            )
            say(
                f"INT8 repair: {name} (step {k + 1} of {len(steps)}, {time.perf_counter() - began:.0f} s so far{bound})"
            )
        start = time.perf_counter()
        model = build()
        flips, samples, sqnr, passed = measure(model)
        attempts.append(Attempt(name, flips, samples, sqnr, passed, time.perf_counter() - start))
        built.append(model)
        if passed:
            return model, attempts, skipped
    best = min(range(len(attempts)), key=lambda i: (attempts[i].flips, -attempts[i].sqnr_db))
    return built[best], attempts, skipped


#: the learned repair rungs (edgekit.compress.rounding and .distill), after the cheap steps
LEARNED = "learned rounding"
DISTILLED = "distillation"
#: the data-aware rescaling of edgekit.compress.equalize.activation_equalize, before them: into
#: depthwise layers only (free: per-channel weights), then into every layer (full convs lose
#: weight precision on the shrunk columns, which helps one model and hurts another)
ACT_EQUALIZED_DW = "activation equalization (depthwise consumers)"
ACT_EQUALIZED = "activation equalization (all consumers)"
ACT_STEPS = (ACT_EQUALIZED_DW, ACT_EQUALIZED)


def activation_equalized(ctx: Any, step: str) -> tuple[Any, dict[str, Any]]:
    """(the PyTorch model with :func:`~edgekit.compress.equalize.activation_equalize` applied on
    up to 256 calibration images as ``step`` says, what it changed), once per export and step."""
    key = f"activation_equalized:{step}"
    if key not in ctx.cache:
        import torch

        from edgekit.compress.equalize import activation_equalize, equalize, find_units

        assert ctx.calibration is not None  # the ladder runs on calibration data
        with torch.inference_mode(False):
            module, _ = equalize(ctx.module, ctx.sample_input(), cle=False, bias_correction=False)
            pairs = activation_equalize(module, find_units(module), ctx.calibration[:256],
                                        depthwise_only=step == ACT_EQUALIZED_DW)  # fmt: skip
        ctx.cache[key] = (module, {"rescaled_pairs": len(pairs)})
    return ctx.cache[key]  # type: ignore[no-any-return]


def activation_skip(ctx: Any, step: str) -> str | None:
    """Why an activation equalization rung is not run, or None."""
    if step not in ACT_STEPS:
        return None
    pairs = activation_equalized(ctx, step)[1]["rescaled_pairs"]
    if not pairs:
        return "no layer output has channels far below its shared 8-bit range"
    if step == ACT_EQUALIZED and pairs == activation_equalized(ctx, ACT_EQUALIZED_DW)[1]["rescaled_pairs"]:
        return "every rescaled pair feeds a depthwise layer: the same model as the step before"
    return None


def learn_from_better(
    state: dict[str, Any], score: float, best_ranges: float, start: tuple[Any, Any]
) -> None:
    """Let the learned rungs start from an activation-equalized model (``start``: the module and
    its activation ranges) when it measured better than the best ranges and any earlier one."""
    if score > max(best_ranges, state.get("learn_score", float("-inf"))):
        state["learn_from"], state["learn_ranges"], state["learn_score"] = start[0], start[1], score


def learned_module(ctx: Any, state: dict[str, Any], step: str) -> Any:
    """The PyTorch model a learned rung converts: learned rounding on half of ``--int8-effort``;
    distillation, from the learned-rounding model when that ran, on what is left, learning on the
    calibration images past the check set (all of them when there are too few) and early-stopped
    on the check set. What it did goes to ``state["changes"][step]``. Learned once per start
    model and export: the TFLite and ONNX ladders, starting from the same model, share it (both
    converters take the same weight grid), so the second one pays nothing for it."""
    # from the activation-equalized model when that measured better than the best ranges alone
    start = state.get("learn_from", ctx.module)
    key = f"learned_rung:{step}"
    for seen, module, changes, seconds in ctx.cache.get(key, []):
        if seen is start:  # identity: the same object the other format's ladder learned from
            state["changes"][step] = {**changes, "learned_for_another_format": True}
            if step == LEARNED:
                state["learned_module"], state["learned_seconds"] = module, seconds
            return module
    module, changes, seconds = _learn_rung(ctx, state, step, start)
    ctx.cache.setdefault(key, []).append((start, module, changes, seconds))
    return module


def _learn_rung(ctx: Any, state: dict[str, Any], step: str, start: Any) -> tuple[Any, dict[str, Any], float]:
    """Run learned rung ``step`` from ``start``: (the model, what it did, seconds)."""
    import time

    from edgekit.compress.distill import distill
    from edgekit.compress.rounding import learn_rounding

    assert ctx.calibration is not None  # the ladder runs on calibration data
    x, _ = ctx.check_set()
    started = time.perf_counter()
    if step == LEARNED:
        module, rounding = learn_rounding(start, x, budget_s=ctx.int8_effort / 2,
                                          progress=lambda m: ctx.say(f"INT8 repair: {m}"))  # fmt: skip
        state["learned_module"], state["learned_seconds"] = module, time.perf_counter() - started
        state["changes"][step] = rounding.to_dict()
        return module, state["changes"][step], state["learned_seconds"]
    start_from = state.get("learned_module", start)
    train = ctx.calibration[len(x) :] if len(ctx.calibration) >= len(x) + 32 else ctx.calibration
    budget = max(0.0, ctx.int8_effort - state.get("learned_seconds", 0.0))
    # the teacher: the float model learned rounding started from (same layers, so each layer's
    # output is matched too; its output is the original model's, activation equalization being
    # exact in float within its headroom)
    module, distilled = distill(start_from, train, x, budget_s=budget, teacher=start,
                                progress=lambda m: ctx.say(f"INT8 repair: {m}"))  # fmt: skip
    state["changes"][step] = distilled.to_dict()
    return module, state["changes"][step], time.perf_counter() - started


def learned_skip(ctx: Any, step: str) -> str | None:
    """Why a learned rung is not run, or None."""
    if step in (LEARNED, DISTILLED) and ctx.int8_effort <= 0:
        return "--int8-effort 0: no learned repair"
    return None


def degenerate_reference(reference: np.ndarray) -> str | None:
    """Why no repair step should be spent on this model, or None: a PyTorch reference that is the
    same for every check image (the model ignores its input) gives the search nothing to aim at;
    every step would buy decibels of a constant."""
    ref = np.asarray(reference, np.float64)
    if len(ref) >= 2 and float(np.ptp(ref, axis=0).max(initial=0.0)) < 1e-6:
        return (f"the PyTorch model gives the same output for all {len(ref)} check images (it ignores its "
                "input): no repair is spent on it; fix the model first")  # fmt: skip
    return None


#: a layer whose INT8 weights alone keep the output above this SQNR is not worth keeping float
FALLBACK_BELOW_DB = 40.0


def record(
    attempts: list[Attempt],
    skipped: list[dict[str, str]],
    aim: Tolerance,
    samples: int,
    changes: dict[str, dict[str, Any]],
    offenders: list[dict[str, Any]],
) -> dict[str, Any]:
    """The manifest's ``repair`` entry: every attempt, the step chosen, what was skipped and why,
    what the chosen step changed (``changes`` holds each step's), and (when plain INT8 missed
    the aim) the layers whose INT8 weights hurt most."""
    chosen = next((a for a in attempts if a.passed), None)
    best = chosen or min(attempts, key=lambda a: (a.flips, -a.sqnr_db))
    return {
        "check_set": f"{samples} calibration images",
        "aim": aim.to_dict(),
        "attempts": [a.to_dict() for a in attempts],
        "skipped": skipped,
        "chosen": best.step,
        "passed": chosen is not None,
        "changes": changes.get(best.step),
        "offenders": offenders[:4],
    }


def fallback_name(k: int) -> str:
    """The repair step that keeps ``k`` layer sites float."""
    return f"float fallback of {k} layer site{'s' * (k > 1)}"


def fallback_skip(step: str, sites: list[Site]) -> str | None:
    """Why a "float fallback of K layer sites" step cannot help, or None: no layer's INT8
    weights hurt enough, or no more such sites than the step before already kept."""
    fewer = {1: 0, 2: 1, 4: 2, 8: 4}[int(step.split()[3])]
    weak = [s for s in sites if s.sqnr_db < FALLBACK_BELOW_DB]
    if not weak:
        return f"no layer's INT8 weights alone take the output below {FALLBACK_BELOW_DB:.0f} dB"
    if len(weak) <= fewer:
        return f"only {len(weak)} layer site(s) below {FALLBACK_BELOW_DB:.0f} dB, all tried"
    return None


def weak_sites(sites: list[Site], k: int) -> list[Site]:
    """The first ``k`` sites whose INT8 weights cost the output more than :data:`FALLBACK_BELOW_DB`."""
    return [s for s in sites if s.sqnr_db < FALLBACK_BELOW_DB][:k]


def added_noise(before_db: float, after_db: float) -> float:
    """The noise an op adds, relative to its output's signal power, from the SQNR before and after it.

    dB differences do not add up across ops (an op that takes an exact tensor to 40 dB "loses"
    160 dB); noise-to-signal ratios roughly do, so this is what shares of the loss are taken of.
    """
    return float(max(10.0 ** (-after_db / 10.0) - 10.0 ** (-before_db / 10.0), 0.0))


def localise(
    float_model: bytes, quant_model: bytes, inputs: np.ndarray, top: int | None = 5
) -> list[dict[str, Any]]:
    """The weight ops (conv, depthwise, FC) that add the most INT8 noise, worst first (all with
    ``top=None``).

    Both models run without delegates keeping every tensor; each op's output is compared
    with the float model's tensor of the same name. An op is charged with what it adds: the
    drop from the SQNR of the previous weight op's output to its own (``loss_db``), ranked by
    the noise-to-signal ratio added (:func:`added_noise`), so error that accumulates
    downstream is charged to the op that caused it.
    """
    ref = TensorProbe(float_model)
    quant = TensorProbe(quant_model)
    ops = [op for op in quant.ops() if op[0] in WEIGHT_OPS and op[1] in ref.by_name]
    names = [tensor for _, tensor in ops]
    quant_out, ref_out = quant.tensors(inputs, names), ref.tensors(inputs, names)
    rows: list[dict[str, Any]] = []
    # the first weight op is charged from what the INT8 input already lost, not from 200 dB
    previous = 200.0
    first_quantize = next((t for kind, t in quant.ops() if kind == "QUANTIZE"), None)
    if first_quantize is not None:
        scale, zero = quant.by_name[first_quantize]["quantization"]
        if scale:  # the input rounded as that QUANTIZE op rounds it (layout ops do not matter)
            rounded = (np.clip(np.round(inputs / scale) + zero, -128, 127) - zero) * scale
            previous = min(sqnr_db(inputs, rounded), 200.0)
    for kind, tensor in ops:
        q, f = quant_out.get(tensor), ref_out.get(tensor)
        if q is None or f is None or q.shape != f.shape:
            continue
        sqnr = min(sqnr_db(f, q), 200.0)
        rows.append({"op": kind, "tensor": tensor, "layer": readable_name(tensor), "sqnr_db": round(sqnr, 2),
                     "loss_db": round(max(previous - sqnr, 0.0), 2), "added_noise": added_noise(previous, sqnr)})  # fmt: skip
        previous = sqnr
    return sorted(rows, key=lambda r: -r["added_noise"])[:top]


@dataclass(frozen=True)
class Site:
    """A layer whose INT8 weights hurt the output, and the layer that feeds it.

    Keeping a layer float is not enough when its gain amplifies the rounding of its INT8
    input, so a fallback keeps its producer float too (the tensor between stays float).
    """

    layer: str  #: module path, e.g. ``body.features.2.conv.0``
    kind: str  #: ``conv`` or ``linear``
    sqnr_db: float  #: model output SQNR with only this layer's weights at INT8
    producer: str | None  #: the layer whose output this one reads, if a single one does

    def layers(self) -> list[str]:
        """The layers this site keeps float."""
        return [self.layer] + ([self.producer] if self.producer else [])

    def to_dict(self) -> dict[str, Any]:
        """The manifest's offender row."""
        op = "Conv2d" if self.kind == "conv" else "Linear"
        return {"op": op, "layer": self.layer, "sqnr_db": round(min(self.sqnr_db, 200.0), 2),
                "producer": self.producer}  # fmt: skip


def weight_sensitivity(
    module: Any, x: np.ndarray, top: int = 8, levels: int = 127
) -> tuple[list[Site], list[str]]:
    """The ``top`` layers whose per-channel INT8 weights alone lose the most output SQNR, and every
    conv/linear layer's module path in graph order.

    Each conv/linear layer's weights (BatchNorm folded in, symmetric per output channel, as
    LiteRT and onnxruntime quantize them) are rounded alone in a copy of the PyTorch graph
    and the output compared with the float one on ``x``: one forward pass per layer and
    sample, no conversion. A layer that is fine alone but amplifies its input's rounding is
    covered by its site's producer.
    """
    import copy

    import torch

    from edgekit.compress.equalize import find_units, folded_weight, int8_rounding_error, param, producer_of

    gm = module if hasattr(module, "graph") else None
    if gm is None:
        with torch.inference_mode(False):
            gm = torch.export.export(module.eval(), (torch.from_numpy(x[:1]),), strict=False).module()
    units = find_units(gm)

    def run(g: Any) -> np.ndarray:
        with torch.inference_mode():
            outs = [g(torch.from_numpy(np.ascontiguousarray(x[i : i + 1]))) for i in range(len(x))]
        return np.concatenate(
            [(o[0] if isinstance(o, (tuple, list)) else o).reshape(1, -1).numpy() for o in outs]
        )

    ref = run(gm)
    sites: list[Site] = []
    g = copy.deepcopy(gm)  # one copy, each layer rounded and restored in turn
    for unit in units.values():
        w = param(g, unit.weight)
        original = w.detach().clone()
        folded, gain = folded_weight(g, unit)
        with torch.no_grad():
            w.add_(int8_rounding_error(folded, levels) / gain.reshape(-1, *([1] * (w.dim() - 1))))
        sqnr = min(sqnr_db(ref, run(g)), 200.0)
        with torch.no_grad():
            w.copy_(original)
        producer = producer_of(gm, units, unit)
        sites.append(Site(unit.weight.removesuffix(".weight"), "linear" if w.dim() == 2 else "conv", sqnr,
                          producer.weight.removesuffix(".weight") if producer else None))  # fmt: skip
    order = [site.layer for site in sites]
    return sorted(sites, key=lambda s: s.sqnr_db)[:top], order


def cached_sites(ctx: Any, x: np.ndarray, levels: int = 127) -> tuple[list[Site], list[str]]:
    """:func:`weight_sensitivity` of the context's model, once per export and weight precision
    (TFLite and 8-bit ONNX share it; ONNX's 7-bit weights round twice as coarsely)."""
    key = f"weight_sites:{levels}"
    if key not in ctx.cache:
        ctx.cache[key] = weight_sensitivity(ctx.module, x[:16], levels=levels)
    return ctx.cache[key]  # type: ignore[no-any-return]


def equalization_gain(ctx: Any, x: np.ndarray) -> tuple[int, float, float]:
    """(pairs cross-layer equalization would touch, simulated INT8 SQNR before, after), once per export.

    The simulation (:func:`edgekit.compress.equalize.simulated_int8`) lets the search skip
    equalization, and its conversions, where it would make INT8 worse: on MobileNetV2 it
    scales activations of the pairs it touches up by as much as it scales the weights down.
    """
    if "equalization_gain" not in ctx.cache:
        import torch

        from edgekit.compress.equalize import equalize, simulated_int8

        with torch.inference_mode(False):
            original, _ = equalize(ctx.module, ctx.sample_input(), cle=False, bias_correction=False)
            equalized, report = equalize(original, None, bias_correction=False)
        x = x[:16]
        with torch.inference_mode():
            ref = np.concatenate(
                [original(torch.from_numpy(x[i : i + 1])).reshape(1, -1).numpy() for i in range(len(x))]
            )
        before = sqnr_db(ref, simulated_int8(original, x)) if report.pairs else 0.0
        after = sqnr_db(ref, simulated_int8(equalized, x)) if report.pairs else 0.0
        ctx.cache["equalization_gain"] = (len(report.pairs), float(before), float(after))
    return ctx.cache["equalization_gain"]  # type: ignore[no-any-return]


def repair_aim(tolerance: Tolerance) -> Tolerance:
    """What the repair search aims for: no flips on the check set and at least 25 dB (or the
    tolerance's own SQNR if higher), so the chosen model passes the unseen parity set with margin."""
    return Tolerance(max_flip_rate=0.0, min_sqnr_db=max(tolerance.min_sqnr_db or 0.0, 25.0))


def layer_tensors(model: bytes, order: list[str]) -> dict[str, str]:
    """PyTorch layer path -> output tensor of its weight op in a TFLite model.

    By the module path litert-torch keeps in tensor names; a layer it dropped (the graph's
    output op is renamed) is matched by position when both graphs have the same number of
    weight ops, else left out.
    """
    ops = [t for kind, t in TensorProbe(model).ops() if kind in WEIGHT_OPS]
    found = {readable_name(t): t for t in ops}
    mapping = {layer: found[layer] for layer in order if layer in found}
    if len(ops) == len(order):
        for layer, tensor in zip(order, ops, strict=True):
            mapping.setdefault(layer, tensor)
    return mapping


def int32_bias_overflow(model: bytes) -> list[str]:
    """Layers of a quantized TFLite model whose int32 bias sits at the int32 limits.

    The bias is stored as ``bias / (input_scale * weight_scale)``; when a layer's input is
    nearly constant its calibrated scale is tiny (7e-9 on a random-weight EfficientNet whose
    features vanish) and the quotient no longer fits: ai-edge-quantizer then stores -2**31
    for every channel, whatever the bias' sign, and the layer outputs garbage.
    """
    from edgekit.exporters.tflite_graph import TFLiteGraph

    g = TFLiteGraph(model)
    limits = (np.iinfo(np.int32).min, np.iinfo(np.int32).max)
    hit: list[str] = []
    for op in g.ops():
        if op.name not in WEIGHT_OPS or len(op.inputs) < 3 or op.inputs[2] < 0:
            continue
        bias = g.constant(op.inputs[2])
        if bias is not None and bias.dtype == np.int32 and np.isin(bias, limits).any():
            # the graph's output op is named after the output; its weights keep the module path
            named = next((t for t in (op.outputs[0], op.inputs[1]) if "/" in g.tensor_name(t)), op.outputs[0])
            hit.append(readable_name(g.tensor_name(named)))
    return hit


def _flips(reference: np.ndarray, candidate: np.ndarray, output: Any, threshold: float) -> np.ndarray:
    from edgekit.parity import fake_scores

    return (fake_scores(reference, output) >= threshold) != (fake_scores(candidate, output) >= threshold)  # type: ignore[no-any-return]


def error_reduction_for_no_flips(
    reference: np.ndarray, candidate: np.ndarray, output: Any, threshold: float
) -> float:
    """By how much the candidate's error (``candidate - reference``) must shrink for no decision on
    these samples to flip: the smallest ``f`` with ``reference + error / f`` flipping nothing.

    1.0 when nothing flips; found by bisection on the real decision rule (sigmoid, softmax or
    probability against the threshold), so it holds for every output kind.
    """
    ref = np.asarray(reference, np.float64)
    err = np.asarray(candidate, np.float64) - ref
    if not _flips(ref, ref + err, output, threshold).any():
        return 1.0
    lo, hi = 1.0, 2.0
    while _flips(ref, ref + err / hi, output, threshold).any():
        lo, hi = hi, hi * 2.0
        if hi > 1e9:  # a reference sitting exactly on the threshold: no finite factor
            return math.inf
    for _ in range(30):
        mid = math.sqrt(lo * hi)
        lo, hi = (mid, hi) if _flips(ref, ref + err / mid, output, threshold).any() else (lo, mid)
    return hi


#: how many of the ops that add the most noise a diagnosis names
WORST = 4
#: an op counts among those that lose signal when it adds this share of the output's INT8 noise
NOISE_SHARE_COUNTED = 0.02


def diagnose(
    reference: np.ndarray,
    candidate: np.ndarray,
    output: Any,
    threshold: float,
    profile: list[dict[str, Any]],
    best: Attempt,
    float_layers: list[str],
) -> dict[str, Any]:
    """Why no repair step held, in numbers a user can act on (the manifest's ``repair.diagnosis``).

    ``candidate`` is the best attempt's output on the check set, ``profile`` the loss of every
    weight op in it (:func:`localise` with no ``top`` cut). Three findings: how close to the
    threshold the flipped samples sit and the SQNR no flip would need (``error / f`` for the
    smallest ``f`` that flips nothing); whether the loss is concentrated in a few ops (named, as
    what is left to try; untested here) or spread over many (keeping a few more float cannot
    reach the aim); and which layers the best attempt already keeps float.
    """
    from edgekit.parity import fake_scores

    ref = np.asarray(reference, np.float64)
    cand = np.asarray(candidate, np.float64)
    s_ref = fake_scores(ref, output)
    flipped = _flips(ref, cand, output, threshold)
    margins = np.abs(s_ref[flipped] - threshold)
    factor = error_reduction_for_no_flips(ref, cand, output, threshold)
    needed = best.sqnr_db + 20.0 * math.log10(factor) if math.isfinite(factor) else math.inf
    ranked = sorted(profile, key=lambda r: -float(r["added_noise"]))
    added = [float(r["added_noise"]) for r in ranked]
    total = sum(added)
    share = [a / total if total > 0 else 0.0 for a in added]
    worst = [f"{r.get('layer', '?')} ({v:.0%})" for r, v in zip(ranked[:WORST], share, strict=False) if v > 0]
    losing = [v for v in share if v >= NOISE_SHARE_COUNTED]
    top4 = sum(share[:WORST]) if total > 0 else 1.0
    # a few ops adding most of the noise could be kept float; many adding a little each cannot
    spread = len(losing) > WORST and top4 < 0.5
    finding = {
        "flips": int(flipped.sum()),
        "samples": len(ref),
        "flipped_within": round(float(margins.max()), 4) if margins.size else 0.0,
        "sqnr_db": round(min(best.sqnr_db, 200.0), 2),
        "sqnr_for_no_flips_db": round(min(needed, 200.0), 2),
        "ops_losing": len(losing),
        "weight_ops": len(profile),
        "largest_share": round(share[0], 3) if share else 0.0,
        "top4_share": round(top4, 3),
        "worst_ops": worst,
        "spread": spread,
        "float_layers": list(float_layers),
    }
    kept = f"kept float: {', '.join(float_layers)}" if float_layers else "no layer kept float"
    if not profile:
        cause = "no weight op of the INT8 model could be matched with the float model's, so the loss is not located"
    elif spread:
        cause = (f"the INT8 error is spread over the network ({len(losing)} of {len(profile)} weight ops each "
                 f"add >= {NOISE_SHARE_COUNTED:.0%} of the noise, the worst {share[0]:.0%}, the {WORST} worst "
                 f"{top4:.0%}), so keeping a few more ops float cannot reach it: every op would "
                 "have to stay float")  # fmt: skip
    else:
        cause = (f"the loss is concentrated (the {WORST} worst weight ops add {top4:.0%} of the noise: "
                 f"{', '.join(worst)}), at their outputs or through the rounding of their inputs: keeping "
                 "them or their producers float is what is left to try (edgekit sensitivity ranks every op; "
                 "export --recipe takes its mixed_recipe.json)")  # fmt: skip
    if margins.size:
        closeness = (f"every flip had a reference score within {finding['flipped_within']:.3g} of the threshold, "
                     f"and no flip needs about {finding['sqnr_for_no_flips_db']} dB")  # fmt: skip
    else:
        closeness = "no decision flipped, but the output error is above the aim"
    finding["why"] = (
        f"INT8 does not hold on this model: the best step ({best.step}; {kept}) reaches "
        f"{finding['sqnr_db']} dB with {finding['flips']}/{finding['samples']} flips; {closeness}; {cause}. "
        "Ship an FP16/FP32 variant, or accept flips this close to the threshold (--tol int8:max_flip_rate=...)"
    )
    return finding
