"""The virtual device behind the fake ADB server: files, properties, shell and the app.

Every device path maps into a sandbox folder on the host; nothing escapes it. The
shell understands the commands edgekit sends (quoted with POSIX rules) and little
else, like a locked-down phone would.
"""

from __future__ import annotations

import os
import platform
import posixpath
import shlex
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from edgekit.arm64 import Arm64Env
from edgekit.device.profiles import get_profile
from edgekit.device.protocol import ACTIVITY, APP_VERSION, INSTRUMENTATION, PACKAGE, RESULTS_ROOT


@dataclass
class Faults:
    """Failures to inject, for tests and demos (all off by default)."""

    crash_runs: set[int] = field(default_factory=set)  # app runs (0-based) whose process dies
    hang_runs: dict[int, float] = field(default_factory=dict)  # app run -> seconds it hangs first
    push_fail: bool = False  # every sync SEND fails
    disk_limit_bytes: int | None = None  # total pushed bytes before "No space left on device"
    corrupt_push: bool = False  # pushed files land one byte short (verification must notice)
    unplug_after_runs: int | None = None  # the device vanishes after this many app runs
    no_instrumentation: bool = False  # `am instrument` unavailable: the host must use `am start`
    thermal: list[int] = field(default_factory=list)  # thermal statuses to report, one per query
    # a hostile or broken app: result.json text written in place of the real one (a callable gets
    # the real text and returns the replacement), for the tests of what the host accepts
    result_json: str | Callable[[str], str] | None = None


@dataclass
class ShellResult:
    """What a shell command printed and returned."""

    stdout: bytes = b""
    stderr: bytes = b""
    code: int = 0


