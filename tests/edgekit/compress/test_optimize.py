"""`edgekit optimize`: the search table, the winner rules, and the CLI on a tiny model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from edgekit.cli import app
from edgekit.compress.optimize import Candidate, OptimizeSpec, pick_winner
from edgekit.compress.workspace import ModelData
from edgekit.errors import UsageError
from edgekit.spec import ModelSource


def _row(
    name: str, size: int, verdict: str = "within budget", parity: bool = True, ms: float = 1.0
) -> Candidate:
    return Candidate(
        name, name, "int8", size_bytes=size, parity_passed=parity, verdict=verdict, latency_ms=ms
    )


def test_winner_is_the_smallest_within_budget_that_passed_parity() -> None:
    rows = [
        _row("fp32", 100),
        _row("tiny_but_wrong", 5, parity=False, verdict="parity failed"),
        _row("too_lossy", 10, verdict="over budget"),
        _row("int8", 30, ms=3.0),
        _row("sparse", 20, ms=2.0),
    ]
    assert pick_winner(rows, "size").name == "sparse"  # type: ignore[union-attr]
    assert pick_winner([*rows, _row("fast", 90, ms=0.5)], "latency").name == "fast"  # type: ignore[union-attr]
    # a parity failure never wins, even when its verdict was (wrongly) left "within budget"
    assert pick_winner([_row("bad", 1, parity=False), _row("ok", 50)], "size").name == "ok"  # type: ignore[union-attr]
    assert pick_winner([_row("x", 1, verdict="over budget")], "size") is None
    on_phone = [_row("a", 10, ms=1.0), Candidate("b", "b", "int8", size_bytes=20, parity_passed=True,
                verdict="within budget", latency_ms=5.0, device_ms=0.5)]  # fmt: skip
    assert pick_winner(on_phone, "latency", on_device=True).name == "b"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "bad",
    [{"objective": "speed"}, {"max_auc_drop": 1.5}, {"sparsity_levels": (0.5, 1.2)}, {"val_samples": 3}],
)
def test_bad_specs_are_usage_errors(bad: dict[str, object], tmp_path: Path) -> None:
    with pytest.raises(UsageError):
        OptimizeSpec(model=ModelData(ModelSource(path=tmp_path / "m.pt2")), out_dir=tmp_path, **bad)  # type: ignore[arg-type]


def test_optimize_end_to_end_on_the_tiny_model(tiny_pt2: Path, image_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "opt"
    result = CliRunner().invoke(
        app,
        ["optimize", str(tiny_pt2), "--data", str(image_dir), "--mean", "0.5", "--std", "0.5",
         "--max-auc-drop", "0.5", "--sparsity-levels", "0.5,0.6", "--prune-steps", "3", "--val-samples", "20",
         "--device", "emulator", "-o", str(out), "--strict"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads((out / "optimize.json").read_text())
    names = [c["name"] for c in data["candidates"]]
    assert names[:4] == ["fp32", "fp16", "int8_dynamic", "int8"]
    assert {"int4_mixed", "sparse_fp16_50", "sparse_int8w_50"} <= set(names)
    by = {c["name"]: c for c in data["candidates"]}
    for c in data["candidates"]:
        if c["verdict"] in ("skipped", "export failed"):
            continue
        assert c["size_bytes"] and c["latency_ms"] and c["auc"] is not None and (out / c["file"]).is_file()
        assert c["device_ms"] and c["device_ms"] > 0  # timed on the emulated Pixel 9 through edgekit bench
    if by["int8"]["verdict"] in ("within budget", "winner"):
        assert by["int8_fallback1"]["verdict"] == "skipped"  # early stop: a fallback only adds size
    winner = by[data["winner"]]
    assert winner["verdict"] == "winner" and winner["parity_passed"]
    ok = [c for c in data["candidates"] if c["verdict"] in ("within budget", "winner") and c["parity_passed"]]
    assert winner["size_bytes"] == min(c["size_bytes"] for c in ok)
    assert (out / "best.tflite").read_bytes() == (out / winner["file"]).read_bytes()
    assert "| candidate |" in (out / "optimize.md").read_text()
    assert "winner" in result.output


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["optimize", "{pt2}", "--objective", "speed"], "--objective"),
        (["optimize", "{pt2}", "--sparsity-levels", "0.5,x"], "--sparsity-levels"),
        (["sensitivity", "{missing}"], "does not exist"),
        (["sensitivity", "{pt2}", "--prune-ratio", "0"], "--prune-ratio"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    args: list[str], needle: str, tiny_pt2: Path, tmp_path: Path
) -> None:
    argv = [a.format(pt2=tiny_pt2, missing=tmp_path / "nope.pt2") for a in args] + ["-o", str(tmp_path / "o")]
    result = CliRunner().invoke(app, argv)
    assert result.exit_code == 2, result.output
    assert needle in result.output and len(result.output.strip().splitlines()) == 1
