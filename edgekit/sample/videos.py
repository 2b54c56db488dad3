"""An FaceForensics++-shaped video sample: whole frames, the face off-centre, 1 real : 4 fake.

``real/`` holds the "original" clips; ``fake/{Deepfakes,Face2Face,FaceSwap,NeuralTextures}/``
hold one manipulated clip per real clip and method, each method with its own family of
self-blended artefacts (see :data:`edgekit.sample.synth.FAMILIES`). A clip is a face (the
bundled detector's kind of image) moving slowly over a textured background on a larger frame,
with fresh sensor noise per frame, encoded as H.264 mp4 (near-lossless, like FF++'s c23).
The detector was trained on face crops, so whole frames only score well after ``--face-crop``.
"""

from __future__ import annotations

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


def write_videos(
    out_dir: Path, originals: int = 10, frames: int = 24, seed: int = SAMPLE_SEED
) -> VideoSample:
    """Write ``originals`` real clips and, per method, one fake clip each, into ``out_dir``."""
    if originals < 1 or frames < 1:
        raise UsageError("--videos needs at least 1 original clip of at least 1 frame")
    out = ensure_output_dir(out_dir)
    fake = dict.fromkeys(METHODS, 0)
    for i in range(originals):
        index = 100_000 + i  # apart from the still images' indices
        jobs: list[tuple[Path, np.ndarray]] = [
            (out / "real" / f"{i:03d}.mp4", make_image(seed, index, False, FACE))
        ]
        for m, method in enumerate(METHODS):
            # the target video's face, manipulated with this method's family of artefacts
            face = make_image(seed, index, True, FACE, family=method)
            jobs.append((out / "fake" / method / f"{i:03d}_{(i + m + 1) % max(originals, 2):03d}.mp4", face))
        for path, face in jobs:
            path.parent.mkdir(parents=True, exist_ok=True)
            # every clip of one original shares its background, placement and motion: FF++'s
            # fakes are the target video with only the face replaced
            clip_rng = np.random.default_rng([seed, index])
            atomic_write_bytes(path, encode_mp4(_clip(face.astype(np.float64), clip_rng, frames)))
        for method in METHODS:
            fake[method] += 1
    return VideoSample(out, originals, fake, frames)
