"""The phone's CPU on the host: an arm64 environment run under ``qemu-aarch64``.

A Debian arm64 sysroot with Python and the manylinux aarch64 wheels of numpy, ai-edge-litert
and onnxruntime (the host's own versions), built into ``build/arm64`` by ``make arm64``
(:mod:`edgekit.arm64.build`). Code runs there under ``qemu-aarch64 -cpu`` :data:`CPU`,
the emulated CPU closest to Pixel 9's Tensor G4 (ARMv9.2: dotprod, i8mm, bf16, 128-bit SVE2,
no SME), so the runtimes pick the kernels a phone runs: their numerics (INT8 saturation and
rounding, which x86 hosts change by ISA) are the phone's. Wall-clock times and memory under
qemu are the emulator's, never phone figures.

Two users: ``edgekit export`` checks every variant on these kernels (:class:`Arm64Worker`),
and the emulated Pixel 9 runs its app process here (``--device emulator``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from edgekit.errors import DeviceError, UsageError

#: qemu's ``-cpu``: every ARMv9 feature qemu 7.2 has (dotprod, i8mm, bf16, SVE2), vector length
#: 128 bits as on the Cortex-X4/A720/A520, SME off (Tensor G4 has none); pauth-impdef only makes
#: pointer authentication cheaper to emulate, it changes no result
CPU = "max,sve128=on,sme=off,pauth-impdef=on"
#: the features Tensor G4's cores have that select kernels in XNNPACK and ONNX Runtime (MLAS)
TARGET_FEATURES = ("asimd", "asimddp", "i8mm", "bf16", "sve", "sve2")
#: the wheels installed for aarch64, at the host's versions
RUNTIMES = ("numpy", "ai-edge-litert", "onnxruntime")
ENV_FILE = "env.json"
#: edgekit's qemu TCG plugin (``insn_count.c``), compiled into the environment's folder
INSN_PLUGIN = "libinsncount.so"
_MAX_ENV_JSON = 1 << 20


class Arm64EnvError(DeviceError):
    """The arm64 environment is missing, broken or cannot be built here."""


def default_location() -> Path | None:
    """Where the environment lives: ``$EDGEKIT_ARM64_ENV``, else ``build/arm64`` of the source tree
    edgekit runs from (an editable install), else None."""
    env = os.environ.get("EDGEKIT_ARM64_ENV")
    if env:
        return Path(env)
    import edgekit

    tree = Path(edgekit.__file__).resolve().parent.parent
    return tree / "build" / "arm64" if (tree / "pyproject.toml").is_file() else None


@dataclass(frozen=True)
class Arm64Env:
    """A built environment: the sysroot, the wheels, and what its build recorded."""

    root: Path
    python: str
    facts: dict[str, Any] = field(compare=False)

    @property
    def sysroot(self) -> Path:
        """The Debian arm64 file tree (qemu's ``-L``)."""
        return self.root / "sysroot"

    @property
    def site(self) -> Path:
        """The aarch64 wheels (``pip --target``)."""
        return self.root / "site"

    @property
    def label(self) -> str:
        """How every record names where it ran."""
        return f"emulated arm64 (qemu, {self.facts.get('cpu', CPU)})"

    def command(self, args: list[str], qemu_args: tuple[str, ...] = ()) -> list[str]:
        """The command line that runs the arm64 Python with ``args``."""
        qemu = shutil.which("qemu-aarch64")
        if qemu is None:
            raise Arm64EnvError("qemu-aarch64 is not installed; install Debian's qemu-user")
        python = self.sysroot / "usr" / "bin" / self.python
        return [qemu, "-cpu", CPU, *qemu_args, "-L", str(self.sysroot), str(python), "-I", "-S", *args]

    def environ(self) -> dict[str, str]:
        """The child's environment: the wheels on its path, nothing of the host's Python.

        A host's ``OPENBLAS_CORETYPE`` names an x86 core; numpy's arm64 OpenBLAS gets its own.
        """
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "OPENBLAS_"))}
        env["OPENBLAS_CORETYPE"] = "ARMV8"
        env["EDGEKIT_ARM64_SITE"] = str(self.site)
        return env

    @property
    def insn_plugin(self) -> Path | None:
        """edgekit's qemu plugin that counts guest instructions (built by ``make arm64`` when gcc is there)."""
        path = self.root / INSN_PLUGIN
        return path if path.is_file() else None

    def count_instructions(self, fmt: str, model: Path, inputs: Any, runs: int = 3) -> int:
        """Guest instructions one inference of ``model`` executes on the arm64 kernels (1 thread).

        Unlike qemu's wall-clock it does not depend on what else the host is doing (it repeats to
        about 2%: the guest's own allocator and Python work vary a little). Two processes, one that
        loads and invokes once and one that invokes ``1 + runs`` times; the difference divided by
        ``runs`` (the first invoke packs weights). Only the main thread is counted.
        It is the emulated CPU's instruction count, not phone cycles: use it as a ratio between variants.
        """
        import numpy as np

        plugin = self.insn_plugin
        if plugin is None:
            raise Arm64EnvError(
                f"no instruction-count plugin in {self.root}; rebuild with 'make arm64' (needs gcc)"
            )
        counts = []
        with tempfile.TemporaryDirectory(prefix="edgekit-insn-") as tmp:
            x_path = Path(tmp, "x.npy")
            np.save(x_path, np.ascontiguousarray(inputs[:1], dtype=np.float32), allow_pickle=False)
            for n in (1, 1 + runs):
                out = Path(tmp, f"count{n}")
                cmd = self.module_command(
                    "edgekit.arm64.worker", ["invoke", fmt, str(Path(model).resolve()), str(x_path), str(n)],
                    qemu_args=("-plugin", f"{plugin},out={out}"),
                )  # fmt: skip
                # one guest thread: idle OpenBLAS workers would spin (and race the counter) otherwise
                env = {**self.environ(), "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
                proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1800, check=False)
                if proc.returncode != 0 or not out.is_file():
                    tail = " ".join(proc.stderr.strip().splitlines()[-2:])[:300]
                    raise Arm64EnvError(f"counting instructions of {Path(model).name} failed: {tail}")
                counts.append(int(out.read_text().strip()))
        return round((counts[1] - counts[0]) / runs)

    def module_command(
        self,
        module: str,
        args: list[str],
        qemu_args: tuple[str, ...] = (),
        packages: Mapping[str, Path] | None = None,
    ) -> list[str]:
        """Run an edgekit module in the arm64 Python.

        ``-I`` keeps the host's site-packages out, so the bootstrap puts the wheels and this
        edgekit's own (pure Python) package folder on the path first; ``packages`` maps more
        package names to their folders (the emulated device adds ``edgekit.device``, which
        setuptools installs from another folder).
        """
        import edgekit

        paths = {"edgekit": str(Path(edgekit.__file__).parent)}
        paths.update({name: str(folder) for name, folder in (packages or {}).items()})
        return self.command(["-c", _BOOT, json.dumps(paths), module, *args], qemu_args)


