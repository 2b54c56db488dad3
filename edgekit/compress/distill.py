"""Quantization-aware fine-tuning by distillation, before conversion: the float model teaches a
copy of itself that computes as the INT8 model will, on the calibration images (no labels).

The student runs the PyTorch graph with every conv/linear weight rounded to the converters' grid
(BatchNorm folded, symmetric per output channel, ``max|w|/127``, integers in [-127, 127]) and
every conv/linear input rounded to 8 bits per tensor over a frozen MSE-optimal range; rounding
passes gradients straight through. It learns its weights and biases to match the float
teacher: the model's output, and each layer's output relative to its own power (as in
feature-level distillation for quantization: a 1-logit detector gives one number per image,
its ~50 layer outputs tens of thousands, which is what lets 200 images steer 2 million weights
without fitting their noise). Step sizes are relative, never absolute: a BatchNorm gain of 1900
behind a depthwise kernel makes one absolute step size wreck that layer (measured on MobileNetV2:
an absolute 1e-5 took simulated INT8 from 12.9 to 3.2 dB in 5 steps). A conv/linear weight's
Adam step is a fixed fraction of its own INT8 grid step (which integer it lands on is what the
rounding decides), every other parameter's (BatchNorm, biases) a fixed fraction of its tensor's
RMS. Steps relative to the weight tensor's RMS, as first built, could not move the weights
that matter most: in a row whose one large weight sets the grid, 400 of them move the small
weights by 1/70 of a grid step (tests/edgekit/compress/test_rounding.py's ``WideRoundingNet``,
which needs 0.15 of one); on MobileNetV2 the two rules measure alike (from the GPTQ start,
simulated INT8 on 256 unseen images: 17.9 dB before, 18.7 after RMS steps, 18.4 after grid steps).
After a bounded number of steps (early-stopped on held-out check images), the weights are
written back on their grid points, so the converter's own round-to-nearest keeps them
(:mod:`edgekit.compress.rounding` explains why).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class DistillReport:
    """What :func:`distill` did: steps taken, the simulated INT8 student's SQNR against the teacher
    on the check images before and after (the best step kept), and the time."""

    steps: int
    best_step: int
    sqnr_before_db: float
    sqnr_after_db: float
    seconds: float
    budget_hit: bool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON form (the manifest's repair ``changes``)."""
        d = asdict(self)
        for k in ("sqnr_before_db", "sqnr_after_db", "seconds"):
            d[k] = round(float(d[k]), 2)
        return d


def _round_ste(x: Any) -> Any:
    """Round in the forward pass, identity in the backward pass."""
    return x + (x.round() - x).detach()


def _quant_weight(w: Any, gain: Any, levels: int) -> Any:
    """The raw weight the INT8 model will use: folded, rounded on its per-channel grid, unfolded."""
    shape = (-1, *([1] * (w.dim() - 1)))
    folded = w * gain.reshape(shape)
    scale = (folded.detach().reshape(folded.shape[0], -1).abs().amax(dim=1) / levels).clamp_min(1e-9)
    import torch

    q = torch.clamp(_round_ste(folded / scale.reshape(shape)), -levels, levels)
    return q * scale.reshape(shape) / gain.reshape(shape)


class _Recorder:
    """Runs a graph module, keeping the values of the named nodes (the layers' outputs) of the last run."""

    def __init__(self, gm: Any, keep: set[str], before: Callable[[Any, Any], None] | None = None) -> None:
        import torch

        recorder = self

        class Interp(torch.fx.Interpreter):
            def run_node(self, n: Any) -> Any:
                if before is not None:
                    before(self, n)
                value = super().run_node(n)
                if n.name in keep:
                    recorder.kept[n.name] = value
                return value

        self.kept: dict[str, Any] = {}
        self._interp = Interp(gm)

    def run(self, x: Any) -> Any:
        """The module's output on ``x``; the kept values in ``self.kept``."""
        self.kept = {}
        return self._interp.run(x)


