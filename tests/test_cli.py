"""The command line end to end: train -> save -> predict -> recommend -> evaluate."""

import csv
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import recsys
from recsys.cli import main
from recsys.data.synth import SynthSpec, generate, write_csv
from recsys.models.registry import load


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli")
    ratings, _ = generate(SynthSpec(n_users=200, n_items=120, n_ratings=6_000, rank=4,
                                    noise=0.4, seed=9))
    test = np.arange(len(ratings)) % 8 == 0
    write_csv(ratings.subset(~test), folder / "train.csv")
    write_csv(ratings.subset(test), folder / "test.csv")
    return folder


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_train_predict_recommend_evaluate(tmp_path, data):
    model = tmp_path / "m.npz"
    result = run("train", data / "train.csv", "-o", model, "-k", 8, "-t", 12, "--seed", 3,
                 "-p", data / "test.csv")
    assert result.exit_code == 0, result.output
    epochs = [ln.split() for ln in result.stdout.splitlines()[1:]]
    assert len(epochs) == 12 and [int(e[0]) for e in epochs] == list(range(1, 13))
    assert float(epochs[-1][1]) < float(epochs[0][1])  # training RMSE falls
    fitted = load(model)
    assert fitted.n_factors == 8 and fitted.seed == 3

    # one prediction equals the library's
    pred = run("predict", model, 5, 7)
    assert pred.exit_code == 0
    assert float(pred.stdout) == pytest.approx(float(fitted.predict([5], [7])[0]), abs=1e-4)

    # a file of pairs -> CSV with one row per pair
    out = tmp_path / "pred.csv"
    result = run("predict", model, "--input", data / "test.csv", "--output", out)
    assert result.exit_code == 0, result.output
    with open(out) as fh:
        rows = list(csv.DictReader(fh))
    with open(data / "test.csv") as fh:
        n_test = sum(1 for _ in fh) - 1
    assert len(rows) == n_test and set(rows[0]) == {"user", "item", "prediction"}
    first = rows[0]
    assert float(first["prediction"]) == pytest.approx(
        float(fitted.predict([int(first["user"])], [int(first["item"])])[0]), abs=1e-5)

    # evaluate prints the RMSE of those predictions
    result = run("evaluate", model, data / "test.csv")
    assert result.exit_code == 0
    metrics = dict(line.split("\t") for line in result.stdout.splitlines())
    truth = np.loadtxt(data / "test.csv", delimiter=",", skiprows=1)
    preds = np.array([float(r["prediction"]) for r in rows])
    assert float(metrics["RMSE"]) == pytest.approx(np.sqrt(np.mean((preds - truth[:, 2]) ** 2)),
                                                   abs=1e-3)
    assert float(metrics["RMSE"]) == pytest.approx(fitted.history_[-1]["valid_rmse"], abs=1e-3)

    # recommend prints n ranked unseen items
    result = run("recommend", model, 5, "-n", 4)
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0].startswith("rank") and len(lines) == 5
    ids, _ = fitted.recommend(5, n=4)
    assert [int(ln.split("\t")[1]) for ln in lines[1:]] == ids.tolist()

    result = run("similar", model, 7, "-n", 3)
    assert result.exit_code == 0 and len(result.stdout.splitlines()) == 4


