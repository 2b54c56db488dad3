"""`edgekit eval`: score labelled images/videos with the PyTorch baseline and every exported
variant, save per-sample scores, heatmaps of the top hits and misses, then render the report.

The data streams: files are decoded a chunk at a time (whole videos), each chunk is scored by
every variant and appended to ``scores.csv`` before the next is decoded, so memory does not
grow with the data set and ``--resume`` carries on after a kill. Preprocessing (and the face
crop) is the manifest's. Heatmaps come after scoring, for the top-k samples only, which are
decoded again. `edgekit report` re-renders from ``scores.csv`` without inference.
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
from edgekit.data.decode import Frames, chunks, decode_item
from edgekit.data.labels import Item
from edgekit.data.layouts import ReadOptions, read_data
from edgekit.data.tensors import preprocess_image
from edgekit.errors import DataError, ModelLoadError, OutputError, UsageError
from edgekit.evaluation.results import MAX_SKIPPED_LISTED, EvalMeta, HeatmapEntry, load_scores
from edgekit.evaluation.scorelog import ScoreLog
from edgekit.manifest import Manifest, export_root, load_manifest, verified_file
from edgekit.parity import fake_scores
from edgekit.spec import FaceCrop, Layout, ModelSource, OutputSpec, Preprocess
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
    #: crop faces (overrides the manifest's record); None: as the manifest says
    face_crop: FaceCrop | None = None
    #: carry on from the scores a killed run left in ``out_dir``
    resume: bool = False
    #: frames decoded and scored at a time (bounds memory)
    chunk: int = 64
    #: largest batch the PyTorch baseline runs at (when the model accepts batches)
    batch: int = 32
    #: score on Ray: "local" starts a cluster here, else a cluster address; None: in this process
    ray: str | None = None
    ray_workers: int = 2
    #: the data set's layout (None: recognised from the folder), FF++ quality, official split
    dataset: str | None = None
    quality: str | None = None
    split: str | None = None

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
        if self.chunk < 1 or self.batch < 1 or self.ray_workers < 1:
            raise UsageError("--chunk, --batch and --ray-workers must be >= 1")


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


def _baseline(m: Manifest, root: Path, spec: EvalSpec) -> tuple[Any, Any]:
    """The baseline module and the torch.export program it came from (None: not a .pt2)."""
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
        loaded = load_model(source)
    except ModelLoadError as exc:
        raise ModelLoadError(f"the PyTorch baseline of this export cannot be loaded: {exc}") from exc
    index = m.output.get("index")
    if isinstance(index, int):
        return select_output(loaded.module, index), None
    return loaded.module, loaded.program


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
        #: the PyTorch baseline's batch; exported variants run at batch 1, as on the phone
        self.batch = 1
        self.batched: Any = None
        self.program: Any = None
        self.tried = False
        self.seconds = 0.0

    def raw(self, x_nchw: np.ndarray) -> np.ndarray:
        from edgekit.runners import run_batch

        if self.module is not None:
            from edgekit.runners.torch import TorchRunner

            if self.batched is None:
                return run_batch(TorchRunner(self.module, (1, *x_nchw.shape[1:])), x_nchw)
            outs = []
            for i in range(0, len(x_nchw), self.batch):
                part = x_nchw[i : i + self.batch]
                outs.append(run_batch(TorchRunner(self.batched, part.shape), part))
            return np.concatenate(outs) if outs else np.zeros((0, 1), np.float32)
        x = x_nchw if self.layout is Layout.NCHW else np.ascontiguousarray(x_nchw.transpose(0, 2, 3, 1))
        return run_batch(self.runner, x)

    def scores(self, x_nchw: np.ndarray) -> np.ndarray:
        return fake_scores(self.raw(x_nchw), self.output)

    def timed_scores(self, x_nchw: np.ndarray) -> np.ndarray:
        start = time.perf_counter()
        out = self.scores(x_nchw)
        self.seconds += time.perf_counter() - start
        return out

    def score_one(self, x_nchw: np.ndarray) -> float:
        return float(self.scores(x_nchw)[0])

    def try_batches(self, x_nchw: np.ndarray, largest: int) -> None:
        """Batch the baseline when its module (re-captured with a batch dimension, for a
        .pt2) takes a batch and gives the batch-1 outputs; else it stays at batch 1."""
        from edgekit.runners.torch import batched_module

        self.tried = True
        if self.module is None or largest < 2 or len(x_nchw) < 2:
            return
        self.batched = batched_module(self.module, self.program, x_nchw)
        self.batch = largest if self.batched is not None else 1


def _scorers(m: Manifest, root: Path, spec: EvalSpec, output: OutputSpec) -> list[_Scorer]:
    from edgekit.runners import open_runner

    module, program = _baseline(m, root, spec)
    out = [_Scorer(BASELINE, None, Layout.NCHW, output, torch_module=module)]
    out[0].program = program
    for v in m.variants:
        if v.status != "ok" or not v.file or (spec.variants and v.name not in spec.variants):
            continue
        path = verified_file(root, v)
        runner = open_runner(v.format, path)
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


def _crop(spec: EvalSpec, manifest: Manifest, pre: Preprocess) -> Preprocess:
    """The manifest's preprocessing, with ``spec.face_crop`` when given (it must agree with a
    crop the manifest records: the variants were calibrated on those crops)."""
    from dataclasses import replace

    if spec.face_crop is None:
        return pre
    if pre.face_crop is not None and pre.face_crop != spec.face_crop:
        raise UsageError(
            f"--face-crop margin {spec.face_crop.margin} differs from the export's "
            f"(margin {pre.face_crop.margin}); drop the flag to use the export's crop"
        )
    return replace(pre, face_crop=spec.face_crop)


def _fingerprint(spec: EvalSpec, manifest: Manifest, pre: Preprocess, columns: list[str]) -> dict[str, Any]:
    """What the scores depend on: a --resume with anything else different is refused."""
    return {
        "variants": columns,
        "data": str(Path(spec.data).resolve()),
        # the same folder read as another layout, split or quality is other data
        "reading": [spec.dataset, spec.split, spec.quality],
        "frames": spec.frames,
        "preprocess": pre.to_dict(),
        "model": manifest.name,
        "files": {v.name: v.sha256 for v in manifest.variants if v.name in columns},
    }


def build_scorers(spec: EvalSpec) -> list[_Scorer]:
    """The baseline and every selected variant of ``spec``'s export, loaded and verified."""
    manifest = load_manifest(spec.export_dir)
    return _scorers(manifest, export_root(spec.export_dir), spec, manifest.output_spec())


