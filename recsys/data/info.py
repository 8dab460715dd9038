"""Summary statistics of a ratings set, for ``recsys info``."""

from __future__ import annotations

import datetime as dt

import numpy as np

from recsys.data.ratings import Ratings


def _spread(counts: np.ndarray) -> dict:
    if len(counts) == 0:
        return {"min": 0, "median": 0.0, "max": 0}
    return {"min": int(counts.min()), "median": float(np.median(counts)),
            "max": int(counts.max())}


def histogram(values: np.ndarray, max_bins: int = 20) -> list[tuple[str, int]]:
    """Counts per distinct rating value; for continuous ratings, ten equal-width bins."""
    distinct, counts = np.unique(values, return_counts=True)
    if len(distinct) <= max_bins:
        return [(f"{v:g}", int(c)) for v, c in zip(distinct.tolist(), counts.tolist(),
                                                   strict=True)]
    counts, edges = np.histogram(values, bins=10)
    return [(f"{lo:.3g}..{hi:.3g}", int(c))
            for lo, hi, c in zip(edges[:-1], edges[1:], counts, strict=True)]


def summarize(ratings: Ratings) -> dict:
    """Users, items, ratings, density, rating histogram, activity spread and time span."""
    n = len(ratings)
    per_user = np.bincount(ratings.users, minlength=ratings.n_users)
    per_item = np.bincount(ratings.items, minlength=ratings.n_items)
    per_user, per_item = per_user[per_user > 0], per_item[per_item > 0]
    cells = len(per_user) * len(per_item)
    out = {
        "users": len(per_user),
        "items": len(per_item),
        "ratings": n,
        "density": n / cells if cells else 0.0,
        "mean_rating": float(ratings.values.mean(dtype=np.float64)) if n else None,
        "histogram": histogram(ratings.values) if n else [],
        "ratings_per_user": _spread(per_user),
        "ratings_per_item": _spread(per_item),
        "time_span": None,
    }
    if ratings.timestamps is not None and n:
        first, last = int(ratings.timestamps.min()), int(ratings.timestamps.max())
        out["time_span"] = {"first": first, "last": last, "days": (last - first) / 86_400}
    return out


def _date(ts: int) -> str:
    try:
        return dt.datetime.fromtimestamp(ts, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    except (OverflowError, OSError, ValueError):
        return str(ts)


def format_summary(info: dict, source: str | None = None) -> str:
    """The summary as aligned text lines."""
    lines = []
    if source:
        lines.append(f"source            {source}")
    lines += [
        f"users             {info['users']:,}",
        f"items             {info['items']:,}",
        f"ratings           {info['ratings']:,}",
        f"density           {info['density']:.4%}",
    ]
    if info["mean_rating"] is not None:
        lines.append(f"mean rating       {info['mean_rating']:.4f}")
    for key, label in (("ratings_per_user", "ratings per user"),
                       ("ratings_per_item", "ratings per item")):
        s = info[key]
        lines.append(f"{label:<18}min {s['min']:,}  median {s['median']:g}  max {s['max']:,}")
    span = info["time_span"]
    if span is not None:
        lines.append(f"time span         {_date(span['first'])} .. {_date(span['last'])} UTC "
                     f"({span['days']:,.0f} days)")
    lines.append("rating histogram")
    total = max(info["ratings"], 1)
    width = max((len(label) for label, _ in info["histogram"]), default=1)
    for label, count in info["histogram"]:
        bar = "#" * int(round(40 * count / max(c for _, c in info["histogram"])))
        lines.append(f"  {label:>{width}}  {count:>12,}  {count / total:6.1%}  {bar}")
    return "\n".join(lines)
