"""Streaming eval: chunked scoring gives the same scores, a killed run resumes, memory is bounded
by the chunk, the baseline batches, and the face-crop path runs end to end on the video sample."""

from __future__ import annotations

import csv
import importlib
import json
from pathlib import Path

import numpy as np
import pytest

from edgekit.data.decode import chunks
from edgekit.data.layouts import discover
from edgekit.errors import UsageError
from edgekit.evaluation import evaluate as evaluate_module
from edgekit.evaluation.evaluate import EvalSpec, evaluate
from edgekit.spec import FaceCrop, Preprocess
from tests.conftest import TINY_ARCH, write_images
from tests.edgekit.data.test_decode import write_video

decode_module = importlib.import_module("edgekit.data.decode")  # edgekit.data.decode is also a function


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("stream-data")
    write_images(root / "real", 9, seed=21)
    write_images(root / "fake" / "Deepfakes", 9, seed=22)
    write_video(root / "real" / "r1.mp4", 6, fake=False)
    write_video(root / "fake" / "FaceSwap" / "f1.mp4", 6, fake=True)
    return root


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory: pytest.TempPathFactory, data: Path) -> Path:
    from edgekit.exporting import export
    from edgekit.spec import ExportSpec, ModelSource

    out = tmp_path_factory.mktemp("stream-export")
    export(ExportSpec(source=ModelSource(arch=TINY_ARCH), out_dir=out, variants=("tflite_fp32", "tflite_int8"),
                      input_shape=(1, 3, 32, 32), calib_dir=data, calib_samples=8, parity_samples=4))  # fmt: skip
    return out


def _spec(export_dir: Path, data: Path, out: Path, **kw: object) -> EvalSpec:
    base: dict[str, object] = dict(export_dir=export_dir, arch=TINY_ARCH, data=data, out_dir=out, frames=3,
                                   heatmaps=False)  # fmt: skip
    return EvalSpec(**{**base, **kw})  # type: ignore[arg-type]


def _rows(out: Path) -> list[dict[str, str]]:
    with open(out / "scores.csv", newline="") as fh:
        return sorted(csv.DictReader(fh), key=lambda r: r["sample"])


def _same_scores(a: list[dict[str, str]], b: list[dict[str, str]]) -> None:
    assert [r["sample"] for r in a] == [r["sample"] for r in b]
    for ra, rb in zip(a, b, strict=True):
        for key in ra:
            if key in ("sample", "video", "label", "method"):
                assert ra[key] == rb[key]
            else:  # the baseline batched vs one by one differs in float rounding only
                assert abs(float(ra[key]) - float(rb[key])) < 1e-5, (key, ra, rb)


def test_chunks_give_the_same_scores_as_one_pass(export_dir: Path, data: Path, tmp_path: Path) -> None:
    evaluate(_spec(export_dir, data, tmp_path / "small", chunk=4))
    evaluate(_spec(export_dir, data, tmp_path / "large", chunk=1000, batch=1))
    _same_scores(_rows(tmp_path / "small"), _rows(tmp_path / "large"))
    meta = json.loads((tmp_path / "small" / "eval.json").read_text())
    assert meta["samples"] == 18 + 6 and meta["videos"] == 2
    assert meta["baseline_batch"] == 32  # the tiny nn.Module takes batches
    assert json.loads((tmp_path / "large" / "eval.json").read_text())["baseline_batch"] == 1
    assert {"decode", "infer:pytorch_fp32", "infer:tflite_int8", "heatmaps", "total"} <= set(meta["timing"])
    assert not (tmp_path / "small" / "scores.progress.json").exists()  # finished: nothing to resume


