"""Top-10 ranking on MovieLens 100k u1..u5: recsys's objectives against most popular,
PureSVD and implicit's ALS and BPR, in one run on the same folds.

Protocol (that of ``recsys evaluate --ranking -k 10``): the held-out ratings >= 4 of a
user are the relevant items; every item the user did not rate in training is ranked; the
test users the model knows with at least one relevant item are scored. Fit times are on
one thread (``n_jobs=1``; implicit with ``num_threads=1``). Also the hybrid's lists as
the weight of its ranking part varies (its predictions, and so its RMSE, do not change).
Writes the "Ranking" section of docs/results.md (``--output -`` prints it).

    python scripts/accuracy_ranking.py [--data-dir DIR] [--output docs/results.md]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

# one thread for every system, BLAS included (implicit warns otherwise)
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import _accuracy as acc
import numpy as np
import scipy.sparse as sp
from benchdoc import write_section

from recsys.data.split import UFOLDS, ml100k_folds
from recsys.evaluation.evaluate import evaluate, relevant_items
from recsys.evaluation.metrics import ranking_scores
from recsys.models.baselines import Biases
from recsys.models.funksvd import FunkSVD
from recsys.models.hybrid import HybridMF
from recsys.models.ranking import RankingMF

K = 10


def _lists(train, users, scores):
    """Top-K raw item lists from a users × items score matrix, training items excluded."""
    seen = sp.csr_matrix((np.ones(len(train)), (train.users, train.items)),
                         shape=(train.n_users, train.n_items))
    out = []
    for row, u in enumerate(users):
        s = scores[row].astype(np.float64).copy()
        s[seen[u].indices] = -np.inf
        top = np.argsort(-s, kind="stable")[:K]
        out.append(train.item_map.ids[top].tolist())
    return out


def _score(train, test, topn) -> dict:
    relevant = relevant_items(test)
    users = [u for u in relevant if train.user_map.index_of(u) >= 0]
    idx = train.user_map.indices(np.array(users))
    lists = topn(idx)
    return ranking_scores(lists, [relevant[u] for u in users], K, train.n_items)


def most_popular(train):
    counts = np.bincount(train.items, minlength=train.n_items).astype(np.float64)
    return lambda idx: _lists(train, idx, np.tile(counts, (len(idx), 1)))


def pure_svd(train, rank=20):
    from scipy.sparse.linalg import svds

    R = sp.csr_matrix((train.values.astype(np.float64), (train.users, train.items)),
                      shape=(train.n_users, train.n_items))
    U, s, Vt = svds(R, k=rank, random_state=0)
    return lambda idx: _lists(train, idx, (U[idx] * s) @ Vt)


def implicit_model(train, kind):
    import implicit

    keep = train.values >= 4
    X = sp.csr_matrix((np.ones(int(keep.sum()), dtype=np.float32),
                       (train.users[keep], train.items[keep])),
                      shape=(train.n_users, train.n_items))
    if kind == "als":
        model = implicit.cpu.als.AlternatingLeastSquares(
            factors=64, regularization=20.0, alpha=2.0, iterations=15, random_state=0,
            num_threads=1, calculate_training_loss=False)
    else:
        model = implicit.cpu.bpr.BayesianPersonalizedRanking(factors=64, random_state=0,
                                                             num_threads=1)
    model.fit(X, show_progress=False)
    P, Q = np.asarray(model.user_factors), np.asarray(model.item_factors)
    return lambda idx: _lists(train, idx, P[idx] @ Q.T)


SYSTEMS = {
    "most popular (count of training ratings)": ("other", most_popular),
    "recsys FunkSVD defaults (rating objective)": ("recsys", lambda: FunkSVD(n_jobs=1)),
    "recsys biases (damped means)": ("recsys", lambda: Biases()),
    "recsys RankingMF defaults (ranking objective)": ("recsys", lambda: RankingMF(n_jobs=1)),
    "recsys HybridMF defaults (hybrid objective)": ("recsys", lambda: HybridMF(n_jobs=1)),
    "PureSVD rank 20 (missing = 0)": ("other", pure_svd),
    "implicit ALS (ratings >= 4 as 1, k64, λ 20, α 2, 15 iterations, CG)":
        ("implicit", lambda train: implicit_model(train, "als")),
    "implicit BPR (ratings >= 4 as 1, k64, its defaults)":
        ("implicit", lambda train: implicit_model(train, "bpr")),
}


def run_system(kind, make, folds) -> dict:
    rows = []
    for train, test in folds:
        start = time.perf_counter()
        if kind == "recsys":
            model = make().fit(train)
            fit_s = time.perf_counter() - start
            scores = evaluate(model, test, ranking_k=K)
        else:
            topn = make(train)
            fit_s = time.perf_counter() - start
            scores = _score(train, test, topn)
        rows.append({**scores, "fit_time": fit_s})
    return {"per_fold": [r[f"ndcg@{K}"] for r in rows],
            "p": np.mean([r[f"precision@{K}"] for r in rows]),
            "ndcg": np.mean([r[f"ndcg@{K}"] for r in rows]),
            "ndcg_min": min(r[f"ndcg@{K}"] for r in rows),
            "rmse": np.mean([r.get("rmse", np.nan) for r in rows]),
            "fit": np.median([r["fit_time"] for r in rows])}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--output", default=str(acc.ROOT / "docs" / "results.md"))
    parser.add_argument("--weights", default="0,1,2,4,8,16,32,64",
                        help="ranking weights of the hybrid's lists")
    args = parser.parse_args(argv)
    data = acc.find("ml-100k", args.data_dir)
    if data is None:
        print("MovieLens 100k not found; get it with `recsys download ml-100k`",
              file=sys.stderr)
        return 1
    folds = list(ml100k_folds(data.parent, UFOLDS).values())
    try:
        import implicit  # noqa: F401
        have_implicit = True
    except ImportError:
        have_implicit = False
    # compile the kernels once, so no fit time below includes numba compilation
    for make in (lambda: RankingMF(n_jobs=1, n_epochs=1),
                 lambda: FunkSVD(n_jobs=1, n_epochs=1, reg=0.05)):
        make().fit(folds[0][0])
    lines = ["## Ranking", "", f"Measured {acc.stamp()} by `python scripts/accuracy_ranking.py`"
             ". MovieLens 100k u1..u5, top 10, held-out ratings >= 4 relevant, every item the "
             "user did not rate in training ranked; means over the five folds; fit: median "
             "seconds of one fit on one thread.", "",
             "| system | P@10 | NDCG@10 | lowest fold NDCG@10 | folds above most popular "
             "| RMSE | fit s |", "|---|---:|---:|---:|---:|---:|---:|"]
    popular = None
    for name, (kind, make) in SYSTEMS.items():
        if kind == "implicit" and not have_implicit:
            continue
        r = run_system(kind, make, folds)
        popular = popular or r["per_fold"]
        if "RankingMF" in name:
            ranked = r["ndcg"]
        above = sum(a > b for a, b in zip(r["per_fold"], popular, strict=True))
        rmse = "-" if np.isnan(r["rmse"]) or "Ranking" in name else f"{r['rmse']:.4f}"
        lines.append(f"| {name} | {r['p']:.3f} | {r['ndcg']:.3f} | {r['ndcg_min']:.3f} | "
                     f"{above}/{len(folds)} | {rmse} | {r['fit']:.2f} |")
        print(lines[-1], flush=True)
    if not have_implicit:
        lines += ["", "implicit is not installed (`pip install -e '.[compare]'`): its rows are "
                  "left out."]
    lines += ["", "The hybrid's lists as the weight of its ranking part varies (HybridMF "
              "defaults but `ranking_weight`, in standard deviations of the training "
              "ratings; 0: FunkSVD's lists). Its predictions are FunkSVD's at every weight: "
              "the RMSE column does not move. Same folds.",
              "", "| ranking weight | RMSE | P@10 | NDCG@10 | NDCG@10 / ranking objective's |",
              "|---:|---:|---:|---:|---:|"]
    for weight in (float(w) for w in args.weights.split(",")):
        r = run_system("recsys", lambda w=weight: HybridMF(n_jobs=1, ranking_weight=w),
                       folds)
        lines.append(f"| {weight:g} | {r['rmse']:.4f} | {r['p']:.3f} | {r['ndcg']:.3f} | "
                     f"{r['ndcg'] / ranked:.3f} |")
        print(lines[-1], flush=True)
    text = "\n".join(lines) + "\n"
    if args.output == "-":
        print(text)
    else:
        print(f"wrote {write_section('accuracy_ranking', text, args.output)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
