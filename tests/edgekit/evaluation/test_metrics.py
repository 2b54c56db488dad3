"""Metrics against hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from edgekit.errors import UsageError
from edgekit.evaluation.metrics import Budget, aggregate_videos, binary_metrics, eer, tpr_at_fpr, verdict


def test_confusion_and_rates_by_hand() -> None:
    labels = [0, 0, 0, 1, 1, 1]
    scores = [0.1, 0.6, 0.2, 0.9, 0.4, 0.8]  # one FP (0.6), one FN (0.4)
    m = binary_metrics(labels, scores, 0.5)
    assert (m["tp"], m["tn"], m["fp"], m["fn"]) == (2, 2, 1, 1)
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["precision"] == pytest.approx(2 / 3) and m["recall"] == pytest.approx(2 / 3)
    assert m["f1"] == pytest.approx(2 / 3)
    assert m["real_accuracy"] == pytest.approx(2 / 3) and m["fake_accuracy"] == pytest.approx(2 / 3)
    # AUC: of 9 (fake, real) pairs, fake scores higher in 8 (0.4 < 0.6 is the miss).
    assert m["auc"] == pytest.approx(8 / 9)
    expected_ll = -np.mean(np.log([0.9, 0.4, 0.8, 0.9, 0.4, 0.8]))  # P(true class) per sample
    assert m["log_loss"] == pytest.approx(expected_ll)


def test_perfect_separation() -> None:
    m = binary_metrics([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9], 0.5)
    assert m["auc"] == 1.0 and m["ap"] == 1.0 and m["eer"] == 0.0
    assert m["tpr_at_fpr_1pct"] == 1.0


def test_eer_by_hand() -> None:
    # Scores interleave so that one real and one fake out of 4 each are misranked.
    labels = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    scores = np.array([0.1, 0.2, 0.3, 0.7, 0.35, 0.8, 0.85, 0.9])
    rate, thr = eer(labels, scores)
    assert rate == pytest.approx(0.25)
    assert 0.3 < thr <= 0.7


def test_tpr_at_fpr() -> None:
    labels = np.array([0] * 100 + [1] * 10)
    scores = np.concatenate([np.linspace(0, 0.5, 100), np.linspace(0.45, 1, 10)])
    assert tpr_at_fpr(labels, scores, 0.05) >= 0.8


def test_single_class_keeps_the_rest() -> None:
    m = binary_metrics([1, 1, 1], [0.9, 0.2, 0.7], 0.5)
    assert m["auc"] is None and m["eer"] is None and m["ap"] is None
    assert m["accuracy"] == pytest.approx(2 / 3) and m["fake_accuracy"] == pytest.approx(2 / 3)
    assert m["real_accuracy"] is None


def test_video_aggregation() -> None:
    vids = ["a", "a", "b", "b", "b"]
    labels = [0, 0, 1, 1, 1]
    scores = np.array([0.1, 0.3, 0.2, 0.9, 1.0])
    ids, vl, vs = aggregate_videos(vids, labels, scores, "mean")
    assert ids == ["a", "b"] and vl.tolist() == [0, 1]
    assert vs.tolist() == pytest.approx([0.2, 0.7])
    assert aggregate_videos(vids, labels, scores, "median")[2].tolist() == pytest.approx([0.2, 0.9])
    assert aggregate_videos(vids, labels, scores, "max")[2].tolist() == pytest.approx([0.3, 1.0])
    with pytest.raises(UsageError, match="mean, median or max"):
        aggregate_videos(vids, labels, scores, "mode")


def test_status() -> None:
    def entry(auc: float | None) -> dict[str, object]:
        return {"frame": {"auc": auc, "accuracy": None, "f1": None}, "flips_vs_baseline": 0}

    base, budget = entry(0.95), Budget(auc=0.01)
    assert verdict(entry(0.945), base, 100, budget)[0] == "Stable"
    assert verdict(entry(0.93), base, 100, budget)[0] == "Degraded"
    assert verdict(entry(None), base, 100, budget)[0] == "n/a"
