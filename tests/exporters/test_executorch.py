"""ExecuTorch .pte variants: FP32 and PT2E INT8 lowered to XNNPACK, host parity through the
ExecuTorch runtime, non-delegated ops reported, eval scoring them like any other variant."""

from __future__ import annotations

import builtins
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edgekit.errors import ExportError
from edgekit.exporting import export
from edgekit.spec import ExportSpec, ModelSource
from tests.conftest import TINY_ARCH

pytest.importorskip(
    "executorch", reason="the executorch extra (CI installs it: pip install 'edgekit[executorch]')"
)


@pytest.fixture(scope="module")
def pte_export(tmp_path_factory: pytest.TempPathFactory, image_dir: Path) -> Path:
    out = tmp_path_factory.mktemp("pte")
    export(ExportSpec(source=ModelSource(arch=TINY_ARCH), out_dir=out, input_shape=(1, 3, 32, 32),
                      variants=("tflite_fp32", "executorch_fp32", "executorch_int8"), calib_dir=image_dir,
                      calib_samples=16, parity_samples=8))  # fmt: skip
    return out


def test_pte_variants_pass_parity_and_report_what_xnnpack_left(pte_export: Path) -> None:
    m = json.loads((pte_export / "manifest.json").read_text())
    v = {x["name"]: x for x in m["variants"]}
    for name in ("executorch_fp32", "executorch_int8"):
        assert v[name]["status"] == "ok" and v[name]["format"] == "pte", v[name]
        assert v[name]["parity"]["passed"], v[name]["parity"]
        assert (pte_export / v[name]["file"]).read_bytes()[4:8] == b"ET12"  # an ExecuTorch flatbuffer
        d = v[name]["delegation"]
        assert d["partitions"] >= 1 and d["delegated_ops"] > 0
        assert "aten.mean.dim" in d["undelegated"]  # the tiny model's global mean stays on portable kernels
    assert v["executorch_fp32"]["parity"]["sqnr_db"] > 80 and v["executorch_int8"]["parity"]["sqnr_db"] < 80


def test_the_runtime_matches_pytorch_on_fresh_inputs(pte_export: Path) -> None:
    import torch

    from edgekit.runners import open_runner, run_batch
    from tests.models import build_tiny

    model = build_tiny().eval()  # the same seeded weights the export was made from
    x = np.random.default_rng(1).normal(size=(4, 3, 32, 32)).astype(np.float32)
    with torch.inference_mode():
        ref = model(torch.from_numpy(x)).numpy().reshape(4, -1)
    runner = open_runner("pte", next(pte_export.glob("*.fp32.pte")))
    assert runner.input_shape == (1, 3, 32, 32)
    np.testing.assert_allclose(run_batch(runner, x), ref, atol=1e-4)


def test_eval_scores_the_pte_variants(pte_export: Path, image_dir: Path, tmp_path: Path) -> None:
    from edgekit.evaluation.evaluate import EvalSpec, evaluate

    evaluate(
        EvalSpec(export_dir=pte_export, arch=TINY_ARCH, data=image_dir, out_dir=tmp_path, heatmaps=False)
    )
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert {"executorch_fp32", "executorch_int8"} <= set(metrics["variants"])
    assert metrics["variants"]["executorch_fp32"]["flips_vs_baseline"] == 0


def test_without_the_extra_the_variant_fails_with_the_install_line(
    tmp_path: Path, image_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_import = builtins.__import__

    def no_executorch(name: str, *args: Any, **kw: Any) -> Any:
        if name.startswith("executorch"):
            raise ImportError(name)
        return real_import(name, *args, **kw)

    monkeypatch.setattr(builtins, "__import__", no_executorch)
    m = export(ExportSpec(source=ModelSource(arch=TINY_ARCH), out_dir=tmp_path, input_shape=(1, 3, 32, 32),
                          variants=("tflite_fp32", "executorch_fp32"), parity_samples=4))  # fmt: skip
    failed = {v.name: v for v in m.variants}["executorch_fp32"]
    assert failed.status == "failed" and 'pip install "edgekit[executorch]"' in (failed.error or "")
    with pytest.raises(ExportError):
        from edgekit.exporters.executorch import _require

        _require()


def _flip(data: bytes) -> bytes:
    mid = len(data) // 3
    return data[:mid] + bytes(b ^ 0xFF for b in data[mid : mid + 64]) + data[mid + 64 :]


PTE_DAMAGE = {
    "truncated": lambda d, tfl: d[: len(d) // 2],
    "bit-flipped": lambda d, tfl: _flip(d),
    "header overwritten": lambda d, tfl: b"XXXX" + d[4:],
    "a .tflite renamed": lambda d, tfl: tfl,
    "empty": lambda d, tfl: b"",
}


@pytest.mark.parametrize("damage", list(PTE_DAMAGE))
def test_a_damaged_pte_is_one_line(pte_export: Path, tmp_path: Path, damage: str) -> None:
    """Issue 26: hostile .pte files (sha256 in the manifest updated to match, as an attacker
    editing both would) fail in one line through the runtime, never a crash or a traceback."""
    from edgekit.errors import EdgekitError
    from edgekit.runners.executorch import ExecuTorchRunner

    pte = next(pte_export.glob("*.fp32.pte"))
    bad = tmp_path / pte.name
    bad.write_bytes(PTE_DAMAGE[damage](pte.read_bytes(), next(pte_export.glob("*.fp32.tflite")).read_bytes()))
    with pytest.raises(EdgekitError) as info:
        ExecuTorchRunner(bad)  # loading is where the runtime reads the file
    assert "is not a loadable ExecuTorch program" in str(info.value) and "\n" not in str(info.value)
