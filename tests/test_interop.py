"""LIBMF's text model format: what recsys writes predicts what the model predicts, in
LIBMF's own arithmetic and after importing it back; malformed files are a ModelError."""

import numpy as np
import pytest
from click.testing import CliRunner

from recsys.cli import main
from recsys.errors import ModelError
from recsys.models.funksvd import FunkSVD
from recsys.models.registry import load
from recsys.persist.libmf import read_libmf, write_libmf


@pytest.fixture(scope="module")
def model(small_ratings):
    return FunkSVD(n_factors=3, n_epochs=5, reg=0.05, seed=1).fit(small_ratings)


def _libmf_predict(path, u, i):
    """LIBMF's prediction from its text model: p_u·q_i, or b for an unknown row."""
    lines = path.read_text().splitlines()
    m, n, b = int(lines[1].split()[1]), int(lines[2].split()[1]), float(lines[4].split()[1])
    P = np.array([line.split()[2:] for line in lines[5:5 + m]], dtype=float)
    Q = np.array([line.split()[2:] for line in lines[5 + m:5 + m + n]], dtype=float)
    return np.where((u >= 0) & (i >= 0), np.einsum("nk,nk->n", P[u], Q[i]), b)


def test_libmf_arithmetic_on_the_written_model_gives_the_models_scores(tmp_path, model,
                                                                       small_ratings):
    path = tmp_path / "m.libmf"
    write_libmf(model.state_, path)
    assert path.read_text().startswith(f"f 0\nm {small_ratings.n_users}\n"
                                       f"n {small_ratings.n_items}\nk 5\n")
    u, i = small_ratings.users[:200].astype(np.int64), small_ratings.items[:200].astype(np.int64)
    f = model.state_.factors
    want = f.mu + f.user_bias[u] + f.item_bias[i] + np.einsum(
        "nk,nk->n", f.user_factors[u], f.item_factors[i])
    np.testing.assert_allclose(_libmf_predict(path, u, i), want, rtol=1e-5)
    ids = (tmp_path / "m.libmf.user-ids").read_text().split()
    assert ids == [str(x) for x in small_ratings.user_map.ids]


def test_import_gives_back_the_predictions(tmp_path, model, small_ratings):
    runner = CliRunner()
    model.save(tmp_path / "m.npz")
    assert runner.invoke(main, ["export", str(tmp_path / "m.npz"), "--format", "libmf", "-o",
                                str(tmp_path / "m.libmf")]).exit_code == 0
    result = runner.invoke(main, ["import", str(tmp_path / "m.libmf"), "-o",
                                  str(tmp_path / "back.npz"), "--scale", "1,5"])
    assert result.exit_code == 0, result.output
    back = load(tmp_path / "back.npz")
    users, items = small_ratings.raw_users[:300], small_ratings.raw_items[:300]
    np.testing.assert_allclose(back.predict(users, items), model.predict(users, items),
                               rtol=1e-5)
    assert back.predict([10 ** 9], [items[0]])[0] == pytest.approx(float(model.mu_), rel=1e-6)
    assert runner.invoke(main, ["export", str(tmp_path / "m.npz"), "--format", "npz", "-o",
                                str(tmp_path / "plain.npz")]).exit_code == 0
    plain = np.load(tmp_path / "plain.npz")
    np.testing.assert_array_equal(plain["user_factors"], model.user_factors_)


def test_a_hybrid_exports_what_it_predicts(tmp_path, small_ratings):
    from recsys.models.hybrid import HybridMF

    hybrid = HybridMF(n_factors=3, ranking_factors=2, reg=0.05, seed=1).fit(small_ratings)
    hybrid.save(tmp_path / "h.npz")
    runner = CliRunner()
    for fmt, out in (("libmf", "h.libmf"), ("npz", "plain.npz")):
        result = runner.invoke(main, ["export", str(tmp_path / "h.npz"), "--format", fmt,
                                      "-o", str(tmp_path / out)])
        assert result.exit_code == 0, result.output
    assert (tmp_path / "h.libmf").read_text().splitlines()[3] == "k 5"  # 3 + the biases
    u, i = small_ratings.users[:200].astype(np.int64), small_ratings.items[:200].astype(np.int64)
    lo, hi = hybrid.rating_scale_
    np.testing.assert_allclose(np.clip(_libmf_predict(tmp_path / "h.libmf", u, i), lo, hi),
                               hybrid.state_.predict(u, i), rtol=1e-5)
    plain = np.load(tmp_path / "plain.npz")
    assert int(plain["rating_factors"]) == 3 and plain["user_factors"].shape[1] == 5


@pytest.mark.parametrize("text, where", [
    ("x 0\n", "header"), ("f 0\nm 1\nn 1\nk 2\nb 3\np0 T 1\n", ":6:"),
    ("f 0\nm 1\nn 1\nk 2\nb 3\np0 T 1 2\nq0 T 1 nan\n", "non-finite"),
    ("f 0\nm 1\nn 1\nk 2\nb x\n", "not a LIBMF model"),
])
def test_malformed_libmf_models_are_model_errors(tmp_path, text, where):
    path = tmp_path / "bad.libmf"
    path.write_text(text)
    with pytest.raises(ModelError, match=where):
        read_libmf(path)
