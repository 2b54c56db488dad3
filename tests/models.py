"""Tiny models for tests: fast to convert, built only from torch.nn (importable as tests.models:...)."""

from __future__ import annotations

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
