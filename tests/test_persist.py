"""Saving and loading: exact round trips, and every kind of damaged model file."""

import io
import json
import os
import zipfile

import numpy as np
import pandas as pd
import pytest

from recsys.errors import ModelError
from recsys.models.funksvd import FunkSVD
from recsys.models.registry import load, save
from recsys.persist.modelfile import FORMAT_VERSION, read_manifest


@pytest.fixture(scope="module")
def fitted(small_ratings):
    model = FunkSVD(n_factors=5, n_epochs=4, seed=2).fit(small_ratings)
    model.state_.item_titles = {small_ratings.item_map.id_of(0): "Toy Story (1995)"}
    return model


@pytest.fixture()
def saved(tmp_path, fitted):
    path = tmp_path / "m.npz"
    save(fitted, path)
    return path


def test_round_trip_gives_identical_predictions(saved, fitted, small_ratings):
    loaded = load(saved)
    users, items = small_ratings.raw_users, small_ratings.raw_items
    np.testing.assert_array_equal(loaded.predict(users, items), fitted.predict(users, items))
    for name in ("user_factors_", "item_factors_", "user_bias_", "item_bias_"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(fitted, name))
    assert loaded.get_params() == fitted.get_params()
    assert fitted.reg == "auto" and fitted.reg_trials_  # 2,000 ratings: the search ran
    assert (loaded.reg_, loaded.reg_trials_) == (fitted.reg_, fitted.reg_trials_)
    assert loaded.history_ == fitted.history_
    assert loaded.rating_scale_ == fitted.rating_scale_
    user = small_ratings.user_map.id_of(1)
    np.testing.assert_array_equal(loaded.recommend(user)[0], fitted.recommend(user)[0])
    assert loaded.title_of(small_ratings.item_map.id_of(0)) == "Toy Story (1995)"


def test_text_ids_round_trip(tmp_path):
    frame = pd.DataFrame({"user": ["a", "b", "a"], "item": ["x", "y", "y"], "rating": [5, 3, 4.0]})
    model = FunkSVD(n_factors=2, n_epochs=2).fit(frame)
    save(model, tmp_path / "t.npz")
    loaded = load(tmp_path / "t.npz")
    assert loaded.predict(["a"], ["x"])[0] == model.predict(["a"], ["x"])[0]


def test_manifest_describes_the_model(saved, fitted):
    manifest = read_manifest(saved)
    assert manifest["format_version"] == 2  # nothing of format 3: recsys 0.2 reads it
    assert "rating_factors" not in manifest
    assert manifest["params"]["n_factors"] == 5
    assert manifest["training"]["ratings"] == fitted.train_summary_["ratings"]
    assert manifest["arrays"]["user_factors"]["shape"] == list(fitted.user_factors_.shape)


def test_save_is_atomic_and_leaves_no_temporary(tmp_path, fitted):
    path = tmp_path / "m.npz"
    path.write_bytes(b"previous model")
    save(fitted, path)
    assert load(path) is not None
    assert sorted(os.listdir(tmp_path)) == ["m.npz"]


def test_interrupted_save_keeps_previous_file(tmp_path, fitted, monkeypatch):
    path = tmp_path / "m.npz"
    save(fitted, path)
    before = path.read_bytes()

    def explode(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "save", explode)
    with pytest.raises(KeyboardInterrupt):
        save(fitted, path)
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["m.npz"]


def _rewrite(path, edit_manifest=None, replace=None):
    """Rewrite a saved model with an edited manifest or replaced array members."""
    with zipfile.ZipFile(path) as zf:
        members = {name: zf.read(name) for name in zf.namelist()}
    if edit_manifest:
        manifest = json.loads(members["manifest.json"])
        edit_manifest(manifest)
        members["manifest.json"] = json.dumps(manifest).encode()
    for name, array in (replace or {}).items():
        buf = io.BytesIO()
        np.save(buf, array)
        members[name] = buf.getvalue()
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)


def test_truncated_file(saved):
    data = saved.read_bytes()
    saved.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelError, match="not a zip|truncated|damaged"):
        load(saved)


def test_flipped_bytes_are_caught_by_checksums(saved, fitted):
    data = bytearray(saved.read_bytes())
    with zipfile.ZipFile(saved) as zf:
        info = zf.getinfo("item_factors.npy")
    # a byte well inside the array data (past the local header and the .npy header)
    offset = info.header_offset + 30 + len(info.filename) + 200
    data[offset] ^= 0xFF
    saved.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="checksum|damaged"):
        load(saved)


def test_file_of_another_kind(tmp_path):
    csv = tmp_path / "ratings.csv"
    csv.write_text("1,1,5\n")
    with pytest.raises(ModelError, match="not a recsys model"):
        load(csv)
    other = tmp_path / "other.npz"
    np.savez(other, a=np.arange(3))
    with pytest.raises(ModelError, match="not a recsys model"):
        load(other)


