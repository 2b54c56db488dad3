"""Compare a candidate's outputs with the reference's on the same inputs.

All inputs are plain arrays so a host run today can be compared with a phone run
tomorrow; results are frozen dataclasses that save to JSON.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from edgekit.errors import AnalysisError
from edgekit.spec import OutputKind, OutputSpec, Tolerance


def fake_scores(outputs: np.ndarray, spec: OutputSpec) -> np.ndarray:
    """Probability of "fake" per sample from raw outputs (N, k)."""
    out = np.asarray(outputs, dtype=np.float64).reshape(outputs.shape[0], -1)
    if spec.classes == 1:
        col = out[:, 0]
        if spec.kind is OutputKind.PROBS:
            return col
        sig: np.ndarray = 1.0 / (1.0 + np.exp(-np.clip(col, -60, 60)))
        return sig
    if spec.kind is OutputKind.PROBS:
        return out[:, spec.positive_index]
    shifted = out - out.max(axis=1, keepdims=True)
    probs: np.ndarray = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
    return probs[:, spec.positive_index]


@dataclass(frozen=True)
class ParityResult:
    """How far a candidate is from the reference, and whether that is within tolerance."""

    samples: int
    max_abs_diff: float
    mean_abs_diff: float
    sqnr_db: float
    cosine: float
    max_score_diff: float
    mean_score_diff: float
    score_agreement: float
    flips: int
    flip_rate: float
    passed: bool
    reasons: tuple[str, ...]
    tolerance: dict[str, Any]

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ParityResult:
        """The inverse of :meth:`to_dict` ("inf" strings back to floats)."""
        values: dict[str, Any] = {k: (float(v) if v in ("inf", "-inf") else v) for k, v in d.items()}
        values["reasons"] = tuple(values.get("reasons") or ())
        return cls(**{k: values[k] for k in cls.__dataclass_fields__})

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict (infinite SQNR becomes the string "inf")."""
        d = asdict(self)
        d["reasons"] = list(self.reasons)
        for k, v in d.items():
            if isinstance(v, float) and not math.isfinite(v):
                d[k] = "inf" if v > 0 else "-inf"
        return d


def sqnr_db(reference: np.ndarray, candidate: np.ndarray) -> float:
    """Signal-to-quantization-noise ratio of ``candidate`` against ``reference`` in dB."""
    ref = np.asarray(reference, np.float64).ravel()
    noise = float(np.sum((ref - np.asarray(candidate, np.float64).ravel()) ** 2))
    signal = float(np.sum(ref**2))
    if noise == 0.0:
        return math.inf
    if signal == 0.0:
        return -math.inf
    return 10.0 * math.log10(signal / noise)


def cosine_similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine of the angle between the flattened arrays (1.0 for two zero vectors)."""
    x, y = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    nx, ny = float(np.linalg.norm(x)), float(np.linalg.norm(y))
    if nx == 0.0 and ny == 0.0:
        return 1.0
    if nx == 0.0 or ny == 0.0:
        return 0.0
    return float(np.dot(x, y) / (nx * ny))


def compare(
    reference: np.ndarray,
    candidate: np.ndarray,
    output: OutputSpec,
    tolerance: Tolerance,
    threshold: float = 0.5,
    agreement_eps: float = 0.01,
) -> ParityResult:
    """Compare raw outputs (N, k) of a candidate with the reference's."""
    ref = np.asarray(reference, np.float64)
    cand = np.asarray(candidate, np.float64)
    if ref.shape != cand.shape:
        raise AnalysisError(
            f"output shapes differ: reference {ref.shape}, candidate {cand.shape}; the variant does not match its model"
        )
    n = int(ref.shape[0])
    diff = np.abs(ref - cand)
    s_ref, s_cand = fake_scores(ref, output), fake_scores(cand, output)
    sdiff = np.abs(s_ref - s_cand)
    flips = int(np.sum((s_ref >= threshold) != (s_cand >= threshold)))
    flip_rate = flips / n if n else 0.0
    q = sqnr_db(ref, cand)
    reasons: list[str] = []
    if not np.all(np.isfinite(cand)):
        reasons.append("non-finite outputs")
    if tolerance.max_score_diff is not None and float(sdiff.max(initial=0.0)) > tolerance.max_score_diff:
        reasons.append(f"max score diff {float(sdiff.max()):.3g} > {tolerance.max_score_diff:g}")
    if flip_rate > tolerance.max_flip_rate:
        reasons.append(f"flip rate {flip_rate:.1%} > {tolerance.max_flip_rate:.1%}")
    if tolerance.min_sqnr_db is not None and q < tolerance.min_sqnr_db:
        reasons.append(f"SQNR {q:.1f} dB < {tolerance.min_sqnr_db:g} dB")
    return ParityResult(
        samples=n,
        max_abs_diff=float(diff.max(initial=0.0)),
        mean_abs_diff=float(diff.mean()) if n else 0.0,
        sqnr_db=q,
        cosine=cosine_similarity(ref, cand),
        max_score_diff=float(sdiff.max(initial=0.0)),
        mean_score_diff=float(sdiff.mean()) if n else 0.0,
        score_agreement=float(np.mean(sdiff <= agreement_eps)) if n else 1.0,
        flips=flips,
        flip_rate=flip_rate,
        passed=not reasons,
        reasons=tuple(reasons),
        tolerance=tolerance.to_dict(),
    )


def auc_or_none(scores: np.ndarray, labels: tuple[int | None, ...]) -> float | None:
    """ROC AUC when every sample is labelled and both classes are present, else None."""
    if not labels or any(label is None for label in labels) or len(set(labels)) < 2:
        return None
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(np.asarray(labels, dtype=np.int64), scores))
