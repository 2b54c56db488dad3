"""Phones over ADB (adbutils): device selection, quoted shell, verified transfers, device facts.

Selection order (adbutils style): an explicit ``--device`` (serial, profile name such
as ``pixel9`` matched on ``ro.product.model``, several comma-separated, or ``all``),
then ``$ANDROID_SERIAL``, then exactly one attached device; anything else is an
error that lists what is attached. Every argument sent to a device shell goes
through ``shlex.quote``; files go only under ``/data/local/tmp/edgekit/<run-id>/``.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import re
import shlex
import socket
from dataclasses import asdict, dataclass
from typing import Any

from edgekit.device.profiles import DeviceProfile, profile_for_model, profiles
from edgekit.device.protocol import DEVICE_ROOT
from edgekit.errors import (
    DeviceError,
    DeviceGoneError,
    DeviceSelectionError,
    DeviceTimeoutError,
    TransferError,
)

DEFAULT_ADB = "127.0.0.1:5037"


def parse_address(addr: str | None) -> tuple[str, int]:
    """``HOST:PORT`` (default the local adb server) -> (host, port)."""
    text = addr or os.environ.get("ADB_SERVER_SOCKET", "").removeprefix("tcp:") or DEFAULT_ADB
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise DeviceSelectionError(f"--adb {text!r} must look like HOST:PORT, e.g. 127.0.0.1:5037")
    return host or "127.0.0.1", int(port)


def quote(args: list[str] | tuple[str, ...]) -> str:
    """One shell line with every argument POSIX-quoted."""
    return " ".join(shlex.quote(str(a)) for a in args)


@dataclass(frozen=True)
class Attached:
    """One line of ``adb devices -l``."""

    serial: str
    state: str
    model: str


@dataclass(frozen=True)
class DeviceInfo:
    """Facts about a device, read from its properties, /proc and dumpsys."""

    serial: str
    model: str
    manufacturer: str
    soc: str
    android: str
    sdk: int
    abi: str
    ram_mb: int
    thermal_status: int | None
    fingerprint: str
    profile: str | None
    emulated: bool
    #: for an emulated device, what ran its app: "emulated arm64 (qemu, <cpu>)" or the host
    emulation: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Plain data."""
        return asdict(self)


@dataclass(frozen=True)
class ShellOutput:
    """Result of a device shell command."""

    code: int
    stdout: str
    stderr: str


