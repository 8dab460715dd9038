"""The HTTP service: a FastAPI app over one served model (``recsys serve MODEL``).

``create_app(model_path, settings)`` builds the app. Requests are validated by pydantic
(``recsys.serving.schemas``, documented in the OpenAPI schema at /docs and /openapi.json);
the JSON bodies of POST /predict and /recommendations are read by
``recsys.serving.bodies.JsonBodies`` with bounded work, the large ones off the event loop.
Responses are written with orjson (``recsys.serving.responses``) straight from the
precomputed lists of ``recsys.serving.engine``, and plainly valid requests to the hot
endpoints are answered by ``recsys.serving.middleware.FastPath`` before FastAPI's routing
and validation (same bytes; everything else goes on).
Every bad request gets a 4xx with a JSON body ``{"error": code, "detail": message}``:
never a 500. The model can be reloaded without a restart (SIGHUP, or POST /admin/reload
with the token from ``RECSYS_ADMIN_TOKEN``); a file that does not load, whatever the
error, is refused (409) and the old model keeps serving. ``app_from_env`` is the factory
uvicorn's worker processes call; with ``RECSYS_SERVE_STATE`` set they share one model
generation (``recsys.serving.generations``).

Needs the ``serve`` extra: ``pip install 'recsys-mf[serve]'``.
"""

import asyncio
import gc
import hmac
import logging
import os
import signal
from contextlib import asynccontextmanager
from typing import Annotated, Literal

import anyio
from fastapi import Body, FastAPI, Header, Path, Query
from fastapi.exceptions import RequestValidationError
from fastapi.responses import PlainTextResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from recsys.errors import ModelError, RecsysError
from recsys.serving.bodies import JsonBodies
from recsys.serving.candidates import candidate_mask, new_user_body
from recsys.serving.docs_assets import add_docs
from recsys.serving.engine import ModelHolder
from recsys.serving.live import add_ratings as add_ratings_to
from recsys.serving.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from recsys.serving.metrics import Metrics, RequestMetrics
from recsys.serving.middleware import BodyLimit, FastPath, FollowRatings, Generations
from recsys.serving.responses import (
    ApiError,
    _error,
    _json,
    _over_batch,
    _predict_body,
    _recommend_body,
    _similar_body,
    describe_errors,
)
from recsys.serving.schemas import (
    ErrorBody,
    Health,
    NewUserRecommendations,
    NewUserRequest,
    PredictRequest,
    PredictResponse,
    RatingsAccepted,
    RatingsRequest,
    Recommendations,
    SimilarItems,
)
from recsys.serving.settings import (
    ENV_MODEL,
    ENV_RATINGS_TOKEN,
    ENV_SETTINGS,
    ENV_STATE,
    ENV_TOKEN,
    Settings,
)

# what the CLI imports from here (ENV_SETTINGS only for it)
__all__ = ["ENV_MODEL", "ENV_SETTINGS", "ApiError", "Settings", "app_from_env", "create_app"]

log = logging.getLogger("recsys.serving.app")


# ----------------------------------------------------------------------------- the app

_ERRORS = {code: {"model": ErrorBody} for code in (400, 404, 413, 415, 422, 503)}


