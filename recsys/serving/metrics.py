"""GET /metrics: the service's counters in the Prometheus text exposition format (0.0.4).

``Metrics`` counts what one worker process answered: requests by route, method and
status, latency histograms by route, refusals by error code (the ``error`` of the JSON
body), ratings accepted; ``render`` adds the model's generation, load time and live
ratings at the time of the scrape. ``RequestMetrics`` is the outermost ASGI middleware,
so requests answered by ``FastPath``, ``JsonBodies`` or ``BodyLimit`` count like the
routes'. Every sample carries a ``worker`` label (the pid): with ``--workers N`` each
worker answers a scrape for itself. A request is counted once its answer is sent, so a
scrape shows the scrapes before it, never itself. Written by hand: no dependency.
"""

import math
import os
import time
from bisect import bisect_left

import orjson

#: upper bounds (seconds) of the latency buckets, +Inf last
BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
           10.0, math.inf)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}
OTHER = "other"  # the route of paths that match none, the method of unusual methods


def _label(value) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value) -> str:
    if value == math.inf:
        return "+Inf"
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    return repr(float(value)) if isinstance(value, float) else str(value)


class Metrics:
    """One process's request counters, latency histograms and error counts."""

    def __init__(self):
        self.worker = os.getpid()
        self.requests: dict[tuple, int] = {}      # (route, method, status): count
        self.latency: dict[str, list] = {}        # route: [bucket counts..., sum]
        self.errors: dict[str, int] = {}          # error code: count
        self.ratings_accepted = 0
        self._static: dict[str, str] = {}
        self._patterns: list = []

    def set_routes(self, routes) -> None:
        """The route templates requests are counted under (Starlette routes)."""
        for route in routes:
            path = getattr(route, "path", None)
            if path is None:
                continue
            if "{" in path:
                self._patterns.append((route.path_regex, path))
            else:
                self._static[path] = path

    def route(self, path: str) -> str:
        found = self._static.get(path)
        if found is not None:
            return found
        for regex, template in self._patterns:
            if regex.match(path):
                return template
        return OTHER

    def observe(self, path: str, method: str, status: int, seconds: float,
                error: str | None) -> None:
        route = self.route(path)
        key = (route, method if method in _METHODS else OTHER, status)
        self.requests[key] = self.requests.get(key, 0) + 1
        counts = self.latency.get(route)
        if counts is None:
            counts = self.latency[route] = [0] * len(BUCKETS) + [0.0]
        counts[bisect_left(BUCKETS, seconds)] += 1  # the first bucket with seconds <= le
        counts[-1] += seconds
        if error is not None:
            self.errors[error] = self.errors.get(error, 0) + 1

    def render(self, holder, settings) -> str:
        """The exposition text, with the served model's gauges read now."""
        w = f'worker="{self.worker}"'
        out = []

        def family(name, kind, text):
            out.append(f"# HELP {name} {text}\n# TYPE {name} {kind}\n")

        family("recsys_requests_total", "counter",
               "Requests answered, by route template, method and status.")
        for (route, method, status), n in sorted(self.requests.items()):
            out.append(f'recsys_requests_total{{{w},route="{_label(route)}",method="{method}",'
                       f'status="{status}"}} {n}\n')
        family("recsys_request_duration_seconds", "histogram",
               "Seconds from a request's arrival to the end of its answer, by route.")
        for route, counts in sorted(self.latency.items()):
            labels = f'{w},route="{_label(route)}"'
            total = 0
            for bound, n in zip(BUCKETS, counts, strict=False):
                total += n
                out.append(f'recsys_request_duration_seconds_bucket{{{labels},'
                           f'le="{_number(bound)}"}} {total}\n')
            out.append(f"recsys_request_duration_seconds_sum{{{labels}}} {counts[-1]!r}\n")
            out.append(f"recsys_request_duration_seconds_count{{{labels}}} {total}\n")
        family("recsys_errors_total", "counter",
               "Refused or failed requests, by the error code of the JSON body.")
        for error, n in sorted(self.errors.items()):
            out.append(f'recsys_errors_total{{{w},error="{_label(error)}"}} {n}\n')
        served = holder.current
        family("recsys_model_generation", "gauge",
               "The model generation served (1 at start, +1 per reload).")
        out.append(f"recsys_model_generation{{{w}}} {holder.generation}\n")
        family("recsys_model_load_seconds", "gauge",
               "Seconds it took to read and prepare the model served.")
        out.append(f"recsys_model_load_seconds{{{w}}} {_number(served.load_seconds)}\n")
        family("recsys_model_loaded_timestamp_seconds", "gauge",
               "When the model served was loaded (Unix time).")
        out.append(f"recsys_model_loaded_timestamp_seconds{{{w}}} {served.loaded_unix!r}\n")
        if settings.ratings_log:
            family("recsys_ratings_accepted_total", "counter",
                   "Live ratings this worker accepted (POST /ratings).")
            out.append(f"recsys_ratings_accepted_total{{{w}}} {self.ratings_accepted}\n")
            live = served.live
            gauges = (("recsys_live_ratings", "Live ratings applied to the model served.",
                       0 if live is None else live.count),
                      ("recsys_live_users_changed", "Users whose rows live ratings changed.",
                       len(served._changed)),
                      ("recsys_live_new_users", "Users added by live ratings.",
                       0 if live is None else len(live.new_users)))
            for name, text, value in gauges:
                family(name, "gauge", text)
                out.append(f"{name}{{{w}}} {value}\n")
        return "".join(out)


class RequestMetrics:
    """ASGI middleware (the outermost): time and count every HTTP request's answer."""

    _LONGEST_ERROR_BODY = 64 * 1024  # error bodies are short; longer ones are not read

    def __init__(self, app, metrics: Metrics):
        self.app, self.metrics = app, metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start = time.perf_counter()
        status, chunks = None, []

        async def recording_send(message):
            nonlocal status
            if status is None:  # http.response.start
                status = message.get("status")
                return await send(message)
            if status >= 400 and sum(map(len, chunks)) < self._LONGEST_ERROR_BODY:
                chunks.append(message.get("body", b""))
            await send(message)
            if not message.get("more_body", False):
                self._record(scope, status, start, chunks)

        try:
            await self.app(scope, receive, recording_send)
        except Exception:
            if status is None:  # the server's error handler answers 500 next
                self.metrics.observe(scope["path"], scope["method"], 500,
                                     time.perf_counter() - start, "internal_error")
            raise

    def _record(self, scope, status, start, chunks) -> None:
        error = None
        if status >= 400:
            try:
                error = orjson.loads(b"".join(chunks)).get("error")
            except (orjson.JSONDecodeError, AttributeError):
                error = None
            error = str(error) if error is not None else "http_error"
        self.metrics.observe(scope["path"], scope["method"], status,
                             time.perf_counter() - start, error)
