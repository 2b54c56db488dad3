"""The device side of the ADB wire protocol, so a real ``adb connect 127.0.0.1:PORT`` attaches
the emulated device (the way adbd listens on TCP).

Messages are a 24-byte little-endian header (command, arg0, arg1, data length, data
checksum, command ^ 0xffffffff) plus data. The device answers the host's CNXN with
its own banner (no AUTH: an insecure, emulator-style adbd), then each OPEN becomes a
stream: OKAY(local, remote) to accept, WRTE for data (one unacknowledged WRTE at a
time each way), CLSE to end. Streams carry the same services as the smart-socket
server (shell, shell v2, sync v1). Only 127.0.0.1 is bound.
"""

from __future__ import annotations

import contextlib
import itertools
import socket
import struct
import threading

from edgekit.device.emulator.server import FEATURES, ConnectionClosed, recv_exact, serve_device_service
from edgekit.device.emulator.vdevice import VirtualDevice

A_CNXN = 0x4E584E43
A_OPEN = 0x4E45504F
A_OKAY = 0x59414B4F
A_CLSE = 0x45534C43
A_WRTE = 0x45545257
A_AUTH = 0x48545541
A_VERSION = 0x01000001
MAX_PAYLOAD = 256 * 1024
_HEADER = struct.Struct("<6I")


def pack(command: int, arg0: int, arg1: int, data: bytes = b"") -> bytes:
    """One wire message."""
    return _HEADER.pack(command, arg0, arg1, len(data), sum(data) & 0xFFFFFFFF, command ^ 0xFFFFFFFF) + data


class _Stream:
    """One OPENed stream: a Channel for the device services."""

    def __init__(self, conn: _Connection, local: int, remote: int) -> None:
        self.conn, self.local, self.remote = conn, local, remote
        self._buf = bytearray()
        self._cond = threading.Condition()
        self._acked = threading.Event()
        self._acked.set()
        self.closed = False

    def feed(self, data: bytes) -> None:
        with self._cond:
            self._buf.extend(data)
            self._cond.notify_all()

    def close_remote(self) -> None:
        with self._cond:
            self.closed = True
            self._cond.notify_all()
        self._acked.set()

    def ack(self) -> None:
        self._acked.set()

    def read(self, n: int) -> bytes:
        with self._cond:
            while len(self._buf) < n:
                if self.closed:
                    raise ConnectionClosed
                self._cond.wait(timeout=1.0)
            data = bytes(self._buf[:n])
            del self._buf[:n]
            return data

    def send(self, data: bytes) -> None:
        for i in range(0, len(data), self.conn.max_payload):
            if not self._acked.wait(timeout=60) or self.closed:
                raise ConnectionClosed
            self._acked.clear()
            self.conn.write(pack(A_WRTE, self.local, self.remote, data[i : i + self.conn.max_payload]))


class _Connection:
    """One TCP connection from an adb server."""

    def __init__(self, sock: socket.socket, device: VirtualDevice) -> None:
        self.sock, self.device = sock, device
        self.max_payload = 4096
        self._lock = threading.Lock()
        self._streams: dict[int, _Stream] = {}
        self._ids = itertools.count(1)

    def write(self, data: bytes) -> None:
        with self._lock:
            self.sock.sendall(data)

    def _read(self, n: int) -> bytes:
        return recv_exact(self.sock, n)

    def serve(self) -> None:
        try:
            with contextlib.suppress(ConnectionClosed, OSError):  # the adb server hung up
                while True:
                    command, arg0, arg1, length, _, _ = _HEADER.unpack(self._read(24))
                    data = self._read(length) if length else b""
                    self._dispatch(command, arg0, arg1, data)
        finally:
            for s in list(self._streams.values()):
                s.close_remote()
            with contextlib.suppress(OSError):
                self.sock.close()

    def _dispatch(self, command: int, arg0: int, arg1: int, data: bytes) -> None:
        if command == A_CNXN:
            self.max_payload = max(4096, min(arg1, MAX_PAYLOAD))
            props = self.device.props
            banner = (
                f"device::ro.product.name={props.get('ro.product.device', '')};"
                f"ro.product.model={props.get('ro.product.model', '')};"
                f"ro.product.device={props.get('ro.product.device', '')};features={FEATURES}"
            )
            self.write(pack(A_CNXN, A_VERSION, MAX_PAYLOAD, banner.encode()))
        elif command == A_OPEN:
            local = next(self._ids)
            stream = _Stream(self, local, arg0)
            self._streams[local] = stream
            service = data.rstrip(b"\0").decode("utf-8", "replace")
            self.write(pack(A_OKAY, local, arg0))
            threading.Thread(target=self._run, args=(stream, service), daemon=True).start()
        elif command in (A_WRTE, A_OKAY, A_CLSE):
            target = self._streams.pop(arg1, None) if command == A_CLSE else self._streams.get(arg1)
            if target is None:
                return
            if command == A_WRTE:
                target.feed(data)
                self.write(pack(A_OKAY, arg1, arg0))
            elif command == A_OKAY:
                target.ack()
            else:
                target.close_remote()

    def _run(self, stream: _Stream, service: str) -> None:
        with contextlib.suppress(ConnectionClosed, OSError):
            serve_device_service(self.device, service, stream, ack=False)
        if self._streams.pop(stream.local, None) is not None:
            with contextlib.suppress(OSError):
                self.write(pack(A_CLSE, stream.local, stream.remote))


class AdbWireListener:
    """Listens on 127.0.0.1:``port`` like ``adbd`` in TCP mode, for one virtual device."""

    def __init__(self, device: VirtualDevice, port: int = 0) -> None:
        self.device = device
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", port))
        self._sock.listen(8)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="adb-wire", daemon=True)

    @property
    def port(self) -> int:
        """The TCP port."""
        return int(self._sock.getsockname()[1])

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                sock, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=_Connection(sock, self.device).serve, daemon=True).start()

    def start(self) -> AdbWireListener:
        """Accept connections in a daemon thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening."""
        self._stop.set()
        with contextlib.suppress(OSError):
            self._sock.close()
        self.device.kill_app()
