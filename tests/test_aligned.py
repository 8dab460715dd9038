"""Factor matrices start on a cache line, and where they start never changes a model."""

import functools

import numpy as np
import pytest

from recsys import aligned
from recsys.data.synth import SynthSpec, generate
from recsys.models.funksvd import FunkSVD
from recsys.state import Factors
from recsys.training.backends.cpu import CpuBackend
from recsys.training.factors import initial_factors, normal_rows


@pytest.mark.parametrize("shape", [(0, 128), (1, 3), (7, 128), (100, 17), (5,)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32])
def test_empty_starts_on_a_line_with_the_shape_and_dtype_asked(shape, dtype):
    for _ in range(20):  # allocations land at different offsets
        a = aligned.empty(shape, dtype)
        assert aligned.is_aligned(a)
        assert a.size == 0 or a.ctypes.data % aligned.LINE == 0
        assert a.shape == shape and a.dtype == np.dtype(dtype)
        assert a.flags.c_contiguous and a.flags.writeable


@pytest.mark.parametrize("offset", [0, 16, 48])
def test_empty_starts_offset_bytes_past_a_line(offset):
    a = aligned.empty((5, 16), np.float32, offset)
    assert a.ctypes.data % aligned.LINE == offset and a.shape == (5, 16)


def test_copy_has_the_values_and_owns_them():
    rng = np.random.default_rng(0)
    source = rng.normal(size=(33, 16))
    same = aligned.copy(source)
    cast = aligned.copy(source, np.float32)
    assert aligned.is_aligned(same) and aligned.is_aligned(cast)
    np.testing.assert_array_equal(same, source)
    np.testing.assert_array_equal(cast, source.astype(np.float32))  # astype's rounding
    assert cast.dtype == np.float32
    same[0, 0] += 1.0
    assert same[0, 0] != source[0, 0]  # a copy, not a view of the source


def test_initial_factors_are_the_seeds_draws_on_aligned_rows():
    values = np.array([1.0, 5.0, 3.0])
    f = initial_factors(values, 10, 6, 128, 0.1, np.float32, np.random.default_rng(4))
    rng = np.random.default_rng(4)
    np.testing.assert_array_equal(f.user_factors,
                                  rng.normal(0.0, 0.1, (10, 128)).astype(np.float32))
    np.testing.assert_array_equal(f.item_factors,
                                  rng.normal(0.0, 0.1, (6, 128)).astype(np.float32))
    assert aligned.is_aligned(f.user_factors) and aligned.is_aligned(f.item_factors)
    copied = f.copy()
    assert aligned.is_aligned(copied.user_factors) and aligned.is_aligned(copied.item_factors)
    np.testing.assert_array_equal(copied.item_factors, f.item_factors)


@pytest.mark.parametrize("n_rows", [0, 1, 511, 512, 513, 2000])  # 512 x 128 = one chunk
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_normal_rows_are_the_generators_normal_draws_bit_for_bit(n_rows, dtype):
    for std in (0.005, 0.1, 0.0):
        drawn, reference = np.random.default_rng(9), np.random.default_rng(9)
        rows = normal_rows(drawn, std, (n_rows, 128), dtype)
        expected = reference.normal(0.0, std, (n_rows, 128)).astype(dtype)
        assert rows.tobytes() == expected.tobytes() and rows.shape == expected.shape
        assert aligned.is_aligned(rows) and rows.dtype == np.dtype(dtype)
        # the stream goes on where normal's leaves it: the next draws are the same
        np.testing.assert_array_equal(drawn.random(5), reference.random(5))


@pytest.fixture()
def kernel_rows(monkeypatch):
    """The offsets into a line of every P and Q the CPU backend's SGD epochs train."""
    seen = []
    epoch = CpuBackend.sgd_epoch

    def spy(self, grouped, shifts, cols, factors, *rest, **kw):
        seen.append((factors.user_factors.ctypes.data % aligned.LINE,
                     factors.item_factors.ctypes.data % aligned.LINE))
        return epoch(self, grouped, shifts, cols, factors, *rest, **kw)

    monkeypatch.setattr(CpuBackend, "sgd_epoch", spy)
    return seen


def test_every_epoch_of_a_default_fit_and_an_update_trains_aligned_rows(kernel_rows):
    ratings, _ = generate(SynthSpec(n_users=150, n_items=90, n_ratings=4_000, seed=2))
    old, new = ratings.subset(np.arange(3_500)), ratings.subset(np.arange(3_500, 4_000))
    model = FunkSVD(n_factors=32, n_jobs=1).fit(old)  # warm-up, reg auto's trials, final
    fit_epochs = len(kernel_rows)
    model.partial_fit(new, base=old, n_epochs=2)  # the grown factors of an update
    assert fit_epochs > model.n_epochs and len(kernel_rows) == fit_epochs + 2
    assert set(kernel_rows) == {(0, 0)}


def test_where_the_rows_start_changes_nothing_in_the_model(monkeypatch, small_ratings):
    on_a_line = FunkSVD(n_factors=32, n_jobs=2).fit(small_ratings)
    # 48 bytes into a line, as numpy's allocations often start
    monkeypatch.setattr(aligned, "empty", functools.partial(aligned.empty, offset=48))
    off = FunkSVD(n_factors=32, n_jobs=2).fit(small_ratings)
    assert off.user_factors_.ctypes.data % aligned.LINE == 48
    assert off.state_.digest() == on_a_line.state_.digest()


def test_factors_copy_keeps_the_biases_and_mean():
    f = Factors(np.float32(3.5), np.arange(3, dtype=np.float32), np.ones(2, np.float32),
                np.zeros((3, 16), np.float32), np.ones((2, 16), np.float32))
    c = f.copy()
    assert c.mu == f.mu
    np.testing.assert_array_equal(c.user_bias, f.user_bias)
    np.testing.assert_array_equal(c.item_bias, f.item_bias)
    assert c.user_bias is not f.user_bias and c.item_factors is not f.item_factors
