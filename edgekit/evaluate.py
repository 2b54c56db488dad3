"""`edgekit eval`: score labelled images/videos with the PyTorch baseline and every exported
variant, save per-sample scores, heatmaps of the top hits and misses, then render the report.

Data is decoded once and fed to every variant; preprocessing is the manifest's. Scores go to
``scores.csv`` (one column per variant) so `edgekit report` can re-render without inference.
"""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgekit._io import atomic_write_bytes, atomic_write_text, ensure_output_dir
from edgekit.data import preprocess_image
from edgekit.errors import ModelLoadError, UsageError
from edgekit.evaldata import Frames, decode, discover
from edgekit.manifest import Manifest, load_manifest
from edgekit.parity import fake_scores
from edgekit.spec import Layout, ModelSource, OutputKind, OutputSpec, Preprocess

BASELINE = "pytorch_fp32"
SCORES = "scores.csv"
EVAL_JSON = "eval.json"
CATEGORIES = ("TP", "FN", "FP", "TN")

ProgressFn = Callable[[str], None]


@dataclass(frozen=True)
class EvalSpec:
    """What `edgekit eval` needs; built by the CLI."""

    export_dir: Path
    data: Path
    out_dir: Path
    frames: int = 16
    video_agg: str = "mean"
    threshold: str = "0.5"
    tolerance: float = 0.01
    top_k: int = 5
    variants: tuple[str, ...] | None = None
    trust_pickle: bool = False
    heatmaps: bool = True
    grid: int = 8

    def __post_init__(self) -> None:
        if self.video_agg not in ("mean", "median", "max"):
            raise UsageError(f"--video-agg {self.video_agg!r}: use mean, median or max")
        if self.threshold != "eer":
            try:
                value = float(self.threshold)
            except ValueError:
                raise UsageError(f"--threshold {self.threshold!r}: a number in (0, 1) or 'eer'") from None
            if not 0 < value < 1:
                raise UsageError(f"--threshold {self.threshold!r}: a number in (0, 1) or 'eer'")
        if self.frames < 1 or self.top_k < 0 or not 2 <= self.grid <= 32:
            raise UsageError("--frames must be >= 1, --top-k >= 0 and --grid between 2 and 32")


def _preprocess(m: Manifest) -> Preprocess:
    p = dict(m.preprocess)
    return Preprocess(**{**p, "mean": tuple(p["mean"]), "std": tuple(p["std"])})


def _output(m: Manifest) -> OutputSpec:
    return OutputSpec(OutputKind(m.output["kind"]), m.output["classes"], m.output["positive_index"])


def _baseline(m: Manifest, trust_pickle: bool) -> Any:
    from edgekit.loading import load_model

    src = m.source
    source = ModelSource(
        path=Path(src["path"]) if src.get("path") else None,
        arch=src.get("arch"),
        arch_kwargs=src.get("arch_kwargs") or {},
        trust_pickle=trust_pickle,
    )
    try:
        return load_model(source).module
    except ModelLoadError as exc:
        raise ModelLoadError(f"the PyTorch baseline of this export cannot be loaded: {exc}") from exc


def _inputs(frames: Frames, pre: Preprocess, layout: Layout) -> np.ndarray:
    return np.stack([preprocess_image(img, pre, layout) for img in frames.images])


class _Scorer:
    """Batch scoring and single-sample scoring (for occlusion) of one variant."""

    def __init__(
        self, name: str, runner: Any, layout: Layout, output: OutputSpec, torch_module: Any = None
    ) -> None:
        self.name, self.runner, self.layout, self.output, self.module = (
            name,
            runner,
            layout,
            output,
            torch_module,
        )

    def raw(self, x_nchw: np.ndarray) -> np.ndarray:
        from edgekit.runners import run_batch

        if self.module is not None:
            from edgekit.runners.torch import TorchRunner

            # Batch 1, as exported programs fix the batch dimension (and as the phone runs).
            return run_batch(TorchRunner(self.module, (1, *x_nchw.shape[1:])), x_nchw)
        x = x_nchw if self.layout is Layout.NCHW else np.ascontiguousarray(x_nchw.transpose(0, 2, 3, 1))
        return run_batch(self.runner, x)

    def scores(self, x_nchw: np.ndarray) -> np.ndarray:
        return fake_scores(self.raw(x_nchw), self.output)

    def score_one(self, x_nchw: np.ndarray) -> float:
        return float(self.scores(x_nchw)[0])


def _scorers(m: Manifest, root: Path, spec: EvalSpec, output: OutputSpec) -> list[_Scorer]:
    from edgekit.runners.litert import LiteRTRunner
    from edgekit.runners.onnxruntime import OnnxRuntimeRunner

    out = [_Scorer(BASELINE, None, Layout.NCHW, output, torch_module=_baseline(m, spec.trust_pickle))]
    for v in m.variants:
        if v.status != "ok" or not v.file or (spec.variants and v.name not in spec.variants):
            continue
        path = root / v.file
        runner = LiteRTRunner(path) if v.format == "tflite" else OnnxRuntimeRunner(path)
        out.append(_Scorer(v.name, runner, Layout(v.input.get("layout", "nchw")), output))
    return out


