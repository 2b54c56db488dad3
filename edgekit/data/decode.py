"""Decoding images and video frames to uint8 RGB at the preprocessing size.

Every consumer (calibration, parity, evaluation, pruning) decodes through here, so the
resize filter of :class:`~edgekit.spec.Preprocess` holds for stills and video frames alike.
Videos are sampled at ``frames`` evenly spaced frames with PyAV; nothing is written to disk.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edgekit.data.labels import Item
from edgekit.errors import DataError
from edgekit.spec import Preprocess
from edgekit.validate import escape_controls

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
    #: frames (or stills) in which the face detector found no face, with ``face_crop``
    no_face: int = 0

    def merge(self, other: Frames) -> None:
        """Append ``other``'s provenance (not its images: callers decide what to keep)."""
        self.sample_ids += other.sample_ids
        self.video_ids += other.video_ids
        self.labels += other.labels
        self.methods += other.methods
        self.skipped += other.skipped
        self.videos += other.videos
        self.no_face += other.no_face


def _resampling(pre: Preprocess) -> Any:
    from PIL import Image

    return {
        "bilinear": Image.Resampling.BILINEAR,
        "bicubic": Image.Resampling.BICUBIC,
        "nearest": Image.Resampling.NEAREST,
    }[pre.resize]


def _rgb(img: PILImage.Image) -> PILImage.Image:
    """RGB, with 16-bit and 32-bit grey scaled to 8 bits (PIL's convert would clip them at 255)."""
    if img.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        from PIL import Image

        wide = np.asarray(img, dtype=np.float64)
        top = 65535.0 if img.mode.startswith("I;16") or wide.max(initial=0) > 255 else 255.0
        if img.mode == "F":
            top = max(float(wide.max(initial=0)), 1.0)
        img = Image.fromarray(np.clip(np.round(wide * (255.0 / top)), 0, 255).astype(np.uint8), mode="L")
    return img.convert("RGB")


def to_model_size(img: PILImage.Image, pre: Preprocess) -> np.ndarray:
    """A PIL image -> uint8 HxWx3 RGB at the spec's size, with the spec's resize filter.

    With ``pre.face_crop`` the largest face is cropped first; :class:`NoFace` when there is none.
    """
    from PIL import Image

    rgb = _rgb(img)
    if pre.face_crop is not None:
        from edgekit.data.faces import detector

        face = detector(pre.face_crop).crop_largest(np.asarray(rgb, dtype=np.uint8))
        if face is None:
            raise NoFace("no face found")
        rgb = Image.fromarray(face)
    if rgb.size != (pre.width, pre.height):
        rgb = rgb.resize((pre.width, pre.height), _resampling(pre))
    return np.asarray(rgb, dtype=np.uint8)


class NoFace(ValueError):
    """A frame in which the face detector found no face (counted, never replaced)."""


def read_image(path: Path, pre: Preprocess) -> np.ndarray:
    """Decode an image file to uint8 HxWx3 RGB at the spec's size."""
    from PIL import Image

    with Image.open(path) as im:
        return to_model_size(im, pre)


def video_frames(path: Path, count: int, pre: Preprocess) -> list[np.ndarray]:
    """``count`` evenly spaced frames of a video, decoded to the spec's size."""
    return [img for _k, img in _video_frames(path, count, pre)[0]]


def _evenly(total: int, count: int) -> list[int]:
    """``count`` evenly spaced indices of ``total`` frames, first and last included."""
    return sorted({round(i * (total - 1) / max(count - 1, 1)) for i in range(min(count, total))})


def _folder_frames(folder: Path, count: int, pre: Preprocess) -> tuple[list[tuple[int, np.ndarray]], int]:
    """As :func:`_video_frames`, for a folder of extracted frames (in frame order)."""
    from edgekit.data.layouts import frame_files

    files = frame_files(folder)
    if not files:
        raise ValueError("no frame images in the folder")
    out: list[tuple[int, np.ndarray]] = []
    no_face = 0
    for k, index in enumerate(_evenly(len(files), count)):
        try:
            out.append((k, read_image(files[index], pre)))
        except NoFace:
            no_face += 1
    return out, no_face