def create_app(model_path, settings: Settings | None = None, holder: ModelHolder | None = None
               ) -> FastAPI:
    """The service for the model at ``model_path`` (or an already loaded ``holder``).

    Raises ``ModelError`` now if the model does not load.
    """
    settings = settings or Settings()
    holder = holder or ModelHolder(model_path, cache_top=settings.cache_top,
                                   cache_budget=settings.cache_budget,
                                   ratings_log=settings.ratings_log)

    @asynccontextmanager
    async def lifespan(app):
        if settings.reload_on_sighup:
            _install_sighup(holder)
        # what is loaded now lives as long as the server: out of the cyclic collector, whose
        # full passes over it paused every request for ~100 ms after a large body
        gc.freeze()
        follow = None
        if holder.shared:  # load a new generation before a request has to wait for it
            follow = asyncio.get_running_loop().create_task(_follow_generations(holder))
        yield
        if follow is not None:
            follow.cancel()

    # no redirects of a trailing slash (an empty 307): such paths are a JSON 404
    app = FastAPI(title="recsys", version=_version(), lifespan=lifespan,
                  redirect_slashes=False, docs_url=None, redoc_url=None,
                  description="Funk-SVD predictions and recommendations.")
    app.state.holder = holder
    app.state.settings = settings
    # outermost first: RequestMetrics, BodyLimit, Generations, FollowRatings, FastPath,
    # JsonBodies, routes (added innermost first)
    limits = {"max_n": settings.max_n, "max_batch": settings.max_batch,
              "inline_bytes": settings.inline_body_bytes}
    app.add_middleware(JsonBodies, holder=holder, **limits)
    if settings.fast_path:  # inside BodyLimit: the bodies it reads are already checked
        app.add_middleware(FastPath, holder=holder, **limits)
    if settings.ratings_log:  # inside Generations: the ratings of the generation served
        app.add_middleware(FollowRatings, holder=holder)
    if holder.shared:
        app.add_middleware(Generations, holder=holder)
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    metrics = app.state.metrics = Metrics()
    app.add_middleware(RequestMetrics, metrics=metrics)  # outermost: counts every answer

    @app.exception_handler(RequestValidationError)
    async def _invalid(request, exc):
        content_type = request.headers.get("content-type", "")
        if request.method == "POST" and "json" not in content_type:
            return _error(415, "unsupported_media_type", "send the body as JSON with "
                          f"Content-Type: application/json, not {content_type or 'none'!r}")
        status, error, detail = describe_errors(exc.errors())
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

    N = Annotated[int, Query(ge=1, le=settings.max_n, description="how many items")]
    Ids = Annotated[list[str] | None, Query(
        description="only these items are candidates; repeat the parameter for several "
                    "(items=1&items=2); unknown ids are ignored unless strict")]
    ExcludeIds = Annotated[list[str] | None, Query(
        description="these items are never recommended; repeat the parameter for several")]

    @app.get("/health", response_model=Health)
    async def health():
        served = holder.current
        return _json({"status": "ok", "generation": holder.generation,
                      "loaded_at": served.loaded_at, "worker": holder.worker})

    @app.get("/metrics", response_class=PlainTextResponse,
             summary="Counters in the Prometheus text format (this worker's)")
    async def metrics_text():
        return PlainTextResponse(metrics.render(holder, settings),
                                 media_type=METRICS_CONTENT_TYPE)

    @app.get("/model", summary="Parameters, counts, training date and format of the model")
    async def model_info():
        return _json({**holder.current.describe(), "generation": holder.generation})

    @app.post("/predict", response_model=PredictResponse, responses=_ERRORS)
    async def predict(body: PredictRequest,
                      strict: Annotated[bool, Query(description="unknown ids are a 404")] = False):
        served = holder.current
        pairs = body.pairs
        _over_batch(len(pairs), "pairs", settings.max_batch)
        return _json(_predict_body(served, [p.user for p in pairs], [p.item for p in pairs],
                                   strict))

    @app.get("/users/{user}/recommendations", response_model=Recommendations,
             responses=_ERRORS)
    async def recommend(user: Annotated[str, Path(description="raw user id")], n: N = 10,
                        exclude_seen: bool = True,
                        fallback: Annotated[Literal["none", "popular"], Query(
                            description="'popular': unknown users get popular items")] = "none",
                        items: Ids = None, exclude: ExcludeIds = None,
                        strict: Annotated[bool, Query(
                            description="unknown ids in items are a 404")] = False):
        served = holder.current
        u = served.user_index(user)
        if u < 0 and fallback != "popular":
            raise ApiError(404, "unknown_user", f"unknown user {user!r}: not in the model "
                                                "(add ?fallback=popular for popular items)")
        allowed = candidate_mask(served, items, exclude, strict, settings.max_batch, query=True)
        return _json(_recommend_body(served, user, u, n, exclude_seen, allowed))

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
        # JSON bodies are answered by JsonBodies; this is the reference and the schema
        return _json(new_user_body(holder.current, body, settings.max_n, settings.max_batch))

    @app.post("/ratings", response_model=RatingsAccepted,
              responses={**_ERRORS, 401: {"model": ErrorBody}, 403: {"model": ErrorBody}},
              summary="Add ratings: logged durably, then the users' rows re-solved at once "
                      "(needs the RECSYS_RATINGS_TOKEN bearer token)")
    async def add_ratings(body: RatingsRequest,
                          authorization: Annotated[str | None, Header()] = None):
        if not settings.ratings_log:
            raise ApiError(403, "ratings_disabled", "live ratings are off: start the server "
                                                    "with --ratings-log FILE")
        _check_token(authorization, settings.ratings_token, ENV_RATINGS_TOKEN)
        _over_batch(len(body.ratings), "ratings", settings.max_batch)
        served = holder.current
        rows = [(r.user, r.item, r.rating, r.timestamp) for r in body.ratings]
        try:  # the fsync and the solves off the event loop
            answer = await anyio.to_thread.run_sync(add_ratings_to, served, rows)
        except ValueError as exc:
            raise ApiError(422, "invalid_rating", str(exc)) from None
        except ModelError as exc:
            raise ApiError(503, "log_unavailable", str(exc)) from None
        except OSError as exc:  # nothing was acknowledged
            raise ApiError(503, "log_unavailable", f"cannot write the ratings log: "
                                                   f"{exc.strerror or exc}") from None
        metrics.ratings_accepted += answer["accepted"]
        return _json(answer)

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
        except RecsysError as exc:  # ModelError, whatever the loader raised
            raise ApiError(409, "reload_refused", f"{exc}; the previous model keeps serving") \
                from None
        return _json({"status": "reloaded", "generation": holder.generation,
                      **{k: holder.current.describe()[k] for k in ("n_users", "n_items")}})

    add_docs(app, app.title)  # /docs from the files shipped with the package
    metrics.set_routes(app.routes)
    return app


