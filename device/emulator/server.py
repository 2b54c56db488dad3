"""A fake ADB server on loopback: the smart-socket protocol adbutils (and the adb client) speak.

Requests are ``%04x`` + text; answers are ``OKAY``/``FAIL`` (+ ``%04x`` + text). After a
transport request (``host:transport:S``, ``host:tport:serial:S``) the same
connection carries one device service: ``shell:``, ``shell,v2:`` (packets: 1 stdout,
2 stderr, 3 exit code) or ``sync:`` (STAT/LIST/SEND/RECV/QUIT, v1 only). It binds
to 127.0.0.1 only.
"""

from __future__ import annotations

import contextlib
import socket
import socketserver
import struct
import threading
from collections.abc import Sequence

from edgekit.device.emulator.vdevice import VirtualDevice

SERVER_VERSION = 41
FEATURES = "shell_v2,cmd,fixed_push_mkdir"
_CHUNK = 64 * 1024


class _Closed(Exception):
    pass


def _block(text: str | bytes) -> bytes:
    data = text.encode() if isinstance(text, str) else text
    return f"{len(data):04x}".encode() + data


class _Handler(socketserver.BaseRequestHandler):
    server: _Server

    def _read(self, n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            chunk = self.request.recv(n - len(buf))
            if not chunk:
                raise _Closed
            buf += chunk
        return buf

    def _send(self, data: bytes) -> None:
        self.request.sendall(data)

    def _fail(self, msg: str) -> None:
        self._send(b"FAIL" + _block(msg))

    def handle(self) -> None:
        with contextlib.suppress(_Closed, ConnectionError, OSError):  # the client hung up
            self._serve()

    def _request(self) -> str:
        size = int(self._read(4), 16)
        return self._read(size).decode("utf-8", "replace")

    def _serve(self) -> None:
        req = self._request()
        owner = self.server.owner
        if req == "host:version":
            self._send(b"OKAY" + _block(f"{SERVER_VERSION:04x}"))
        elif req in ("host:devices", "host:devices-l"):
            self._send(b"OKAY" + _block(owner.devices_text(long=req.endswith("-l"))))
        elif req == "host:features":
            self._send(b"OKAY" + _block(FEATURES))
        elif req == "host:kill":
            self._send(b"OKAY")
        elif req.startswith("host-serial:"):
            serial, _, cmd = req[len("host-serial:") :].rpartition(":")
            dev = owner.find(serial)
            if dev is None:
                self._fail(f"device '{serial}' not found")
            elif cmd == "features":
                self._send(b"OKAY" + _block(FEATURES))
            elif cmd == "get-state":
                self._send(b"OKAY" + _block(dev.state))
            elif cmd == "get-serialno":
                self._send(b"OKAY" + _block(dev.serial))
            else:
                self._fail(f"unsupported: {cmd}")
        elif req.startswith(("host:transport:", "host:tport:serial:")):
            serial = req.rsplit(":", 1)[1]
            dev = owner.find(serial)
            if dev is None:
                self._fail(f"device '{serial}' not found")
                return
            if dev.state != "device":
                self._fail(f"device {dev.state}")
                return
            self._send(b"OKAY")
            if req.startswith("host:tport:"):
                self._send(struct.pack("<Q", dev.transport_id))
            self._device_service(dev, self._request())
        else:
            self._fail(f"unknown host service: {req}")

    def _device_service(self, dev: VirtualDevice, req: str) -> None:
        if not dev.connected:
            raise _Closed
        if req.startswith("shell,v2:"):
            self._send(b"OKAY")
            r = dev.shell(req[len("shell,v2:") :])
            if r.stdout:
                self._send(b"\x01" + struct.pack("<I", len(r.stdout)) + r.stdout)
            if r.stderr:
                self._send(b"\x02" + struct.pack("<I", len(r.stderr)) + r.stderr)
            self._send(b"\x03" + struct.pack("<I", 1) + bytes([r.code & 0xFF]))
        elif req.startswith("shell:"):
            self._send(b"OKAY")
            r = dev.shell(req[len("shell:") :])
            self._send(r.stdout + r.stderr)
        elif req == "sync:":
            self._send(b"OKAY")
            self._sync(dev)
        else:
            self._fail(f"unsupported device service: {req.split(':', 1)[0]}")

    def _sync(self, dev: VirtualDevice) -> None:
        while True:
            cmd = self._read(4)
            (size,) = struct.unpack("<I", self._read(4))
            arg = self._read(size).decode("utf-8", "replace")
            if cmd == b"QUIT":
                return
            if not dev.connected:
                raise _Closed
            if cmd == b"STAT":
                self._stat(dev, arg)
            elif cmd == b"LIST":
                self._list(dev, arg)
            elif cmd == b"SEND":
                self._recv_file(dev, arg)
            elif cmd == b"RECV":
                self._send_file(dev, arg)
            else:
                self._send(b"FAIL" + struct.pack("<I", 11) + b"bad command")
                return

    def _stat(self, dev: VirtualDevice, path: str) -> None:
        try:
            p = dev.path(path)
            st = p.stat()
            mode = (0o40000 if p.is_dir() else 0o100000) | 0o644
            self._send(b"STAT" + struct.pack("<III", mode, st.st_size & 0xFFFFFFFF, int(st.st_mtime)))
        except (OSError, PermissionError):
            self._send(b"STAT" + struct.pack("<III", 0, 0, 0))

    def _list(self, dev: VirtualDevice, path: str) -> None:
        try:
            entries = sorted(dev.path(path).iterdir())
        except (OSError, PermissionError):
            entries = []
        for e in entries:
            st = e.stat()
            mode = (0o40000 if e.is_dir() else 0o100000) | 0o644
            name = e.name.encode()
            self._send(b"DENT" + struct.pack("<IIII", mode, st.st_size, int(st.st_mtime), len(name)) + name)
        self._send(b"DONE" + struct.pack("<IIII", 0, 0, 0, 0))

    def _recv_file(self, dev: VirtualDevice, arg: str) -> None:
        path = arg.rsplit(",", 1)[0]
        chunks: list[bytes] = []
        while True:
            kind = self._read(4)
            (n,) = struct.unpack("<I", self._read(4))
            if kind == b"DONE":
                break
            if kind != b"DATA":
                raise _Closed
            chunks.append(self._read(n))
        try:
            error = dev.receive_file(path, b"".join(chunks))
        except PermissionError as exc:
            error = str(exc)
        if error:
            self._send(b"FAIL" + struct.pack("<I", len(error)) + error.encode())
        else:
            self._send(b"OKAY" + struct.pack("<I", 0))

    def _send_file(self, dev: VirtualDevice, path: str) -> None:
        try:
            data = dev.path(path).read_bytes()
        except (OSError, PermissionError):
            msg = b"No such file or directory"
            self._send(b"FAIL" + struct.pack("<I", len(msg)) + msg)
            return
        for i in range(0, len(data), _CHUNK):
            piece = data[i : i + _CHUNK]
            self._send(b"DATA" + struct.pack("<I", len(piece)) + piece)
        self._send(b"DONE" + struct.pack("<I", 0))


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    owner: FakeAdbServer


class FakeAdbServer:
    """Serves ``devices`` on 127.0.0.1:``port`` (0 picks a free port) from a background thread."""

    def __init__(self, devices: Sequence[VirtualDevice], port: int = 0) -> None:
        self.devices = list(devices)
        for i, d in enumerate(self.devices, start=1):
            d.transport_id = i
        self._server = _Server(("127.0.0.1", port), _Handler)
        self._server.owner = self
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The TCP port the server listens on."""
        return int(self._server.server_address[1])

    @property
    def address(self) -> str:
        """``127.0.0.1:PORT``, as ``--adb`` takes it."""
        return f"127.0.0.1:{self.port}"

    def find(self, serial: str) -> VirtualDevice | None:
        """The connected device with ``serial``."""
        return next((d for d in self.devices if d.serial == serial and d.connected), None)

    def devices_text(self, long: bool) -> str:
        """The body of ``host:devices(-l)``."""
        lines = []
        for d in self.devices:
            if not d.connected:
                continue
            line = f"{d.serial}\t{d.state}"
            if long:
                model = d.props.get("ro.product.model", "").replace(" ", "_")
                device = d.props.get("ro.product.device", "")
                line = f"{d.serial:<22} {d.state} product:{device} model:{model} device:{device} transport_id:{d.transport_id}"
            lines.append(line)
        return "".join(line + "\n" for line in lines)

    def start(self) -> FakeAdbServer:
        """Serve in a daemon thread; returns self."""
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-adb", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, end running app processes and close the socket."""
        for d in self.devices:
            d.kill_app()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FakeAdbServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _selftest_connect(port: int) -> bool:
    """True when something answers on the port (used by tests and `wait` loops)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False
