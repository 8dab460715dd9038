"""Property tests: parsers and the model loader fail only with their own error types,
models round-trip, predictions stay in the rating scale."""

import zipfile

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recsys.data.readers import read_pairs, read_ratings
from recsys.errors import DataError, ModelError
from recsys.models.funksvd import FunkSVD
from recsys.models.registry import load, save
from recsys.testing.fuzz import SEEDS, mutate, mutate_model

FAST = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])


@FAST
@given(st.binary(max_size=300))
def test_arbitrary_bytes_raise_only_data_error(tmp_path, data):
    path = tmp_path / "f.csv"
    path.write_bytes(data)
    for reader in (read_ratings, read_pairs):
        try:
            reader(path)
        except DataError:
            pass


@FAST
@given(st.sampled_from(SEEDS), st.integers(0, 2**32 - 1))
def test_mutated_rating_files_raise_only_data_error(tmp_path, seed_file, seed):
    path = tmp_path / "f.txt"
    path.write_bytes(mutate(seed_file, np.random.default_rng(seed)))
    try:
        ratings = read_ratings(path, duplicates="last")
    except DataError:
        return
    assert len(ratings) > 0
    assert np.isfinite(ratings.values).all()
    assert ratings.values.min() >= 0.5 and ratings.values.max() <= 5


ratings_frames = st.lists(
    st.tuples(st.integers(0, 30), st.integers(0, 20), st.sampled_from([1.0, 2.0, 3.5, 4.0, 5.0])),
    min_size=1, max_size=60,
).map(lambda rows: pd.DataFrame(rows, columns=["user", "item", "rating"])
      .drop_duplicates(["user", "item"]))


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ratings_frames, st.integers(1, 6), st.sampled_from(["float32", "float64"]),
       st.integers(0, 1000))
def test_any_model_round_trips_and_predicts_in_scale(tmp_path, frame, k, dtype, seed):
    model = FunkSVD(n_factors=k, n_epochs=3, lr=0.05, dtype=dtype, seed=seed).fit(frame)
    path = tmp_path / "m.npz"
    save(model, path)
    loaded = load(path)
    users = np.r_[frame["user"].to_numpy(), [999]]
    items = np.r_[frame["item"].to_numpy(), [999]]
    pred = loaded.predict(users, items)
    np.testing.assert_array_equal(pred, model.predict(users, items))
    assert pred.min() >= frame["rating"].min() and pred.max() <= frame["rating"].max()


@settings(max_examples=100, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.integers(0, 2**32 - 1))
def test_mutated_model_files_raise_only_model_error(tmp_path, small_model_bytes, seed):
    rng = np.random.default_rng(seed)
    path = tmp_path / "m.npz"
    path.write_bytes(mutate(small_model_bytes, rng))
    try:
        load(path)
    except ModelError:
        pass


@settings(max_examples=100, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.integers(0, 2**32 - 1))
def test_structured_model_mutations_raise_only_model_error(tmp_path, small_model_bytes, seed):
    path = tmp_path / "m.npz"
    path.write_bytes(mutate_model(small_model_bytes, np.random.default_rng(seed)))
    try:
        load(path)
    except ModelError:
        pass


def test_model_mutations_actually_reach_the_arrays(tmp_path, small_model_bytes):
    """Sanity check of the fuzzer: flipping a byte inside an array is caught by checksums."""
    path = tmp_path / "m.npz"
    path.write_bytes(small_model_bytes)
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("user_bias.npy")
    data = bytearray(small_model_bytes)
    data[info.header_offset + 30 + len(info.filename) + 130] ^= 0x01
    path.write_bytes(bytes(data))
    try:
        load(path)
    except ModelError as exc:
        assert "checksum" in str(exc) or "damaged" in str(exc)
    else:
        raise AssertionError("a flipped byte in an array went unnoticed")
