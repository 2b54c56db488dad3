"""Untrusted input, round 3 (issue 26): deeply nested JSON (thousands of '[') in every file edgekit
reads back is one line naming the file, never a RecursionError traceback; stored preprocessing
outside sane ranges is refused; files edgekit appends to are never links."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from edgekit.errors import DataError, FileFormatError, OutputError, ProtocolError, UsageError

DEEP = "[" * 50_000 + "]" * 50_000


def _manifest(tmp: Path) -> Any:
    from edgekit.manifest import load_manifest

    (tmp / "manifest.json").write_text(DEEP)
    return load_manifest(tmp)


def _eval_json(tmp: Path) -> Any:
    from edgekit.evaluation.results import load_eval_meta

    (tmp / "eval.json").write_text(DEEP)
    return load_eval_meta(tmp)


def _data_list(tmp: Path) -> Any:
    from edgekit.data.layouts import discover

    (tmp / "list.json").write_text(DEEP)
    return discover(tmp / "list.json")


def _journal(tmp: Path) -> Any:
    from edgekit.evaluation.scorelog import JOURNAL, SCORES, ScoreLog

    (tmp / SCORES).write_text("sample,video,label,method,a\n")
    (tmp / JOURNAL).write_text(DEEP)
    return ScoreLog(tmp, ["a"], {"k": 1}, resume=True)


def _recipe(tmp: Path) -> Any:
    from edgekit.exporters.registry import ExportContext
    from edgekit.exporters.tflite import export_recipe
    from edgekit.spec import InputSpec
    from tests.models import build_tiny

    (tmp / "recipe.json").write_text(DEEP)
    ctx = ExportContext(module=build_tiny().eval(), input_spec=InputSpec(shape=(1, 3, 32, 32)), calibration=None,
                        recipe=tmp / "recipe.json")  # fmt: skip
    return export_recipe(ctx)


def _device_result(tmp: Path) -> Any:
    from edgekit.device.protocol import RunResult

    return RunResult.from_json(DEEP)


def _device_config(tmp: Path) -> Any:
    from edgekit.device.protocol import RunConfig

    return RunConfig.from_json(DEEP)


def _arch_kwargs(tmp: Path) -> Any:
    from edgekit.cli._options import parse_arch_kwargs

    return parse_arch_kwargs(DEEP)


def _stored_preprocessing(tmp: Path) -> Any:
    from edgekit.modelmeta import parse_preprocess

    return parse_preprocess(DEEP, "model.pt2")


def _ort_profile(tmp: Path) -> Any:
    from edgekit.device.placement import from_ort_profile

    return from_ort_profile(DEEP)


READERS: list[tuple[Callable[[Path], Any], type[Exception], str]] = [
    (_manifest, FileFormatError, "manifest.json"),
    (_eval_json, UsageError, "eval.json"),
    (_data_list, DataError, "list.json"),
    (_journal, FileFormatError, "scores.progress.json"),
    (_recipe, UsageError, "recipe.json"),
    (_device_result, ProtocolError, "result.json"),
    (_device_config, ProtocolError, "config.json"),
    (_arch_kwargs, UsageError, "--arch-kwargs"),
    (_stored_preprocessing, FileFormatError, "model.pt2"),
    (_ort_profile, ProtocolError, "ONNX Runtime profile"),
]


@pytest.mark.parametrize(("read", "error", "named"), READERS, ids=[r[2] for r in READERS])
def test_deep_json_is_one_line_naming_the_file(
    tmp_path: Path, read: Callable[[Path], Any], error: type[Exception], named: str
) -> None:
    with pytest.raises(error) as info:
        read(tmp_path)
    message = str(info.value)
    assert named in message and "\n" not in message and len(message) < 400, message
    assert not isinstance(info.value.__cause__, RecursionError)


def test_a_deep_line_in_the_bench_journal_is_measured_again_not_a_traceback(tmp_path: Path) -> None:
    from edgekit.device.results import JSONL, read_cells

    (tmp_path / JSONL).write_text(DEEP + '\n{"key": "k", "device": "d"}\n')
    assert [c["key"] for c in read_cells(tmp_path)] == ["k"]


@pytest.mark.parametrize(
    "stored", [{"scale": 1e300}, {"std": [1e-300, 1, 1]}, {"mean": [1e308, 0, 0]}, {"scale": 0}]
)
def test_stored_preprocessing_outside_sane_ranges_is_one_line(stored: dict[str, Any]) -> None:
    import json

    from edgekit.modelmeta import PREPROCESS_SCHEMA, parse_preprocess

    record = {"schema": PREPROCESS_SCHEMA, "schema_version": 1, "mean": [0.5] * 3, "std": [0.5] * 3, **stored}
    with pytest.raises(
        FileFormatError, match=r"model.pt2: the stored preprocessing is not valid .*scale must be"
    ):
        parse_preprocess(json.dumps(record), "model.pt2")


def test_files_edgekit_appends_to_are_never_links(tmp_path: Path) -> None:
    """A planted scores.csv or bench.jsonl link would have edgekit append into a file elsewhere."""
    from edgekit.device.results import JSONL, append_cell
    from edgekit.evaluation.scorelog import SCORES, ScoreLog

    victim = tmp_path / "victim.txt"
    victim.write_text("keep me\n")
    out = tmp_path / "out"
    out.mkdir()
    (out / SCORES).symlink_to(victim)
    with pytest.raises(OutputError, match="is a link"):
        ScoreLog(out, ["a"], {"k": 1}, resume=True)
    (out / JSONL).symlink_to(victim)
    with pytest.raises(OutputError, match="is a link"):
        append_cell(out, {"key": "k", "device": "d"})
    assert victim.read_text() == "keep me\n"


def test_the_quantizers_own_recipe_files_pass_the_recipe_check() -> None:
    """Recipes edgekit did not write (shipped inside ai-edge-quantizer) are accepted as they are;
    its LiteRT-LM pointer file (an object naming another file) is refused, never followed."""
    import json

    import ai_edge_quantizer

    from edgekit.exporters.aeq import check_recipe

    folder = Path(ai_edge_quantizer.__file__).parent / "recipes"
    files = sorted(folder.glob("*.json"))
    assert len(files) >= 5
    for path in files:
        recipe = json.loads(path.read_text())
        if isinstance(recipe, list):
            assert check_recipe(recipe, path.name) == recipe
        else:
            with pytest.raises(UsageError, match="expected a non-empty JSON list"):
                check_recipe(recipe, path.name)


BAD_RECIPES: dict[str, tuple[Any, str]] = {
    "missing operation": ([{"regex": ".*"}], "entry 0 must be an object with regex, operation"),
    "unknown algorithm": ([{"regex": ".*", "operation": "*", "algorithm_key": "nope", "op_config": {}}],
                          "algorithm_key 'nope' is not one of"),
    "regex that does not compile": ([{"regex": "(", "operation": "*", "algorithm_key": "no_quantize"}],
                                    "does not compile"),
    "3-bit weights": ([{"regex": ".*", "operation": "*", "algorithm_key": "min_max_uniform_quantize",
                        "op_config": {"weight_tensor_config": {"num_bits": 3}}}], "num_bits must be one of"),
    "a combination the quantizer's policy lacks": (
        [{"regex": ".*", "operation": "FULLY_CONNECTED", "algorithm_key": "min_max_uniform_quantize",
          "op_config": {"weight_tensor_config": {"num_bits": 4, "granularity": "CHANNELWISE"}}}],
        "ai-edge-quantizer refuses it"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(BAD_RECIPES))
def test_a_bad_recipe_is_one_line_before_any_conversion(case: str, tmp_path: Path, tiny_pt2: Path) -> None:
    """Before: the quantizer's KeyError ('operation') after the float conversion, as a failed variant
    and exit 0. Now: exit 2 naming the entry and field, and no output folder."""
    import json

    from typer.testing import CliRunner

    from edgekit.cli import app

    recipe, said = BAD_RECIPES[case]
    (tmp_path / "r.json").write_text(json.dumps(recipe))
    result = CliRunner().invoke(app, ["export", str(tiny_pt2), "--recipe", str(tmp_path / "r.json"),
                                      "-o", str(tmp_path / "out")])  # fmt: skip
    assert result.exit_code == 2, result.output
    errors = [ln for ln in result.output.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in result.output
    assert said in " ".join(result.output.split()), result.output
    assert not (tmp_path / "out").exists()