def _student(
    gm: Any, units: dict[str, Any], ranges: dict[str, tuple[float, float]], levels: int, keep: set[str]
) -> _Recorder:
    """``gm`` run as the INT8 model computes it (rounding straight-through), keeping ``keep``."""
    import torch

    from edgekit.compress.equalize import folded_weight
    from edgekit.compress.rounding import fake_quant

    def before(interp: Any, n: Any) -> None:
        if n.name in units:
            unit = units[n.name]
            arg = n.args[0]
            if isinstance(arg, torch.fx.Node) and n.name in ranges:
                interp.env[arg] = fake_quant(interp.env[arg], *ranges[n.name], straight_through=True)
            w_node = n.args[1]
            _, gain = folded_weight(gm, unit)
            interp.env[w_node] = _quant_weight(interp.env[w_node], gain.detach(), levels)

    return _Recorder(gm, keep, before)


class _Adam:
    """Adam (Kingma and Ba, 2015) with a step size per element: each parameter's ``lr`` is a
    number or a tensor that broadcasts against it (torch's Adam takes one number per group)."""

    def __init__(self, params: list[tuple[Any, Any]], betas: tuple[float, float] = (0.9, 0.999)) -> None:
        import torch

        self._params = [(p, lr, torch.zeros_like(p), torch.zeros_like(p)) for p, lr in params]
        self._betas = betas
        self._t = 0

    def zero_grad(self) -> None:
        """Forget the last gradients."""
        for p, *_ in self._params:
            p.grad = None

    def step(self) -> None:
        """One Adam step on the gradients the last backward pass left."""
        import torch

        b1, b2 = self._betas
        self._t += 1
        with torch.no_grad():
            for p, lr, m, v in self._params:
                if p.grad is None:
                    continue
                m.mul_(b1).add_(p.grad, alpha=1 - b1)
                v.mul_(b2).addcmul_(p.grad, p.grad, value=1 - b2)
                m_hat, v_hat = m / (1 - b1**self._t), v / (1 - b2**self._t)
                p.sub_(lr * m_hat / (v_hat.sqrt() + 1e-8))


def _outputs(run: Callable[[Any], Any], x: np.ndarray) -> Any:
    import torch

    outs = [run(torch.from_numpy(np.ascontiguousarray(x[i : i + 1]))) for i in range(len(x))]
    return torch.cat([(o[0] if isinstance(o, (tuple, list)) else o).reshape(1, -1) for o in outs])


def distill(
    module: Any,
    calibration: np.ndarray,
    check: np.ndarray,
    steps: int = 400,
    batch: int = 8,
    lr: float = 3e-5,
    budget_s: float | None = None,
    levels: int = 127,
    every: int = 25,
    patience: int = 3,
    progress: Callable[[str], None] | None = None,
    teacher: Any = None,
    feature_weight: float = 1.0,
    grid_lr: float = 2e-3,
) -> tuple[Any, DistillReport]:
    """A copy of ``module`` fine-tuned to match ``teacher`` (default: ``module`` itself, in float)
    while computing as INT8 does.

    ``calibration`` (NCHW float) is what it learns on, ``check`` what it is early-stopped on (every
    ``every`` steps, the best kept; it stops after ``patience`` checks without a better one). At
    most ``steps`` Adam steps of ``batch`` samples (each conv/linear weight's step ``grid_lr``
    times its INT8 grid step, every other tensor's ``lr`` times its RMS), fewer when ``budget_s``
    runs out. ``teacher`` is the float model whose outputs are the target, and whose layer
    outputs are matched too (weight ``feature_weight``) where it has the same layers as
    ``module`` (same node names and shapes: the model ``module`` was rounded from). The caller's
    modules are never modified.
    """
    import torch

    with torch.inference_mode(False):
        return _distill(module, calibration, check, steps, batch, lr, budget_s, levels, every, patience,
                        progress, teacher, feature_weight, grid_lr)  # fmt: skip


