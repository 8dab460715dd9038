"""Accuracy metrics: rating error (RMSE, MAE) and top-k ranking quality; plain arrays in."""

from __future__ import annotations

import numpy as np


def _pair(truth, predicted):
    truth = np.asarray(truth, dtype=np.float64)
    predicted = np.asarray(predicted, dtype=np.float64)
    if truth.shape != predicted.shape:
        raise ValueError(f"truth and predictions differ in shape: {truth.shape} vs "
                         f"{predicted.shape}")
    if truth.size == 0:
        raise ValueError("no ratings to score")
    return truth, predicted


def rmse(truth, predicted) -> float:
    """Root mean squared error."""
    truth, predicted = _pair(truth, predicted)
    return float(np.sqrt(np.mean((truth - predicted) ** 2)))


def mae(truth, predicted) -> float:
    """Mean absolute error."""
    truth, predicted = _pair(truth, predicted)
    return float(np.mean(np.abs(truth - predicted)))


# ----------------------------------------------------------------------------- ranking
#
# Ranking metrics score one user's recommendation list against the held-out items that
# user rated >= a threshold (the relevant items). Relevance is binary. For a list
# rec = (r_1, r_2, ...) cut at k, hits h_j = 1 when r_j is relevant, R the relevant set:
#
#   precision@k = Σ_j h_j / k                   recall@k = Σ_j h_j / |R|
#   hit@k       = 1 if Σ_j h_j > 0 else 0
#   DCG@k       = Σ_j h_j / log2(j + 1)         NDCG@k = DCG@k / IDCG@k,
#                 IDCG@k = Σ_{j=1}^{min(k,|R|)} 1 / log2(j + 1)   (the best possible list)
#   AP@k        = Σ_j h_j · precision@j / min(k, |R|)     (MAP@k: its mean over users)
#
# A user with no relevant held-out item has no defined recall, NDCG or AP and is left out
# of the means. Catalogue coverage is |∪_u rec_u[:k]| / (items in the catalogue).


def _hits(recommended, relevant, k: int) -> np.ndarray:
    if k < 1:
        raise ValueError(f"k must be >= 1, not {k!r}")
    top = list(recommended)[:k]
    relevant = set(relevant)
    return np.array([item in relevant for item in top], dtype=np.float64)


def precision_at_k(recommended, relevant, k: int) -> float:
    """Share of the top k that is relevant (a short list counts its missing slots as misses)."""
    return float(_hits(recommended, relevant, k).sum() / k)


def recall_at_k(recommended, relevant, k: int) -> float:
    """Share of the relevant items that appear in the top k."""
    relevant = set(relevant)
    if not relevant:
        raise ValueError("recall is undefined without relevant items")
    return float(_hits(recommended, relevant, k).sum() / len(relevant))


def hit_at_k(recommended, relevant, k: int) -> float:
    """1 if any of the top k is relevant, else 0."""
    return float(_hits(recommended, relevant, k).any())


def ndcg_at_k(recommended, relevant, k: int) -> float:
    """Normalized discounted cumulative gain of the top k, binary relevance."""
    relevant = set(relevant)
    if not relevant:
        raise ValueError("NDCG is undefined without relevant items")
    hits = _hits(recommended, relevant, k)
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    ideal = discounts[: min(k, len(relevant))].sum()
    return float((hits * discounts[: len(hits)]).sum() / ideal)


def average_precision_at_k(recommended, relevant, k: int) -> float:
    """AP@k: mean of precision@j over the ranks j of the hits, over min(k, |R|)."""
    relevant = set(relevant)
    if not relevant:
        raise ValueError("average precision is undefined without relevant items")
    hits = _hits(recommended, relevant, k)
    if not hits.any():
        return 0.0
    precision_at = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    return float((precision_at * hits).sum() / min(k, len(relevant)))


def coverage(recommended_lists, n_items: int, k: int | None = None) -> float:
    """Share of the catalogue's ``n_items`` that appear in at least one list (cut at k)."""
    if n_items < 1:
        raise ValueError("the catalogue is empty")
    shown = set()
    for rec in recommended_lists:
        shown.update(list(rec)[:k] if k is not None else rec)
    return len(shown) / n_items


RANKING_METRICS = {
    "precision": precision_at_k, "recall": recall_at_k, "ndcg": ndcg_at_k,
    "map": average_precision_at_k, "hit_rate": hit_at_k,
}


def ranking_scores(recommended_lists, relevant_sets, k: int, n_items: int) -> dict:
    """Means over users of every ranking metric at k, plus catalogue coverage.

    ``recommended_lists[u]`` and ``relevant_sets[u]`` belong to the same user; users whose
    relevant set is empty are left out of the means (but their lists count for coverage).
    """
    if len(recommended_lists) != len(relevant_sets):
        raise ValueError("one recommendation list per relevant set is needed")
    sums = dict.fromkeys(RANKING_METRICS, 0.0)
    users = 0
    for rec, rel in zip(recommended_lists, relevant_sets, strict=True):
        if not len(rel):
            continue
        users += 1
        for name, metric in RANKING_METRICS.items():
            sums[name] += metric(rec, rel, k)
    out = {f"{name}@{k}": (sums[name] / users if users else float("nan")) for name in sums}
    out[f"coverage@{k}"] = coverage(recommended_lists, n_items, k)
    out["ranked_users"] = users
    return out
