"""The data commands end to end: info, split, synth, datasets, download, registry names."""

import re

import numpy as np
import pytest
from click.testing import CliRunner

from recsys.cli import main
from recsys.data.info import summarize
from recsys.data.readers import read_ratings
from recsys.data.synth import SynthSpec, generate


def _run(*args, env=None):
    return CliRunner().invoke(main, [str(a) for a in args], env=env)


def test_info_ml100k(ml100k):
    result = _run("info", ml100k / "u.data")
    assert result.exit_code == 0, result.output
    out = result.output
    assert re.search(r"users\s+943\n", out)
    assert re.search(r"items\s+1,682\n", out)
    assert re.search(r"ratings\s+100,000\n", out)
    assert re.search(r"density\s+6\.3047%", out)
    assert "ratings per user  min 20  median 65  max 737" in out
    assert "ratings per item  min 1  median 27  max 583" in out
    assert "1997-09-20" in out and "1998-04-22" in out
    assert re.search(r"4\s+34,174\s+34\.2%", out)


def test_summarize_numbers(write):
    path = write("r.csv", "1,1,4,0\n1,2,2,86400\n2,1,4,172800\n3,3,5,86400\n")
    s = summarize(read_ratings(path))
    assert (s["users"], s["items"], s["ratings"]) == (3, 3, 4)
    assert s["density"] == pytest.approx(4 / 9)
    assert s["histogram"] == [("2", 1), ("4", 2), ("5", 1)]
    assert s["ratings_per_user"] == {"min": 1, "median": 1.0, "max": 2}
    assert s["ratings_per_item"] == {"min": 1, "median": 1.0, "max": 2}
    assert s["time_span"] == {"first": 0, "last": 172800, "days": 2.0}


def test_info_of_registry_name_not_downloaded(tmp_path):
    result = _run("info", "ml-1m", env={"RECSYS_DATA": str(tmp_path)})
    assert result.exit_code == 2
    assert "ml-1m is not downloaded yet: run `recsys download ml-1m`" in result.output


def test_info_of_registry_name_downloaded(tmp_path):
    folder = tmp_path / "ml-1m"
    folder.mkdir()
    (folder / "ratings.dat").write_text("1::10::5::978300760\n2::10::3::978300761\n")
    result = _run("info", "ml-1m", env={"RECSYS_DATA": str(tmp_path)})
    assert result.exit_code == 0, result.output
    assert re.search(r"ratings\s+2\n", result.output)


@pytest.fixture()
def sample(tmp_path):
    ratings, _ = generate(SynthSpec(n_users=60, n_items=40, n_ratings=900, seed=3))
    path = tmp_path / "r.csv"
    from recsys.data.synth import write_csv

    write_csv(ratings, path)
    return path


def _pairs(path):
    r = read_ratings(path)
    return set(zip(r.raw_users.tolist(), r.raw_items.tolist(), strict=True))


@pytest.mark.parametrize("method, extra", [
    ("holdout", []), ("user", ["--fraction", "0.3"]), ("user-last", ["--last-n", "2"]),
    ("temporal", []),
])
def test_split_methods_write_disjoint_covering_files(sample, tmp_path, method, extra):
    prefix = tmp_path / "out" / "s"
    prefix.parent.mkdir()
    result = _run("split", sample, "-m", method, "-o", prefix, *extra)
    assert result.exit_code == 0, result.output
    train, test = _pairs(f"{prefix}.train.csv"), _pairs(f"{prefix}.test.csv")
    assert train.isdisjoint(test) and train | test == _pairs(sample)
    assert sorted(p.name for p in prefix.parent.iterdir()) == ["s.test.csv", "s.train.csv"]
    if method.startswith("user"):
        assert {u for u, _ in train} == {u for u, _ in _pairs(sample)}


def test_split_kfold_and_seed(sample, tmp_path):
    result = _run("split", sample, "-m", "kfold", "--folds", "3", "-o", tmp_path / "f")
    assert result.exit_code == 0, result.output
    tests = [_pairs(tmp_path / f"f.{i}.test.csv") for i in (1, 2, 3)]
    assert len(set().union(*tests)) == sum(map(len, tests)) == len(_pairs(sample))
    _run("split", sample, "-m", "kfold", "--folds", "3", "-o", tmp_path / "g")
    assert (tmp_path / "f.1.test.csv").read_text() == (tmp_path / "g.1.test.csv").read_text()
    _run("split", sample, "-m", "kfold", "--folds", "3", "-o", tmp_path / "h", "--seed", "9")
    assert (tmp_path / "f.1.test.csv").read_text() != (tmp_path / "h.1.test.csv").read_text()


