"""What counting a request for GET /metrics costs: the service's ASGI stack called in
process with and without its ``RequestMetrics`` layer, on the same requests.

No network and no HTTP parsing (those are the same with or without the layer): each
request is one call of the stack from the layer inward (with) or from the layer below it
(without), alternating in rounds so that drift on a shared machine hits both alike.
Phases: a recommendation answered by the fast path (the cheapest request there is, so
the largest relative cost) and an unknown user's 404 (the layer reads the error body).

    python scripts/bench_metrics.py [--requests 20000] [--rounds 7]
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import statistics
import tempfile
import time
from pathlib import Path


def small_model(folder: Path) -> Path:
    from recsys import FunkSVD
    from recsys.data.synth import SynthSpec, generate
    from recsys.models.registry import save

    ratings, _ = generate(SynthSpec(n_users=6040, n_items=3706, n_ratings=200_000, seed=0))
    path = folder / "model.npz"
    save(FunkSVD(n_factors=64, n_epochs=3, seed=0).fit(ratings), path)
    return path


def scope(path: str, query: str) -> dict:
    return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
            "method": "GET", "scheme": "http", "path": path, "raw_path": path.encode(),
            "query_string": query.encode(), "root_path": "", "headers": [(b"host", b"x")],
            "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80)}


async def run(app, request: dict, n: int) -> float:
    """Seconds per request over n calls."""
    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        pass

    start = time.perf_counter()
    for _ in range(n):
        await app(dict(request), receive, send)
    return (time.perf_counter() - start) / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()

    from recsys.serving.app import create_app
    from recsys.serving.metrics import RequestMetrics
    from recsys.serving.settings import Settings

    with tempfile.TemporaryDirectory() as tmp:
        app = create_app(small_model(Path(tmp)), Settings(admin_token=None))
        stack = app.build_middleware_stack()
        layer = stack
        while not isinstance(layer, RequestMetrics):
            layer = layer.app
        phases = {"fast-path recommendation": scope("/users/1/recommendations", "n=10"),
                  "unknown user, 404": scope("/users/999999/recommendations", "")}
        print(f"{platform.processor() or platform.machine()}, {args.rounds} rounds of "
              f"{args.requests:,} requests per variant, alternating")
        for name, request in phases.items():
            asyncio.run(run(layer, request, 200))  # warm both
            asyncio.run(run(layer.app, request, 200))
            with_layer, without = [], []
            for _ in range(args.rounds):
                without.append(asyncio.run(run(layer.app, request, args.requests)))
                with_layer.append(asyncio.run(run(layer, request, args.requests)))
            diffs = [(a - b) * 1e6 for a, b in zip(with_layer, without, strict=True)]
            ratios = [a / b for a, b in zip(with_layer, without, strict=True)]
            print(f"{name}: without {statistics.median(without) * 1e6:.1f} us, with "
                  f"{statistics.median(with_layer) * 1e6:.1f} us (medians); added "
                  f"{statistics.median(diffs):.1f} us (rounds {min(diffs):.1f} to "
                  f"{max(diffs):.1f}), ratio {statistics.median(ratios):.2f} "
                  f"({min(ratios):.2f} to {max(ratios):.2f})")


if __name__ == "__main__":
    main()
