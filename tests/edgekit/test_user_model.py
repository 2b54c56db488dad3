"""The user's own model: preprocessing that travels with it, verdicts that see broken deployments,
splits that survive imbalanced data (issue: "The user's own model")."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from edgekit.cli import app
from edgekit.data.tensors import split_files, stratified_pick
from edgekit.evaluation.metrics import Budget, verdict
from edgekit.modelmeta import read_preprocess
from edgekit.parity import compare, reference_warnings, wilson_interval
from edgekit.spec import OutputSpec, Tolerance


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from edgekit.sample.bundle import write_sample

    return write_sample(tmp_path_factory.mktemp("sample"), count=120).model


def _export(*args: str) -> tuple[int, str]:
    # preprocessing is decided before any kernel runs: the arm64 check (tests/device/test_arm64.py)
    # would only add minutes here
    result = CliRunner().invoke(app, ["export", "--arm64", "off", *args])
    return result.exit_code, result.output


def test_the_sample_carries_its_preprocessing_and_export_uses_it(sample: Path, tmp_path: Path) -> None:
    stored = read_preprocess(sample)
    assert stored is not None and list(stored["mean"]) == [0.5] * 3 and stored["height"] == 128
    code, out = _export(str(sample), "--calib", str(sample.parent / "data"), "-o", str(tmp_path), "--strict")
    assert code == 0, out
    m = json.loads((tmp_path / "manifest.json").read_text())
    assert m["preprocess_source"] == "model" and m["preprocess"]["mean"] == [0.5] * 3
    assert m["reference"]["warnings"] == [] and "from the model file" in out
    assert Path(m["calibration"]["dir"]).is_absolute() and Path(m["source"]["path"]).is_absolute()


def test_a_wrong_normalisation_warns_and_strict_fails(sample: Path, tmp_path: Path) -> None:
    imagenet = ["--mean", "0.485,0.456,0.406", "--std", "0.229,0.224,0.225"]
    code, out = _export(str(sample), *imagenet, "--calib", str(sample.parent / "data"), "-o", str(tmp_path),
                        "--strict")  # fmt: skip
    assert code == 1, out
    assert "warning:" in out and ("collapsed" in out or "wrong side of the threshold" in out)
    warnings = json.loads((tmp_path / "manifest.json").read_text())["reference"]["warnings"]
    assert len(warnings) == 1 and "likely cause" in warnings[0]


def test_a_model_without_metadata_says_assumed(sample: Path, tmp_path: Path) -> None:
    import torch

    bare = tmp_path / "bare.pt2"
    buf = io.BytesIO()
    torch.export.save(torch.export.load(str(sample)), buf)  # the same program, without the metadata
    bare.write_bytes(buf.getvalue())
    assert read_preprocess(bare) is None
    code, out = _export(str(bare), "--calib", str(sample.parent / "data"), "-o", str(tmp_path / "o"))
    assert code == 0, out  # warns, but only --strict fails
    m = json.loads((tmp_path / "o" / "manifest.json").read_text())
    assert m["preprocess_source"] == "assumed" and "assumed ImageNet normalisation" in out
    assert any("preprocessing was assumed" in w for w in m["reference"]["warnings"])


def test_a_dynamic_batch_pt2_exports_at_batch_1(tmp_path: Path, image_dir: Path) -> None:
    import torch

    from tests.models import build_tiny

    batch = torch.export.Dim("batch")
    ep = torch.export.export(build_tiny(), (torch.zeros(2, 3, 32, 32),), dynamic_shapes={"x": {0: batch}})
    path = tmp_path / "dyn.pt2"
    torch.export.save(ep, str(path))
    code, out = _export(
        str(path), "--input-shape", "1x3x32x32", "-o", str(tmp_path / "o"), "--parity-samples", "8"
    )
    assert code == 0, out
    m = json.loads((tmp_path / "o" / "manifest.json").read_text())
    assert m["input"]["shape"] == [1, 3, 32, 32]
    assert any("dynamic batch" in n for n in m["source"]["notes"])


# --------------------------------------------------------------------------- splits


def _imbalanced(root: Path, real: int = 60, fake: int = 250) -> Path:
    from PIL import Image

    from edgekit.sample.synth import make_image

    for label, count in (("real", real), ("fake", fake)):
        folder = root / label
        folder.mkdir(parents=True)
        for i in range(count):
            Image.fromarray(make_image(3, i, label == "fake", 32)).save(folder / f"{i:04d}.png")
    return root


def test_stratified_splits_keep_both_classes() -> None:
    labels = [1] * 250 + [0] * 60  # fake-first, as sorted FF++ folders are
    files = [Path(f"f{i}") for i in range(len(labels))]
    calib, parity = split_files(files, 200, 64, seed=0, labels=labels)
    lab = dict(zip(files, labels, strict=True))
    assert sum(lab[f] == 0 for f in parity) == round(64 * 60 / 310)
    assert 35 <= sum(lab[f] == 0 for f in calib) <= 45  # 48/246 of 200, not 0 (the first 200 sorted files)
    assert not set(calib) & set(parity)
    assert split_files(files, 200, 64, seed=0, labels=labels) == (calib, parity)  # seeded
    few = stratified_pick([1] * 99 + [0], 2, seed=1)
    assert sorted(labels_of(few, [1] * 99 + [0])) == [0, 1]  # a rare class is never left out


def labels_of(idx: list[int], labels: list[int]) -> list[int]:
    return [labels[i] for i in idx]


def test_sensitivity_and_optimize_get_a_two_class_validation_set(tmp_path: Path) -> None:
    from edgekit.compress.workspace import ModelData, prepare
    from edgekit.spec import ModelSource
    from tests.conftest import TINY_ARCH

    data = _imbalanced(tmp_path / "data")
    md = ModelData(ModelSource(arch=TINY_ARCH), data, None, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5), (1, 3, 32, 32))
    prep = prepare(md, val_samples=40)
    assert sorted(set(prep.data.y_val.tolist())) == [0, 1]
    assert 5 <= int((prep.data.y_val == 0).sum()) <= 10  # 60 : 250 kept, not 0 : 40
    assert sorted(set(prep.data.y_train.tolist())) == [0, 1]


# --------------------------------------------------------------------------- verdicts and parity


def test_constant_and_collapsed_references_are_flagged() -> None:
    one = OutputSpec()
    labels = (0, 1) * 20
    constant = np.full((40, 1), 2.0)
    w = reference_warnings(constant, one, labels, 0.5, "flags")
    assert any("same output for all 40" in x for x in w)
    ranked_but_low = np.array([[-6.0 + 0.1 * i + 2.0 * y] for i, y in enumerate(labels)])  # AUC 1, all below
    w = reference_warnings(ranked_but_low, one, labels, 0.5, "assumed")
    assert len(w) == 1 and "collapsed" in w[0] and "assumed" in w[0]
    good = np.array([[4.0 * (2 * y - 1)] for y in labels])
    assert reference_warnings(good, one, labels, 0.5, "model") == []


def test_a_variant_whose_accuracy_collapses_is_not_stable() -> None:
    base = {"frame": {"auc": 0.98, "accuracy": 0.95, "f1": 0.95}, "flips_vs_baseline": 0}
    broken = {"frame": {"auc": 0.98, "accuracy": 0.50, "f1": 0.008}, "flips_vs_baseline": 180}
    status, broke = verdict(broken, base, 400, Budget())
    assert status == "Degraded" and any(b.startswith("accuracy -0.45") for b in broke)
    assert any("flipped" in b for b in broke)
    assert verdict(base, base, 400, Budget()) == ("Stable", [])


def test_flip_statistics_separate_near_threshold_flips() -> None:
    ref = np.array([[0.01], [-0.01], [5.0], [-5.0]])  # logits: scores ~0.5, 0.5, 0.99, 0.01
    cand = np.array([[-0.01], [0.01], [-5.0], [-5.0]])
    r = compare(ref, cand, OutputSpec(), Tolerance(max_flip_rate=1.0))
    assert r.flips == 3 and r.near_threshold_flips == 2
    lo, hi = r.flip_rate_ci95
    assert lo < 0.75 < hi
    assert wilson_interval(0, 64)[1] > 0.05  # 0/64 flips cannot rule out a 5% flip rate
    assert wilson_interval(0, 256)[1] < 0.02


def test_devices_takes_device_emulator_as_bench_does() -> None:
    result = CliRunner().invoke(app, ["devices", "--device", "emulator"])
    assert result.exit_code == 0 and "Pixel 9" in result.output


@pytest.mark.parametrize("text", ["{not json", '{"schema": "edgekit.preprocess", "schema_version": 1}',
                                  '{"schema": "edgekit.preprocess", "schema_version": 1, "height": 1e9, "width": 8, '
                                  '"resize": "bilinear", "color": "RGB", "scale": 0.1, "mean": [0], "std": [1]}'])  # fmt: skip
def test_a_tampered_preprocessing_record_is_one_line(text: str, tmp_path: Path) -> None:
    import torch

    from edgekit.modelmeta import PREPROCESS_FILE
    from tests.models import build_tiny

    path = tmp_path / "m.pt2"
    ep = torch.export.export(build_tiny(), (torch.zeros(1, 3, 32, 32),))
    torch.export.save(ep, str(path), extra_files={PREPROCESS_FILE: text})
    code, out = _export(str(path), "-o", str(tmp_path / "o"))
    assert code == 2 and "stored preprocessing is not valid" in out and "Traceback" not in out
