"""Outputs never replace inputs, multi-file outputs are all or nothing, and SIGTERM stops a
command as cleanly as Ctrl-C: nothing lost, nothing half-written."""

import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

from recsys.atomic import atomic_write_many
from recsys.cli import main
from recsys.data.synth import SynthSpec, generate, write_csv
from recsys.errors import RecsysError


@pytest.fixture()
def data(tmp_path):
    ratings, _ = generate(SynthSpec(n_users=40, n_items=30, n_ratings=500, seed=2))
    path = tmp_path / "r.csv"
    write_csv(ratings, path)
    return path


def _run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def _refused(result, path, before):
    assert result.exit_code == 2, result.output
    assert "is also an input of this command" in result.output
    assert path.read_bytes() == before


def test_train_refuses_to_write_over_its_data_or_validation(data, tmp_path):
    before = data.read_bytes()
    _refused(_run("train", data, "-o", data, "-q"), data, before)
    valid = tmp_path / "v.csv"
    valid.write_bytes(before)
    _refused(_run("train", data, "-o", valid, "-p", valid, "-q"), valid, before)
    link = tmp_path / "link.csv"
    link.symlink_to(data)
    _refused(_run("train", data, "-o", link, "-q"), data, before)
    hard = tmp_path / "hard.csv"
    os.link(data, hard)
    _refused(_run("train", data, "-o", hard, "-q"), data, before)
    relative = os.path.relpath(data)
    _refused(_run("train", relative, "-o", str(data), "-q"), data, before)


def test_predict_split_and_tune_refuse_their_inputs(data, tmp_path):
    model = tmp_path / "m.npz"
    assert _run("train", data, "-o", model, "-k", 2, "-t", 2, "--reg", 0.05, "-q"
                ).exit_code == 0
    before = model.read_bytes()
    _refused(_run("predict", model, "--input", data, "-o", model), model, before)
    pairs = data.read_bytes()
    _refused(_run("predict", model, "--input", data, "-o", data), data, pairs)
    prefix = tmp_path / "r"  # r.train.csv beside r.csv would be fine; make it collide
    collide = tmp_path / "r.train.csv"
    collide.write_bytes(pairs)
    _refused(_run("split", collide, "-o", prefix), collide, pairs)
    _refused(_run("tune", data, "--factors", 2, "--epochs", 1, "--grid", "--folds", 2,
                  "--save-best", data), data, pairs)


def test_a_failed_multi_file_write_leaves_every_target_as_it_was(tmp_path, monkeypatch):
    targets = [tmp_path / f"f{n}.csv" for n in range(3)]
    for n, path in enumerate(targets[:2]):
        path.write_text(f"old {n}\n")
    # the disk fills while the last file is written: nothing is replaced
    with pytest.raises(OSError), atomic_write_many(targets, "w") as handles:
        for fh in handles[:2]:
            fh.write("new\n")
        raise OSError(28, "No space left on device")
    assert [p.read_text() for p in targets[:2]] == ["old 0\n", "old 1\n"]
    assert not targets[2].exists()
    # a rename fails half way: the targets already replaced get their old content back
    real_replace = os.replace
    calls = []

    def failing_replace(src, dst):
        calls.append(dst)
        if len(calls) == 3:
            raise OSError(5, "Input/output error")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError), atomic_write_many(targets, "w") as handles:
        for fh in handles:
            fh.write("new\n")
    monkeypatch.setattr(os, "replace", real_replace)
    assert [p.read_text() for p in targets[:2]] == ["old 0\n", "old 1\n"]
    assert not targets[2].exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f0.csv", "f1.csv"]


def test_the_same_file_twice_in_one_write_is_refused(tmp_path):
    with pytest.raises(RecsysError, match="same file"), \
            atomic_write_many([tmp_path / "a", tmp_path / "a"]):
        pass


def test_split_writes_all_its_files_or_none(data, tmp_path, monkeypatch):
    from recsys.data import split as sp

    old = {}
    for name in ("s.1.train.csv", "s.1.test.csv", "s.2.train.csv", "s.2.test.csv"):
        (tmp_path / name).write_text("old\n")
        old[name] = "old\n"
    real = sp.Ratings.to_dataframe
    calls = []

    def full_disk_on_the_last(self):
        calls.append(1)
        if len(calls) == 4:
            raise OSError(28, "No space left on device")
        return real(self)

    monkeypatch.setattr(sp.Ratings, "to_dataframe", full_disk_on_the_last)
    result = _run("split", data, "-m", "kfold", "-k", 2, "-o", tmp_path / "s")
    assert result.exit_code == 2 and "No space left" in result.output
    assert {p.name: p.read_text() for p in tmp_path.glob("s.*")} == old
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


SIGTERM_DURING_SAVE = """
import os, signal, sys
import numpy as np
real_save = np.save
def save_then_terminated(*args, **kwargs):
    real_save(*args, **kwargs)
    os.kill(os.getpid(), signal.SIGTERM)  # the signal arrives while the model is written
np.save = save_then_terminated
from recsys.cli import main
sys.argv = ["recsys"] + sys.argv[1:]
main()
"""


def test_sigterm_while_saving_leaves_nothing_and_exits_143(data, tmp_path):
    out = tmp_path / "m.npz"
    out.write_bytes(b"the previous model")
    run = subprocess.run([sys.executable, "-c", SIGTERM_DURING_SAVE, "train", str(data), "-o",
                          str(out), "-k", "2", "-t", "1", "--reg", "0.05", "-q"],
                         capture_output=True, text=True)
    assert run.returncode == 143, run.stderr
    assert run.stderr.strip() == "recsys: terminated; nothing was written"
    assert out.read_bytes() == b"the previous model"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.npz", "r.csv"]
