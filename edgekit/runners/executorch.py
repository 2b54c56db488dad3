"""ExecuTorch runner: a ``.pte`` file through the ExecuTorch runtime's Python bindings."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgekit._capture import captured_output
from edgekit.errors import ExportError, ModelLoadError
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
        self._model = Path(model)
        meta = self._method.metadata
        sizes = meta.input_tensor_meta(0).sizes()
        super().__init__("input", tuple(int(d) for d in sizes))

    def _infer_impl(self, x: np.ndarray) -> dict[str, np.ndarray]:
        import torch

        failure: RuntimeError | None = None
        with captured_output() as cap:  # the runtime logs why to stderr, then raises a bare code
            try:
                outs = self._method.execute([torch.from_numpy(x)])
            except RuntimeError as exc:
                failure = exc
        if failure is not None:
            said = cap.tail(3) or str(failure)
            raise ExportError(f"ExecuTorch failed running {self._model.name}: {said[-300:]}") from failure
        return {f"output_{i}": np.asarray(o.detach().numpy(), dtype=np.float32) for i, o in enumerate(outs)}
