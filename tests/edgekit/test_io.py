from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from edgekit._io import (
    atomic_write_bytes,
    ensure_output_dir,
    interrupts_held,
    sha256_bytes,
    sha256_file,
    staged_folder,
)
from edgekit.errors import FileFormatError, OutputError
from edgekit.validate import contained


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


@pytest.mark.parametrize(
    "name",
    ["../evil.tflite", "/etc/passwd", "a/../../evil", "", "a\\..\\b", "link/secret", "x\x00y"],
)
def test_contained_refuses_every_escape(tmp_path: Path, name: str) -> None:
    (tmp_path / "link").symlink_to(tmp_path.parent)  # a link inside that leads outside
    with pytest.raises(FileFormatError):
        contained(tmp_path, name, "file")
    with pytest.raises(OutputError):
        contained(tmp_path, name, "file", error=OutputError)


def test_contained_accepts_paths_inside(tmp_path: Path) -> None:
    assert contained(tmp_path, "a.tflite", "file") == (tmp_path / "a.tflite").resolve()
    assert contained(tmp_path, "heatmaps/v/TP_0.png", "file") == (tmp_path / "heatmaps/v/TP_0.png").resolve()


@pytest.fixture(autouse=True)
def _python_sigint() -> Iterator[None]:
    """Python's own SIGINT handler, as in a foreground process: pytest started in the background
    of a non-interactive shell inherits SIGINT ignored, and edgekit keeps an ignored signal ignored."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def _owned(_: Path) -> set[str]:
    return {"manifest.json", "old.tflite"}


def test_staged_folder_swaps_carries_foreign_files_and_drops_stale_ones(tmp_path: Path) -> None:
    out = tmp_path / "out[1]"  # glob metacharacters in the name
    out.mkdir()
    (out / "manifest.json").write_text("old")
    (out / "old.tflite").write_text("stale variant")
    (out / "notes.txt").write_text("the user's")
    with staged_folder(out, _owned) as stage:
        assert stage.parent == tmp_path and stage.name.startswith(".out[1].edgekit-staging-")
        (stage / "manifest.json").write_text("new")
        assert (out / "manifest.json").read_text() == "old"  # readers see the old export meanwhile
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "notes.txt"]
    assert (out / "manifest.json").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out[1]"]  # no staging or backup left


def test_staged_folder_keeps_the_old_export_when_the_run_fails(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "manifest.json").write_text("old")
    with pytest.raises(KeyboardInterrupt), staged_folder(out, _owned) as stage:
        (stage / "manifest.json").write_text("half")
        raise KeyboardInterrupt
    assert [p.name for p in out.iterdir()] == ["manifest.json"]
    assert (out / "manifest.json").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_a_failed_first_export_leaves_no_empty_folder(tmp_path: Path) -> None:
    out = tmp_path / "new"
    with pytest.raises(OutputError, match="truncated"), staged_folder(out, _owned):
        raise OutputError("truncated model")
    assert list(tmp_path.iterdir()) == []
    existing = tmp_path / "existing"
    existing.mkdir()
    with pytest.raises(OutputError), staged_folder(existing, _owned):
        raise OutputError("truncated model")
    assert existing.is_dir()  # the user's own (empty) folder stays


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_removes_the_stage_before_anything_unwinds(tmp_path: Path, sig: int) -> None:
    out = tmp_path / "out"
    seen: list[bool] = []
    before = signal.getsignal(sig)
    with (
        pytest.raises(KeyboardInterrupt if sig == signal.SIGINT else SystemExit),
        staged_folder(out, _owned) as stage,
    ):
        (stage / "manifest.json").write_text("half")
        try:
            os.kill(os.getpid(), sig)
        finally:
            seen.append(stage.exists())  # gone already, even if the unwinding is cut short
    assert seen == [False] and list(tmp_path.iterdir()) == []
    assert signal.getsignal(sig) is before


def test_an_interrupt_a_library_turned_into_its_own_error_still_reads_as_an_interrupt(tmp_path: Path) -> None:
    with pytest.raises(KeyboardInterrupt), staged_folder(tmp_path / "out", _owned):
        try:
            os.kill(os.getpid(), signal.SIGINT)
        except KeyboardInterrupt:
            raise ImportError("Encountered an error while initializing the extension.") from None


def test_a_held_interrupt_acts_when_the_block_ends(tmp_path: Path) -> None:
    steps: list[str] = []
    with pytest.raises(KeyboardInterrupt), staged_folder(tmp_path / "out", _owned):
        with interrupts_held():
            os.kill(os.getpid(), signal.SIGINT)
            steps.append("import finished")
        steps.append("never")
    assert steps == ["import finished"]


def test_a_second_run_into_the_same_folder_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with staged_folder(out, _owned) as stage:
        (stage / "manifest.json").write_text("first")
        with pytest.raises(OutputError, match="another edgekit run"), staged_folder(out, _owned):
            pass
    assert (out / "manifest.json").read_text() == "first"


def test_a_killed_run_leaves_a_staging_folder_the_next_run_removes(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    leftover = tmp_path / ".out.edgekit-staging-dead"
    leftover.mkdir()
    with staged_folder(out, _owned) as stage:
        (stage / "manifest.json").write_text("new")
    assert not leftover.exists()


def test_output_folder_holding_the_working_directory_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(OutputError, match="working directory"), staged_folder(Path("."), _owned):
        pass


def test_an_interrupt_a_library_swallowed_never_swaps_in_a_partial_stage(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "manifest.json").write_text("old")
    with pytest.raises(KeyboardInterrupt), staged_folder(out, _owned) as stage:
        try:
            os.kill(os.getpid(), signal.SIGINT)
        except KeyboardInterrupt:
            stage.mkdir(exist_ok=True)  # the run went on and wrote into a new stage
            (stage / "manifest.json").write_text("partial")
    assert (out / "manifest.json").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
