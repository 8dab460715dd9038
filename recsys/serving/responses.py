"""The JSON bodies of the service's answers, shared by the routes and ``FastPath``.

Both build their bodies here, from the precomputed lists of ``recsys.serving.engine``, so
that a request answered by either gets the same bytes. ``ApiError`` is a refused request;
the app turns it into ``{"error": code, "detail": message}`` with its status.
"""

import math

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


def _recommend_body(served, user: str, u: int, n: int, exclude_seen: bool) -> dict:
    ids, scores = served.recommend(u, n, exclude_seen)
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
