"""Atomic file writes and hashing: a reader never sees a half-written file."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from edgekit.errors import OutputError


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same folder and a rename."""
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise OutputError(
            f"cannot write in {path.parent}: {exc.strerror}; pass a writable -o folder"
        ) from exc
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise OutputError(f"cannot write {path}: {exc.strerror}; check free space and permissions") from exc
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: Path, text: str) -> None:
    """UTF-8 text flavour of :func:`atomic_write_bytes`."""
    atomic_write_bytes(path, text.encode("utf-8"))


def not_a_link(path: Path) -> Path:
    """``path``, refused (:class:`OutputError`) when it is a symbolic link: a file edgekit appends
    to or rewrites in place (scores.csv, its journal, bench.jsonl) must be its own, or a planted
    link would have it write into a file elsewhere."""
    if Path(path).is_symlink():
        raise OutputError(f"{path} is a link: edgekit only appends to its own files there; remove the link")
    return Path(path)


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def sha256_bytes(data: bytes) -> str:
    """Hex sha256 of a byte string."""
    return hashlib.sha256(data).hexdigest()


def ensure_output_dir(path: Path) -> Path:
    """Create the output folder (and parents) and check it is writable.

    A folder that is a symbolic link is refused: writing through it would put files where
    the link points (a link planted in an export folder, ``eval -> /etc``, would have eval
    write there), so edgekit only writes into real folders and names the one to pass.
    """
    path = Path(path)
    if path.is_symlink():
        raise OutputError(
            f"output folder {path} is a link to {os.path.realpath(path)}; edgekit writes only into "
            "real folders: pass that folder itself, or remove the link"
        )
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create output folder {path}: {exc.strerror}; pass another -o") from exc
    if not path.is_dir() or not os.access(path, os.W_OK | os.X_OK):
        raise OutputError(f"output folder {path} is not writable; pass another -o")
    return path


@contextmanager
def staged_folder(out_dir: Path, owned: Callable[[Path], set[str]]) -> Iterator[Path]:
    """A staging folder whose content replaces ``out_dir`` when the block succeeds.

    Everything is written into ``.<name>.edgekit-staging-*`` beside ``out_dir``; at the end
    the folders are swapped, so a reader sees the old export or the new one, never a mix,
    and a killed or interrupted run leaves ``out_dir`` as it was. ``owned(out_dir)`` names
    the entries the previous run wrote (its manifest and files): those are dropped (stale
    variants of a re-export go), every other entry is carried over untouched. A second run
    into the same folder while one holds it fails at once with :class:`OutputError`.
    """
    import fcntl
    import shutil

    out_dir = Path(out_dir).absolute()
    cwd = Path.cwd().resolve()
    if out_dir.resolve() == cwd or out_dir.resolve() in cwd.parents:
        raise OutputError(
            f"the output folder {out_dir} holds the working directory; pass a dedicated -o folder"
        )
    created = not out_dir.exists()
    ensure_output_dir(out_dir)
    lock = os.open(out_dir, os.O_RDONLY | os.O_DIRECTORY)
    try:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise OutputError(
                f"another edgekit run is writing into {out_dir}; wait for it to finish or pass another -o"
            ) from None
        prefix = f".{out_dir.name}.edgekit-"
        for stale in out_dir.parent.glob(
            f"{glob_escape(prefix)}*"
        ):  # left by a killed run (we hold the lock)
            shutil.rmtree(stale, ignore_errors=True)
        try:
            stage = Path(tempfile.mkdtemp(prefix=prefix + "staging-", dir=out_dir.parent))
        except OSError as exc:
            raise OutputError(f"cannot create a staging folder beside {out_dir}: {exc.strerror}") from exc
        guard = _StageGuard(stage)
        done = False
        try:
            with guard.installed():
                try:
                    yield stage
                except BaseException:
                    guard.reraise_if_interrupted()  # a library turned the interrupt into its own error
                    raise
                # a library swallowed the interrupt and the run went on: the handler already
                # deleted the stage, so what is there now is partial; never swap it in
                guard.reraise_if_interrupted()
                with guard.deferred():
                    _swap_in(stage, out_dir, owned(out_dir), prefix)
            done = True
        finally:
            shutil.rmtree(stage, ignore_errors=True)
            if created and not done:
                _remove_if_empty(out_dir)  # a failed first export leaves no empty folder behind
    finally:
        os.close(lock)


