"""Tiny models for tests: fast to convert, built only from torch.nn (importable as tests.models:...)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


class TinyDetector(nn.Module):
    """Stem conv, depthwise conv, SE-like gate, hardswish, pooling and a 1- or 2-logit head."""

    def __init__(self, classes: int = 1, width: int = 8) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, width, 3, 2, 1, bias=False), nn.BatchNorm2d(width), nn.Hardswish()
        )
        self.dw = nn.Sequential(
            nn.Conv2d(width, width, 3, 1, 1, groups=width, bias=False), nn.BatchNorm2d(width), nn.Hardswish()
        )
        self.pw = nn.Sequential(nn.Conv2d(width, 2 * width, 1), nn.ReLU())
        self.drop = nn.Dropout(0.1)
        self.head = nn.Linear(2 * width, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.pw(self.dw(self.stem(x))).mean((2, 3))
        out: torch.Tensor = self.head(self.drop(y))
        return out


def build_tiny(classes: int = 1, width: int = 8, seed: int = 0) -> TinyDetector:
    """A deterministic TinyDetector (weights fixed by ``seed``, BN statistics made non-trivial)."""
    torch.manual_seed(seed)
    model = TinyDetector(classes, width)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
    return model.eval()


def build_unconvertible() -> nn.Module:
    """A model whose forward uses an op the LiteRT converter has no lowering for."""

    class Unconvertible(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = self.conv(x).flatten(1)
            return torch.special.bessel_j0(y).sum(1, keepdim=True)

    torch.manual_seed(0)
    return Unconvertible().eval()


def not_a_module() -> int:
    """A factory that returns the wrong type."""
    return 3


class _SEBlock(nn.Module):
    """1x1 expand -> depthwise -> squeeze-excite (hardsigmoid) -> 1x1 project, residual when it fits."""

    def __init__(self, cin: int, hidden: int, cout: int, kernel: int, stride: int) -> None:
        super().__init__()
        self.expand = nn.Sequential(nn.Conv2d(cin, hidden, 1), nn.Hardswish())
        self.dw = nn.Sequential(
            nn.Conv2d(hidden, hidden, kernel, stride, kernel // 2, groups=hidden), nn.Hardswish()
        )
        self.se1 = nn.Conv2d(hidden, hidden // 4, 1)
        self.se2 = nn.Conv2d(hidden // 4, hidden, 1)
        self.project = nn.Conv2d(hidden, cout, 1)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.dw(self.expand(x))
        gate = nn.functional.hardsigmoid(self.se2(torch.relu(self.se1(y.mean((2, 3), keepdim=True)))))
        y = self.project(y * gate)
        return x + y if self.residual else y


class SparseNet(nn.Module):
    """A MobileNetV3-shaped net with every part XNNPACK's sparse region must handle (stem, SE, 5x5, FC head)."""

    def __init__(self, width: int = 32, fc: int = 64) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, width, 3, 2, 1), nn.Hardswish())
        self.blocks = nn.Sequential(
            _SEBlock(width, 4 * width, width, 3, 1),
            _SEBlock(width, 4 * width, 2 * width, 5, 2),
            _SEBlock(2 * width, 4 * width, 2 * width, 3, 1),
        )
        self.neck = nn.Sequential(nn.Conv2d(2 * width, 4 * width, 1), nn.Hardswish())
        self.fc = nn.Linear(4 * width, fc)
        self.head = nn.Linear(fc, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.neck(self.blocks(self.stem(x))).mean((2, 3))
        out: torch.Tensor = self.head(nn.functional.hardswish(self.fc(y)))
        return out


def build_sparse_net(sparsity: float = 0.0, prune_fc: bool = True, fc: int = 64, seed: int = 0) -> SparseNet:
    """A deterministic SparseNet whose 1x1 convs (and FC, with ``prune_fc``) have ``sparsity`` zeros."""
    torch.manual_seed(seed)
    model = SparseNet(fc=fc).eval()
    with torch.no_grad():
        for m in model.modules():
            prunable = (isinstance(m, nn.Conv2d) and m.kernel_size == (1, 1)) or (prune_fc and m is model.fc)
            if prunable and sparsity > 0:
                w = m.weight
                k = round(sparsity * w.numel())
                w.view(-1)[w.abs().flatten().argsort()[:k]] = 0.0
    return model


class Offset(torch.nn.Module):
    """A constant input channel meets conv weights too small for their channel's INT8 scale:
    rounding drops them and shifts every output by the same amount."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)
        self.fc = torch.nn.Linear(4, 1)
        with torch.no_grad():
            self.conv.weight.zero_()
            self.conv.bias.zero_()
            self.conv.weight[:, 0, 1, 1] = 20.0  # sets the channel's scale: 20/127
            self.conv.weight[:, 1] = 0.05  # rounds to 0: loses 0.45 x the constant channel
            self.conv.weight[:, 2, 1, 1] = 10.0
            self.fc.weight.fill_(1.0)
            self.fc.bias.fill_(-1.8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.conv(x).mean((2, 3)))


def offset_inputs(n: int, size: int = 32) -> np.ndarray:
    """channel 0 zero-mean noise, channel 1 the constant 1, channel 2 the +-0.03 class signal."""
    rng = np.random.default_rng(0)
    x = np.zeros((n, 3, size, size), np.float32)
    x[:, 0] = rng.standard_normal((n, size, size)) * 0.02
    x[:, 1] = 1.0
    x[:, 2] = (
        np.where(np.arange(n) % 2 == 0, 0.03, -0.03)[:, None, None]
        + rng.standard_normal((n, size, size)) * 0.002
    )
    return x
