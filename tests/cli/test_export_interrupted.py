"""Interrupted, concurrent and repeated exports into one folder: the folder always holds one
whole export (the old or the new), never a manifest beside another run's files."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from edgekit._io import sha256_file
from edgekit.cli import app

EXE = Path(sys.executable).with_name("edgekit")


def _consistent(out: Path) -> dict[str, str]:
    """The folder's manifest matches every file it names; returns name -> sha256."""
    m = json.loads((out / "manifest.json").read_text())
    files = {}
    for v in m["variants"]:
        if v["status"] == "ok":
            assert sha256_file(out / v["file"]) == v["sha256"], v["name"]
            files[v["file"]] = v["sha256"]
    return files


def _default_signals() -> None:
    # a run started in the background of a non-interactive shell inherits SIGINT ignored (and
    # edgekit rightly keeps it ignored); these tests are about a normal foreground process
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _start(tiny_pt2: Path, out: Path, *flags: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [str(EXE), "export", str(tiny_pt2), *flags, "-o", str(out), "--name", "tiny"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, preexec_fn=_default_signals,
    )  # fmt: skip


def _wait_for_staging(out: Path, proc: subprocess.Popen[bytes], timeout: float = 120) -> Path:
    """The staging folder ``proc`` writes into (one a killed run left behind does not count)."""
    old = set(out.parent.glob(f".{out.name}.edgekit-staging-*"))
    end = time.time() + timeout
    while time.time() < end:
        stages = [
            p for p in out.parent.glob(f".{out.name}.edgekit-staging-*") if p not in old and any(p.iterdir())
        ]
        if stages:
            return stages[0]
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        time.sleep(0.05)
    raise AssertionError("the export never started writing")


def test_killed_and_concurrent_exports_leave_one_whole_export(
    tiny_pt2: Path, image_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    first = CliRunner().invoke(app, ["export", str(tiny_pt2), "--int8", "--onnx", "--calib", str(image_dir),
                                     "-o", str(out), "--name", "tiny"])  # fmt: skip
    assert first.exit_code == 0, first.output
    before = _consistent(out)
    (out / "notes.txt").write_text("the user's own file")

    # SIGKILL in the middle of a re-export: the old export stays whole
    proc = _start(tiny_pt2, out, "--fp16")
    _wait_for_staging(out, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert _consistent(out) == before and (out / "notes.txt").exists()

    # a second run while one holds the folder is refused at once; the first completes
    proc = _start(tiny_pt2, out, "--fp16")
    _wait_for_staging(out, proc)
    second = CliRunner().invoke(app, ["export", str(tiny_pt2), "-o", str(out), "--name", "tiny"])
    assert second.exit_code == 2 and "another edgekit run is writing" in second.output
    assert proc.wait(timeout=300) == 0, proc.stderr.read().decode() if proc.stderr else ""

    # the re-export with fewer variants removed the stale ones and kept the user's file
    after = _consistent(out)
    assert set(after) == {"tiny.fp32.tflite", "tiny.fp16.tflite"}
    assert not (out / "tiny.int8.tflite").exists() and not (out / "tiny.fp32.onnx").exists()
    assert (out / "notes.txt").read_text() == "the user's own file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # the killed run's staging is gone


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_keeps_the_old_export(sig: int, tiny_pt2: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert CliRunner().invoke(app, ["export", str(tiny_pt2), "-o", str(out), "--name", "tiny"]).exit_code == 0
    before = _consistent(out)
    proc = _start(tiny_pt2, out, "--fp16")
    _wait_for_staging(out, proc)
    proc.send_signal(sig)
    assert proc.wait(timeout=120) != 0
    assert _consistent(out) == before
    assert not list(tmp_path.glob(".out.edgekit-staging-*"))