def test_newer_format_version_is_refused(saved):
    _rewrite(saved, edit_manifest=lambda m: m.update(format_version=FORMAT_VERSION + 1))
    with pytest.raises(ModelError, match="newer"):
        load(saved)


def test_files_from_before_reg_auto_use_their_numeric_reg(saved):
    def older(manifest):
        del manifest["reg"], manifest["reg_trials"]
        manifest["params"]["reg"] = 0.07

    _rewrite(saved, edit_manifest=older)
    loaded = load(saved)
    assert (loaded.reg, loaded.reg_, loaded.reg_trials_) == (0.07, 0.07, [])


@pytest.mark.parametrize("field, value", [
    ("reg", -1), ("reg", "auto"), ("reg", None), ("reg", True), ("reg", 1e400),
    ("reg", 10**400), ("reg_trials", [[0.1]]), ("reg_trials", "x"), ("reg_trials", [["a", 1]]),
    ("reg_trials", [[0.1, 10**400]]),
])
def test_bad_trained_reg_in_manifest(saved, field, value):
    _rewrite(saved, edit_manifest=lambda m: m.update({field: value}))
    with pytest.raises(ModelError, match="damaged model file"):
        load(saved)


def test_shapes_disagreeing_with_manifest(saved, fitted):
    bigger = np.zeros((fitted.user_factors_.shape[0] + 1, 5), dtype=np.float32)
    _rewrite(saved, replace={"user_factors.npy": bigger})
    with pytest.raises(ModelError, match="shape"):
        load(saved)


def test_arrays_disagreeing_with_each_other(saved, fitted):
    """Manifest and array agree, but the arrays do not fit together."""
    from recsys.persist.modelfile import _digest

    short = fitted.user_bias_[:-1].copy()

    def edit(m):
        m["arrays"]["user_bias"].update(shape=list(short.shape), sha256=_digest(short))

    _rewrite(saved, edit_manifest=edit, replace={"user_bias.npy": short})
    with pytest.raises(ModelError, match="disagree"):
        load(saved)


def test_pickled_arrays_are_never_loaded(saved):
    evil = np.array([{"x": 1}], dtype=object)
    _rewrite(saved, replace={"user_ids.npy": evil})
    with pytest.raises(ModelError):
        load(saved)


def test_missing_model_and_folder(tmp_path):
    with pytest.raises(ModelError, match="not found"):
        load(tmp_path / "none.npz")
    with pytest.raises(ModelError, match="folder"):
        load(tmp_path)


@pytest.mark.parametrize("offset,value", [(10, 99), (8, 0x1), (8, 0x20), (6, 148)],
                         ids=["compression-99", "encrypted", "patched-data", "version-14.8"])
def test_zip_headers_claiming_unsupported_features(saved, offset, value):
    """Found by fuzzing: zipfile raises NotImplementedError or RuntimeError for central
    directory entries that claim an unknown compression method, encryption, patched data
    or a newer zip version."""
    data = bytearray(saved.read_bytes())
    central = data.find(b"PK\x01\x02")  # the first central directory entry
    assert central > 0
    data[central + offset:central + offset + 2] = value.to_bytes(2, "little")
    saved.write_bytes(bytes(data))
    with pytest.raises(ModelError):
        load(saved)


def _as_format_1(manifest, method="sgd"):
    """What recsys wrote before model kinds and lineage: FunkSVD parameters only."""
    manifest["format_version"] = 1
    for key in ("model", "lineage", "best_epoch"):
        manifest.pop(key)
    manifest["params"].update(method=method, reg_implicit=0.005)
    if method == "svdpp":
        manifest["params"]["grid"] = None


def test_format_1_files_still_load(saved, fitted, small_ratings):
    _rewrite(saved, edit_manifest=_as_format_1)
    loaded = load(saved)
    assert type(loaded) is FunkSVD and loaded.get_params() == fitted.get_params()
    assert loaded.state_.lineage.data == [] and loaded.state_.lineage.version is None
    users, items = small_ratings.raw_users[:40], small_ratings.raw_items[:40]
    np.testing.assert_array_equal(loaded.predict(users, items), fitted.predict(users, items))


def test_format_1_svdpp_files_load_as_svdpp(tmp_path, small_ratings):
    from recsys.models.svdpp import SVDpp

    model = SVDpp(n_factors=3, n_epochs=2, reg=0.05).fit(small_ratings)
    path = tmp_path / "old.npz"
    save(model, path)
    _rewrite(path, edit_manifest=lambda m: _as_format_1(m, "svdpp"))
    loaded = load(path)
    assert type(loaded) is SVDpp and loaded.get_params() == model.get_params()
    with pytest.raises(ModelError, match="holds a SVDpp model"):
        FunkSVD.load(path)


