"""``recsys serve --workers N``: uvicorn's worker processes serving one model generation.

``run_workers`` publishes the model file as generation 1 of a new ``GenerationStore``
(``recsys.serving.generations``; a file that does not load stops here, before anything
listens), binds the socket and runs uvicorn's multiprocess supervisor, with one change:
SIGHUP to this parent process publishes the model file as a new generation (one log
line: reloaded, or refused and the current generation keeps serving) instead of
restarting the workers one by one. The workers (``recsys.serving.app.app_from_env``)
serve the newest generation; POST /admin/reload to any of them publishes one too. The
store's folder is removed when the server stops.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import uvicorn
from uvicorn.supervisors import Multiprocess

from recsys.serving.engine import load_served
from recsys.serving.generations import GenerationStore
from recsys.serving.protocol import MAX_HEAD, http_protocol
from recsys.serving.settings import ENV_MODEL, ENV_SETTINGS, ENV_STATE, Settings

log = logging.getLogger("recsys.serving.app")


class Supervisor(Multiprocess):
    """uvicorn's supervisor of the worker processes; SIGHUP calls ``on_hup``."""

    def __init__(self, config, sockets, on_hup):
        super().__init__(config, sockets)
        self._on_hup = on_hup

    def handle_hup(self) -> None:
        self._on_hup()


def run_workers(model_path, settings: Settings, workers: int, **options) -> None:
    """Serve ``model_path`` from ``workers`` processes; ``options`` go to uvicorn.Config.

    Raises ``ModelError`` before listening if the model does not load.
    """
    from recsys.models.registry import load

    source = Path(model_path).resolve()

    def build(path):  # the check every generation passes before any worker sees it
        return load_served(load, path, source, cache_top=settings.cache_top,
                           cache_budget=settings.cache_budget,
                           ratings_log=settings.ratings_log)

    def publish() -> None:
        try:
            record, _, _ = store.publish(source, build)
        except Exception as exc:  # noqa: BLE001 - one line in the log, and keep serving
            log.error("recsys: reload refused, the previous model keeps serving: %s", exc)
        else:
            log.warning("recsys: model reloaded from %s (generation %d)", source,
                        record["generation"])

    store = GenerationStore.create()
    try:
        store.publish(source, build)
        os.environ[ENV_MODEL] = str(source)
        os.environ[ENV_SETTINGS] = settings.to_env()
        os.environ[ENV_STATE] = str(store.folder)
        config = uvicorn.Config("recsys.serving.app:app_from_env", factory=True,
                                workers=workers, http=http_protocol(), ws="none",
                                h11_max_incomplete_event_size=MAX_HEAD, **options)
        sock = config.bind_socket()
        try:
            Supervisor(config, [sock], publish).run()
        except KeyboardInterrupt:
            pass
        finally:
            sock.close()
    finally:
        store.remove()
