"""Candidate and exclusion lists of a recommendation request (``items``, ``exclude``).

They mean what they mean in ``recommend_many``: ``items`` are the only candidates,
``exclude`` are never recommended, unknown ids are ignored (with ``strict``, unknown ids in
``items`` are a 404 naming them), and a list with fewer candidates than ``n`` is shorter,
never padded. Over HTTP an id can also be malformed: not an integer or a string in a
JSON body, empty, or text that is no integer for a model whose ids are integers; such an
id is a 422 naming it and its place. ``candidate_mask`` turns the lists into the boolean
mask over the served model's items that ``Served.recommend`` takes.
"""

import numpy as np

from recsys.data.ratings import _as_int
from recsys.serving.responses import ApiError, _new_user_body, _over_batch, _unknown

FIELDS = ("items", "exclude")


def _malformed(where: str, value, why: str):
    shown = repr(value) if len(repr(value)) <= 80 else repr(value)[:77] + "..."
    return ApiError(422, "invalid_id", f"{where}: {shown} is not an item id: {why}")


def check_lists(doc: dict, max_batch: int) -> None:
    """Refuse ``items`` / ``exclude`` of a JSON body that are not lists of plain ids, or
    longer together than ``max_batch`` (413), before any other validation."""
    total = 0
    for key in FIELDS:
        values = doc.get(key)
        if values is None:
            continue
        if type(values) is not list:
            raise ApiError(422, "invalid_request", f"{key}: must be a list of item ids, "
                                                   f"not {type(values).__name__}")
        total += len(values)
        _over_batch(total, "ids in items and exclude", max_batch)
        for k, value in enumerate(values):
            kind = type(value)
            if not (kind is str or (kind is int and -(2**63) <= value < 2**63)):
                raise _malformed(f"{key}.{k}", value, "ids are integers or strings")


def _indices(served, key: str, values: list, query: bool) -> list:
    """The index of every id of ``values`` (-1: unknown); malformed ids are a 422."""
    several = f" (several ids: repeat the parameter, {key}=1&{key}=2)" if query else ""
    out = []
    for k, value in enumerate(values):
        if value == "":
            raise _malformed(f"{key}.{k}", value, "ids are never empty")
        if served._int_items and _as_int(value) is None:
            raise _malformed(f"{key}.{k}", value, "this model's item ids are integers"
                             + several)
        out.append(served.item_index(value))
    return out


def candidate_mask(served, items, exclude, strict: bool, max_batch: int, query: bool = False):
    """Mask of the items that may be recommended (None: no lists, every item); ``query``:
    the lists came as query parameters (the messages say how to repeat them)."""
    if items is None and exclude is None:
        return None
    _over_batch(len(items or ()) + len(exclude or ()), "ids in items and exclude", max_batch)
    allowed = np.ones(served.n_items, dtype=bool)
    if items is not None:
        idx = _indices(served, "items", items, query)
        if strict:
            _unknown([v for v, i in zip(items, idx, strict=True) if i < 0], "item")
        allowed[:] = False
        allowed[[i for i in idx if i >= 0]] = True
    if exclude is not None:
        allowed[[i for i in _indices(served, "exclude", exclude, query) if i >= 0]] = False
    return allowed


def new_user_body(served, body, max_n: int, max_batch: int) -> dict:
    """POST /recommendations for a validated ``NewUserRequest``, its lists applied."""
    allowed = candidate_mask(served, body.items, body.exclude, body.strict, max_batch)
    return _new_user_body(served, body, max_n, max_batch, allowed)
