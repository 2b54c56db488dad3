"""ExecuTorch runner: a ``.pte`` file through the ExecuTorch runtime's Python bindings."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgekit._capture import captured_output
from edgekit.errors import ModelLoadError
from edgekit.runners.base import Runner


class ExecuTorchRunner(Runner):
    """Runs the ``forward`` method of a ``.pte`` (XNNPACK-delegated parts included)."""

    backend = "executorch"

    def __init__(self, model: Path) -> None:
        try:
            from executorch.runtime import Runtime
        except ImportError:
            raise ModelLoadError(
                '.pte files need the executorch extra: pip install "edgekit[executorch]"'
            ) from None
        with captured_output():  # cpuinfo probes log to stderr
            try:
                program = Runtime.get().load_program(str(model))
                self._method = program.load_method("forward")
            except Exception as exc:
                raise ModelLoadError(
                    f"{model} is not a loadable ExecuTorch program ({type(exc).__name__})"
                ) from exc
        meta = self._method.metadata
        sizes = meta.input_tensor_meta(0).sizes()
        super().__init__("input", tuple(int(d) for d in sizes))

    def _infer_impl(self, x: np.ndarray) -> dict[str, np.ndarray]:
        import torch

        outs = self._method.execute([torch.from_numpy(x)])
        return {f"output_{i}": np.asarray(o.detach().numpy(), dtype=np.float32) for i, o in enumerate(outs)}
