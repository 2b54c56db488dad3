"""Device selection, quoting and verified transfers against the fake ADB server."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgekit.device.emulator import Faults
from edgekit.errors import DeviceSelectionError, TransferError
from tests.device.conftest import Lab


def test_no_server_is_a_clear_error() -> None:
    from edgekit.device.adb import Adb

    with pytest.raises(DeviceSelectionError, match="no adb server at 127.0.0.1:9"):
        Adb("127.0.0.1:9").attached()


def test_bad_address() -> None:
    from edgekit.device.adb import Adb

    with pytest.raises(DeviceSelectionError, match="HOST:PORT"):
        Adb("nonsense")


def test_selection_rules(lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANDROID_SERIAL", raising=False)
    _, adb = lab.start(lab.device("a"), lab.device("b"))
    with pytest.raises(DeviceSelectionError, match=r"2 usable devices attached \(a \(device, Pixel 9\), b"):
        adb.select(None)
    assert adb.select("b") == ["b"]
    assert adb.select("all") == ["a", "b"]
    assert adb.select("pixel9") == ["a", "b"]  # a profile name matches ro.product.model
    assert adb.select("b,a") == ["b", "a"]
    monkeypatch.setenv("ANDROID_SERIAL", "a")
    assert adb.select(None) == ["a"]
    with pytest.raises(DeviceSelectionError, match="no attached device matches 'zz'"):
        adb.select("zz")


def test_single_device_is_picked(lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANDROID_SERIAL", raising=False)
    _, adb = lab.start(lab.device("only"))
    assert adb.select(None) == ["only"]


def test_no_device_and_bad_states(lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANDROID_SERIAL", raising=False)
    _, empty = lab.start()
    with pytest.raises(DeviceSelectionError, match="no Android device attached"):
        empty.select(None)
    _, adb = lab.start(lab.device("u", state="unauthorized"), lab.device("o", state="offline"))
    with pytest.raises(DeviceSelectionError, match="accept the USB debugging prompt"):
        adb.select("u")
    with pytest.raises(DeviceSelectionError, match="is offline"):
        adb.select("o")
    with pytest.raises(DeviceSelectionError, match=r"0 usable devices attached \(u \(unauthorized"):
        adb.select(None)


def test_arguments_are_quoted(lab: Lab) -> None:
    _, adb = lab.start(lab.device())
    phone = adb.device("emu-1")
    tricky = ["a; rm -rf /", "$(reboot)", "it's", "*"]
    out = phone.shell(["echo", *tricky])
    assert out.stdout == " ".join(tricky) + "\n"
    assert out.code == 0


def test_device_info(lab: Lab) -> None:
    _, adb = lab.start(lab.device())
    info = adb.device("emu-1").info()
    assert (info.model, info.soc, info.sdk, info.abi, info.profile) == (
        "Pixel 9",
        "Tensor G4",
        35,
        "arm64-v8a",
        "pixel9",
    )
    assert info.ram_mb > 11000 and info.thermal_status == 0 and info.emulated
    assert adb.device("emu-1").governors()["cpu0"] == "sched_pixel"


def test_push_is_verified(lab: Lab) -> None:
    dev = lab.device(faults=Faults(corrupt_push=True))
    _, adb = lab.start(dev)
    phone = adb.device("emu-1")
    with pytest.raises(TransferError, match="after push"):
        phone.push(b"x" * 100, "/data/local/tmp/edgekit/r/model.tflite")
    dev.faults.corrupt_push = False
    phone.push(b"x" * 100, "/data/local/tmp/edgekit/r/model.tflite")
    assert phone.pull("/data/local/tmp/edgekit/r/model.tflite") == b"x" * 100


def test_push_failures(lab: Lab) -> None:
    dev = lab.device(faults=Faults(disk_limit_bytes=50))
    _, adb = lab.start(dev)
    phone = adb.device("emu-1")
    with pytest.raises(TransferError, match="push of model.tflite failed.*free space"):
        phone.push(b"x" * 100, "/data/local/tmp/edgekit/r/model.tflite")
    dev.faults = Faults(push_fail=True)
    with pytest.raises(TransferError, match="push of a.bin failed"):
        phone.push(b"x", "/data/local/tmp/edgekit/r/a.bin")
    with pytest.raises(TransferError, match="refusing to push outside"):
        phone.push(b"x", "/data/local/tmp/edgekit/../../evil")


def test_emulator_sandbox_refuses_escape(lab: Lab, tmp_path: Path) -> None:
    dev = lab.device()
    assert dev.path("/../../etc/passwd") == dev.root / "etc" / "passwd"  # ".." stops at the device root
    (dev.root / "data" / "link").symlink_to(tmp_path)
    with pytest.raises(PermissionError, match="outside the device"):
        dev.path("/data/link/x")
