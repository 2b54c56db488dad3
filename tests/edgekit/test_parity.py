from __future__ import annotations

import math

import numpy as np
import pytest

from edgekit.errors import AnalysisError
from edgekit.parity import auc_or_none, compare, cosine_similarity, fake_scores, sqnr_db
from edgekit.spec import OutputKind, OutputSpec, Tolerance

ONE = OutputSpec()
TOL = Tolerance(max_score_diff=0.05, max_flip_rate=0.1, min_sqnr_db=20.0)


def test_sqnr_hand_computed() -> None:
    ref = np.array([3.0, 4.0])  # signal power 25
    cand = np.array([3.0, 3.0])  # noise power 1
    assert sqnr_db(ref, cand) == pytest.approx(10 * math.log10(25))
    assert sqnr_db(ref, ref) == math.inf


def test_cosine() -> None:
    assert cosine_similarity(np.array([1.0, 0.0]), np.array([0.0, 2.0])) == pytest.approx(0.0)
    assert cosine_similarity(np.array([1.0, 1.0]), np.array([2.0, 2.0])) == pytest.approx(1.0)
    assert cosine_similarity(np.zeros(2), np.zeros(2)) == 1.0


def test_fake_scores_variants() -> None:
    logits = np.array([[0.0], [100.0]])
    np.testing.assert_allclose(fake_scores(logits, ONE), [0.5, 1.0])
    two = np.array([[0.0, 0.0], [0.0, math.log(3.0)]])
    np.testing.assert_allclose(fake_scores(two, OutputSpec(classes=2)), [0.5, 0.75])
    probs = np.array([[0.2, 0.8]])
    np.testing.assert_allclose(fake_scores(probs, OutputSpec(kind=OutputKind.PROBS, classes=2)), [0.8])


def test_compare_counts_flips_and_fails_with_reasons() -> None:
    ref = np.array([[2.0], [-2.0], [0.1], [-0.1]])
    cand = np.array([[2.0], [-2.0], [-0.1], [0.1]])  # the two near-threshold decisions flip
    r = compare(ref, cand, ONE, TOL)
    assert r.flips == 2 and r.flip_rate == 0.5
    assert not r.passed
    assert any("flip rate" in x for x in r.reasons)
    assert r.max_abs_diff == pytest.approx(0.2)


def test_compare_identical_passes() -> None:
    ref = np.array([[1.0], [-1.0]])
    r = compare(ref, ref.copy(), ONE, TOL)
    assert r.passed and r.flips == 0 and r.sqnr_db == math.inf
    assert r.to_dict()["sqnr_db"] == "inf"
    assert r.score_agreement == 1.0


def test_compare_rejects_nan_and_shape_mismatch() -> None:
    ref = np.array([[1.0], [-1.0]])
    r = compare(ref, np.array([[np.nan], [-1.0]]), ONE, Tolerance(max_flip_rate=1.0))
    assert not r.passed and "non-finite outputs" in r.reasons
    with pytest.raises(AnalysisError, match="output shapes differ"):
        compare(ref, np.zeros((3, 1)), ONE, TOL)


def test_threshold_moves_decisions() -> None:
    ref, cand = np.array([[0.0]]), np.array([[0.5]])  # scores 0.5 and 0.62
    assert compare(ref, cand, ONE, Tolerance(max_flip_rate=0.0), threshold=0.6).flips == 1
    assert compare(ref, cand, ONE, Tolerance(max_flip_rate=0.0), threshold=0.4).flips == 0


def test_auc_needs_both_classes() -> None:
    assert auc_or_none(np.array([0.1, 0.9]), (0, 1)) == 1.0
    assert auc_or_none(np.array([0.1, 0.9]), (1, 1)) is None
    assert auc_or_none(np.array([0.1, 0.9]), (0, None)) is None


def test_a_collapsed_output_is_named_even_when_it_happens_to_agree() -> None:
    """The 2-class INT8 collapse: [0, 0] for every input. Half the decisions may still agree."""
    ref = np.array([[2.0, -1.0], [-1.0, 2.0], [0.5, 0.4], [0.2, 0.9]], np.float32)
    collapsed = np.zeros_like(ref)
    r = compare(ref, collapsed, OutputSpec(kind="logits"), Tolerance(max_flip_rate=1.0))
    assert not r.passed and any("output collapsed: [0., 0.] for all 4 inputs" in m for m in r.reasons)
    # a constant reference is the reference's problem (reference_warnings), not the variant's
    r = compare(collapsed, collapsed, OutputSpec(kind="logits"), Tolerance(max_flip_rate=1.0))
    assert r.passed
