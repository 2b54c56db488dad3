from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgekit.data.labels import label_of
from edgekit.data.tensors import find_files, load_dataset, preprocess_image, split_files
from edgekit.errors import DataError
from edgekit.spec import InputSpec, Layout, Preprocess
from tests.conftest import write_images

PRE = Preprocess(height=32, width=32, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
SPEC = InputSpec(shape=(1, 3, 32, 32))


def test_find_files_recursive_and_sorted(tmp_path: Path) -> None:
    write_images(tmp_path / "a", 4)
    (tmp_path / "a" / "notes.txt").write_text("x")
    np.save(tmp_path / "x.npy", np.zeros((3, 32, 32), np.float32))
    files = find_files(tmp_path)
    assert [f.suffix for f in files].count(".png") == 4
    assert files == sorted(files)
    assert all(f.suffix in {".png", ".npy"} for f in files)


def test_find_files_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        find_files(tmp_path / "nope")


def test_labels_from_folders(tmp_path: Path) -> None:
    assert label_of(tmp_path / "real" / "a.png", tmp_path) == 0
    assert label_of(tmp_path / "x" / "FAKE" / "deep" / "a.png", tmp_path) == 1
    assert label_of(tmp_path / "other" / "a.png", tmp_path) is None


def test_split_is_deterministic_and_disjoint() -> None:
    files = [Path(f"f{i}.png") for i in range(100)]
    c1, p1 = split_files(files, 50, 20, seed=3)
    c2, p2 = split_files(files, 50, 20, seed=3)
    c3, _ = split_files(files, 50, 20, seed=4)
    assert (c1, p1) == (c2, p2)
    assert c1 != c3
    assert len(c1) == 50 and len(p1) == 20 and not set(c1) & set(p1)


def test_split_small_folder_holds_out_a_quarter() -> None:
    files = [Path(f"f{i}.png") for i in range(12)]
    calib, parity = split_files(files, 200, 64, seed=0)
    assert len(parity) == 3 and len(calib) == 9 and not set(calib) & set(parity)


def test_preprocess_math_and_layouts() -> None:
    img = np.full((2, 2, 3), 255, np.uint8)
    img[0, 0] = (0, 127, 255)
    nchw = preprocess_image(img, PRE, Layout.NCHW)
    nhwc = preprocess_image(img, PRE, Layout.NHWC)
    assert nchw.shape == (3, 2, 2) and nhwc.shape == (2, 2, 3)
    assert nchw[0, 0, 0] == pytest.approx(-1.0)
    assert nchw[2, 0, 0] == pytest.approx(1.0)
    np.testing.assert_allclose(nchw.transpose(1, 2, 0), nhwc)


def test_load_dataset_images_arrays_and_skips(tmp_path: Path) -> None:
    write_images(tmp_path, 6)
    np.save(tmp_path / "batch.npy", np.ones((2, 3, 32, 32), np.float32))
    np.save(tmp_path / "wrong.npy", np.ones((5, 5), np.float32))
    (tmp_path / "real" / "broken.png").write_bytes(b"not a png")
    files = find_files(tmp_path)
    ds = load_dataset(files, tmp_path, PRE, SPEC)
    assert len(ds) == 6 + 2
    assert ds.inputs.dtype == np.float32 and ds.inputs.shape[1:] == (3, 32, 32)
    skipped = dict(ds.skipped)
    assert set(skipped) == {"real/broken.png", "wrong.npy"}
    assert "does not match" in skipped["wrong.npy"]
    assert ds.class_balance() is None  # the .npy samples carry no label


def test_class_balance(tmp_path: Path) -> None:
    write_images(tmp_path, 5)
    ds = load_dataset(find_files(tmp_path), tmp_path, PRE, SPEC)
    assert ds.class_balance() == {"real": 3, "fake": 2}
    assert ds.labels.count(1) == 2


def test_pickled_npy_is_refused(tmp_path: Path) -> None:
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    ds = load_dataset(find_files(tmp_path), tmp_path, PRE, SPEC)
    assert len(ds) == 0 and "pickle" in ds.skipped[0][1].lower()


def test_16_bit_png_is_scaled_not_clipped(tmp_path: Path) -> None:
    from PIL import Image

    from edgekit.data.decode import read_image

    ramp = (np.arange(64 * 64, dtype=np.uint32).reshape(64, 64) * 16).astype(np.uint16)  # 0..65520
    Image.fromarray(ramp).save(tmp_path / "deep.png")
    with Image.open(tmp_path / "deep.png") as im:
        assert im.mode.startswith("I")  # PIL reads it as a 16-bit grey image
    img = read_image(tmp_path / "deep.png", Preprocess(height=64, width=64, resize="nearest"))
    assert (img == 255).mean() < 0.01  # clipping made 98.6% of such pixels 255
    assert abs(int(img[-1, -1, 0]) - 255) <= 1 and img[0, 0, 0] == 0