def score_chunks(
    items: list[Item],
    pre: Preprocess,
    spec: EvalSpec,
    scorers: list[_Scorer],
    sink: Callable[[Frames, dict[str, np.ndarray]], None],
) -> float:
    """Decode ``items`` a chunk at a time, score each chunk with every scorer and hand it to
    ``sink``; returns the seconds spent decoding and preprocessing."""
    decode_s = 0.0
    stream = chunks(items, pre, spec.frames, spec.chunk)
    while True:
        start = time.perf_counter()
        chunk = next(stream, None)
        if chunk is None:
            return decode_s
        x = (
            np.stack([preprocess_image(img, pre, Layout.NCHW) for img in chunk.images])
            if len(chunk.images)
            else None
        )
        decode_s += time.perf_counter() - start
        columns: dict[str, np.ndarray] = {}
        if x is not None:
            if scorers[0].batched is None and not scorers[0].tried:
                scorers[0].try_batches(x, spec.batch)
            for s in scorers:
                columns[s.name] = s.timed_scores(x)
        sink(chunk, columns)


def _files(chunk: Frames) -> list[str]:
    return [*dict.fromkeys(chunk.video_ids), *(name for name, _why in chunk.skipped)]


def eta(elapsed: float, done: int, left: int) -> str:
    """``, about N s left`` at the rate so far (nothing before the first unit is done)."""
    if done <= 0 or left <= 0:
        return ""
    seconds = elapsed / done * left
    return f", about {seconds / 60:.0f} min left" if seconds >= 120 else f", about {seconds:.0f} s left"


