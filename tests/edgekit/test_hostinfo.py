"""Host CPU facts recorded with benchmarks, and the qemu child's OpenBLAS core type."""

from __future__ import annotations

from edgekit.hostinfo import cpu_line, emulated_cpu_env, host_cpu

_EPYC = """processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC 9B14
flags\t\t: fpu sse4_2 avx avx2 fma avx512f avx512bw avx512_vnni
"""


def test_host_cpu_reads_model_and_isa_flags() -> None:
    info = host_cpu(_EPYC)
    assert info["model"] == "AMD EPYC 9B14"
    assert info["isa"] == ["sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512_vnni"]
    assert "avx512_vnni" in cpu_line(info) and "AMD EPYC 9B14" in cpu_line(info)


def test_host_cpu_without_avx_says_so() -> None:
    info = host_cpu("model name\t: Old\nflags\t: fpu sse2\n")
    assert info["isa"] == [] and "no AVX" in cpu_line(info)


def test_qemu_child_gets_its_own_openblas_core_type() -> None:
    parent = {"OPENBLAS_CORETYPE": "Haswell", "PATH": "/bin"}
    child = emulated_cpu_env("Nehalem", parent)
    assert child["OPENBLAS_CORETYPE"] == "Nehalem" and child["PATH"] == "/bin"
    assert parent["OPENBLAS_CORETYPE"] == "Haswell"  # the caller's environment is untouched