class VirtualDevice:
    """One emulated phone: a profile's properties over a sandboxed file tree."""

    def __init__(
        self,
        root: Path,
        serial: str = "emulator-pixel9",
        profile: str = "pixel9",
        app_version: str | None = APP_VERSION,
        faults: Faults | None = None,
        state: str = "device",
        arm64: Arm64Env | None = None,
    ) -> None:
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self.serial = serial
        self.profile = get_profile(profile)
        self.props = dict(self.profile.emulated_props)
        self.props["ro.serialno"] = serial
        # the app process runs the phone's kernels under qemu-aarch64 with an arm64 environment,
        # else the host's own (x86) kernels; every record carries which
        self.arm64 = arm64
        self.props["ro.edgekit.emulation"] = (
            arm64.label if arm64 else f"emulated on this host ({platform.machine()})"
        )
        self.app_version = app_version
        self.faults = faults or Faults()
        self.state = state
        self.connected = True
        self.transport_id = 1
        self.app_runs = 0
        self.pushed_bytes = 0
        self._procs: list[subprocess.Popen[bytes]] = []
        self._lock = threading.Lock()
        for cpu in range(8):
            gov = self.path(f"/sys/devices/system/cpu/cpu{cpu}/cpufreq/scaling_governor")
            gov.parent.mkdir(parents=True, exist_ok=True)
            gov.write_text("sched_pixel\n")
        self.path("/data/local/tmp").mkdir(parents=True, exist_ok=True)
        self.path("/sdcard").mkdir(parents=True, exist_ok=True)

    # -- files -------------------------------------------------------------------------
    def path(self, device_path: str) -> Path:
        """Sandbox path for an absolute device path; refuses anything that would escape."""
        norm = posixpath.normpath("/" + device_path.lstrip("/"))
        target = (self.root / norm.lstrip("/")).resolve()
        if target != self.root and self.root not in target.parents:
            raise PermissionError(f"{device_path}: outside the device")
        return target

    def receive_file(self, device_path: str, data: bytes) -> str | None:
        """Store a pushed file; returns an error message instead when a fault says so."""
        if self.faults.push_fail:
            return "remote couldn't create file: Read-only file system"
        if (
            self.faults.disk_limit_bytes is not None
            and self.pushed_bytes + len(data) > self.faults.disk_limit_bytes
        ):
            return "No space left on device"
        target = self.path(device_path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data[:-1] if self.faults.corrupt_push and data else data)
        self.pushed_bytes += len(data)
        return None

    # -- shell -------------------------------------------------------------------------
    def shell(self, command: str) -> ShellResult:
        """Run a command line: ``;``/``&&`` separated simple commands, POSIX quoting."""
        try:
            lexer = shlex.shlex(command, posix=True, punctuation_chars=";&")
            lexer.whitespace_split = True
            tokens = list(lexer)
        except ValueError as exc:
            return ShellResult(stderr=f"sh: syntax error: {exc}\n".encode(), code=2)
        out = ShellResult()
        argv: list[str] = []
        for tok in [*tokens, ";"]:
            if tok in (";", "&&"):
                if argv:
                    r = self._run(argv)
                    out = ShellResult(out.stdout + r.stdout, out.stderr + r.stderr, r.code)
                    if tok == "&&" and r.code != 0:
                        break
                argv = []
            else:
                argv.append(tok)
        return out

    def _run(self, argv: list[str]) -> ShellResult:
        handler = getattr(self, f"_cmd_{argv[0].replace('-', '_')}", None)
        if handler is None:
            return ShellResult(
                stderr=f"/system/bin/sh: {argv[0]}: inaccessible or not found\n".encode(), code=127
            )
        try:
            result: ShellResult = handler(argv[1:])
            return result
        except PermissionError as exc:
            return ShellResult(stderr=f"{argv[0]}: {exc}: Permission denied\n".encode(), code=1)

    def _cmd_echo(self, args: list[str]) -> ShellResult:
        return ShellResult((" ".join(args) + "\n").encode())

    def _cmd_getprop(self, args: list[str]) -> ShellResult:
        if args:
            return ShellResult((self.props.get(args[0], "") + "\n").encode())
        return ShellResult("".join(f"[{k}]: [{v}]\n" for k, v in sorted(self.props.items())).encode())

    def _cmd_mkdir(self, args: list[str]) -> ShellResult:
        for a in (a for a in args if not a.startswith("-")):
            self.path(a).mkdir(parents=True, exist_ok=True)
        return ShellResult()

    def _cmd_rm(self, args: list[str]) -> ShellResult:
        import shutil

        for a in (a for a in args if not a.startswith("-")):
            p = self.path(a)
            if p == self.root:
                return ShellResult(stderr=b"rm: refusing to remove /\n", code=1)
            if p.is_dir():
                shutil.rmtree(p)
            else:
                p.unlink(missing_ok=True)
        return ShellResult()

    def _cmd_cat(self, args: list[str]) -> ShellResult:
        out, err, code = b"", b"", 0
        for a in args:
            p = self.path(a)
            if a == "/proc/meminfo":
                out += f"MemTotal:       {self.profile.ram_gb * 1024 * 1024 - 600_000} kB\n".encode()
            elif p.is_file():
                out += p.read_bytes()
            else:
                err += f"cat: {a}: No such file or directory\n".encode()
                code = 1
        return ShellResult(out, err, code)

    def _cmd_ls(self, args: list[str]) -> ShellResult:
        p = self.path(next((a for a in args if not a.startswith("-")), "/"))
        if not p.exists():
            return ShellResult(stderr=b"ls: No such file or directory\n", code=1)
        names = sorted(c.name for c in p.iterdir()) if p.is_dir() else [p.name]
        return ShellResult("".join(n + "\n" for n in names).encode())

    def _cmd_sha256sum(self, args: list[str]) -> ShellResult:
        import hashlib

        out, err, code = b"", b"", 0
        for a in args:
            p = self.path(a)
            if p.is_file():
                out += f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {a}\n".encode()
            else:
                err += f"sha256sum: {a}: No such file or directory\n".encode()
                code = 1
        return ShellResult(out, err, code)

    def _cmd_dumpsys(self, args: list[str]) -> ShellResult:
        if args[:1] == ["thermalservice"]:
            status = (
                self.faults.thermal.pop(0)
                if len(self.faults.thermal) > 1
                else (self.faults.thermal or [0])[0]
            )
            return ShellResult(f"IsStatusOverride: false\nThermal Status: {status}\n".encode())
        if args[:1] == ["package"] and len(args) > 1 and args[1] == PACKAGE and self.app_version:
            text = f"Packages:\n  Package [{PACKAGE}] (1a2b3c):\n    versionCode=1 minSdk=34 targetSdk=35\n    versionName={self.app_version}\n"
            return ShellResult(text.encode())
        return ShellResult()

    def _cmd_pm(self, args: list[str]) -> ShellResult:
        if args[:2] == ["list", "packages"]:
            wanted = args[2] if len(args) > 2 else ""
            pkgs = [PACKAGE] if self.app_version else []
            return ShellResult("".join(f"package:{p}\n" for p in pkgs if wanted in p).encode())
        if args[:1] == ["install"]:
            apk = self.path(args[-1])
            if not apk.is_file() or apk.read_bytes()[:2] != b"PK":
                return ShellResult(b"Failure [INSTALL_FAILED_INVALID_APK]\n", code=1)
            self.app_version = APP_VERSION
            return ShellResult(b"Success\n")
        return ShellResult(stderr=b"pm: unknown command\n", code=1)

    def _cmd_am(self, args: list[str]) -> ShellResult:
        if args[:1] == ["force-stop"]:
            self.kill_app()
            return ShellResult()
        extras: dict[str, str] = {}
        i = 1
        component = ""
        while i < len(args):
            if args[i] in ("-e", "--es") and i + 2 < len(args) + 1:
                extras[args[i + 1]] = args[i + 2]
                i += 3
            elif args[i] == "-n":
                component = args[i + 1]
                i += 2
            elif args[i].startswith("-"):
                i += 1
            else:
                component = args[i]
                i += 1
        if args[:1] == ["instrument"]:
            if self.faults.no_instrumentation or not self.app_version or component != INSTRUMENTATION:
                msg = f"INSTRUMENTATION_STATUS: Error=Unable to find instrumentation info for: ComponentInfo{{{component}}}\nINSTRUMENTATION_STATUS_CODE: -1\n"
                return ShellResult(msg.encode(), code=1)
            return self._instrument(extras)
        if args[:1] == ["start"]:
            if not self.app_version or component != ACTIVITY:
                return ShellResult(
                    f"Error: Activity class {{{component}}} does not exist.\n".encode(), code=1
                )
            threading.Thread(target=self._run_app, args=(extras,), daemon=True).start()
            return ShellResult(
                f"Starting: Intent {{ cmp={component} }}\nStatus: ok\nLaunchState: COLD\nComplete\n".encode()
            )
        return ShellResult(stderr=b"am: unknown command\n", code=1)

    def _cmd_logcat(self, args: list[str]) -> ShellResult:
        log = self.path("/data/edgekit_emulator_logcat.txt")
        return ShellResult(log.read_bytes() if log.exists() else b"")

    # -- the app -------------------------------------------------------------------------
    def _instrument(self, extras: dict[str, str]) -> ShellResult:
        code, run_id = self._run_app(extras)
        if code != 0:
            return ShellResult(
                b"INSTRUMENTATION_RESULT: shortMsg=Process crashed.\nINSTRUMENTATION_CODE: 0\n", code=0
            )
        result = f"{RESULTS_ROOT}/{run_id}/result.json"
        lines = [
            f"INSTRUMENTATION_STATUS: run_id={run_id}",
            "INSTRUMENTATION_STATUS: stage=done",
            "INSTRUMENTATION_STATUS_CODE: 1",
            f"INSTRUMENTATION_RESULT: result_path={result}",
            "INSTRUMENTATION_CODE: -1",
        ]
        return ShellResult(("\n".join(lines) + "\n").encode())

    def _run_app(self, extras: dict[str, str]) -> tuple[int, str]:
        run_dir_dev = extras.get("run_dir", "")
        run_id = extras.get("run_id") or posixpath.basename(run_dir_dev.rstrip("/"))
        index = self.app_runs
        self.app_runs += 1
        env = self.arm64.environ() if self.arm64 else dict(os.environ)
        env.pop("EDGEKIT_EMULATOR_CRASH", None)
        env.pop("EDGEKIT_EMULATOR_HANG", None)
        if index in self.faults.crash_runs:
            env["EDGEKIT_EMULATOR_CRASH"] = "1"
        if index in self.faults.hang_runs:
            env["EDGEKIT_EMULATOR_HANG"] = str(self.faults.hang_runs[index])
        facts = [f"{k}={self.props.get(p, '')}" for k, p in (
            ("model", "ro.product.model"), ("soc", "ro.soc.model"), ("sdk", "ro.build.version.sdk"),
            ("fingerprint", "ro.build.fingerprint"),
        )]  # fmt: skip
        args = [str(self.path(run_dir_dev)), str(self.path(f"{RESULTS_ROOT}/{run_id}")), *facts,
                f"emulation={self.props['ro.edgekit.emulation']}"]  # fmt: skip
        app = "edgekit.device.emulator.app"
        if self.arm64:
            device_package = {"edgekit.device": Path(__file__).resolve().parent.parent}
            cmd = self.arm64.module_command(app, args, packages=device_package)
        else:
            cmd = [sys.executable, "-m", app, *args]
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        with self._lock:
            self._procs.append(proc)
        _, err = proc.communicate()
        with self._lock:
            self._procs.remove(proc)
        if proc.returncode != 0:
            log = self.path("/data/edgekit_emulator_logcat.txt")
            log.parent.mkdir(parents=True, exist_ok=True)
            tail = err.decode(errors="replace").strip().splitlines()[-3:]
            log.write_text(
                f"E AndroidRuntime: FATAL EXCEPTION in {PACKAGE} (exit {proc.returncode}) {' '.join(tail)}\n"
            )
        if self.faults.result_json is not None and proc.returncode == 0:
            path = self.path(f"{RESULTS_ROOT}/{run_id}/result.json")
            hostile = self.faults.result_json
            path.write_text(hostile(path.read_text()) if callable(hostile) else hostile, encoding="utf-8")
        if self.faults.unplug_after_runs is not None and self.app_runs >= self.faults.unplug_after_runs:
            self.connected = False
        return proc.returncode, run_id

    def kill_app(self) -> None:
        """`am force-stop`: end any running app process."""
        with self._lock:
            for p in self._procs:
                p.kill()
