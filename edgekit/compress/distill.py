"""Quantization-aware fine-tuning by distillation, before conversion: the float model teaches a
copy of itself that computes as the INT8 model will, on the calibration images (no labels).

The student runs the PyTorch graph with every conv/linear weight rounded to the converters' grid
(BatchNorm folded, symmetric per output channel, ``max|w|/127``, integers in [-127, 127]) and
every conv/linear input rounded to 8 bits per tensor over a frozen MSE-optimal range; rounding
passes gradients straight through. It learns its weights and biases to match the teacher's
outputs. After a bounded number of steps (early-stopped on held-out check images), the weights
are written back on their grid points, so the converter's own round-to-nearest keeps them
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


def _student(gm: Any, units: dict[str, Any], ranges: dict[str, tuple[float, float]], levels: int) -> Any:
    """An interpreter running ``gm`` as the INT8 model computes it (rounding straight-through)."""
    import torch

    from edgekit.compress.equalize import folded_weight
    from edgekit.compress.rounding import fake_quant

    class Student(torch.fx.Interpreter):
        def run_node(self, n: Any) -> Any:
            if n.name in units:
                unit = units[n.name]
                arg = n.args[0]
                if isinstance(arg, torch.fx.Node) and n.name in ranges:
                    self.env[arg] = fake_quant(self.env[arg], *ranges[n.name], straight_through=True)
                w_node = n.args[1]
                _, gain = folded_weight(gm, unit)
                self.env[w_node] = _quant_weight(self.env[w_node], gain.detach(), levels)
            return super().run_node(n)

    return Student(gm)


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
    lr: float = 1e-4,
    budget_s: float | None = None,
    levels: int = 127,
    every: int = 25,
    patience: int = 3,
    progress: Callable[[str], None] | None = None,
) -> tuple[Any, DistillReport]:
    """A copy of ``module`` fine-tuned to match its float self while computing as INT8 does.

    ``calibration`` (NCHW float) is what it learns on, ``check`` what it is early-stopped on (every
    ``every`` steps, the best kept; it stops after ``patience`` checks without a better one). At most ``steps`` Adam steps of ``batch`` samples, fewer when
    ``budget_s`` runs out. The caller's module is never modified.
    """
    import torch

    with torch.inference_mode(False):
        return _distill(
            module, calibration, check, steps, batch, lr, budget_s, levels, every, patience, progress
        )


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
) -> tuple[Any, DistillReport]:
    import torch

    from edgekit.compress.equalize import find_units, folded_weight
    from edgekit.compress.rounding import input_ranges, int8_grid, place_on_grid
    from edgekit.parity import sqnr_db

    start = time.perf_counter()
    x = np.ascontiguousarray(calibration, dtype=np.float32)
    x_check = np.ascontiguousarray(check, dtype=np.float32)
    teacher = module
    if not hasattr(teacher, "graph"):
        teacher = torch.export.export(module.eval(), (torch.from_numpy(x[:1]),), strict=False).module()
    gm = copy.deepcopy(teacher)
    units = find_units(gm)
    ranges = input_ranges(teacher, list(units), x)
    with torch.no_grad():
        target = _outputs(teacher, x)
        target_check = _outputs(teacher, x_check)
    student = _student(gm, units, ranges, levels)
    trainable = [p for name, p in gm.named_parameters() if not name.endswith(("running_mean", "running_var"))]
    for p in trainable:
        p.requires_grad_(True)
    opt = torch.optim.Adam(trainable, lr=lr)
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
            out = torch.cat(
                [
                    student.run(torch.from_numpy(x[i : i + 1])).reshape(1, -1)  # graphs are often batch-1
                    for i in idx.tolist()
                ]
            )
            loss = (out - target[idx]).pow(2).mean() / power
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
