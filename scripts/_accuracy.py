"""Helpers shared by the accuracy scripts: where MovieLens lives, the models compared,
markdown tables and a line naming the machine and date."""

from __future__ import annotations

import datetime as dt
import os
import platform
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: Folders searched for MovieLens copies, first hit wins: $RECSYS_DATA, shared/data next
#: to the checkout or one level further up (for git worktrees), ~/.cache/recsys.
#: MovieLens is never committed.
DATA_DIRS = [Path(p) for p in (os.environ.get("RECSYS_DATA"),) if p] + [
    ROOT.parent / "shared" / "data", ROOT.parent.parent / "shared" / "data",
    Path.home() / ".cache" / "recsys"]

#: Where each release keeps its ratings, relative to a data folder.
RATINGS_FILES = {
    "ml-100k": "ml-100k/u.data",
    "ml-1m": "ml-1m/ratings.dat",
    "ml-10m": "ml-10M100K/ratings.dat",
    "ml-20m": "ml-20m/ratings.csv",
    "ml-25m": "ml-25m/ratings.csv",
}


def find(name: str, data_dir: str | None = None) -> Path | None:
    """The ratings file of release ``name``, or None when it is not downloaded."""
    dirs = [Path(data_dir)] if data_dir else DATA_DIRS
    for folder in dirs:
        path = folder / RATINGS_FILES[name]
        if path.is_file():
            return path
    return None


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, {platform.system()}, Python {platform.python_version()}"


def stamp() -> str:
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return f"{now}; {machine()}"


def table(rows: list[dict], columns: list[tuple[str, str, str]]) -> str:
    """Markdown table: ``columns`` are (key, header, format) triples."""
    out = ["| " + " | ".join(h for _, h, _ in columns) + " |",
           "|" + "|".join("---" if f == "s" else "---:" for _, _, f in columns) + "|"]
    for row in rows:
        cells = []
        for key, _, fmt in columns:
            value = row.get(key)
            cells.append("" if value is None else (str(value) if fmt == "s" else
                                                   format(value, fmt)))
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


def models(quick: bool = False) -> dict:
    """The estimators compared: name -> factory. ``quick`` trims the slow reference runs."""
    from recsys.models.baselines import Biases, GlobalMean
    from recsys.models.funksvd import FunkSVD
    from recsys.models.params import REG_REFERENCE
    from recsys.models.svdpp import SVDpp

    one = {"n_jobs": 1}
    # the variants were tuned when the factor regularization was fixed at the reference
    tuned = {"reg": REG_REFERENCE, **one}
    return {
        "global mean": GlobalMean,
        "biases, damped means": lambda: Biases(method="damped"),
        "biases, SGD": lambda: Biases(method="sgd"),
        "FunkSVD, first defaults": lambda: FunkSVD(n_factors=100, n_epochs=40, lr=0.01,
                                                   reg=0.08, reg_bias=None, init_std=0.1,
                                                   lr_schedule="constant", **one),
        "FunkSVD sgd, constant-step defaults (lr 0.005, 85 epochs)": lambda: FunkSVD(
            n_factors=200, n_epochs=85, lr=0.005, lr_schedule="constant", reg_bias=0.01, **one),
        "FunkSVD sgd, previous defaults (no warm-up, 35 epochs, lr 0.03 x 0.94)":
            lambda: FunkSVD(warmup_epochs=0, n_epochs=35, lr_decay=0.94, **one),
        "FunkSVD sgd (tuned defaults)": lambda: FunkSVD(**one),
        "FunkSVD sgd, early stopping": lambda: FunkSVD(n_epochs=300, early_stopping=10,
                                                       **tuned),
        "SVDpp": lambda: SVDpp(n_epochs=50, init_std=0.02, reg_implicit=0.005,
                                       **one),
        "FunkSVD funk (Funk's settings)": lambda: FunkSVD(
            method="funk", n_factors=40, n_epochs=30 if quick else 120, lr=0.001, reg=0.015,
            reg_bias=0.015, init_std=0.1, lr_schedule="constant", **one),
        "FunkSVD gd, bold driver": lambda: FunkSVD(method="gd", lr=0.002, lr_schedule="bold",
                                                   n_epochs=100 if quick else 300, **tuned),
    }