def _pick(labels: np.ndarray, scores: np.ndarray, threshold: float, k: int) -> dict[str, list[int]]:
    """Top-k of each category: the most confident TP/TN, the worst FN/FP."""
    pred = scores >= threshold
    idx = np.arange(len(labels))
    picks = {
        "TP": idx[(labels == 1) & pred][np.argsort(-scores[(labels == 1) & pred])],
        "FN": idx[(labels == 1) & ~pred][np.argsort(scores[(labels == 1) & ~pred])],
        "FP": idx[(labels == 0) & pred][np.argsort(-scores[(labels == 0) & pred])],
        "TN": idx[(labels == 0) & ~pred][np.argsort(scores[(labels == 0) & ~pred])],
    }
    return {c: [int(i) for i in v[:k]] for c, v in picks.items()}


def _png(image: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).resize((image.shape[1] * 2, image.shape[0] * 2)).save(buf, format="PNG")
    return buf.getvalue()


def evaluate(spec: EvalSpec, progress: ProgressFn | None = None) -> Path:
    """Run the evaluation and write scores, heatmaps and the report into ``spec.out_dir``."""
    from edgekit.heatmaps import gradcam, occlusion, overlay, top_iou
    from edgekit.metrics import eer
    from edgekit.report import render

    say: ProgressFn = progress or (lambda _m: None)
    manifest = load_manifest(spec.export_dir)
    root = Path(spec.export_dir)
    root = root if root.is_dir() else root.parent
    out = ensure_output_dir(spec.out_dir)
    pre, output = _preprocess(manifest), _output(manifest)
    say("decoding data")
    frames = decode(discover(spec.data), pre, spec.frames)
    labels = np.asarray(frames.labels, dtype=np.int64)
    x = _inputs(frames, pre, Layout.NCHW)
    scorers = _scorers(manifest, root, spec, output)
    columns: dict[str, np.ndarray] = {}
    speed: dict[str, float] = {}
    for s in scorers:
        say(f"scoring {len(x)} samples with {s.name}")
        start = time.perf_counter()
        columns[s.name] = s.scores(x)
        speed[s.name] = len(x) / max(time.perf_counter() - start, 1e-9)
    _write_scores(out / SCORES, frames, columns)
    base = columns[BASELINE]
    both = len(set(labels.tolist())) == 2
    threshold = (
        eer(labels, base)[1]
        if spec.threshold == "eer" and both
        else float(spec.threshold if spec.threshold != "eer" else 0.5)
    )
    heat_index: dict[str, list[dict[str, Any]]] = {}
    drift: dict[str, float | None] = {}
    if spec.heatmaps and spec.top_k:
        baseline = scorers[0]
        occl_base: dict[int, np.ndarray] = {}
        for s in scorers:
            say(f"heatmaps for {s.name}")
            entries, ious = [], []
            for cat, picked in _pick(labels, columns[s.name], threshold, spec.top_k).items():
                for rank, i in enumerate(picked):
                    xi = x[i : i + 1]
                    if i not in occl_base:
                        occl_base[i] = occlusion(baseline.score_one, xi, spec.grid)
                    if s.module is not None:
                        heat = gradcam(s.module, xi, output.positive_index if output.classes == 2 else 0)
                        occl = occl_base[i]
                    else:
                        heat = occl = occlusion(s.score_one, xi, spec.grid)
                    ious.append(top_iou(occl, occl_base[i]))
                    rel = f"heatmaps/{s.name}/{cat}_{rank}.png"
                    (out / rel).parent.mkdir(parents=True, exist_ok=True)
                    atomic_write_bytes(out / rel, _png(overlay(frames.images[i], heat)))
                    entries.append(
                        {
                            "category": cat,
                            "sample": frames.sample_ids[i],
                            "score": float(columns[s.name][i]),
                            "file": rel,
                        }
                    )
            heat_index[s.name] = entries
            drift[s.name] = float(np.mean(ious)) if ious else None
    sizes = {v.name: v.size_bytes for v in manifest.variants if v.name in columns}
    src = manifest.source.get("path")
    sizes[BASELINE] = Path(src).stat().st_size if src and Path(src).exists() else None
    meta = {
        "schema": "edgekit.eval",
        "schema_version": 1,
        "spec": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(spec).items()},
        "threshold": threshold,
        "threshold_mode": spec.threshold,
        "baseline": BASELINE,
        "variants": list(columns),
        "precision": {BASELINE: "fp32", **{v.name: v.precision for v in manifest.variants}},
        "format": {BASELINE: "pytorch", **{v.name: v.format for v in manifest.variants}},
        "size_bytes": sizes,
        "images_per_s": {k: round(v, 1) for k, v in speed.items()},
        "samples": len(x),
        "videos": frames.videos,
        "skipped": [list(s) for s in frames.skipped],
        "heatmaps": heat_index,
        "heatmap_method": {n: ("grad-cam" if n == BASELINE else "occlusion") for n in columns},
        "heatmap_drift_iou": drift,
        "model": manifest.name,
    }
    atomic_write_text(out / EVAL_JSON, json.dumps(meta, indent=2) + "\n")
    say("rendering the report")
    render(out)
    return out


def _write_scores(path: Path, frames: Frames, columns: dict[str, np.ndarray]) -> None:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["sample", "video", "label", "method", *columns])
    for i, sid in enumerate(frames.sample_ids):
        row = [sid, frames.video_ids[i], frames.labels[i], frames.methods[i]]
        w.writerow(row + [f"{columns[c][i]:.7f}" for c in columns])
    atomic_write_text(path, buf.getvalue())


def read_scores(path: Path) -> tuple[list[dict[str, str]], list[str]]:
    """Rows of scores.csv and its variant columns."""
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        rows = list(reader)
        names = [c for c in (reader.fieldnames or []) if c not in ("sample", "video", "label", "method")]
    return rows, names
