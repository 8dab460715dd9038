"""The JSON bodies of the service's answers, shared by the routes, ``FastPath`` and
``recsys.serving.bodies``.

They all build their bodies here, from the precomputed lists of ``recsys.serving.engine``,
so that a request answered by any of them gets the same bytes. ``ApiError`` is a refused
request; the app turns it into ``{"error": code, "detail": message}`` with its status.
"""

import math

import numpy as np
import orjson
from fastapi.responses import Response


def _json(content, status_code: int = 200) -> Response:
    return Response(orjson.dumps(content), status_code=status_code,
                    media_type="application/json")


def _error(status_code: int, error: str, detail: str) -> Response:
    return _json({"error": error, "detail": detail}, status_code)


class ApiError(Exception):
    """A request the service refuses, with its status, error code and explanation."""

    def __init__(self, status_code: int, error: str, detail: str):
        super().__init__(detail)
        self.status_code, self.error, self.detail = status_code, error, detail


def _scored(served, ids, scores, key="score") -> list:
    titles = served.titles
    if titles is None:
        return [{"item": i, key: s} for i, s in zip(ids, scores, strict=True)]
    index = served.item_index
    return [{"item": i, key: s, "title": titles[index(i)]}
            for i, s in zip(ids, scores, strict=True)]


def _recommend_body(served, user: str, u: int, n: int, exclude_seen: bool,
                    allowed=None) -> dict:
    ids, scores = served.recommend(u, n, exclude_seen, allowed)
    return {"user": served.user_ids[u] if u >= 0 else user,
            "fallback": None if u >= 0 else "popular", "items": _scored(served, ids, scores)}


def _similar_body(served, i: int, n: int) -> dict:
    ids, sims = served.similar(i, n)
    return {"item": served.item_ids[i],
            "items": _scored(served, ids, _finite(sims), key="similarity")}


def _predict_body(served, users: list, items: list, strict: bool = False) -> dict:
    u_idx = [served.user_index(u) for u in users]
    i_idx = [served.item_index(i) for i in items]
    if strict:
        _unknown([u for u, k in zip(users, u_idx, strict=True) if k < 0], "user")
        _unknown([i for i, k in zip(items, i_idx, strict=True) if k < 0], "item")
    values = served.predict(u_idx, i_idx) if users else []
    return {"predictions": [{"user": u, "item": i, "prediction": v}
                            for u, i, v in zip(users, items, values, strict=True)]}


def _finite(values: list) -> list:
    return [v if math.isfinite(v) else None for v in values]


def _unknown(ids: list, kind: str) -> None:
    if ids:
        shown = ", ".join(repr(x) for x in ids[:10]) + (" ..." if len(ids) > 10 else "")
        raise ApiError(404, f"unknown_{kind}", f"{len(ids)} unknown {kind}"
                                               f"{'s' if len(ids) > 1 else ''}: {shown}")


def _over_batch(n: int, what: str, limit: int) -> None:
    if n > limit:
        raise ApiError(413, "batch_too_large", f"{n} {what} is over the limit of {limit} "
                                               "per request")


def _new_user_body(served, body, max_n: int, max_batch: int, allowed=None) -> dict:
    """POST /recommendations for a validated ``NewUserRequest``: the fold-in's answer.

    Ratings outside the training ratings' range and fold-ins that give non-finite factors
    or scores are refused with 422, never answered with 200 and no items. ``allowed``:
    the mask of ``body.items`` and ``body.exclude`` (``recsys.serving.candidates``).
    """

    if body.n > max_n:
        raise ApiError(422, "invalid_request", f"n must be at most {max_n}, not {body.n}")
    _over_batch(len(body.ratings), "ratings", max_batch)
    items = [r.item for r in body.ratings]
    if len(set(map(str, items))) != len(items):
        raise ApiError(422, "invalid_request", "ratings: an item is rated more than once")
    lo, hi = served.fold_in_scale
    slack = 1e-6 * max(1.0, abs(lo), abs(hi))
    for k, r in enumerate(body.ratings):
        if not lo - slack <= r.rating <= hi + slack:
            raise ApiError(422, "rating_out_of_range",
                           f"ratings.{k}: item {r.item!r}: rating {r.rating:g} is outside the "
                           f"scale of the model's training ratings [{lo:g}, {hi:g}]")
    index = served.item_index
    known = [index(i) >= 0 for i in items]
    ratings = ([i for i, k in zip(items, known, strict=True) if k],
               [r.rating for r, k in zip(body.ratings, known, strict=True) if k])
    model = served.model
    n = min(body.n, served.n_items)
    try:
        vector, bias = model.fold_in(ratings)
        lists = {k: v for k, v in (("items", body.items), ("exclude", body.exclude))
                 if v is not None}
        ids, scores = model.recommend_for_ratings(ratings, n=n, exclude_rated=body.exclude_rated,
                                                  **lists)
    except ValueError as exc:  # duplicate items, non-finite factors
        raise ApiError(422, "invalid_request", f"ratings: {exc}") from None
    candidates = np.ones(served.n_items, dtype=bool) if allowed is None else allowed.copy()
    if body.exclude_rated:
        candidates[[index(i) for i in ratings[0]]] = False
    if (not (np.isfinite(vector).all() and np.isfinite(bias)) or not np.isfinite(scores).all()
            or len(ids) < min(n, int(candidates.sum()))):
        raise ApiError(422, "fold_in_failed", "these ratings give non-finite factors or "
                                              "scores in the fold-in; no recommendations")
    return {"user_bias": float(bias), "used_ratings": len(ratings[0]),
            "unknown_items": [i for i, k in zip(items, known, strict=True) if not k],
            "items": _scored(served, ids.tolist(), scores.tolist())}


#: the two branches of an id (integer or string), reported as one message
_ID_BRANCHES = {"int", "str", "constrained-int"}


def describe_errors(errors: list) -> tuple[int, str, str]:
    """(status, error, detail) for pydantic/FastAPI validation errors: 400 for a body that
    is not JSON, else 422 naming the first five places (``pairs.0.user: ...``)."""
    if any(e.get("type") == "json_invalid" for e in errors):
        return 400, "malformed_json", "the request body is not valid JSON"
    parts = {}
    for e in errors:
        loc = [str(x) for x in e.get("loc", ()) if x != "body"]
        message = e.get("msg", "invalid")
        if loc and loc[-1] in _ID_BRANCHES:
            loc, message = loc[:-1], "Input should be an integer or a string id"
        parts.setdefault(".".join(loc) or "body", message)
    shown = [f"{where}: {message}" for where, message in list(parts.items())[:5]]
    more = f" (and {len(parts) - 5} more)" if len(parts) > 5 else ""
    return 422, "invalid_request", "; ".join(shown) + more
