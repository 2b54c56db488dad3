"""`edgekit prune`: gradual magnitude pruning with short fine-tuning, for XNNPACK sparse inference.

Patterns:
- ``xnnpack``: the weights XNNPACK's sparse kernels use, 1x1 stride-1 convs and
  fully-connected layers (not the output layer), element by element;
- ``block4``: the same layers, pruned in blocks of 4 output channels at one input
  channel (the shape ARM64's fastest sparse kernels take);
- ``unstructured``: every conv and linear weight except the first conv and the output
  layer; zeros in 3x3/depthwise convs only shrink a compressed download, never the
  ``.tflite`` (only 1x1/FC weights are stored sparse).

Schedule: sparsity ramps as ``s * (1 - (1 - t)^3)`` (Zhu & Gupta) over the first 70% of the
steps, then the masks stay fixed while fine-tuning continues. BatchNorm statistics and
dropout stay in eval mode: a few hundred steps on a small data set would only add noise.
Masks are applied to the parameters after every optimizer step rather than with
``torch.nn.utils.prune``, whose forward pre-hooks never run inside a ``torch.export``
graph module (the ``.pt2`` models edgekit loads).
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edgekit._capture import captured_output
from edgekit._io import atomic_write_bytes, atomic_write_text, ensure_output_dir
from edgekit.compress.workspace import (
    LabelledArrays,
    auc_of,
    folder_arrays,
    sample_arrays,
    trainable_module,
)
from edgekit.errors import UsageError
from edgekit.modelmeta import resolve_preprocess
from edgekit.spec import ModelSource, OutputKind

if TYPE_CHECKING:
    import torch

PATTERNS = ("xnnpack", "block4", "unstructured")
PRUNE_REPORT = "prune.json"
ProgressFn = Callable[[str, int, int], None]


@dataclass(frozen=True)
class Layer:
    """A prunable weight: its parameter name, op kind and shape."""

    name: str
    kind: str  # conv1x1 | conv | dwconv | linear
    shape: tuple[int, ...]
    output_layer: bool = False


@dataclass(frozen=True)
class PruneSpec:
    """What `edgekit prune` does; built by the CLI, consumed by :func:`prune`."""

    source: ModelSource
    out_dir: Path
    sparsity: float = 0.8
    pattern: str = "xnnpack"
    data: Path | None = None
    mean: tuple[float, float, float] | None = None
    std: tuple[float, float, float] | None = None
    resize: str | None = None
    input_shape: tuple[int, ...] | None = None
    steps: int = 200
    batch: int = 32
    lr: float = 3e-4
    seed: int = 0
    val_fraction: float = 0.2
    name: str = "pruned"

    def __post_init__(self) -> None:
        if not 0.0 < self.sparsity < 1.0:
            raise UsageError(f"--sparsity must be between 0 and 1 (e.g. 0.8), got {self.sparsity}")
        if self.pattern not in PATTERNS:
            raise UsageError(f"--pattern {self.pattern!r}: choose from {', '.join(PATTERNS)}")
        if self.steps < 0 or self.batch < 1 or self.lr <= 0:
            raise UsageError("--steps must be >= 0, --batch >= 1 and --lr > 0")
        if not self.name or "/" in self.name or self.name.startswith("."):
            raise UsageError(f"--name {self.name!r} must be a plain file stem")


@dataclass(frozen=True)
class PruneResult:
    """What pruning achieved; saved as ``prune.json`` next to the pruned ``.pt2``."""

    model: str
    pattern: str
    target_sparsity: float
    achieved_sparsity: float
    layers: tuple[dict[str, Any], ...]
    auc_before: float | None
    auc_one_shot: float | None
    auc_after: float | None
    steps: int
    seconds: float
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON."""
        return {"schema": "edgekit.prune", "schema_version": 1, **asdict(self)}


