"""Detector metrics (scikit-learn for the curves), per frame and per video.

Conventions follow the field: DeepfakeBench reports accuracy, AUC, EER and AP per frame
and AUC per video; positive class = fake (label 1), score = P(fake).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgekit.errors import UsageError

_EPS = 1e-7


def eer(labels: np.ndarray, scores: np.ndarray) -> tuple[float, float]:
    """(equal error rate, the threshold where FPR = FNR) by interpolation on the ROC curve."""
    from sklearn.metrics import roc_curve

    fpr, tpr, thr = roc_curve(labels, scores)
    fnr = 1 - tpr
    i = int(np.nanargmin(np.abs(fnr - fpr)))
    if i + 1 < len(fpr) and (fnr[i] - fpr[i]) * (fnr[i + 1] - fpr[i + 1]) < 0:
        # Linear interpolation between the two ROC points that straddle FPR = FNR.
        a, b = fnr[i] - fpr[i], fnr[i + 1] - fpr[i + 1]
        t = a / (a - b)
        rate = float(fpr[i] + t * (fpr[i + 1] - fpr[i]))
    else:
        rate = float((fpr[i] + fnr[i]) / 2)
    threshold = float(min(max(thr[i], 0.0), 1.0)) if np.isfinite(thr[i]) else 1.0
    return rate, threshold


def tpr_at_fpr(labels: np.ndarray, scores: np.ndarray, target: float) -> float:
    """Highest TPR with FPR <= ``target``."""
    from sklearn.metrics import roc_curve

    fpr, tpr, _ = roc_curve(labels, scores)
    ok = fpr <= target + 1e-12
    return float(tpr[ok].max()) if ok.any() else 0.0


def binary_metrics(
    labels: Sequence[int] | np.ndarray, scores: Sequence[float] | np.ndarray, threshold: float
) -> dict[str, Any]:
    """Every metric of one variant on one set. AUC-type metrics are None with a single class."""
    from sklearn.metrics import average_precision_score, log_loss, roc_auc_score

    y = np.asarray(labels, dtype=np.int64)
    s = np.clip(np.asarray(scores, dtype=np.float64), 0.0, 1.0)
    pred = (s >= threshold).astype(np.int64)
    tp = int(np.sum((pred == 1) & (y == 1)))
    tn = int(np.sum((pred == 0) & (y == 0)))
    fp = int(np.sum((pred == 1) & (y == 0)))
    fn = int(np.sum((pred == 0) & (y == 1)))
    n = len(y)
    both = len(set(y.tolist())) == 2

    def ratio(a: int, b: int) -> float | None:
        return a / b if b else None

    precision, recall = ratio(tp, tp + fp), ratio(tp, tp + fn)
    f1 = 2 * precision * recall / (precision + recall) if precision and recall else (0.0 if n else None)
    out: dict[str, Any] = {
        "samples": n,
        "real": int(np.sum(y == 0)),
        "fake": int(np.sum(y == 1)),
        "threshold": threshold,
        "tp": tp, "tn": tn, "fp": fp, "fn": fn,
        "accuracy": ratio(tp + tn, n),
        "real_accuracy": ratio(tn, tn + fp),
        "fake_accuracy": ratio(tp, tp + fn),
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "auc": float(roc_auc_score(y, s)) if both else None,
        "ap": float(average_precision_score(y, s)) if both else None,
        "eer": None,
        "eer_threshold": None,
        "tpr_at_fpr_1pct": tpr_at_fpr(y, s, 0.01) if both else None,
        "tpr_at_fpr_5pct": tpr_at_fpr(y, s, 0.05) if both else None,
        "log_loss": float(log_loss(y, np.clip(s, _EPS, 1 - _EPS), labels=[0, 1])) if n else None,
    }  # fmt: skip
    if both:
        out["eer"], out["eer_threshold"] = eer(y, s)
    return out


def aggregate_videos(
    video_ids: Sequence[str], labels: Sequence[int], scores: np.ndarray, how: str = "mean"
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Per-video (ids, labels, scores): frames grouped by video id, score = mean/median/max."""
    if how not in ("mean", "median", "max"):
        raise UsageError(f"unknown video aggregation {how!r}; use mean, median or max")
    reducers: dict[str, Callable[..., Any]] = {"mean": np.mean, "median": np.median, "max": np.max}
    reduce = reducers[how]
    order: dict[str, list[int]] = {}
    for i, vid in enumerate(video_ids):
        order.setdefault(vid, []).append(i)
    ids = list(order)
    vlabels = np.array([labels[order[v][0]] for v in ids], dtype=np.int64)
    vscores = np.array([float(reduce(scores[order[v]])) for v in ids], dtype=np.float64)
    return ids, vlabels, vscores


@dataclass(frozen=True)
class Budget:
    """How far a variant may move from the baseline and still be called Stable."""

    auc: float = 0.01
    accuracy: float = 0.02
    f1: float = 0.02
    flip_rate: float = 0.01


def verdict(
    entry: dict[str, Any], base: dict[str, Any], samples: int, budget: Budget
) -> tuple[str, list[str]]:
    """Stable only when AUC, accuracy and F1 at the threshold and the flip rate all hold.

    Returns the status and what broke ("accuracy -0.48 (> 0.02)"), so a deployment whose
    AUC holds while every prediction sits on one side of the threshold is never Stable.
    """
    broke: list[str] = []
    frame, ref = entry["frame"], base["frame"]
    checks = (("AUC", frame["auc"], ref["auc"], budget.auc), ("accuracy", frame["accuracy"], ref["accuracy"],
              budget.accuracy), ("F1", frame["f1"], ref["f1"], budget.f1))  # fmt: skip
    for name, value, reference, limit in checks:
        if value is None or reference is None:
            continue
        if value < reference - limit - 1e-12:
            broke.append(f"{name} {value - reference:+.4f} (budget {limit:g})")
    rate = entry["flips_vs_baseline"] / samples if samples else 0.0
    if rate > budget.flip_rate + 1e-12:
        broke.append(f"{entry['flips_vs_baseline']} decisions flipped ({rate:.1%} > {budget.flip_rate:.1%})")
    if frame["auc"] is None and frame["accuracy"] is None:
        return "n/a", broke
    return ("Degraded" if broke else "Stable"), broke