def evaluate(spec: EvalSpec, progress: ProgressFn | None = None) -> Path:
    """Run the evaluation and write scores, heatmaps and the report into ``spec.out_dir``."""
    from edgekit.evaluation.metrics import eer
    from edgekit.evaluation.report import render

    began = time.perf_counter()
    say: ProgressFn = progress or (lambda _m: None)
    manifest = load_manifest(spec.export_dir)
    root = export_root(spec.export_dir)
    # the data is read before the output folder exists: a bad --data leaves nothing behind
    listing = read_data(spec.data, ReadOptions(spec.dataset, spec.quality, spec.split))
    out = ensure_output_dir(spec.out_dir)
    output = manifest.output_spec()
    pre = _crop(spec, manifest, manifest.preprocess_spec())
    items = list(listing.items)
    for note in listing.notes:
        say(f"{listing.layout}: {note}")
    scorers = _scorers(manifest, root, spec, output)
    names = [s.name for s in scorers]
    log = ScoreLog(out, names, _fingerprint(spec, manifest, pre, names), spec.resume)
    todo = [it for it in items if not log.is_done(it.name)]
    done = {"files": len(items) - len(todo)}
    rows_before = log.progress.rows
    scoring_began, resumed_at = time.perf_counter(), done["files"]

    def sink(chunk: Frames, columns: dict[str, np.ndarray]) -> None:
        files = _files(chunk)
        log.append(chunk, columns, files)
        done["files"] += len(files)
        say(f"scored {done['files']}/{len(items)} files ({log.progress.rows} samples)"
            + eta(time.perf_counter() - scoring_began, done["files"] - resumed_at, len(items) - done["files"]))  # fmt: skip

    if spec.ray is None:
        decode_s = score_chunks(todo, pre, spec, scorers, sink)
        steps = {f"infer:{s.name}": s.seconds for s in scorers}
    else:
        from edgekit.evaluation.distributed import score_on_ray

        say(f"scoring on Ray ({spec.ray}, {spec.ray_workers} workers)")
        steps = score_on_ray(todo, spec, pre, spec.ray, spec.ray_workers, sink, build_scorers, score_chunks)
        decode_s = steps.pop("decode", 0.0)
    if log.progress.rows == 0:
        first = log.progress.skipped[0][1] if log.progress.skipped else "nothing to decode"
        raise DataError(f"none of the {len(items)} files could be decoded (first: {first})")
    provisional = EvalMeta(
        spec={}, threshold=0.5, threshold_mode="", baseline=BASELINE, variants=names, precision={}, format={},
        size_bytes={}, images_per_s={}, samples=log.progress.rows, videos=0, skipped=[], heatmaps={},
        heatmap_method={}, heatmap_drift_iou={}, model=manifest.name,
    )  # fmt: skip
    table = load_scores(out, provisional)
    labels, base = table.labels, table.scores[BASELINE]
    both = len(set(labels.tolist())) == 2
    threshold = (
        eer(labels, base)[1]
        if spec.threshold == "eer" and both
        else float(spec.threshold if spec.threshold != "eer" else 0.5)
    )
    heat_start = time.perf_counter()
    heat_index, drift = _heatmaps(spec, items, pre, scorers, table, threshold, out, output, say)
    heat_s = time.perf_counter() - heat_start
    sizes = {v.name: v.size_bytes for v in manifest.variants if v.name in names}
    src = manifest.source.get("path")
    sizes[BASELINE] = Path(src).stat().st_size if src and Path(src).exists() else None
    timing = {"decode": decode_s, **steps, "heatmaps": heat_s}
    timing["total"] = time.perf_counter() - began
    meta = EvalMeta(
        spec={k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(spec).items()},
        threshold=threshold,
        threshold_mode=spec.threshold,
        baseline=BASELINE,
        variants=names,
        precision={BASELINE: "fp32", **{v.name: v.precision for v in manifest.variants}},
        format={BASELINE: "pytorch", **{v.name: v.format for v in manifest.variants}},
        size_bytes=sizes,
        images_per_s={
            n: round((log.progress.rows - rows_before) / max(steps[f"infer:{n}"], 1e-9), 1)
            for n in names
            if steps.get(f"infer:{n}")
        },
        samples=log.progress.rows,
        videos=log.progress.videos,
        skipped=log.progress.skipped[:MAX_SKIPPED_LISTED],
        skipped_total=len(log.progress.skipped),
        heatmaps=heat_index,
        heatmap_method={n: ("grad-cam" if n == BASELINE else "occlusion") for n in names},
        heatmap_drift_iou=drift,
        model=manifest.name,
        timing={k: round(v, 3) for k, v in timing.items()},
        no_face=log.progress.no_face,
        face_crop=pre.face_crop.to_dict() if pre.face_crop else None,
        baseline_batch=scorers[0].batch,
        data={
            "layout": listing.layout,
            "split": listing.split,
            "quality": listing.quality,
            "items": len(items),
            "notes": list(listing.notes),
        },
    )
    meta.save(out)
    log.finish()
    say("rendering the report")
    render(out)
    return out