class Adb:
    """A connection to one adb server (local or ``--adb HOST:PORT``)."""

    def __init__(self, address: str | None = None, emulated_serials: frozenset[str] = frozenset()) -> None:
        self.host, self.port = parse_address(address)
        self.emulated_serials = emulated_serials
        self._client: Any = None

    @property
    def client(self) -> Any:
        """The adbutils client; fails fast when no server answers (never starts one itself)."""
        if self._client is None:
            try:
                socket.create_connection((self.host, self.port), timeout=3).close()
            except OSError:
                raise DeviceSelectionError(
                    f"no adb server at {self.host}:{self.port}; start one with 'adb start-server' "
                    "(or pass --adb HOST:PORT, or --device emulator)"
                ) from None
            import adbutils

            self._client = adbutils.AdbClient(host=self.host, port=self.port, socket_timeout=30)
        return self._client

    def attached(self) -> list[Attached]:
        """Every device the server knows, whatever its state."""
        client = self.client
        try:
            infos = client.list(extended=True)
        except Exception as exc:
            raise DeviceError(f"adb server at {self.host}:{self.port} failed to list devices: {exc}") from exc
        return [Attached(i.serial, i.state, i.tags.get("model", "").replace("_", " ")) for i in infos]

    def select(self, wanted: str | None) -> list[str]:
        """Serials to use for ``wanted`` (see module docstring)."""
        attached = self.attached()
        listing = (
            ", ".join(f"{a.serial} ({a.state}{', ' + a.model if a.model else ''})" for a in attached)
            or "none"
        )
        usable = [a for a in attached if a.state == "device"]
        names = [w.strip() for w in (wanted or os.environ.get("ANDROID_SERIAL", "")).split(",") if w.strip()]
        if not names:
            if len(usable) == 1:
                return [usable[0].serial]
            if not attached:
                raise DeviceSelectionError(
                    "no Android device attached; plug one in with USB debugging on, or use --device emulator"
                )
            raise DeviceSelectionError(
                f"{len(usable)} usable devices attached ({listing}); pass --device SERIAL, a profile name, or all"
            )
        if names == ["all"]:
            if not usable:
                raise DeviceSelectionError(f"no usable device attached (attached: {listing})")
            return [a.serial for a in usable]
        chosen: list[str] = []
        for name in names:
            matches = [a for a in attached if a.serial == name]
            if not matches and name in profiles():
                model = profiles()[name].match_model.lower()
                matches = [a for a in attached if a.model.lower() == model]
            if not matches:
                raise DeviceSelectionError(f"no attached device matches {name!r} (attached: {listing})")
            for a in matches:
                if a.state == "unauthorized":
                    raise DeviceSelectionError(
                        f"{a.serial} is unauthorized: accept the USB debugging prompt on the phone"
                    )
                if a.state != "device":
                    raise DeviceSelectionError(
                        f"{a.serial} is {a.state}: reconnect it (replug USB or 'adb reconnect')"
                    )
                if a.serial not in chosen:
                    chosen.append(a.serial)
        return chosen

    def device(self, serial: str) -> Phone:
        """A handle on one device."""
        return Phone(self, serial)


