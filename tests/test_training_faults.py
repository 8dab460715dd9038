"""Training that cannot finish: interruption, memory guard, reproducibility."""

import numpy as np
import pytest
from click.testing import CliRunner

import recsys.memory as memory
from recsys.cli import main
from recsys.data.synth import write_csv
from recsys.errors import ResourceError
from recsys.models.funksvd import FunkSVD
from recsys.models.registry import save


def _arrays(model):
    return [model.user_factors_, model.item_factors_, model.user_bias_, model.item_bias_]


def test_same_seed_gives_bit_identical_model(small_ratings):
    a = FunkSVD(n_factors=6, n_epochs=5, seed=11, n_jobs=1).fit(small_ratings)
    b = FunkSVD(n_factors=6, n_epochs=5, seed=11, n_jobs=1).fit(small_ratings)
    for x, y in zip(_arrays(a), _arrays(b)):
        assert x.tobytes() == y.tobytes()
    c = FunkSVD(n_factors=6, n_epochs=5, seed=12, n_jobs=1).fit(small_ratings)
    assert a.user_factors_.tobytes() != c.user_factors_.tobytes()


@pytest.mark.parametrize("grid", [None, 4])
def test_thread_count_does_not_change_the_model(small_ratings, grid):
    one = FunkSVD(n_factors=6, n_epochs=4, seed=5, n_jobs=1, grid=grid).fit(small_ratings)
    two = FunkSVD(n_factors=6, n_epochs=4, seed=5, n_jobs=2, grid=grid).fit(small_ratings)
    for x, y in zip(_arrays(one), _arrays(two)):
        assert x.tobytes() == y.tobytes()
    assert one.history_[-1]["train_rmse"] == two.history_[-1]["train_rmse"]


def test_memory_guard_stops_before_allocating(small_ratings, monkeypatch):
    monkeypatch.setattr(memory, "available_memory", lambda: 10_000)
    with pytest.raises(ResourceError, match=r"needs about .* only 9\.8 KiB"):
        FunkSVD(n_factors=50).fit(small_ratings)


def test_memory_guard_in_cli(tmp_path, small_ratings, monkeypatch):
    monkeypatch.setattr(memory, "available_memory", lambda: 1_000)
    data = tmp_path / "r.csv"
    write_csv(small_ratings, data)
    result = CliRunner().invoke(main, ["train", str(data), "-o", str(tmp_path / "m.npz")])
    assert result.exit_code == 2 and "memory" in result.stderr
    assert not (tmp_path / "m.npz").exists()


def test_ctrl_c_during_training_keeps_previous_model(tmp_path, small_ratings, monkeypatch):
    data = tmp_path / "r.csv"
    write_csv(small_ratings, data)
    model_path = tmp_path / "m.npz"
    save(FunkSVD(n_factors=2, n_epochs=1).fit(small_ratings), model_path)
    before = model_path.read_bytes()

    real_fit = FunkSVD.fit

    def interrupted_fit(self, *args, callback=None, **kwargs):
        def stop(info):
            if info.epoch == 2:
                raise KeyboardInterrupt
        return real_fit(self, *args, callback=stop, **kwargs)

    monkeypatch.setattr(FunkSVD, "fit", interrupted_fit)
    result = CliRunner().invoke(main, ["train", str(data), "-o", str(model_path)])
    assert result.exit_code == 130 and "interrupted" in result.stderr
    assert model_path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.npz", "r.csv"]


def test_training_restores_thread_count(small_ratings):
    import numba

    before = numba.get_num_threads()
    FunkSVD(n_factors=2, n_epochs=1, n_jobs=1).fit(small_ratings)
    assert numba.get_num_threads() == before


def test_history_reports_every_epoch(small_ratings):
    seen = []
    model = FunkSVD(n_factors=3, n_epochs=4).fit(small_ratings, callback=seen.append)
    assert [info.epoch for info in seen] == [1, 2, 3, 4]
    assert [h["train_rmse"] for h in model.history_] == [i.train_rmse for i in seen]
    assert all(np.isfinite(h["train_rmse"]) and h["seconds"] >= 0 for h in model.history_)
