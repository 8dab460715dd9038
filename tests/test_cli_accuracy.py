"""The evaluate --ranking, cv, tune and train --config commands end to end."""

import json

from click.testing import CliRunner

from recsys.cli import main
from recsys.data.synth import write_csv


def _data(tmp_path, small_ratings):
    path = tmp_path / "ratings.csv"
    write_csv(small_ratings, path)
    return str(path)


def test_evaluate_ranking_prints_the_metrics(tmp_path, small_ratings):
    data = _data(tmp_path, small_ratings)
    model = str(tmp_path / "m.npz")
    run = CliRunner().invoke(main, ["train", data, "-o", model, "-k", "3", "-t", "2", "-q"])
    assert run.exit_code == 0, run.output
    run = CliRunner().invoke(main, ["evaluate", model, data, "--ranking", "-n", "5"])
    assert run.exit_code == 0, run.output
    for name in ("RMSE", "precision@5", "recall@5", "ndcg@5", "map@5", "hit_rate@5",
                 "coverage@5"):
        assert f"{name}\t" in run.output


def test_cv_prints_mean_and_std(tmp_path, small_ratings):
    data = _data(tmp_path, small_ratings)
    run = CliRunner().invoke(main, ["cv", data, "--folds", "3", "--model", "biases"])
    assert run.exit_code == 0, run.output
    rows = dict(line.split("\t", 1) for line in run.output.splitlines() if "\t" in line)
    assert "rmse" in rows and "fit_time" in rows
    mean, std = (float(x) for x in rows["rmse"].split("\t"))
    assert 0.3 < mean < 1.5 and std >= 0


def test_tune_saves_the_best_and_train_reuses_it(tmp_path, small_ratings):
    data = _data(tmp_path, small_ratings)
    config = tmp_path / "best.json"
    run = CliRunner().invoke(main, ["tune", data, "--factors", "2,4", "--epochs", "3",
                                    "--lr", "0.01", "--reg", "0.05", "--init-std", "0.1",
                                    "--grid", "--folds", "2", "--save-best", str(config)])
    assert run.exit_code == 0, run.output
    table = [line.split("\t") for line in run.output.splitlines() if line[:1].isdigit()]
    assert len(table) == 2 and float(table[0][1]) <= float(table[1][1])
    saved = json.loads(config.read_text())
    assert saved["params"]["n_factors"] == int(table[0][5])
    model = str(tmp_path / "m.npz")
    run = CliRunner().invoke(main, ["train", data, "-o", model, "--config", str(config),
                                    "--reg", "0.2", "-q"])
    assert run.exit_code == 0, run.output
    from recsys.persist.modelfile import read_manifest

    params = read_manifest(model)["params"]
    assert params["n_factors"] == saved["params"]["n_factors"]
    assert params["n_epochs"] == 3
    assert params["reg"] == 0.2  # the explicit option wins over the config


def test_a_bad_config_is_one_line_and_exit_2(tmp_path, small_ratings):
    data = _data(tmp_path, small_ratings)
    config = tmp_path / "bad.json"
    config.write_text('{"params": {"n_factor": 3}}')
    run = CliRunner().invoke(main, ["train", data, "-o", str(tmp_path / "m.npz"),
                                    "--config", str(config)])
    assert run.exit_code == 2
    assert "bad.json" in run.output and "n_factor" in run.output


def test_train_variant_options_reach_the_model(tmp_path, small_ratings):
    data = _data(tmp_path, small_ratings)
    model = str(tmp_path / "m.npz")
    run = CliRunner().invoke(main, ["train", data, "-o", model, "-k", "2", "-t", "3",
                                    "--method", "gd", "--lr", "0.001", "--lr-schedule", "bold",
                                    "--early-stopping", "2", "-q"])
    assert run.exit_code == 0, run.output
    from recsys.persist.modelfile import read_manifest

    params = read_manifest(model)["params"]
    assert (params["method"], params["lr_schedule"], params["early_stopping"]) == \
        ("gd", "bold", 2)


def test_tune_searches_auto_next_to_numbers_and_refuses_other_words(tmp_path, small_ratings):
    data = _data(tmp_path, small_ratings)
    run = CliRunner().invoke(main, ["tune", data, "--factors", "2", "--epochs", "3",
                                    "--lr", "0.01", "--reg", "0.05,auto", "--init-std", "0.1",
                                    "--grid", "--folds", "2"])
    assert run.exit_code == 0, run.output
    lines = run.output.splitlines()
    column = next(ln for ln in lines if ln.startswith("rank\t")).split("\t").index("reg")
    table = [line.split("\t") for line in lines if line[:1].isdigit()]
    assert sorted(row[column] for row in table) == ["0.05", "auto"]
    run = CliRunner().invoke(main, ["tune", data, "--reg", "0.05,some"])
    assert run.exit_code == 2 and "expected 'auto' or a number >= 0" in run.output