def find_layers(module: torch.nn.Module, input_shape: tuple[int, ...]) -> list[Layer]:
    """Every conv/linear weight of ``module``, found in its exported graph (works for .pt2 modules too)."""
    import torch

    with captured_output():  # torch.export's deprecation chatter
        ep = torch.export.export(module, (torch.zeros(input_shape),), strict=False)
    params = ep.graph_signature.inputs_to_parameters
    layers: list[Layer] = []
    for node in ep.graph.nodes:
        if node.op != "call_function":
            continue
        target = str(node.target)
        if "aten.conv2d" not in target and "aten.linear" not in target and "aten.convolution" not in target:
            continue
        w = node.args[1]
        name = params.get(getattr(w, "name", ""))
        if name is None:
            continue
        shape = tuple(int(d) for d in w.meta["val"].shape)
        if "linear" in target:
            kind = "linear"
        else:
            args = list(node.args) + [None] * 9
            stride = args[3] or [1, 1]
            groups = int(args[8 if "convolution" in target else 6] or 1)
            if groups > 1:
                kind = "dwconv"
            elif shape[2:] == (1, 1) and list(stride) in ([1, 1], [1]):
                kind = "conv1x1"
            else:
                kind = "conv"
        layers.append(Layer(name, kind, shape))
    if layers:
        layers[-1] = replace(layers[-1], output_layer=True)
    return layers


def eligible(layers: list[Layer], pattern: str) -> list[Layer]:
    """The layers a pattern prunes."""
    if pattern == "unstructured":
        return [la for la in layers[1:] if not la.output_layer]
    return [la for la in layers if la.kind in ("conv1x1", "linear") and not la.output_layer]


def layer_mask(weight: torch.Tensor, sparsity: float, pattern: str) -> torch.Tensor:
    """Keep-mask (1 = keep) that zeroes the ``sparsity`` share of smallest weights (or 4-blocks)."""
    import torch

    w = weight.detach()
    if sparsity <= 0:
        return torch.ones_like(w)
    if pattern == "block4" and w.shape[0] >= 4:
        out = w.shape[0]
        flat = w.reshape(out, -1)
        pad = (-out) % 4
        if pad:
            flat = torch.cat([flat, flat.new_zeros(pad, flat.shape[1])])
        scores = flat.reshape(-1, 4, flat.shape[1]).norm(dim=1)  # [O/4, I]
        k = round(sparsity * scores.numel())
        keep = torch.ones_like(scores)
        if k > 0:
            idx = scores.flatten().argsort()[:k]
            keep.view(-1)[idx] = 0
        mask = keep.repeat_interleave(4, dim=0)[:out]
        return mask.reshape(w.shape)
    k = round(sparsity * w.numel())
    mask = torch.ones_like(w)
    if k > 0:
        idx = w.abs().flatten().argsort()[:k]
        mask.view(-1)[idx] = 0
    return mask


def apply_masks(module: torch.nn.Module, masks: dict[str, torch.Tensor]) -> None:
    """Zero the masked weights in place."""
    import torch

    with torch.no_grad():
        for name, mask in masks.items():
            module.get_parameter(name).mul_(mask)


def masks_for(module: torch.nn.Module, layers: list[Layer], sparsity: float, pattern: str) -> dict[str, Any]:
    """One mask per layer at ``sparsity`` (uniform across layers)."""
    return {la.name: layer_mask(module.get_parameter(la.name), sparsity, pattern) for la in layers}


