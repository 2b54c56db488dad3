"""Learned rounding of INT8 weights (AdaRound) on a PyTorch graph, before conversion.

Nagel et al., "Up or Down? Adaptive Rounding for Post-Training Quantization" (ICML 2020): instead
of rounding every weight to the nearest INT8 grid point, learn per weight whether it rounds up or
down so that the layer's output on calibration inputs matches the float layer's. Needs only
unlabelled calibration images.

The grid is the one both converters use on the folded weights (BatchNorm folded into the conv):
symmetric per output channel, scale ``max|w| / 127``, integers in [-127, 127]
(ai-edge-quantizer's ``symmetric`` signed narrow range, and onnxruntime's ``QInt8`` symmetric
weights alike). The learned integers ``q`` are written back as weights ``q * scale`` (divided by
the BatchNorm gain, which the converter multiplies back in), so the converter's own
round-to-nearest lands on ``q`` exactly: each channel's largest weight is ``+-127 * scale``, an
integer either way, so the converter's scale is the one learned against. Tests read the
converted INT8 weights back and compare.

Layers are taken in graph order. Each one learns against the float model's layer output while
its input comes from the model as INT8 will compute it: every earlier layer already rounded as
learned and every conv/linear input on the way rounded to 8 bits per tensor (asymmetric, as the
converters quantize activations) over an MSE-optimal range chosen as the repair's range steps
choose theirs. Error accumulated upstream is corrected where it lands (as in BRECQ and QDrop).
Pointwise layers (linear, 1x1 convs) learn on sampled pixels, others on sampled images.
"""

from __future__ import annotations

import contextlib
import copy
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

#: AdaRound's rectified sigmoid stretch (the paper's values)
_ZETA, _GAMMA = 1.1, -0.1
#: the regulariser's weight against a reconstruction error measured in units of nearest rounding's
#: (so it means the same on every layer); 0.01 and 0.1 left every weight at nearest on a test layer
#: whose right rounding is known, 1.0 found it (tests/edgekit/compress/test_rounding.py)
_LAMBDA = 1.0


