"""Fixtures for the device layer: fake ADB servers with virtual devices, and a tiny export to bench."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from edgekit.device.adb import Adb
from edgekit.device.emulator import FakeAdbServer, Faults, VirtualDevice

# adbutils would start a real adb server when it cannot connect; never let it.
os.environ["ADBUTILS_ADB_PATH"] = "/bin/false"


class Lab:
    """A fake ADB server with some virtual devices."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.servers: list[FakeAdbServer] = []

    def start(self, *devices: VirtualDevice) -> tuple[FakeAdbServer, Adb]:
        server = FakeAdbServer(list(devices)).start()
        self.servers.append(server)
        return server, Adb(server.address, emulated_serials=frozenset(d.serial for d in devices))

    def device(self, serial: str = "emu-1", faults: Faults | None = None, **kw: object) -> VirtualDevice:
        return VirtualDevice(self.root / serial, serial=serial, faults=faults, **kw)  # type: ignore[arg-type]


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    lab = Lab(tmp_path / "devices")
    yield lab
    for s in lab.servers:
        s.stop()


@pytest.fixture(scope="session")
def tiny_export(tmp_path_factory: pytest.TempPathFactory, image_dir: Path) -> Path:
    """An export folder of the tiny model: FP32, INT8 and INT8 with int8 I/O."""
    from edgekit.exporting import export
    from edgekit.spec import ExportSpec, ModelSource
    from tests.conftest import TINY_ARCH

    out = tmp_path_factory.mktemp("tiny-export")
    export(
        ExportSpec(
            source=ModelSource(arch=TINY_ARCH, arch_kwargs={"width": 16}),
            out_dir=out,
            variants=("tflite_fp32", "tflite_int8", "tflite_int8_io"),
            input_shape=(1, 3, 32, 32),
            calib_dir=image_dir,
            calib_samples=24,
            parity_samples=8,
            name="tiny",
        )
    )
    return out
