"""Cross-layer equalization and bias correction on a PyTorch graph, before conversion.

Nagel et al., "Data-Free Quantization Through Weight Equalization and Bias Correction"
(ICCV 2019), applied to the model the exporters convert:

- **Cross-layer equalization** (CLE): for a pair ``A -> [BatchNorm] -> [ReLU | nothing] -> B``
  where A's output feeds only B, output channel ``i`` of A is divided by ``s_i`` and input
  channel ``i`` of B multiplied by it, with ``s_i = sqrt(r_A[i] / r_B[i])`` (``r`` the channel's
  weight range after folding BatchNorm). ReLU is positively homogeneous, so the float output
  is unchanged (tested to float rounding); pairs with ReLU6/hardtanh or other activations in
  between are left alone, since there the scaling would change what the model computes.
- **Activation equalization** (:func:`activation_equalize`, data-aware): the same rescaling aimed
  at the activations instead of the weights, across ReLU6 too within a headroom (see there).
- **Bias correction** (empirical): per-channel INT8 weight rounding (symmetric, scale
  ``max|w|/127`` per output channel, which is what LiteRT and ONNX Runtime's per-channel
  quantizers do on the folded weights) shifts each channel's mean output. That shift is
  measured on calibration inputs with float activations and subtracted from the channel's
  bias (BatchNorm's beta, or the conv's own bias). This one does change the float model, by
  design: it pre-compensates the quantizer's error, so parity is still judged against the
  original model.

Works on the ``GraphModule`` of a ``torch.export`` program (``aten.conv2d`` / ``aten.linear``
/ ``aten.batch_norm`` nodes reading ``get_attr`` parameters); plain ``nn.Module`` inputs are
exported first. Returns a new module; the caller's is never modified.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

_CONV = "aten.conv2d.default"
_LINEAR = "aten.linear.default"
_BN = "aten.batch_norm.default"
_HOMOGENEOUS = ("aten.relu.default", "aten.relu_.default")
_CLIPPED = ("aten.hardtanh.default", "aten.hardtanh_.default")


@dataclass(frozen=True)
class Unit:
    """A conv or linear layer with the BatchNorm that directly follows it (if any)."""

    node: str  #: the conv/linear node
    weight: str  #: parameter path of the weight
    bias: str | None
    groups: int
    bn: str | None = None  #: the batch_norm node
    bn_params: tuple[str, str, str, str] | None = None  #: weight, bias, running_mean, running_var
    bn_eps: float = 1e-5
    out: str = ""  #: the node whose value is the unit's output


@dataclass(frozen=True)
class EqualizeReport:
    """What :func:`equalize` changed: the (A, B) node pairs equalized, pairs left alone, and the
    layers whose bias was corrected with the largest shift applied."""

    pairs: tuple[tuple[str, str], ...] = ()
    skipped_pairs: int = 0
    corrected: tuple[str, ...] = ()
    max_shift: float = 0.0


def _param_name(gm: Any, node: Any) -> str | None:
    return str(node.target) if node is not None and getattr(node, "op", "") == "get_attr" else None


def param(gm: Any, name: str) -> Any:
    """The parameter or buffer of ``gm`` at dotted path ``name``."""
    obj = gm
    for part in name.split("."):
        obj = getattr(obj, part)
    return obj


def find_units(gm: Any) -> dict[str, Unit]:
    """Every conv2d/linear node whose weight (and bias) are parameters, with its following BatchNorm."""
    units: dict[str, Unit] = {}
    for node in gm.graph.nodes:
        target = str(node.target)
        if node.op != "call_function" or target not in (_CONV, _LINEAR):
            continue
        weight = _param_name(gm, node.args[1])
        bias_arg = node.args[2] if len(node.args) > 2 else node.kwargs.get("bias")
        bias = _param_name(gm, bias_arg)
        if weight is None or (bias_arg is not None and bias is None):
            continue
        groups = int(node.args[6]) if target == _CONV and len(node.args) > 6 else 1
        bn, bn_params, eps, out = None, None, 1e-5, node.name
        users = list(node.users)
        if len(users) == 1 and str(users[0].target) == _BN:
            b = users[0]
            names = tuple(_param_name(gm, a) for a in b.args[1:5])
            if all(names) and not b.args[5]:  # inference-mode batch norm only
                bn, bn_params, eps, out = b.name, names, float(b.args[7]), b.name  # type: ignore[assignment]
        units[node.name] = Unit(node.name, weight, bias, groups, bn, bn_params, eps, out)  # type: ignore[arg-type]
    return units


def folded_weight(gm: Any, u: Unit) -> tuple[Any, Any]:
    """(weight, per-output-channel gain) with the BatchNorm folded in."""
    import torch

    w = param(gm, u.weight).detach()
    if u.bn_params is None:
        return w, torch.ones(w.shape[0])
    gamma, _, _, var = (param(gm, n).detach() for n in u.bn_params)
    gain = gamma / torch.sqrt(var + u.bn_eps)
    return w * gain.reshape(-1, *([1] * (w.dim() - 1))), gain


def _relu6(node: Any) -> bool:
    if str(node.target) in ("aten.relu6.default", "aten.relu6_.default"):
        return True
    return str(node.target) in _CLIPPED and tuple(node.args[1:3]) == (0.0, 6.0)


def _pairs(
    gm: Any, units: dict[str, Unit], bounded: bool = False
) -> tuple[list[tuple[Unit, Unit, float]], int]:
    """(A, B, the activation's upper bound between them) for every A -> [BatchNorm] -> [ReLU |
    nothing] -> B, and with ``bounded`` also across ReLU6 (bound 6.0; else infinity)."""
    by_node = {n.name: n for n in gm.graph.nodes}
    pairs, skipped = [], 0
    for u in units.values():
        node = by_node[u.out]
        users = list(node.users)
        bound = float("inf")
        if len(users) == 1 and str(users[0].target) in _HOMOGENEOUS:
            node, users = users[0], list(users[0].users)
        elif bounded and len(users) == 1 and _relu6(users[0]):
            node, users, bound = users[0], list(users[0].users), 6.0
        if len(users) != 1 or users[0].name not in units:
            continue
        b = units[users[0].name]
        if by_node[b.node].args[0] is not node:
            continue
        w_b = param(gm, b.weight)
        channels = param(gm, u.weight).shape[0]
        ok = (b.groups == 1 and w_b.shape[1] == channels) or (b.groups == channels and w_b.shape[1] == 1)
        if str(by_node[b.node].target) == _LINEAR and str(by_node[u.node].target) == _CONV:
            ok = False  # a flatten sits between; channels no longer line up one to one
        if ok and u.groups in (1, channels):
            pairs.append((u, b, bound))
        else:
            skipped += 1
    return pairs, skipped


def _scale_output(gm: Any, u: Unit, s: Any) -> None:
    """Divide output channel ``i`` of ``u`` by ``s[i]``."""
    import torch

    with torch.no_grad():
        if u.bn_params is not None:
            for name in u.bn_params[:2]:  # gamma, beta
                param(gm, name).div_(s)
        else:
            w = param(gm, u.weight)
            w.div_(s.reshape(-1, *([1] * (w.dim() - 1))))
            if u.bias is not None:
                param(gm, u.bias).div_(s)


def _scale_input(gm: Any, b: Unit, s: Any) -> None:
    """Multiply input channel ``i`` of ``b`` by ``s[i]``."""
    import torch

    with torch.no_grad():
        w = param(gm, b.weight)
        if b.groups == 1:
            w.mul_(s.reshape(1, -1, *([1] * (w.dim() - 2))))
        else:
            w.mul_(s.reshape(-1, *([1] * (w.dim() - 1))))


def cross_layer_equalize(
    gm: Any, units: dict[str, Unit], rounds: int = 4
) -> tuple[list[tuple[str, str]], int]:
    """Equalize every eligible pair in place, ``rounds`` sweeps; returns (pairs, pairs skipped)."""
    import torch

    pairs, skipped = _pairs(gm, units)
    for _ in range(rounds):
        for a, b, _ in pairs:
            wa, _ = folded_weight(gm, a)
            wb, _ = folded_weight(gm, b)
            r_a = wa.abs().reshape(wa.shape[0], -1).amax(dim=1)
            if b.groups == 1:
                r_b = wb.abs().transpose(0, 1).reshape(wb.shape[1], -1).amax(dim=1)
            else:
                r_b = wb.abs().reshape(wb.shape[0], -1).amax(dim=1)
            s = torch.sqrt(r_a / r_b.clamp_min(1e-12))
            # channels that are all zero on either side carry nothing: leave them as they are
            s = torch.where((r_a > 1e-12) & (r_b > 1e-12), s, torch.ones_like(s)).clamp(1e-4, 1e4)
            _scale_output(gm, a, s)
            _scale_input(gm, b, s)
    return [(a.node, b.node) for a, b, _ in pairs], skipped


def _input_extents(gm: Any, names: set[str], x: np.ndarray) -> dict[str, tuple[Any, float]]:
    """For every named unit: (per-channel max |input| on ``x``, the input's 99.99th percentile of
    |value| over a bounded sample), in one pass."""
    import torch

    peaks: dict[str, Any] = {}
    samples: dict[str, list[np.ndarray]] = {n: [] for n in names}
    rng = np.random.default_rng(0)

    class Recorder(torch.fx.Interpreter):
        def run_node(self, n: Any) -> Any:
            if n.name in names and isinstance(n.args[0], torch.fx.Node):
                v = self.env[n.args[0]].abs()
                channel = v.amax(dim=tuple(d for d in range(v.dim()) if d != 1)) if v.dim() > 2 else v.amax(0)
                peaks[n.name] = torch.maximum(peaks[n.name], channel) if n.name in peaks else channel
                flat = v.reshape(-1).numpy()
                samples[n.name].append(flat[rng.integers(0, flat.size, min(flat.size, 20_000 // len(x) + 1))])
            return super().run_node(n)

    recorder = Recorder(gm)
    with torch.no_grad():
        for i in range(len(x)):
            recorder.run(torch.from_numpy(np.ascontiguousarray(x[i : i + 1], dtype=np.float32)))
    return {n: (peaks[n], float(np.percentile(np.concatenate(samples[n]), 99.99))) for n in peaks}


def activation_equalize(
    gm: Any,
    units: dict[str, Unit],
    x: np.ndarray,
    headroom: float = 2.0,
    max_scale: float = 64.0,
    depthwise_only: bool = False,
    strength: float = 1.0,
) -> list[tuple[str, str]]:
    """Scale up, in place, the channels of a layer's output whose values sit far below the
    tensor's range, and scale the next layer's input weights down by as much; returns the pairs.

    One 8-bit range is shared by all channels of an activation, so a channel living at 1/50 of
    that range is rounded to a handful of levels; when the next layer amplifies it (MobileNetV2's
    first depthwise conv has BatchNorm gains up to 1900 on such channels) that rounding dominates
    the model's INT8 error. For ``A -> [BatchNorm] -> [ReLU | ReLU6 | nothing] -> B`` channel
    ``c`` of A is multiplied by ``k_c >= 1`` (so its peak on ``x`` nears the tensor's 99.99th
    percentile) and B's input channel ``c`` divided by it. Exact in float for ReLU and nothing;
    across ReLU6 ``k_c`` is capped so the channel stays ``headroom`` times below the clip at 6 on
    ``x`` (an input pushing it past that would now clip earlier: the float output changes there,
    which parity measures). A depthwise B keeps its per-channel INT8 precision; a full conv B
    loses precision on the shrunk input column, so there ``k_c`` is raised to ``strength``
    (SmoothQuant's migration strength: 0.5 balances the two rounding errors when both round to
    nearest, while learned rounding, the next rungs, takes much of the weight side back; on
    MobileNetV2, simulated INT8 after GPTQ on 256 unseen images: 18.8 dB at 0.5, 19.6 at 0.75,
    19.8 at 1.0). ``depthwise_only`` leaves those pairs alone (with nearest rounding they can cost
    dB through a layer whose output cancels large terms: the repair ladder tries both).
    ``headroom`` 2 rather than 4 takes MobileNetV2's first depthwise input from 25.6 to 30.4 dB
    alone (same measurement), its channels still half the clip at most on the calibration images.
    """
    import torch

    pairs, _ = _pairs(gm, units, bounded=True)
    extents = _input_extents(gm, {b.node for _, b, _ in pairs}, x)
    touched = []
    for a, b, bound in pairs:
        if b.node not in extents or (depthwise_only and b.groups == 1):
            continue
        peak, target = extents[b.node]
        live = peak > 1e-6 * max(target, 1e-12)
        k = (target / peak.clamp_min(1e-12)).clamp(1.0, max_scale)
        if b.groups == 1:
            k = k.pow(strength)
        if bound < float("inf"):
            k = torch.minimum(k, bound / (headroom * peak.clamp_min(1e-12))).clamp_min(1.0)
        k = torch.where(live, k, torch.ones_like(k))
        if float(k.max()) <= 1.0 + 1e-6:
            continue
        _scale_output(gm, a, 1.0 / k)
        _scale_input(gm, b, 1.0 / k)
        touched.append((a.node, b.node))
    return touched


def int8_rounding_error(w: Any, levels: int = 127) -> Any:
    """Per-output-channel symmetric INT8 rounding error of ``w`` (quantized minus float), with
    ``levels`` steps each side of zero (63 for onnxruntime's 7-bit ``reduce_range`` weights)."""
    import torch

    flat = w.reshape(w.shape[0], -1)
    scale = (flat.abs().amax(dim=1) / levels).clamp_min(1e-12).reshape(-1, *([1] * (w.dim() - 1)))
    return torch.clamp(torch.round(w / scale), -levels, levels) * scale - w


def bias_correct(gm: Any, units: dict[str, Unit], inputs: Iterable[np.ndarray]) -> tuple[list[str], float]:
    """Subtract each unit's expected INT8 weight-rounding shift from its bias, measured on ``inputs``.

    One pass with float activations: every unit's input is captured as the graph runs and
    the shift ``mean(op(x, W_q - W))`` per channel accumulated, so the cost is about one
    extra forward pass. Units without a bias or a BatchNorm are left alone.
    """
    import torch
    import torch.nn.functional as F

    targets = {u.node: u for u in units.values() if u.bn_params is not None or u.bias is not None}
    deltas = {name: int8_rounding_error(folded_weight(gm, u)[0]) for name, u in targets.items()}
    sums: dict[str, Any] = {}
    count = 0
    by_node = {n.name: n for n in gm.graph.nodes}

    class Recorder(torch.fx.Interpreter):
        def run_node(self, n: Any) -> Any:
            if n.name in targets:
                x = self.env[n.args[0]] if isinstance(n.args[0], torch.fx.Node) else n.args[0]
                if str(n.target) == _CONV:
                    given: list[Any] = list(n.args[3:6])
                    defaults: list[Any] = [(1, 1), (0, 0), (1, 1)]
                    stride, padding, dilation = (given + defaults[len(given) :])[:3]
                    shift = F.conv2d(
                        x, deltas[n.name], None, stride, padding, dilation, targets[n.name].groups
                    )
                    mean = shift.mean(dim=(0, 2, 3))
                else:
                    shift = F.linear(x, deltas[n.name])
                    mean = shift.reshape(-1, shift.shape[-1]).mean(dim=0)
                sums[n.name] = sums.get(n.name, 0) + mean
            return super().run_node(n)

    recorder = Recorder(gm)
    with torch.inference_mode():
        for batch in inputs:
            for i in range(len(batch)):  # exported programs are often guarded to batch 1
                recorder.run(torch.from_numpy(np.ascontiguousarray(batch[i : i + 1], dtype=np.float32)))
                count += 1
    if not count:
        return [], 0.0
    corrected, largest = [], 0.0
    with torch.no_grad():
        for name, total in sums.items():
            u = targets[name]
            shift = total / count  # in the unit's output units (BatchNorm folded in)
            if u.bn_params is not None:
                param(gm, u.bn_params[1]).sub_(shift)
            else:
                assert u.bias is not None
                param(gm, u.bias).sub_(shift)
            corrected.append(by_node[name].name)
            largest = max(largest, float(shift.abs().max()))
    return corrected, largest


def equalize(
    module: Any,
    example: Any,
    calibration: Sequence[np.ndarray] | None = None,
    cle: bool = True,
    bias_correction: bool = True,
) -> tuple[Any, EqualizeReport]:
    """A copy of ``module`` with CLE and/or bias correction applied, and what was changed.

    ``module`` is a ``torch.export`` graph module or any ``nn.Module`` (exported first with
    ``example``). ``calibration`` is a sequence of NCHW float batches; bias correction is
    skipped without it.
    """
    import torch

    gm = module
    if not hasattr(gm, "graph"):
        with torch.inference_mode(False):
            gm = torch.export.export(module.eval(), (example,), strict=False).module()
    gm = copy.deepcopy(gm)
    units = find_units(gm)
    pairs: list[tuple[str, str]] = []
    corrected: list[str] = []
    skipped, shift = 0, 0.0
    if cle:
        pairs, skipped = cross_layer_equalize(gm, units)
    if bias_correction and calibration:
        corrected, shift = bias_correct(gm, units, calibration)
    return gm, EqualizeReport(tuple(pairs), skipped, tuple(corrected), shift)


def producer_of(gm: Any, units: dict[str, Unit], unit: Unit) -> Unit | None:
    """The unit whose output ``unit`` reads through single-input ops (activation, pad, pool), if any."""
    by_node = {n.name: n for n in gm.graph.nodes}
    outs = {u.out: u for u in units.values()}
    node = by_node[unit.node].args[0]
    for _ in range(16):
        if not hasattr(node, "name"):
            return None
        if node.name in outs:
            return outs[node.name]
        inputs = [a for a in node.all_input_nodes if a.op != "get_attr"]
        if len(inputs) != 1:
            return None
        node = inputs[0]
    return None


def simulated_int8(gm: Any, x: np.ndarray) -> np.ndarray:
    """Outputs of ``gm`` on ``x`` with INT8 simulated where it matters most, for a cheap A/B.

    Every conv/linear layer's weights are rounded per output channel (BatchNorm folded) and
    its input rounded per tensor to 8 bits over the range seen on ``x``. Not a substitute for
    the converted model (other ops' rounding is left out); enough to tell whether a rewrite
    such as cross-layer equalization makes INT8 better or worse before paying for a conversion.
    """
    import torch

    g = copy.deepcopy(gm)
    units = find_units(g)
    for unit in units.values():
        w = param(g, unit.weight)
        folded, gain = folded_weight(g, unit)
        with torch.no_grad():
            w.add_(int8_rounding_error(folded) / gain.reshape(-1, *([1] * (w.dim() - 1))))
    ranges: dict[str, tuple[float, float]] = {}

    class Interp(torch.fx.Interpreter):
        rounding = False

        def run_node(self, n: Any) -> Any:
            if n.name in units and isinstance(n.args[0], torch.fx.Node):
                value = self.env[n.args[0]]
                if self.rounding:
                    lo, hi = ranges[n.name]
                    scale = max(hi - lo, 1e-12) / 255.0
                    self.env[n.args[0]] = torch.clamp(torch.round((value - lo) / scale), 0, 255) * scale + lo
                else:
                    lo, hi = ranges.get(n.name, (0.0, 0.0))
                    ranges[n.name] = (min(lo, float(value.min())), max(hi, float(value.max())))
            return super().run_node(n)

    def run(rounding: bool) -> np.ndarray:
        interp = Interp(g)
        interp.rounding = rounding
        outs = []
        with torch.inference_mode():
            for i in range(len(x)):
                out = interp.run(torch.from_numpy(np.ascontiguousarray(x[i : i + 1], dtype=np.float32)))
                outs.append((out[0] if isinstance(out, (tuple, list)) else out).reshape(1, -1).numpy())
        return np.concatenate(outs)

    run(False)
    return run(True)
