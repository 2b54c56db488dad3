"""`edgekit optimize`: the smallest (or fastest) TFLite variant whose AUC stays within a budget.

Candidates, each exported, checked for parity against its own PyTorch reference and
scored on the validation data:
- FP16 weights; dynamic-range INT8; static INT8;
- static INT8 with FP32 fallback for the k most INT8-sensitive ops (tried only when plain
  static INT8 misses the budget: a fallback can only add size);
- INT4 mixed: INT4 weights for FULLY_CONNECTED ops that tolerate it, INT8 elsewhere;
- sparse at rising levels (pruned with fine-tuning, XNNPACK sparse storage as FP16 and as
  INT8 weight-only): the ladder stops at the first level where neither stays in budget.
A candidate that failed parity is never the winner. Host latency is measured for every
candidate at the end, interleaved in one loop so that machine noise hits them alike;
sparse speed-ups never show on x86 (XNNPACK keeps dense kernels there) and are only
reported as the lint's ARM64 eligibility.
"""

from __future__ import annotations

import copy
import functools
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from edgekit._capture import captured_output
from edgekit._io import atomic_write_bytes, atomic_write_text, ensure_output_dir
from edgekit.compress.workspace import ModelData
from edgekit.errors import EdgekitError, OutputError, UsageError
from edgekit.spec import DEFAULT_TOLERANCES
from edgekit.validate import contained

ProgressFn = Callable[[str, int, int], None]
#: device_timer(model file, candidate name) -> p50 latency in ms on a device, or None when the run failed.
#: The caller builds it (the CLI from edgekit.device); the search itself knows no device layer.
DeviceTimer = Callable[[Path, str], float | None]
OBJECTIVES = ("size", "latency")


@dataclass(frozen=True)
class OptimizeSpec:
    """What `edgekit optimize` searches; built by the CLI."""

    model: ModelData
    out_dir: Path
    max_auc_drop: float = 0.01
    objective: str = "size"
    sparsity_levels: tuple[float, ...] = (0.7, 0.8, 0.9)
    prune_steps: int = 150
    fallback_ks: tuple[int, ...] = (1, 3)
    val_samples: int = 500
    parity_samples: int = 64
    seed: int = 0

    def __post_init__(self) -> None:
        if self.objective not in OBJECTIVES:
            raise UsageError(f"--objective {self.objective!r}: choose size or latency")
        if not 0.0 <= self.max_auc_drop < 1.0:
            raise UsageError(f"--max-auc-drop must be in [0, 1), got {self.max_auc_drop}")
        if any(not 0.0 < s < 1.0 for s in self.sparsity_levels):
            raise UsageError("--sparsity-levels must be fractions between 0 and 1, e.g. 0.7,0.8,0.9")
        if self.val_samples < 10 or self.parity_samples < 2:
            raise UsageError("--val-samples must be >= 10 and --parity-samples >= 2")


@dataclass(frozen=True)
class Candidate:
    """One row of the search table."""

    name: str
    description: str
    precision: str
    file: str | None = None
    size_bytes: int | None = None
    size_ratio: float | None = None
    auc: float | None = None
    auc_drop: float | None = None
    parity_passed: bool | None = None
    parity_flips: int | None = None
    sqnr_db: float | None = None
    latency_ms: float | None = None
    device_ms: float | None = None
    sparsity_verdict: str | None = None
    verdict: str = "pending"
    note: str = ""


