"""`edgekit eval --ray local` on a 2-worker local Ray cluster gives the local run's scores."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from edgekit.evaluation.evaluate import EvalSpec, evaluate

ray = pytest.importorskip("ray", reason="the ray extra (CI installs it: pip install 'edgekit[ray]')")


@pytest.fixture(scope="module")
def sample_export(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from edgekit.exporting import export
    from edgekit.sample.bundle import write_sample
    from edgekit.spec import ExportSpec, ModelSource

    root = tmp_path_factory.mktemp("ray-sample")
    files = write_sample(root, 80)
    export(ExportSpec(source=ModelSource(path=files.model), out_dir=root / "x",
                      variants=("tflite_fp32", "tflite_int8"), calib_dir=files.data, parity_samples=16))  # fmt: skip
    return root / "x", files.data


def _rows(out: Path) -> dict[str, dict[str, str]]:
    with open(out / "scores.csv", newline="") as fh:
        return {r["sample"]: r for r in csv.DictReader(fh)}


def test_ray_gives_the_local_scores(sample_export: tuple[Path, Path], tmp_path: Path) -> None:
    export_dir, data = sample_export
    spec = dict(export_dir=export_dir, data=data, heatmaps=False, chunk=16)
    evaluate(EvalSpec(out_dir=tmp_path / "local", **spec))  # type: ignore[arg-type]
    try:
        evaluate(EvalSpec(out_dir=tmp_path / "ray", ray="local", ray_workers=2, **spec))  # type: ignore[arg-type]
    finally:
        ray.shutdown()
    local, remote = _rows(tmp_path / "local"), _rows(tmp_path / "ray")
    assert set(local) == set(remote) and len(local) == 80
    for sample, row in local.items():
        other = remote[sample]
        assert {k: row[k] for k in ("video", "label", "method")} == {
            k: other[k] for k in ("video", "label", "method")
        }
        for name in ("pytorch_fp32", "tflite_fp32", "tflite_int8"):
            # the exported variants run the same file at batch 1: identical; the batched
            # baseline may differ in the last float bits with another batch composition
            tol = 0.0 if name != "pytorch_fp32" else 2e-6
            assert abs(float(row[name]) - float(other[name])) <= tol, (sample, name, row[name], other[name])
    assert (tmp_path / "ray" / "report.html").exists()


def test_an_unreachable_cluster_is_one_line(sample_export: tuple[Path, Path], tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from edgekit.cli import app

    export_dir, data = sample_export
    result = CliRunner().invoke(app, ["eval", str(export_dir), "--data", str(data), "--no-heatmaps",
                                      "--ray", "127.0.0.1:1", "-o", str(tmp_path / "r")])  # fmt: skip
    assert result.exit_code == 2 and "--ray 127.0.0.1:1" in result.output, result.output
    assert "Traceback" not in result.output
