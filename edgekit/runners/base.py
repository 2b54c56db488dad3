"""The runner contract every backend follows (Polygraphy style).

A runner takes a feed dict ``{input_name: array}`` and returns ``{output_name: array}``.
The base class checks the feed against the declared input; subclasses implement
``_infer_impl`` only. ``run_batch`` feeds a stack of samples one batch-1 call at a
time, which is what a phone does too.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from edgekit.errors import UsageError


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
