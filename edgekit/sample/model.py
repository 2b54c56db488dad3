"""The bundled sample detector: a small MobileNetV3/EfficientNet-style binary classifier.

It has the parts that make real detectors hard to quantize (depthwise convs,
squeeze-and-excitation, hardswish, BatchNorm, global pooling, one output logit)
while staying small enough to train on a laptop CPU in minutes.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

#: (expand ratio, out channels, kernel, stride, use SE)
_BLOCKS: tuple[tuple[int, int, int, int, bool], ...] = (
    (1, 16, 3, 1, False),
    (4, 24, 3, 2, False),
    (3, 24, 3, 1, False),
    (3, 40, 5, 2, True),
    (3, 40, 5, 1, True),
    (6, 80, 3, 2, False),
    (3, 80, 3, 1, False),
    (6, 112, 3, 1, True),
    (6, 160, 5, 2, True),
    (6, 160, 5, 1, True),
)


class SqueezeExcite(nn.Module):
    """Channel attention as in MobileNetV3 (hardsigmoid gate)."""

    def __init__(self, channels: int, reduction: int = 4) -> None:
        super().__init__()
        hidden = max(8, channels // reduction)
        self.fc1 = nn.Conv2d(channels, hidden, 1)
        self.act = nn.ReLU()
        self.fc2 = nn.Conv2d(hidden, channels, 1)
        self.gate = nn.Hardsigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.mean((2, 3), keepdim=True)
        gate: torch.Tensor = self.gate(self.fc2(self.act(self.fc1(s))))
        return x * gate


class InvertedResidual(nn.Module):
    """Expand (1x1) -> depthwise (kxk) -> optional SE -> project (1x1), residual when shapes match."""

    def __init__(self, cin: int, expand: int, cout: int, kernel: int, stride: int, se: bool) -> None:
        super().__init__()
        hidden = cin * expand
        layers: list[nn.Module] = []
        if expand != 1:
            layers += [nn.Conv2d(cin, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.Hardswish()]
        layers += [
            nn.Conv2d(hidden, hidden, kernel, stride, kernel // 2, groups=hidden, bias=False),
            nn.BatchNorm2d(hidden),
            nn.Hardswish(),
        ]
        if se:
            layers.append(SqueezeExcite(hidden))
        layers += [nn.Conv2d(hidden, cout, 1, bias=False), nn.BatchNorm2d(cout)]
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y: torch.Tensor = self.body(x)
        return x + y if self.residual else y


class SampleDetector(nn.Module):
    """Binary real/fake detector; returns one logit per image (positive = fake)."""

    def __init__(self, width: int = 16, head: int = 640, hidden: int = 1024, dropout: float = 0.2) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, width, 3, 2, 1, bias=False), nn.BatchNorm2d(width), nn.Hardswish()
        )
        blocks: list[nn.Module] = []
        cin = width
        for expand, cout, kernel, stride, se in _BLOCKS:
            blocks.append(InvertedResidual(cin, expand, cout, kernel, stride, se))
            cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.neck = nn.Sequential(nn.Conv2d(cin, head, 1, bias=False), nn.BatchNorm2d(head), nn.Hardswish())
        # MobileNetV3-style classifier: pooled features -> wide FC -> hardswish -> dropout -> logit.
        self.fc = nn.Linear(head, hidden)
        self.fc_act = nn.Hardswish()
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(hidden, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.neck(self.blocks(self.stem(x)))
        x = x.mean((2, 3))
        logit: torch.Tensor = self.classifier(self.dropout(self.fc_act(self.fc(x))))
        return logit


def build_sample_detector(**kwargs: Any) -> SampleDetector:
    """Factory usable as ``--arch edgekit.sample.model:build_sample_detector``."""
    return SampleDetector(**kwargs)
