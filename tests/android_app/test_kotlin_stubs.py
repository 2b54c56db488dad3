"""The app's Kotlin is compiled against stubs that behave like the real runtime APIs: a call the
real API does not have, or a null the real API returns and the code ignores, fails `make kotlin`.

Every stubbed class names the real source it was checked against (STUB_SOURCES); the test
checks the stubs say so, then compiles a copy of the app with two deliberate mistakes."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.conftest import require_system_tool

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "android_app"

#: stub file -> the real source (repository, path, version) its signatures, nullability and
#: exceptions were read from
STUB_SOURCES = {
    "ai/onnxruntime/OnnxTensor.java": "microsoft/onnxruntime java/src/main/java/ai/onnxruntime/OnnxTensor.java",
    "ai/onnxruntime/TensorInfo.java": "microsoft/onnxruntime java/src/main/java/ai/onnxruntime/TensorInfo.java",
    "ai/onnxruntime/OnnxJavaType.java": "microsoft/onnxruntime java/src/main/java/ai/onnxruntime/OnnxJavaType.java",
    "ai/onnxruntime/OnnxValue.java": "microsoft/onnxruntime java/src/main/java/ai/onnxruntime/OnnxValue.java",
    "org/pytorch/executorch/Module.java": "pytorch/executorch Module.kt v1.4.1",
    "org/pytorch/executorch/Tensor.java": "pytorch/executorch Tensor.kt v1.4.1",
    "org/pytorch/executorch/EValue.java": "pytorch/executorch EValue.kt v1.4.1",
    "org/pytorch/executorch/DType.java": "pytorch/executorch DType.kt v1.4.1",
    "org/tensorflow/lite/Interpreter.java": "google-ai-edge/LiteRT tflite/java/src/main/java/org/tensorflow/lite/Interpreter.java v2.2.0",
}


def _stub_members() -> Any:
    spec = importlib.util.spec_from_file_location("stub_members", APP / "scripts" / "stub_members.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_stubbed_member_is_listed_with_the_real_source_it_was_checked_against() -> None:
    """stubs/CHECKED.json lists each stub's members with the repository, path and version read;
    a member added to a stub without an entry fails here (scripts/stub_members.py --verify looks
    the names up in clones of LiteRT and ExecuTorch)."""
    tool = _stub_members()
    checked = json.loads((APP / "stubs" / "CHECKED.json").read_text())
    assert sorted(checked) == tool.stub_files()
    for stub, entry in checked.items():
        listed = sorted({m for source in entry["sources"] for m in source["members"]})
        assert listed == tool.members(APP / "stubs" / stub), stub
        for source in entry["sources"]:
            assert source["repo"].count("/") == 1 and source["paths"], stub
            assert source["ref"] or source.get("read"), f"{stub}: neither a version nor how it was read"
    # what the extractor must see, or the listing would be vacuous
    assert {"enableProfiling", "endProfiling"} <= set(
        tool.members(APP / "stubs/java/ai/onnxruntime/OrtSession.java")
    )
    assert "CPU_DISABLED" in tool.members(APP / "stubs/java/ai/onnxruntime/providers/NNAPIFlags.java")
    assert "FLOAT16" not in tool.members(
        APP / "stubs/java/org/tensorflow/lite/DataType.java"
    )  # not in v2.2.0


def test_each_checked_stub_names_its_real_source() -> None:
    for stub, source in STUB_SOURCES.items():
        text = (APP / "stubs" / "java" / stub).read_text()
        name = source.split()[1].rsplit("/", 1)[-1]
        assert name in text, (stub, source)


def test_a_call_the_real_api_lacks_or_an_ignored_null_fails_the_build(tmp_path: Path) -> None:
    missing = [t for t in ("java", "javac") if shutil.which(t) is None]
    if not Path("/usr/share/java/com.android.json.jar").is_file():
        missing.append("libandroid-json-java")
    require_system_tool(", ".join(missing) + " not installed" if missing else None)
    app = tmp_path / "android_app"
    shutil.copytree(APP, app, ignore=shutil.ignore_patterns("build", ".gradle"))
    out = tmp_path / "out"
    out.mkdir()
    cached = ROOT / "build" / "android-kotlin" / "kotlin-wheel"
    if cached.is_dir():  # the compiler unpacked by `make kotlin`: no second download
        os.symlink(cached, out / "kotlin-wheel")
    ort = app / "app/src/main/java/dev/edgekit/bench/OrtEngine.kt"
    text = ort.read_text()
    # 1: the real OnnxTensor.getFloatBuffer() returns null for a non-float tensor
    wrong = text.replace('value.floatBuffer ?: throw EngineException("inference", "output $i has no float data")',
                         "value.floatBuffer", 1)  # fmt: skip
    assert wrong != text
    ort.write_text(wrong)
    et = app / "app/src/main/java/dev/edgekit/bench/ExecuTorchEngine.kt"
    # 2: executorch-android's Module has loadMethod(String), not loadMethods
    et.write_text(et.read_text().replace('it.loadMethod("forward")', 'it.loadMethods("forward")', 1))
    run = subprocess.run(["bash", str(app / "scripts" / "compile-kotlin.sh"), str(out), sys.executable],
                         capture_output=True, text=True, timeout=900, check=False)  # fmt: skip
    assert run.returncode != 0
    errors = run.stdout + run.stderr
    assert "OrtEngine.kt" in errors and "FloatBuffer?" in errors, errors[-3000:]
    assert "ExecuTorchEngine.kt" in errors and "loadMethods" in errors, errors[-3000:]
