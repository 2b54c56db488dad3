"""PyTorch eager runner: the reference every exported variant is compared with."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

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


def batched_module(module: torch.nn.Module, program: Any, sample: np.ndarray) -> torch.nn.Module | None:
    """A module that takes any batch size and gives ``module``'s batch-1 outputs, or None.

    A torch.export program fixes the batch it was captured at (usually 1); it is captured again
    from its own graph with a dynamic batch dimension. Either way the result must agree with
    ``module`` run one sample at a time on ``sample`` (>= 2 inputs), else None: graphs that
    hard-code the batch in a reshape fail that check rather than give wrong scores.
    """
    import torch

    if len(sample) < 2:
        return None
    x = torch.from_numpy(np.ascontiguousarray(sample[:2], dtype=np.float32))
    try:
        candidate = module
        if program is not None:
            from torch.export import Dim

            dims = ({0: Dim("batch", min=1, max=4096)},)
            with torch.inference_mode(False):
                candidate = torch.export.export(
                    program.module(check_guards=False), (x,), dynamic_shapes=dims, strict=False
                ).module()
        with torch.inference_mode():
            together = candidate(x)
            apart = torch.cat([_first(module(x[i : i + 1])) for i in range(2)])
        together = _first(together)
    except Exception:  # a graph that cannot take a batch: the caller stays at batch 1
        return None
    if together.shape != apart.shape or not torch.allclose(together, apart, atol=1e-4, rtol=1e-4):
        return None
    return candidate


def _first(y: Any) -> Any:
    return y[0] if isinstance(y, (tuple, list)) else y