@dataclass(frozen=True)
class OptimizeResult:
    """The search table, the winner and what it was measured against; saved as ``optimize.json``."""

    objective: str
    max_auc_drop: float
    baseline_auc: float | None
    fp32_size_bytes: int
    winner: str | None
    candidates: tuple[Candidate, ...]
    seconds: float
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON."""
        return {"schema": "edgekit.optimize", "schema_version": 1, **asdict(self)}

    def to_markdown(self) -> str:
        """The search table as Markdown."""
        lines = [
            f"# edgekit optimize ({self.objective}, AUC drop <= {self.max_auc_drop})",
            "",
            f"Baseline (PyTorch) AUC: {_f(self.baseline_auc, '.4f')}; FP32 TFLite {self.fp32_size_bytes / 1e6:.2f} MB; "
            f"winner: **{self.winner or 'none'}**; search took {self.seconds:.0f} s.",
            "",
            "| candidate | MB | x smaller | AUC | drop | parity | host ms | device ms | sparse (ARM64) | verdict |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for c in self.candidates:
            parity = (
                "-"
                if c.parity_passed is None
                else ("pass" if c.parity_passed else f"FAIL ({c.parity_flips} flips)")
            )
            smaller = "-" if not c.size_ratio else f"{1 / c.size_ratio:.2f}"
            lines.append(
                f"| {c.name} | {_f(c.size_bytes and c.size_bytes / 1e6, '.2f')} | {smaller} | {_f(c.auc, '.4f')} | "
                f"{_f(c.auc_drop, '+.4f')} | {parity} | {_f(c.latency_ms, '.2f')} | {_f(c.device_ms, '.2f')} | "
                f"{c.sparsity_verdict or '-'} | "
                f"{c.verdict}{' (' + c.note + ')' if c.note else ''} |"
            )
        return "\n".join(lines) + "\n"


def _f(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


class _Search:
    """Holds the prepared model, data and the candidates evaluated so far."""

    def __init__(self, spec: OptimizeSpec, progress: ProgressFn) -> None:
        from edgekit.compress.workspace import auc_of, prepare

        self.spec = spec
        self.progress = progress
        self.out_dir = ensure_output_dir(spec.out_dir)
        self.prep = prepare(spec.model, spec.val_samples)
        self.x_val = self.prep.data.x_val
        self.y_val = self.prep.data.y_val
        self.baseline_auc = auc_of(
            self.prep.module, self.x_val, self.y_val, self.prep.kind, self.prep.classes
        )
        self.models: dict[str, bytes] = {}
        self.rows: list[Candidate] = []
        self.fp32_size = 0

    # -------------------------------------------------------------- evaluation
    def reference(self, module: Any) -> np.ndarray:
        import torch

        x = self.x_val[: self.spec.parity_samples]
        with torch.no_grad():
            y = module(torch.from_numpy(x))
        y = y[0] if isinstance(y, (tuple, list)) else y
        out: np.ndarray = y.reshape(len(x), -1).float().numpy()
        return out

    def evaluate(self, cand: Candidate, build: Callable[[], bytes], reference: np.ndarray) -> Candidate:
        from sklearn.metrics import roc_auc_score

        from edgekit.exporters.sparsity import lint, sparsity_label
        from edgekit.exporters.tflite_graph import TFLiteGraph
        from edgekit.parity import compare, fake_scores
        from edgekit.runners.base import run_batch
        from edgekit.runners.litert import LiteRTRunner

        self.progress(f"candidate {cand.name}", len(self.rows), len(self.rows) + 1)
        try:
            data = build()
        except EdgekitError as exc:
            row = replace(cand, verdict="export failed", note=str(exc)[:160])
            self.rows.append(row)
            return row
        fname = f"candidates/{cand.name}.tflite"
        path = contained(self.out_dir, fname, "candidate file", error=OutputError)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, data)
        self.models[cand.name] = data
        runner = LiteRTRunner(data)
        outputs = run_batch(runner, self.x_val)
        tol = DEFAULT_TOLERANCES.get(cand.precision, DEFAULT_TOLERANCES["int8"])
        output = self.prep.output
        parity = compare(reference, outputs[: len(reference)], output, tol)
        scores = fake_scores(outputs, output)
        auc = float(roc_auc_score(self.y_val, scores)) if len(set(self.y_val.tolist())) > 1 else None
        drop = None if auc is None or self.baseline_auc is None else round(self.baseline_auc - auc, 5)
        if not parity.passed:
            verdict = "parity failed"
        elif drop is None:
            verdict = "no AUC (one class)"
        else:
            verdict = "within budget" if drop <= self.spec.max_auc_drop else "over budget"
        row = replace(
            cand, file=fname, size_bytes=len(data), size_ratio=round(len(data) / self.fp32_size, 4) if self.fp32_size else 1.0,
            auc=auc, auc_drop=drop, parity_passed=parity.passed, parity_flips=parity.flips,
            sqnr_db=round(parity.sqnr_db, 2) if np.isfinite(parity.sqnr_db) else None,
            sparsity_verdict=sparsity_label(lint(TFLiteGraph(data)).to_dict()), verdict=verdict,
            note="; ".join(parity.reasons)[:160],
        )  # fmt: skip
        self.rows.append(row)
        return row

    def skip(self, cand: Candidate, why: str) -> None:
        self.rows.append(replace(cand, verdict="skipped", note=why))

    # -------------------------------------------------------------- latency
    def time_all(self, rounds: int = 5, per_round: int = 10) -> dict[str, float]:
        """Median per-inference ms of every exported candidate, interleaved (1 thread)."""
        from edgekit.runners.litert import LiteRTRunner

        runners = {name: LiteRTRunner(data) for name, data in self.models.items()}
        x = self.x_val[:1]
        times: dict[str, list[float]] = {name: [] for name in runners}
        for r in runners.values():
            r.infer({r.input_name: x})
        for k in range(rounds):
            self.progress("timing candidates on the host", k, rounds)
            for name, r in runners.items():
                start = time.perf_counter()
                for _ in range(per_round):
                    r.infer({r.input_name: x})
                times[name].append((time.perf_counter() - start) * 1000 / per_round)
        return {name: round(float(np.median(t)), 3) for name, t in times.items()}


def _ok(row: Candidate) -> bool:
    return row.verdict == "within budget"


def pick_winner(rows: list[Candidate], objective: str, on_device: bool = False) -> Candidate | None:
    """The smallest (or fastest, on the host or the device) candidate within budget that passed parity."""
    eligible = [r for r in rows if _ok(r) and r.parity_passed and r.size_bytes]

    def ms(r: Candidate) -> float:
        value = r.device_ms if on_device else r.latency_ms
        return float("inf") if value is None else value

    if objective == "size":
        return min(eligible, key=lambda r: (r.size_bytes or 0, ms(r)), default=None)
    return min(eligible, key=lambda r: (ms(r), r.size_bytes or 0), default=None)


def optimize(
    spec: OptimizeSpec, progress: ProgressFn | None = None, device_timer: DeviceTimer | None = None
) -> OptimizeResult:
    """Run the search, write ``optimize.json``, ``optimize.md`` and the winner as ``best.tflite``.

    With ``device_timer`` every exported candidate is also timed on a device, and a
    latency objective ranks by the device's p50.
    """
    from edgekit.compress.sensitivity import SensitivityResult, quant_sensitivity, recipe_from
    from edgekit.exporters.aeq import mixed_recipe
    from edgekit.exporters.tflite import float_tflite, quantize_float

    start = time.perf_counter()
    report: ProgressFn = progress or (lambda _m, _d, _t: None)
    s = _Search(spec, report)
    ctx = s.prep.ctx
    ref = s.reference(s.prep.module)
    fp32 = float_tflite(ctx)
    s.fp32_size = len(fp32)
    s.evaluate(Candidate("fp32", "FP32 TFLite (the reference size)", "fp32"), lambda: fp32, ref)
    for name, desc, prec in (
        ("fp16", "FP16 weights", "fp16"),
        ("int8_dynamic", "dynamic-range INT8", "int8"),
        ("int8", "static INT8 (calibrated)", "int8"),
    ):
        s.evaluate(Candidate(name, desc, prec), _builder(f"tflite_{name}", ctx), ref)

    report("quantization sensitivity", 0, 1)
    sens_ops = quant_sensitivity(ctx, s.x_val[:32], report)
    sens = SensitivityResult(tuple(sens_ops), (), s.baseline_auc, 0.0, 32)
    int8_ok = _ok(s.rows[-1])
    fallback_used = 0
    for k in spec.fallback_ks:
        cand = Candidate(f"int8_fallback{k}", f"static INT8, FP32 for the {k} most sensitive ops", "mixed")
        if int8_ok:
            s.skip(cand, "static INT8 already within budget")
            continue
        keep = [o.tensor for o in sens.most_sensitive(k)]
        recipe = mixed_recipe(keep, [])
        row = s.evaluate(cand, functools.partial(quantize_float, ctx, recipe), ref)
        if _ok(row):
            fallback_used = k
            break
    int4 = recipe_from(sens, fallback_used, 30.0)
    s.evaluate(
        Candidate(
            "int4_mixed",
            f"INT4 weights on tolerant FC ops, INT8 elsewhere, {fallback_used} FP32 fallback",
            "mixed",
        ),
        functools.partial(quantize_float, ctx, int4),
        ref,
    )
    _sparse_ladder(s, spec, report)

    timings = s.time_all()
    s.rows = [replace(r, latency_ms=timings.get(r.name)) for r in s.rows]
    if device_timer is not None:
        s.rows = [replace(r, device_ms=_device_ms(s, device_timer, r)) if r.file else r for r in s.rows]
    winner = pick_winner(s.rows, spec.objective, on_device=device_timer is not None)
    if winner is not None:
        atomic_write_bytes(s.out_dir / "best.tflite", s.models[winner.name])
        s.rows = [replace(r, verdict="winner") if r.name == winner.name else r for r in s.rows]
    result = OptimizeResult(
        objective=spec.objective, max_auc_drop=spec.max_auc_drop, baseline_auc=s.baseline_auc,
        fp32_size_bytes=s.fp32_size, winner=winner.name if winner else None, candidates=tuple(s.rows),
        seconds=round(time.perf_counter() - start, 1), data=s.prep.data.description,
    )  # fmt: skip
    atomic_write_text(s.out_dir / "optimize.json", json.dumps(result.to_dict(), indent=2) + "\n")
    atomic_write_text(s.out_dir / "optimize.md", result.to_markdown())
    return result


def _device_ms(s: _Search, timer: DeviceTimer, row: Candidate) -> float | None:
    assert row.file is not None
    s.progress(f"benchmarking {row.name} on the device", 0, 1)
    return timer(s.out_dir / row.file, row.name)


def _sparse_ladder(s: _Search, spec: OptimizeSpec, report: ProgressFn) -> None:
    """Prune at rising levels; stop at the first level where no sparse storage stays in budget."""
    from edgekit.compress.prune import PruneSpec, eligible, find_layers, gradual_prune
    from edgekit.exporters import ExportContext

    layers = eligible(find_layers(s.prep.module, (1, *s.x_val.shape[1:])), "xnnpack")
    if not layers:
        s.skip(Candidate("sparse", "XNNPACK sparse", "fp32"), "no 1x1 conv or FC layer to prune")
        return
    stopped = False
    for level in sorted(spec.sparsity_levels):
        names = (
            ("sparse_fp16", "tflite_sparse_fp16", "fp16"),
            ("sparse_int8w", "tflite_sparse_int8w", "int8"),
        )
        cands = [
            Candidate(f"{n}_{round(level * 100)}", f"pruned {level:.0%} (fine-tuned), {v}", p)
            for n, v, p in names
        ]
        if stopped:
            for c in cands:
                s.skip(c, "a lower sparsity already missed the budget")
            continue
        with captured_output():  # deep-copying a torch.export module warns about pytree specs
            module = copy.deepcopy(s.prep.module)
        pspec = PruneSpec(
            source=spec.model.source,
            out_dir=spec.out_dir,
            sparsity=level,
            steps=spec.prune_steps,
            seed=spec.seed,
        )
        gradual_prune(module, layers, s.prep.data, pspec, s.prep.kind, s.prep.classes, _prefixed(report, f"pruning to {level:.0%}"))  # fmt: skip
        ctx = ExportContext(
            module=module, input_spec=s.prep.ctx.input_spec, calibration=s.prep.ctx.calibration
        )
        ref = s.reference(module)
        rows = [s.evaluate(c, _builder(v, ctx), ref) for c, (_, v, _) in zip(cands, names, strict=True)]
        stopped = not any(_ok(r) for r in rows)


def _prefixed(report: ProgressFn, prefix: str) -> ProgressFn:
    return lambda msg, done, total: report(f"{prefix}: {msg}", done, total)


def _builder(variant: str, ctx: Any) -> Callable[[], bytes]:
    from edgekit.exporters import get_variant

    return lambda: get_variant(variant).build(ctx)
