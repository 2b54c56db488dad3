"""Latency statistics from the app's raw per-iteration timings (computed on the host)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from edgekit.errors import ProtocolError


@dataclass(frozen=True)
class LatencyStats:
    """Summary of one cell's timed runs, in milliseconds."""

    count: int
    mean: float
    std: float
    min: float
    max: float
    p50: float
    p90: float
    p99: float
    trimmed_mean: float

    def to_dict(self) -> dict[str, Any]:
        """Plain data, rounded to microseconds."""
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def latency_stats(timings_ms: list[float] | tuple[float, ...], trim: float = 0.1) -> LatencyStats:
    """Mean, std, min, max, p50/p90/p99 (linear interpolation) and a ``trim``-trimmed mean."""
    t = np.sort(np.asarray(timings_ms, dtype=np.float64))
    if t.size == 0:
        raise ProtocolError("the result holds no timings; rerun the cell")
    k = int(t.size * trim)
    kept = t[k : t.size - k] if t.size - 2 * k > 0 else t
    p50, p90, p99 = (float(v) for v in np.percentile(t, [50, 90, 99]))
    return LatencyStats(
        count=int(t.size),
        mean=float(t.mean()),
        std=float(t.std(ddof=1)) if t.size > 1 else 0.0,
        min=float(t[0]),
        max=float(t[-1]),
        p50=p50,
        p90=p90,
        p99=p99,
        trimmed_mean=float(kept.mean()),
    )
