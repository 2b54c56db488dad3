"""`edgekit sensitivity` on the tiny model: both tables, the plot, and a mixed recipe `export --recipe` takes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from edgekit.cli import app
from edgekit.compress.sensitivity import SensitivitySpec, readable_name, sensitivity
from edgekit.compress.workspace import ModelData
from edgekit.manifest import load_manifest
from edgekit.spec import ModelSource

ARCH = "tests.models:build_sparse_net"  # two FC layers, SE blocks, 1x1 convs


def test_readable_name_from_litert_tensor_names() -> None:
    name = (
        "edgekit.sample.model.SampleDetector/torch.nn.modules.container.Sequential_blocks/"
        "edgekit.sample.model.InvertedResidual_0/torch.nn.modules.container.Sequential_body/"
        "torch.nn.modules.batchnorm.BatchNorm2d_4;;edgekit.sample.model.SampleDetector/"
        "torch.nn.modules.container.Sequential_blocks/edgekit.sample.model.InvertedResidual_0/"
        "torch.nn.modules.container.Sequential_body/torch.nn.modules.conv.Conv2d_3;2"
    )
    assert readable_name(name) == "blocks.0.body.3"
    assert readable_name("serving_default_output_0") == "serving_default_output_0"


@pytest.fixture(scope="module")
def measured(image_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    out = tmp_path_factory.mktemp("sens")
    md = ModelData(ModelSource(arch=ARCH), image_dir, None, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5), (1, 3, 32, 32))
    spec = SensitivitySpec(model=md, out_dir=out, samples=8, val_samples=20, fallback=1, int4_min_sqnr_db=0.0)
    return out, sensitivity(spec)


def test_every_weighted_op_is_measured(measured: tuple[Path, object]) -> None:
    out, _ = measured
    data = json.loads((out / "sensitivity.json").read_text())
    kinds = {o["kind"] for o in data["quantization"]}
    assert kinds == {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"}
    for o in data["quantization"]:
        # quantizing one op changes the output a little, never not at all and never to noise
        assert 5.0 < o["int8_output_sqnr_db"] < 150.0, o
        assert (o["int4_output_sqnr_db"] is not None) == (o["kind"] == "FULLY_CONNECTED")
    assert data["pruning"] and all(r["output_sqnr_db"] is not None for r in data["pruning"])
    assert (out / "sensitivity.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_mixed_recipe_keeps_the_most_sensitive_op_float(measured: tuple[Path, object]) -> None:
    out, result = measured
    recipe = json.loads((out / "mixed_recipe.json").read_text())

    def rules_for(tensor: str) -> list[dict[str, object]]:
        # ai-edge-quantizer matches the regex against the op's output names followed by ";"
        return [r for r in recipe if r["regex"] != ".*" and re.search(str(r["regex"]), tensor + ";")]

    worst = result.most_sensitive(1)[0]  # type: ignore[attr-defined]
    assert [r["algorithm_key"] for r in rules_for(worst.tensor)] == ["no_quantize"]
    for o in result.quantization:  # type: ignore[attr-defined]
        if o.kind == "FULLY_CONNECTED" and o.tensor != worst.tensor:
            (rule,) = rules_for(o.tensor)
            assert rule["op_config"]["weight_tensor_config"]["num_bits"] == 4


def test_export_takes_the_mixed_recipe(
    measured: tuple[Path, object], image_dir: Path, tmp_path: Path
) -> None:
    out, _ = measured
    result = CliRunner().invoke(
        app,
        ["export", "--arch", ARCH, "--input-shape", "1x3x32x32", "--recipe", str(out / "mixed_recipe.json"), "--calib", str(image_dir),
         "--mean", "0.5", "--std", "0.5", "--parity-samples", "8", "-o", str(tmp_path / "e")],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    v = load_manifest(tmp_path / "e").variant("tflite_recipe")
    assert v.status == "ok" and v.parity is not None and v.parity["passed"], v
    assert v.delegation is not None and v.delegation["fully_delegated"]
