"""The JSON bodies of POST /predict and POST /recommendations, read with bounded work and
the large ones off the event loop.

FastAPI's own body validation runs on the event loop and its cost grows with the number
of errors: a megabyte of wrong-typed pairs held the loop for seconds, stalling every
other client. ``JsonBodies`` therefore reads every JSON body sent to these two endpoints
itself (the routes see only the rest, which they refuse as not JSON):

* it parses the body (orjson; what orjson refuses is read again by ``json``, as FastAPI
  would: NaN, integers over 64 bits) and refuses a batch over ``max_batch`` (413) before
  validating any entry;
* it validates the entries with the pydantic models of ``recsys.serving.schemas``, at
  most ``CHUNK`` at a time, and stops at the first slice with errors (422 naming the
  first five places, as the routes' errors do);
* bodies over ``inline_bytes`` are handled in a worker thread (``anyio.to_thread``).
  pydantic keeps the GIL for a whole call, so the slices are what let the event loop
  take it back: a large body delays another client by at most about one slice.

The answers are built by ``recsys.serving.responses``, like the routes' and
``FastPath``'s.
"""

import email.message
import json
from urllib.parse import parse_qsl

import anyio
import orjson
from pydantic import TypeAdapter, ValidationError

from recsys.serving.candidates import check_lists, new_user_body
from recsys.serving.middleware import _read_body, _replay, plain_pairs, send_json
from recsys.serving.responses import (
    ApiError,
    _over_batch,
    _predict_body,
    describe_errors,
)
from recsys.serving.schemas import ItemRating, NewUserRequest, Pair, PredictRequest

CHUNK = 256  # entries validated by one pydantic call

#: path: (request model, the name of its list, a validator of slices of that list)
_KINDS = {
    "/predict": (PredictRequest, "pairs", TypeAdapter(list[Pair])),
    "/recommendations": (NewUserRequest, "ratings", TypeAdapter(list[ItemRating])),
}
_BOOL = TypeAdapter(bool)


def is_json(content_type: str | None) -> bool:
    """Whether FastAPI would read a body of this Content-Type as JSON."""
    if not content_type:
        return False
    try:
        message = email.message.Message()
        message["content-type"] = content_type
        if message.get_content_maintype() != "application":
            return False
        subtype = message.get_content_subtype()
    except Exception:  # noqa: BLE001 - an unreadable header is simply not JSON
        return False
    return subtype == "json" or subtype.endswith("+json")


def _parse(raw: bytes):
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        pass
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):  # JSONDecodeError, UnicodeDecodeError
        raise ApiError(400, "malformed_json", "the request body is not valid JSON") from None


def _errors(exc: ValidationError, prefix=()) -> list:
    return [{"loc": (*prefix, *e["loc"]), "msg": e["msg"], "type": e["type"]}
            for e in exc.errors(include_url=False, include_input=False)]


def _validate(path: str, doc, max_batch: int):
    """(request model or None, errors): the list validated a slice at a time."""
    model, key, entries_adapter = _KINDS[path]
    if type(doc) is not dict or type(doc.get(key)) is not list:
        try:  # no list to walk: one call, whose cost does not grow with the body
            return model.model_validate(doc), []
        except ValidationError as exc:
            return None, _errors(exc)
    entries = doc[key]
    _over_batch(len(entries), key, max_batch)
    errors, values = [], []
    for start in range(0, len(entries), CHUNK):
        try:
            values.extend(entries_adapter.validate_python(entries[start:start + CHUNK]))
        except ValidationError as exc:
            errors = [{**e, "loc": (key, start + e["loc"][0], *e["loc"][1:])}
                      for e in _errors(exc)]
            break
    try:
        envelope = model.model_validate({**doc, key: []})  # the other fields
    except ValidationError as exc:
        return None, errors + _errors(exc)
    if errors:
        return None, errors
    setattr(envelope, key, values)
    return envelope, []


def _strict(query: bytes) -> tuple[bool, list]:
    """The ``strict`` query parameter of /predict, read as FastAPI reads it (the last)."""
    value = None
    for key, v in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
        if key == "strict":
            value = v
    if value is None:
        return False, []
    try:
        return _BOOL.validate_python(value), []
    except ValidationError as exc:
        return False, _errors(exc, ("query", "strict"))


def answer(path: str, raw: bytes, query: bytes, served, max_n: int, max_batch: int
           ) -> tuple[int, bytes]:
    """(status, JSON bytes) for a JSON body sent to ``path`` (/predict, /recommendations)."""
    try:
        doc = _parse(raw)
        if path == "/predict":
            strict, query_errors = _strict(query)
            plain = None if query_errors else plain_pairs(doc, max_batch)
            if plain is not None:
                return 200, orjson.dumps(_predict_body(served, *plain, strict))
            body, errors = _validate(path, doc, max_batch)
            if query_errors or errors:
                raise ApiError(*describe_errors(query_errors + errors))
            return 200, orjson.dumps(_predict_body(
                served, [p.user for p in body.pairs], [p.item for p in body.pairs], strict))
        if type(doc) is dict:  # the id lists named by value, before pydantic sees them
            check_lists(doc, max_batch)
        body, errors = _validate(path, doc, max_batch)
        if errors:
            raise ApiError(*describe_errors(errors))
        return 200, orjson.dumps(new_user_body(served, body, max_n, max_batch))
    except ApiError as exc:
        return exc.status_code, orjson.dumps({"error": exc.error, "detail": exc.detail})


class JsonBodies:
    """ASGI middleware answering every non-empty JSON body sent to POST /predict and
    POST /recommendations (``answer``), in a worker thread when over ``inline_bytes``."""

    def __init__(self, app, holder, max_n: int, max_batch: int, inline_bytes: int):
        self.app, self.holder = app, holder
        self.max_n, self.max_batch, self.inline_bytes = max_n, max_batch, inline_bytes

    async def __call__(self, scope, receive, send):
        if (scope["type"] == "http" and scope["method"] == "POST" and scope["path"] in _KINDS
                and is_json(_header(scope, b"content-type"))):
            raw = await _read_body(receive)
            if raw is None:
                return
            if raw:
                work = (answer, scope["path"], raw, scope["query_string"], self.holder.current,
                        self.max_n, self.max_batch)
                if len(raw) > self.inline_bytes:
                    status, body = await anyio.to_thread.run_sync(*work)
                else:
                    status, body = work[0](*work[1:])
                return await send_json(send, status, body)
            receive = _replay(raw, receive)
        await self.app(scope, receive, send)


def _header(scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None
