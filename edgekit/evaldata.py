"""Labelled evaluation data: images and videos, decoded once and shared by every variant.

A folder with ``real/`` and ``fake/`` sub-folders (any depth below them; ``fake/<method>/``
names the manipulation method), or a CSV/JSON list of ``path,label`` (label 0/1 or
real/fake, optional ``method``; paths relative to the list). Videos are sampled at
``frames`` evenly spaced frames with PyAV; nothing is written to disk.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgekit.data import IMAGE_EXTS, read_image
from edgekit.errors import DataError
from edgekit.spec import Preprocess

VIDEO_EXTS = frozenset({".mp4", ".avi", ".mov", ".webm", ".mkv"})
_LABELS = {"0": 0, "1": 1, "real": 0, "fake": 1}


@dataclass(frozen=True)
class Item:
    """One labelled file."""

    path: Path
    name: str
    label: int
    method: str | None

    @property
    def is_video(self) -> bool:
        """True for video files."""
        return self.path.suffix.lower() in VIDEO_EXTS


@dataclass
class Frames:
    """Decoded frames (uint8 N x H x W x 3 at the preprocess size) with their provenance."""

    images: np.ndarray
    sample_ids: list[str] = field(default_factory=list)
    video_ids: list[str] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    methods: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    videos: int = 0


def _from_folder(root: Path) -> list[Item]:
    items = []
    for p in sorted(root.rglob("*")):
        if not p.is_file() or p.suffix.lower() not in IMAGE_EXTS | VIDEO_EXTS:
            continue
        parts = [x.lower() for x in p.relative_to(root).parts[:-1]]
        label = next((_LABELS[x] for x in parts if x in ("real", "fake")), None)
        if label is None:
            continue
        method = None
        if label == 1:
            after = p.relative_to(root).parts[parts.index("fake") + 1 : -1]
            method = after[0] if after else None
        items.append(Item(p, p.relative_to(root).as_posix(), label, method))
    return items


def _from_list(path: Path) -> list[Item]:
    try:
        if path.suffix.lower() == ".json":
            rows = json.loads(path.read_text(encoding="utf-8"))
        else:
            with open(path, newline="", encoding="utf-8") as fh:
                rows = list(csv.DictReader(fh))
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: not a readable CSV/JSON list of path,label ({exc})") from exc
    if (
        not isinstance(rows, list)
        or not rows
        or not all(isinstance(r, dict) and "path" in r and "label" in r for r in rows)
    ):
        raise DataError(f"{path}: needs rows with 'path' and 'label' (0/1 or real/fake)")
    items = []
    for r in rows:
        label = _LABELS.get(str(r["label"]).strip().lower())
        if label is None:
            raise DataError(f"{path}: label {r['label']!r} of {r['path']} is not 0/1 or real/fake")
        p = (path.parent / str(r["path"])).resolve()
        items.append(Item(p, str(r["path"]), label, (r.get("method") or None) if label == 1 else None))
    return items


def discover(data: Path) -> list[Item]:
    """Every labelled image/video under ``data`` (a folder or a CSV/JSON list)."""
    data = Path(data)
    if not data.exists():
        raise DataError(
            f"--data {data} does not exist; pass a folder with real/ and fake/ or a CSV of path,label"
        )
    items = _from_list(data) if data.is_file() else _from_folder(data)
    if not items:
        if data.is_dir() and any(data.rglob("*.*")):
            raise DataError(
                f"no labels under {data}: put files under real/ and fake/ folders, or pass a CSV of path,label"
            )
        raise DataError(f"--data {data} holds no images or videos; add some under real/ and fake/")
    return items


def _video_frames(path: Path, count: int, pre: Preprocess) -> list[np.ndarray]:
    import av
    from PIL import Image

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        total = stream.frames or sum(1 for p in container.demux(stream) if p.size)
    if total <= 0:
        raise ValueError("no video frames")
    wanted = sorted({round(i * (total - 1) / max(count - 1, 1)) for i in range(min(count, total))})
    out: list[np.ndarray] = []
    with av.open(str(path)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i in wanted:
                img = Image.fromarray(frame.to_ndarray(format="rgb24"))
                if img.size != (pre.width, pre.height):
                    img = img.resize((pre.width, pre.height), Image.Resampling.BILINEAR)
                out.append(np.asarray(img, dtype=np.uint8))
            if i >= wanted[-1]:
                break
    if not out:
        raise ValueError("no frame could be decoded")
    return out


def decode(items: list[Item], pre: Preprocess, frames: int = 16) -> Frames:
    """Decode every item once; unreadable files are skipped and listed."""
    images: list[np.ndarray] = []
    result = Frames(np.zeros((0, pre.height, pre.width, 3), np.uint8))
    for item in items:
        try:
            decoded = _video_frames(item.path, frames, pre) if item.is_video else [read_image(item.path, pre)]
        except Exception as exc:
            result.skipped.append((item.name, f"{type(exc).__name__}: {exc}".splitlines()[0][:160]))
            continue
        result.videos += int(item.is_video)
        for k, img in enumerate(decoded):
            images.append(img)
            result.sample_ids.append(f"{item.name}#{k}" if item.is_video else item.name)
            result.video_ids.append(item.name)
            result.labels.append(item.label)
            result.methods.append(item.method or ("real" if item.label == 0 else "fake"))
    if not images:
        raise DataError(f"none of the {len(items)} files could be decoded (first: {result.skipped[0][1]})")
    result.images = np.stack(images)
    return result