def test_reg_auto_reports_its_trials_and_stores_the_choice(tmp_path, data):
    model = tmp_path / "m.npz"
    result = run("train", data / "train.csv", "-o", model, "-k", 4, "-t", 10, "--lr", 0.01,
                 "--init-std", 0.1)
    assert result.exit_code == 0, result.output
    trials = [ln for ln in result.stderr.splitlines() if ln.startswith("reg auto: ")]
    assert trials[0].startswith("reg auto: 0.065 gives RMSE") and len(trials) >= 3
    fitted = load(model)
    assert fitted.reg == "auto" and len(fitted.reg_trials_) == len(trials)
    assert f"reg auto chose {fitted.reg_:g} (--reg {fitted.reg_:g} skips" in result.stderr
    assert result.stdout.splitlines()[0].startswith("epoch")  # trials are not on stdout

    # the final fit started after reg auto's warm-up, which it reports first
    assert [h.get("reg_trial", False) for h in fitted.history_] == [True] * 3 + [False] * 7
    assert [int(ln.split()[0]) for ln in result.stdout.splitlines()[1:]] == list(range(1, 11))

    # without a warm-up to share, the pinned γ gives the same model, bit for bit
    plain = ("-k", 4, "-t", 10, "--lr", 0.01, "--init-std", 0.1, "--warmup-epochs", 0)
    auto = run("train", data / "train.csv", "-o", tmp_path / "a.npz", *plain)
    chosen = load(tmp_path / "a.npz")
    pinned = run("train", data / "train.csv", "-o", tmp_path / "p.npz", *plain, "--reg",
                 f"{chosen.reg_!r}")
    assert auto.exit_code == pinned.exit_code == 0 and "reg auto" not in pinned.stderr
    np.testing.assert_array_equal(load(tmp_path / "p.npz").user_factors_, chosen.user_factors_)

    # with validation ratings every row of the table has its validation RMSE, the
    # shared warm-up's rows too
    scored = run("train", data / "train.csv", "-o", tmp_path / "v.npz", "-k", 4, "-t", 10,
                 "--lr", 0.01, "--init-std", 0.1, "-p", data / "test.csv")
    rows = scored.stdout.splitlines()
    assert scored.exit_code == 0 and rows[0].split() == ["epoch", "train_rmse", "valid_rmse",
                                                          "seconds"]
    assert [len(row.split()) for row in rows[1:]] == [4] * 10
    history = load(tmp_path / "v.npz").history_
    assert [float(row.split()[2]) for row in rows[1:4]] == pytest.approx(
        [h["valid_rmse"] for h in history[:3]], abs=5e-5)


@pytest.mark.parametrize("value", ["fast", "-1", "nan", "inf", ""])
def test_bad_reg_is_a_usage_error(tmp_path, data, value):
    result = CliRunner().invoke(main, ["train", str(data / "train.csv"), "-o",
                                       str(tmp_path / "m.npz"), "--reg", value])
    assert result.exit_code == 2
    assert "expected 'auto' or a number >= 0" in result.stderr
    assert not (tmp_path / "m.npz").exists()


def test_strict_predict_lists_unknown_ids(tmp_path, data):
    model = tmp_path / "m.npz"
    assert run("train", data / "train.csv", "-o", model, "-t", 1, "-q").exit_code == 0
    lenient = run("predict", model, 999999, 1)
    assert lenient.exit_code == 0
    strict = CliRunner().invoke(main, ["predict", str(model), "999999", "1", "--strict"])
    assert strict.exit_code == 2 and "unknown user" in strict.stderr and "999999" in strict.stderr


def test_bad_pairs_file_is_an_error_and_writes_nothing(tmp_path, data):
    model = tmp_path / "m.npz"
    assert run("train", data / "train.csv", "-o", model, "-t", 1, "-q").exit_code == 0
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("1,2\n3,4\n5\n")
    out = tmp_path / "out.csv"
    result = CliRunner().invoke(main, ["predict", str(model), "-i", str(pairs), "-o", str(out)])
    assert result.exit_code == 2 and "pairs.csv:3" in result.stderr
    assert not out.exists()


def test_output_in_missing_folder_fails_before_training(tmp_path, data):
    result = CliRunner().invoke(main, ["train", str(data / "train.csv"), "-o",
                                       str(tmp_path / "nope" / "m.npz")])
    assert result.exit_code == 2
    assert "does not exist" in result.stderr
    assert "epoch" not in result.stdout  # nothing was trained


def test_damaged_model_is_one_line_exit_2(tmp_path, data):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"PK\x03\x04 not really")
    for args in (["predict", str(bad), "1", "1"], ["recommend", str(bad), "1"],
                 ["evaluate", str(bad), str(data / "test.csv")]):
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 2
        assert result.stderr.startswith("recsys: error:") and "bad.npz" in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1


