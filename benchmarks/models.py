"""Reference architectures for the benchmarks, built from torch.nn with random but fixed weights.

A MobileNetV2-like and an EfficientNet-B0-like binary detector (224x224, one logit), and a
width-scalable MobileNetV2 for the export cost curve (1M to 60M parameters).
"""

from __future__ import annotations

import torch
from torch import nn


def _conv_bn(
    cin: int, cout: int, k: int, s: int, groups: int = 1, act: type[nn.Module] = nn.ReLU6
) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, k, s, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout), act()
    )


class _MBConv(nn.Module):
    def __init__(
        self, cin: int, cout: int, expand: int, k: int, s: int, se: bool, act: type[nn.Module]
    ) -> None:
        super().__init__()
        hidden = cin * expand
        layers: list[nn.Module] = [] if expand == 1 else [_conv_bn(cin, hidden, 1, 1, act=act)]
        layers.append(_conv_bn(hidden, hidden, k, s, groups=hidden, act=act))
        if se:
            squeeze = max(8, cin // 4)
            self.se: nn.Module | None = nn.Sequential(
                nn.AdaptiveAvgPool2d(1),
                nn.Conv2d(hidden, squeeze, 1),
                act(),
                nn.Conv2d(squeeze, hidden, 1),
                nn.Sigmoid(),
            )
        else:
            self.se = None
        self.expand = nn.Sequential(*layers)
        self.project = nn.Sequential(nn.Conv2d(hidden, cout, 1, bias=False), nn.BatchNorm2d(cout))
        self.residual = s == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.expand(x)
        if self.se is not None:
            y = y * self.se(y)
        y = self.project(y)
        return x + y if self.residual else y


class _Net(nn.Module):
    def __init__(self, stem: int, blocks: list[tuple[int, int, int, int, int, bool]], head: int,
                 act: type[nn.Module], width: float = 1.0) -> None:  # fmt: skip
        super().__init__()

        def w(c: int) -> int:
            return max(8, round(c * width / 8) * 8)

        layers: list[nn.Module] = [_conv_bn(3, w(stem), 3, 2, act=act)]
        cin = w(stem)
        for expand, cout, repeats, k, s, se in blocks:
            for r in range(repeats):
                layers.append(_MBConv(cin, w(cout), expand, k, s if r == 0 else 1, se, act))
                cin = w(cout)
        layers.append(_conv_bn(cin, w(head), 1, 1, act=act))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(w(head), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.classifier(self.features(x).mean((2, 3)))
        return out


_MBV2 = [(1, 16, 1, 3, 1, False), (6, 24, 2, 3, 2, False), (6, 32, 3, 3, 2, False), (6, 64, 4, 3, 2, False),
         (6, 96, 3, 3, 1, False), (6, 160, 3, 3, 2, False), (6, 320, 1, 3, 1, False)]  # fmt: skip
_EFFB0 = [(1, 16, 1, 3, 1, True), (6, 24, 2, 3, 2, True), (6, 40, 2, 5, 2, True), (6, 80, 3, 3, 2, True),
          (6, 112, 3, 5, 1, True), (6, 192, 4, 5, 2, True), (6, 320, 1, 3, 1, True)]  # fmt: skip


def _init(model: nn.Module, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.uniform_(m.weight, 0.5, 1.0)
            m.running_var.uniform_(0.5, 2.0)
    return model.eval()


def mobilenet_v2(width: float = 1.0, seed: int = 0) -> nn.Module:
    """MobileNetV2-like detector (about 2.2M parameters at width 1)."""
    return _init(_Net(32, _MBV2, 1280, nn.ReLU6, width), seed)


def efficientnet_b0(seed: int = 0) -> nn.Module:
    """EfficientNet-B0-like detector (SiLU, squeeze-excite; about 4M parameters)."""
    return _init(_Net(32, _EFFB0, 1280, nn.SiLU), seed)


def params(model: nn.Module) -> int:
    """Number of parameters."""
    return sum(p.numel() for p in model.parameters())
