"""8-bit activation ranges chosen on sampled values: the clipping with the least quantization error.

Used by the INT8 repair's range steps (on the converted graph's tensors) and by learned rounding
(on the PyTorch graph's layer inputs), so both simulate the same activation rounding."""

from __future__ import annotations

import numpy as np

#: the percentiles the MSE search tries per tensor (100: the sample's own min/max)
MSE_PERCENTILES = (100.0, 99.999, 99.99, 99.95, 99.9, 99.5, 99.0)


def quantization_mse(values: np.ndarray, lo: float, hi: float) -> float:
    """Mean squared error of ``values`` rounded to 8 bits over ``[lo, hi]`` (clipping included)."""
    scale = max(hi - lo, 1e-12) / 255.0
    q = np.clip(np.round((values - lo) / scale), 0, 255) * scale + lo
    return float(np.mean((q - values) ** 2))


def activation_range(values: np.ndarray, percentile: float | None = None) -> tuple[float, float]:
    """An 8-bit activation range for a tensor's sampled ``values`` (always containing 0): the
    ``percentile``-th percentile at each end, or (``None``) whichever of :data:`MSE_PERCENTILES`
    gives the least quantization error, rounding plus clipping, on the values themselves."""
    best: tuple[float, float, float] | None = None
    for p in MSE_PERCENTILES if percentile is None else (percentile,):
        lo, hi = np.percentile(values, [100.0 - p, p])
        lo, hi = float(min(lo, 0.0)), float(max(hi, 0.0))
        err = quantization_mse(values, lo, hi) if percentile is None else 0.0
        if best is None or err < best[0]:
            best = (err, lo, hi)
    assert best is not None
    return best[1], best[2]