def test_divergence_writes_no_model(tmp_path, data):
    model = tmp_path / "m.npz"
    result = CliRunner().invoke(main, ["train", str(data / "train.csv"), "-o", str(model),
                                       "--lr", "10", "-q"])
    assert result.exit_code == 2 and "smaller learning rate" in result.stderr
    assert not model.exists()


def test_debug_shows_traceback(tmp_path):
    result = CliRunner().invoke(main, ["--debug", "train", str(tmp_path / "none.csv"), "-o",
                                       str(tmp_path / "m.npz")])
    assert result.exit_code != 0 and isinstance(result.exception, Exception)


def test_help_does_not_import_numba():
    code = ("import sys; from recsys.cli import main; "
            "assert 'numba' not in sys.modules, 'numba imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_console_script_runs(tmp_path, data):
    exe = os.path.join(os.path.dirname(sys.executable), "recsys")
    if not os.path.exists(exe):
        pytest.skip("recsys console script not installed in this environment")
    model = tmp_path / "m.npz"
    subprocess.run([exe, "train", str(data / "train.csv"), "-o", str(model), "-t", "2", "-q"],
                   check=True)
    done = subprocess.run([exe, "evaluate", str(model), str(tmp_path / "missing.csv")],
                          capture_output=True, text=True)
    assert done.returncode == 2 and "missing.csv: file not found" in done.stderr
    assert "Traceback" not in done.stderr


def _entry(args, before=""):
    """``recsys ARGS`` through the executable's entry point, with ``before`` run first."""
    code = (f"import sys\n{before}\nfrom recsys.cli import run\n"
            f"sys.argv = ['recsys'] + {list(args)!r}\nrun()")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)


def test_the_quick_exit_runs_exit_handlers_flushes_and_keeps_the_exit_code(tmp_path, data):
    said = _entry(["--version"], "import atexit; atexit.register(print, 'handler ran')")
    assert said.returncode == 0 and said.stdout.split("\n")[:2] == [
        "recsys, version " + recsys.__version__, "handler ran"]
    model = tmp_path / "m.npz"
    assert _entry(["train", str(data / "train.csv"), "-o", str(model), "-t", "1",
                   "-q"]).returncode == 0
    # a long listing into a pipe arrives whole: nothing is lost in the buffers at exit
    listed = _entry(["predict", str(model), "-i", str(data / "train.csv")])
    assert listed.returncode == 0
    assert len(listed.stdout.splitlines()) == 1 + len(pd.read_csv(data / "train.csv"))
    failed = _entry(["evaluate", str(model), str(tmp_path / "missing.csv")])
    assert failed.returncode == 2 and "missing.csv: file not found" in failed.stderr
    assert _entry(["no-such-command"]).returncode == 2


@pytest.mark.movielens
def test_movielens_u1_default_parameters(ml100k, tmp_path):
    model = tmp_path / "m.npz"
    assert run("train", ml100k / "u1.base", "-o", model, "-q").exit_code == 0
    result = run("evaluate", model, ml100k / "u1.test")
    rmse = float(dict(ln.split("\t") for ln in result.stdout.splitlines())["RMSE"])
    assert rmse <= 0.94
    rec = run("recommend", model, 1, "-n", 3)
    assert "(19" in rec.stdout  # MovieLens titles carry the year, e.g. "Fargo (1996)"


def test_closed_output_pipe_stops_quietly(tmp_path, data):
    exe = os.path.join(os.path.dirname(sys.executable), "recsys")
    if not os.path.exists(exe):
        pytest.skip("recsys console script not installed in this environment")
    model = tmp_path / "m.npz"
    assert run("train", data / "train.csv", "-o", model, "-t", 1, "-q").exit_code == 0
    proc = subprocess.Popen([exe, "predict", str(model), "--input", str(data / "train.csv")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout.readline().startswith(b"user,item,prediction")
    proc.stdout.close()  # like `| head -1`: the reader goes away with output still coming
    stderr = proc.stderr.read()
    assert proc.wait(timeout=60) == 141
    assert b"Traceback" not in stderr and b"error" not in stderr
