"""Build the arm64 environment from the registries this project uses (``make arm64``).

1. ``debootstrap --foreign --arch=arm64 --variant=minbase`` downloads a Debian arm64 base with
   Python (the host's Debian release, from the host's own Debian mirror); every package is
   unpacked with ``dpkg -x`` (no maintainer script runs: nothing executes at build time).
2. The host's numpy, ai-edge-litert and onnxruntime versions are installed for aarch64 with
   ``pip install --platform manylinux_2_28_aarch64 ... --only-binary=:all: --target``.
3. ``/proc/cpuinfo`` and ``/sys/devices/system/cpu`` in the sysroot describe Tensor G4's eight
   cores (4 Cortex-A520, 3 Cortex-A720, 1 Cortex-X4). qemu-user serves a guest's file opens from
   the sysroot first, and without this the guest reads the host's x86 ``/proc/cpuinfo``:
   onnxruntime >= 1.28 then crashes at import (measured: 1.26 imports, 1.28-1.32 segfault).
4. edgekit's instruction-counting qemu plugin (``insn_count.c``, against qemu's TCG plugin API)
   is compiled with gcc, when there is one.
5. The guest is started once to record what its runtimes see (``env.json``).

Idempotent: ``env.json`` records the recipe; a matching one means nothing is done. The build
goes to ``<dest>.partial`` and replaces ``dest`` only when complete.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from edgekit.arm64 import CPU, ENV_FILE, INSN_PLUGIN, RUNTIMES, Arm64EnvError, Arm64Worker, open_env

#: bumped when the steps below change what gets built
RECIPE_VERSION = 3
_PLATFORMS = (
    "manylinux_2_28_aarch64",
    "manylinux_2_27_aarch64",
    "manylinux_2_17_aarch64",
    "manylinux2014_aarch64",
)
# sysroot folders that would shadow the host's (qemu looks a path up in the sysroot first)
_SHADOWING = ("tmp", "home", "root", "mnt", "srv", "opt", "media", "run", "work", "var/tmp")
# Tensor G4: cpu0-3 Cortex-A520 (0xd80) 1.92 GHz, cpu4-6 Cortex-A720 (0xd81) 2.6 GHz, cpu7 Cortex-X4 (0xd82) 3.1 GHz
_CORES = [("0xd80", 1_920_000)] * 4 + [("0xd81", 2_600_000)] * 3 + [("0xd82", 3_105_000)]
_FEATURES = (
    "fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm jscvt fcma lrcpc "
    "dcpop sha3 asimddp sha512 sve asimdfhm dit uscat ilrcpc flagm ssbs sb paca pacg dcpodp sve2 "
    "sveaes svepmull svebitperm svesha3 flagm2 frint svei8mm svebf16 i8mm bf16 dgh bti"
)

Progress = Callable[[str], None]


def debian_release(os_release: str | None = None) -> str:
    """The host's Debian codename (``bookworm``), from ``/etc/os-release``."""
    text = os_release if os_release is not None else Path("/etc/os-release").read_text(encoding="utf-8")
    fields = dict(
        line.split("=", 1) for line in text.splitlines() if "=" in line and not line.startswith("#")
    )
    if fields.get("ID", "").strip('"') != "debian" or not fields.get("VERSION_CODENAME"):
        raise Arm64EnvError("the arm64 environment is built from Debian's packages; this host is not Debian")
    return fields["VERSION_CODENAME"].strip('"')


