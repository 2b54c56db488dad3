"""`edgekit eval`: score labelled images/videos with the PyTorch baseline and every exported
variant, save per-sample scores, heatmaps of the top hits and misses, then render the report.

Data is decoded once and fed to every variant; preprocessing is the manifest's. Scores go to
``scores.csv`` (one column per variant) so `edgekit report` can re-render without inference.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgekit._io import atomic_write_bytes, ensure_output_dir, sha256_file
from edgekit.data.decode import Frames, decode
from edgekit.data.labels import discover
from edgekit.data.tensors import preprocess_image
from edgekit.errors import ModelLoadError, OutputError, UsageError
from edgekit.evaluation.results import SCORES, EvalMeta, HeatmapEntry, write_scores
from edgekit.manifest import Manifest, export_root, load_manifest, verified_file
from edgekit.parity import fake_scores
from edgekit.spec import Layout, ModelSource, OutputSpec, Preprocess
from edgekit.validate import contained

BASELINE = "pytorch_fp32"
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
    tolerance: float = 0.01  # AUC budget
    max_acc_drop: float = 0.02
    max_f1_drop: float = 0.02
    max_flip_rate: float = 0.01
    top_k: int = 5
    variants: tuple[str, ...] | None = None
    trust_pickle: bool = False
    heatmaps: bool = True
    grid: int = 8
    #: the PyTorch baseline: the manifest's source model unless given here; an architecture
    #: (for a state dict) only ever comes from here, never from the manifest
    baseline: Path | None = None
    arch: str | None = None
    arch_kwargs: dict[str, Any] = field(default_factory=dict)

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


def _baseline_file(m: Manifest, root: Path, recorded: str) -> Path:
    """The source model the manifest records, checked against its recorded sha256.

    It is the one file outside the export folder a manifest may name; it is only ever read
    as a model (never run), and a copy beside the manifest is used when the folder moved.
    """
    path = Path(recorded)
    if not path.is_file():
        path = contained(root, path.name, "the manifest's source model")
    if not path.is_file():
        raise ModelLoadError(f"the baseline model {recorded} is gone; pass --baseline MODEL")
    if m.source.get("sha256") and sha256_file(path) != m.source["sha256"]:
        raise ModelLoadError(
            f"the baseline model {path} is not the file this export was made from (sha256 differs); "
            "pass --baseline MODEL to compare with it anyway"
        )
    return path


def _baseline(m: Manifest, root: Path, spec: EvalSpec) -> Any:
    from edgekit.loading import load_model, select_output

    recorded = m.source.get("path")
    if spec.baseline is None and spec.arch is None and (m.source.get("arch") or not recorded):
        raise UsageError(
            f"this export was built with --arch {m.source.get('arch')}; edgekit never imports code a manifest "
            "names: pass --arch (and --arch-kwargs) to 'edgekit eval' yourself, or --baseline MODEL.pt2"
        )
    path = spec.baseline
    if path is None and recorded:
        path = _baseline_file(m, root, str(recorded))
    source = ModelSource(
        path=path, arch=spec.arch, arch_kwargs=spec.arch_kwargs, trust_pickle=spec.trust_pickle
    )
    try:
        module = load_model(source).module
    except ModelLoadError as exc:
        raise ModelLoadError(f"the PyTorch baseline of this export cannot be loaded: {exc}") from exc
    index = m.output.get("index")
    return module if not isinstance(index, int) else select_output(module, index)


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

    out = [_Scorer(BASELINE, None, Layout.NCHW, output, torch_module=_baseline(m, root, spec))]
    for v in m.variants:
        if v.status != "ok" or not v.file or (spec.variants and v.name not in spec.variants):
            continue
        path = verified_file(root, v)
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
    from edgekit.evaluation.heatmaps import gradcam, occlusion, overlay, top_iou
    from edgekit.evaluation.metrics import eer
    from edgekit.evaluation.report import render

    say: ProgressFn = progress or (lambda _m: None)
    manifest = load_manifest(spec.export_dir)
    root = export_root(spec.export_dir)
    out = ensure_output_dir(spec.out_dir)
    pre, output = manifest.preprocess_spec(), manifest.output_spec()
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
    write_scores(out / SCORES, frames.sample_ids, frames.video_ids, frames.labels, frames.methods, columns)
    base = columns[BASELINE]
    both = len(set(labels.tolist())) == 2
    threshold = (
        eer(labels, base)[1]
        if spec.threshold == "eer" and both
        else float(spec.threshold if spec.threshold != "eer" else 0.5)
    )
    heat_index: dict[str, list[HeatmapEntry]] = {}
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
                    target = contained(out, rel, "heatmap", error=OutputError)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    atomic_write_bytes(target, _png(overlay(frames.images[i], heat)))
                    entries.append(HeatmapEntry(cat, frames.sample_ids[i], float(columns[s.name][i]), rel))
            heat_index[s.name] = entries
            drift[s.name] = float(np.mean(ious)) if ious else None
    sizes = {v.name: v.size_bytes for v in manifest.variants if v.name in columns}
    src = manifest.source.get("path")
    sizes[BASELINE] = Path(src).stat().st_size if src and Path(src).exists() else None
    meta = EvalMeta(
        spec={k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(spec).items()},
        threshold=threshold,
        threshold_mode=spec.threshold,
        baseline=BASELINE,
        variants=list(columns),
        precision={BASELINE: "fp32", **{v.name: v.precision for v in manifest.variants}},
        format={BASELINE: "pytorch", **{v.name: v.format for v in manifest.variants}},
        size_bytes=sizes,
        images_per_s={k: round(v, 1) for k, v in speed.items()},
        samples=len(x),
        videos=frames.videos,
        skipped=[list(s) for s in frames.skipped],
        heatmaps=heat_index,
        heatmap_method={n: ("grad-cam" if n == BASELINE else "occlusion") for n in columns},
        heatmap_drift_iou=drift,
        model=manifest.name,
    )
    meta.save(out)
    say("rendering the report")
    render(out)
    return out