def _heatmaps(
    spec: EvalSpec,
    items: list[Item],
    pre: Preprocess,
    scorers: list[_Scorer],
    table: Any,
    threshold: float,
    out: Path,
    output: OutputSpec,
    say: ProgressFn,
) -> tuple[dict[str, list[HeatmapEntry]], dict[str, float | None]]:
    """Heatmaps of the top-k samples per category and variant; only those files are decoded again."""
    from edgekit.evaluation.heatmaps import gradcam, occlusion, overlay, top_iou

    heat_index: dict[str, list[HeatmapEntry]] = {}
    drift: dict[str, float | None] = {}
    if not (spec.heatmaps and spec.top_k):
        return heat_index, drift
    picks = {s.name: _pick(table.labels, table.scores[s.name], threshold, spec.top_k) for s in scorers}
    wanted = {table.sample_ids[i] for p in picks.values() for idx in p.values() for i in idx}
    images = _redecode(
        items, pre, spec.frames, wanted, dict(zip(table.sample_ids, table.videos, strict=True))
    )
    baseline = scorers[0]
    occl_base: dict[str, np.ndarray] = {}
    for s in scorers:
        say(f"heatmaps for {s.name}")
        entries, ious = [], []
        for cat, picked in picks[s.name].items():
            for rank, i in enumerate(picked):
                sid = table.sample_ids[i]
                if sid not in images:
                    continue  # the file changed since it was scored: no heatmap rather than a wrong one
                xi = preprocess_image(images[sid], pre, Layout.NCHW)[None]
                if sid not in occl_base:
                    occl_base[sid] = occlusion(baseline.score_one, xi, spec.grid)
                if s.module is not None:
                    heat = gradcam(s.module, xi, output.positive_index if output.classes == 2 else 0)
                    occl = occl_base[sid]
                else:
                    heat = occl = occlusion(s.score_one, xi, spec.grid)
                ious.append(top_iou(occl, occl_base[sid]))
                rel = f"heatmaps/{s.name}/{cat}_{rank}.png"
                target = contained(out, rel, "heatmap", error=OutputError)
                target.parent.mkdir(parents=True, exist_ok=True)
                atomic_write_bytes(target, _png(overlay(images[sid], heat)))
                entries.append(HeatmapEntry(cat, sid, float(table.scores[s.name][i]), rel))
        heat_index[s.name] = entries
        drift[s.name] = float(np.mean(ious)) if ious else None
    return heat_index, drift


def _redecode(
    items: list[Item], pre: Preprocess, frames: int, wanted: set[str], file_of: dict[str, str]
) -> dict[str, np.ndarray]:
    files = {file_of[sid] for sid in wanted}
    found: dict[str, np.ndarray] = {}
    for item in items:
        if item.name in files:
            got = decode_item(item, pre, frames)
            found.update(
                (sid, img) for sid, img in zip(got.sample_ids, got.images, strict=True) if sid in wanted
            )
    return found
