"""The memory guard: a fit's estimate (what ``fit`` checks before it starts) is at least
the peak RSS the fit adds, measured by the kernel's counters in a fresh process, and not
far above it; and the fit refuses before it allocates anything when the estimate does
not fit."""

import json
import os
import pathlib
import subprocess
import sys

import pytest

import recsys.memory as memory
from recsys.errors import ResourceError
from recsys.models.funksvd import FunkSVD
from recsys.models.ranking import RankingMF
from recsys.models.svdpp import SVDpp
from recsys.training.resources import training_bytes

ROOT = pathlib.Path(__file__).resolve().parents[1]
CAN_MEASURE = os.access("/proc/self/clear_refs", os.W_OK) and sys.platform == "linux"


def _measure(name: str, params: dict, shape=(943, 1_682, 100_000)) -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    out = subprocess.run([sys.executable, "-m", "recsys.testing.memprobe", name,
                          json.dumps(params), *map(str, shape)], capture_output=True,
                         text=True, check=True, env=env, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not CAN_MEASURE, reason="needs Linux /proc/self/clear_refs")
@pytest.mark.parametrize("name, params", [
    ("FunkSVD", {"reg": "auto", "early_stopping": 2}),
    ("SVDpp", {"reg": 0.05}),
    ("RankingMF", {}),
], ids=["sgd-auto-early-stop", "svdpp", "ranking"])
def test_estimate_covers_the_measured_peak(name, params):
    row = _measure(name, {"n_factors": 32, "n_epochs": 2, "seed": 1, **params})
    mib = 2**20
    assert row["estimate"] >= row["measured"], (row["estimate"] / mib, row["measured"] / mib)
    assert row["estimate"] <= 2 * row["measured"] + mib, (row["estimate"] / mib,
                                                          row["measured"] / mib)


def test_fit_refuses_before_the_search_starts(small_ratings, monkeypatch):
    model = FunkSVD(n_factors=8, n_epochs=2, reg="auto")
    needed = model.memory_estimate(small_ratings)
    trials = []
    monkeypatch.setattr(memory, "available_memory", lambda: needed - 1)
    with pytest.raises(ResourceError, match="fitting 2,000 ratings with 8 factors needs"):
        model.fit(small_ratings, reg_callback=lambda reg, err: trials.append(reg))
    assert trials == []
    monkeypatch.setattr(memory, "available_memory", lambda: needed)
    model.fit(small_ratings, reg_callback=lambda reg, err: trials.append(reg))
    assert trials


@pytest.mark.parametrize("model", [SVDpp(n_factors=8, n_epochs=1, reg=0.05),
                                   RankingMF(n_factors=8, n_epochs=1)],
                         ids=["svdpp", "ranking"])
def test_every_objective_checks_its_estimate(small_ratings, monkeypatch, model):
    monkeypatch.setattr(memory, "available_memory",
                        lambda: model.memory_estimate(small_ratings) - 1)
    with pytest.raises(ResourceError, match="needs about"):
        model.fit(small_ratings)


def test_the_estimate_grows_with_what_the_fit_holds(small_ratings):
    fixed = FunkSVD(n_factors=8, reg=0.05).memory_estimate(small_ratings)
    assert FunkSVD(n_factors=8, reg="auto").memory_estimate(small_ratings) > fixed
    assert FunkSVD(n_factors=8, reg=0.05, early_stopping=2).memory_estimate(
        small_ratings) > fixed
    assert FunkSVD(n_factors=64, reg=0.05).memory_estimate(small_ratings) > fixed
    assert SVDpp(n_factors=8, reg=0.05).memory_estimate(small_ratings) > fixed
    sgd = training_bytes(10**6, 6_000, 4_000, 32, 4)
    assert training_bytes(10**6, 6_000, 4_000, 32, 4, "ials") > sgd + 60 * 10**6
    assert training_bytes(10**6, 6_000, 4_000, 32, 8) > sgd