# Runs first in the arm64 Python: the wheels on sys.path, edgekit's packages from the host's
# folders (setuptools' package-dir mapping is the installer's, not Python's), then the module.
_BOOT = """
import importlib.util, json, os, runpy, sys
sys.path.insert(0, os.environ["EDGEKIT_ARM64_SITE"])
for name, path in json.loads(sys.argv[1]).items():
    spec = importlib.util.spec_from_file_location(
        name, os.path.join(path, "__init__.py"), submodule_search_locations=[path])
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
module = sys.argv[2]
sys.argv = [module, *sys.argv[3:]]
runpy.run_module(module, run_name="__main__", alter_sys=True)
"""


def _read_facts(root: Path) -> dict[str, Any]:
    path = root / ENV_FILE
    try:
        if path.stat().st_size > _MAX_ENV_JSON:
            raise Arm64EnvError(f"{path} is over 1 MB: not an environment edgekit built; run 'make arm64'")
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise Arm64EnvError(f"no arm64 environment at {root}; build it with 'make arm64'") from None
    except (OSError, ValueError, RecursionError) as exc:
        raise Arm64EnvError(
            f"{path} is unreadable ({type(exc).__name__}); rebuild it with 'make arm64'"
        ) from None
    if not isinstance(data, dict) or not isinstance(data.get("python"), str):
        raise Arm64EnvError(
            f"{path} is not an edgekit arm64 environment record; rebuild it with 'make arm64'"
        )
    return data