@dataclass(frozen=True)
class RoundingReport:
    """What :func:`learn_rounding` did: layers rounded, weights rounded away from nearest, the
    layers' output error (mean squared, relative to the float output's power) with nearest and
    with learned rounding, and the time it took."""

    layers: int
    weights: int
    flipped: int
    error_nearest: float
    error_learned: float
    seconds: float
    iterations: int  #: the most Adam steps a layer took
    budget_hit: bool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON form (the manifest's repair ``changes``)."""
        d = asdict(self)
        for k in ("error_nearest", "error_learned", "seconds"):
            d[k] = float(f"{d[k]:.4g}")
        return d


def int8_grid(w: Any, levels: int = 127) -> tuple[Any, Any]:
    """(scale per output channel shaped to broadcast over ``w``, ``w / scale``) for symmetric
    per-channel INT8 with ``levels`` steps each side (the converters' weight grid)."""
    import torch

    flat = w.reshape(w.shape[0], -1)
    # float64 as both quantizers compute it; the weights themselves stay float32
    scale = (flat.double().abs().amax(dim=1) / levels).clamp_min(1e-9).float()
    scale = scale.reshape(-1, *([1] * (w.dim() - 1)))
    return scale, torch.as_tensor(w) / scale


def _rectified(v: Any) -> Any:
    import torch

    return torch.clamp(torch.sigmoid(v) * (_ZETA - _GAMMA) + _GAMMA, 0.0, 1.0)


def _op(node: Any, groups: int) -> Callable[[Any, Any], Any]:
    """The unit's own computation without its bias: conv2d with the node's stride, padding and
    dilation, or linear."""
    import torch.nn.functional as F

    if "conv" in str(node.target):
        given = list(node.args[3:6])
        stride, padding, dilation = (given + [(1, 1), (0, 0), (1, 1)][len(given) :])[:3]
        return lambda x, w: F.conv2d(x, w, None, stride, padding, dilation, groups)
    return lambda x, w: F.linear(x, w)


def fake_quant(x: Any, lo: float, hi: float, straight_through: bool = False) -> Any:
    """Per-tensor asymmetric 8-bit rounding over [lo, hi] (the range includes zero); with
    ``straight_through`` the rounding passes gradients through unchanged (distillation)."""
    import torch

    lo, hi = min(lo, 0.0), max(hi, 0.0)
    scale = max(hi - lo, 1e-12) / 255.0
    zero = round(-lo / scale)
    y = x / scale
    rounded = y + (y.round() - y).detach() if straight_through else torch.round(y)
    return (torch.clamp(rounded + zero, 0, 255) - zero) * scale


def place_on_grid(gm: Any, unit: Any, q: Any, scale: Any, gain: Any) -> None:
    """Write integers ``q`` of the grid ``scale`` back as ``unit``'s weight, divided by the
    BatchNorm gain the converter folds back in, so the converter's rounding lands on ``q``."""
    from edgekit.compress.equalize import param

    w = param(gm, unit.weight)
    w.copy_(q * scale / gain.reshape(-1, *([1] * (w.dim() - 1))))


def _tap(gm: Any, node_name: str, x: np.ndarray, ranges: dict[str, tuple[float, float]] | None) -> Any:
    """The value flowing into node ``node_name``'s first argument for every sample of ``x``; with
    ``ranges``, every conv/linear input on the way is first rounded to 8 bits over its range (as
    the converted model computes them)."""
    import torch

    seen: list[Any] = []

    class Tap(torch.fx.Interpreter):
        def run_node(self, n: Any) -> Any:
            arg = n.args[0] if n.args else None
            if isinstance(arg, torch.fx.Node) and ranges is not None and n.name in ranges:
                self.env[arg] = fake_quant(self.env[arg], *ranges[n.name])
            if n.name == node_name:
                seen.append(self.env[arg] if isinstance(arg, torch.fx.Node) else arg)
                raise _Stop
            return super().run_node(n)

    tap = Tap(gm)
    with torch.no_grad():  # not inference mode: the values feed an autograd graph later
        for i in range(len(x)):
            with contextlib.suppress(_Stop):  # the pass ends at the tapped node
                tap.run(torch.from_numpy(np.ascontiguousarray(x[i : i + 1], dtype=np.float32)))
    return torch.cat([s.clone() for s in seen])


def input_ranges(
    gm: Any, names: list[str], x: np.ndarray, per_tensor: int = 20_000
) -> dict[str, tuple[float, float]]:
    """An MSE-optimal 8-bit range for the input of every named node, from a bounded random sample
    of its values on ``x`` (the range steps of the repair choose theirs the same way)."""
    import torch

    from edgekit.compress.ranges import activation_range

    wanted = set(names)
    samples: dict[str, list[np.ndarray]] = {n: [] for n in names}
    rng = np.random.default_rng(0)

    class Sampler(torch.fx.Interpreter):
        def run_node(self, n: Any) -> Any:
            if n.name in wanted and isinstance(n.args[0], torch.fx.Node):
                flat = self.env[n.args[0]].reshape(-1).numpy()
                take = max(1, per_tensor // len(x))
                samples[n.name].append(flat[rng.integers(0, flat.size, min(take, flat.size))])
            return super().run_node(n)

    sampler = Sampler(gm)
    with torch.no_grad():
        for i in range(len(x)):
            sampler.run(torch.from_numpy(np.ascontiguousarray(x[i : i + 1], dtype=np.float32)))
    return {n: activation_range(np.concatenate(v), None) for n, v in samples.items() if v}


def output_sensitivity(gm: Any, outs: dict[str, str], x: np.ndarray) -> dict[str, Any]:
    """For each unit (``outs``: unit node -> the node whose value is its output), the squared
    gradient of the model's output (summed) with respect to that value, per element and sample:
    how much an error there moves what the model outputs (BRECQ's Fisher weighting). Normalised
    to mean 1 per unit."""
    import torch

    wanted = {out: unit for unit, out in outs.items()}
    grads: dict[str, list[Any]] = {u: [] for u in outs}

    class Record(torch.fx.Interpreter):
        kept: dict[str, Any]

        def run_node(self, n: Any) -> Any:
            value = super().run_node(n)
            if n.name in wanted and isinstance(value, torch.Tensor) and value.requires_grad:
                value.retain_grad()
                self.kept[wanted[n.name]] = value
            return value

    for i in range(len(x)):
        rec = Record(gm)
        rec.kept = {}
        inp = torch.from_numpy(np.ascontiguousarray(x[i : i + 1], dtype=np.float32)).requires_grad_(True)
        with torch.enable_grad():
            out = rec.run(inp)
            (out[0] if isinstance(out, (tuple, list)) else out).sum().backward()
        for unit, value in rec.kept.items():
            if value.grad is not None:
                grads[unit].append(value.grad.detach().pow(2))
    result = {}
    for unit, gs in grads.items():
        if gs:
            g = torch.cat(gs)
            result[unit] = g / g.mean().clamp_min(1e-30)
    return result


def _pointwise(node: Any, groups: int, shape: tuple[int, ...]) -> bool:
    """A layer that is a matrix product per pixel (linear; 1x1 conv, stride 1, no padding, one
    group): its rows can be sampled across pixels and images, much cheaper than whole images."""
    if "linear" in str(node.target):
        return True
    kernel = tuple(shape[2:])
    given = list(node.args[3:6])
    stride, padding, _ = (given + [(1, 1), (0, 0), (1, 1)][len(given) :])[:3]
    return groups == 1 and kernel == (1, 1) and tuple(stride) == (1, 1) and tuple(padding) == (0, 0)


def _matmul(out_channels: int) -> Callable[[Any, Any], Any]:
    """A pointwise layer on rows: each row times the weight as an (out, in) matrix."""
    return lambda xs, w: xs @ w.reshape(out_channels, -1).T


def _rows(t: Any) -> Any:
    """(N, C, H, W) or (N, C) values as (pixels, C) rows."""
    return t.permute(0, 2, 3, 1).reshape(-1, t.shape[1]) if t.dim() == 4 else t.reshape(-1, t.shape[-1])


class _Stop(Exception):
    """Ends a forward pass once the tapped node's input is captured."""


def learn_rounding(
    module: Any,
    calibration: np.ndarray,
    iterations: int = 1000,
    batch: int = 8,
    budget_s: float | None = None,
    levels: int = 127,
    sensitivity: bool = True,
    progress: Callable[[str], None] | None = None,
) -> tuple[Any, RoundingReport]:
    """A copy of ``module`` whose conv/linear weights sit on INT8 grid points learned on
    ``calibration`` (NCHW float samples), and what it did.

    ``module`` is a ``torch.export`` graph module or an ``nn.Module`` (exported first).
    Up to ``iterations`` Adam steps per layer on mini-batches of ``batch`` samples; with
    ``budget_s`` each layer gets an equal share of the time left (fewer steps on a slow layer),
    and once the budget is spent the remaining layers keep nearest rounding (said in the report).
    With ``sensitivity`` each output element's error is weighted by the squared gradient of the
    model's output with respect to it (:func:`output_sensitivity`). The caller's module is never
    modified.
    """
    import torch

    with torch.inference_mode(False):
        return _learn(module, calibration, iterations, batch, budget_s, levels, sensitivity, progress)


def _learn(
    module: Any,
    calibration: np.ndarray,
    iterations: int,
    batch: int,
    budget_s: float | None,
    levels: int,
    sensitivity: bool,
    progress: Callable[[str], None] | None,
) -> tuple[Any, RoundingReport]:
    import torch

    from edgekit.compress.equalize import find_units, folded_weight

    start = time.perf_counter()
    x = np.ascontiguousarray(calibration, dtype=np.float32)
    gm = module
    if not hasattr(gm, "graph"):
        gm = torch.export.export(module.eval(), (torch.from_numpy(x[:1]),), strict=False).module()
    float_gm = gm
    gm = copy.deepcopy(gm)
    units = find_units(gm)
    by_node = {n.name: n for n in gm.graph.nodes}
    total = flipped = done = 0
    err_near: list[float] = []
    err_learned: list[float] = []
    most_steps = 0
    budget_hit = False
    generator = torch.Generator().manual_seed(0)
    ranges = input_ranges(float_gm, list(units), x)
    # each output element's error weighted by how much it moves the model's output: a layer's
    # plain MSE treats every channel alike, while a channel behind a large BatchNorm gain or near
    # a clamp moves the output far more (measured on MobileNetV2: plain MSE +2.5 dB)
    fisher = output_sensitivity(float_gm, {u.node: u.out for u in units.values()}, x) if sensitivity else {}
    for k, unit in enumerate(units.values()):
        if budget_s is not None and time.perf_counter() - start > budget_s:
            budget_hit = True
            break
        node = by_node[unit.node]
        w_float, gain = folded_weight(gm, unit)
        scale, scaled = int8_grid(w_float, levels)
        floor = torch.floor(scaled)
        x_float = _tap(float_gm, unit.node, x, None)
        # the input as the INT8 model computes it: earlier layers rounded as learned, every layer
        # input on the way (this one's included) rounded to 8 bits over its MSE-optimal range
        x_quant = _tap(gm, unit.node, x, ranges)
        op = _op(node, unit.groups)
        with torch.no_grad():
            target = op(x_float, w_float)
        weight = fisher.get(unit.node)
        if weight is None or weight.shape != target.shape:
            weight = torch.ones_like(target)
        if _pointwise(node, unit.groups, tuple(w_float.shape)):
            # sample pixels: a step is then a small matrix product, not a whole-image conv
            x_quant, target, weight = _rows(x_quant), _rows(target), _rows(weight)
            op = _matmul(w_float.shape[0])
            per_batch = 4096
        else:
            per_batch = batch
        with torch.no_grad():
            power = float((weight * target.pow(2)).mean()) or 1.0
            nearest = torch.clamp(torch.round(scaled), -levels, levels)
            err_near.append(float((weight * (op(x_quant, nearest * scale) - target).pow(2)).mean()) / power)
            # the reconstruction term in units of nearest rounding's error, so the regulariser's
            # weight means the same on every layer whatever its output's scale
            unit_err = max(err_near[-1] * power, 1e-20)
        rest = scaled - floor
        # h(v) starts at the fractional part: the soft weights start at the float ones; a weight
        # already on the grid (a zero, a channel's largest) starts, and stays, at h = 0 exactly
        v = -torch.log((_ZETA - _GAMMA) / (rest.clamp(0.01, 0.99) - _GAMMA) - 1)
        v = torch.where(rest == 0, torch.full_like(v, -6.0), v).requires_grad_(True)
        opt = torch.optim.Adam([v], lr=1e-2)
        n = min(per_batch, len(x_quant))
        steps = iterations
        if budget_s is not None:
            share = (budget_s - (time.perf_counter() - start)) / (len(units) - k)
            probe = time.perf_counter()
            with torch.no_grad():
                op(x_quant[:n], w_float)
            # forward + backward ~ 3 forwards, plus the optimizer
            per_step = 4 * (time.perf_counter() - probe) + 2e-4
            steps = max(50, min(iterations, int(share / per_step)))
        warm = steps // 5
        with torch.enable_grad():
            for it in range(steps):
                idx = torch.randint(0, len(x_quant), (n,), generator=generator)
                h = _rectified(v)
                soft = torch.clamp(floor + h, -levels, levels) * scale
                loss = (weight[idx] * (op(x_quant[idx], soft) - target[idx]).pow(2)).mean() / unit_err
                if it >= warm:  # then push every h to 0 or 1, ever more sharply (beta 20 -> 2)
                    beta = 20 - (20 - 2) * (it - warm) / max(1, steps - warm)
                    loss = loss + _LAMBDA * (1 - (2 * h - 1).abs().pow(beta)).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
        with torch.no_grad():
            q = torch.clamp(floor + (_rectified(v) >= 0.5).float(), -levels, levels)
            learned = q * scale
            err = float((weight * (op(x_quant, learned) - target).pow(2)).mean()) / power
            if err > err_near[-1]:  # learning did not help this layer: keep nearest
                q, learned, err = nearest, nearest * scale, err_near[-1]
            err_learned.append(err)
            total += q.numel()
            flipped += int((q != nearest).sum())
            place_on_grid(gm, unit, q, scale, gain)
        done += 1
        most_steps = max(most_steps, steps)
        if progress:
            progress(f"learned rounding: layer {k + 1}/{len(units)} ({err_near[-1]:.2e} -> {err:.2e})")
    report = RoundingReport(
        layers=done,
        weights=total,
        flipped=flipped,
        error_nearest=float(np.mean(err_near)) if err_near else 0.0,
        error_learned=float(np.mean(err_learned)) if err_learned else 0.0,
        seconds=time.perf_counter() - start,
        iterations=most_steps,
        budget_hit=budget_hit,
    )
    return gm, report
