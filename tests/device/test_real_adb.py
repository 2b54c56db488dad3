"""Integration with the real adb server (Debian's `adb`): the emulated device attaches with
`adb connect` over the ADB wire protocol, and `edgekit bench` runs through that server.

Everything runs inside `unshare -n` (a network namespace with nothing but loopback), so
the adb server cannot look past the machine. `.ci/run` installs `adb`; in CI a missing
`adb` or `unshare` fails this test instead of skipping it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import require_system_tool

ROOT = Path(__file__).resolve().parents[2]


def _available() -> str | None:
    if shutil.which("adb") is None:
        return "Debian's adb is not installed (apt-get install adb)"
    if shutil.which("unshare") is None or os.geteuid() != 0:
        return "needs root and unshare for a loopback-only network namespace"
    return None


@pytest.mark.real_adb
def test_real_adb_server_drives_the_emulated_device(tiny_export: Path, tmp_path: Path) -> None:
    require_system_tool(_available())
    result = subprocess.run(
        ["unshare", "-n", sys.executable, "-m", "tests.device.real_adb_scenario", str(tiny_export), str(tmp_path)],
        capture_output=True, text=True, timeout=300, cwd=ROOT, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen["connect"].startswith("connected to 127.0.0.1:")
    assert "model:Pixel_9" in seen["devices"]
    assert seen["model"] == "Pixel 9"
    assert seen["push_rc"] == 0 and seen["pull_rc"] == 0 and seen["roundtrip"]
    assert seen["sha_on_device"] == seen["sha_host"]
    assert [c["status"] for c in seen["cells"]] == ["ok"]
    assert seen["cells"][0]["device"].startswith("127.0.0.1:") and seen["cells"][0]["parity_ok"]
