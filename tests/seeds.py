"""Small, faithful versions of the detectors edgekit's first users deploy (issue 25), built only
from torch (importable as ``tests.seeds:build_<family>``): the real block structure at small
widths, random weights, BatchNorm statistics made live by forward passes in training mode.

- ``bnext``: a BNext-style binary network (float stem and head; 1-bit 3x3 convolutions: the sign
  of the activation minus a learned per-channel shift, the sign of the weights times a
  per-output-channel scale; RPReLU; BatchNorm; residuals).
- ``spsl``: Spatial-Phase Shallow Learning: the phase spectrum of the grey image (FFT, keep the
  phase, inverse FFT) as a fourth channel next to RGB, then a shallow Xception.
- ``b4att``: an EfficientNet-B4-shaped network with the attention branch of the ICPR 2020
  ensemble detectors (a 1x1 conv and a sigmoid over mid-level features, multiplied in).
- ``xception``: Xception's entry/middle/exit flows of separable convolutions.
"""

from __future__ import annotations

import torch
from torch import nn

# --------------------------------------------------------------------------- BNext-style binary


class RSign(nn.Module):
    """Sign of the activation minus a learned per-channel shift (ReActNet/BNext's RSign)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.shift = nn.Parameter(torch.zeros(1, channels, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x - self.shift
        if self.training:  # straight-through estimator, as BNext trains: sign forward, identity back
            return y + (torch.sign(y) - y).detach()
        return torch.sign(y)


class RPReLU(nn.Module):
    """PReLU between a learned input shift and output shift (ReActNet/BNext)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.shift_in = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.prelu = nn.PReLU(channels, init=0.25)
        self.shift_out = nn.Parameter(torch.zeros(1, channels, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.prelu(x - self.shift_in) + self.shift_out
        return out


class BinaryConv2d(nn.Conv2d):
    """1-bit weights: sign(w) times the mean |w| of each output channel (XNOR-Net/BNext scaling)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.weight.abs().mean(dim=(1, 2, 3), keepdim=True)
        w = self.weight
        binary = w + (torch.sign(w) - w).detach() if self.training else torch.sign(w)  # STE in training
        return self._conv_forward(x, binary * scale, self.bias)


class BinaryBlock(nn.Module):
    """RSign -> 1-bit 3x3 conv -> BN -> RPReLU, plus the (pooled) input: BNext's basic unit."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.sign = RSign(cin)
        self.conv = BinaryConv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        self.act = RPReLU(cout)
        self.skip: nn.Module = nn.Identity()
        if stride != 1 or cin != cout:  # float downsampling path, as in ReActNet/BNext
            self.skip = nn.Sequential(nn.AvgPool2d(2, stride), nn.Conv2d(cin, cout, 1, bias=False),
                                      nn.BatchNorm2d(cout))  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.act(self.bn(self.conv(self.sign(x)))) + self.skip(x)
        return out


class BNextTiny(nn.Module):
    """Float stem, four binary blocks, float 1x1 and head."""

    def __init__(self, classes: int = 1, width: int = 16) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, width, 3, 2, 1, bias=False), nn.BatchNorm2d(width), nn.PReLU(width)
        )
        self.blocks = nn.Sequential(
            BinaryBlock(width, width, 1), BinaryBlock(width, 2 * width, 2),
            BinaryBlock(2 * width, 2 * width, 1), BinaryBlock(2 * width, 4 * width, 2),
        )  # fmt: skip
        self.pointwise = nn.Sequential(
            nn.Conv2d(4 * width, 4 * width, 1), nn.BatchNorm2d(4 * width), nn.ReLU()
        )
        self.fc = nn.Linear(4 * width, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.pointwise(self.blocks(self.stem(x))).mean((2, 3))
        out: torch.Tensor = self.fc(y)
        return out


# --------------------------------------------------------------------------- Xception


class SeparableConv2d(nn.Module):
    """Depthwise 3x3 then pointwise 1x1 (Xception's building op)."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(cin, cin, 3, 1, 1, groups=cin, bias=False)
        self.pointwise = nn.Conv2d(cin, cout, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.pointwise(self.depthwise(x))
        return out


class XceptionBlock(nn.Module):
    """``reps`` x (ReLU, separable conv, BN), max-pool when strided, 1x1 strided skip."""

    def __init__(self, cin: int, cout: int, reps: int, stride: int, relu_first: bool = True) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for i in range(reps):
            if i or relu_first:
                layers.append(nn.ReLU())
            layers += [SeparableConv2d(cin if i == 0 else cout, cout), nn.BatchNorm2d(cout)]
        if stride != 1:
            layers.append(nn.MaxPool2d(3, stride, 1))
        self.body = nn.Sequential(*layers)
        self.skip: nn.Module = nn.Identity()
        if stride != 1 or cin != cout:
            self.skip = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.body(x) + self.skip(x)
        return out


class XceptionTiny(nn.Module):
    """Entry flow (two convs, three strided blocks), ``middle`` middle-flow blocks, exit flow."""

    def __init__(self, classes: int = 1, width: int = 8, middle: int = 2, in_channels: int = 3) -> None:
        super().__init__()
        w = width
        self.entry = nn.Sequential(
            nn.Conv2d(in_channels, w, 3, 2, 1, bias=False), nn.BatchNorm2d(w), nn.ReLU(),
            nn.Conv2d(w, 2 * w, 3, 1, 1, bias=False), nn.BatchNorm2d(2 * w), nn.ReLU(),
            XceptionBlock(2 * w, 4 * w, 2, 2, relu_first=False), XceptionBlock(4 * w, 8 * w, 2, 2),
        )  # fmt: skip
        self.middle = nn.Sequential(*[XceptionBlock(8 * w, 8 * w, 3, 1) for _ in range(middle)])
        self.exit = nn.Sequential(
            XceptionBlock(8 * w, 12 * w, 2, 2), SeparableConv2d(12 * w, 16 * w), nn.BatchNorm2d(16 * w), nn.ReLU(),
        )  # fmt: skip
        self.fc = nn.Linear(16 * w, classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.exit(self.middle(self.entry(x)))
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.fc(self.features(x).mean((2, 3)))
        return out


# --------------------------------------------------------------------------- SPSL


def phase_channel(rgb: torch.Tensor) -> torch.Tensor:
    """The phase-only reconstruction of the grey image: FFT, unit amplitude, inverse FFT, real part."""
    grey = rgb.mean(dim=1, keepdim=True)
    spectrum = torch.fft.fft2(grey)
    phase_only = torch.exp(1j * torch.angle(spectrum))
    return torch.fft.ifft2(phase_only).real


class SPSLTiny(nn.Module):
    """RGB plus its phase channel into a shallow Xception (entry flow and one middle block)."""

    def __init__(self, classes: int = 1, width: int = 8) -> None:
        super().__init__()
        self.backbone = XceptionTiny(classes, width, middle=1, in_channels=4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.backbone(torch.cat([x, phase_channel(x)], dim=1))
        return out


# --------------------------------------------------------------------------- EfficientNet-B4 + attention


class MBConv(nn.Module):
    """EfficientNet's inverted residual: expand 1x1, depthwise kxk, squeeze-excitation, project 1x1."""

    def __init__(self, cin: int, cout: int, expand: int, kernel: int, stride: int) -> None:
        super().__init__()
        mid = cin * expand
        self.expand = (nn.Sequential(nn.Conv2d(cin, mid, 1, bias=False), nn.BatchNorm2d(mid), nn.SiLU())
                       if expand != 1 else nn.Identity())  # fmt: skip
        self.depthwise = nn.Sequential(nn.Conv2d(mid, mid, kernel, stride, kernel // 2, groups=mid, bias=False),
                                       nn.BatchNorm2d(mid), nn.SiLU())  # fmt: skip
        squeeze = max(1, cin // 4)
        self.se = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(mid, squeeze, 1), nn.SiLU(),
                                nn.Conv2d(squeeze, mid, 1), nn.Sigmoid())  # fmt: skip
        self.project = nn.Sequential(nn.Conv2d(mid, cout, 1, bias=False), nn.BatchNorm2d(cout))
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.depthwise(self.expand(x))
        y = self.project(y * self.se(y))
        return x + y if self.residual else y


class B4AttentionTiny(nn.Module):
    """EfficientNet-B4-shaped stages with the ICPR 2020 attention: after the middle stage a 1x1
    conv and a sigmoid give a one-channel map that multiplies the features; the head follows."""

    def __init__(self, classes: int = 1, width: int = 8) -> None:
        super().__init__()
        w = width
        self.stem = nn.Sequential(nn.Conv2d(3, w, 3, 2, 1, bias=False), nn.BatchNorm2d(w), nn.SiLU())
        self.early = nn.Sequential(MBConv(w, w, 1, 3, 1), MBConv(w, 2 * w, 6, 3, 2), MBConv(2 * w, 2 * w, 6, 3, 1),
                                   MBConv(2 * w, 3 * w, 6, 5, 2))  # fmt: skip
        self.attconv = nn.Conv2d(3 * w, 1, 1)
        self.late = nn.Sequential(MBConv(3 * w, 4 * w, 6, 3, 2), MBConv(4 * w, 4 * w, 6, 5, 1))
        self.head = nn.Sequential(nn.Conv2d(4 * w, 8 * w, 1, bias=False), nn.BatchNorm2d(8 * w), nn.SiLU())
        self.dropout = nn.Dropout(0.2)
        self.fc = nn.Linear(8 * w, classes)

    def attention(self, x: torch.Tensor) -> torch.Tensor:
        """The one-channel attention map over the middle features (what the ICPR detectors plot)."""
        return torch.sigmoid(self.attconv(self.early(self.stem(x))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mid = self.early(self.stem(x))
        mid = mid * torch.sigmoid(self.attconv(mid))
        out: torch.Tensor = self.fc(self.dropout(self.head(self.late(mid)).mean((2, 3))))
        return out


# --------------------------------------------------------------------------- factories


def _live(model: nn.Module, seed: int, size: int, in_channels: int = 3) -> nn.Module:
    """Random weights (fixed by ``seed``), then BatchNorm statistics from forward passes in training
    mode, as a trained network has them (not the 0/1 of a fresh layer)."""
    torch.manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.momentum = None  # a plain average over the passes
            with torch.no_grad():
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
        if isinstance(m, (RSign, RPReLU)):
            with torch.no_grad():
                for p in m.parameters():
                    if p.dim() == 4:
                        p.uniform_(-0.1, 0.1)
    model.train()
    with torch.no_grad():
        for _ in range(4):
            model(torch.rand(8, in_channels, size, size) * 2 - 1)
    return model.eval()


def _build(kind: type[nn.Module], classes: int, width: int, seed: int, size: int) -> nn.Module:
    torch.manual_seed(seed)
    return _live(kind(classes, width), seed, size)


def build_bnext(classes: int = 1, width: int = 16, seed: int = 0, size: int = 64) -> nn.Module:
    """A BNext-style binary detector with live BatchNorm statistics."""
    return _build(BNextTiny, classes, width, seed, size)


def build_xception(classes: int = 1, width: int = 8, seed: int = 0, size: int = 64) -> nn.Module:
    """A small Xception detector with live BatchNorm statistics."""
    return _build(XceptionTiny, classes, width, seed, size)


def build_spsl(classes: int = 1, width: int = 8, seed: int = 0, size: int = 64) -> nn.Module:
    """An SPSL detector (phase channel computed inside forward) with live BatchNorm statistics."""
    return _build(SPSLTiny, classes, width, seed, size)


def build_b4att(classes: int = 1, width: int = 8, seed: int = 0, size: int = 64) -> nn.Module:
    """An EfficientNet-B4-shaped detector with the attention branch, live BatchNorm statistics."""
    return _build(B4AttentionTiny, classes, width, seed, size)