def test_every_model_kind_round_trips_through_recsys_load(tmp_path, small_ratings):
    from recsys.models.baselines import Biases, GlobalMean

    for model in (Biases().fit(small_ratings), GlobalMean().fit(small_ratings)):
        path = tmp_path / f"{type(model).__name__}.npz"
        model.save(path)
        assert type(load(path)) is type(model)
        assert read_manifest(path)["model"] == type(model).__name__


def test_unknown_model_kind_is_refused(saved):
    _rewrite(saved, edit_manifest=lambda m: m.update(model="DeepThing"))
    with pytest.raises(ModelError, match="unknown kind 'DeepThing'"):
        load(saved)


def test_lineage_records_the_training_data_and_version(saved, fitted, small_ratings):
    from recsys.version import __version__

    lineage = read_manifest(saved)["lineage"]
    assert lineage["parent"] is None and lineage["version"] == __version__
    (data,) = lineage["data"]
    assert data["sha256"] == small_ratings.digest() and data["ratings"] == len(small_ratings)
    assert load(saved).state_.lineage == fitted.state_.lineage


def test_data_digest_tells_data_sets_apart(small_ratings):
    same = small_ratings.subset(np.arange(len(small_ratings)))
    assert same.digest() == small_ratings.digest()
    changed = small_ratings.subset(np.arange(len(small_ratings)))
    changed.values = changed.values.copy()
    changed.values[0] += 0.5
    assert changed.digest() != small_ratings.digest()
    assert small_ratings.subset(np.arange(1, len(small_ratings))).digest() != \
        small_ratings.digest()


@pytest.mark.parametrize("name, bad", [
    ("user_ids", np.arange(100, dtype=np.float64)),
    ("seen_indptr", None),  # int32 in place of int64
    ("user_bias", None),  # float64 beside float32 factors
])
def test_arrays_of_the_wrong_dtype_are_a_damaged_file(saved, fitted, name, bad):
    if bad is None:
        source = fitted.seen_[0] if name == "seen_indptr" else fitted.user_bias_
        bad = source.astype(np.int32 if name == "seen_indptr" else np.float64)

    def edit(manifest):
        manifest["arrays"][name].update(dtype=bad.dtype.str, sha256=_digest(bad))

    from recsys.persist.modelfile import _digest

    _rewrite(saved, edit_manifest=edit, replace={f"{name}.npy": bad})
    with pytest.raises(ModelError, match="damaged model file"):
        load(saved)


@pytest.fixture(scope="module")
def hybrid(small_ratings):
    from recsys.models.hybrid import HybridMF

    return HybridMF(n_factors=4, ranking_factors=3, reg=0.05, seed=1).fit(small_ratings)


def test_a_model_predicting_from_leading_columns_writes_format_3(tmp_path, hybrid,
                                                                 small_ratings):
    path = tmp_path / "h.npz"
    save(hybrid, path)
    manifest = read_manifest(path)
    assert manifest["format_version"] == FORMAT_VERSION == 3
    assert manifest["rating_factors"] == 4
    loaded = load(path)
    assert loaded.state_.rating_factors == 4
    users, items = small_ratings.raw_users, small_ratings.raw_items
    np.testing.assert_array_equal(loaded.predict(users, items), hybrid.predict(users, items))
    assert loaded.state_.digest() == hybrid.state_.digest()


@pytest.mark.parametrize("value, message", [(5.5, "bad rating_factors"),
                                            (True, "bad rating_factors"),
                                            ("4", "bad rating_factors"),
                                            (8, "rating_factors is not"),
                                            (-1, "rating_factors is not")])
def test_a_bad_rating_factors_is_a_damaged_file(tmp_path, hybrid, value, message):
    path = tmp_path / "h.npz"
    save(hybrid, path)
    _rewrite(path, edit_manifest=lambda m: m.update(rating_factors=value))
    with pytest.raises(ModelError, match=f"damaged.*{message}"):
        load(path)


def test_format_2_files_predict_from_every_column(tmp_path, hybrid, small_ratings):
    """A hybrid written by recsys 0.2 (format 2) scored its one set of scores everywhere:
    a rating_factors in such a file is not read."""
    path = tmp_path / "h.npz"
    save(hybrid, path)
    _rewrite(path, edit_manifest=lambda m: m.update(format_version=2))
    loaded = load(path)
    assert loaded.state_.rating_factors is None
    f = hybrid.state_.factors
    users, items = small_ratings.users[:20], small_ratings.items[:20]
    everything = np.clip(f.mu + f.user_bias[users] + f.item_bias[items]
                         + np.einsum("nk,nk->n", f.user_factors[users], f.item_factors[items]),
                         *hybrid.rating_scale_)
    got = loaded.predict(small_ratings.raw_users[:20], small_ratings.raw_items[:20])
    np.testing.assert_allclose(got, everything, rtol=1e-5)
    assert not np.allclose(got, hybrid.predict(small_ratings.raw_users[:20],
                                               small_ratings.raw_items[:20]), rtol=1e-3)
