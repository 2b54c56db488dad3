"""Heatmaps that belong to the variant they explain.

Grad-CAM for the PyTorch model (gradients of the fake logit at the last convolution);
occlusion for any runtime (grey out each cell of a grid and watch the fake score drop),
run through the variant's own runner with a bounded number of inferences (grid^2 + 1).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from edgekit.errors import AnalysisError


def _conv_output_with_grad(module: Any, inp: Any) -> tuple[Any, Any]:
    """Run ``module`` keeping the last spatial convolution's output (with its grad retained).

    Works for eager modules (a forward hook on the last Conv2d) and for torch.export
    GraphModules, whose convolutions are graph nodes, not modules (an FX interpreter).
    """
    import torch

    convs = [m for m in module.modules() if isinstance(m, torch.nn.Conv2d)]
    kept: list[torch.Tensor] = []
    if convs:
        spatial = [m for m in convs if m.kernel_size != (1, 1)] or convs
        handle = spatial[-1].register_forward_hook(lambda _m, _i, o: kept.append(o))
        try:
            out = module(inp)
        finally:
            handle.remove()
    else:
        conv_ops = {torch.ops.aten.conv2d.default, torch.ops.aten.convolution.default}
        nodes = [n for n in module.graph.nodes if n.op == "call_function" and n.target in conv_ops]
        if not nodes:
            raise AnalysisError("the model has no convolution for Grad-CAM to explain; pass --no-heatmaps")

        class _Keep(torch.fx.Interpreter):
            def run_node(self, n: Any) -> Any:
                result = super().run_node(n)
                if n in nodes and result.dim() == 4 and result.shape[-1] > 1:
                    kept.append(result)
                return result

        out = _Keep(module).run(inp)
    if not kept:
        raise AnalysisError("the model has no spatial convolution output to explain; pass --no-heatmaps")
    act = kept[-1]
    act.retain_grad()
    return (out[0] if isinstance(out, (tuple, list)) else out), act


def gradcam(module: Any, x: np.ndarray, positive_index: int = 0) -> np.ndarray:
    """Grad-CAM (H x W in [0, 1]) of ``module`` for one NCHW float32 input (batch 1)."""
    import torch

    with torch.enable_grad():
        inp = torch.from_numpy(x.copy()).requires_grad_(True)
        out, act = _conv_output_with_grad(module, inp)
        out.reshape(-1)[positive_index].backward()
    a, g = act.detach()[0], act.grad.detach()[0]
    cam = torch.relu((g.mean(dim=(1, 2), keepdim=True) * a).sum(0))
    cam = torch.nn.functional.interpolate(
        cam[None, None], size=x.shape[2:], mode="bilinear", align_corners=False
    )[0, 0]
    return _normalise(cam.numpy())


def occlusion(
    score: Callable[[np.ndarray], float], x: np.ndarray, grid: int = 8, fill: float = 0.0
) -> np.ndarray:
    """Occlusion map (H x W in [0, 1]) for one NCHW input: drop of the fake score per grid cell."""
    base = score(x)
    h, w = x.shape[2], x.shape[3]
    heat = np.zeros((grid, grid), np.float64)
    for i in range(grid):
        for j in range(grid):
            y0, y1 = i * h // grid, (i + 1) * h // grid
            x0, x1 = j * w // grid, (j + 1) * w // grid
            occluded = x.copy()
            occluded[:, :, y0:y1, x0:x1] = fill
            heat[i, j] = max(base - score(occluded), 0.0)
    up = np.kron(heat, np.ones((h // grid + 1, w // grid + 1)))[:h, :w]
    return _normalise(up)


def _normalise(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, np.float64)
    span = float(m.max() - m.min())
    out: np.ndarray = (m - m.min()) / span if span > 0 else np.zeros_like(m)
    return out


def top_iou(a: np.ndarray, b: np.ndarray, fraction: float = 0.1) -> float:
    """IoU of the top ``fraction`` pixels of two heatmaps (1.0 when both are flat)."""
    k = max(1, int(a.size * fraction))
    ia = set(np.argsort(a.ravel())[-k:].tolist())
    ib = set(np.argsort(b.ravel())[-k:].tolist())
    return len(ia & ib) / len(ia | ib)


def overlay(image: np.ndarray, heat: np.ndarray) -> np.ndarray:
    """uint8 RGB image with a red-yellow heatmap blended on top."""
    import matplotlib

    cmap = matplotlib.colormaps["jet"]
    colored = cmap(heat)[..., :3] * 255
    mixed = 0.55 * image.astype(np.float64) + 0.45 * colored
    out: np.ndarray = np.clip(mixed, 0, 255).astype(np.uint8)
    return out
