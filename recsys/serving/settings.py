"""Settings of the HTTP service and the environment variables that carry them.

``Settings`` holds the limits and switches; the CLI passes it to ``create_app``, and to
uvicorn's worker processes as JSON in ``RECSYS_SERVE_SETTINGS`` (the tokens are never
put there: each worker reads ``RECSYS_ADMIN_TOKEN`` and ``RECSYS_RATINGS_TOKEN`` itself).
"""

import os
from dataclasses import asdict, dataclass, field

import orjson

#: Environment variables read by ``app_from_env`` (how uvicorn's worker processes get
#: the model path and settings) and the admin token.
ENV_MODEL = "RECSYS_MODEL"
ENV_SETTINGS = "RECSYS_SERVE_SETTINGS"
ENV_TOKEN = "RECSYS_ADMIN_TOKEN"
#: The token of POST /ratings (when unset, the admin token serves for it too).
ENV_RATINGS_TOKEN = "RECSYS_RATINGS_TOKEN"
#: The folder of the model generations shared by the workers (``recsys.serving.generations``).
ENV_STATE = "RECSYS_SERVE_STATE"


def _token_from_env() -> str | None:
    return os.environ.get(ENV_TOKEN) or None


def _ratings_token_from_env() -> str | None:
    return os.environ.get(ENV_RATINGS_TOKEN) or _token_from_env()


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
    inline_body_bytes: int = 8192     # longer JSON bodies are read in a worker thread
    ratings_log: str | None = None    # the write-ahead log of POST /ratings (None: off)
    ratings_token: str | None = field(default_factory=_ratings_token_from_env, repr=False)

    def to_env(self) -> str:
        public = asdict(self)
        public.pop("admin_token")  # workers read the tokens from the environment themselves
        public.pop("ratings_token")
        return orjson.dumps(public).decode()

    @classmethod
    def from_env(cls) -> "Settings":
        raw = os.environ.get(ENV_SETTINGS)
        return cls(**orjson.loads(raw)) if raw else cls()