def test_a_killed_run_resumes_where_it_stopped(
    export_dir: Path, data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    evaluate(_spec(export_dir, data, tmp_path / "whole", chunk=4))
    out = tmp_path / "killed"
    seen: list[str] = []

    def stop_after_two(msg: str) -> None:
        seen.append(msg)
        if sum(m.startswith("scored") for m in seen) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        evaluate(_spec(export_dir, data, out, chunk=4), stop_after_two)
    assert (out / "scores.progress.json").exists() and not (out / "eval.json").exists()
    with open(out / "scores.csv", "a") as fh:  # a row cut in half by the kill
        fh.write("real/real_0099.png,real/real_0099.png,0,re")
    decoded: list[str] = []
    original = decode_module.decode_item

    def counting(item, pre, frames=16):  # type: ignore[no-untyped-def]
        decoded.append(item.name)
        return original(item, pre, frames)

    monkeypatch.setattr(decode_module, "decode_item", counting)
    evaluate(_spec(export_dir, data, out, chunk=4, resume=True))
    _same_scores(_rows(out), _rows(tmp_path / "whole"))
    assert 0 < len(decoded) < len(discover(data)) - 4  # only what the first run had not scored


def test_resume_refuses_other_settings(export_dir: Path, data: Path, tmp_path: Path) -> None:
    out = tmp_path / "e"

    def stop(msg: str) -> None:
        if msg.startswith("scored"):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        evaluate(_spec(export_dir, data, out, chunk=4), stop)
    with pytest.raises(UsageError, match="frames"):
        evaluate(_spec(export_dir, data, out, chunk=4, frames=5, resume=True))
    with pytest.raises(UsageError, match="reading"):  # the same folder read as another layout
        evaluate(_spec(export_dir, data, out, chunk=4, dataset="folders", resume=True))
    evaluate(_spec(export_dir, data, tmp_path / "done"))
    with pytest.raises(UsageError, match="drop --resume"):
        evaluate(_spec(export_dir, data, tmp_path / "done", resume=True))


def test_a_chunk_holds_whole_files_and_no_more_than_it_must(data: Path) -> None:
    pre = Preprocess(height=32, width=32)
    sizes = [len(c.images) for c in chunks(discover(data), pre, frames=5, size=4)]
    assert sum(sizes) == 18 + 2 * 5
    assert max(sizes) <= 4 + 5 - 1  # a chunk closes as soon as it reaches the size; a video is never split


def test_eval_memory_does_not_hold_the_data_set(
    export_dir: Path, data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    largest: list[int] = []
    original = evaluate_module.preprocess_image
    seen = {"n": 0}

    def spy(img, pre, layout):  # type: ignore[no-untyped-def]
        seen["n"] += 1
        return original(img, pre, layout)

    real_chunks = evaluate_module.chunks

    def watched(*args, **kw):  # type: ignore[no-untyped-def]
        for c in real_chunks(*args, **kw):
            largest.append(len(c.images))
            yield c

    monkeypatch.setattr(evaluate_module, "preprocess_image", spy)
    monkeypatch.setattr(evaluate_module, "chunks", watched)
    evaluate(_spec(export_dir, data, tmp_path / "m", chunk=3))
    assert seen["n"] == 24 and max(largest) <= 3 + 3 - 1 and len(largest) >= 6


def test_face_crop_on_the_video_sample_end_to_end(tmp_path: Path) -> None:
    """FF++-shaped clips (whole frames, face off-centre) -> export with crops -> eval with crops."""
    from typer.testing import CliRunner

    from edgekit.cli import app

    runner = CliRunner()
    made = runner.invoke(
        app, ["sample", "-o", str(tmp_path / "s"), "--count", "60", "--videos", "--originals", "2"]
    )
    assert made.exit_code == 0, made.output
    videos = tmp_path / "s" / "videos"
    assert len(list((videos / "real").glob("*.mp4"))) == 2
    for method in ("Deepfakes", "Face2Face", "FaceSwap", "NeuralTextures"):
        assert len(list((videos / "fake" / method).glob("*.mp4"))) == 2
    export = runner.invoke(app, ["export", str(tmp_path / "s" / "sample_detector.pt2"), "--calib",
                                 str(tmp_path / "s" / "data"), "--parity-samples", "8", "-o", str(tmp_path / "x")])  # fmt: skip
    assert export.exit_code == 0, export.output
    hostile = _hostile_videos(videos / "real")  # issue 26: each is a skipped file with its reason
    result = runner.invoke(app, ["eval", str(tmp_path / "x"), "--data", str(videos), "--face-crop", "--frames", "4",
                                 "--no-heatmaps", "--threshold", "eer", "-o", str(tmp_path / "r")])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output and "\x1b" not in result.output
    assert f"{len(hostile)} file(s) could not be read and were left out" in " ".join(result.output.split())
    meta = json.loads((tmp_path / "r" / "eval.json").read_text())
    assert meta["face_crop"] == FaceCrop().to_dict() and meta["videos"] == 10
    reasons = dict(meta["skipped"])
    assert {Path(k).name for k in reasons} == set(hostile) and meta["skipped_total"] == len(hostile)
    for name, why in hostile.items():
        assert why in reasons[f"real/{name}"], (name, reasons)
    assert meta["samples"] + meta["no_face"] == 40 + 4 and meta["samples"] >= 30  # + the faceless clip's 4
    metrics = json.loads((tmp_path / "r" / "metrics.json").read_text())
    base = metrics["variants"]["pytorch_fp32"]
    assert set(base["per_method"]) == {"Deepfakes", "Face2Face", "FaceSwap", "NeuralTextures"}
    assert base["video"]["samples"] == 10
    assert base["frame"]["auc"] > 0.8  # crops of the detector's own kind of face: it still separates them
    report = (tmp_path / "r" / "report.md").read_text()
    assert "Face crop: blazeface-full-range" in report and "Per manipulation method" in report


def _hostile_videos(folder: Path) -> dict[str, str]:
    """Clips a detector meets in the wild, by name -> the reason the report must give: a corrupt
    stream, a truncated download, a container without a video stream, a clip with no face."""
    import av

    good = sorted(folder.glob("*.mp4"))[0].read_bytes()
    (folder / "corrupt.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 20)
    (folder / "truncated.mp4").write_bytes(good[: len(good) // 3])
    with av.open(str(folder / "zero.mp4"), mode="w") as out:
        stream = out.add_stream("mpeg4", rate=10)
        stream.width = stream.height = 64
        stream.pix_fmt = "yuv420p"
        out.start_encoding()  # the header alone: a container whose video track has no frames
    with av.open(str(folder / "grey.mp4"), mode="w") as out:
        stream = out.add_stream("mpeg4", rate=10)
        stream.width = stream.height = 64
        stream.pix_fmt = "yuv420p"
        for _ in range(6):
            for packet in stream.encode(
                av.VideoFrame.from_ndarray(np.full((64, 64, 3), 128, np.uint8), "rgb24")
            ):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return {"corrupt.mp4": "InvalidDataError", "truncated.mp4": "InvalidDataError",
            "zero.mp4": "no video stream", "grey.mp4": "no face in any of its 4 sampled frames"}  # fmt: skip


def test_export_records_the_crop_and_calibrates_on_crops(tmp_path: Path) -> None:
    from PIL import Image

    from edgekit.exporting import export
    from edgekit.manifest import load_manifest
    from edgekit.spec import ExportSpec, ModelSource
    from tests.edgekit.data.test_faces import _frame

    for label in ("real", "fake"):
        (tmp_path / "d" / label).mkdir(parents=True)
        for i in range(6):
            Image.fromarray(_frame(60 + 40 * i, 40 + 10 * i, i + (6 if label == "fake" else 0))).save(
                tmp_path / "d" / label / f"{i}.png"
            )
    Image.fromarray(np.full((120, 160, 3), 90, np.uint8)).save(tmp_path / "d" / "real" / "wall.png")
    manifest = export(ExportSpec(source=ModelSource(arch=TINY_ARCH), out_dir=tmp_path / "x", variants=("tflite_fp32",),
                                 input_shape=(1, 3, 32, 32), calib_dir=tmp_path / "d", parity_samples=4,
                                 face_crop=FaceCrop(margin=1.5)))  # fmt: skip
    assert manifest.preprocess["face_crop"]["margin"] == 1.5
    assert load_manifest(tmp_path / "x").preprocess_spec().face_crop == FaceCrop(margin=1.5)
    skipped = json.dumps([manifest.calibration, manifest.parity_data])
    assert "wall.png" in skipped and "no face" in skipped  # named as skipped, never fed uncropped


def _frame_video(folder: Path, fake: bool, seed: int, frames: int = 5) -> None:
    from PIL import Image

    from edgekit.sample.synth import make_image

    folder.mkdir(parents=True)
    for k in range(frames):
        Image.fromarray(make_image(seed, k, fake, 32)).save(folder / f"{k:04d}.png")


def test_the_cross_data_set_table_from_official_layouts(tmp_path: Path, export_dir: Path) -> None:
    """FF++ and Celeb-DF trees of extracted-frame folders, with their split/test files, evaluated in
    one run: one row per data set x variant, FF++'s methods, the seen/unseen line per variant."""
    from typer.testing import CliRunner

    from edgekit.cli import app

    ff, cdf = tmp_path / "FF", tmp_path / "CDF"
    for i in range(4):
        _frame_video(ff / f"original_sequences/youtube/c23/frames/{i:03d}", False, 30 + i)
        for m, method in enumerate(("Deepfakes", "FaceSwap")):
            _frame_video(
                ff / f"manipulated_sequences/{method}/c23/frames/{i:03d}_{i ^ 1:03d}", True, 40 + 2 * i + m
            )
    (ff / "test.json").write_text('[["000", "001"], ["002", "003"]]')
    for i in range(3):
        _frame_video(cdf / f"Celeb-real/id{i}_0000", False, 60 + i)
        _frame_video(cdf / f"Celeb-synthesis/id{i}_id{(i + 1) % 3}_0000", True, 70 + i)
    (cdf / "List_of_testing_videos.txt").write_text("1 Celeb-real/id0_0000.mp4\n0 Celeb-synthesis/id0_id1_0000.mp4\n"
                                                    "1 Celeb-real/id1_0000.mp4\n0 Celeb-synthesis/id1_id2_0000.mp4\n")  # fmt: skip
    result = CliRunner().invoke(app, ["eval", str(export_dir), "--data", f"ff++={ff}", "--data", f"celebdf={cdf}",
                                      "--split", "test", "--frames-per-video", "3", "--no-heatmaps", "--arch", TINY_ARCH,
                                      "-o", str(tmp_path / "r")])  # fmt: skip
    assert result.exit_code == 0, result.output
    doc = json.loads((tmp_path / "r" / "cross.json").read_text())
    rows = {(r["dataset"], r["variant"]): r for r in doc["rows"]}
    variants = ("pytorch_fp32", "tflite_fp32", "tflite_int8")
    assert set(rows) == {(d, v) for d in ("ff++", "celebdf") for v in variants}
    assert rows[("ff++", "pytorch_fp32")]["videos"] == 12 and rows[("celebdf", "pytorch_fp32")]["videos"] == 4
    assert rows[("ff++", "pytorch_fp32")]["samples"] == 36
    assert set(rows[("ff++", "tflite_int8")]["per_method"]) >= {"Deepfakes", "FaceSwap"}
    assert doc["data"]["ff++"]["layout"] == "ff++" and doc["data"]["celebdf"]["split"] == "test"
    assert set(doc["verdicts"]) == {"tflite_fp32", "tflite_int8"}
    assert all("on ff++ (seen)" in v and "on celebdf" in v for v in doc["verdicts"].values())
    html = (tmp_path / "r" / "cross.html").read_text()
    assert html.count("<tr>") == (1 + 6) * 2 and "Seen (ff++) against unseen data sets" in html
    assert (tmp_path / "r" / "ff++" / "report.html").is_file()  # each data set keeps its full report
    assert "tflite_int8:" in result.output and "cross.html" in result.output


def test_eval_progress_gives_an_eta_from_the_rate_so_far() -> None:
    from edgekit.evaluation.evaluate import eta

    assert eta(10.0, 0, 50) == ""  # nothing measured yet: no guess
    assert eta(10.0, 5, 0) == ""
    assert eta(10.0, 5, 10) == ", about 20 s left"
    assert eta(60.0, 1, 9) == ", about 9 min left"
