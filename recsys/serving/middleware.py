"""ASGI middlewares of the service: the body size limit, the model generation of a worker,
and the fast path.

``BodyLimit`` refuses oversized bodies before anything reads them. ``Generations`` (a
worker of ``recsys serve --workers N``) brings the worker to the newest published model
generation before any request is answered, and ``FollowRatings`` to the newest live
ratings. ``FastPath`` answers plainly valid requests
to the hot endpoints before FastAPI's routing and validation, with the same bytes the
routes would write (both use ``recsys.serving.responses``).
"""

import anyio
import orjson

from recsys.errors import ModelError
from recsys.serving.engine import ModelHolder
from recsys.serving.live import catch_up as catch_up_ratings
from recsys.serving.live import stale as live_stale
from recsys.serving.responses import _predict_body, _recommend_body, _similar_body


def _plain_id(value) -> bool:
    kind = type(value)
    return kind is str or (kind is int and -(2**63) <= value < 2**63)


async def _read_body(receive) -> bytes | None:
    """The whole request body; None if the client went away."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


async def send_json(send, status: int, body: bytes, close: bool = False) -> None:
    """Send ``body`` (JSON bytes) as the whole response, with ``status``."""
    headers = [(b"content-type", b"application/json"),
               (b"content-length", str(len(body)).encode())]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def send_error(send, status: int, error: str, detail: str, close: bool = False) -> None:
    await send_json(send, status, orjson.dumps({"error": error, "detail": detail}), close)


def plain_pairs(doc, max_batch: int) -> tuple[list, list] | None:
    """(users, items) of a /predict body of exactly the documented shape, at most
    ``max_batch`` pairs of plain ids; None for anything else."""
    if type(doc) is not dict or len(doc) != 1 or type(doc.get("pairs")) is not list:
        return None
    pairs = doc["pairs"]
    if len(pairs) > max_batch:
        return None
    users, items = [], []
    for pair in pairs:
        if type(pair) is not dict or len(pair) != 2:
            return None
        user, item = pair.get("user"), pair.get("item")
        if not (_plain_id(user) and _plain_id(item)):
            return None
        users.append(user)
        items.append(item)
    return users, items


def _replay(body: bytes, receive):
    """An ASGI receive that hands on ``body`` (already read) and then the real receive."""
    sent = False

    async def replay():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


class BodyLimit:
    """ASGI middleware: refuse bodies over ``limit`` bytes with 413 before the app reads them.

    The declared Content-Length is checked first; the body is then read while counting
    (a chunked body has no length to trust) and handed on in one piece.
    """

    def __init__(self, app, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        length = headers.get(b"content-length")
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                return await self._refuse(send, 400, "bad_request",
                                          "Content-Length is not a number")
            if declared > self.limit:
                return await self._too_large(send)
            if declared == 0:
                return await self.app(scope, receive, send)
        elif b"transfer-encoding" not in headers:
            return await self.app(scope, receive, send)
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                return await self._too_large(send)
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return await self.app(scope, _replay(b"".join(chunks), receive), send)

    async def _too_large(self, send):
        await self._refuse(send, 413, "body_too_large",
                           f"request body is over the limit of {self.limit} bytes")

    @staticmethod
    async def _refuse(send, status: int, error: str, detail: str):
        await send_error(send, status, error, detail, close=True)


class Generations:
    """ASGI middleware of a worker of several (``recsys.serving.generations``): before
    any request, if a newer model generation has been published, load it (in a thread)
    and answer from it; a worker that cannot load it answers 503, never the old model."""

    def __init__(self, app, holder):
        self.app, self.holder = app, holder

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and self.holder.stale():
            try:
                await anyio.to_thread.run_sync(self.holder.catch_up)
            except ModelError as exc:
                return await send_error(send, 503, "model_unavailable",
                                        f"this worker cannot load the current model: {exc}")
        await self.app(scope, receive, send)


class FollowRatings:
    """ASGI middleware of a service with live ratings: before any request, apply what the
    ratings log holds beyond what the served model has applied (what another worker
    logged, or what was logged while a reload swapped models): one ``stat`` of the log
    when nothing is new. A log that cannot be replayed is a 503."""

    def __init__(self, app, holder):
        self.app, self.holder = app, holder

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            served = self.holder.current
            if live_stale(served):
                try:
                    catch_up_ratings(served)
                except ModelError as exc:
                    return await send_error(send, 503, "log_unavailable", str(exc))
        await self.app(scope, receive, send)


class FastPath:
    """ASGI middleware answering the hot requests directly: recommendations and similar
    items (GET) and /predict (POST).

    It takes only requests whose every parameter is plainly valid (known ids, n a small
    decimal within bounds, the documented values of the flags, a JSON body of exactly the
    documented shape and at most ``inline_bytes`` long, nothing else) and writes the same
    bytes the FastAPI route (for JSON bodies: ``recsys.serving.bodies.JsonBodies``) would;
    anything else, errors included, goes on to them: they stay the reference, and the
    routes are what the OpenAPI schema documents.
    """

    _FLAGS = {"true": True, "false": False, "1": True, "0": False}

    def __init__(self, app, holder: ModelHolder, max_n: int, max_batch: int,
                 inline_bytes: int = 1 << 62):
        self.app, self.holder, self.max_n, self.max_batch = app, holder, max_n, max_batch
        self.inline_bytes = inline_bytes  # longer bodies are answered off the event loop
        self.answered = 0  # requests answered here rather than by the routes

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            if scope["method"] == "GET":
                body = self._answer(scope["path"], scope["query_string"])
                if body is not None:
                    return await self._send(send, body)
            elif (scope["method"] == "POST" and scope["path"] == "/predict"
                  and not scope["query_string"]
                  and (b"content-type", b"application/json") in scope["headers"]):
                raw = await _read_body(receive)
                if raw is None:
                    return
                body = self._predict(raw) if len(raw) <= self.inline_bytes else None
                if body is not None:
                    return await self._send(send, body)
                receive = _replay(raw, receive)
        await self.app(scope, receive, send)

    async def _send(self, send, body: bytes) -> None:
        self.answered += 1
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    def _predict(self, raw: bytes) -> bytes | None:
        try:
            doc = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return None
        plain = plain_pairs(doc, self.max_batch)
        if plain is None:
            return None
        return orjson.dumps(_predict_body(self.holder.current, *plain))

    def _answer(self, path: str, query: bytes) -> bytes | None:
        parts = path.split("/")
        if len(parts) != 4 or parts[0] or not parts[2]:
            return None
        params = self._params(query)
        if params is None:
            return None
        served = self.holder.current
        n = params.pop("n", 10)
        if parts[1] == "users" and parts[3] == "recommendations":
            exclude = params.pop("exclude_seen", True)
            popular = params.pop("fallback", "none") == "popular"
            u = served.user_index(parts[2])
            if params or (u < 0 and not popular) or not isinstance(exclude, bool):
                return None
            return orjson.dumps(_recommend_body(served, parts[2], u, n, exclude))
        if parts[1] == "items" and parts[3] == "similar":
            i = served.item_index(parts[2])
            if params or i < 0:
                return None
            return orjson.dumps(_similar_body(served, i, n))
        return None

    def _params(self, query: bytes) -> dict | None:
        params = {}
        if not query:
            return params
        for pair in query.decode("latin-1").split("&"):
            key, eq, value = pair.partition("=")
            if not eq or key in params:
                return None
            if key == "n":
                if not (value.isascii() and value.isdigit() and len(value) <= 6 and value[0] != "0"
                        and int(value) <= self.max_n):
                    return None
                params["n"] = int(value)
            elif key == "exclude_seen" and value in self._FLAGS:
                params["exclude_seen"] = self._FLAGS[value]
            elif key == "fallback" and value in ("none", "popular"):
                params["fallback"] = value
            else:
                return None
        return params
