"""Run inside a network namespace that has only loopback (see test_real_adb.py).

Starts the emulated device's ADB wire listener, a real adb server (Debian's `adb`) with
mDNS off, attaches the device with `adb connect`, checks shell/push/pull through the
real adb client, then runs `edgekit bench` through adbutils against that real server.
Prints one JSON line with what it saw.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from edgekit.device.adb import Adb
from edgekit.device.bench import BenchSpec, bench
from edgekit.device.emulator import VirtualDevice
from edgekit.device.emulator.wire import AdbWireListener


def main(export_dir: Path, out_dir: Path) -> dict[str, Any]:
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    home = tempfile.mkdtemp()
    env = {
        **os.environ,
        "HOME": home,
        "ADB_MDNS": "0",
        "ADB_MDNS_AUTO_CONNECT": "0",
        "ANDROID_SDK_HOME": home,
    }
    seen: dict[str, Any] = {}

    def adb(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["adb", "-P", "5037", *args], capture_output=True, text=True, env=env, timeout=60
        )

    device = VirtualDevice(Path(tempfile.mkdtemp()), serial="wire-device")
    listener = AdbWireListener(device).start()
    serial = f"127.0.0.1:{listener.port}"
    try:
        adb("start-server")
        seen["connect"] = adb("connect", serial).stdout.strip()
        for _ in range(50):
            if f"{serial}\tdevice" in adb("devices").stdout:
                break
            time.sleep(0.1)
        seen["devices"] = adb("devices", "-l").stdout
        seen["model"] = adb("-s", serial, "shell", "getprop", "ro.product.model").stdout.strip()
        blob = os.urandom(200_000)
        src = Path(home) / "blob.bin"
        src.write_bytes(blob)
        seen["push_rc"] = adb("-s", serial, "push", str(src), "/data/local/tmp/edgekit/t/blob.bin").returncode
        seen["pull_rc"] = adb(
            "-s", serial, "pull", "/data/local/tmp/edgekit/t/blob.bin", str(src) + ".2"
        ).returncode
        seen["roundtrip"] = Path(str(src) + ".2").read_bytes() == blob
        seen["sha_on_device"] = adb(
            "-s", serial, "shell", "sha256sum /data/local/tmp/edgekit/t/blob.bin"
        ).stdout.split()[0]
        seen["sha_host"] = hashlib.sha256(blob).hexdigest()
        spec = BenchSpec(target=export_dir, out_dir=out_dir, device=serial, runs=3, warmup=0, threads=(1,),
                         parity_samples=4, variants=("tflite_int8",))  # fmt: skip
        report = bench(spec, adb=Adb("127.0.0.1:5037"))
        seen["cells"] = [
            {k: c.get(k) for k in ("status", "device", "parity_ok", "error")} for c in report.cells
        ]
    finally:
        adb("kill-server")
        listener.stop()
    return seen


if __name__ == "__main__":
    result = main(Path(sys.argv[1]), Path(sys.argv[2]))
    print(json.dumps(result))
