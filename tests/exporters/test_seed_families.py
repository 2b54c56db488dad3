"""The seeds' own detectors end to end (issue 25): a BNext-style binary network, Xception, an
EfficientNet-B4-shaped network with the ICPR 2020 attention branch (all exported to TFLite
FP32/FP16/INT8, ONNX and ExecuTorch, each checked against PyTorch), and SPSL, whose phase
spectrum no converter takes: refused in seconds, naming the op and the source line."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from edgekit.errors import UnsupportedOpError
from edgekit.exporting import export
from edgekit.manifest import Manifest
from edgekit.spec import ExportSpec, ModelSource

VARIANTS = ("tflite_fp32", "tflite_fp16", "tflite_int8", "onnx_fp32", "onnx_int8", "executorch_fp32",
            "executorch_int8")  # fmt: skip
FAMILIES = {"bnext": {"classes": 1}, "xception": {"classes": 2}, "b4att": {"classes": 1}}
#: measured: ExecuTorch 1.5.1's XNNPACK delegate converts BNext's INT8 graph (its sign ops stay
#: outside the delegate) but fails running it, a static output tensor met in channels-last order
#: (the bug class of pytorch/executorch#19153); recorded as a failed variant with the runtime's words
KNOWN_FAILURES = {("bnext", "executorch_int8"): "Failed to resize output tensor for XNNExecutor"}


def _export(
    family: str, out: Path, calib: Path, variants: tuple[str, ...] = VARIANTS, **kwargs: int
) -> Manifest:
    return export(ExportSpec(
        source=ModelSource(arch=f"tests.seeds:build_{family}", arch_kwargs=dict(kwargs)), out_dir=out,
        input_shape=(1, 3, 64, 64), variants=variants, calib_dir=calib, calib_samples=16, parity_samples=8,
        mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), arm64="off", int8_repair=False,  # the ladder has its own tests
    ))  # fmt: skip


@pytest.mark.parametrize("family", list(FAMILIES))
def test_each_family_exports_to_every_format_and_holds_parity(
    family: str, tmp_path: Path, image_dir: Path
) -> None:
    pytest.importorskip("executorch", reason="the executorch extra (CI installs it)")
    manifest = _export(family, tmp_path / family, image_dir, **FAMILIES[family])
    by = {v.name: v for v in manifest.variants}
    assert set(by) == set(VARIANTS)
    for name, v in by.items():
        known = KNOWN_FAILURES.get((family, name))
        if known:
            assert v.status == "failed" and "the runtime cannot run it" in (v.error or ""), (name, v.error)
            assert (
                known in (v.error or "")
                and v.file is None
                and not list((tmp_path / family).glob("*.int8.pte"))
            )
            continue
        assert v.status == "ok", (name, v.error)
        assert v.parity is not None
        if v.precision in ("fp32", "fp16"):  # float variants: the same decisions as PyTorch
            assert v.parity["passed"], (name, v.parity)
            assert v.parity["flips"] == 0
    assert manifest.output["classes"] == FAMILIES[family]["classes"]
    binary = manifest.binary
    if family == "bnext":
        assert binary is not None and len(binary["layers"]) == 4
        assert all(layer["sign_input"] for layer in binary["layers"])
        assert "no 1-bit kernels" in binary["statement"]
        # read from the INT8 file: the 1-bit weights are stored as +-127 per channel, exactly
        assert binary["int8_exact"].startswith("4/4 binary layers held exactly")
        # the sign ops and the subtraction feeding them stay float in the INT8 file (INT8 would
        # round inputs near zero to 0, whose sign is 0)
        from edgekit.exporters.tflite_graph import TFLiteGraph

        g = TFLiteGraph((tmp_path / family / by["tflite_int8"].file).read_bytes())
        ops, producers = g.ops(), g.producers()
        signs = [op for op in ops if op.name == "SIGN"]
        assert len(signs) == 4
        for op in signs:
            feeding = ops[producers[op.inputs[0]]]
            assert feeding.name == "SUB" and g.tensor(feeding.outputs[0]).type == 0  # float32
    else:
        assert binary is None  # a float network is never called binary


def test_binary_weights_are_found_by_their_values_not_their_names() -> None:
    """The detection reads folded weights: a BNext conv's sign(w)*scale is binary, the float stem
    and 1x1 are not; a plain conv whose weights happen to be +-a per channel is binary too."""
    import torch

    from edgekit.exporters.preflight import inspect
    from tests.seeds import build_bnext, build_xception

    facts = inspect(build_bnext(), torch.zeros(1, 3, 64, 64), {"tflite"})
    assert [b.module.split(" ")[0] for b in facts.binary] == [f"blocks.{i}.conv" for i in range(4)]
    assert all(
        b.weights_per_channel == b.weights_per_channel and b.weights_per_channel >= 9 for b in facts.binary
    )
    model = build_xception()
    assert inspect(model, torch.zeros(1, 3, 64, 64), {"tflite"}).binary == []
    with torch.no_grad():
        conv = model.entry[0]
        conv.weight.copy_(torch.sign(conv.weight) * torch.rand(conv.weight.shape[0], 1, 1, 1))
    found = inspect(model, torch.zeros(1, 3, 64, 64), {"tflite"}).binary
    assert [b.module.split(" ")[0] for b in found] == ["entry.0"] and not found[0].sign_input


def test_spsl_is_refused_in_seconds_naming_the_fft_and_its_line(tmp_path: Path, image_dir: Path) -> None:
    """Before: 22 minutes, then "aten._to_copy.default in unknown layer". Now: before any
    conversion, the op, the source line, and what to do; nothing written."""
    start = time.perf_counter()
    with pytest.raises(UnsupportedOpError) as info:
        _export("spsl", tmp_path / "spsl", image_dir)
    seconds = time.perf_counter() - start
    said = str(info.value)
    assert "complex numbers" in said and "aten.fft_fft2" in said and "tests/seeds.py:" in said
    assert "phase_channel(x)" in said  # the source line, as written
    assert "preprocessing on the phone" in said and "\n" not in said
    assert seconds < 60, seconds  # the conversion never started
    assert not (tmp_path / "spsl").exists()


def test_an_op_litert_cannot_lower_is_named_before_conversion(tmp_path: Path, image_dir: Path) -> None:
    with pytest.raises(
        UnsupportedOpError, match=r"no lowering .*aten\.special_bessel_j0.*tests/models\.py:\d+"
    ):
        export(ExportSpec(source=ModelSource(arch="tests.models:build_unconvertible"), out_dir=tmp_path / "u",
                          input_shape=(1, 3, 32, 32), variants=("tflite_fp32",), parity_samples=4,
                          calib_dir=image_dir))  # fmt: skip


def test_both_heads_of_every_family_build_and_run() -> None:
    import torch

    from tests import seeds

    x = torch.rand(2, 3, 64, 64) * 2 - 1
    for family in ("bnext", "xception", "b4att", "spsl"):
        for classes in (1, 2):
            model = getattr(seeds, f"build_{family}")(classes=classes)
            y = model(x).detach().numpy()
            assert y.shape == (2, classes) and np.isfinite(y).all()
            bn = next(m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))
            assert not torch.allclose(bn.running_var, torch.ones_like(bn.running_var))  # live statistics
