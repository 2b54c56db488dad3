"""Hand-edited, truncated and hostile files edgekit reads back: manifests (through `bench` and
`eval`), eval folders (through `report`), model files, images. Every case must end in one
clear line and exit 2: no traceback, nothing read or written outside its folder, no code run.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from edgekit.cli import app

Mutation = Callable[[Path], None]


def _manifest(change: Callable[[dict[str, Any]], Any]) -> Mutation:
    def mutate(folder: Path) -> None:
        path = folder / "manifest.json"
        d = json.loads(path.read_text())
        replaced = change(d)
        path.write_text(json.dumps(d if replaced is None else replaced))

    return mutate


def _variant(key: str, value: Any) -> Mutation:
    return _manifest(lambda d: d["variants"][0].__setitem__(key, value))


def _text(name: str, text: str | bytes) -> Mutation:
    def mutate(folder: Path) -> None:
        target = folder / name
        target.write_bytes(text if isinstance(text, bytes) else text.encode())

    return mutate


def _truncate(name: str) -> Mutation:
    def mutate(folder: Path) -> None:
        data = (folder / name).read_bytes()
        (folder / name).write_bytes(data[: len(data) // 2])

    return mutate


def _variant_links_out(folder: Path) -> None:
    """The variant file replaced by a link to a file outside the folder, its size and sha256 in
    the manifest updated to match that file: the hash check passes, containment must not."""
    import hashlib

    outside = folder.parent / "outside.tflite"
    d = json.loads((folder / "manifest.json").read_text())
    variant = d["variants"][0]
    shutil.copy(folder / variant["file"], outside)
    (folder / variant["file"]).unlink()
    (folder / variant["file"]).symlink_to(outside)
    variant["sha256"] = hashlib.sha256(outside.read_bytes()).hexdigest()
    variant["size_bytes"] = outside.stat().st_size
    (folder / "manifest.json").write_text(json.dumps(d))


MARKER = Path("/tmp/edgekit-hostile-marker")

MANIFEST_CASES: dict[str, Mutation] = {
    "arch runs a command": _manifest(
        lambda d: d["source"].update(arch="os:system", arch_kwargs={"command": f"touch {MARKER}"}, path=None)
    ),
    "extra key": _manifest(lambda d: d.__setitem__("surprise", 1)),
    "a list instead of an object": _manifest(lambda d: [d]),
    "variants is a string": _manifest(lambda d: d.__setitem__("variants", "abc")),
    "variant is a list": _manifest(lambda d: d.__setitem__("variants", [["x"]])),
    "unknown output kind": _manifest(lambda d: d["output"].__setitem__("kind", "vibes")),
    "threshold as text": _manifest(lambda d: d.__setitem__("threshold", "half")),
    "huge preprocess size": _manifest(lambda d: d["preprocess"].__setitem__("height", 10**9)),
    "parity inputs outside": _manifest(lambda d: d["parity_data"].__setitem__("inputs_file", "../x.npy")),
    "variant file absolute": _variant("file", "/etc/passwd"),
    "variant file escapes": _variant("file", "../evil.tflite"),
    "variant name escapes": _variant("name", "../../evil"),
    "wrong sha256": _variant("sha256", "0" * 64),
    "variant file links out, hash matching": _variant_links_out,
    "size as text": _variant("size_bytes", "big"),
    "model file replaced": _text("tiny.fp32.tflite", b"TFL3 not really"),
    "parity inputs truncated": _truncate("parity_inputs.npy"),
    "parity inputs of another shape": lambda f: np.save(
        f / "parity_inputs.npy", np.zeros((4, 3, 8, 8), np.float32)
    ),
    "manifest truncated": _truncate("manifest.json"),
    "manifest empty": _text("manifest.json", ""),
    "manifest binary": _text("manifest.json", b"\xff\xfe\x00garbage"),
}


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory: pytest.TempPathFactory, image_dir: Path, tiny_pt2: Path) -> Path:
    from edgekit.exporting import export
    from edgekit.spec import ExportSpec, ModelSource

    out = tmp_path_factory.mktemp("hostile") / "export"
    export(ExportSpec(source=ModelSource(path=tiny_pt2), out_dir=out, calib_dir=image_dir, parity_samples=8,
                      name="tiny"))  # fmt: skip
    return out


def _copy(src: Path, tmp: Path, mutate: Mutation) -> Path:
    dst = tmp / "copy"
    shutil.copytree(src, dst)
    mutate(dst)
    return dst


def _one_clean_line(result: Any) -> None:
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    errors = [ln for ln in result.output.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1, result.output


@pytest.mark.parametrize("case", list(MANIFEST_CASES))
def test_hostile_manifest_through_bench_and_eval(
    case: str, export_dir: Path, image_dir: Path, tmp_path: Path
) -> None:
    MARKER.unlink(missing_ok=True)
    folder = _copy(export_dir, tmp_path, MANIFEST_CASES[case])
    runner = CliRunner()
    bench = runner.invoke(app, ["bench", str(folder), "--device", "emulator", "--runs", "1", "--warmup", "0",
                                "-o", str(tmp_path / "bench")])  # fmt: skip
    evaluate = runner.invoke(app, ["eval", str(folder), "--data", str(image_dir), "--no-heatmaps",
                                   "-o", str(tmp_path / "eval")])  # fmt: skip
    # bench reads the parity files and never the PyTorch model; eval the reverse
    bench_only = case in ("parity inputs truncated", "parity inputs of another shape")
    eval_only = case == "arch runs a command"
    if eval_only:
        assert bench.exit_code == 0, bench.output
    else:
        _one_clean_line(bench)
    if bench_only:
        assert evaluate.exit_code == 0, evaluate.output
    else:
        _one_clean_line(evaluate)
    assert not MARKER.exists(), "a manifest made edgekit run a command"
    assert not (tmp_path / "evil.tflite").exists() and not (tmp_path.parent / "evil").exists()


def test_the_manifests_arch_is_never_imported_even_with_a_path(
    export_dir: Path, image_dir: Path, tmp_path: Path
) -> None:
    MARKER.unlink(missing_ok=True)
    folder = _copy(export_dir, tmp_path, _manifest(lambda d: d["source"].update(arch="os:system",
                                                     arch_kwargs={"command": f"touch {MARKER}"})))  # fmt: skip
    result = CliRunner().invoke(
        app, ["eval", str(folder), "--data", str(image_dir), "-o", str(tmp_path / "e")]
    )
    _one_clean_line(result)
    assert "never imports code a manifest names" in result.output and not MARKER.exists()


def test_a_moved_export_folder_still_finds_its_baseline(
    export_dir: Path, image_dir: Path, tmp_path: Path
) -> None:
    folder = _copy(
        export_dir,
        tmp_path,
        lambda f: shutil.copy(
            json.loads((f / "manifest.json").read_text())["source"]["path"], f / "tiny.pt2"
        ),
    )
    d = json.loads((folder / "manifest.json").read_text())
    d["source"]["path"] = "/nonexistent/old/place/tiny.pt2"
    (folder / "manifest.json").write_text(json.dumps(d))
    result = CliRunner().invoke(app, ["eval", str(folder), "--data", str(image_dir), "--no-heatmaps",
                                      "-o", str(tmp_path / "e")])  # fmt: skip
    assert result.exit_code == 0, result.output


# --------------------------------------------------------------------------- eval folders


@pytest.fixture(scope="module")
def eval_dir(export_dir: Path, image_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from edgekit.evaluation.evaluate import EvalSpec, evaluate

    out = tmp_path_factory.mktemp("hostile-eval") / "eval"
    evaluate(EvalSpec(export_dir=export_dir, data=image_dir, out_dir=out, top_k=1, grid=2))
    return out


def _eval_json(change: Callable[[dict[str, Any]], Any]) -> Mutation:
    def mutate(folder: Path) -> None:
        d = json.loads((folder / "eval.json").read_text())
        replaced = change(d)
        (folder / "eval.json").write_text(json.dumps(d if replaced is None else replaced))

    return mutate


def _scores(change: Callable[[list[str]], list[str]]) -> Mutation:
    def mutate(folder: Path) -> None:
        lines = (folder / "scores.csv").read_text().splitlines()
        (folder / "scores.csv").write_text("\n".join(change(lines)) + "\n")

    return mutate


def _heat_file(value: str) -> Mutation:
    return _eval_json(lambda d: next(iter(d["heatmaps"].values()))[0].__setitem__("file", value))


REPORT_FAILS: dict[str, Mutation] = {
    "eval.json is a list": _eval_json(lambda d: [d]),
    "eval.json truncated": _truncate("eval.json"),
    "score as text": _scores(lambda ls: [ls[0], ls[1].rsplit(",", 1)[0] + ",high", *ls[2:]]),
    "NaN score": _scores(lambda ls: [ls[0], ls[1].rsplit(",", 1)[0] + ",nan", *ls[2:]]),
    "scores.csv truncated": _truncate("scores.csv"),
    "scores.csv empty": _text("scores.csv", ""),
    "label not 0/1": _scores(
        lambda ls: [ls[0], ",".join([*ls[1].split(",")[:2], "7", *ls[1].split(",")[3:]]), *ls[2:]]
    ),
    "variant name escapes": _eval_json(lambda d: d["variants"].append("../../x")),
    "threshold NaN": _eval_json(lambda d: d.__setitem__("threshold", float("nan"))),
}


@pytest.mark.parametrize("case", list(REPORT_FAILS))
def test_hostile_eval_folder_through_report(case: str, eval_dir: Path, tmp_path: Path) -> None:
    folder = _copy(eval_dir, tmp_path, REPORT_FAILS[case])
    _one_clean_line(CliRunner().invoke(app, ["report", str(folder)]))


@pytest.mark.parametrize(
    "target", ["../../../../etc/passwd", "/etc/passwd", "heatmaps/missing.png", "scores.csv"]
)
def test_heatmap_paths_outside_or_not_png_are_never_embedded(
    target: str, eval_dir: Path, tmp_path: Path
) -> None:
    folder = _copy(eval_dir, tmp_path, _heat_file(target))
    result = CliRunner().invoke(app, ["report", str(folder)])
    assert result.exit_code == 0, result.output
    page = (folder / "report.html").read_text()
    assert "root:" not in page and "missing or not inside the eval folder" in page


def test_a_variant_named_like_mathtext_and_markdown_renders(eval_dir: Path, tmp_path: Path) -> None:
    # names in eval.json are validated as plain names; a '$' is refused cleanly, not a matplotlib crash
    folder = _copy(eval_dir, tmp_path, lambda f: None)
    for old, new in (("tflite_fp32", "tflite$x$fp32"),):
        for name in ("eval.json", "scores.csv"):
            (folder / name).write_text((folder / name).read_text().replace(old, new))
    _one_clean_line(CliRunner().invoke(app, ["report", str(folder)]))


def test_report_md_escapes_sample_names(eval_dir: Path, tmp_path: Path) -> None:
    folder = _copy(eval_dir, tmp_path, _eval_json(
        lambda d: next(iter(d["heatmaps"].values()))[0].__setitem__("sample", "a|b](javascript:x)")))  # fmt: skip
    assert CliRunner().invoke(app, ["report", str(folder)]).exit_code == 0
    md = (folder / "report.md").read_text()
    assert "a\\|b\\](javascript:x)" in md


# --------------------------------------------------------------------------- CLI text


def test_markup_in_a_path_is_printed_not_parsed(tmp_path: Path) -> None:
    path = tmp_path / "[/x]" / "[bold]model.pt2"
    result = CliRunner().invoke(app, ["export", str(path), "-o", str(tmp_path / "o")])
    _one_clean_line(result)
    assert "[/x]" in result.output and "[bold]model.pt2" in result.output


def test_insights_and_sizes_speak_of_the_variants_not_the_baseline(eval_dir: Path, tmp_path: Path) -> None:
    folder = _copy(eval_dir, tmp_path, lambda f: None)
    assert CliRunner().invoke(app, ["report", str(folder)]).exit_code == 0
    md = (folder / "report.md").read_text()
    assert "Largest drop: pytorch_fp32" not in md and "| pytorch_fp32 | pytorch | fp32 |" in md
    assert "| Reference |" in md  # the baseline is the reference, not "Stable"
    assert "x smaller than FP32" in md and "| tflite_fp32 | tflite | fp32 |" in md
    row = next(ln for ln in md.splitlines() if ln.startswith("| tflite_fp32 | tflite"))
    assert "| 1.00x |" in row  # sizes against the FP32 TFLite file, as in the export table


# --------------------------------------------------------------------------- output folders and names (issue 26)


@pytest.mark.parametrize("command", ["export", "eval", "bench", "sample", "report plots"])
def test_an_output_folder_that_is_a_link_is_refused(
    command: str, export_dir: Path, eval_dir: Path, image_dir: Path, tiny_pt2: Path, tmp_path: Path
) -> None:
    """Writing through a link puts files where it points: a planted ``plots -> /etc`` in an eval
    folder, or ``-o`` naming a link. Refused in one line; the folder it points to is untouched."""
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "keep.txt").write_text("keep me")
    link = tmp_path / "link"
    link.symlink_to(victim, target_is_directory=True)
    argv = {
        "export": ["export", str(tiny_pt2), "-o", str(link)],
        "eval": ["eval", str(export_dir), "--data", str(image_dir), "--no-heatmaps", "-o", str(link)],
        "bench": ["bench", str(export_dir), "--device", "emulator", "--runs", "1", "-o", str(link)],
        "sample": ["sample", "--count", "4", "-o", str(link)],
    }.get(command)
    if argv is None:  # the link is planted inside an eval folder the user re-renders
        folder = _copy(eval_dir, tmp_path, lambda f: shutil.rmtree(f / "plots"))
        (folder / "plots").symlink_to(victim, target_is_directory=True)
        argv = ["report", str(folder)]
    result = CliRunner().invoke(app, argv)
    _one_clean_line(result)
    assert "is a link to" in result.output
    assert sorted(p.name for p in victim.iterdir()) == ["keep.txt"]


def test_names_with_line_breaks_and_escapes_are_shown_not_obeyed(
    export_dir: Path, image_dir: Path, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    shutil.copytree(image_dir, data)
    shutil.copy(next((data / "real").glob("*.png")), data / "real" / "a\nb\x1b[31m|x.png")
    (data / "fake" / "bad\n\x1b]0;title\x07.png").write_bytes(b"not an image")
    result = CliRunner().invoke(
        app, ["eval", str(export_dir), "--data", str(data), "-o", str(tmp_path / "e")]
    )
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.output and "\x07" not in result.output
    said = next(ln for ln in result.output.splitlines() if "could not be read" in ln)
    assert "fake/bad\\n\\x1b]0;title\\x07.png" in said  # the line break is written out, not obeyed
    for page in ("report.md", "report.html"):
        text = (tmp_path / "e" / page).read_text()
        assert "\x1b" not in text and "\x07" not in text and "bad\n" not in text, page
    md = (tmp_path / "e" / "report.md").read_text()
    assert "- fake/bad\\n\\x1b\\]0;title\\x07.png: " in md  # one list item, brackets escaped


def test_a_folder_of_very_many_tiny_files_is_counted_not_listed(
    export_dir: Path, image_dir: Path, tmp_path: Path
) -> None:
    from edgekit.evaluation.report import SKIPPED_IN_REPORT
    from edgekit.evaluation.results import MAX_SKIPPED_LISTED

    data = tmp_path / "data"
    shutil.copytree(image_dir, data)
    many = MAX_SKIPPED_LISTED + 500
    for i in range(many):
        (data / ("real", "fake")[i % 2] / f"tiny_{i:05d}.png").write_bytes(b"x")
    result = CliRunner().invoke(app, ["eval", str(export_dir), "--data", str(data), "--no-heatmaps",
                                      "-o", str(tmp_path / "e")])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert f"{many} file(s) could not be read" in result.output
    meta = json.loads((tmp_path / "e" / "eval.json").read_text())
    assert meta["skipped_total"] == many and len(meta["skipped"]) == MAX_SKIPPED_LISTED
    md = (tmp_path / "e" / "report.md").read_text()
    assert md.count("UnidentifiedImageError") == SKIPPED_IN_REPORT
    assert f"... and {many - SKIPPED_IN_REPORT} more (eval.json lists the first {MAX_SKIPPED_LISTED})" in md
    # a hand-edited eval.json listing more than edgekit writes is refused by the report
    meta["skipped"] = meta["skipped"] * 2
    (tmp_path / "e" / "eval.json").write_text(json.dumps(meta))
    _one_clean_line(CliRunner().invoke(app, ["report", str(tmp_path / "e")]))
