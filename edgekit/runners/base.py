"""The runner contract every backend follows (Polygraphy style).

A runner takes a feed dict ``{input_name: array}`` and returns ``{output_name: array}``.
The base class checks the feed against the declared input; subclasses implement
``_infer_impl`` only. ``run_batch`` feeds a stack of samples one batch-1 call at a
time, which is what a phone does too.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from edgekit.errors import UsageError


@dataclass(frozen=True)
class Delegation:
    """How much of the graph an accelerator delegate (XNNPACK) took: one partition and no leftovers is the goal."""

    partitions: int
    delegated_ops: int
    total_ops: int
    undelegated: dict[str, int]

    @property
    def fully_delegated(self) -> bool:
        """True when one XNNPACK partition runs every op."""
        return self.partitions == 1 and not self.undelegated

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form for the manifest."""
        return {**asdict(self), "fully_delegated": self.fully_delegated}


class Runner(ABC):
    """One model on one backend, batch size fixed by the model (1 for exported files)."""

    #: Short backend name used in reports ("torch", "litert", "onnxruntime").
    backend: str = ""

    def __init__(self, input_name: str, input_shape: tuple[int, ...]) -> None:
        self.input_name = input_name
        self.input_shape = tuple(input_shape)

    def infer(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run once on ``feeds`` (float32, shape as declared) and return every output."""
        if set(feeds) != {self.input_name}:
            raise UsageError(f"{self.backend} runner expects input {self.input_name!r}, got {sorted(feeds)}")
        x = feeds[self.input_name]
        if tuple(x.shape) != self.input_shape:
            raise UsageError(f"{self.backend} runner expects shape {self.input_shape}, got {tuple(x.shape)}")
        return self._infer_impl(np.ascontiguousarray(x, dtype=np.float32))

    @property
    def input_dtype(self) -> str:
        """The dtype of the model's input tensor as stored in the file."""
        return "float32"

    @property
    def input_quantization(self) -> dict[str, float] | None:
        """Scale and zero point of an integer input tensor; None for float input."""
        return None

    def delegation(self) -> Delegation | None:
        """How much of the graph a delegate took; None for backends without delegates."""
        return None

    @property
    def input_tensor(self) -> tuple[tuple[int, ...], str]:
        """(shape, dtype name) of the input tensor as stored in the file."""
        return self.input_shape, self.input_dtype

    @property
    def output_quantization(self) -> list[tuple[float, int] | None]:
        """(scale, zero point) per integer output; float outputs (every one here) are None."""
        return [None]

    def quantize_input(self, x: np.ndarray) -> np.ndarray:
        """``x`` in the input tensor's own dtype (float32 here)."""
        return np.ascontiguousarray(x, dtype=np.float32)

    @abstractmethod
    def _infer_impl(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """Backend-specific inference on a validated float32 array."""


def run_batch(runner: Runner, inputs: np.ndarray) -> np.ndarray:
    """Feed ``inputs`` (N, *sample_shape) through ``runner`` in batches of its own size.

    Returns the first output, flattened per sample to (N, k) float32.
    """
    batch = runner.input_shape[0]
    if inputs.shape[0] % batch:
        raise UsageError(f"{inputs.shape[0]} samples do not split into batches of {batch}")
    outs: list[np.ndarray] = []
    for i in range(0, inputs.shape[0], batch):
        result = runner.infer({runner.input_name: inputs[i : i + batch]})
        first = next(iter(result.values()))
        outs.append(np.asarray(first, dtype=np.float32).reshape(batch, -1))
    if not outs:
        return np.zeros((0, 1), np.float32)
    return np.concatenate(outs)
