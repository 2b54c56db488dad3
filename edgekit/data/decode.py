"""Decoding images and video frames to uint8 RGB at the preprocessing size.

Every consumer (calibration, parity, evaluation, pruning) decodes through here, so the
resize filter of :class:`~edgekit.spec.Preprocess` holds for stills and video frames alike.
Videos are sampled at ``frames`` evenly spaced frames with PyAV; nothing is written to disk.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edgekit.data.labels import Item
from edgekit.errors import DataError
from edgekit.spec import Preprocess

if TYPE_CHECKING:
    from PIL import Image as PILImage


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


def _resampling(pre: Preprocess) -> Any:
    from PIL import Image

    return {
        "bilinear": Image.Resampling.BILINEAR,
        "bicubic": Image.Resampling.BICUBIC,
        "nearest": Image.Resampling.NEAREST,
    }[pre.resize]


def to_model_size(img: PILImage.Image, pre: Preprocess) -> np.ndarray:
    """A PIL image -> uint8 HxWx3 RGB at the spec's size, with the spec's resize filter.

    16-bit and 32-bit grey images are scaled to 8 bits (PIL's convert would clip them at 255).
    """
    if img.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        from PIL import Image

        wide = np.asarray(img, dtype=np.float64)
        top = 65535.0 if img.mode.startswith("I;16") or wide.max(initial=0) > 255 else 255.0
        if img.mode == "F":
            top = max(float(wide.max(initial=0)), 1.0)
        img = Image.fromarray(np.clip(np.round(wide * (255.0 / top)), 0, 255).astype(np.uint8), mode="L")
    rgb = img.convert("RGB")
    if rgb.size != (pre.width, pre.height):
        rgb = rgb.resize((pre.width, pre.height), _resampling(pre))
    return np.asarray(rgb, dtype=np.uint8)


def read_image(path: Path, pre: Preprocess) -> np.ndarray:
    """Decode an image file to uint8 HxWx3 RGB at the spec's size."""
    from PIL import Image

    with Image.open(path) as im:
        return to_model_size(im, pre)


def video_frames(path: Path, count: int, pre: Preprocess) -> list[np.ndarray]:
    """``count`` evenly spaced frames of a video, decoded to the spec's size."""
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
                out.append(to_model_size(Image.fromarray(frame.to_ndarray(format="rgb24")), pre))
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
            decoded = video_frames(item.path, frames, pre) if item.is_video else [read_image(item.path, pre)]
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
