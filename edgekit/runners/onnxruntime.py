"""ONNX Runtime CPU runner."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgekit.runners.base import Runner


class OnnxRuntimeRunner(Runner):
    """Runs an ``.onnx`` file on the CPU execution provider."""

    backend = "onnxruntime"

    def __init__(self, model: Path, num_threads: int = 1) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = num_threads
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        self._sess = ort.InferenceSession(str(model), opts, providers=["CPUExecutionProvider"])
        inp = self._sess.get_inputs()[0]
        self._float16 = inp.type == "tensor(float16)"
        super().__init__(inp.name, tuple(int(d) for d in inp.shape))

    def _infer_impl(self, x: np.ndarray) -> dict[str, np.ndarray]:
        feed = x.astype(np.float16) if self._float16 else x
        names = [o.name for o in self._sess.get_outputs()]
        values = self._sess.run(names, {self.input_name: feed})
        return {n: np.asarray(v, dtype=np.float32) for n, v in zip(names, values, strict=True)}
