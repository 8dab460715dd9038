"""The HTTP service: a FastAPI app over one served model (``recsys serve MODEL``).

``create_app(model_path, settings)`` builds the app. Requests are validated by pydantic
(and documented in the OpenAPI schema at /docs and /openapi.json); responses are written
with orjson straight from the precomputed lists of ``recsys.serving.engine``, and plainly valid
requests to the hot endpoints are answered by ``FastPath`` before FastAPI's routing and
validation (same bytes; everything else goes to the routes).
Every bad request gets a 4xx with a JSON body ``{"error": code, "detail": message}``:
never a 500. The model can be reloaded without a restart (SIGHUP, or POST /admin/reload
with the token from ``RECSYS_ADMIN_TOKEN``); a file that does not load is refused and the
old model keeps serving.

Needs the ``serve`` extra: ``pip install 'recsys[serve]'``.
"""

import hmac
import logging
import math
import os
import signal
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from typing import Annotated, Literal, Union

import anyio
import orjson
from fastapi import Body, FastAPI, Header, Path, Query
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr
from starlette.exceptions import HTTPException as StarletteHTTPException

from recsys.errors import ModelError, RecsysError
from recsys.serving.engine import ModelHolder

log = logging.getLogger("recsys.serving.app")

#: Environment variables read by ``app_from_env`` (how uvicorn's worker processes get
#: the model path and settings) and the admin token.
ENV_MODEL = "RECSYS_MODEL"
ENV_SETTINGS = "RECSYS_SERVE_SETTINGS"
ENV_TOKEN = "RECSYS_ADMIN_TOKEN"


def _token_from_env() -> str | None:
    return os.environ.get(ENV_TOKEN) or None


@dataclass(frozen=True)
class Settings:
    """Limits and switches of the service."""

    max_n: int = 1000                 # largest n for recommendations and similar items
    max_batch: int = 10_000           # most pairs in one /predict, ratings in one fold-in
    max_body_bytes: int = 1 << 20     # largest request body
    admin_token: str | None = field(default_factory=_token_from_env, repr=False)
    reload_on_sighup: bool = False    # install a SIGHUP handler (the CLI does)
    cache_top: int = 100              # precompute each user's top items at load (0: off)...
    cache_budget: float = 5e9         # ...when users x items x factors is at most this
    fast_path: bool = True            # answer plainly valid hot requests before FastAPI

    def to_env(self) -> str:
        public = asdict(self)
        public.pop("admin_token")  # workers read the token from the environment themselves
        return orjson.dumps(public).decode()

    @classmethod
    def from_env(cls) -> "Settings":
        raw = os.environ.get(ENV_SETTINGS)
        return cls(**orjson.loads(raw)) if raw else cls()


# ----------------------------------------------------------------------------- schemas

#: A raw id: an integer (64-bit, as model files store them) or a string.
Id = Union[Annotated[StrictInt, Field(ge=-(2**63), le=2**63 - 1)], StrictStr]  # noqa: UP007


class Pair(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user: Id
    item: Id


class PredictRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    pairs: list[Pair] = Field(description="(user, item) pairs; unknown ids fall back to biases")


class Prediction(BaseModel):
    user: Id
    item: Id
    prediction: float


class PredictResponse(BaseModel):
    predictions: list[Prediction]


class ItemRating(BaseModel):
    model_config = ConfigDict(extra="forbid")
    item: Id
    rating: float = Field(allow_inf_nan=False)


class NewUserRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ratings: list[ItemRating] = Field(description="the new user's ratings (each item once)")
    n: int = Field(10, ge=1, description="how many items (at most the configured max_n)")
    exclude_rated: bool = True


class ScoredItem(BaseModel):
    item: Id
    score: float
    title: str | None = None


class Recommendations(BaseModel):
    user: Id | None = None
    fallback: str | None = Field(None, description="'popular' when the user was unknown")
    items: list[ScoredItem]


class NewUserRecommendations(BaseModel):
    user_bias: float
    used_ratings: int
    unknown_items: list[Id]
    items: list[ScoredItem]


class SimilarItem(BaseModel):
    item: Id
    similarity: float
    title: str | None = None


class SimilarItems(BaseModel):
    item: Id
    items: list[SimilarItem]


class ErrorBody(BaseModel):
    error: str
    detail: str


class Health(BaseModel):
    status: str
    generation: int
    loaded_at: str


# ----------------------------------------------------------------------------- helpers


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


def _plain_id(value) -> bool:
    kind = type(value)
    return kind is str or (kind is int and -(2**63) <= value < 2**63)


def _finite(values: list) -> list:
    return [v if math.isfinite(v) else None for v in values]


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
        body = orjson.dumps({"error": error, "detail": detail})
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})


