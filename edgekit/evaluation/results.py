"""What `edgekit eval` leaves on disk and `edgekit report` reads back: ``scores.csv`` (one row
per sample, one score column per variant) and ``eval.json`` (:class:`EvalMeta`).

Both are read as untrusted files: a hand-edited or truncated one gives one
:class:`~edgekit.errors.UsageError` line, never a traceback.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from edgekit._io import atomic_write_text
from edgekit.errors import FileFormatError, UsageError
from edgekit.evaluation.metrics import Budget
from edgekit.spec import FaceCrop
from edgekit.validate import read_json, safe_name

SCORES = "scores.csv"
EVAL_JSON = "eval.json"
EVAL_SCHEMA = "edgekit.eval"
EVAL_SCHEMA_VERSION = 1
#: skipped files listed by name in eval.json (the rest are counted): a folder of a million broken
#: files must not make eval.json too large to read back
MAX_SKIPPED_LISTED = 1000
SCORE_META_COLUMNS = ("sample", "video", "label", "method")


@dataclass(frozen=True)
class HeatmapEntry:
    """One heatmap image of a top TP/FN/FP/TN sample."""

    category: str
    sample: str
    score: float
    file: str


@dataclass(frozen=True)
class EvalMeta:
    """The content of ``eval.json``: how the scores were made and what the report needs."""

    spec: dict[str, Any]
    threshold: float
    threshold_mode: str
    baseline: str
    variants: list[str]
    precision: dict[str, str]
    format: dict[str, str]
    size_bytes: dict[str, int | None]
    images_per_s: dict[str, float]
    samples: int
    videos: int
    skipped: list[list[str]]
    heatmaps: dict[str, list[HeatmapEntry]]
    heatmap_method: dict[str, str]
    heatmap_drift_iou: dict[str, float | None]
    model: str
    #: seconds: decode, one entry per variant's inference, heatmaps, total
    timing: dict[str, float] = field(default_factory=dict)
    #: frames (or stills) in which the face detector found no face
    no_face: int = 0
    #: the face crop the frames went through (None: whole frames)
    face_crop: dict[str, Any] | None = None
    #: the data set read: layout, split, quality, items and what was missing or skipped
    data: dict[str, Any] = field(default_factory=dict)
    #: batch size the PyTorch baseline ran at (exported variants always run at batch 1)
    baseline_batch: int = 1
    #: files that could not be read, all of them (``skipped`` lists the first MAX_SKIPPED_LISTED)
    skipped_total: int = 0
    schema: str = field(default=EVAL_SCHEMA)
    schema_version: int = field(default=EVAL_SCHEMA_VERSION)

    def to_dict(self) -> dict[str, Any]:
        """Plain data in the file's key order (schema first)."""
        out: dict[str, Any] = {"schema": self.schema, "schema_version": self.schema_version}
        for f in fields(self):
            if f.name in out:
                continue
            value = getattr(self, f.name)
            if f.name == "heatmaps":
                value = {k: [vars(e) for e in v] for k, v in value.items()}
            out[f.name] = value
        return out

    def save(self, out_dir: Path) -> Path:
        """Write ``eval.json`` atomically."""
        path = Path(out_dir) / EVAL_JSON
        atomic_write_text(path, json.dumps(self.to_dict(), indent=2) + "\n")
        return path

    @property
    def video_agg(self) -> str:
        """How frame scores were pooled per video."""
        return str(self.spec.get("video_agg", "mean"))

    @property
    def tolerance(self) -> float:
        """The AUC budget the report judges variants by."""
        return float(self.spec.get("tolerance", 0.01))

    @property
    def budget(self) -> Budget:
        """What a variant may lose against the baseline and still be Stable."""
        b = Budget()
        return Budget(
            auc=float(self.spec.get("tolerance", b.auc)),
            accuracy=float(self.spec.get("max_acc_drop", b.accuracy)),
            f1=float(self.spec.get("max_f1_drop", b.f1)),
            flip_rate=float(self.spec.get("max_flip_rate", b.flip_rate)),
        )

    @property
    def frames(self) -> int:
        """Frames sampled per video."""
        return int(self.spec.get("frames", 16))


def _bad(path: Path, what: str) -> FileFormatError:
    return FileFormatError(f"{path} is not a valid edgekit eval file ({what}); re-run 'edgekit eval'")


