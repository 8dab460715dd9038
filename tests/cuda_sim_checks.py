"""The CUDA kernels and backends in numba's CUDA simulator.

Not collected with the rest of the suite (the simulator must be switched on before numba
starts): ``tests/test_cuda_sim.py`` runs this module in a subprocess with
``NUMBA_ENABLE_CUDASIM=1``. The simulator runs the blocks of a launch one after another,
so a launch of one-warp blocks is sequential and can be held to the CPU's reference
kernels. Sizes are tiny: the simulator takes milliseconds per rating.
"""

import os

import numpy as np
import pytest

from recsys.data.synth import SynthSpec, generate
from recsys.models.funksvd import FunkSVD
from recsys.state import Factors
from recsys.testing.contract import EstimatorContract

if os.environ.get("NUMBA_ENABLE_CUDASIM") != "1":
    pytest.skip("runs in numba's CUDA simulator (tests/test_cuda_sim.py starts it)",
                allow_module_level=True)

from recsys.kernels.cpu import sgd as cpu  # noqa: E402
from recsys.kernels.cuda import cuda  # noqa: E402  (numba.cuda, with the warp shuffles)
from recsys.kernels.cuda import sgd as gpu  # noqa: E402
from recsys.training.backends import get  # noqa: E402
from recsys.training.factors import GroupedRatings  # noqa: E402
from recsys.training.strata import BlockGrid, draw_order  # noqa: E402

FAST = dict(n_factors=4, n_epochs=2, lr=0.01, reg=0.05, init_std=0.1, seed=3)


def _problem(n=90, n_users=12, n_items=9, k=8, dtype=np.float32, seed=0):
    rng = np.random.default_rng(seed)
    users = rng.integers(0, n_users, n).astype(np.int32)
    items = rng.integers(0, n_items, n).astype(np.int32)
    values = rng.integers(1, 6, n).astype(np.float32)
    factors = Factors(dtype(values.mean()), rng.normal(0, 0.1, n_users).astype(dtype),
                      rng.normal(0, 0.1, n_items).astype(dtype),
                      rng.normal(0, 0.3, (n_users, k)).astype(dtype),
                      rng.normal(0, 0.3, (n_items, k)).astype(dtype))
    return users, items, values, factors


def _accumulators(factors, dtype):
    rng = np.random.default_rng(5)
    nu, ni = len(factors.user_bias), len(factors.item_bias)
    return tuple((1 + rng.random(n)).astype(dtype) for n in (nu, ni, nu, ni))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("adaptive", [False, True], ids=["sgd", "adagrad"])
def test_one_warp_epoch_is_the_reference_epoch_in_the_same_order(dtype, adaptive):
    # k=40: lanes 0-7 own two features, the others one; stride 7 is coprime to 90 ratings
    users, items, values, f = _problem(k=40, dtype=dtype)
    n, stride, offset = len(values), 7, 4
    acc = _accumulators(f, dtype)
    order = (np.arange(n) * stride + offset) % n
    lr, reg, reg_bias = dtype(0.02), dtype(0.05), dtype(0.01)
    ref = [a.copy() for a in (*f.arrays(), *acc)]
    if adaptive:
        ref_sse = cpu.adagrad_epoch(users[order], items[order], values[order], f.mu, *ref[:4],
                                    lr, reg, reg_bias, *ref[4:])
    else:
        ref_sse = cpu.sgd_epoch(users[order], items[order], values[order], f.mu, *ref[:4],
                                lr, reg, reg_bias)
    device = [cuda.to_device(a) for a in (*f.arrays(), *acc)]
    sse = cuda.to_device(np.zeros(1))
    gpu.hogwild_epoch[1, 32](users, items, values, stride, offset, f.mu, *device[:4], lr, reg,
                             reg_bias, adaptive, *device[4:], sse)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(sse.copy_to_host()[0], ref_sse, rtol=tol)
    for want, got in zip(ref if adaptive else ref[:4], device, strict=False):
        np.testing.assert_allclose(got.copy_to_host(), want, rtol=tol, atol=tol)


