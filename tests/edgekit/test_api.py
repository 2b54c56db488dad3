"""The Python API: in-memory models, typed results, the same files as the CLI, typed errors."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
from pathlib import Path

import pytest

import edgekit
from edgekit.errors import EdgekitError, UsageError
from edgekit.spec import Tolerance


def test_signature_is_public_and_import_stays_light() -> None:
    import edgekit.exporting  # the job module must not shadow the API function

    assert inspect.isfunction(edgekit.export)
    params = inspect.signature(edgekit.export).parameters
    assert list(params)[:1] == ["model"]
    assert {"example_input", "variants", "calib", "out_dir", "progress"} <= set(params)
    code = "import sys, edgekit; edgekit.export; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"  # the API module loads; torch does not


@pytest.fixture(scope="module")
def api_export(tmp_path_factory: pytest.TempPathFactory, image_dir: Path) -> edgekit.ExportResult:
    import torch

    from tests.models import build_tiny

    model = build_tiny()
    model.train()  # the API must not leave it in eval mode, nor depend on the caller doing it
    messages: list[str] = []
    out = tmp_path_factory.mktemp("api") / "out"
    result = edgekit.export(
        model, example_input=torch.randn(1, 3, 32, 32), variants=["fp16", "int8"], calib=image_dir,
        out_dir=out, mean=[0.5], std=[0.5], progress=messages.append,
    )  # fmt: skip
    assert model.training
    assert messages and all(isinstance(m, str) for m in messages)
    return result


def test_in_memory_module_exports_fp16_and_int8_with_typed_results(api_export: edgekit.ExportResult) -> None:
    result = api_export
    assert set(result.variants) == {"tflite_fp32", "tflite_fp16", "tflite_int8"}
    int8 = result.variants["tflite_int8"]
    assert int8.status == "ok" and int8.file is not None and int8.file.is_file()
    assert int8.parity is not None and isinstance(int8.parity.flips, int) and int8.parity.samples > 0
    assert int8.parity.sqnr_db > 10 and int8.delegation is not None and int8.delegation.partitions >= 1
    on_disk = json.loads((result.out_dir / "manifest.json").read_text())
    assert [v["name"] for v in on_disk["variants"]] == list(result.variants)
    assert on_disk["variants"][2]["parity"]["flips"] == int8.parity.flips
    # the PyTorch baseline lives in the export folder, so evaluate works on it later
    assert Path(on_disk["source"]["path"]) == (result.out_dir / "model.pt2").resolve()
    assert list(result.manifest.preprocess["mean"]) == [0.5, 0.5, 0.5]


def test_evaluate_and_bench_on_the_api_export(
    api_export: edgekit.ExportResult, image_dir: Path, tmp_path: Path
) -> None:
    report = edgekit.evaluate(api_export.out_dir, data=image_dir, out_dir=tmp_path / "eval", heatmaps=False)
    assert report.report_html.is_file() and report.meta.samples == 40
    assert set(report.metrics["variants"]) == {"pytorch_fp32", "tflite_fp32", "tflite_fp16", "tflite_int8"}
    bench = edgekit.bench(api_export.out_dir, device="emulator", out_dir=tmp_path / "bench", runs=3, warmup=1,
                          parity_samples=4, variants=["tflite_int8"], threads=[1])  # fmt: skip
    assert bench.ok and len(bench.cells) == 1 and bench.cells[0]["emulated"]


def test_exported_program_is_accepted(tmp_path: Path) -> None:
    import torch

    from tests.models import build_tiny

    program = torch.export.export(build_tiny(), (torch.zeros(1, 3, 32, 32),))
    result = edgekit.export(program, variants=[], out_dir=tmp_path, name="ep")
    assert list(result.variants) == ["tflite_fp32"] and result.all_passed
    assert (tmp_path / "ep.pt2").is_file() and (tmp_path / "ep.fp32.tflite").is_file()


def test_a_tolerance_given_to_the_api_is_the_bar(tmp_path: Path) -> None:
    """The CLI's --tol from Python: an FP32 bar of no score difference at all fails the FP32 file
    (a few 1e-9 off PyTorch), and the manifest keeps the bar it was judged by."""
    import torch

    from tests.models import build_tiny

    program = torch.export.export(build_tiny(), (torch.zeros(1, 3, 32, 32),))
    exact = Tolerance(max_score_diff=0.0, max_flip_rate=0.0)
    result = edgekit.export(program, variants=[], out_dir=tmp_path, name="ep", tolerances={"fp32": exact})
    assert not result.all_passed and result.variants["tflite_fp32"].status == "ok"
    on_disk = json.loads((tmp_path / "manifest.json").read_text())
    parity = on_disk["variants"][0]["parity"]
    assert parity["tolerance"]["max_score_diff"] == 0.0 and not parity["passed"], parity


@pytest.mark.parametrize(
    ("model", "kwargs", "match"),
    [
        (42, {}, "nn.Module, an ExportedProgram or a path"),
        ("tiny", {"variants": ["int3"]}, "unknown variant 'int3'"),
        ("module-without-example", {}, "example_input"),
        ("missing.pt2", {"variants": []}, "does not exist"),
        ("tiny", {"tolerances": {"int4": Tolerance()}}, r"tolerances\['int4'\] must be"),
        ("tiny", {"tolerances": {"int8": 0.01}}, r"tolerances\['int8'\] must be"),
    ],
)
def test_bad_input_raises_the_typed_error(
    model: object, kwargs: dict[str, object], match: str, tmp_path: Path
) -> None:
    from tests.models import build_tiny

    if model == "tiny":
        model = tmp_path / "m.pt2"
    elif model == "module-without-example":
        model = build_tiny()
    elif model == "missing.pt2":
        model = tmp_path / "missing.pt2"
    with pytest.raises(EdgekitError, match=match) as err:
        edgekit.export(model, out_dir=tmp_path / "o", **kwargs)  # type: ignore[arg-type]
    assert isinstance(err.value, (UsageError, EdgekitError))