class Phone:
    """One device: quoted shell with timeouts, verified push, pull, facts."""

    def __init__(self, adb: Adb, serial: str) -> None:
        self.adb = adb
        self.serial = serial
        self._dev = adb.client.device(serial)

    @property
    def emulated(self) -> bool:
        """True for the emulated Pixel 9."""
        return self.serial in self.adb.emulated_serials

    def _gone(self) -> bool:
        try:
            return self.serial not in {a.serial for a in self.adb.attached() if a.state == "device"}
        except DeviceError:
            return True

    def _wrap(self, exc: Exception, what: str) -> DeviceError:
        if self._gone():
            return DeviceGoneError(
                f"{self.serial} disconnected during {what}; reconnect it and rerun with --resume"
            )
        text = str(exc) or type(exc).__name__
        if "timeout" in type(exc).__name__.lower() or "timed out" in text:
            return DeviceTimeoutError(f"{self.serial}: {what} timed out")
        return DeviceError(f"{self.serial}: {what} failed: {text}")

    def shell(self, args: list[str], timeout: float = 60.0) -> ShellOutput:
        """Run ``args`` (each quoted) and return code and output."""
        try:
            r = self._dev.shell2(quote(args), timeout=timeout, v2=True)
        except Exception as exc:
            raise self._wrap(exc, f"'{args[0]}'") from exc
        return ShellOutput(int(r.returncode), r.stdout or "", r.stderr or "")

    def getprop(self, name: str) -> str:
        """One system property."""
        return self.shell(["getprop", name]).stdout.strip()

    def push(self, data: bytes, remote: str) -> None:
        """Push ``data`` under DEVICE_ROOT and verify size and sha256 on the device."""
        self.push_all([(data, remote)])

    def push_all(self, files: list[tuple[bytes, str]], batch: int = 64) -> None:
        """Push every ``(data, remote)`` under DEVICE_ROOT, checking each size, then verify the
        sha256 of ``batch`` files per ``sha256sum`` call (one shell round trip, not one per file:
        the 256 pinned parity inputs of an export are 256 files)."""
        for data, remote in files:
            self._push_one(data, remote)
        for start in range(0, len(files), batch):
            chunk = files[start : start + batch]
            out = self.shell(["sha256sum", *(remote for _, remote in chunk)])
            digests = {}
            for line in out.stdout.splitlines():
                parts = line.split(maxsplit=1)
                if len(parts) == 2:
                    digests[parts[1].strip()] = parts[0]
            for data, remote in chunk:
                if digests.get(remote) != hashlib.sha256(data).hexdigest():
                    raise TransferError(
                        f"{self.serial}: {remote} does not match its sha256 after push; check the cable/storage"
                    )

    def _push_one(self, data: bytes, remote: str) -> None:
        if not posixpath.normpath(remote).startswith(DEVICE_ROOT + "/"):
            raise TransferError(f"refusing to push outside {DEVICE_ROOT}: {remote}")
        try:
            self._dev.sync.push(data, remote)
            size = self._dev.sync.stat(remote).size
        except Exception as exc:
            if self._gone():
                raise DeviceGoneError(
                    f"{self.serial} disconnected during a push; reconnect it and rerun with --resume"
                ) from exc
            raise TransferError(
                f"{self.serial}: push of {posixpath.basename(remote)} failed ({exc}): the device refused the file; "
                f"check free space with 'adb shell df {DEVICE_ROOT}'"
            ) from exc
        if size != len(data):
            raise TransferError(f"{self.serial}: {remote} has {size} bytes after push, expected {len(data)}")

    def pull(self, remote: str) -> bytes:
        """The bytes of a device file."""
        try:
            return bytes(self._dev.sync.read_bytes(remote))
        except Exception as exc:
            raise self._wrap(exc, f"pull of {posixpath.basename(remote)}") from exc

    def exists(self, remote: str) -> bool:
        """True when ``remote`` exists on the device."""
        try:
            return bool(self._dev.sync.stat(remote).mtime is not None)
        except Exception as exc:
            raise self._wrap(exc, "stat") from exc

    def thermal_status(self) -> int | None:
        """``Thermal Status`` from dumpsys thermalservice (0 none .. 6 shutdown)."""
        m = re.search(r"Thermal Status:\s*(\d+)", self.shell(["dumpsys", "thermalservice"]).stdout)
        return int(m.group(1)) if m else None

    def governors(self) -> dict[str, str]:
        """CPU frequency governors by core."""
        try:
            cpus = sorted(
                f.path
                for f in self._dev.sync.list("/sys/devices/system/cpu")
                if re.fullmatch(r"cpu\d+", f.path)
            )
        except Exception:
            return {}
        paths = [f"/sys/devices/system/cpu/{c}/cpufreq/scaling_governor" for c in cpus]
        if not paths:
            return {}
        values = self.shell(["cat", *paths]).stdout.split()
        return dict(zip(cpus, values, strict=False))

    def info(self) -> DeviceInfo:
        """Model, SoC, Android/SDK, ABI, RAM and thermal status."""
        props = {}
        for line in self.shell(["getprop"]).stdout.splitlines():
            m = re.match(r"\[(.+?)\]: \[(.*)\]", line)
            if m:
                props[m.group(1)] = m.group(2)
        mem = re.search(r"MemTotal:\s*(\d+)", self.shell(["cat", "/proc/meminfo"]).stdout)
        model = props.get("ro.product.model", "")
        profile: DeviceProfile | None = profile_for_model(model)
        return DeviceInfo(
            serial=self.serial,
            model=model,
            manufacturer=props.get("ro.product.manufacturer", ""),
            soc=props.get("ro.soc.model", "") or props.get("ro.hardware", ""),
            android=props.get("ro.build.version.release", ""),
            sdk=int(props.get("ro.build.version.sdk", "0") or 0),
            abi=props.get("ro.product.cpu.abi", ""),
            ram_mb=int(mem.group(1)) // 1024 if mem else 0,
            thermal_status=self.thermal_status(),
            fingerprint=props.get("ro.build.fingerprint", ""),
            profile=profile.name if profile else None,
            emulated=self.emulated,
            emulation=props.get("ro.edgekit.emulation", "") if self.emulated else "",
        )
