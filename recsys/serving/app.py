"""The HTTP service: a FastAPI app over one served model (``recsys serve MODEL``).

``create_app(model_path, settings)`` builds the app. Requests are validated by pydantic
(``recsys.serving.schemas``, documented in the OpenAPI schema at /docs and /openapi.json);
responses are written with orjson (``recsys.serving.responses``) straight from the
precomputed lists of ``recsys.serving.engine``, and plainly valid requests to the hot
endpoints are answered by ``recsys.serving.middleware.FastPath`` before FastAPI's routing
and validation (same bytes; everything else goes to the routes).
Every bad request gets a 4xx with a JSON body ``{"error": code, "detail": message}``:
never a 500. The model can be reloaded without a restart (SIGHUP, or POST /admin/reload
with the token from ``RECSYS_ADMIN_TOKEN``); a file that does not load is refused and the
old model keeps serving. ``app_from_env`` is the factory uvicorn's worker processes call.

Needs the ``serve`` extra: ``pip install 'recsys[serve]'``.
"""

import hmac
import logging
import os
import signal
from contextlib import asynccontextmanager
from typing import Annotated, Literal

import anyio
from fastapi import Body, FastAPI, Header, Path, Query
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from recsys.errors import ModelError, RecsysError
from recsys.serving.engine import ModelHolder
from recsys.serving.middleware import BodyLimit, FastPath
from recsys.serving.responses import (
    ApiError,
    _error,
    _finite,
    _json,
    _predict_body,
    _recommend_body,
    _scored,
    _similar_body,
)
from recsys.serving.schemas import (
    ErrorBody,
    Health,
    NewUserRecommendations,
    NewUserRequest,
    PredictRequest,
    PredictResponse,
    Recommendations,
    SimilarItems,
)
from recsys.serving.settings import ENV_MODEL, ENV_SETTINGS, ENV_TOKEN, Settings

# what the CLI imports from here (ENV_SETTINGS only for it)
__all__ = ["ENV_MODEL", "ENV_SETTINGS", "ApiError", "Settings", "app_from_env", "create_app"]

log = logging.getLogger("recsys.serving.app")


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
