"""edgekit.device: phones over ADB, the benchmark protocol, and an emulated Pixel 9.

This folder is installed as ``edgekit.device`` (setuptools ``package-dir``); it is
never a top-level ``device`` package.
"""

from __future__ import annotations

if __name__ != "edgekit.device":
    raise ImportError(
        "the 'device' folder is part of edgekit: import edgekit.device (install the project with 'pip install -e .')"
    )
