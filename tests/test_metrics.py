"""Metrics against values worked out by hand."""

import math

import pytest

from recsys.evaluation.metrics import (
    average_precision_at_k,
    coverage,
    hit_at_k,
    mae,
    ndcg_at_k,
    precision_at_k,
    ranking_scores,
    recall_at_k,
    rmse,
)

REC = [1, 2, 3, 4, 5]
REL = {2, 5, 9}  # hits at ranks 2 and 5


def test_rmse_and_mae_by_hand():
    assert rmse([1, 2, 3], [2, 2, 5]) == pytest.approx(math.sqrt((1 + 0 + 4) / 3))
    assert mae([1, 2, 3], [2, 2, 5]) == pytest.approx(1.0)


def test_precision_recall_hit_at_5_and_3():
    assert precision_at_k(REC, REL, 5) == pytest.approx(2 / 5)
    assert recall_at_k(REC, REL, 5) == pytest.approx(2 / 3)
    assert precision_at_k(REC, REL, 3) == pytest.approx(1 / 3)
    assert recall_at_k(REC, REL, 3) == pytest.approx(1 / 3)
    assert hit_at_k(REC, REL, 5) == 1.0
    assert hit_at_k(REC, REL, 1) == 0.0


def test_ndcg_by_hand():
    dcg = 1 / math.log2(3) + 1 / math.log2(6)  # hits at ranks 2 and 5
    idcg = 1 / math.log2(2) + 1 / math.log2(3) + 1 / math.log2(4)  # three relevant items
    assert ndcg_at_k(REC, REL, 5) == pytest.approx(dcg / idcg)
    assert ndcg_at_k(REC, REL, 5) == pytest.approx(0.477623, abs=1e-6)
    # at k=2 only two relevant items can fit: IDCG has two terms
    assert ndcg_at_k(REC, REL, 2) == pytest.approx((1 / math.log2(3)) / (1 + 1 / math.log2(3)))
    assert ndcg_at_k([2, 5, 9], REL, 3) == pytest.approx(1.0)


def test_average_precision_by_hand():
    # precision at the hits: 1/2 (rank 2) and 2/5 (rank 5), over min(5, 3) = 3
    assert average_precision_at_k(REC, REL, 5) == pytest.approx((0.5 + 0.4) / 3)
    assert average_precision_at_k(REC, REL, 3) == pytest.approx(0.5 / 3)
    assert average_precision_at_k([9, 2, 7], REL, 2) == pytest.approx((1 + 1) / 2)
    assert average_precision_at_k([7, 8], REL, 2) == 0.0


def test_short_list_counts_missing_slots_as_misses():
    assert precision_at_k([2], REL, 4) == pytest.approx(1 / 4)


def test_coverage_by_hand():
    assert coverage([[1, 2, 3], [3, 4, 5]], n_items=10) == pytest.approx(0.5)
    assert coverage([[1, 2, 3], [3, 4, 5]], n_items=10, k=1) == pytest.approx(0.2)


def test_ranking_scores_average_over_users_with_relevant_items():
    out = ranking_scores([REC, [9, 1], [7, 8]], [REL, {9}, set()], k=2, n_items=20)
    assert out["ranked_users"] == 2
    assert out["precision@2"] == pytest.approx((1 / 2 + 1 / 2) / 2)
    assert out["recall@2"] == pytest.approx((1 / 3 + 1) / 2)
    assert out["hit_rate@2"] == pytest.approx(1.0)
    assert out["map@2"] == pytest.approx((0.5 / 2 + 1.0) / 2)
    assert out["coverage@2"] == pytest.approx(len({1, 2, 9, 7, 8}) / 20)


def test_undefined_cases_raise():
    with pytest.raises(ValueError):
        recall_at_k(REC, set(), 5)
    with pytest.raises(ValueError):
        precision_at_k(REC, REL, 0)
