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
    #: flips whose reference and candidate scores both lie within ``near`` of the threshold
    #: (0.499 -> 0.501), apart from confident reversals
    near_threshold_flips: int = 0
    #: Wilson 95% interval of the flip rate: with 64 samples "<= 1% flips" cannot be told from 5%
    flip_rate_ci95: tuple[float, float] = (0.0, 0.0)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ParityResult:
        """The inverse of :meth:`to_dict` ("inf" strings back to floats)."""
        values: dict[str, Any] = {k: (float(v) if v in ("inf", "-inf") else v) for k, v in d.items()}
        values["reasons"] = tuple(values.get("reasons") or ())
        values["flip_rate_ci95"] = tuple(values.get("flip_rate_ci95") or (0.0, 0.0))
        return cls(**{k: values[k] for k in cls.__dataclass_fields__ if k in values})

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict (infinite SQNR becomes the string "inf")."""
        d = asdict(self)
        d["reasons"] = list(self.reasons)
        d["flip_rate_ci95"] = list(self.flip_rate_ci95)
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
    near: float = 0.05,
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
    flipped = (s_ref >= threshold) != (s_cand >= threshold)
    flips = int(np.sum(flipped))
    near_flips = int(
        np.sum(flipped & (np.abs(s_ref - threshold) <= near) & (np.abs(s_cand - threshold) <= near))
    )
    flip_rate = flips / n if n else 0.0
    q = sqnr_db(ref, cand)
    reasons: list[str] = []
    if not np.all(np.isfinite(cand)):
        reasons.append("non-finite outputs")
    elif (
        n >= 2
        and float(np.ptp(cand, axis=0).max(initial=0.0)) == 0.0
        and float(np.ptp(ref, axis=0).max(initial=0.0)) > 1e-6
    ):
        # e.g. an INT8 output whose quantization range collapsed: every input gives the same answer
        shown = np.array2string(cand[0], precision=4, separator=", ", threshold=8)
        reasons.append(f"output collapsed: {shown} for all {n} inputs while the reference varies")
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
        near_threshold_flips=near_flips,
        flip_rate_ci95=wilson_interval(flips, n),
    )


def wilson_interval(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval of a proportion ``k / n`` (95% by default)."""
    if n <= 0:
        return (0.0, 1.0)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (round(max(0.0, centre - half), 4), round(min(1.0, centre + half), 4))


def reference_warnings(
    reference: np.ndarray,
    output: OutputSpec,
    labels: tuple[int | None, ...],
    threshold: float,
    preprocess_source: str,
) -> list[str]:
    """What looks wrong with the PyTorch model itself on labelled data, before any conversion.

    A constant output, scores collapsed at one end, or chance accuracy at the threshold
    while AUC is high: each gets one line naming the likely cause. Parity cannot see these
    (every variant agrees with a broken reference).
    """
    out: list[str] = []
    ref = np.asarray(reference, np.float64)
    if len(ref) >= 2 and float(np.ptp(ref, axis=0).max(initial=0.0)) < 1e-6:
        out.append(
            f"the PyTorch model gives the same output for all {len(ref)} parity inputs; "
            "it ignores its input (check the weights, the input size and the preprocessing)"
        )
    cause = (
        "likely cause: the preprocessing was assumed (ImageNet mean/std); pass --mean/--std, or store the "
        "model's with edgekit.save_pt2"
        if preprocess_source == "assumed"
        else "likely cause: a preprocessing (--mean/--std, --resize) or --threshold unlike the training one"
    )
    if not labels or any(lb is None for lb in labels) or len(set(labels)) < 2:
        return out
    y = np.asarray(labels, dtype=np.int64)
    scores = fake_scores(ref, output)
    above = float(np.mean(scores >= threshold))
    accuracy = float(np.mean((scores >= threshold) == (y == 1)))
    auc = auc_or_none(scores, labels) or 0.0
    if above >= 0.98 or above <= 0.02:
        side = "at or above" if above >= 0.98 else "below"
        out.append(
            f"scores collapsed: {max(above, 1 - above):.0%} of the labelled parity images score {side} the "
            f"threshold {threshold:g} (accuracy {accuracy:.2f}, AUC {auc:.2f}); {cause}"
        )
    elif auc >= 0.8 and accuracy <= 0.65:
        out.append(
            f"accuracy at the threshold {threshold:g} is {accuracy:.2f} while AUC is {auc:.2f}: the scores rank "
            f"well but sit on the wrong side of the threshold; {cause}"
        )
    return out


def auc_or_none(scores: np.ndarray, labels: tuple[int | None, ...]) -> float | None:
    """ROC AUC when every sample is labelled and both classes are present, else None."""
    if not labels or any(label is None for label in labels) or len(set(labels)) < 2:
        return None
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(np.asarray(labels, dtype=np.int64), scores))