def open_env(root: Path | None = None) -> Arm64Env:
    """The environment at ``root`` (default: :func:`default_location`), checked to be usable."""
    import re

    where = root if root is not None else default_location()
    if where is None:
        raise Arm64EnvError("no arm64 environment: set EDGEKIT_ARM64_ENV or build one with 'make arm64'")
    facts = _read_facts(Path(where))
    python = facts["python"]
    if not re.fullmatch(r"python3\.\d{1,2}", python):
        raise Arm64EnvError(
            f"{where}/{ENV_FILE} names {python!r} as its Python; rebuild it with 'make arm64'"
        )
    env = Arm64Env(Path(where).resolve(), python, facts)
    exe = env.sysroot / "usr" / "bin" / python
    # the interpreter must be the sysroot's own file, not a link that leads out of it
    if not exe.is_file() or env.sysroot.resolve() not in exe.resolve().parents:
        raise Arm64EnvError(f"{exe} is missing; rebuild the arm64 environment with 'make arm64'")
    if shutil.which("qemu-aarch64") is None:
        raise Arm64EnvError("qemu-aarch64 is not installed; install Debian's qemu-user")
    return env


def find_env(root: Path | None = None) -> tuple[Arm64Env | None, str]:
    """(the environment, "") when one is usable, else (None, why not in one line)."""
    try:
        return open_env(root), ""
    except Arm64EnvError as exc:
        return None, str(exc)


