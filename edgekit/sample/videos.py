"""An FaceForensics++-shaped video sample: whole frames, the face off-centre, 1 real : 4 fake.

``real/`` holds the "original" clips; ``fake/{Deepfakes,Face2Face,FaceSwap,NeuralTextures}/``
hold one manipulated clip per real clip and method, each method with its own family of
self-blended artefacts (see :data:`edgekit.sample.synth.FAMILIES`). A clip is a face (the
bundled detector's kind of image) moving slowly over a textured background on a larger frame,
with fresh sensor noise per frame, encoded as H.264 mp4 (near-lossless, like FF++'s c23).
The detector was trained on face crops, so whole frames only score well after ``--face-crop``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgekit._io import atomic_write_bytes, ensure_output_dir
from edgekit.errors import UsageError
from edgekit.sample import SAMPLE_SEED
from edgekit.sample.synth import make_image

METHODS = ("Deepfakes", "Face2Face", "FaceSwap", "NeuralTextures")
FRAME_W, FRAME_H = 480, 360
#: the face is drawn larger than the detector's 128 px input, so a 1.3-margin crop is scaled
#: down to the model, as with real footage (an upscaled crop would look resampled, i.e. fake)
FACE = 192
FPS = 25


@dataclass(frozen=True)
class VideoSample:
    """What :func:`write_videos` produced."""

    folder: Path
    real: int
    fake: dict[str, int]
    frames: int


def _background(rng: np.random.Generator) -> np.ndarray:
    from PIL import Image

    cells = rng.random((6, 8, 3))
    tone = rng.uniform(0.25, 0.7, 3)
    big = np.asarray(
        Image.fromarray((cells * 255).astype(np.uint8)).resize((FRAME_W, FRAME_H), Image.Resampling.BICUBIC),
        dtype=np.float64,
    )
    out: np.ndarray = 0.5 * tone * 255 + 0.5 * big
    return out


def _clip(face: np.ndarray, rng: np.random.Generator, frames: int) -> list[np.ndarray]:
    """The face placed in the left or right part of the frame, drifting a few pixels a frame."""
    bg = _background(rng)
    side = int(rng.integers(0, 2))
    x = int(rng.integers(8, 48)) if side == 0 else int(rng.integers(FRAME_W - FACE - 48, FRAME_W - FACE - 8))
    y = int(rng.integers(20, FRAME_H - FACE - 20))
    vx, vy = rng.uniform(-1.0, 1.0, 2)
    out = []
    for t in range(frames):
        frame = bg.copy()
        fx = int(np.clip(round(x + vx * t), 0, FRAME_W - FACE))
        fy = int(np.clip(round(y + vy * t), 0, FRAME_H - FACE))
        frame[fy : fy + FACE, fx : fx + FACE] = face
        frame += rng.normal(0.0, 2.0, frame.shape)
        out.append(np.clip(frame + 0.5, 0, 255).astype(np.uint8))
    return out


def encode_mp4(frames: list[np.ndarray]) -> bytes:
    """uint8 HxWx3 RGB frames (all one size) as an H.264 mp4 at CRF 18 (near-lossless)."""
    import io

    import av

    buf = io.BytesIO()
    height, width = frames[0].shape[:2]
    with av.open(buf, mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"crf": "18", "preset": "veryfast"}
        for img in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buf.getvalue()


#: the layouts :func:`write_videos` can write its clips in (see :mod:`edgekit.data.layouts`)
LAYOUTS = ("folders", "ff++", "celebdf")


def _places(layout: str, i: int, n: int) -> list[tuple[str, str | None]]:
    """(path relative to the sample folder, method or None for real) of original ``i``'s clips."""
    if layout == "ff++":
        # FF++'s pairs are disjoint: 2k and 2k+1 swap faces, each fake named <target>_<source>
        partner = i ^ 1 if (i ^ 1) < n else (i + 1) % max(n, 2)
        real = [(f"original_sequences/youtube/c23/videos/{i:03d}.mp4", None)]
        return real + [
            (f"manipulated_sequences/{m}/c23/videos/{i:03d}_{partner:03d}.mp4", m) for m in METHODS
        ]
    if layout == "celebdf":
        source = (i + 1) % max(n, 2)
        return [
            (f"Celeb-real/id{i}_0000.mp4", None),
            (f"Celeb-synthesis/id{i}_id{source}_0000.mp4", METHODS[0]),
        ]
    return [(f"real/{i:03d}.mp4", None)] + [
        (f"fake/{m}/{i:03d}_{(i + k + 1) % max(n, 2):03d}.mp4", m) for k, m in enumerate(METHODS)
    ]


def _label_files(out: Path, layout: str, n: int) -> None:
    """The split / test-list files of the official layouts, in their own formats."""
    from edgekit._io import atomic_write_text

    if layout == "ff++":
        pairs = [[f"{k:03d}", f"{k + 1:03d}"] for k in range(0, n - 1, 2)]
        test = max(1, len(pairs) // 5) if len(pairs) >= 3 else 0
        parts = {"test": pairs[:test], "val": pairs[test : 2 * test], "train": pairs[2 * test :]}
        for split, rows in parts.items():
            atomic_write_text(out / f"{split}.json", json.dumps(rows) + "\n")
    elif layout == "celebdf":
        # Celeb-DF's own convention: 1 real, 0 synthesized; the last fifth of the originals is the test set
        lines = []
        for i in range(n - max(1, n // 5), n):
            for rel, method in _places(layout, i, n):
                lines.append(f"{0 if method else 1} {rel}")
        atomic_write_text(out / "List_of_testing_videos.txt", "\n".join(lines) + "\n")


def write_videos(
    out_dir: Path, originals: int = 10, frames: int = 24, seed: int = SAMPLE_SEED, layout: str = "folders"
) -> VideoSample:
    """Write ``originals`` real clips and, per method, one fake clip each, into ``out_dir``, as
    ``real/`` and ``fake/<method>/`` folders or laid out as FaceForensics++ or Celeb-DF ship (with
    their split files)."""
    if originals < 1 or frames < 1:
        raise UsageError("--videos needs at least 1 original clip of at least 1 frame")
    if layout not in LAYOUTS:
        raise UsageError(f"--layout {layout}: choose one of {', '.join(LAYOUTS)}")
    out = ensure_output_dir(out_dir)
    fake: dict[str, int] = {}
    for i in range(originals):
        index = 100_000 + i  # apart from the still images' indices
        jobs: list[tuple[Path, np.ndarray]] = []
        for rel, method in _places(layout, i, originals):
            # a fake: the target video's face, manipulated with this method's family of artefacts
            face = make_image(seed, index, method is not None, FACE, family=method)
            jobs.append((out / rel, face))
            if method:
                fake[method] = fake.get(method, 0) + 1
        for path, face in jobs:
            ensure_output_dir(path.parent)
            # every clip of one original shares its background, placement and motion: FF++'s
            # fakes are the target video with only the face replaced
            clip_rng = np.random.default_rng([seed, index])
            atomic_write_bytes(path, encode_mp4(_clip(face.astype(np.float64), clip_rng, frames)))
    _label_files(out, layout, originals)
    return VideoSample(out, originals, fake, frames)
