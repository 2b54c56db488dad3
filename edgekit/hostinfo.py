"""What host a measurement ran on: CPU model and the ISA flags that change x86 kernel choice.

Host latency ratios depend on the CPU (LiteRT INT8 vs FP32 on the sample: 0.96x on an AVX2
host, 1.85x on an AVX512-VNNI host), so every benchmark result and every emulated-device
bench record carries :func:`host_cpu`.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Mapping
from pathlib import Path
from typing import Any

#: The x86 ISA extensions that select XNNPACK / onnxruntime / OpenBLAS kernels.
ISA_FLAGS = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "amx_int8")


def _cpuinfo(text: str) -> tuple[str, set[str]]:
    model, flags = "", set[str]()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if key in ("model name", "hardware") and not model:
            model = value.strip()
        elif key in ("flags", "features") and not flags:
            flags = set(value.split())
    return model, flags


def host_cpu(cpuinfo: str | None = None) -> dict[str, Any]:
    """CPU model, core count, machine and which of :data:`ISA_FLAGS` the CPU has.

    ``cpuinfo`` is the text of ``/proc/cpuinfo`` (read when not given; tests pass their own).
    """
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
        except OSError:
            cpuinfo = ""
    model, flags = _cpuinfo(cpuinfo)
    return {
        "model": model or platform.processor() or "unknown",
        "machine": platform.machine(),
        "cores": os.cpu_count() or 0,
        "isa": [f for f in ISA_FLAGS if f in flags],
        "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE"),
    }


def cpu_line(info: Mapping[str, Any] | None = None) -> str:
    """One line for a results table header: model, cores and ISA flags."""
    info = info if info is not None else host_cpu()
    isa = ", ".join(info["isa"]) or "no AVX"
    return f"{info['model']} ({info['machine']}, {info['cores']} cores; ISA: {isa})"


def emulated_cpu_env(cpu: str = "Nehalem", base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a child process run under ``qemu-x86_64 -cpu <cpu>``.

    Some hosts set ``OPENBLAS_CORETYPE`` (e.g. ``Haswell``) for their own CPU; a child on an
    emulated SSE-only CPU that inherits it runs AVX2 kernels and dies with SIGILL. The
    child gets the emulated core type; the caller's own environment is left alone.
    """
    env = dict(os.environ if base is None else base)
    env["OPENBLAS_CORETYPE"] = cpu
    return env