class Arm64Worker:
    """One arm64 Python kept running: runs model files on inputs with the phone's kernels.

    Requests and replies are JSON lines; arrays travel as ``.npy`` files in a private
    temporary folder. One worker serves a whole export (every variant, every repair attempt),
    so qemu and the runtimes start once.
    """

    def __init__(self, env: Arm64Env, threads: int = 2, timeout: float = 1800.0) -> None:
        self.env, self.threads, self.timeout = env, threads, timeout
        self._tmp = tempfile.TemporaryDirectory(prefix="edgekit-arm64-")
        self._proc: subprocess.Popen[str] | None = None
        self._lock = threading.Lock()
        self._count = 0
        self._features: dict[str, Any] | None = None

    def __enter__(self) -> Arm64Worker:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _start(self) -> subprocess.Popen[str]:
        if self._proc is None or self._proc.poll() is not None:
            # stderr to a file, not a pipe: nobody drains it while the worker runs, and the runtimes'
            # log lines (one per model loaded) would fill a pipe and hang the worker mid-export
            with open(Path(self._tmp.name, "stderr.log"), "ab") as err:  # the child keeps its own copy
                self._proc = subprocess.Popen(
                    self.env.module_command("edgekit.arm64.worker", []),
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, text=True,
                    env=self.env.environ(), cwd=self._tmp.name,
                )  # fmt: skip
        return self._proc

    def _ask(self, request: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            proc = self._start()
            assert proc.stdin is not None and proc.stdout is not None
            try:
                proc.stdin.write(json.dumps(request) + "\n")
                proc.stdin.flush()
                line = _readline(proc.stdout, self.timeout)
            except (OSError, TimeoutError) as exc:
                self._kill()
                raise Arm64EnvError(f"the arm64 worker stopped answering ({type(exc).__name__})") from None
            if not line:
                err = self._kill()
                raise Arm64EnvError(f"the arm64 worker died: {err or 'no message'}")
        try:
            reply: dict[str, Any] = json.loads(line)
        except ValueError:
            raise Arm64EnvError(f"the arm64 worker answered {line[:120]!r}") from None
        return reply

    def _kill(self) -> str:
        proc, self._proc = self._proc, None
        if proc is None:
            return ""
        proc.kill()
        proc.wait()
        try:
            err = Path(self._tmp.name, "stderr.log").read_text(encoding="utf-8", errors="replace")
        except OSError:
            err = ""
        return " ".join(err.strip().splitlines()[-2:])[:300]

    def features(self) -> dict[str, Any]:
        """What the arm64 runtimes see: CPU features from the kernel's HWCAP words (what
        XNNPACK's and ONNX Runtime's cpuinfo read), SVE vector length, runtime versions."""
        if self._features is None:
            self._features = self._ask({"op": "features"})
        return self._features

    def run(self, fmt: str, model: Path, inputs: Any) -> Any:
        """Outputs (N, k) float32 of the ``fmt`` file ``model`` on ``inputs`` (N, ...), one sample per invoke.

        Raises :class:`Arm64EnvError` when the worker fails, ValueError when the runtime rejects the model.
        """
        import numpy as np

        self._count += 1
        x_path = Path(self._tmp.name, f"in{self._count}.npy")
        y_path = Path(self._tmp.name, f"out{self._count}.npy")
        np.save(x_path, np.ascontiguousarray(inputs, dtype=np.float32), allow_pickle=False)
        try:
            reply = self._ask({"op": "run", "format": fmt, "model": str(Path(model).resolve()),
                               "inputs": str(x_path), "outputs": str(y_path), "threads": self.threads})  # fmt: skip
            if not reply.get("ok"):
                raise ValueError(str(reply.get("error", "unknown error"))[:300])
            y = np.load(y_path, allow_pickle=False)
        finally:
            x_path.unlink(missing_ok=True)
            y_path.unlink(missing_ok=True)
        if y.ndim != 2 or len(y) != len(inputs):
            raise Arm64EnvError(
                f"the arm64 worker returned outputs of shape {y.shape} for {len(inputs)} inputs"
            )
        return y

    def time(self, models: dict[str, Path], inputs: Any, rounds: int = 5, threads: int = 1) -> dict[str, Any]:
        """Median invoke ms of each model file (format from its suffix) on ``inputs[:1]``, interleaved,
        and each one's first output: ``{"ms": {name: ms}, "outputs": {name: [floats]}}``.

        Emulator wall-clock: a ratio between two models run side by side is the only figure that means
        anything (e.g. sparse vs dense kernels), never a phone latency.
        """
        import numpy as np

        self._count += 1
        x_path = Path(self._tmp.name, f"in{self._count}.npy")
        np.save(x_path, np.ascontiguousarray(inputs[:1], dtype=np.float32), allow_pickle=False)
        spec = {
            n: {"format": Path(p).suffix.lstrip("."), "model": str(Path(p).resolve())}
            for n, p in models.items()
        }
        try:
            reply = self._ask({"op": "time", "models": spec, "inputs": str(x_path), "rounds": rounds,
                               "threads": threads})  # fmt: skip
        finally:
            x_path.unlink(missing_ok=True)
        if not reply.get("ok"):
            raise ValueError(str(reply.get("error", "unknown error"))[:300])
        return reply

    def run_bytes(self, fmt: str, model: bytes, inputs: Any) -> Any:
        """:meth:`run` on a model held in memory."""
        path = Path(self._tmp.name, f"model{self._count + 1}.{fmt}")
        path.write_bytes(model)
        try:
            return self.run(fmt, path, inputs)
        finally:
            path.unlink(missing_ok=True)

    def close(self) -> None:
        """End the worker and remove its files."""
        with self._lock:
            proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            try:
                assert proc.stdin is not None
                proc.stdin.close()
                proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                proc.kill()
                proc.wait()
        self._tmp.cleanup()


def _readline(stream: IO[str], timeout: float) -> str:
    """One line from ``stream``, or TimeoutError after ``timeout`` seconds."""
    box: list[str] = []
    reader = threading.Thread(target=lambda: box.append(stream.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    if reader.is_alive():
        raise TimeoutError
    return box[0] if box else ""


def require_env(root: Path | None = None) -> Arm64Env:
    """:func:`open_env` with a UsageError naming the fix (for options that ask for arm64 explicitly)."""
    env, why = find_env(root)
    if env is None:
        raise UsageError(f"{why} (or use the host's kernels: --device emulator-x86)")
    return env
