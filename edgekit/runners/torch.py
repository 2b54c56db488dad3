"""PyTorch eager runner: the reference every exported variant is compared with."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from edgekit.runners.base import Runner

if TYPE_CHECKING:
    import torch


class TorchRunner(Runner):
    """Runs an eval-mode ``nn.Module`` on CPU with autograd off."""

    backend = "torch"

    def __init__(
        self, module: torch.nn.Module, input_shape: tuple[int, ...], input_name: str = "input"
    ) -> None:
        super().__init__(input_name, input_shape)
        self.module = module

    def _infer_impl(self, x: np.ndarray) -> dict[str, np.ndarray]:
        import torch

        with torch.inference_mode():
            y = self.module(torch.from_numpy(x))
        if isinstance(y, (tuple, list)):
            y = y[0]
        return {"output": y.detach().cpu().numpy().astype(np.float32)}
