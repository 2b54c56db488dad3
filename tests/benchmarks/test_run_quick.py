"""CI's smoke of the benchmark runner: `benchmarks/run.py --quick` on one tiny model, end to end."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_quick_benchmark_writes_every_table(tmp_path: Path) -> None:
    run = subprocess.run([sys.executable, "benchmarks/run.py", "--quick", "--out", str(tmp_path)], cwd=ROOT,
                         capture_output=True, text=True, timeout=900, check=False)  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    for name in (
        "export.csv",
        "size.csv",
        "model_benchmark_host.csv",
        "accuracy.csv",
        "peers.csv",
        "harness.csv",
    ):
        rows = list(csv.DictReader((tmp_path / name).open(encoding="utf-8")))
        assert rows, name
    latency = list(csv.DictReader((tmp_path / "model_benchmark_host.csv").open()))
    assert {r["variant"] for r in latency} >= {"torch_eager_fp32", "tflite_fp32", "tflite_int8", "onnx_int8"}
    assert {r["threads"] for r in latency} == {"1", "2"} and all(
        float(r["latency_ms_median"]) > 0 for r in latency
    )
    sizes = {r["variant"]: r for r in csv.DictReader((tmp_path / "size.csv").open())}
    assert int(sizes["tflite_int8"]["size_bytes"]) < int(sizes["tflite_fp32"]["size_bytes"])
    peers = [r["recipe"] for r in csv.DictReader((tmp_path / "peers.csv").open())]
    assert any("dynamic_wi8_afp32" in p for p in peers) and any("onnxruntime" in p for p in peers)
    exports = list(csv.DictReader((tmp_path / "export.csv").open()))
    assert all(float(r["peak_rss_mb"]) > 100 for r in exports if r["peak_rss_mb"])
    assert "edgekit benchmarks (quick smoke)" in (tmp_path / "summary.md").read_text()
