"""The cross-data-set verdicts and --data NAME=PATH parsing (the end-to-end run is in test_streaming)."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgekit.errors import UsageError
from edgekit.evaluation.cross import CrossRow, parse_data_args, verdicts


def _row(dataset: str, variant: str, video_auc: float | None, auc: float = 0.9) -> CrossRow:
    return CrossRow(dataset, variant, 10, 2, auc, video_auc, 0.1, 0.9, 0.9, 0.0, "Stable", {})


def test_a_variant_that_loses_more_on_unseen_data_is_named_with_the_worst_set() -> None:
    rows = [_row("ff++", "pytorch_fp32", 0.99), _row("ff++", "tflite_int8", 0.985),
            _row("celebdf", "pytorch_fp32", 0.80), _row("celebdf", "tflite_int8", 0.78),
            _row("dfdc", "pytorch_fp32", 0.70), _row("dfdc", "tflite_int8", 0.64)]  # fmt: skip
    said = verdicts(rows, ["ff++", "celebdf", "dfdc"], 0.01)
    assert said["tflite_int8"].startswith("loses more on unseen data (worst: dfdc)")
    assert "+0.0050 on ff++ (seen)" in said["tflite_int8"] and "+0.0600 on dfdc" in said["tflite_int8"]
    same = verdicts(rows[:4], ["ff++", "celebdf"], 0.05)
    assert same["tflite_int8"].startswith("loses about the same")


def test_frame_auc_is_used_without_videos_and_undefined_auc_is_said() -> None:
    rows = [_row("a", "pytorch_fp32", None, 0.9), _row("a", "x", None, 0.9),
            _row("b", "pytorch_fp32", None, 0.9), _row("b", "x", None, 0.7)]  # fmt: skip
    assert verdicts(rows, ["a", "b"], 0.01)["x"].startswith("loses more on unseen data (worst: b)")
    rows[1] = _row("a", "x", None, None)  # type: ignore[arg-type]
    assert verdicts(rows, ["a", "b"], 0.01)["x"].startswith("AUC undefined")


def test_data_arguments_need_distinct_plain_names() -> None:
    assert parse_data_args(["ff++=/d/FF", "/d/CDF"]) == [("ff++", Path("/d/FF")), ("CDF", Path("/d/CDF"))]
    with pytest.raises(UsageError, match="its own name"):
        parse_data_args(["a=/x", "a=/y"])
    with pytest.raises(UsageError, match="name the data set"):
        parse_data_args(["../up=/x"])


def test_a_bad_data_set_anywhere_in_the_list_stops_before_anything_is_written(tmp_path: Path) -> None:
    from edgekit.errors import DataError
    from edgekit.evaluation.cross import evaluate_across
    from edgekit.evaluation.evaluate import EvalSpec

    (tmp_path / "good" / "real").mkdir(parents=True)
    (tmp_path / "good" / "real" / "a.png").write_bytes(b"\0")
    spec = EvalSpec(export_dir=tmp_path / "export", data=tmp_path / "good", out_dir=tmp_path / "out")
    with pytest.raises(DataError, match="does not exist"):
        evaluate_across(spec, [("good", tmp_path / "good"), ("bad", tmp_path / "missing")])
    assert not (tmp_path / "out").exists()
