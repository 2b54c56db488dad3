"""Host runners: one module per backend, one contract (`infer(feeds) -> outputs`)."""

from __future__ import annotations

from pathlib import Path

from edgekit.errors import UsageError
from edgekit.runners.base import Runner, run_batch

__all__ = ["Runner", "open_runner", "run_batch"]


def open_runner(fmt: str, path: Path) -> Runner:
    """The host runner for an exported file of format ``fmt`` (tflite, onnx, pte)."""
    if fmt == "tflite":
        from edgekit.runners.litert import LiteRTRunner

        return LiteRTRunner(path)
    if fmt == "pte":
        from edgekit.runners.executorch import ExecuTorchRunner

        return ExecuTorchRunner(path)
    if fmt == "onnx":
        from edgekit.runners.onnxruntime import OnnxRuntimeRunner

        return OnnxRuntimeRunner(path)
    raise UsageError(f"no host runner for {fmt!r} files (tflite, onnx and pte are known)")
