"""The data sets as they ship: FaceForensics++, Celeb-DF and DFDC trees with their split and label
files (and their traps), frame folders, links out of the root, and the sample written in each layout."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from edgekit.data.layouts import ReadOptions, read_data, recognise
from edgekit.errors import DataError


def _touch(root: Path, *rels: str) -> None:
    for rel in rels:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b"\0")  # never decoded here: the readers only list


def _ffpp(root: Path) -> Path:
    ids = ["000", "001", "002", "003", "004", "005"]
    _touch(root, *[f"original_sequences/youtube/c23/videos/{i}.mp4" for i in ids])
    _touch(root, *[f"original_sequences/youtube/c40/videos/{i}.mp4" for i in ids])
    pairs = [("000", "001"), ("002", "003"), ("004", "005")]
    for method in ("Deepfakes", "Face2Face", "FaceSwap", "FaceShifter"):  # NeuralTextures not downloaded
        _touch(
            root,
            *[
                f"manipulated_sequences/{method}/c23/videos/{a}_{b}.mp4"
                for p in pairs
                for a, b in (p, p[::-1])
            ],
        )
    _touch(root, "original_sequences/actors/c23/videos/01__walk.mp4",
           "manipulated_sequences/DeepFakeDetection/c23/videos/01_02__walk__ABC.mp4")  # fmt: skip
    (root / "splits").mkdir()
    (root / "splits" / "train.json").write_text(json.dumps([["000", "001"], ["002", "003"]]))
    (root / "splits" / "test.json").write_text(json.dumps([["004", "005"]]))
    return root


def test_faceforensics_is_recognised_with_methods_quality_and_the_official_split(tmp_path: Path) -> None:
    root = _ffpp(tmp_path / "FF")
    assert recognise(root) == "ff++"
    every = read_data(root)
    assert every.layout == "ff++" and every.quality == "c23"  # c23 chosen though c40 is there too
    real = [i for i in every.items if i.label == 0]
    assert len(real) == 7 and all("/c23/" in i.name for i in every.items)
    methods = {i.method for i in every.items if i.label == 1}
    assert methods == {"Deepfakes", "Face2Face", "FaceSwap", "FaceShifter", "DeepFakeDetection"}
    assert any("NeuralTextures" in n for n in every.notes)  # a partial download is said, not fatal

    test = read_data(root, ReadOptions(split="test"))
    names = sorted(Path(i.name).stem for i in test.items)
    assert names == sorted(["004", "005"] + ["004_005", "005_004"] * 4)
    assert not any(i.method == "DeepFakeDetection" for i in test.items)
    assert any("DeepFakeDetection/actors" in n for n in test.notes)
    assert read_data(root, ReadOptions(quality="c40")).quality == "c40"


def test_faceforensics_refusals_name_the_missing_file_or_choice(tmp_path: Path) -> None:
    root = _ffpp(tmp_path / "FF")
    with pytest.raises(DataError, match=r"no val.json .* copy FaceForensics\+\+'s dataset/splits/val.json"):
        read_data(root, ReadOptions(split="val"))
    (root / "splits" / "test.json").write_text('[["004", 5]]')
    with pytest.raises(DataError, match="list of \\[target, source\\] id pairs"):
        read_data(root, ReadOptions(split="test"))
    (root / "splits" / "test.json").write_text("[" * 100_000 + "]" * 100_000)  # deep JSON: no RecursionError
    with pytest.raises(DataError, match="nested too deeply"):
        read_data(root, ReadOptions(split="test"))
    with pytest.raises(DataError, match="choose c23, c40 or raw"):
        read_data(root, ReadOptions(quality="c99"))
    only = tmp_path / "two"
    _touch(
        only, "original_sequences/youtube/c40/videos/000.mp4", "original_sequences/youtube/raw/videos/000.mp4"
    )
    with pytest.raises(DataError, match="qualities c40, raw; choose one with --quality"):
        read_data(only)
    with pytest.raises(DataError, match="need an official layout"):
        read_data(tmp_path / "FF" / "splits", ReadOptions(split="test", dataset="folders"))


def _celebdf(root: Path, flip: bool = False) -> Path:
    _touch(root, "Celeb-real/id0_0000.mp4", "Celeb-real/id1_0000.mp4", "YouTube-real/00001.mp4",
           "Celeb-synthesis/id0_id1_0000.mp4", "Celeb-synthesis/id1_id0_0000.mp4")  # fmt: skip
    real, fake = ("0", "1") if flip else ("1", "0")  # Celeb-DF's convention: 1 real, 0 synthesized
    (root / "List_of_testing_videos.txt").write_text(
        f"{real} Celeb-real/id1_0000.mp4\n{fake} Celeb-synthesis/id1_id0_0000.mp4\n{real} YouTube-real/09999.mp4\n"
    )
    return root


def test_celebdf_test_list_uses_its_own_label_convention(tmp_path: Path) -> None:
    root = _celebdf(tmp_path / "CDF")
    assert recognise(root) == "celebdf"
    test = read_data(root, ReadOptions(split="test"))
    labels = {i.name: i.label for i in test.items}
    assert labels == {"Celeb-real/id1_0000.mp4": 0, "Celeb-synthesis/id1_id0_0000.mp4": 1}
    assert any("1 of the 3 listed test videos are not on disk" in n for n in test.notes)
    train = read_data(root, ReadOptions(split="train"))
    assert {i.name for i in train.items} == {"Celeb-real/id0_0000.mp4", "YouTube-real/00001.mp4",
                                             "Celeb-synthesis/id0_id1_0000.mp4"}  # fmt: skip
    assert {i.label for i in read_data(root).items} == {0, 1} and len(read_data(root).items) == 5


def test_a_celebdf_list_converted_to_edgekits_convention_is_refused(tmp_path: Path) -> None:
    root = _celebdf(tmp_path / "CDF", flip=True)
    with pytest.raises(DataError, match=r"List_of_testing_videos.txt:1: label 0 contradicts Celeb-real/"):
        read_data(root, ReadOptions(split="test"))
    with pytest.raises(DataError, match="only an official test list"):
        read_data(root, ReadOptions(split="val"))


def test_dfdc_metadata_and_test_labels(tmp_path: Path) -> None:
    root = tmp_path / "DFDC"
    _touch(root, "dfdc_train_part_0/aaa.mp4", "dfdc_train_part_0/bbb.mp4", "test/ccc.mp4", "test/ddd.mp4")
    (root / "dfdc_train_part_0" / "metadata.json").write_text(json.dumps({
        "aaa.mp4": {"label": "FAKE", "split": "train", "original": "bbb.mp4"},
        "bbb.mp4": {"label": "REAL", "split": "train", "original": None},
        "gone.mp4": {"label": "FAKE", "split": "train", "original": "bbb.mp4"},
    }))  # fmt: skip
    (root / "test" / "labels.csv").write_text("filename,label\nccc.mp4,1\nddd.mp4,0\n")
    assert recognise(root) == "dfdc"
    every = read_data(root)
    assert {i.name: i.label for i in every.items} == {"dfdc_train_part_0/aaa.mp4": 1, "dfdc_train_part_0/bbb.mp4": 0,
                                                      "test/ccc.mp4": 1, "test/ddd.mp4": 0}  # fmt: skip
    assert every.notes == ("1 labelled videos are not on disk",)
    assert {i.name for i in read_data(root, ReadOptions(split="test")).items} == {
        "test/ccc.mp4",
        "test/ddd.mp4",
    }
    (root / "test" / "labels.csv").write_text("filename,label\n../../secret.mp4,1\n")
    with pytest.raises(DataError, match="is not a plain video file name"):
        read_data(root)
    (root / "test" / "labels.csv").write_text("filename,label\nccc.mp4,maybe\n")
    with pytest.raises(DataError, match="labels.csv:2: label 'maybe' is not 0/1"):
        read_data(root)


def test_links_leading_outside_the_root_are_skipped_and_counted(tmp_path: Path) -> None:
    root = _ffpp(tmp_path / "FF")
    outside = tmp_path / "elsewhere.mp4"
    outside.write_bytes(b"\0")
    os.symlink(outside, root / "original_sequences/youtube/c23/videos/999.mp4")
    listing = read_data(root)
    assert not any("999" in i.name for i in listing.items)
    assert any("1 links leading outside" in n for n in listing.notes)


def test_frame_folders_are_read_as_videos_of_frames(tmp_path: Path) -> None:
    from PIL import Image

    from edgekit.data.decode import decode_item
    from edgekit.spec import Preprocess

    root = tmp_path / "FF"
    for rel, label in (("original_sequences/youtube/c23/frames/000", 0),
                       ("manipulated_sequences/Deepfakes/c23/frames/000_001", 1)):  # fmt: skip
        (root / rel).mkdir(parents=True)
        for k in range(12):  # 0.png ... 11.png: frame order is numeric, not 0, 1, 10, 11, 2
            Image.fromarray(np.full((16, 16, 3), 20 * k + label, np.uint8)).save(root / rel / f"{k}.png")
    items = read_data(root).items
    assert [(i.frames_dir, i.is_video, i.label) for i in items] == [(True, True, 0), (True, True, 1)]
    got = decode_item(items[0], Preprocess(height=16, width=16), frames=4)
    assert got.error is None and [int(img[0, 0, 0]) for img in got.images] == [0, 80, 140, 220]  # 0, 4, 7, 11


def test_the_sample_writes_each_layout_and_the_readers_get_it_right(tmp_path: Path) -> None:
    from edgekit.sample.videos import write_videos

    write_videos(tmp_path / "ff", originals=6, frames=2, layout="ff++")
    ff = read_data(tmp_path / "ff")
    assert ff.layout == "ff++" and len(ff.items) == 6 * 5
    test = read_data(tmp_path / "ff", ReadOptions(split="test"))
    assert sorted(Path(i.name).stem for i in test.items if i.label == 0) == ["000", "001"]
    assert len(test.items) == 2 + 2 * 4
    write_videos(tmp_path / "cdf", originals=5, frames=2, layout="celebdf")
    cdf = read_data(tmp_path / "cdf", ReadOptions(split="test"))
    assert cdf.layout == "celebdf" and {(i.name, i.label) for i in cdf.items} == {
        ("Celeb-real/id4_0000.mp4", 0), ("Celeb-synthesis/id4_id0_0000.mp4", 1)}  # fmt: skip


def test_real_fake_folders_and_lists_never_read_outside_their_folder(tmp_path: Path) -> None:
    from edgekit.data.layouts import discover

    data = tmp_path / "data"
    _touch(data, "real/a.png", "fake/b.png")
    secret = tmp_path / "secret.png"
    secret.write_bytes(b"\0")
    os.symlink(secret, data / "fake" / "linked.png")
    os.symlink(data, data / "real" / "loop")  # a link loop: not followed
    listing = read_data(data)
    assert sorted(i.name for i in listing.items) == ["fake/b.png", "real/a.png"]
    assert listing.notes == (f"1 links leading outside {data} were skipped",)
    (data / "list.csv").write_text("path,label\nreal/a.png,0\n../secret.png,1\n")
    with pytest.raises(DataError, match="'../secret.png' is outside the list's folder"):
        discover(data / "list.csv")
