"""Learned rounding of INT8 weights on a PyTorch graph, before conversion.

Instead of rounding every weight to the nearest INT8 grid point, choose its integer so that the
layer's output on calibration inputs matches the float layer's. Needs only unlabelled
calibration images. Two solvers:

- ``gptq`` (the default): Frantar et al., "GPTQ" (ICLR 2023), on the Gram matrix of the layer's
  input vectors: weights rounded one input at a time, each rounding error pushed onto the inputs
  not yet rounded. Closed form, one pass over the network (MobileNetV2 at 128x128, 64 images:
  about 90 s on 2 cores). Where a layer sees many more input vectors than it has weights per row,
  the weights are first refitted (ridge least squares) so that on the INT8 model's inputs they
  give what the float weights give on the float model's inputs, taking out the error that rounding
  the input brought in. On MobileNetV2 (simulated INT8, 256 unseen images): AdaRound 18.7 dB in
  300 s on 40 of 53 layers, GPTQ 18.4 dB, GPTQ with the refit 20.1 dB on all 53.
- ``adaround``: Nagel et al., "Up or Down? Adaptive Rounding for Post-Training Quantization"
  (ICML 2020): per weight, up or down learned by Adam on a relaxed rounding.

The grid is the one both converters use on the folded weights (BatchNorm folded into the conv):
symmetric per output channel, scale ``max|w| / 127``, integers in [-127, 127]
(ai-edge-quantizer's ``symmetric`` signed narrow range, and onnxruntime's ``QInt8`` symmetric
weights alike). The learned integers ``q`` are written back as weights ``q * scale`` (divided by
the BatchNorm gain, which the converter multiplies back in), so the converter's own
round-to-nearest lands on ``q`` exactly: each channel's largest weight is ``+-127 * scale`` and
is never moved, so the converter's scale is the one learned against. Tests read the converted
INT8 weights back and compare.

Layers are taken in graph order. Each one learns against the float model's layer output while
its input comes from the model as INT8 will compute it: every earlier layer already rounded as
learned and every conv/linear input on the way rounded to 8 bits per tensor (asymmetric, as the
converters quantize activations) over an MSE-optimal range chosen as the repair's range steps
choose theirs. Error accumulated upstream is corrected where it lands (as in BRECQ and QDrop).
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
#: the most Gram-matrix entries (groups x d x d, float64, two of them) GPTQ builds for one layer:
#: 2**26 is 512 MB each. CREPE's second conv (1024 channels x 64 taps: d = 65,536) would need 34 GB;
#: such a layer keeps nearest rounding (counted in the report)
_GRAM_ENTRIES = 2**26


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
    too_wide: int = 0  #: layers too wide for GPTQ: their float weights left as they were

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


def _geometry(node: Any) -> tuple[Any, Any, Any]:
    """A conv node's (stride, padding, dilation), its defaults filled in."""
    given = list(node.args[3:6])
    return tuple((given + [(1, 1), (0, 0), (1, 1)][len(given) :])[:3])  # type: ignore[return-value]


def _op(node: Any, groups: int) -> Callable[[Any, Any], Any]:
    """The unit's own computation without its bias: conv2d with the node's stride, padding and
    dilation, or linear."""
    import torch.nn.functional as F

    if "conv" in str(node.target):
        stride, padding, dilation = _geometry(node)
        return lambda x, w: F.conv2d(x, w, None, stride, padding, dilation, groups)
    return lambda x, w: F.linear(x, w)


def _input_gram(node: Any, groups: int, x: Any, x_ref: Any, w_shape: tuple[int, ...]) -> tuple[Any, Any, int]:
    """Per group, the Gram matrix ``sum x x^T`` of the layer's input vectors (one per output pixel,
    laid out as the weight's flattened row: input channel, kernel row, kernel column) and the
    cross term ``sum x_ref x^T`` with the float model's input (two (groups, d, d) arrays), and how
    many input vectors they sum."""
    import torch
    import torch.nn.functional as F

    d = int(np.prod(w_shape[1:]))
    gram = torch.zeros(groups, d, d, dtype=torch.float64)
    cross = torch.zeros(groups, d, d, dtype=torch.float64)

    def columns(xi: Any) -> Any:
        if "conv" in str(node.target):
            stride, padding, dilation = _geometry(node)
            cols = F.unfold(xi, tuple(w_shape[2:]), dilation, padding, stride)  # (1, C*k*k, L)
            return cols.reshape(groups, d, -1).double()
        return xi.reshape(-1, xi.shape[-1]).T.reshape(1, d, -1).double()

    count = 0
    for i in range(len(x)):
        cols, ref = columns(x[i : i + 1]), columns(x_ref[i : i + 1])
        gram += cols @ cols.transpose(1, 2)
        cross += ref @ cols.transpose(1, 2)
        count += cols.shape[-1]
    return gram, cross, count