def debian_mirror(release: str, sources: dict[str, str] | None = None) -> str:
    """The host's own Debian mirror for ``release`` (``$EDGEKIT_DEBIAN_MIRROR`` overrides it).

    ``sources`` maps file names to the text of apt's source lists (read from /etc/apt when not
    given); both the one-line and the deb822 formats are read.
    """
    if os.environ.get("EDGEKIT_DEBIAN_MIRROR"):
        return os.environ["EDGEKIT_DEBIAN_MIRROR"]
    if sources is None:
        files = [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]
        sources = {str(f): f.read_text(encoding="utf-8", errors="replace") for f in files if f.is_file()}
    for name, text in sources.items():
        if name.endswith(".sources"):
            for stanza in re.split(r"\n\s*\n", text):
                keys = {}
                for line in stanza.splitlines():
                    key, sep, value = line.partition(":")
                    if sep and not line.startswith(("#", " ")):
                        keys[key.strip().lower()] = value.split()
                if "deb" in keys.get("types", []) and release in keys.get("suites", []) and keys.get("uris"):
                    return str(keys["uris"][0])
        elif name.endswith(".list"):
            for line in text.splitlines():
                parts = [p for p in line.split() if not p.startswith("[")]
                if len(parts) >= 3 and parts[0] == "deb" and parts[2] == release:
                    return parts[1]
    raise Arm64EnvError(f"no Debian mirror for {release} in /etc/apt; set EDGEKIT_DEBIAN_MIRROR to one")


def wanted_versions() -> dict[str, str]:
    """The host's versions of the runtimes, to install the same ones for aarch64."""
    out = {}
    for name in RUNTIMES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            raise Arm64EnvError(f"{name} is not installed on the host; run 'make install' first") from None
    return out


def cpuinfo_text() -> str:
    """``/proc/cpuinfo`` as Tensor G4's Linux prints it (the features its cores have)."""
    blocks = [
        f"processor\t: {i}\nBogoMIPS\t: 49.15\nFeatures\t: {_FEATURES}\nCPU implementer\t: 0x41\n"
        f"CPU architecture: 8\nCPU variant\t: 0x0\nCPU part\t: {part}\nCPU revision\t: 1\n"
        for i, (part, _) in enumerate(_CORES)
    ]
    return "\n".join(blocks)


def _write_cpu_files(sysroot: Path) -> None:
    (sysroot / "proc").mkdir(exist_ok=True)
    (sysroot / "proc" / "cpuinfo").write_text(cpuinfo_text(), encoding="utf-8")
    cpus = sysroot / "sys" / "devices" / "system" / "cpu"
    cpus.mkdir(parents=True, exist_ok=True)
    span = f"0-{len(_CORES) - 1}\n"
    for name in ("possible", "present", "online"):
        (cpus / name).write_text(span, encoding="utf-8")
    for i, (_, khz) in enumerate(_CORES):
        freq = cpus / f"cpu{i}" / "cpufreq"
        freq.mkdir(parents=True, exist_ok=True)
        (freq / "cpuinfo_max_freq").write_text(f"{khz}\n", encoding="utf-8")


def recipe() -> dict[str, Any]:
    """What decides the environment's content: a stored one that equals this is up to date."""
    return {"recipe": RECIPE_VERSION, "release": debian_release(), "cpu": CPU, "versions": wanted_versions()}


def _run(cmd: list[str], what: str, **kw: Any) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, **kw)
    if proc.returncode != 0:
        tail = " ".join((proc.stderr or proc.stdout).strip().splitlines()[-2:])[:300]
        raise Arm64EnvError(f"{what} failed (exit {proc.returncode}): {tail}")


def _compile_plugin(dest: Path) -> bool:
    """Compile ``insn_count.c`` into ``dest``; False when there is no C compiler."""
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        return False
    source = Path(__file__).with_name("insn_count.c")
    _run([cc, "-O2", "-shared", "-fPIC", "-fvisibility=hidden", "-o", str(dest / INSN_PLUGIN), str(source)],
         "compiling the instruction-count plugin")  # fmt: skip
    return True