def _typed(path: Path, d: dict[str, Any], key: str, kind: type | tuple[type, ...]) -> Any:
    value = d.get(key)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise _bad(path, f"'{key}' is missing or of the wrong type")
    return value


def eval_meta_from_dict(d: Any, path: Path = Path(EVAL_JSON)) -> EvalMeta:
    """Validate parsed ``eval.json`` content; raises :class:`UsageError` with one line."""
    if not isinstance(d, dict):
        raise _bad(path, "not a JSON object")
    if d.get("schema") != EVAL_SCHEMA or d.get("schema_version") != EVAL_SCHEMA_VERSION:
        raise FileFormatError(
            f"{path} is from another edgekit version or not an eval file; re-run 'edgekit eval'"
        )
    threshold = float(_typed(path, d, "threshold", (int, float)))
    if not math.isfinite(threshold):
        raise _bad(path, "'threshold' is not a finite number")
    variants = _typed(path, d, "variants", list)
    if not variants or not all(isinstance(v, str) for v in variants) or len(set(variants)) != len(variants):
        raise _bad(path, "'variants' must be a non-empty list of distinct names")
    for name in variants:
        safe_name(name, "variant", error=FileFormatError)
    baseline = _typed(path, d, "baseline", str)
    if baseline not in variants:
        raise _bad(path, "the baseline is not one of the variants")
    maps = {
        k: _typed(path, d, k, dict) for k in ("spec", "precision", "format", "size_bytes", "images_per_s")
    }
    for key in ("size_bytes", "images_per_s"):
        if not all(v is None or isinstance(v, (int, float)) for v in maps[key].values()):
            raise _bad(path, f"'{key}' holds a value that is not a number")
    heatmaps: dict[str, list[HeatmapEntry]] = {}
    raw_heat = d.get("heatmaps") or {}
    if not isinstance(raw_heat, dict):
        raise _bad(path, "'heatmaps' is not an object")
    for name, entries in raw_heat.items():
        if not isinstance(entries, list):
            raise _bad(path, f"heatmaps of {name!r} are not a list")
        try:
            heatmaps[str(name)] = [
                HeatmapEntry(str(e["category"]), str(e["sample"]), float(e["score"]), str(e["file"]))
                for e in entries
            ]
        except (KeyError, TypeError, ValueError):
            raise _bad(path, f"a heatmap entry of {name!r} lacks category/sample/score/file") from None
    skipped = d.get("skipped") or []
    if not isinstance(skipped, list) or not all(isinstance(s, list) and len(s) == 2 for s in skipped):
        raise _bad(path, "'skipped' must be a list of [file, reason] pairs")
    if len(skipped) > MAX_SKIPPED_LISTED:
        raise _bad(path, f"'skipped' lists {len(skipped)} files; edgekit writes at most {MAX_SKIPPED_LISTED}")
    skipped_total = d.get("skipped_total", len(skipped))
    if not isinstance(skipped_total, int) or isinstance(skipped_total, bool) or skipped_total < len(skipped):
        raise _bad(path, "'skipped_total' must be an integer, at least the number of files listed")
    drift = d.get("heatmap_drift_iou") or {}
    method = d.get("heatmap_method") or {}
    if not isinstance(drift, dict) or not isinstance(method, dict):
        raise _bad(path, "'heatmap_drift_iou' / 'heatmap_method' are not objects")
    timing = d.get("timing") or {}
    if not isinstance(timing, dict) or not all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v >= 0
        for v in timing.values()
    ):
        raise _bad(path, "'timing' must map names to non-negative seconds")
    no_face, batch = d.get("no_face", 0), d.get("baseline_batch", 1)
    if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in (no_face, batch)):
        raise _bad(path, "'no_face' and 'baseline_batch' must be non-negative integers")
    crop = d.get("face_crop")
    if crop is not None:
        try:
            crop = FaceCrop.from_dict(crop).to_dict()
        except UsageError as exc:
            raise _bad(path, f"'face_crop': {exc}") from None
    data = d.get("data") or {}
    notes = data.get("notes", []) if isinstance(data, dict) else None
    if not isinstance(notes, list) or not all(isinstance(n, str) for n in notes) or len(notes) > 100:
        raise _bad(path, "'data' must be an object whose 'notes' is a list of at most 100 strings")
    data = {str(k): v for k, v in data.items() if k in ("layout", "split", "quality", "items", "notes")}
    if not all(isinstance(data.get(k), (str, type(None))) for k in ("layout", "split", "quality")):
        raise _bad(path, "'data' layout/split/quality must be strings")
    return EvalMeta(
        spec=maps["spec"],
        threshold=threshold,
        threshold_mode=str(d.get("threshold_mode", "")),
        baseline=baseline,
        variants=[str(v) for v in variants],
        precision={str(k): str(v) for k, v in maps["precision"].items()},
        format={str(k): str(v) for k, v in maps["format"].items()},
        size_bytes=maps["size_bytes"],
        images_per_s=maps["images_per_s"],
        samples=int(_typed(path, d, "samples", int)),
        videos=int(d.get("videos") or 0),
        skipped=[[str(a), str(b)] for a, b in skipped],
        heatmaps=heatmaps,
        heatmap_method={str(k): str(v) for k, v in method.items()},
        heatmap_drift_iou=drift,
        model=str(d.get("model", "model")),
        timing={str(k): float(v) for k, v in timing.items()},
        no_face=no_face,
        face_crop=crop,
        baseline_batch=batch,
        skipped_total=skipped_total,
        data=data,
    )


