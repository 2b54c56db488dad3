"""Cross-layer equalization keeps float outputs; bias correction cancels a systematic INT8 shift."""

from __future__ import annotations

import numpy as np
import torch

from edgekit.compress.equalize import equalize, find_units, folded_weight
from tests.models import Offset, offset_inputs


class DwPw(torch.nn.Module):
    """depthwise conv + BN + act -> pointwise conv + BN -> pooled logit, with uneven channel ranges."""

    def __init__(self, act: torch.nn.Module) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.stem = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.dw = torch.nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=False)
        self.bn1 = torch.nn.BatchNorm2d(8)
        self.act = act
        self.pw = torch.nn.Conv2d(8, 6, 1, bias=False)
        self.bn2 = torch.nn.BatchNorm2d(6)
        self.fc = torch.nn.Linear(6, 1)
        with torch.no_grad():
            self.dw.weight.mul_(torch.logspace(-2, 1, 8).reshape(8, 1, 1, 1))  # ranges over 3 decades
            for bn in (self.bn1, self.bn2):
                bn.running_mean.uniform_(-0.5, 0.5)
                bn.running_var.uniform_(0.2, 3.0)
                bn.weight.uniform_(0.5, 2.0)
                bn.bias.uniform_(-0.3, 0.3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn2(self.pw(self.act(self.bn1(self.dw(self.stem(x))))))
        return self.fc(y.mean((2, 3)))


def _x(n: int = 8) -> np.ndarray:
    return np.random.default_rng(1).standard_normal((n, 3, 16, 16)).astype(np.float32)


def _run(module: torch.nn.Module, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return np.concatenate([module(torch.from_numpy(x[i : i + 1])).numpy() for i in range(len(x))])


def test_cle_equalizes_a_relu_pair_and_leaves_the_float_output_unchanged() -> None:
    model = DwPw(torch.nn.ReLU()).eval()
    x = _x()
    gm, report = equalize(model, torch.from_numpy(x[:1]), cle=True, bias_correction=False)
    assert report.pairs  # dw -> pw at least (stem -> dw has no BN but is a pair as well)
    np.testing.assert_allclose(_run(gm, x), _run(model, x), rtol=1e-4, atol=1e-5)
    units = {u.weight: u for u in find_units(gm).values()}
    dw, _ = folded_weight(gm, units["dw.weight"])
    pw, _ = folded_weight(gm, units["pw.weight"])
    r_dw = dw.abs().reshape(8, -1).amax(dim=1)
    r_pw = pw.abs().transpose(0, 1).reshape(8, -1).amax(dim=1)
    np.testing.assert_allclose(r_dw.numpy(), r_pw.numpy(), rtol=1e-3)  # each channel's ranges now meet
    original = torch.export.export(model, (torch.from_numpy(x[:1]),)).module()
    w0, _ = folded_weight(original, {u.weight: u for u in find_units(original).values()}["dw.weight"])
    r0 = w0.abs().reshape(8, -1).amax(dim=1)
    assert float(r_dw.max() / r_dw.min()) < 0.2 * float(r0.max() / r0.min())  # the 3 decades shrank
    # the caller's model is untouched
    assert torch.equal(model.dw.weight, DwPw(torch.nn.ReLU()).dw.weight)


def test_cle_leaves_relu6_pairs_alone() -> None:
    model = DwPw(torch.nn.ReLU6()).eval()
    x = _x()
    gm, report = equalize(model, torch.from_numpy(x[:1]), cle=True, bias_correction=False)
    names = {b for _, b in report.pairs}
    units = find_units(gm)
    pw = next(u.node for u in units.values() if u.weight == "pw.weight")
    assert pw not in names  # ReLU6 between dw and pw: not scale-equivariant, skipped
    np.testing.assert_allclose(_run(gm, x), _run(model, x), rtol=1e-5, atol=1e-6)


def test_bias_correction_cancels_the_rounding_shift() -> None:
    model = Offset().eval()
    x = offset_inputs(16, 16)
    gm, report = equalize(model, torch.from_numpy(x[:1]), [x[:8], x[8:]], cle=False)
    assert len(report.corrected) == 2 and report.max_shift > 0.4

    # simulate per-channel INT8 weights on both: the corrected model lands on the float output
    def rounded(m: torch.nn.Module) -> torch.nn.Module:
        from edgekit.compress.equalize import int8_rounding_error

        with torch.no_grad():
            for name, p in m.named_parameters():
                if name.endswith("weight"):
                    p.add_(int8_rounding_error(p))
        return m

    ref = _run(model, x)
    plain = _run(rounded(torch.export.export(model, (torch.from_numpy(x[:1]),)).module()), x)
    fixed = _run(rounded(gm), x)
    assert np.abs(plain - ref).mean() > 1.0 and np.abs(fixed - ref).max() < 0.05
