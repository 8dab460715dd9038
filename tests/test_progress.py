"""Progress bars: shown on a terminal (or with RECSYS_PROGRESS=1), never in pipes and logs
(no carriage returns there), never without tqdm; the lines printed beside them stay."""

import re
import sys

import pytest
from click.testing import CliRunner

from recsys import progress
from recsys.cli import main

pytest.importorskip("tqdm")


@pytest.fixture()
def ratings_file(tmp_path, small_ratings):
    path = tmp_path / "r.csv"
    with open(path, "w") as fh:
        for u, i, r in zip(small_ratings.raw_users, small_ratings.raw_items,
                           small_ratings.values, strict=True):
            fh.write(f"{u},{i},{r}\n")
    return path


def _cv(ratings_file, env):
    result = CliRunner().invoke(main, ["cv", str(ratings_file), "--folds", "3", "-t", "2",
                                       "-k", "4", "--reg", "0.05"], env=env)
    assert result.exit_code == 0, result.output
    return result.stderr


def test_no_bar_when_stderr_is_not_a_terminal(ratings_file):
    err = _cv(ratings_file, {"RECSYS_PROGRESS": None})
    assert "\r" not in err and "fold/s" not in err
    assert [line.startswith(f"fold {n}:") for n, line in
            enumerate([x for x in err.splitlines() if x.startswith("fold")], 1)] == [True] * 3


def test_a_bar_with_its_count_and_the_fold_lines_when_asked_for(ratings_file):
    err = _cv(ratings_file, {"RECSYS_PROGRESS": "1"})
    assert re.search(r"\rcv: +\d+%\|.*\| [0-3]/3 \[", err)  # count of the total, ETA
    assert sum(line.startswith("fold ") for line in err.replace("\r", "\n").splitlines()) == 3


def test_reg_auto_trials_get_a_bar(ratings_file, tmp_path):
    result = CliRunner().invoke(main, ["train", str(ratings_file), "-o", str(tmp_path / "m.npz"),
                                       "-k", "4", "-t", "3"], env={"RECSYS_PROGRESS": "1"})
    assert result.exit_code == 0, result.output
    assert "reg auto:" in result.stderr and "trial" in result.stderr


def test_the_setting_and_a_missing_tqdm_turn_bars_off(monkeypatch):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    monkeypatch.delenv("RECSYS_PROGRESS", raising=False)
    assert progress.enabled()
    monkeypatch.setenv("RECSYS_PROGRESS", "0")
    assert not progress.enabled() and type(progress.bar(3, "x")) is progress.Silent
    monkeypatch.delenv("RECSYS_PROGRESS")
    monkeypatch.setitem(sys.modules, "tqdm", None)  # import tqdm raises ImportError
    assert not progress.enabled()
