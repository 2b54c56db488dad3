"""Parity on the phone's kernels: each exported variant run again in the arm64 environment.

A phone is ARM. Where its kernels compute what the host's do (float, and XNNPACK's INT8 on the
sample: bit-identical), an arm64 run confirms the host's verdict; where they differ (onnxruntime's
x86 U8S8 kernels saturate 8-bit weights without VNNI, ARM's do not), only an arm64 run can say.
So the verdict is taken from arm64:

- integer variants (int8, mixed) run every parity sample on arm64 and its parity is the verdict;
- float variants run the first :data:`FLOAT_SAMPLES` (float kernels differ only by rounding, and
  XNNPACK's float path costs ~0.3 s an image under qemu); the verdict is the host's full parity
  and the arm64 parity on that subset, both of which must pass.

Either way host and arm64 parity are recorded side by side, with how far the two runs'
outputs are apart (bit-identical rows, max difference, decisions that differ).
"""

from __future__ import annotations

import math
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.parity import ParityResult, compare, fake_scores
from edgekit.spec import OutputSpec, Tolerance

#: parity samples a float variant runs on arm64
FLOAT_SAMPLES = 32
#: precisions whose kernels compute in integers: every parity sample runs on arm64
INTEGER_PRECISIONS = ("int8", "mixed")
#: a host and arm64 SQNR this far apart (both under 60 dB) is more than rounding
_SQNR_GAP_DB = 3.0
#: ExecuTorch's runtime is not in the arm64 environment (see the README)
NO_PTE = (
    "ExecuTorch's Python runtime needs torch, and torch 2.13.0's aarch64 wheel is a CUDA build "
    "(427 MB plus CUDA wheels): not in the arm64 environment"
)


def arm64_samples(precision: str, total: int) -> int:
    """How many parity samples a variant of ``precision`` runs on arm64."""
    return total if precision in INTEGER_PRECISIONS else min(total, FLOAT_SAMPLES)


def check(
    worker: Any,
    fmt: str,
    path: Path,
    precision: str,
    inputs: np.ndarray,
    reference: np.ndarray,
    host_outputs: np.ndarray,
    output: OutputSpec,
    tolerance: Tolerance,
    threshold: float,
) -> dict[str, Any]:
    """Run the variant on arm64 and compare with the reference and with the host's outputs.

    ``worker`` is an :class:`edgekit.arm64.Arm64Worker`. Returns the manifest's ``arm64``
    record: runtime label, samples, parity (a :class:`ParityResult` dict), ``vs_host``, seconds.
    """
    if fmt == "pte":
        return {"skipped": NO_PTE}
    n = arm64_samples(precision, len(inputs))
    start = time.perf_counter()
    from edgekit.arm64 import Arm64EnvError

    try:
        outs = np.asarray(worker.run(fmt, path, inputs[:n]), dtype=np.float32)
    except ValueError as exc:
        return {"runtime": worker.env.label, "error": f"the arm64 runtime rejected the file: {exc}"}
    except Arm64EnvError as exc:  # the worker died or hung: this variant's check failed, the export goes on
        return {"runtime": worker.env.label, "error": str(exc)}
    result = compare(reference[:n], outs, output, tolerance, threshold)
    host = np.asarray(host_outputs[:n], dtype=np.float32)
    decided = (fake_scores(host, output) >= threshold) != (fake_scores(outs, output) >= threshold)
    return {
        "runtime": worker.env.label,
        "samples": n,
        "of": len(inputs),
        "parity": result.to_dict(),
        "vs_host": {
            "bit_identical": int(np.sum(np.all(host.reshape(n, -1) == outs.reshape(n, -1), axis=1))),
            "max_abs_diff": float(np.max(np.abs(host - outs), initial=0.0)),
            "decisions_differ": int(np.sum(decided)),
        },
        "seconds": round(time.perf_counter() - start, 2),
    }


def verdict(host: ParityResult, arm64: dict[str, Any] | None) -> tuple[ParityResult, str]:
    """The parity the variant is judged by, and where it was judged ("arm64", "host+arm64", "host")."""
    if not arm64 or "parity" not in arm64:
        if arm64 and "error" in arm64:
            reasons = (*host.reasons, f"arm64: {arm64['error']}")
            return replace(host, passed=False, reasons=reasons), "host"
        return host, "host"
    on_arm = ParityResult.from_dict(arm64["parity"])
    if arm64["samples"] >= host.samples:
        return on_arm, "arm64"
    reasons = (*host.reasons, *(f"arm64 ({on_arm.samples} samples): {r}" for r in on_arm.reasons))
    return replace(host, passed=host.passed and on_arm.passed, reasons=reasons), "host+arm64"


def disagreement(name: str, host: dict[str, Any], arm64: dict[str, Any] | None) -> str | None:
    """One line when host and arm64 parity disagree beyond rounding, else None."""
    if not arm64 or "parity" not in arm64:
        return None
    a = arm64["parity"]
    n = arm64["samples"]
    host_flips = host["flips"] if n >= host["samples"] else None
    h_db, a_db = _db(host["sqnr_db"]), _db(a["sqnr_db"])
    gap = min(h_db, 60.0) - min(a_db, 60.0)
    differs = (host["passed"] != a["passed"] and n >= host["samples"]) or (
        host_flips is not None and host_flips != a["flips"]
    )
    if not differs and abs(gap) <= _SQNR_GAP_DB and not arm64["vs_host"]["decisions_differ"]:
        return None
    host_part = f"host {host['flips']}/{host['samples']} flips, {h_db:.1f} dB"
    arm_part = f"arm64 {a['flips']}/{a['samples']} flips, {a_db:.1f} dB"
    judged = (
        "the verdict is arm64's, the phone's" if host_flips is not None else "the verdict needs both to pass"
    )
    return (
        f"{name}: host and arm64 kernels disagree ({host_part}; {arm_part}; "
        f"{arm64['vs_host']['decisions_differ']} decisions differ): {judged}"
    )


def _db(value: Any) -> float:
    if isinstance(value, str):
        return math.inf if value == "inf" else -math.inf
    return float(value)
