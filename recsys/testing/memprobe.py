"""Peak memory of one fit, by the kernel's counters (Linux): for the memory guard's test
(tests/test_memory_guard.py) and its calibration (scripts/bench_memory_guard.py).

``measure_fit`` generates MovieLens-shaped ratings (``recsys.data.synth``; ids and ratings
only, as a file of user,item,rating gives), fits a tiny model of the same kind first (so
compiling or loading the kernels is not counted), collects garbage, gives the heap's
free memory back to the system (glibc's ``malloc_trim``, so the fit cannot hide its
allocations in memory freed before), reads the resident size, resets the peak mark
(``/proc/self/clear_refs``) and fits; the increment is the peak (VmHWM) minus the resident
size before the fit. Run it in a fresh process: ``python -m recsys.testing.memprobe
ESTIMATOR PARAMS_JSON USERS ITEMS RATINGS`` prints its result as JSON.
"""

from __future__ import annotations

import gc
import json
import sys
import time


def _status(field: str) -> int | None:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def rss_now() -> int | None:
    return _status("VmRSS")


def rss_peak() -> int | None:
    return _status("VmHWM")


def rss_reset() -> bool:
    """Reset the kernel's peak-RSS mark of this process; False where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def malloc_trim() -> None:
    import ctypes

    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _estimator(name: str, params: dict):
    from recsys.models.registry import ESTIMATORS

    return ESTIMATORS[name](**params)


def measure_fit(name: str, params: dict, n_users: int, n_items: int, n_ratings: int,
                seed: int = 1) -> dict:
    """Estimate and measured peak increment of ``name(**params).fit`` on generated data."""
    import numpy as np

    from recsys.data.ratings import Ratings
    from recsys.data.synth import SynthSpec, generate

    made, _ = generate(SynthSpec(n_users=n_users, n_items=n_items, n_ratings=n_ratings,
                                 seed=seed))
    ratings = Ratings(made.users, made.items, made.values, made.user_map, made.item_map)
    del made
    tiny = ratings.subset(slice(0, 3_000))
    small = {**params, "n_factors": 2}
    if "ranking_factors" in small:
        small["ranking_factors"] = 2
    _estimator(name, small).fit(tiny)
    del tiny
    gc.collect()
    malloc_trim()
    model = _estimator(name, params)
    estimate = model.memory_estimate(ratings)
    # the ratings the training loop itself gets: the chosen pairs of the ranking objective
    trained = len(ratings) if name != "RankingMF" else int(np.count_nonzero(
        ratings.values >= float(model.threshold)) if model.threshold is not None
        else np.count_nonzero(ratings.values > 0))
    before = rss_now()
    if before is None or not rss_reset():
        raise OSError("peak RSS cannot be measured here (needs Linux /proc)")
    start = time.perf_counter()
    model.fit(ratings)
    seconds = time.perf_counter() - start
    return {"estimator": name, "params": params, "ratings": len(ratings),
            "users": ratings.n_users, "items": ratings.n_items, "trained": trained,
            "before": before,
            "measured": rss_peak() - before, "estimate": estimate, "seconds": seconds}


def main(argv=None) -> int:
    name, params, n_users, n_items, n_ratings = (argv or sys.argv[1:])[:5]
    print(json.dumps(measure_fit(name, json.loads(params), int(n_users), int(n_items),
                                 int(n_ratings))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
