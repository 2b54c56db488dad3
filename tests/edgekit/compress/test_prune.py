"""`edgekit prune`: masks, layer discovery (nn.Module and .pt2), and an end-to-end run on tiny data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from edgekit.cli import app
from edgekit.compress.prune import PruneSpec, eligible, find_layers, layer_mask, prune
from edgekit.compress.workspace import trainable_module
from edgekit.errors import UsageError
from edgekit.spec import ModelSource
from tests.models import build_sparse_net


def test_elementwise_mask_hits_the_target_exactly() -> None:
    w = torch.randn(32, 16, 1, 1)
    mask = layer_mask(w, 0.8, "xnnpack")
    assert int((mask == 0).sum()) == round(0.8 * w.numel())
    kept = w.abs()[mask == 1]
    dropped = w.abs()[mask == 0]
    assert kept.min() >= dropped.max()  # magnitude order


def test_block4_mask_zeroes_whole_four_channel_blocks() -> None:
    w = torch.randn(24, 10)
    mask = layer_mask(w, 0.75, "block4")
    blocks = mask.reshape(6, 4, 10)
    assert torch.equal(blocks.min(dim=1).values, blocks.max(dim=1).values)  # each block all kept or all zero
    assert abs(float((mask == 0).float().mean()) - 0.75) < 0.02


def test_layers_are_found_with_their_kinds() -> None:
    layers = find_layers(build_sparse_net(), (1, 3, 32, 32))
    kinds = [la.kind for la in layers]
    assert kinds[0] == "conv" and "dwconv" in kinds and kinds.count("linear") == 2
    assert layers[-1].output_layer and layers[-1].kind == "linear"
    xnn = eligible(layers, "xnnpack")
    assert {la.kind for la in xnn} == {"conv1x1", "linear"}
    assert all(not la.output_layer for la in xnn)
    unstructured = eligible(layers, "unstructured")
    assert "dwconv" in {la.kind for la in unstructured} and layers[0] not in unstructured


def test_pt2_modules_train_at_any_batch(tiny_pt2: Path) -> None:
    from edgekit.loading import load_model

    source = ModelSource(path=tiny_pt2)
    module = trainable_module(load_model(source), source)
    out = module(torch.zeros(5, 3, 32, 32))  # exported at batch 1
    assert out.shape == (5, 1)
    layers = find_layers(module, (1, 3, 32, 32))
    assert any(la.kind == "conv1x1" for la in layers)


@pytest.mark.parametrize("bad", [{"sparsity": 1.5}, {"pattern": "random"}, {"steps": -1}, {"name": "../x"}])
def test_bad_specs_are_usage_errors(bad: dict[str, Any], tmp_path: Path) -> None:
    with pytest.raises(UsageError):
        PruneSpec(source=ModelSource(path=tmp_path / "m.pt2"), out_dir=tmp_path, **bad)


def test_prune_end_to_end_on_a_pt2(tiny_pt2: Path, image_dir: Path, tmp_path: Path) -> None:
    from edgekit.loading import load_model

    spec = PruneSpec(
        source=ModelSource(path=tiny_pt2), out_dir=tmp_path / "out", sparsity=0.75, data=image_dir,
        mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), steps=12, batch=8, name="tiny_pruned",
    )  # fmt: skip
    result = prune(spec)
    assert result.achieved_sparsity == pytest.approx(0.75, abs=0.01)
    assert result.data["train"] + result.data["val"] == 40
    report = json.loads((tmp_path / "out" / "prune.json").read_text())
    assert report["schema"] == "edgekit.prune" and report["layers"]
    # the saved .pt2 loads through the safe path and keeps the zeros fine-tuning was not allowed to fill
    pruned = load_model(ModelSource(path=tmp_path / "out" / "tiny_pruned.pt2")).module
    for entry in report["layers"]:
        w = pruned.get_parameter(entry["name"]).detach()
        assert float((w == 0).float().mean()) == pytest.approx(0.75, abs=0.01)
    original = load_model(ModelSource(path=tiny_pt2)).module
    changed = [
        name for name, p in pruned.named_parameters() if not torch.equal(p, original.get_parameter(name))
    ]
    assert any("bn" not in n for n in changed)  # fine-tuning moved weights beyond the masks


def test_cli_prune_reports_and_rejects_bad_input(tiny_pt2: Path, image_dir: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    bad = runner.invoke(app, ["prune", str(tiny_pt2), "--sparsity", "2"])
    assert bad.exit_code == 2 and "--sparsity" in bad.output
    assert len(bad.output.strip().splitlines()) == 1
    ok = runner.invoke(
        app,
        ["prune", str(tiny_pt2), "--data", str(image_dir), "--mean", "0.5", "--std", "0.5",
         "--steps", "4", "--batch", "4", "-o", str(tmp_path / "p"), "--json"],
    )  # fmt: skip
    assert ok.exit_code == 0, ok.output
    data = json.loads(ok.stdout)
    assert data["pattern"] == "xnnpack" and np.isclose(data["achieved_sparsity"], 0.8, atol=0.01)