_ACTIVE: list[_StageGuard] = []


@contextmanager
def interrupts_held() -> Iterator[None]:
    """Hold SIGINT/SIGTERM until the block ends, while a staged export runs.

    For imports of native extensions whose initialiser aborts the process when Python raises
    KeyboardInterrupt inside it (litert-torch's MLIR modules): the signal then acts right after.
    Outside a staged export (or off the main thread) this does nothing.
    """
    if not _ACTIVE:
        yield
        return
    with _ACTIVE[-1].deferred():
        yield


def _remove_if_empty(path: Path) -> None:
    import contextlib

    with contextlib.suppress(OSError):  # not empty (the user wrote there meanwhile): leave it
        path.rmdir()


class _StageGuard:
    """SIGINT/SIGTERM handlers that delete the staging folder before the run unwinds.

    A KeyboardInterrupt raised inside a native extension's initialiser (litert-torch's MLIR
    modules load lazily, mid-export) can abort the interpreter, which skips every ``finally``
    and would leave the staging folder behind. The handler removes it first, then raises as
    Python would (KeyboardInterrupt; SystemExit(143) for SIGTERM). During the final swap the
    signal is held until the swap is done, so the folder is never caught half-moved.
    """

    def __init__(self, stage: Path) -> None:
        self.stage = stage
        self.holding = 0  # depth: deferred() nests
        self.pending: int | None = None
        self.received: int | None = None

    def _handle(self, signum: int, frame: object) -> None:
        self.received = signum
        if self.holding:
            self.pending = signum
            return
        self._raise(signum)

    def reraise_if_interrupted(self) -> None:
        if self.received is not None:
            try:
                self._raise(self.received)
            except BaseException as exc:
                raise exc from None

    def _raise(self, signum: int) -> None:
        import shutil
        import signal

        shutil.rmtree(self.stage, ignore_errors=True)
        if signum == signal.SIGTERM:
            raise SystemExit(128 + signum)
        raise KeyboardInterrupt

    @contextmanager
    def installed(self) -> Iterator[None]:
        import signal
        import threading

        if threading.current_thread() is not threading.main_thread():
            yield  # only the main thread may set handlers; the finally clean-up still applies
            return
        previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
        previous = {s: h for s, h in previous.items() if h is not signal.SIG_IGN}  # nohup stays nohup
        for s in previous:
            signal.signal(s, self._handle)
        _ACTIVE.append(self)
        try:
            yield
        finally:
            _ACTIVE.remove(self)
            for s, handler in previous.items():
                signal.signal(s, handler)

    @contextmanager
    def deferred(self) -> Iterator[None]:
        self.holding += 1
        try:
            yield
        finally:
            self.holding -= 1
        if self.pending is not None and not self.holding:
            signum, self.pending = self.pending, None
            self._raise(signum)


def glob_escape(text: str) -> str:
    """``text`` with glob metacharacters taken literally (folder names like ``out[1]``)."""
    return "".join(f"[{c}]" if c in "*?[]" else c for c in text)


def _swap_in(stage: Path, out_dir: Path, owned: set[str], prefix: str) -> None:
    import shutil

    try:
        for entry in out_dir.iterdir():
            if entry.name not in owned and not (stage / entry.name).exists():
                os.replace(entry, stage / entry.name)  # not ours: carried over untouched
        old = Path(tempfile.mkdtemp(prefix=prefix + "old-", dir=out_dir.parent))
        os.replace(out_dir, old / "previous")
        os.replace(stage, out_dir)
    except OSError as exc:
        raise OutputError(f"cannot move the new export into {out_dir}: {exc.strerror}") from exc
    shutil.rmtree(old, ignore_errors=True)
