"""`edgekit eval` end to end on a tiny export, `edgekit report` re-rendering, and the errors."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

import pytest
from typer.testing import CliRunner

from edgekit.cli import app
from edgekit.errors import UsageError
from edgekit.evaluation.evaluate import EvalSpec, evaluate
from tests.conftest import TINY_ARCH, require_system_tool, write_images
from tests.edgekit.data.test_decode import write_video


@pytest.fixture(scope="module")
def eval_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("evaldata")
    write_images(root / "real", 6, seed=11)
    write_images(root / "fake" / "Deepfakes", 6, seed=12)
    write_video(root / "fake" / "FaceSwap" / "id37_id3_0004.mp4", 8, fake=True)
    write_video(root / "real" / "id5_0001.mp4", 8, fake=False)
    return root


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory: pytest.TempPathFactory, eval_data: Path) -> Path:
    from edgekit.exporting import export
    from edgekit.spec import ExportSpec, ModelSource

    export_dir = tmp_path_factory.mktemp("eval-export")
    export(ExportSpec(source=ModelSource(arch=TINY_ARCH), out_dir=export_dir, variants=("tflite_fp32", "tflite_int8", "onnx_fp32"),
                      input_shape=(1, 3, 32, 32), calib_dir=eval_data, calib_samples=8, parity_samples=4))  # fmt: skip
    out = tmp_path_factory.mktemp("report")
    evaluate(
        EvalSpec(
            export_dir=export_dir, arch=TINY_ARCH, data=eval_data, out_dir=out, frames=3, top_k=1, grid=4
        )
    )
    return out


class _Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def test_scores_metrics_and_videos(report_dir: Path) -> None:
    header = (report_dir / "scores.csv").read_text().splitlines()[0].split(",")
    assert header == [
        "sample",
        "video",
        "label",
        "method",
        "pytorch_fp32",
        "tflite_fp32",
        "tflite_int8",
        "onnx_fp32",
    ]
    metrics = json.loads((report_dir / "metrics.json").read_text())
    base = metrics["variants"]["pytorch_fp32"]
    assert (
        base["frame"]["samples"] == 12 + 2 * 3 and base["auc_diff"] == 0.0 and base["status"] == "Reference"
    )
    assert base["video"]["samples"] == 14  # 12 images (each its own "video") + 2 videos
    assert set(base["per_method"]) == {"Deepfakes", "FaceSwap"}
    fp32 = metrics["variants"]["tflite_fp32"]
    assert fp32["flips_vs_baseline"] == 0 and abs(fp32["auc_diff"]) < 1e-6


def test_report_files_are_complete_and_offline(report_dir: Path) -> None:
    md = (report_dir / "report.md").read_text(encoding="utf-8")
    for section in (
        "1. Performance summary",
        "2. Key insights",
        "3. Classification quality",
        "4. Plots",
        "5. Visual analysis",
    ):
        assert section in md
    html_text = (report_dir / "report.html").read_text(encoding="utf-8")
    parser = _Collect()
    parser.feed(html_text)
    imgs = [a for t, a in parser.tags if t == "img"]
    assert len(imgs) >= 5 + 4  # plots + at least one heatmap per variant
    assert all(
        (a.get("src") or "").startswith("data:image/png;base64,") for a in imgs
    )  # no network, no files
    assert sum(1 for t, _ in parser.tags if t == "table") >= 4
    assert "\ufffd" not in html_text and "Ã" not in html_text  # UTF-8 clean
    eval_meta = json.loads((report_dir / "eval.json").read_text())
    assert eval_meta["heatmap_method"]["pytorch_fp32"] == "grad-cam"
    assert eval_meta["heatmap_method"]["tflite_int8"] == "occlusion"
    assert eval_meta["heatmap_drift_iou"]["pytorch_fp32"] == 1.0


def test_report_rerenders_without_inference(report_dir: Path) -> None:
    (report_dir / "report.md").unlink()
    result = CliRunner().invoke(app, ["report", str(report_dir)])
    assert result.exit_code == 0, result.output
    assert (report_dir / "report.md").exists() and "pytorch_fp32" in result.output


def test_eer_threshold_comes_from_the_baseline(report_dir: Path, eval_data: Path, tmp_path: Path) -> None:
    meta = json.loads((report_dir / "eval.json").read_text())
    spec = EvalSpec(arch=TINY_ARCH, export_dir=Path(meta["spec"]["export_dir"]), data=eval_data, out_dir=tmp_path, frames=2,
                    threshold="eer", heatmaps=False, variants=("tflite_fp32",))  # fmt: skip
    evaluate(spec)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    base = metrics["variants"]["pytorch_fp32"]["frame"]
    assert metrics["threshold"] == pytest.approx(base["eer_threshold"])


def test_single_class_still_reports(report_dir: Path, tmp_path: Path) -> None:
    meta = json.loads((report_dir / "eval.json").read_text())
    import shutil

    write_images(tmp_path / "src", 8)
    only_fake = tmp_path / "data"
    shutil.copytree(tmp_path / "src" / "fake", only_fake / "fake")
    out = tmp_path / "r"
    evaluate(
        EvalSpec(
            arch=TINY_ARCH,
            export_dir=Path(meta["spec"]["export_dir"]),
            data=only_fake,
            out_dir=out,
            heatmaps=False,
        )
    )
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["single_class"] and metrics["variants"]["pytorch_fp32"]["frame"]["auc"] is None
    assert "single class" in (out / "report.md").read_text()


def test_bad_options_and_other_schema(report_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="--threshold"):
        EvalSpec(export_dir=tmp_path, data=tmp_path, out_dir=tmp_path, threshold="high")
    meta = json.loads((report_dir / "eval.json").read_text())
    meta["schema_version"] = 99
    bad = tmp_path / "old"
    bad.mkdir()
    (bad / "eval.json").write_text(json.dumps(meta))
    (bad / "scores.csv").write_text((report_dir / "scores.csv").read_text())
    result = CliRunner().invoke(app, ["report", str(bad)])
    assert result.exit_code == 2 and "re-run 'edgekit eval'" in result.output
    result = CliRunner().invoke(app, ["eval", str(tmp_path / "nope"), "--data", str(tmp_path)])
    assert result.exit_code == 2 and "no manifest" in result.output


CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


def test_html_renders_in_headless_chromium(report_dir: Path, tmp_path: Path) -> None:
    import shutil
    import subprocess

    import numpy as np
    from PIL import Image

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    require_system_tool(None if chromium else "Debian's chromium is not installed (apt-get install chromium)")
    assert chromium is not None
    url = (report_dir / "report.html").resolve().as_uri()
    profile = ["--user-data-dir=" + str(tmp_path / "profile")]
    dom = subprocess.run([chromium, *CHROMIUM_FLAGS, *profile, "--dump-dom", url],
                         capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert dom.returncode == 0, dom.stderr[-1000:]
    assert dom.stdout.count("<table") >= 4 and dom.stdout.count("<img") >= 9
    assert "Performance summary" in dom.stdout
    assert "<th>Accuracy</th><th>F1</th><th>Flips</th>" in dom.stdout  # verdicts see accuracy, F1 and flips
    assert "missing or not inside the eval folder" not in dom.stdout  # every image embedded
    shot = tmp_path / "shot.png"
    subprocess.run([chromium, *CHROMIUM_FLAGS, *profile, "--window-size=1200,2400", f"--screenshot={shot}", url],
                   capture_output=True, timeout=120, check=False)  # fmt: skip
    pixels = np.asarray(Image.open(shot).convert("RGB"))
    colours = len(np.unique(pixels.reshape(-1, 3), axis=0))
    assert colours > 500  # plots and heatmaps were drawn, not just text on white
