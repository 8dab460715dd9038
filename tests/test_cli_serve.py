"""The `fold-in` and `serve` commands: output, bad input, and the missing `serve` extra."""

import importlib.util
import os

import numpy as np
import pytest
from click.testing import CliRunner

from recsys import FunkSVD
from recsys.cli import main
from recsys.models.registry import load, save


@pytest.fixture(scope="module")
def model_file(tmp_path_factory, small_ratings):
    path = tmp_path_factory.mktemp("cli") / "model.npz"
    save(FunkSVD(n_factors=6, n_epochs=20, seed=3).fit(small_ratings), path)
    return path


def test_fold_in_prints_the_models_recommendations(model_file, write):
    ratings = write("new.csv", "item,rating\n1,5\n2,1\n# a comment\n3\t4.5\n4242 3\n")
    result = CliRunner().invoke(main, ["fold-in", str(model_file), str(ratings), "-n", "4"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert lines[0] == "rank\titem\tscore"
    want, scores = load(model_file).recommend_for_ratings(
        (np.array(["1", "2", "3"]), np.array([5.0, 1.0, 4.5])), n=4)
    assert [int(line.split("\t")[1]) for line in lines[1:]] == want.tolist()
    assert [float(line.split("\t")[2]) for line in lines[1:]] == pytest.approx(scores, abs=1e-4)
    assert "1 of 4 rated items are not in the model" in result.stderr


@pytest.mark.parametrize("text, message", [
    ("1,5\n2,x\n", "ratings.csv:2: rating is not a number: '2,x'"),
    ("1,5\n2,4,3\n", "ratings.csv:2: expected two fields"),
    ("1,5\n1,4\n", "item '1' is rated more than once"),
    ("1,inf\n", "ratings.csv:1: rating is not a finite number"),
])
def test_fold_in_bad_ratings_file_is_exit_2_naming_the_line(model_file, write, text, message):
    path = write("ratings.csv", text)
    result = CliRunner().invoke(main, ["fold-in", str(model_file), str(path)])
    assert result.exit_code == 2
    assert message in result.stderr


def test_fold_in_strict_names_unknown_items(model_file, write):
    path = write("r.csv", "1,5\n4242,3\n")
    result = CliRunner().invoke(main, ["fold-in", str(model_file), str(path), "--strict"])
    assert result.exit_code == 2 and "unknown item: 4242" in result.stderr


def test_serve_without_the_extra_says_how_to_install(model_file, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "fastapi" else real(name, *a))
    result = CliRunner().invoke(main, ["serve", str(model_file)])
    assert result.exit_code == 2
    assert "pip install 'recsys-mf[serve]'" in result.stderr and "fastapi" in result.stderr


def test_serve_refuses_a_broken_model_before_listening(write):
    pytest.importorskip("fastapi")
    path = write("broken.npz", b"PK\x03\x04 not really")
    saved = dict(os.environ)  # serve sets thread counts for the processes it starts
    try:
        result = CliRunner().invoke(main, ["serve", str(path), "--port", "0"])
    finally:
        os.environ.clear()
        os.environ.update(saved)
    assert result.exit_code == 2 and "broken.npz" in result.stderr
