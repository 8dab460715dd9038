"""Warm starts and updates: id maps only grow, a warm start with no epochs changes nothing,
an update reaches new users and items, follows the duplicates policy, is reproducible and
records its lineage."""

import numpy as np
import pytest
from click.testing import CliRunner

from recsys.cli import main
from recsys.data.ratings import IdMap, Ratings
from recsys.data.split import holdout, temporal
from recsys.data.synth import SynthSpec, generate, write_csv
from recsys.errors import DataError
from recsys.models.funksvd import FunkSVD
from recsys.models.registry import load
from recsys.models.svdpp import SVDpp

PARAMS = dict(n_factors=6, n_epochs=20, lr=0.01, reg=0.05, init_std=0.1, seed=3,
              lr_schedule="constant")


@pytest.fixture(scope="module")
def data():
    ratings, _ = generate(SynthSpec(n_users=200, n_items=120, n_ratings=6_000, rank=3,
                                    noise=0.3, seed=8))
    old, new = temporal(ratings, fraction=0.15)
    return ratings, old.compact(), new.compact()


def test_maps_grow_and_keep_the_known_indices():
    base = IdMap(np.array([10, 20, 30]))
    grown, idx = base.extended(np.array([30, 40, 10, 50, 40]))
    assert grown.ids.tolist() == [10, 20, 30, 40, 50]
    assert idx.tolist() == [2, 3, 0, 4, 3]
    r = Ratings.from_raw([40, 10], [1, 2], [4.0, 5.0])
    moved = r.onto(grown, IdMap(np.array([2, 1])))
    assert moved.raw_users.tolist() == [40, 10] and moved.users.tolist() == [3, 0]
    assert moved.items.tolist() == [1, 0]


def test_warm_start_without_epochs_changes_no_prediction(data):
    ratings, old, _ = data
    parent = FunkSVD(**PARAMS).fit(old)
    child = FunkSVD(**{**PARAMS, "n_epochs": 0}).fit(old, init=parent)
    np.testing.assert_array_equal(child.predict(old.raw_users, old.raw_items),
                                  parent.predict(old.raw_users, old.raw_items))
    assert child.state_.lineage.parent == parent.state_.digest()


def test_warm_start_continues_the_learning_curve(data):
    ratings, _, _ = data
    train, valid = holdout(ratings, 0.1, seed=1)
    long = FunkSVD(**{**PARAMS, "n_epochs": 30}).fit(train, validation=valid)
    first = FunkSVD(**{**PARAMS, "n_epochs": 15}).fit(train, validation=valid)
    rest = FunkSVD(**{**PARAMS, "n_epochs": 15}).fit(train, validation=valid, init=first)
    curve = [h["valid_rmse"] for h in long.history_]
    continued = [h["valid_rmse"] for h in first.history_ + rest.history_]
    # the continued curve follows the long fit's (the visiting order differs, nothing else)
    np.testing.assert_allclose(continued, curve, rtol=0.01)
    # it starts where the parent stopped, not where a fresh fit starts
    assert rest.history_[0]["valid_rmse"] < 1.01 * first.history_[-1]["valid_rmse"]
    assert rest.history_[0]["valid_rmse"] < first.history_[0]["valid_rmse"] - 0.05


def test_warm_start_refuses_models_it_cannot_continue(data, tmp_path):
    _, old, _ = data
    parent = FunkSVD(**PARAMS).fit(old)
    with pytest.raises(ValueError, match="n_factors=6"):
        FunkSVD(**{**PARAMS, "n_factors": 7}).fit(old, init=parent)
    with pytest.raises(ValueError, match="continues a SVDpp"):
        SVDpp(n_factors=6, reg=0.05).fit(old, init=parent)
    with pytest.raises(ValueError, match="one feature at a time"):
        FunkSVD(**{**PARAMS, "method": "funk"}).fit(old, init=parent)


