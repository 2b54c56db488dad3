"""The app's Java core against the host: its JUnit suite passes and every result.json it
writes is accepted by the Python host parser (edgekit.device.protocol)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from edgekit.device.protocol import RunResult
from tests.conftest import require_system_tool

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "android_app" / "scripts" / "test-core.sh"
JARS = ("/usr/share/java/junit4.jar", "/usr/share/java/com.android.json.jar")


@pytest.fixture(scope="module")
def java_results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    missing = [j for j in JARS if not Path(j).exists()] + ([] if shutil.which("javac") else ["javac"])
    require_system_tool(
        f"the Java core needs {', '.join(missing)} (apt-get install junit4 libandroid-json-java)"
        if missing
        else None
    )
    out = tmp_path_factory.mktemp("android-core")
    run = subprocess.run([str(SCRIPT), str(out)], capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "OK (" in run.stdout
    return out / "results"


def test_java_results_parse_on_the_host(java_results: Path) -> None:
    files = sorted(java_results.glob("*.result.json"))
    assert len(files) >= 6
    parsed = {f.name.split(".")[0]: RunResult.from_json(f.read_text(encoding="utf-8")) for f in files}
    ok = parsed["ok-run"]
    assert ok.status == "ok" and len(ok.timings_ms) == 8 and ok.load_ms == pytest.approx(7.5)
    assert [t.file for t in ok.outputs] == ["out_000_0.bin", "out_001_0.bin", "out_002_0.bin"]
    assert ok.memory["after_runs"].pss_total_kb == 900 and ok.device["model"] == "Fake Phone"
    assert parsed["gpu-run"].accelerator_used == "cpu" and parsed["gpu-run"].fallback_reason
    assert {parsed[k].error_kind for k in ("load-fail", "short-input", "mismatch", "oom", "bad-config")} == {
        "model_load", "bad_config", "input_mismatch", "out_of_memory",
    }  # fmt: skip
