"""`edgekit sensitivity`: which layers tolerate INT8/INT4 and pruning, and the mixed recipe that follows.

Quantization sensitivity is measured on the converted TFLite graph the phone runs:
each CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED op is quantized *alone* with
ai-edge-quantizer (static INT8, calibrated once for the whole graph; dynamic INT4
weights for FULLY_CONNECTED, the only INT4 op XNNPACK delegates — INT4 convs fall back
to slow CPU kernels, measured) and the SQNR of that op's own output and of the model
output is recorded. Pruning sensitivity prunes one PyTorch layer alone at the given
ratio (no fine-tuning) and records the validation AUC.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edgekit._io import atomic_write_bytes, atomic_write_text, ensure_output_dir
from edgekit.compress.workspace import ModelData, prepare
from edgekit.errors import UsageError
from edgekit.exporters import aeq
from edgekit.exporters.repair import TensorProbe, readable_name
from edgekit.parity import sqnr_db

if TYPE_CHECKING:
    from edgekit.compress.workspace import LabelledArrays
    from edgekit.exporters.registry import ExportContext

ProgressFn = Callable[[str, int, int], None]
QUANT_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")
SENSITIVITY_JSON = "sensitivity.json"


@dataclass(frozen=True)
class OpSensitivity:
    """One TFLite op quantized alone."""

    op: int
    name: str
    kind: str
    tensor: str
    params: int
    int8_output_sqnr_db: float | None
    int8_layer_sqnr_db: float | None
    int4_output_sqnr_db: float | None = None


@dataclass(frozen=True)
class LayerPruneSensitivity:
    """One PyTorch layer pruned alone."""

    name: str
    kind: str
    params: int
    auc: float | None
    auc_drop: float | None
    output_sqnr_db: float | None = None


@dataclass(frozen=True)
class SensitivityResult:
    """Everything `edgekit sensitivity` measured; saved as ``sensitivity.json``."""

    quantization: tuple[OpSensitivity, ...]
    pruning: tuple[LayerPruneSensitivity, ...]
    baseline_auc: float | None
    prune_ratio: float
    samples: int
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON."""
        return {"schema": "edgekit.sensitivity", "schema_version": 1, **asdict(self)}

    def most_sensitive(self, k: int) -> list[OpSensitivity]:
        """The ``k`` ops whose INT8 quantization hurts the model output most."""
        scored = [o for o in self.quantization if o.int8_output_sqnr_db is not None]
        return sorted(scored, key=lambda o: o.int8_output_sqnr_db or 0.0)[:k]


def quant_sensitivity(ctx: ExportContext, samples: np.ndarray, progress: ProgressFn) -> list[OpSensitivity]:
    """Quantize each op alone (INT8 static; INT4 dynamic for FC) and measure SQNR against the float graph."""
    from edgekit.exporters.tflite import float_tflite
    from edgekit.exporters.tflite_graph import TFLiteGraph

    base = float_tflite(ctx)
    graph = TFLiteGraph(base)
    qsvs = aeq.calibrate(base, aeq.static_int8_recipe(), ctx.calibration_batches(), ctx.num_threads)
    float_probe = TensorProbe(base)
    ops = [op for op in graph.ops() if op.name in QUANT_OPS]
    out: list[OpSensitivity] = []
    for k, op in enumerate(ops):
        progress(f"quantization sensitivity {op.name}", k, len(ops))
        tensor = graph.tensor_name(op.outputs[0])
        ref_out, ref_layer = float_probe.run(samples, tensor)
        w = graph.shape(op.inputs[1])
        params = int(np.prod(w)) if w else 0
        q_out, q_layer = TensorProbe(
            aeq.quantize(base, aeq.single_op_recipe(op.name, tensor, 8), qsvs=qsvs)
        ).run(samples, tensor)
        int4 = None
        if op.name == "FULLY_CONNECTED":
            q4_out, _ = TensorProbe(aeq.quantize(base, aeq.single_op_recipe(op.name, tensor, 4))).run(
                samples, None
            )
            int4 = _db(sqnr_db(ref_out, q4_out))
        layer_db = None
        if q_layer is not None and ref_layer is not None and q_layer.shape == ref_layer.shape:
            layer_db = _db(sqnr_db(ref_layer, q_layer))
        row = OpSensitivity(
            op=op.index, name=readable_name(tensor), kind=op.name, tensor=tensor, params=params,
            int8_output_sqnr_db=_db(sqnr_db(ref_out, q_out)), int8_layer_sqnr_db=layer_db,
            int4_output_sqnr_db=int4,
        )  # fmt: skip
        out.append(row)
    return out


def _db(value: float) -> float:
    return round(float(value), 2) if np.isfinite(value) else 200.0