def test_split_known_only_reports_drops(write, tmp_path):
    path = write("r.csv", "1,1,4,1\n1,2,4,2\n2,1,3,3\n2,3,5,4\n3,1,2,5\n")
    result = _run("split", path, "-m", "temporal", "--at", "4", "-o", tmp_path / "t",
                  "--known-only")
    assert result.exit_code == 0, result.output
    assert "dropped 2 test ratings of 1 users and 1 items" in result.output
    assert (tmp_path / "t.test.csv").read_text().splitlines() == ["user,item,rating,timestamp"]


def test_split_ml100k_official(ml100k, tmp_path):
    result = _run("split", ml100k, "-m", "ml100k", "--fold", "ua", "-o", tmp_path / "m")
    assert result.exit_code == 0, result.output
    assert len(read_ratings(tmp_path / "m.ua.test.csv")) == 9_430
    assert len(read_ratings(tmp_path / "m.ua.train.csv")) == 90_570


def test_synth_cli(tmp_path):
    out = tmp_path / "s.csv"
    result = _run("synth", "-o", out, "--users", "50", "--items", "30", "--ratings", "400",
                  "--scale", "half", "--seed", "4")
    assert result.exit_code == 0, result.output
    r = read_ratings(out)
    assert (len(r), r.n_users) == (400, 50)
    assert set(np.unique(r.values * 2) % 1) == {0.0}
    again = tmp_path / "t.csv"
    _run("synth", "-o", again, "--users", "50", "--items", "30", "--ratings", "400",
         "--scale", "half", "--seed", "4")
    assert out.read_bytes() == again.read_bytes()


def test_synth_shape(tmp_path):
    out = tmp_path / "s.csv"
    result = _run("synth", "-o", out, "--shape", "ml-100k", "--scale", "none")
    assert result.exit_code == 0, result.output
    r = read_ratings(out, scale=None)
    assert (len(r), r.n_users) == (100_000, 943)
    assert r.n_items <= 1_682


def test_datasets_lists_the_registry(tmp_path):
    result = _run("datasets", env={"RECSYS_DATA": str(tmp_path)})
    assert result.exit_code == 0
    for name in ("ml-100k", "ml-1m", "ml-10m", "ml-20m", "ml-25m", "ml-32m",
                 "ml-latest-small", "ml-latest"):
        assert f"\n{name} " in result.output
    assert "100,000" in result.output


def test_download_unknown_name():
    result = _run("download", "ml-3m")
    assert result.exit_code == 2
    assert "unknown dataset 'ml-3m'" in result.output


def test_download_without_network_exits_2(tmp_path):
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = _run("download", "ml-100k", "--mirror", f"http://127.0.0.1:{port}",
                  env={"RECSYS_DATA": str(tmp_path / "cache")})
    assert result.exit_code == 2
    assert "no network: cannot reach" in result.output
    assert list((tmp_path / "cache").iterdir()) == []


def test_split_kfold_and_cv_use_the_same_folds(sample, tmp_path, monkeypatch):
    from recsys.evaluation import evaluate

    result = _run("split", sample, "-m", "kfold", "--folds", "3", "--seed", "4", "-o",
                  tmp_path / "f")
    assert result.exit_code == 0, result.output
    written = [_pairs(tmp_path / f"f.{i}.test.csv") for i in (1, 2, 3)]
    scored = []

    def recording(model, test, **kwargs):  # what cv scores each fold's model on
        scored.append(set(zip(test.raw_users.tolist(), test.raw_items.tolist(), strict=True)))
        return real(model, test, **kwargs)

    real = evaluate.evaluate
    monkeypatch.setattr(evaluate, "evaluate", recording)
    result = _run("cv", sample, "--folds", "3", "--seed", "4", "--model", "global-mean")
    assert result.exit_code == 0, result.output
    assert scored == written
