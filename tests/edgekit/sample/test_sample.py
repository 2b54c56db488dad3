from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from edgekit.errors import UsageError
from edgekit.sample import IMAGE_SIZE, MEAN, SAMPLE_SEED, STD
from edgekit.sample.bundle import load_sample_detector, write_sample
from edgekit.sample.synth import make_batch, make_image


def test_synth_is_deterministic_and_labels_differ() -> None:
    a = make_image(1, 7, fake=True, size=64)
    assert a.dtype == np.uint8 and a.shape == (64, 64, 3)
    np.testing.assert_array_equal(a, make_image(1, 7, fake=True, size=64))
    assert not np.array_equal(a, make_image(1, 7, fake=False, size=64))
    assert not np.array_equal(a, make_image(2, 7, fake=True, size=64))


def test_fakes_lose_sensor_noise_on_average() -> None:
    # The SBI-style artifact: the blended face (image centre) is smoother than a camera image.
    def hf_energy(img: np.ndarray) -> float:
        x = img[16:-16, 16:-16].astype(np.float64)
        return float(np.abs(np.diff(x, axis=1)).mean())

    images, labels = make_batch(3, 0, 100, 64)
    real = np.mean([hf_energy(i) for i, y in zip(images, labels, strict=True) if y == 0])
    fake = np.mean([hf_energy(i) for i, y in zip(images, labels, strict=True) if y == 1])
    assert fake < real


def test_bundled_detector_separates_held_out_images() -> None:
    from sklearn.metrics import roc_auc_score

    model = load_sample_detector()
    images, labels = make_batch(SAMPLE_SEED, 1000, 200, IMAGE_SIZE)  # held out from training
    x = (torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255.0 - MEAN) / STD
    with torch.inference_mode():
        scores = model(x).squeeze(1).numpy()
    assert roc_auc_score(labels, scores) >= 0.95


def test_write_sample(tmp_path: Path) -> None:
    files = write_sample(tmp_path, count=6)
    assert files.model.is_file() and (files.real, files.fake) == (3, 3)
    pngs = sorted(p.relative_to(files.data).as_posix() for p in files.data.rglob("*.png"))
    assert pngs[0] == "fake/fake_00001.png" and len(pngs) == 6
    ep = torch.export.load(str(files.model))
    x = torch.zeros(1, 3, IMAGE_SIZE, IMAGE_SIZE)
    with torch.inference_mode():
        torch.testing.assert_close(ep.module()(x), load_sample_detector()(x))


def test_write_sample_rejects_tiny_count(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="--count"):
        write_sample(tmp_path, count=1)


@pytest.mark.parametrize("in_the_way", ["videos/real", "data/fake", "sample_detector.pt2/"])
def test_sample_into_a_folder_with_something_in_the_way_is_one_line(tmp_path: Path, in_the_way: str) -> None:
    from typer.testing import CliRunner

    from edgekit.cli import app

    blocker = tmp_path / "s" / in_the_way.rstrip("/")
    blocker.parent.mkdir(parents=True)
    blocker.mkdir() if in_the_way.endswith("/") else blocker.write_text("not a folder")
    result = CliRunner().invoke(app, ["sample", "-o", str(tmp_path / "s"), "--count", "4", "--videos",
                                      "--originals", "1"])  # fmt: skip
    assert result.exit_code == 2, result.output
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert lines[-1].startswith("error:") and "Traceback" not in result.output, result.output
    assert in_the_way.split("/")[0] in lines[-1]