def prune_sensitivity(
    module: Any,
    data: LabelledArrays,
    ratio: float,
    pattern: str,
    kind: Any,
    classes: int,
    progress: ProgressFn,
) -> tuple[float | None, list[LayerPruneSensitivity]]:
    """Validation AUC with each prunable layer pruned alone at ``ratio`` (no fine-tuning)."""
    import torch

    from edgekit.compress.prune import eligible, find_layers, layer_mask
    from edgekit.compress.workspace import auc_of, outputs_of

    layers = eligible(find_layers(module, (1, *data.x_val.shape[1:])), pattern)
    base = auc_of(module, data.x_val, data.y_val, kind, classes)
    # AUC saturates on easy data; the output SQNR still ranks the layers.
    ref = outputs_of(module, data.x_val).numpy()
    rows = []
    for k, la in enumerate(layers):
        progress(f"pruning sensitivity {la.name}", k, len(layers))
        w = module.get_parameter(la.name)
        saved = w.detach().clone()
        with torch.no_grad():
            w.mul_(layer_mask(w, ratio, pattern))
        auc = auc_of(module, data.x_val, data.y_val, kind, classes)
        pruned = outputs_of(module, data.x_val).numpy()
        with torch.no_grad():
            w.copy_(saved)
        drop = None if auc is None or base is None else round(base - auc, 5)
        row = LayerPruneSensitivity(
            la.name, la.kind, int(np.prod(la.shape)), auc, drop, _db(sqnr_db(ref, pruned))
        )
        rows.append(row)
    return base, rows


@dataclass(frozen=True)
class SensitivitySpec:
    """What `edgekit sensitivity` measures; built by the CLI."""

    model: ModelData
    out_dir: Path
    samples: int = 32
    val_samples: int = 200
    prune_ratio: float = 0.8
    pattern: str = "xnnpack"
    fallback: int = 2
    int4_min_sqnr_db: float = 30.0

    def __post_init__(self) -> None:
        if self.samples < 2 or self.val_samples < 2:
            raise UsageError("--samples and --val-samples must be at least 2")
        if not 0.0 < self.prune_ratio < 1.0:
            raise UsageError(f"--prune-ratio must be between 0 and 1, got {self.prune_ratio}")
        if self.fallback < 0:
            raise UsageError("--fallback must be >= 0")


def sensitivity(spec: SensitivitySpec, progress: ProgressFn | None = None) -> SensitivityResult:
    """Measure both sensitivities, write ``sensitivity.json``, ``sensitivity.png`` and ``mixed_recipe.json``."""
    report: ProgressFn = progress or (lambda _m, _d, _t: None)
    out_dir = ensure_output_dir(spec.out_dir)
    report("loading", 0, 1)
    prep = prepare(spec.model, spec.val_samples)
    samples = prep.data.x_val[: spec.samples]
    quant = quant_sensitivity(prep.ctx, samples, report)
    base_auc, pruning = prune_sensitivity(
        prep.module, prep.data, spec.prune_ratio, spec.pattern, prep.kind, prep.classes, report
    )
    result = SensitivityResult(
        quantization=tuple(quant), pruning=tuple(pruning), baseline_auc=base_auc,
        prune_ratio=spec.prune_ratio, samples=len(samples), data=prep.data.description,
    )  # fmt: skip
    from edgekit.exporters.tflite import float_tflite

    signs = aeq.sign_inputs(float_tflite(prep.ctx))  # a binary network's sign inputs stay float (see aeq)
    recipe = recipe_from(result, spec.fallback, spec.int4_min_sqnr_db, signs)
    atomic_write_text(out_dir / SENSITIVITY_JSON, json.dumps(result.to_dict(), indent=2) + "\n")
    atomic_write_text(out_dir / "mixed_recipe.json", json.dumps(recipe, indent=2) + "\n")
    atomic_write_bytes(out_dir / "sensitivity.png", plot(result))
    return result


def recipe_from(
    result: SensitivityResult, fallback: int, int4_min_sqnr_db: float, also_float: Sequence[str] = ()
) -> list[dict[str, Any]]:
    """The mixed recipe: FP32 for the ``fallback`` most sensitive ops (and ``also_float``), INT4 for
    insensitive FCs, INT8 elsewhere."""
    keep = [o.tensor for o in result.most_sensitive(fallback)]
    int4 = [
        o.tensor
        for o in result.quantization
        if o.kind == "FULLY_CONNECTED"
        and o.int4_output_sqnr_db is not None
        and o.int4_output_sqnr_db >= int4_min_sqnr_db
        and o.tensor not in keep
    ]
    return aeq.mixed_recipe([*keep, *(t for t in also_float if t not in keep)], int4)


def plot(result: SensitivityResult) -> bytes:
    """Two panels: output SQNR per op (INT8, INT4) and AUC drop per pruned layer, as PNG bytes."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(2, 1, figsize=(12, 7), constrained_layout=True)
    q = result.quantization
    xs = np.arange(len(q))
    a.bar(xs, [o.int8_output_sqnr_db or 0 for o in q], color="#4477aa", label="INT8 (static), this op alone")
    fc = [(i, o.int4_output_sqnr_db) for i, o in enumerate(q) if o.int4_output_sqnr_db is not None]
    if fc:
        a.scatter(
            [i for i, _ in fc], [v for _, v in fc], color="#cc3311", zorder=3, label="INT4 weights (FC)"
        )
    a.set_xticks(xs, [o.name for o in q], rotation=90, fontsize=6)
    a.set_ylabel("model-output SQNR (dB)")
    a.set_title("Quantization sensitivity (lower = more sensitive)")
    a.legend(fontsize=7)
    p = result.pruning
    xp = np.arange(len(p))
    b.bar(xp, [r.output_sqnr_db or 0 for r in p], color="#228833")
    b.set_xticks(xp, [r.name.removesuffix(".weight") for r in p], rotation=90, fontsize=6)
    b.set_ylabel("model-output SQNR (dB)")
    b.set_title(f"Pruning sensitivity: one layer at {result.prune_ratio:.0%} zeros, no fine-tuning")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()
