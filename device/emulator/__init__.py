"""An emulated Pixel 9 on the host: a fake ADB server in front of a virtual device.

``edgekit bench --device emulator`` goes through exactly the code a phone does;
only the ADB endpoint differs. The virtual device keeps a sandboxed file tree,
answers the shell commands edgekit sends, and carries out the benchmark app's
contract (android_app/PROTOCOL.md) with the host LiteRT interpreter in a child
process, so its timings and memory are real host figures, always labelled
"emulated" and never presented as Pixel 9 numbers.
"""

from __future__ import annotations

from edgekit.device.emulator.server import FakeAdbServer
from edgekit.device.emulator.vdevice import Faults, VirtualDevice

__all__ = ["FakeAdbServer", "Faults", "VirtualDevice"]
