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
from typing import Protocol

from edgekit.device.emulator.vdevice import VirtualDevice

SERVER_VERSION = 41
FEATURES = "shell_v2,cmd,fixed_push_mkdir"
_CHUNK = 64 * 1024


class ConnectionClosed(Exception):
    """The peer closed the stream."""


class Channel(Protocol):
    """A byte stream to the host: the smart-socket connection, or one ADB wire stream."""

    def read(self, n: int) -> bytes:
        """Exactly ``n`` bytes (raises ConnectionClosed at end of stream)."""

    def send(self, data: bytes) -> None:
        """Send bytes to the host."""


def recv_exact(sock: socket.socket, n: int) -> bytes:
    """Exactly ``n`` bytes from ``sock``; ConnectionClosed when the peer hangs up first."""
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionClosed
        buf += chunk
    return buf


def _fail(ch: Channel, msg: str) -> None:
    ch.send(b"FAIL" + _block(msg))


def _block(text: str | bytes) -> bytes:
    data = text.encode() if isinstance(text, str) else text
    return f"{len(data):04x}".encode() + data


def serve_device_service(dev: VirtualDevice, req: str, ch: Channel, ack: bool = True) -> bool:
    """Serve one device service (``shell[,v2][,raw]:``, ``sync:``) over ``ch``.

    ``ack`` sends the smart-socket ``OKAY`` first (the ADB wire protocol acknowledges
    with a message instead). Returns False for an unknown service.
    """
    if not dev.connected:
        raise ConnectionClosed
    head, _, command = req.partition(":")
    options = head.split(",")
    if options[0] == "shell":
        if ack:
            ch.send(b"OKAY")
        r = dev.shell(command)
        if "v2" in options:
            if r.stdout:
                ch.send(b"\x01" + struct.pack("<I", len(r.stdout)) + r.stdout)
            if r.stderr:
                ch.send(b"\x02" + struct.pack("<I", len(r.stderr)) + r.stderr)
            ch.send(b"\x03" + struct.pack("<I", 1) + bytes([r.code & 0xFF]))
        else:
            ch.send(r.stdout + r.stderr)
        return True
    if req == "sync:":
        if ack:
            ch.send(b"OKAY")
        _sync(dev, ch)
        return True
    if ack:
        _fail(ch, f"unsupported device service: {head}")
    return False


def _sync(dev: VirtualDevice, ch: Channel) -> None:
    while True:
        cmd = ch.read(4)
        (size,) = struct.unpack("<I", ch.read(4))
        arg = ch.read(size).decode("utf-8", "replace")
        if cmd == b"QUIT":
            return
        if not dev.connected:
            raise ConnectionClosed
        if cmd == b"STAT":
            _stat(ch, dev, arg)
        elif cmd == b"LIST":
            _list(ch, dev, arg)
        elif cmd == b"SEND":
            _recv_file(ch, dev, arg)
        elif cmd == b"RECV":
            _send_file(ch, dev, arg)
        else:
            ch.send(b"FAIL" + struct.pack("<I", 11) + b"bad command")
            return


def _stat(ch: Channel, dev: VirtualDevice, path: str) -> None:
    try:
        p = dev.path(path)
        st = p.stat()
        mode = (0o40000 if p.is_dir() else 0o100000) | 0o644
        ch.send(b"STAT" + struct.pack("<III", mode, st.st_size & 0xFFFFFFFF, int(st.st_mtime)))
    except (OSError, PermissionError):
        ch.send(b"STAT" + struct.pack("<III", 0, 0, 0))


def _list(ch: Channel, dev: VirtualDevice, path: str) -> None:
    try:
        entries = sorted(dev.path(path).iterdir())
    except (OSError, PermissionError):
        entries = []
    for e in entries:
        st = e.stat()
        mode = (0o40000 if e.is_dir() else 0o100000) | 0o644
        name = e.name.encode()
        ch.send(b"DENT" + struct.pack("<IIII", mode, st.st_size, int(st.st_mtime), len(name)) + name)
    ch.send(b"DONE" + struct.pack("<IIII", 0, 0, 0, 0))


def _recv_file(ch: Channel, dev: VirtualDevice, arg: str) -> None:
    path = arg.rsplit(",", 1)[0]
    chunks: list[bytes] = []
    while True:
        kind = ch.read(4)
        (n,) = struct.unpack("<I", ch.read(4))
        if kind == b"DONE":
            break
        if kind != b"DATA":
            raise ConnectionClosed
        chunks.append(ch.read(n))
    try:
        error = dev.receive_file(path, b"".join(chunks))
    except PermissionError as exc:
        error = str(exc)
    if error:
        ch.send(b"FAIL" + struct.pack("<I", len(error)) + error.encode())
    else:
        ch.send(b"OKAY" + struct.pack("<I", 0))


def _send_file(ch: Channel, dev: VirtualDevice, path: str) -> None:
    try:
        data = dev.path(path).read_bytes()
    except (OSError, PermissionError):
        msg = b"No such file or directory"
        ch.send(b"FAIL" + struct.pack("<I", len(msg)) + msg)
        return
    for i in range(0, len(data), _CHUNK):
        piece = data[i : i + _CHUNK]
        ch.send(b"DATA" + struct.pack("<I", len(piece)) + piece)
    ch.send(b"DONE" + struct.pack("<I", 0))


class _Handler(socketserver.BaseRequestHandler):
    server: _Server

    def read(self, n: int) -> bytes:
        """Exactly ``n`` bytes from the client (raises ConnectionClosed at EOF)."""
        return recv_exact(self.request, n)

    def send(self, data: bytes) -> None:
        """Send bytes to the client."""
        self.request.sendall(data)

    def handle(self) -> None:
        with contextlib.suppress(ConnectionClosed, ConnectionError, OSError):  # the client hung up
            self._serve()

    def _request(self) -> str:
        size = int(self.read(4), 16)
        return self.read(size).decode("utf-8", "replace")

    def _serve(self) -> None:
        req = self._request()
        owner = self.server.owner
        if req == "host:version":
            self.send(b"OKAY" + _block(f"{SERVER_VERSION:04x}"))
        elif req in ("host:devices", "host:devices-l"):
            self.send(b"OKAY" + _block(owner.devices_text(long=req.endswith("-l"))))
        elif req == "host:features":
            self.send(b"OKAY" + _block(FEATURES))
        elif req == "host:kill":
            self.send(b"OKAY")
        elif req.startswith("host-serial:"):
            serial, _, cmd = req[len("host-serial:") :].rpartition(":")
            dev = owner.find(serial)
            if dev is None:
                _fail(self, f"device '{serial}' not found")
            elif cmd == "features":
                self.send(b"OKAY" + _block(FEATURES))
            elif cmd == "get-state":
                self.send(b"OKAY" + _block(dev.state))
            elif cmd == "get-serialno":
                self.send(b"OKAY" + _block(dev.serial))
            else:
                _fail(self, f"unsupported: {cmd}")
        elif req.startswith(("host:transport:", "host:tport:serial:")):
            serial = req.rsplit(":", 1)[1]
            dev = owner.find(serial)
            if dev is None:
                _fail(self, f"device '{serial}' not found")
                return
            if dev.state != "device":
                _fail(self, f"device {dev.state}")
                return
            self.send(b"OKAY")
            if req.startswith("host:tport:"):
                self.send(struct.pack("<Q", dev.transport_id))
            serve_device_service(dev, self._request(), self)
        else:
            _fail(self, f"unknown host service: {req}")


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
