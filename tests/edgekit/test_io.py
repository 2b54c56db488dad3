from __future__ import annotations

import os
from pathlib import Path

import pytest

from edgekit._io import atomic_write_bytes, ensure_output_dir, inside, sha256_bytes, sha256_file
from edgekit.errors import OutputError


def test_atomic_write_replaces_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "f.bin"
    atomic_write_bytes(target, b"one")
    atomic_write_bytes(target, b"two")
    assert target.read_bytes() == b"two"
    assert [p.name for p in tmp_path.iterdir()] == ["f.bin"]
    assert sha256_file(target) == sha256_bytes(b"two")
    assert oct(target.stat().st_mode & 0o777) != oct(0o600)  # readable by others, like any file


def test_failed_write_keeps_old_file(tmp_path: Path) -> None:
    target = tmp_path / "f.bin"
    target.write_bytes(b"old")

    with pytest.raises(TypeError):
        atomic_write_bytes(target, 42)  # type: ignore[arg-type]
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.bin"]


def test_output_dir_errors(tmp_path: Path) -> None:
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(OutputError, match="cannot create output folder"):
        ensure_output_dir(f / "sub")
    if os.geteuid() != 0:  # root can write anywhere; the file case above covers root
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o500)
        with pytest.raises(OutputError):
            ensure_output_dir(ro)


def test_inside_refuses_escape(tmp_path: Path) -> None:
    assert inside(tmp_path, "a.tflite") == (tmp_path / "a.tflite").resolve()
    with pytest.raises(OutputError, match="outside"):
        inside(tmp_path, "../evil.tflite")
