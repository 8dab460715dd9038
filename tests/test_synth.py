"""Synthetic data: seeded, distinct pairs, every user present, the requested shape."""

import numpy as np
import pytest

from recsys.data.synth import SynthSpec, generate


def _spec(**kw):
    base = dict(n_users=300, n_items=120, n_ratings=9_000, rank=3, noise=0.2, seed=1)
    base.update(kw)
    return SynthSpec(**base)


def test_same_seed_same_data_other_seed_other_data():
    a, _ = generate(_spec())
    b, _ = generate(_spec())
    c, _ = generate(_spec(seed=2))
    for name in ("users", "items", "values", "timestamps"):
        assert np.array_equal(getattr(a, name), getattr(b, name))
    assert not np.array_equal(a.items, c.items)


def test_pairs_distinct_every_user_and_no_user_above_half_the_items():
    r, _ = generate(_spec(user_skew=1.2))
    assert len(r) == 9_000
    keys = r.users.astype(np.int64) * r.n_items + r.items
    assert len(np.unique(keys)) == len(r)
    counts = np.bincount(r.users, minlength=300)
    assert counts.min() >= 1 and counts.max() <= 60
    assert r.n_users == 300 and r.items.max() < 120


def test_values_follow_the_true_model():
    r, truth = generate(_spec(scale="none", noise=0.1))
    u, i = r.users, r.items
    expected = (truth["mu"] + truth["user_bias"][u] + truth["item_bias"][i]
                + np.einsum("nk,nk->n", truth["U"][u], truth["V"][i]))
    np.testing.assert_allclose(truth["signal"], expected, rtol=1e-9, atol=1e-9)
    residual = r.values - expected
    assert abs(residual.std() - 0.1) < 0.01


@pytest.mark.parametrize("scale, grid", [("1-5", 1.0), ("half", 0.5)])
def test_scales(scale, grid):
    r, _ = generate(_spec(scale=scale))
    assert r.values.min() >= grid and r.values.max() <= 5
    assert np.all((r.values / grid) % 1 == 0)


def test_too_dense_is_refused():
    with pytest.raises(ValueError, match="do not fit"):
        generate(_spec(n_ratings=20_000))


@pytest.mark.parametrize("values, ids", [
    ([4.0, 0.5, -3.5, 5.0], [1, -22, 333, 10**15]),  # compiled formatter
    ([3.25, 1.0, 2.0, 4.5], [1, 2, 3, 4]),  # off the half-star grid: pandas
    ([3.0, 1.0, 2.0, 4.5], ["a", "b", "c", "d"]),  # text ids: pandas
])
def test_write_csv_round_trip(tmp_path, values, ids):
    from recsys.data.ratings import Ratings
    from recsys.data.readers import read_ratings
    from recsys.data.synth import write_csv

    r = Ratings.from_raw(np.array(ids), np.array([7, 8, 7, 9]),
                         np.array(values, dtype=np.float32), np.array([0, -5, 10**12, 3]))
    path = tmp_path / "r.csv"
    write_csv(r, path)
    back = read_ratings(path, scale=None)
    assert back.raw_users.tolist() == ids
    assert back.raw_items.tolist() == [7, 8, 7, 9]
    assert back.values.tolist() == values
    assert back.timestamps.tolist() == [0, -5, 10**12, 3]
    assert path.read_text().splitlines()[0] == "user,item,rating,timestamp"