def test_a_strata_epoch_is_the_cpu_blocked_epoch():
    users, items, values, f = _problem(n=120)
    grid = BlockGrid.build(users, items, len(f.user_bias), len(f.item_bias), 3)
    grouped = GroupedRatings(*grid.group(users, items, values), 3)
    shifts, cols = draw_order(np.random.default_rng(1), 3)
    lr, reg, reg_bias = np.float32(0.02), np.float32(0.05), np.float32(0.01)
    on_cpu = Factors(f.mu, *(a.copy() for a in f.arrays()))
    want = get("cpu").sgd_epoch(grouped, shifts, cols, on_cpu, lr, reg, reg_bias,
                                np.zeros(9), None)
    backend = get("cuda-strata")
    got = backend.sgd_epoch(grouped, shifts, cols, f, lr, reg, reg_bias, np.zeros(9), None)
    np.testing.assert_allclose(got, want, rtol=1e-5)
    before = f.user_factors.copy()
    backend.to_host(f.arrays())
    assert not np.array_equal(before, f.user_factors)  # trained on the device until now
    for a, b in zip(f.arrays(), on_cpu.arrays(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_validation_rmse_on_the_device_is_the_hosts_with_unknown_ids():
    users, items, values, f = _problem(n=40)
    users[3], items[5], users[7], items[7] = -1, -1, -1, -1
    backend = get("cuda")
    got = backend.rmse(f, users, items, values, 1.0, 5.0)
    assert got == pytest.approx(f.rmse(users, items, values, 1.0, 5.0), rel=1e-6)


def test_snapshots_are_device_copies_and_restore():
    users, items, values, f = _problem(n=30)
    backend = get("cuda")
    saved = backend.snapshot(f.arrays())
    start = [a.copy() for a in f.arrays()]
    grouped = GroupedRatings(users, items, values, np.array([0, len(values)]), 1)
    order = draw_order(np.random.default_rng(0), 1)
    backend.sgd_epoch(grouped, *order, f, np.float32(0.05), np.float32(0.0), np.float32(0.0),
                      np.zeros(1))
    backend.restore(f.arrays(), saved)
    backend.to_host(f.arrays())
    for a, b in zip(f.arrays(), start, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("params", [
    {"early_stopping": 1, "n_epochs": 3},
    {"lr_schedule": "bold"},
    {"lr_schedule": "adagrad", "lr": 0.05},
], ids=["early-stopping", "bold", "adagrad"])
def test_strata_on_the_device_trains_the_cpu_model(params):
    """Validation RMSE, snapshots, restores, the host-side loss and the accumulators."""
    ratings, _ = generate(SynthSpec(n_users=20, n_items=20, n_ratings=100, rank=2,
                                    noise=0.3, seed=4))
    settings = {**FAST, **params}
    on_cpu = FunkSVD(**settings).fit(ratings)
    on_gpu = FunkSVD(**settings, device="cuda-strata").fit(ratings)
    assert on_gpu.best_epoch_ == on_cpu.best_epoch_
    for a, b in zip(on_gpu.history_, on_cpu.history_, strict=True):
        assert a["train_rmse"] == pytest.approx(b["train_rmse"], rel=1e-5)
        if b["valid_rmse"] is not None:
            assert a["valid_rmse"] == pytest.approx(b["valid_rmse"], rel=1e-5)
    for a, b in zip((on_gpu.user_factors_, on_gpu.item_bias_),
                    (on_cpu.user_factors_, on_cpu.item_bias_), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


class TestFunkSVDOnTheGPU(EstimatorContract):
    """The contract, Hogwild in the simulator (sequential there, so exact in practice)."""

    exact = False
    tolerance = 1e-4

    @pytest.fixture(scope="class")
    @staticmethod
    def ratings():
        ratings, _ = generate(SynthSpec(n_users=20, n_items=30, n_ratings=140, rank=2,
                                        noise=0.3, seed=11))
        return ratings

    def make(self, **params):
        return FunkSVD(**{**FAST, "device": "cuda", **params})

    def test_trained_on_the_device(self, fitted):
        assert fitted.device == "cuda" and fitted.history_[-1]["train_rmse"] < 2