def _damped(gram: Any, damping: float) -> Any:
    """``gram`` with ``damping`` times its mean diagonal added (a unit diagonal for an input that
    is always 0: its row and column are all zero, and nothing is pushed onto the others)."""
    import torch

    diag = torch.diagonal(gram, dim1=1, dim2=2)
    damp = damping * diag.mean(1, keepdim=True).clamp_min(1e-12)
    return gram + torch.diag_embed(torch.where(diag <= 0, torch.ones_like(diag), damp))


def _input_corrected(w: Any, gram: Any, cross: Any, damping: float = 0.1) -> Any:
    """Weights ``w`` (groups, rows, d) refitted so that on the INT8 model's inputs they give what
    ``w`` gives on the float model's: ridge least squares pulled towards ``w``,
    ``w (C + l I) (H + l I)^-1`` (``H`` the Gram matrix of the INT8 inputs, ``C`` the cross term
    with the float ones, ``l`` ``damping`` times H's mean diagonal), which takes out, where this
    layer can, the error that rounding its input brought in."""
    import torch

    diag = torch.diagonal(gram, dim1=1, dim2=2)
    ridge = torch.diag_embed((damping * diag.mean(1, keepdim=True).clamp_min(1e-12)).expand_as(diag))
    return (w.double() @ (cross + ridge) @ torch.linalg.inv(gram + ridge)).float()


def _compensated_rounding(w: Any, gram: Any, levels: int, damping: float = 0.01) -> Any:
    """Integers for ``w`` (grid units: the float weights divided by their row's scale; shape
    (groups, rows, d)) rounded one input at a time, each rounding error pushed onto the inputs
    not yet rounded through the inverse Gram matrix (GPTQ, Frantar et al., ICLR 2023), in order
    of decreasing input power. Every row's largest weight (exactly +-``levels``) takes no share of
    the pushed errors, so the row keeps the scale the converter will compute."""
    import torch

    g, rows, d = w.shape
    gram = _damped(gram, damping)
    order = torch.argsort(torch.diagonal(gram, dim1=1, dim2=2), dim=1, descending=True)  # (g, d)
    gi = torch.arange(g)[:, None, None]
    gram = gram[gi, order[:, :, None], order[:, None, :]]
    u = torch.gather(w.double(), 2, order[:, None, :].expand(g, rows, d)).clone()
    locked = u.abs() >= u.abs().amax(dim=2, keepdim=True)
    inv = torch.linalg.cholesky(torch.cholesky_inverse(torch.linalg.cholesky(gram)), upper=True)
    q = torch.zeros_like(u)
    for i in range(d):
        column = u[:, :, i]
        qi = torch.clamp(torch.round(column), -levels, levels)
        q[:, :, i] = qi
        err = (column - qi) / inv[:, i, i][:, None]
        u[:, :, i + 1 :] -= (err[:, :, None] * inv[:, None, i, i + 1 :]) * (~locked[:, :, i + 1 :])
    out = torch.empty_like(q)
    out.scatter_(2, order[:, None, :].expand(g, rows, d), q)
    return out.float()


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
    stride, padding, _ = _geometry(node)
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
    solver: str = "gptq",
) -> tuple[Any, RoundingReport]:
    """A copy of ``module`` whose conv/linear weights sit on INT8 grid points learned on
    ``calibration`` (NCHW float samples) by ``solver`` (``gptq`` or ``adaround``), and what it did.

    ``module`` is a ``torch.export`` graph module or an ``nn.Module`` (exported first).
    AdaRound takes up to ``iterations`` Adam steps per layer on mini-batches of ``batch`` samples
    (pointwise layers on sampled pixels); with
    ``budget_s`` each layer gets an equal share of the time left (fewer steps on a slow layer),
    and once the budget is spent the remaining layers keep nearest rounding (said in the report).
    With ``sensitivity`` each output element's error is weighted by the squared gradient of the
    model's output with respect to it (:func:`output_sensitivity`). The caller's module is never
    modified.
    """
    import torch

    if solver not in ("gptq", "adaround"):
        raise ValueError(f"unknown rounding solver {solver!r}: gptq or adaround")
    with torch.inference_mode(False):
        return _learn(module, calibration, iterations, batch, budget_s, levels, sensitivity, progress, solver)


