"""Shared fixtures: small generated data, and the MovieLens 100k copy when it is there."""

import os
from pathlib import Path

import numpy as np
import pytest

from recsys.data.ratings import Ratings
from recsys.data.synth import SynthSpec, generate

ROOT = Path(__file__).resolve().parents[1]
ML100K = Path(os.environ.get("RECSYS_ML100K", ROOT.parent / "shared" / "data" / "ml-100k"))


@pytest.fixture(scope="session")
def ml100k() -> Path:
    if not (ML100K / "u.data").is_file():
        pytest.skip(f"MovieLens 100k not found at {ML100K} (it is never committed; "
                    "get it with `recsys download ml-100k`)")
    return ML100K


@pytest.fixture(scope="session")
def small_ratings() -> Ratings:
    """2,000 ratings of 100 users on 80 items, rank 4 plus noise, 1-5 scale."""
    ratings, _ = generate(SynthSpec(n_users=100, n_items=80, n_ratings=2_000, rank=4,
                                    noise=0.3, seed=7))
    return ratings


@pytest.fixture()
def write(tmp_path):
    """write(name, text or bytes) -> path of a new file in a temporary folder."""

    def _write(name: str, content, encoding="utf-8") -> Path:
        path = tmp_path / name
        if isinstance(content, str):
            content = content.encode(encoding)
        path.write_bytes(content)
        return path

    return _write


def tiny_problem(seed=0, n_users=6, n_items=5, n_ratings=14, k=3, dtype=np.float64):
    """A small random biased-MF problem: arrays for the kernels."""
    rng = np.random.default_rng(seed)
    keys = rng.choice(n_users * n_items, n_ratings, replace=False)
    users = (keys // n_items).astype(np.int32)
    items = (keys % n_items).astype(np.int32)
    values = rng.integers(1, 6, n_ratings).astype(np.float32)
    params = {
        "mu": dtype(values.mean()),
        "bu": rng.normal(0, 0.3, n_users).astype(dtype),
        "bi": rng.normal(0, 0.3, n_items).astype(dtype),
        "P": rng.normal(0, 0.5, (n_users, k)).astype(dtype),
        "Q": rng.normal(0, 0.5, (n_items, k)).astype(dtype),
    }
    return users, items, values, params


@pytest.fixture(scope="session")
def small_model_bytes(tmp_path_factory, small_ratings) -> bytes:
    from recsys.models.funksvd import FunkSVD
    from recsys.models.registry import save

    path = tmp_path_factory.mktemp("model") / "m.npz"
    save(FunkSVD(n_factors=3, n_epochs=2).fit(small_ratings), path)
    return path.read_bytes()


def centered_difference(loss, param: np.ndarray, h: float = 1e-6) -> np.ndarray:
    """∂loss/∂param by (loss(x + h) − loss(x − h)) / 2h, one entry at a time (float64)."""
    numeric = np.zeros_like(param)
    for idx in np.ndindex(param.shape):
        saved = param[idx]
        param[idx] = saved + h
        up = loss()
        param[idx] = saved - h
        down = loss()
        param[idx] = saved
        numeric[idx] = (up - down) / (2 * h)
    return numeric


def assert_gradient_close(analytic, numeric, name: str, tol: float = 1e-6) -> None:
    assert np.any(analytic != 0), f"{name}: the analytic gradient is all zero"
    rel = np.abs(analytic - numeric) / np.maximum(np.abs(numeric), 1e-3)
    assert rel.max() < tol, f"{name}: max relative error {rel.max():.2e}"


@pytest.fixture(scope="session")
def service_model_file(tmp_path_factory, small_ratings):
    """A small FunkSVD model file for the service's tests (read, never written)."""
    from recsys import FunkSVD
    from recsys.models.registry import save

    path = tmp_path_factory.mktemp("service") / "model.npz"
    save(FunkSVD(n_factors=8, n_epochs=30, seed=1).fit(small_ratings), path)
    return path