class FastPath:
    """ASGI middleware answering the hot requests directly: recommendations and similar
    items (GET) and /predict (POST).

    It takes only requests whose every parameter is plainly valid (known ids, n a small
    decimal within bounds, the documented values of the flags, a JSON body of exactly the
    documented shape, nothing else) and writes
    the same bytes the FastAPI route would; anything else, errors included, goes on to
    the FastAPI route, which stays the reference and what the OpenAPI schema documents.
    """

    _FLAGS = {"true": True, "false": False, "1": True, "0": False}

    def __init__(self, app, holder: ModelHolder, max_n: int, max_batch: int):
        self.app, self.holder, self.max_n, self.max_batch = app, holder, max_n, max_batch
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
                body = self._predict(raw)
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
        if type(doc) is not dict or len(doc) != 1 or type(doc.get("pairs")) is not list:
            return None
        pairs = doc["pairs"]
        if len(pairs) > self.max_batch:
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
        return orjson.dumps(_predict_body(self.holder.current, users, items))

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


def _describe_validation(exc: RequestValidationError) -> tuple[int, str, str]:
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        return 400, "malformed_json", "the request body is not valid JSON"
    parts = {}
    for e in errors:
        loc = [str(x) for x in e.get("loc", ()) if x != "body"]
        message = e.get("msg", "invalid")
        if loc and loc[-1] in _ID_BRANCHES:  # one message for both branches of an id
            loc, message = loc[:-1], "Input should be an integer or a string id"
        parts.setdefault(".".join(loc) or "body", message)
    shown = [f"{where}: {message}" for where, message in list(parts.items())[:5]]
    more = f" (and {len(parts) - 5} more)" if len(parts) > 5 else ""
    return 422, "invalid_request", "; ".join(shown) + more


_ID_BRANCHES = {"int", "str", "constrained-int"}


# ----------------------------------------------------------------------------- the app

_ERRORS = {code: {"model": ErrorBody} for code in (400, 404, 413, 415, 422)}