def _video_frames(path: Path, count: int, pre: Preprocess) -> tuple[list[tuple[int, np.ndarray]], int]:
    """(frame number among the sampled ones, image) for each sampled frame with a face, and
    how many sampled frames had none. One frame is held at a time, never the whole video; a
    folder of extracted frames is sampled the same way."""
    import av
    from PIL import Image

    if path.is_dir():
        return _folder_frames(path, count, pre)

    with av.open(str(path)) as container:
        if not container.streams.video:
            raise ValueError("no video stream in the file")
        stream = container.streams.video[0]
        total = stream.frames or sum(1 for p in container.demux(stream) if p.size)
    if total <= 0:
        raise ValueError("no video frames")
    wanted = _evenly(total, count)
    out: list[tuple[int, np.ndarray]] = []
    no_face = 0
    with av.open(str(path)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i in wanted:
                try:
                    out.append(
                        (
                            wanted.index(i),
                            to_model_size(Image.fromarray(frame.to_ndarray(format="rgb24")), pre),
                        )
                    )
                except NoFace:
                    no_face += 1
            if i >= wanted[-1]:
                break
    if not out and not no_face:
        raise ValueError("no frame could be decoded")
    return out, no_face


@dataclass(frozen=True)
class Decoded:
    """One file's frames at the model size, or why it gave none."""

    item: Item
    images: tuple[np.ndarray, ...]
    sample_ids: tuple[str, ...]
    no_face: int = 0
    error: str | None = None


def decode_item(item: Item, pre: Preprocess, frames: int = 16) -> Decoded:
    """Decode one file; an unreadable file (or a still without a face) comes back with ``error``."""
    try:
        if item.is_video:
            found, no_face = _video_frames(item.path, frames, pre)
            if not found:
                return Decoded(item, (), (), no_face, f"no face in any of its {no_face} sampled frames")
            ids = tuple(f"{item.name}#{k}" for k, _img in found)
            return Decoded(item, tuple(img for _k, img in found), ids, no_face)
        return Decoded(item, (read_image(item.path, pre),), (item.name,))
    except NoFace:
        return Decoded(item, (), (), 1, "no face found")
    except Exception as exc:
        # the reason goes into reports and the terminal: one line, control characters written out
        return Decoded(item, (), (), 0, escape_controls(f"{type(exc).__name__}: {exc}", keep="")[:200])


def chunks(items: Iterable[Item], pre: Preprocess, frames: int = 16, size: int = 64) -> Iterator[Frames]:
    """Decoded frames in groups of about ``size`` (whole files: a video is never split), so a
    consumer holds one chunk at a time whatever the data set's size."""
    chunk = _empty(pre)
    images: list[np.ndarray] = []
    for item in items:
        got = decode_item(item, pre, frames)
        chunk.no_face += got.no_face
        if got.error is not None:
            chunk.skipped.append((item.name, got.error))
            continue
        chunk.videos += int(item.is_video)
        for img, sid in zip(got.images, got.sample_ids, strict=True):
            images.append(img)
            chunk.sample_ids.append(sid)
            chunk.video_ids.append(item.name)
            chunk.labels.append(item.label)
            chunk.methods.append(item.method or ("real" if item.label == 0 else "fake"))
        if len(images) >= size:
            chunk.images = np.stack(images)
            yield chunk
            chunk, images = _empty(pre), []
    if images or chunk.skipped or chunk.no_face:
        chunk.images = np.stack(images) if images else chunk.images
        yield chunk


def _empty(pre: Preprocess) -> Frames:
    return Frames(np.zeros((0, pre.height, pre.width, 3), np.uint8))


def decode(items: list[Item], pre: Preprocess, frames: int = 16) -> Frames:
    """Decode every item into one array (small data only: consumers of whole data sets use
    :func:`chunks`); unreadable files are skipped and listed."""
    result = _empty(pre)
    parts: list[np.ndarray] = []
    for chunk in chunks(items, pre, frames):
        parts.append(chunk.images)
        result.merge(chunk)
    if not result.sample_ids:
        first = result.skipped[0][1] if result.skipped else "nothing to decode"
        raise DataError(f"none of the {len(items)} files could be decoded (first: {first})")
    result.images = np.concatenate(parts)
    return result