def _distill(
    module: Any,
    calibration: np.ndarray,
    check: np.ndarray,
    steps: int,
    batch: int,
    lr: float,
    budget_s: float | None,
    levels: int,
    every: int,
    patience: int,
    progress: Callable[[str], None] | None,
    teacher: Any,
    feature_weight: float,
    grid_lr: float,
) -> tuple[Any, DistillReport]:
    import torch

    from edgekit.compress.equalize import find_units, folded_weight
    from edgekit.compress.rounding import input_ranges, int8_grid, place_on_grid
    from edgekit.parity import sqnr_db

    start = time.perf_counter()
    x = np.ascontiguousarray(calibration, dtype=np.float32)
    x_check = np.ascontiguousarray(check, dtype=np.float32)

    def exported(m: Any) -> Any:
        if hasattr(m, "graph"):
            return m
        return torch.export.export(m.eval(), (torch.from_numpy(x[:1]),), strict=False).module()

    start_from = exported(module)
    teacher = exported(teacher) if teacher is not None else start_from
    gm = copy.deepcopy(start_from)
    units = find_units(gm)
    ranges = input_ranges(start_from, list(units), x)
    # the layer outputs matched: those the teacher has too, by name and shape (a 1-value head is
    # the model's output, already matched; a per-image relative error there would divide by ~0)
    teacher_nodes = {n.name for n in teacher.graph.nodes}
    keep = {u.out for u in units.values() if u.out in teacher_nodes} if feature_weight > 0 else set()
    teach = _Recorder(teacher, keep)
    with torch.no_grad():
        target = _outputs(teach.run, x)
        target_check = _outputs(teach.run, x_check)
    student = _student(gm, units, ranges, levels, keep)
    trainable = {
        name: p for name, p in gm.named_parameters() if not name.endswith(("running_mean", "running_var"))
    }
    steps_of: dict[str, Any] = {}
    for name, p in trainable.items():
        p.requires_grad_(True)
        # each tensor's step a fraction of its own size: see the module docstring
        steps_of[name] = lr * float(p.detach().pow(2).mean().sqrt().clamp_min(1e-8))
    for unit in units.values():  # a conv/linear weight's step a fraction of its own grid step
        folded, gain = folded_weight(gm, unit)
        shape = (-1, *([1] * (folded.dim() - 1)))
        scale = int8_grid(folded, levels)[0].reshape(shape)
        steps_of[unit.weight] = grid_lr * scale / gain.abs().clamp_min(1e-12).reshape(shape)
    opt = _Adam([(p, steps_of[name]) for name, p in trainable.items()])
    with torch.no_grad():
        before = best = sqnr_db(target_check.numpy(), _outputs(student.run, x_check).numpy())
    best_state, best_step, taken, budget_hit = copy.deepcopy(gm.state_dict()), 0, 0, False
    generator = torch.Generator().manual_seed(0)
    power = float(target.pow(2).mean()) or 1.0
    for step in range(1, steps + 1):
        if budget_s is not None and time.perf_counter() - start > budget_s:
            budget_hit = True
            break
        idx = torch.randint(0, len(x), (min(batch, len(x)),), generator=generator)
        with torch.enable_grad():
            outs, features = [], []
            for i in idx.tolist():  # graphs are often batch-1
                xi = torch.from_numpy(x[i : i + 1])
                with torch.no_grad():
                    teach.run(xi)
                wanted = teach.kept
                outs.append(student.run(xi).reshape(1, -1))
                terms = [(v - wanted[k]).pow(2).mean() / wanted[k].pow(2).mean().clamp_min(1e-12)
                         for k, v in student.kept.items()
                         if k in wanted and v.shape == wanted[k].shape and v.numel() >= 64]  # fmt: skip
                if terms:
                    features.append(torch.stack(terms).mean())
            loss = (torch.cat(outs) - target[idx]).pow(2).mean() / power
            if features:
                loss = loss + feature_weight * torch.stack(features).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        taken = step
        if step % every == 0 or step == steps:
            with torch.no_grad():
                now = sqnr_db(target_check.numpy(), _outputs(student.run, x_check).numpy())
            if now > best:
                best, best_step, best_state = now, step, copy.deepcopy(gm.state_dict())
            if progress:
                progress(f"distillation: step {step}/{steps}, check {now:.1f} dB (best {best:.1f})")
            if step - best_step >= patience * every:  # no better for `patience` checks: stop
                break
    gm.load_state_dict(best_state)
    for p in gm.parameters():
        p.requires_grad_(False)
    with torch.no_grad():  # every weight on its grid point, as the converter will round it
        for unit in units.values():
            folded, gain = folded_weight(gm, unit)
            scale, scaled = int8_grid(folded, levels)
            place_on_grid(gm, unit, torch.clamp(torch.round(scaled), -levels, levels), scale, gain)
    report = DistillReport(taken, best_step, before, best, time.perf_counter() - start, budget_hit)
    return gm, report