def test_update_reaches_new_users_and_items_and_nearly_matches_a_retrain(data):
    ratings, old, new = data
    train, test = holdout(ratings, 0.1, seed=2)
    old_part = train.subset(np.isin(np.arange(len(train)), np.flatnonzero(
        train.timestamps < np.quantile(train.timestamps, 0.85)))).compact()
    new_part = train.subset(train.timestamps >= np.quantile(train.timestamps, 0.85)).compact()
    model = FunkSVD(**PARAMS).fit(old_part)
    fresh_users = set(new_part.raw_users.tolist()) - set(old_part.raw_users.tolist())
    model.partial_fit(new_part, base=old_part)
    full = FunkSVD(**PARAMS).fit(train)

    def rmse(m):
        pred = m.predict(test.raw_users, test.raw_items).astype(np.float64)
        return float(np.sqrt(np.mean((pred - test.values) ** 2)))

    assert rmse(model) < 1.02 * rmse(full)
    for user in list(fresh_users)[:5]:
        assert model.user_map_.index_of(user) >= 0
        items, _ = model.recommend(user, n=5)
        assert len(items) == 5
        rated = set(new_part.raw_items[new_part.raw_users == user].tolist())
        assert not rated & set(items.tolist())  # their new ratings are seen items now


def test_a_warm_start_under_decay_goes_on_with_the_parent_schedule(data):
    ratings, _, _ = data
    train, valid = holdout(ratings, 0.1, seed=1)
    params = {**PARAMS, "lr_schedule": "decay", "lr": 0.04, "lr_decay": 0.9}
    long = FunkSVD(**{**params, "n_epochs": 30}).fit(train, validation=valid)
    first = FunkSVD(**{**params, "n_epochs": 15}).fit(train, validation=valid)
    rest = FunkSVD(**{**params, "n_epochs": 15}).fit(train, validation=valid, init=first)
    rates = [h["lr"] for h in first.history_ + rest.history_]
    np.testing.assert_allclose(rates, [h["lr"] for h in long.history_], rtol=1e-6)
    continued = [h["valid_rmse"] for h in first.history_ + rest.history_]
    np.testing.assert_allclose(continued, [h["valid_rmse"] for h in long.history_], rtol=0.01)


def test_an_update_of_a_decaying_fit_continues_at_the_rate_the_fit_ended_with(data):
    ratings, old, new = data
    params = {**PARAMS, "lr_schedule": "decay", "lr": 0.04, "lr_decay": 0.9}
    model = FunkSVD(**params).fit(old)
    ended = 0.04 * 0.9 ** (19 - 3)  # 20 epochs, the first 3 the AdaGrad warm-up
    assert model.history_[-1]["lr"] == pytest.approx(ended, rel=1e-6)
    before = model.predict(new.raw_users, new.raw_items)
    model.partial_fit(new, base=old, n_epochs=3)
    rates = [h["lr"] for h in model.history_]
    assert rates == pytest.approx([ended] * 3, rel=1e-6)  # not 0.04 again
    assert not any(h["adaptive"] for h in model.history_)  # and no warm-up again
    model.partial_fit(new, base=old, n_epochs=2)  # an update of an update: the same rate
    assert [h["lr"] for h in model.history_] == pytest.approx([ended] * 2, rel=1e-6)

    def rmse(m, r):
        pred = m.predict(r.raw_users, r.raw_items).astype(np.float64)
        return float(np.sqrt(np.mean((pred - r.values) ** 2)))

    # the update learns the new ratings without shaking what the old ones taught
    assert rmse(model, new) < float(np.sqrt(np.mean((before - new.values) ** 2)))


def test_update_is_reproducible_and_records_its_lineage(data):
    _, old, new = data
    parent = FunkSVD(**PARAMS).fit(old)
    a = FunkSVD(**PARAMS).fit(old).partial_fit(new, base=old, n_epochs=3)
    b = FunkSVD(**{**PARAMS, "n_jobs": 1}).fit(old).partial_fit(new, base=old, n_epochs=3)
    np.testing.assert_array_equal(a.user_factors_, b.user_factors_)
    np.testing.assert_array_equal(a.item_bias_, b.item_bias_)
    lineage = a.state_.lineage
    assert lineage.parent == parent.state_.digest()
    assert [e.get("update", False) for e in lineage.data] == [False, True]
    assert lineage.data[1]["sha256"] == new.digest()
    assert lineage.data[1]["base"] == old.digest()
    assert a.train_summary_["ratings"] == len(old) + len(new)


