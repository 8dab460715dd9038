"""``recsys serve``: the HTTP service.

Every option can also be set by an environment variable: ``--max-body`` by
``RECSYS_SERVE_MAX_BODY`` and so on (``RECSYS_SERVE_`` and the option's name in capitals,
dashes as underscores), MODEL by ``RECSYS_SERVE_MODEL``; the command line wins.
"""

from __future__ import annotations

import click

PREFIX = "RECSYS_SERVE_"


def _env(name: str) -> dict:
    """The envvar of an option, shown in --help."""
    return {"envvar": PREFIX + name, "show_envvar": True}


@click.command(epilog="Environment: each option's variable is named beside it; MODEL can "
                      "come from RECSYS_SERVE_MODEL. The command line wins over the "
                      "environment. RECSYS_ADMIN_TOKEN enables POST /admin/reload; "
                      "RECSYS_RATINGS_TOKEN is the token of POST /ratings (default: the "
                      "admin token).")
@click.argument("model_path", metavar="MODEL", envvar=PREFIX + "MODEL")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.",
              **_env("HOST"))
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True,
              help="Port to listen on (0: any free port).", **_env("PORT"))
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="Worker processes (each holds the model; one per core is a good start).",
              **_env("WORKERS"))
@click.option("--max-n", type=click.IntRange(1, 10_000), default=1000, show_default=True,
              help="Largest n a request may ask for.", **_env("MAX_N"))
@click.option("--max-batch", type=click.IntRange(min=1), default=10_000, show_default=True,
              help="Most pairs in one /predict (and ratings in one fold-in, ids in items "
                   "and exclude).", **_env("MAX_BATCH"))
@click.option("--max-body", type=click.IntRange(min=1), default=1 << 20, show_default=True,
              help="Largest request body in bytes.", **_env("MAX_BODY"))
@click.option("--cache-top", type=click.IntRange(min=0), default=100, show_default=True,
              help="Precompute each user's top items and each item's most similar items "
                   "at load (0: off; skipped where users x items x factors is over 5e9).",
              **_env("CACHE_TOP"))
@click.option("--fast-path/--no-fast-path", default=True, show_default=True,
              help="Answer plainly valid requests to the hot endpoints without FastAPI's "
                   "per-request work (same answers).", **_env("FAST_PATH"))
@click.option("--ratings-log", default=None, metavar="FILE",
              help="Take live ratings (POST /ratings, with the RECSYS_RATINGS_TOKEN or admin "
                   "token): each is appended to FILE and fsynced before it is acknowledged, "
                   "and FILE is replayed over MODEL at start and on reload.",
              **_env("RATINGS_LOG"))
@click.option("--access-log/--no-access-log", default=False,
              help="Log every request (slower).", **_env("ACCESS_LOG"))
def serve(model_path, host, port, workers, max_n, max_batch, max_body, cache_top, fast_path,
          ratings_log, access_log):
    """Serve MODEL over HTTP: predictions, recommendations, similar items, new users.

    SIGHUP reloads MODEL (a file that fails to load is refused; the old model keeps
    serving); so does POST /admin/reload when RECSYS_ADMIN_TOKEN is set. With --workers N
    a reload reaches every worker: all of them answer from the new model once the reload
    is answered (or logged). With --ratings-log, POST /ratings updates users at once and
    durably. API docs at /docs.
    """
    import importlib.util
    import os

    from recsys.errors import RecsysError
    from recsys.version import DISTRIBUTION

    missing = [m for m in ("fastapi", "uvicorn", "orjson") if importlib.util.find_spec(m) is None]
    if missing:
        raise RecsysError(f"recsys serve needs {', '.join(missing)}: "
                          f"install them with pip install '{DISTRIBUTION}[serve]'")
    # requests are small: one thread per process, and more processes for more cores
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                 "NUMBA_NUM_THREADS"):
        os.environ.setdefault(name, "1")
    import signal

    import uvicorn

    from recsys.serving.app import Settings, create_app
    from recsys.serving.protocol import MAX_HEAD, http_protocol

    # the server shuts down gracefully on SIGTERM itself, then re-raises it to the handler
    # it found: the default one, so the process ends as a terminated server does
    signal.signal(signal.SIGTERM, signal.SIG_DFL)

    if ratings_log is not None:
        from pathlib import Path

        if Path(ratings_log).resolve() == Path(model_path).resolve():
            raise RecsysError(f"--ratings-log {ratings_log} is the model file itself")
        ratings_log = str(Path(ratings_log).resolve())  # workers may start elsewhere
    settings = Settings(max_n=max_n, max_batch=max_batch, max_body_bytes=max_body,
                        cache_top=cache_top, fast_path=fast_path, reload_on_sighup=True,
                        ratings_log=ratings_log)
    options = {"host": host, "port": port, "access_log": access_log, "log_level": "info"}
    if workers > 1:  # one model generation for all workers (recsys.serving.workers)
        from recsys.serving.workers import run_workers

        click.echo(f"serving {model_path} with {workers} workers; API docs at /docs", err=True)
        run_workers(model_path, settings, workers, **options)  # exit 2 if MODEL does not load
        return
    app = create_app(model_path, settings)  # fails here, exit 2, if MODEL does not load
    click.echo(f"serving {model_path} with 1 worker; API docs at /docs", err=True)
    # JSON refusals of malformed requests and of heads over the limits; no websockets
    uvicorn.run(app, http=http_protocol(), ws="none", h11_max_incomplete_event_size=MAX_HEAD,
                **options)