def _check_token(authorization: str | None, token: str | None, env: str) -> None:
    """401 without a bearer token, 403 with a wrong one (or none configured)."""
    given = (authorization or "").removeprefix("Bearer ").strip()
    if not given:
        raise ApiError(401, "unauthorized", "send 'Authorization: Bearer TOKEN'")
    if not token:
        raise ApiError(403, "forbidden", f"no token is configured: set {env}")
    if not hmac.compare_digest(given.encode(), token.encode()):
        raise ApiError(403, "forbidden", "wrong token")


def _version() -> str:
    from recsys.version import __version__

    return __version__


def _install_sighup(holder: ModelHolder) -> None:
    """Reload on SIGHUP, off the event loop; a failed reload is logged and changes nothing."""
    loop = asyncio.get_running_loop()

    def reload_now():
        try:
            holder.reload()
            log.warning("recsys: model reloaded from %s (generation %d)", holder.path,
                        holder.generation)
        except Exception as exc:  # noqa: BLE001 - one line in the log, and keep serving
            log.error("recsys: reload refused, the previous model keeps serving: %s", exc)

    try:
        loop.add_signal_handler(signal.SIGHUP, lambda: loop.run_in_executor(None, reload_now))
    except (ValueError, RuntimeError, NotImplementedError, AttributeError):
        log.warning("recsys: SIGHUP reload is not available here")


async def _follow_generations(holder, every: float = 1.0) -> None:
    """A worker's background check: load a newly published generation within a second,
    so that requests rarely wait for it (they check too, before answering)."""
    while True:
        await anyio.sleep(every)
        if holder.stale():
            try:
                await anyio.to_thread.run_sync(holder.catch_up)
            except ModelError as exc:
                log.error("recsys: worker %d cannot load the current model: %s",
                          holder.worker, exc)


def app_from_env() -> FastAPI:
    """The app for uvicorn worker processes: model path and settings from the environment;
    with ``RECSYS_SERVE_STATE``, the model generation shared by the workers."""
    path = os.environ.get(ENV_MODEL)
    if not path:
        raise ModelError(f"{ENV_MODEL} is not set")
    settings = Settings.from_env()
    state = os.environ.get(ENV_STATE)
    if not state:
        return create_app(path, settings)
    from recsys.serving.generations import GenerationStore, SharedHolder

    holder = SharedHolder(GenerationStore(state), path, cache_top=settings.cache_top,
                          cache_budget=settings.cache_budget,
                          ratings_log=settings.ratings_log)
    return create_app(path, settings, holder=holder)
