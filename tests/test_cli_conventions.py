"""Command-line conventions: -k means latent features (old spellings warn), -v logs,
python -m recsys runs, info prints a model card."""

import subprocess
import sys

from click.testing import CliRunner

from recsys.cli import main
from recsys.data.synth import SynthSpec, generate, write_csv


def _data(tmp_path):
    ratings, _ = generate(SynthSpec(n_users=40, n_items=30, n_ratings=600, seed=4))
    path = tmp_path / "r.csv"
    write_csv(ratings, path)
    return path


def test_k_is_latent_features_and_the_old_spellings_warn(tmp_path):
    data = _data(tmp_path)
    run = CliRunner().invoke
    old = run(main, ["split", str(data), "-m", "kfold", "-k", "3", "-o", str(tmp_path / "a")])
    new = run(main, ["split", str(data), "-m", "kfold", "--folds", "3", "-o",
                     str(tmp_path / "b")])
    assert old.exit_code == new.exit_code == 0
    assert "-k is deprecated here, use --folds" in old.output
    assert (tmp_path / "a.3.test.csv").read_text() == (tmp_path / "b.3.test.csv").read_text()
    model = tmp_path / "m.npz"
    assert run(main, ["train", str(data), "-o", str(model), "-k", "3", "-t", "2", "--reg",
                      "0.05", "-q"]).exit_code == 0
    old = run(main, ["evaluate", str(model), str(data), "--ranking", "-k", "4"])
    new = run(main, ["evaluate", str(model), str(data), "--ranking", "-n", "4"])
    assert "-k is deprecated here, use -n" in old.output and "ndcg@4" in new.output
    assert old.output.split("\n", 1)[1] == new.output


def test_verbose_logs_the_library_and_info_prints_the_model_card(tmp_path):
    data = _data(tmp_path)
    model = tmp_path / "m.npz"
    run = subprocess.run([sys.executable, "-m", "recsys", "-v", "train", str(data), "-o",
                          str(model), "-k", "3", "-t", "2", "--reg", "0.05", "-q"],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert "recsys: INFO: recsys.training.loop: training sgd" in run.stderr
    card = CliRunner().invoke(main, ["info", str(model)])
    assert card.exit_code == 0
    for field in ("model             FunkSVD", "format            recsys-funksvd version 2",
                  "history           2 epochs", "parent            none", "data 1"):
        assert field in card.output