def create_app(model_path, settings: Settings | None = None, holder: ModelHolder | None = None
               ) -> FastAPI:
    """The service for the model at ``model_path`` (or an already loaded ``holder``).

    Raises ``ModelError`` now if the model does not load.
    """
    settings = settings or Settings()
    holder = holder or ModelHolder(model_path, cache_top=settings.cache_top,
                                   cache_budget=settings.cache_budget)

    @asynccontextmanager
    async def lifespan(app):
        if settings.reload_on_sighup:
            _install_sighup(holder)
        yield

    app = FastAPI(title="recsys", version=_version(), lifespan=lifespan,
                  description="Funk-SVD predictions and recommendations.")
    app.state.holder = holder
    app.state.settings = settings
    if settings.fast_path:  # inside BodyLimit: the bodies it reads are already checked
        app.add_middleware(FastPath, holder=holder, max_n=settings.max_n,
                           max_batch=settings.max_batch)
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request, exc):
        content_type = request.headers.get("content-type", "")
        if request.method == "POST" and "json" not in content_type:
            return _error(415, "unsupported_media_type", "send the body as JSON with "
                          f"Content-Type: application/json, not {content_type or 'none'!r}")
        status, error, detail = _describe_validation(exc)
        return _error(status, error, detail)

    @app.exception_handler(ApiError)
    async def _api_error(request, exc):
        return _error(exc.status_code, exc.error, exc.detail)

    @app.exception_handler(Exception)
    async def _internal(request, exc):  # a bug, not a bad request: say so, in JSON
        log.exception("recsys: internal error")
        return _error(500, "internal_error", "internal error; the server log has the details")

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request, exc):
        names = {404: "not_found", 405: "method_not_allowed"}
        return _error(exc.status_code, names.get(exc.status_code, "http_error"), str(exc.detail))

    def check_n(n: int) -> None:
        if n > settings.max_n:
            raise ApiError(422, "invalid_request", f"n must be at most {settings.max_n}, not {n}")

    N = Annotated[int, Query(ge=1, le=settings.max_n, description="how many items")]

    @app.get("/health", response_model=Health)
    async def health():
        served = holder.current
        return _json({"status": "ok", "generation": holder.generation,
                      "loaded_at": served.loaded_at})

    @app.get("/model", summary="Parameters, counts, training date and format of the model")
    async def model_info():
        return _json({**holder.current.describe(), "generation": holder.generation})

    @app.post("/predict", response_model=PredictResponse, responses=_ERRORS)
    async def predict(body: PredictRequest,
                      strict: Annotated[bool, Query(description="unknown ids are a 404")] = False):
        served = holder.current
        pairs = body.pairs
        if len(pairs) > settings.max_batch:
            raise ApiError(413, "batch_too_large", f"{len(pairs)} pairs is over the limit of "
                                                   f"{settings.max_batch} per request")
        return _json(_predict_body(served, [p.user for p in pairs], [p.item for p in pairs],
                                   strict))

    @app.get("/users/{user}/recommendations", response_model=Recommendations,
             responses=_ERRORS)
    async def recommend(user: Annotated[str, Path(description="raw user id")], n: N = 10,
                        exclude_seen: bool = True,
                        fallback: Annotated[Literal["none", "popular"], Query(
                            description="'popular': unknown users get popular items")] = "none"):
        served = holder.current
        u = served.user_index(user)
        if u < 0 and fallback != "popular":
            raise ApiError(404, "unknown_user", f"unknown user {user!r}: not in the model "
                                                "(add ?fallback=popular for popular items)")
        return _json(_recommend_body(served, user, u, n, exclude_seen))

    @app.get("/items/{item}/similar", response_model=SimilarItems, responses=_ERRORS)
    async def similar(item: Annotated[str, Path(description="raw item id")], n: N = 10):
        served = holder.current
        i = served.item_index(item)
        if i < 0:
            raise ApiError(404, "unknown_item", f"unknown item {item!r}: not in the model")
        return _json(_similar_body(served, i, n))

    @app.post("/recommendations", response_model=NewUserRecommendations, responses=_ERRORS,
              summary="Recommendations for a user not in the model, from their ratings")
    async def recommend_new_user(body: Annotated[NewUserRequest, Body()]):
        served = holder.current
        check_n(body.n)
        if len(body.ratings) > settings.max_batch:
            raise ApiError(413, "batch_too_large", f"{len(body.ratings)} ratings is over the "
                                                   f"limit of {settings.max_batch} per request")
        items = [r.item for r in body.ratings]
        if len(set(map(str, items))) != len(items):
            raise ApiError(422, "invalid_request", "ratings: an item is rated more than once")
        known = [served.item_index(i) >= 0 for i in items]
        ratings = ([i for i, k in zip(items, known, strict=True) if k],
                   [r.rating for r, k in zip(body.ratings, known, strict=True) if k])
        model = served.model
        try:
            _, bias = model.fold_in(ratings)
            ids, scores = model.recommend_for_ratings(ratings, n=min(body.n, served.n_items),
                                                      exclude_rated=body.exclude_rated)
        except ValueError as exc:  # duplicate items
            raise ApiError(422, "invalid_request", f"ratings: {exc}") from None
        return _json({"user_bias": float(bias), "used_ratings": len(ratings[0]),
                      "unknown_items": [i for i, k in zip(items, known, strict=True) if not k],
                      "items": _scored(served, ids.tolist(), _finite(scores.tolist()))})

    @app.post("/admin/reload", responses={**_ERRORS, 403: {"model": ErrorBody},
                                          409: {"model": ErrorBody}},
              summary="Reload the model file (needs the RECSYS_ADMIN_TOKEN bearer token)")
    async def reload(authorization: Annotated[str | None, Header()] = None):
        if not settings.admin_token:
            raise ApiError(403, "reload_disabled",
                           f"reloading over HTTP is disabled: set {ENV_TOKEN} to enable it")
        given = (authorization or "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(given.encode(), settings.admin_token.encode()):
            raise ApiError(403, "forbidden", "missing or wrong admin token "
                                             "(send 'Authorization: Bearer TOKEN')")
        try:
            await anyio.to_thread.run_sync(holder.reload)
        except RecsysError as exc:
            raise ApiError(409, "reload_refused", f"{exc}; the previous model keeps serving") \
                from None
        return _json({"status": "reloaded", "generation": holder.generation,
                      **{k: holder.current.describe()[k] for k in ("n_users", "n_items")}})

    return app


def _unknown(ids: list, kind: str) -> None:
    if ids:
        shown = ", ".join(repr(x) for x in ids[:10]) + (" ..." if len(ids) > 10 else "")
        raise ApiError(404, f"unknown_{kind}", f"{len(ids)} unknown {kind}"
                                               f"{'s' if len(ids) > 1 else ''}: {shown}")


def _version() -> str:
    from recsys.version import __version__

    return __version__


def _install_sighup(holder: ModelHolder) -> None:
    """Reload on SIGHUP, off the event loop; a failed reload is logged and changes nothing."""
    import asyncio

    loop = asyncio.get_running_loop()

    def reload_now():
        try:
            holder.reload()
            log.warning("recsys: model reloaded from %s (generation %d)", holder.path,
                        holder.generation)
        except (RecsysError, OSError) as exc:
            log.error("recsys: reload refused, the previous model keeps serving: %s", exc)

    try:
        loop.add_signal_handler(signal.SIGHUP, lambda: loop.run_in_executor(None, reload_now))
    except (ValueError, RuntimeError, NotImplementedError, AttributeError):
        log.warning("recsys: SIGHUP reload is not available here")


def app_from_env() -> FastAPI:
    """The app for uvicorn worker processes: model path and settings from the environment."""
    path = os.environ.get(ENV_MODEL)
    if not path:
        raise ModelError(f"{ENV_MODEL} is not set")
    return create_app(path, Settings.from_env())
