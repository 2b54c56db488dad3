"""The package's shape: cheap import, the exporters guard, the console script."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "litert_torch", "ai_edge_litert", "ai_edge_quantizer", "onnxruntime", "onnx", "sklearn")


def _run(code: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, check=False)


def test_import_and_cli_do_not_load_heavy_modules() -> None:
    code = (
        "import sys, edgekit, edgekit.cli, edgekit.exporters, edgekit.spec, edgekit.exporting;"
        "print(','.join(m for m in " + repr(HEAVY) + " if m in sys.modules))"
    )
    result = _run(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""


def test_help_is_fast() -> None:
    exe = Path(sys.executable).with_name("edgekit")
    start = time.perf_counter()
    result = subprocess.run([str(exe), "--help"], capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    assert result.returncode == 0 and "export" in result.stdout
    assert elapsed < 2.0  # ~0.3 s measured; generous for a loaded CI machine


def test_top_level_exporters_import_is_refused() -> None:
    result = _run("import exporters")  # repo root is on sys.path here, so the folder is visible
    assert result.returncode != 0
    assert "import edgekit.exporters" in result.stderr


def test_exporters_resolve_inside_edgekit() -> None:
    import edgekit.exporters as ex

    assert Path(ex.__file__).parent == ROOT / "exporters"
    names = list(ex.available())
    assert names[:2] == ["tflite_fp32", "tflite_fp16"] and "onnx_int8" in names