def _learn(
    module: Any,
    calibration: np.ndarray,
    iterations: int,
    batch: int,
    budget_s: float | None,
    levels: int,
    sensitivity: bool,
    progress: Callable[[str], None] | None,
    solver: str,
) -> tuple[Any, RoundingReport]:
    import torch

    from edgekit.compress.equalize import find_units, folded_weight, param

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
    too_wide = 0
    wide: dict[str, Any] = {}  # weight path -> float weight of the layers too wide for GPTQ
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
        width = int(np.prod(w_float.shape[1:]))
        if solver == "gptq" and unit.groups * width * width > _GRAM_ENTRIES:
            too_wide += 1  # its Gram matrix would not fit in memory: never built
            wide[unit.weight] = param(gm, unit.weight).detach().clone()
            with torch.no_grad():  # the converter's nearest, while later layers learn against it
                place_on_grid(gm, unit, torch.clamp(torch.round(scaled), -levels, levels), scale, gain)
            continue
        x_float = _tap(float_gm, unit.node, x, None)
        # the input as the INT8 model computes it: earlier layers rounded as learned, every layer
        # input on the way (this one's included) rounded to 8 bits over its MSE-optimal range
        x_quant = _tap(gm, unit.node, x, ranges)
        if solver == "gptq":
            gram, cross, samples = _input_gram(node, unit.groups, x_quant, x_float, tuple(w_float.shape))
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
        if solver == "gptq":
            shape = (unit.groups, w_float.shape[0] // unit.groups, -1)
            refit = _input_corrected(w_float.reshape(shape), gram, cross).reshape(w_float.shape)
            with torch.no_grad():
                better = float((weight * (op(x_quant, refit) - target).pow(2)).mean()) < err_near[-1] * power
            # a refit needs many more input vectors than weights per row, or it fits the noise of
            # the calibration images (a 4x4 map of 960 channels on 64 images: -10 dB unseen)
            if better and torch.isfinite(refit).all() and samples >= 16 * gram.shape[-1]:
                # the refitted weights set their own grid: the converter takes each row's largest
                scale, scaled = int8_grid(refit, levels)
                nearest = torch.clamp(torch.round(scaled), -levels, levels)
            q = _compensated_rounding(scaled.reshape(shape), gram, levels).reshape(w_float.shape)
        else:
            q, steps = _adaround(op, x_quant, target, weight, scaled, scale, unit_err, per_batch, iterations,
                                 _share(budget_s, start, len(units) - k), levels, generator)  # fmt: skip
            most_steps = max(most_steps, steps)
        with torch.no_grad():
            learned = q * scale
            err = float((weight * (op(x_quant, learned) - target).pow(2)).mean()) / power
            if err > err_near[-1]:  # learning did not help this layer: keep nearest
                scale, scaled = int8_grid(w_float, levels)
                q = nearest = torch.clamp(torch.round(scaled), -levels, levels)
                learned, err = nearest * scale, err_near[-1]
            err_learned.append(err)
            total += q.numel()
            flipped += int((q != nearest).sum())
            place_on_grid(gm, unit, q, scale, gain)
        done += 1
        if progress:
            progress(f"learned rounding: layer {k + 1}/{len(units)} ({err_near[-1]:.2e} -> {err:.2e})")
    with torch.no_grad():
        # then its float weights back: the converter rounds them to the same nearest integers,
        # and the distillation rung after this one can still move them across a rounding boundary
        for path, original in wide.items():
            param(gm, path).copy_(original)
    report = RoundingReport(
        layers=done,
        weights=total,
        flipped=flipped,
        error_nearest=float(np.mean(err_near)) if err_near else 0.0,
        error_learned=float(np.mean(err_learned)) if err_learned else 0.0,
        seconds=time.perf_counter() - start,
        iterations=most_steps,
        budget_hit=budget_hit,
        too_wide=too_wide,
    )
    return gm, report


def _share(budget_s: float | None, start: float, layers_left: int) -> float | None:
    """This layer's equal share of the time left, or None without a budget."""
    return None if budget_s is None else (budget_s - (time.perf_counter() - start)) / layers_left


def _adaround(
    op: Callable[[Any, Any], Any],
    x_quant: Any,
    target: Any,
    weight: Any,
    scaled: Any,
    scale: Any,
    unit_err: float,
    per_batch: int,
    iterations: int,
    share: float | None,
    levels: int,
    generator: Any,
) -> tuple[Any, int]:
    """AdaRound's integers for one layer (``scaled``: its weights in grid units) and the Adam steps taken."""
    import torch

    floor = torch.floor(scaled)
    rest = scaled - floor
    # h(v) starts at the fractional part: the soft weights start at the float ones; a weight
    # already on the grid (a zero, a channel's largest) starts, and stays, at h = 0 exactly
    v = -torch.log((_ZETA - _GAMMA) / (rest.clamp(0.01, 0.99) - _GAMMA) - 1)
    v = torch.where(rest == 0, torch.full_like(v, -6.0), v).requires_grad_(True)
    opt = torch.optim.Adam([v], lr=1e-2)
    n = min(per_batch, len(x_quant))
    steps = iterations
    if share is not None:
        probe = time.perf_counter()
        with torch.no_grad():
            op(x_quant[:n], scaled * scale)
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
        return torch.clamp(floor + (_rectified(v) >= 0.5).float(), -levels, levels), steps