# --------------------------------------------------------------------------- pruning
def gradual_prune(
    module: torch.nn.Module,
    layers: list[Layer],
    data: LabelledArrays,
    spec: PruneSpec,
    kind: OutputKind,
    classes: int,
    progress: ProgressFn,
) -> dict[str, Any]:
    """Prune ``layers`` to ``spec.sparsity`` over ``spec.steps`` fine-tuning steps; returns the final masks."""
    import torch

    torch.manual_seed(spec.seed)
    if not isinstance(module, torch.fx.GraphModule):
        module.eval()  # BN stats and dropout frozen on purpose (module docstring); .pt2 graphs already are
    params = [p for p in module.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=spec.lr, weight_decay=0.0)
    gen = np.random.default_rng(spec.seed)
    ramp = max(1, int(0.7 * spec.steps))
    every = max(1, ramp // 10)
    masks = masks_for(module, layers, spec.sparsity if spec.steps == 0 else 0.0, spec.pattern)
    target_y = torch.from_numpy(data.y_train)
    for step in range(spec.steps):
        if step % every == 0 or step == ramp:
            frac = min(1.0, (step + every) / ramp)
            current = spec.sparsity * (1.0 - (1.0 - frac) ** 3)
            masks = masks_for(module, layers, current, spec.pattern)
            apply_masks(module, masks)
        idx = gen.integers(0, len(data.x_train), spec.batch)
        xb = torch.from_numpy(data.x_train[idx])
        flip = torch.from_numpy(gen.random(len(idx)) < 0.5)
        xb = torch.where(flip[:, None, None, None], xb.flip(3), xb)
        out = module(xb)
        out = out[0] if isinstance(out, (tuple, list)) else out
        out = out.reshape(len(idx), -1)
        yb = target_y[idx]
        if classes == 1:
            logit = out[:, 0] if kind is OutputKind.LOGITS else torch.logit(out[:, 0].clamp(1e-6, 1 - 1e-6))
            loss = torch.nn.functional.binary_cross_entropy_with_logits(logit, yb.float())
        else:
            logits = out if kind is OutputKind.LOGITS else out.clamp_min(1e-6).log()
            loss = torch.nn.functional.cross_entropy(logits, yb)
        opt.zero_grad()
        loss.backward()  # type: ignore[no-untyped-call]
        opt.step()
        apply_masks(module, masks)
        if step % 10 == 0:
            progress(f"fine-tuning (loss {float(loss.detach()):.3f})", step, spec.steps)
    masks = masks_for(module, layers, spec.sparsity, spec.pattern)
    apply_masks(module, masks)
    return masks


def prune(spec: PruneSpec, progress: ProgressFn | None = None) -> PruneResult:
    """Load, prune with fine-tuning, save ``<name>.pt2`` and ``prune.json`` in ``spec.out_dir``."""
    import torch

    from edgekit.loading import load_model, probe_output
    from edgekit.spec import InputSpec, OutputSpec

    report: ProgressFn = progress or (lambda _m, _d, _t: None)
    out_dir = ensure_output_dir(spec.out_dir)
    start = time.perf_counter()
    report("loading model", 0, 1)
    loaded = load_model(spec.source)
    module = trainable_module(loaded, spec.source)
    if spec.data is None:
        data = sample_arrays()
    else:
        shape = spec.input_shape or loaded.recorded_input_shape or (1, 3, 224, 224)
        pre, _ = resolve_preprocess(shape[2], shape[3], loaded.preprocess, spec.mean, spec.std, spec.resize)
        data = folder_arrays(spec.data, pre, spec.val_fraction, spec.seed)
    shape = (1, *data.x_train.shape[1:])
    output = probe_output(module, InputSpec(shape=shape), OutputSpec())
    kind, classes = output.kind, output.classes
    layers = eligible(find_layers(module, shape), spec.pattern)
    if not layers:
        raise UsageError(f"the model has no layers the {spec.pattern!r} pattern can prune")
    auc_before = auc_of(module, data.x_val, data.y_val, kind, classes)
    one_shot = _one_shot_auc(module, layers, spec, data, kind, classes)
    gradual_prune(module, layers, data, spec, kind, classes, report)
    auc_after = auc_of(module, data.x_val, data.y_val, kind, classes)
    per_layer = []
    zeros = total = 0
    for la in layers:
        w = module.get_parameter(la.name).detach()
        z = int((w == 0).sum())
        zeros, total = zeros + z, total + w.numel()
        per_layer.append(
            {"name": la.name, "kind": la.kind, "shape": list(la.shape), "sparsity": round(z / w.numel(), 4)}
        )
    with captured_output():
        ep = torch.export.export(module, (torch.zeros(shape),), strict=False)
    buf = io.BytesIO()
    torch.export.save(ep, buf)
    model_path = out_dir / f"{spec.name}.pt2"
    atomic_write_bytes(model_path, buf.getvalue())
    result = PruneResult(
        model=str(model_path),
        pattern=spec.pattern,
        target_sparsity=spec.sparsity,
        achieved_sparsity=round(zeros / total, 4),
        layers=tuple(per_layer),
        auc_before=auc_before,
        auc_one_shot=one_shot,
        auc_after=auc_after,
        steps=spec.steps,
        seconds=round(time.perf_counter() - start, 1),
        data=data.description,
    )
    atomic_write_text(out_dir / PRUNE_REPORT, json.dumps(result.to_dict(), indent=2) + "\n")
    report("done", 1, 1)
    return result


def _one_shot_auc(
    module: torch.nn.Module,
    layers: list[Layer],
    spec: PruneSpec,
    data: LabelledArrays,
    kind: OutputKind,
    classes: int,
) -> float | None:
    """AUC right after magnitude pruning, before any fine-tuning (shows what fine-tuning bought)."""
    saved = {la.name: module.get_parameter(la.name).detach().clone() for la in layers}
    apply_masks(module, masks_for(module, layers, spec.sparsity, spec.pattern))
    auc = auc_of(module, data.x_val, data.y_val, kind, classes)
    import torch

    with torch.no_grad():
        for name, w in saved.items():
            module.get_parameter(name).copy_(w)
    return auc