def load_eval_meta(out_dir: Path) -> EvalMeta:
    """Read and validate ``eval.json`` from an eval folder."""
    path = Path(out_dir) / EVAL_JSON
    try:
        raw = read_json(path, error=ValueError)
    except (OSError, ValueError) as exc:
        raise UsageError(
            f"{Path(out_dir)} has no readable {EVAL_JSON}; run 'edgekit eval' first ({exc})"
        ) from exc
    return eval_meta_from_dict(raw, path)


def write_scores(
    path: Path,
    sample_ids: list[str],
    video_ids: list[str],
    labels: list[int],
    methods: list[str],
    columns: dict[str, np.ndarray],
) -> None:
    """Write ``scores.csv`` atomically: provenance columns, then one score column per variant."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow([*SCORE_META_COLUMNS, *columns])
    for i, sid in enumerate(sample_ids):
        row = [sid, video_ids[i], labels[i], methods[i]]
        w.writerow(row + [f"{columns[c][i]:.7f}" for c in columns])
    atomic_write_text(path, buf.getvalue())


def read_scores(path: Path) -> tuple[list[dict[str, str]], list[str]]:
    """Rows of scores.csv and its variant columns."""
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        rows = list(reader)
        names = [c for c in (reader.fieldnames or []) if c not in SCORE_META_COLUMNS]
    return rows, names


@dataclass(frozen=True)
class ScoreTable:
    """``scores.csv`` validated: labels 0/1, one finite score in [0, 1] per sample and variant."""

    labels: np.ndarray
    videos: list[str]
    methods: list[str]
    scores: dict[str, np.ndarray]
    sample_ids: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.labels)


def load_scores(out_dir: Path, meta: EvalMeta) -> ScoreTable:
    """Read ``scores.csv`` of an eval folder and check it against ``meta``."""
    path = Path(out_dir) / SCORES
    try:
        rows, names = read_scores(path)
    except (OSError, ValueError, csv.Error) as exc:
        raise UsageError(
            f"{Path(out_dir)} has no readable {SCORES}; run 'edgekit eval' first ({exc})"
        ) from exc
    if not rows:
        raise _bad(path, "no score rows")
    missing = [n for n in meta.variants if n not in names]
    if missing or meta.baseline not in names:
        raise _bad(path, f"no score column for {', '.join(missing or [meta.baseline])}")
    try:
        labels = np.array([int(r["label"]) for r in rows], dtype=np.int64)
        scores = {n: np.array([float(r[n]) for r in rows], dtype=np.float64) for n in meta.variants}
    except (TypeError, ValueError, KeyError):
        raise _bad(path, "a label or score is not a number (truncated or edited?)") from None
    if not np.isin(labels, (0, 1)).all():
        raise _bad(path, "labels must be 0 or 1")
    for name, col in scores.items():
        if not np.isfinite(col).all() or (col < 0).any() or (col > 1).any():
            raise _bad(path, f"scores of {name!r} must be finite numbers in [0, 1]")
    return ScoreTable(
        labels,
        [r.get("video") or "" for r in rows],
        [r.get("method") or "" for r in rows],
        scores,
        [r.get("sample") or "" for r in rows],
    )
