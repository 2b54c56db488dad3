"""Compression data from a folder: a large data set is subsampled by file before decoding,
keeping the class and method shares, and no video lands on both sides of the split."""

from __future__ import annotations

from pathlib import Path

from edgekit.compress.workspace import folder_arrays
from edgekit.spec import Preprocess
from tests.conftest import write_images
from tests.edgekit.data.test_decode import write_video


def test_a_large_folder_is_subsampled_by_file_and_keeps_its_shares(tmp_path: Path) -> None:
    write_images(tmp_path / "real", 40, seed=1)
    write_images(tmp_path / "fake" / "Deepfakes", 80, seed=2)
    write_images(tmp_path / "fake" / "FaceSwap", 40, seed=3)
    pre = Preprocess(height=32, width=32)
    arrays = folder_arrays(tmp_path, pre, 0.25, 0, max_frames=48)
    total = len(arrays.y_train) + len(arrays.y_val)
    assert total == 48 and arrays.description["files_found"] == 160 and arrays.description["files_used"] == 48
    fake_share = (arrays.y_train.sum() + arrays.y_val.sum()) / total
    assert abs(fake_share - 0.75) < 0.05 and set(arrays.y_val.tolist()) == {0, 1}
    whole = folder_arrays(tmp_path, pre, 0.25, 0)
    assert len(whole.y_train) + len(whole.y_val) == 160


def test_video_frames_stay_on_one_side(tmp_path: Path) -> None:
    for i in range(4):
        write_video(tmp_path / "real" / f"r{i}.mp4", 6, fake=False)
        write_video(tmp_path / "fake" / "Face2Face" / f"f{i}.mp4", 6, fake=True)
    arrays = folder_arrays(tmp_path, Preprocess(height=32, width=32), 0.5, 0)
    assert len(arrays.y_train) + len(arrays.y_val) == 8 * 4  # 4 frames per video
    assert len(arrays.y_train) % 4 == 0 and len(arrays.y_val) % 4 == 0