def test_a_repeated_pair_follows_the_duplicates_policy(data):
    _, old, _ = data
    again = old.subset(np.arange(3))
    again.values = np.full(3, 1.0, dtype=np.float32)
    model = FunkSVD(**PARAMS).fit(old)
    with pytest.raises(DataError, match="repeats one the model was trained on"):
        FunkSVD(**PARAMS).fit(old).partial_fit(again, base=old)
    with pytest.raises(DataError, match="repeats one the model was trained on"):
        FunkSVD(**PARAMS).fit(old).partial_fit(again)  # found through the seen items
    kept = model.partial_fit(again, base=old, duplicates="last", n_epochs=1)
    assert kept.train_summary_["ratings"] == len(old)  # the re-ratings replaced the old ones


def test_cli_update_and_info(tmp_path, data):
    _, old, new = data
    write_csv(old, tmp_path / "old.csv")
    write_csv(new, tmp_path / "new.csv")
    run = CliRunner().invoke
    assert run(main, ["train", str(tmp_path / "old.csv"), "-o", str(tmp_path / "m.npz"), "-k",
                      "6", "-t", "5", "--reg", "0.05", "-q"]).exit_code == 0
    result = run(main, ["update", str(tmp_path / "m.npz"), str(tmp_path / "new.csv"),
                        "--base", str(tmp_path / "old.csv"), "-o", str(tmp_path / "u.npz"),
                        "-t", "2"])
    assert result.exit_code == 0, result.output
    assert "new users" in result.output
    result = run(main, ["info", str(tmp_path / "u.npz")])
    assert result.exit_code == 0, result.output
    assert "parent" in result.output and f"update {len(new):,} ratings" in result.output
    updated = load(tmp_path / "u.npz")
    assert len(updated.state_.lineage.data) == 2
    result = run(main, ["update", str(tmp_path / "m.npz"), str(tmp_path / "new.csv"), "-o",
                        str(tmp_path / "m.npz")])
    assert result.exit_code == 2 and "is also an input" in result.output


@pytest.mark.movielens
def test_movielens_update_with_the_latest_tenth_is_within_0_003_of_a_retrain(ml100k):
    from recsys.data.readers import read_ratings

    u1, test = read_ratings(ml100k / "u1.base"), read_ratings(ml100k / "u1.test")
    old, new = temporal(u1, fraction=0.1)
    old, new = old.compact(), new.compact()

    def rmse(m):
        pred = m.predict(test.raw_users, test.raw_items).astype(np.float64)
        return float(np.sqrt(np.mean((pred - test.values) ** 2)))

    updated = FunkSVD().fit(old).partial_fit(new, base=old)
    assert rmse(updated) - rmse(FunkSVD().fit(u1)) < 0.003


def test_seen_with_is_the_union_of_both_indexes():
    from recsys.kernels.cpu.predict import seen_csr
    from recsys.models.continuation import seen_with

    rng = np.random.default_rng(0)
    n_users, n_items = 30, 40
    old_u, old_i = rng.integers(0, 20, 300), rng.integers(0, 25, 300)  # the parent's maps
    keys = np.unique(old_u * n_items + old_i)
    seen = seen_csr((keys // n_items).astype(np.int32), (keys % n_items).astype(np.int32), 20)
    new_u, new_i = rng.integers(0, n_users, 200), rng.integers(0, n_items, 200)  # repeats too
    fresh = Ratings(new_u, new_i, np.full(200, 3.0), IdMap(np.arange(n_users)),
                    IdMap(np.arange(n_items)))
    indptr, indices = seen_with(seen, fresh, "last", None)
    got = {(u, int(i)) for u in range(n_users) for i in indices[indptr[u]:indptr[u + 1]]}
    want = set(zip(old_u.tolist(), old_i.tolist())) | set(zip(new_u.tolist(), new_i.tolist()))
    assert got == want and len(indices) == len(want)
    with pytest.raises(DataError, match="repeats one the model was trained on"):
        seen_with(seen, fresh, "error", None)
