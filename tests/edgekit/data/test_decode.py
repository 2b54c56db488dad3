"""Evaluation data: folders with methods, CSV/JSON lists, videos via PyAV, and the errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edgekit.data.decode import decode
from edgekit.data.layouts import discover
from edgekit.errors import DataError
from edgekit.sample.synth import make_image
from edgekit.spec import Preprocess
from tests.conftest import write_images

PRE = Preprocess(height=32, width=32)


def write_video(path: Path, n_frames: int, fake: bool, size: int = 32) -> Path:
    """A small mpeg4 video of synthetic faces (PyAV)."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), mode="w") as out:
        stream = out.add_stream("mpeg4", rate=10)
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        for i in range(n_frames):
            frame = av.VideoFrame.from_ndarray(make_image(9, i, fake, size), format="rgb24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def test_folder_with_methods(tmp_path: Path) -> None:
    write_images(tmp_path / "real", 2)
    write_images(tmp_path / "fake" / "Deepfakes", 2)
    write_images(tmp_path / "fake" / "FaceSwap", 2)
    items = discover(tmp_path)
    methods = {i.method for i in items if i.label == 1}
    assert methods == {"Deepfakes", "FaceSwap"}
    assert all(i.method is None for i in items if i.label == 0)


def test_csv_and_json_lists(tmp_path: Path) -> None:
    write_images(tmp_path / "imgs", 4)
    files = sorted(p.relative_to(tmp_path).as_posix() for p in (tmp_path / "imgs").rglob("*.png"))
    (tmp_path / "labels.csv").write_text(
        "path,label\n" + "".join(f"{f},{'fake' if 'fake' in f else 0}\n" for f in files)
    )
    items = discover(tmp_path / "labels.csv")
    assert len(items) == 4 and sorted(i.label for i in items) == [0, 0, 1, 1]
    (tmp_path / "labels.json").write_text(json.dumps([{"path": files[0], "label": 1, "method": "F2F"}]))
    assert discover(tmp_path / "labels.json")[0].method == "F2F"
    (tmp_path / "bad.csv").write_text("path,label\nx.png,maybe\n")
    with pytest.raises(DataError, match="not 0/1 or real/fake"):
        discover(tmp_path / "bad.csv")


def test_video_frames_are_sampled_evenly(tmp_path: Path) -> None:
    write_video(tmp_path / "fake" / "id1_id2_0001.mp4", 20, fake=True)
    write_video(tmp_path / "real" / "id3_0002.mp4", 5, fake=False)
    frames = decode(discover(tmp_path), PRE, frames=4)
    assert frames.videos == 2
    assert frames.video_ids.count("fake/id1_id2_0001.mp4") == 4
    assert frames.video_ids.count("real/id3_0002.mp4") == 4
    assert frames.images.shape[1:] == (32, 32, 3) and frames.images.dtype == np.uint8
    assert frames.sample_ids[0].endswith("#0")


def test_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        discover(tmp_path / "none")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="holds no images"):
        discover(tmp_path / "empty")
    (tmp_path / "unlabelled" / "x").mkdir(parents=True)
    from PIL import Image

    Image.fromarray(make_image(1, 0, False, 32)).save(tmp_path / "unlabelled" / "x" / "a.png")
    with pytest.raises(DataError, match="no labels"):
        discover(tmp_path / "unlabelled")
    bad = tmp_path / "broken" / "real"
    bad.mkdir(parents=True)
    (bad / "a.png").write_bytes(b"nope")
    (bad / "b.mp4").write_bytes(b"nope")
    with pytest.raises(DataError, match="could be decoded"):
        decode(discover(tmp_path / "broken"), PRE)


def test_unreadable_files_are_skipped_and_listed(tmp_path: Path) -> None:
    write_images(tmp_path, 4)
    (tmp_path / "real" / "broken.png").write_bytes(b"nope")
    frames = decode(discover(tmp_path), PRE)
    assert len(frames.labels) == 4 and frames.skipped[0][0] == "real/broken.png"


def test_one_label_discovery_for_calibration_and_evaluation(tmp_path: Path) -> None:
    from pathlib import PurePath

    from edgekit.data.labels import classify, label_of

    assert classify(PurePath("fake/Deepfakes/v1/0001.png")) == (1, "Deepfakes")
    assert classify(PurePath("ff/REAL/x.png")) == (0, None)
    assert classify(PurePath("fake/x.png")) == (1, None)
    assert classify(PurePath("real/fake/x.png")) == (0, None)  # the first label folder wins
    assert classify(PurePath("other/x.png")) == (None, None)
    assert label_of(tmp_path / "fake" / "NT" / "a.png", tmp_path) == 1
    assert label_of(Path("/elsewhere/fake/a.png"), tmp_path) is None


def test_video_frames_honour_the_resize_filter(tmp_path: Path) -> None:
    from edgekit.data.decode import read_image, video_frames

    video = write_video(tmp_path / "v.mp4", 3, fake=True, size=64)
    nearest = video_frames(video, 1, Preprocess(height=24, width=24, resize="nearest"))[0]
    bilinear = video_frames(video, 1, Preprocess(height=24, width=24, resize="bilinear"))[0]
    assert nearest.shape == bilinear.shape == (24, 24, 3)
    assert not np.array_equal(nearest, bilinear)  # before, every video frame was resized bilinear
    from PIL import Image

    Image.fromarray(make_image(9, 0, True, 64)).save(tmp_path / "still.png")
    still = read_image(tmp_path / "still.png", Preprocess(height=24, width=24, resize="nearest"))
    assert still.shape == (24, 24, 3)