def _size(path: Path) -> int:
    return sum(f.lstat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


def build(dest: Path, progress: Progress | None = None, force: bool = False) -> dict[str, Any]:
    """Build (or keep, when up to date) the environment at ``dest``; returns its ``env.json`` facts."""
    say = progress or (lambda _m: None)
    dest = Path(dest)
    wanted = recipe()
    if not force and (dest / ENV_FILE).is_file():
        try:
            env = open_env(dest)
            if {k: env.facts.get(k) for k in wanted} == wanted:
                say(f"up to date: {dest}")
                return env.facts
        except Arm64EnvError as exc:  # a broken or hand-edited environment is rebuilt, not trusted
            say(f"rebuilding: {exc}")
    for tool in ("debootstrap", "dpkg", "qemu-aarch64"):
        if shutil.which(tool) is None:
            raise Arm64EnvError(f"{tool} is not installed; apt-get install debootstrap qemu-user")
    if os.geteuid() != 0:
        raise Arm64EnvError("debootstrap needs root: run 'make arm64' as root (CI does)")
    started = time.perf_counter()
    partial = dest.with_name(dest.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    sysroot, site = partial / "sysroot", partial / "site"
    partial.mkdir(parents=True)
    release = wanted["release"]
    say(f"debootstrap {release} arm64 (minbase + python3)")
    _run(["debootstrap", "--foreign", "--arch=arm64", "--variant=minbase", "--include=python3,libstdc++6",
          release, str(sysroot), debian_mirror(release)], "debootstrap")  # fmt: skip
    archives = sysroot / "var" / "cache" / "apt" / "archives"
    debs = sorted(archives.glob("*.deb"))
    say(f"unpacking {len(debs)} packages")
    for deb in debs:
        _run(["dpkg", "-x", str(deb), str(sysroot)], f"dpkg -x {deb.name}")
    shutil.rmtree(archives)
    shutil.rmtree(sysroot / "debootstrap", ignore_errors=True)
    for name in _SHADOWING:
        target = sysroot / name
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        elif target.is_symlink():
            target.unlink()
    _write_cpu_files(sysroot)
    pythons = sorted(
        p.name for p in (sysroot / "usr" / "bin").glob("python3.*") if re.fullmatch(r"python3\.\d+", p.name)
    )
    if not pythons:
        raise Arm64EnvError("the Debian arm64 base has no python3.X; check the mirror")
    python = pythons[-1]
    pyver = python.removeprefix("python")
    versions = wanted["versions"]
    say(f"pip: {', '.join(f'{k}=={v}' for k, v in versions.items())} for aarch64, Python {pyver}")
    platforms = [a for p in _PLATFORMS for a in ("--platform", p)]
    _run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *platforms,
          "--python-version", pyver, "--implementation", "cp", "--only-binary=:all:", "--target", str(site),
          *(f"{k}=={v}" for k, v in versions.items())], "pip install (aarch64 wheels)")  # fmt: skip
    plugin = _compile_plugin(partial)
    say(f"instruction-count plugin: {'built' if plugin else 'not built (no gcc)'}")
    facts: dict[str, Any] = {**wanted, "python": python, "insn_plugin": plugin}
    (partial / ENV_FILE).write_text(json.dumps(facts, indent=2) + "\n", encoding="utf-8")
    say("starting the arm64 Python under qemu to read what its runtimes see")
    with Arm64Worker(open_env(partial)) as worker:
        seen = worker.features()
    if not seen.get("ok") or seen.get("machine") != "aarch64":
        raise Arm64EnvError(f"the arm64 Python did not start: {seen.get('error', seen)}")
    facts.update(
        seen={k: seen[k] for k in ("features", "sve_vector_bits", "versions")},
        built=datetime.now(UTC).isoformat(timespec="seconds"),
        build_seconds=round(time.perf_counter() - started, 1),
        size_bytes=_size(partial),
    )
    (partial / ENV_FILE).write_text(json.dumps(facts, indent=2) + "\n", encoding="utf-8")
    shutil.rmtree(dest, ignore_errors=True)
    partial.rename(dest)
    say(f"built {dest}: {facts['size_bytes'] / 2**20:.0f} MiB in {facts['build_seconds']:.0f} s")
    return facts
