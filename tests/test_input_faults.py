"""Every kind of broken ratings file: through the Python API and through `recsys train`.

Each must give one DataError naming the file (and line and value where there is one), exit
code 2 from the CLI, and no output file.
"""

import gzip
import os

import numpy as np
import pytest
from click.testing import CliRunner

from recsys.cli import main
from recsys.data.readers import BadLines, read_ratings
from recsys.errors import DataError

BOM = b"\xef\xbb\xbf"

# name, file bytes, (line, text that must appear in the message)
FAULTS = [
    ("empty.csv", b"", (None, "empty")),
    ("blank.csv", b"\n\n  \n", (None, "empty")),
    ("header_only.csv", b"user,item,rating\n", (1, "no ratings")),
    ("wrong_sep.csv", b"1,1,5\n1,2,4\n2;1;3\n", (3, "expected 3 fields")),
    ("too_many.csv", b"1,1,5\n1,2,4,7,8\n2,1,3\n", (2, "found 5")),
    ("too_few.tsv", b"1\t1\t5\t0\n1\t2\n", (2, "found 2")),
    ("not_number.csv", b"1,1,5\n1,2,abc\n", (2, "'abc' is not a number")),
    ("nan.csv", b"1,1,5\n2,2,4\n1,2,nan\n", (3, "not a finite number")),
    ("inf.csv", b"1,1,5\n1,2,-inf\n", (2, "not a finite number")),
    ("out_of_scale.csv", b"1,1,5\n1,2,99\n", (2, "outside the scale")),
    ("negative.dat", b"1::1::5::0\n1::2::-1::0\n", (2, "outside the scale")),
    ("huge_id.csv", b"1,1,5\n99999999999999999999999,2,4\n", (2, "64-bit")),
    ("empty_id.csv", b"1,1,5\n,2,4\n", (2, "empty user id")),
    ("empty_item.csv", b"1,1,5\n2,,4\n", (2, "empty item id")),
    ("text_id_later.csv", b"1,1,5\nabc,2,4\n", (2, "not an integer")),
    ("duplicate.csv", b"1,1,5\n1,2,4\n1,1,3\n", (3, "duplicate")),
    ("truncated.csv", b"1,1,5\n1,2,4\n2,1", (3, "found 2")),
    ("bad_timestamp.tsv", b"1\t1\t5\t881250949\n1\t2\t4\tyesterday\n", (2, "timestamp")),
    ("stray_colon.dat", b"1::1::5::9\n1::2::4::8\n1:2::3::4::5\n", (3, "1:2")),
    ("corrupt.csv.gz", gzip.compress(b"1,1,5\n1,2,4\n" * 50)[:30], (None, "compressed")),
    ("not_gzip.gz", b"\x1f\x8bnot really gzip data", (None, "compressed")),
    ("binary.csv", bytes(range(256)) * 4, (None, "")),
]


@pytest.mark.parametrize("name,content,expect", FAULTS, ids=[f[0] for f in FAULTS])
def test_api_raises_data_error_with_place(write, name, content, expect):
    path = write(name, content)
    with pytest.raises(DataError) as info:
        read_ratings(path)
    err = info.value
    line, text = expect
    assert err.path == str(path)
    assert name in str(err)
    if line is not None:
        assert err.line == line
        assert f"{name}:{line}:" in str(err)
    assert text in str(err)


@pytest.mark.parametrize("name,content,expect", FAULTS, ids=[f[0] for f in FAULTS])
def test_cli_train_exits_2_with_one_line_and_writes_nothing(tmp_path, write, name, content,
                                                            expect):
    path = write(name, content)
    model = tmp_path / "model.npz"
    result = CliRunner().invoke(main, ["train", str(path), "-o", str(model), "-q"])
    assert result.exit_code == 2, result.output
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("recsys: error:")
    assert "Traceback" not in result.output
    assert name in lines[0]
    assert not model.exists()
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".model")]


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        read_ratings(tmp_path / "nope.csv")
    with pytest.raises(DataError, match="is a directory"):
        read_ratings(tmp_path)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their permissions")
def test_permission_denied(write):
    path = write("secret.csv", b"1,1,5\n")
    path.chmod(0)
    with pytest.raises(DataError, match="permission denied"):
        read_ratings(path)


@pytest.mark.parametrize("content", [
    b"1,1,5\r\n1,2,4\r\n2,1,3\r\n",  # CRLF
    BOM + b"user,item,rating\n1,1,5\n1,2,4\n2,1,3\n",  # UTF-8 BOM
    b"1,1,5\n\n1,2,4\n2,1,3\n\n",  # blank lines
    b"1,1,5\n1,2,4\n2,1,3",  # no final newline
])
def test_harmless_variants_load_the_same(write, content):
    ratings = read_ratings(write("r.csv", content))
    assert list(ratings.raw_users) == [1, 1, 2]
    assert list(ratings.raw_items) == [1, 2, 1]
    assert list(ratings.values) == [5, 4, 3]


def test_latin1_text_ids_are_read_as_text(write):
    ratings = read_ratings(write("r.csv", "café,Amélie,5\nnaïve,Amélie,4\n", "latin-1"))
    assert list(ratings.raw_users) == ["café", "naïve"]
    assert list(ratings.raw_items) == ["Amélie", "Amélie"]


def test_gzip_is_read(write):
    ratings = read_ratings(write("r.csv.gz", gzip.compress(b"1\t1\t5\t9\n1\t2\t4\t9\n")))
    assert len(ratings) == 2 and ratings.timestamps.tolist() == [9, 9]


def test_duplicate_policies(write):
    path = write("d.csv", b"1,1,5\n1,2,4\n1,1,3\n2,1,2\n")
    last = read_ratings(path, duplicates="last")
    assert sorted(zip(last.raw_users, last.raw_items, last.values)) == [(1, 1, 3), (1, 2, 4),
                                                                       (2, 1, 2)]
    mean = read_ratings(path, duplicates="mean")
    assert sorted(zip(mean.raw_users, mean.raw_items, mean.values)) == [(1, 1, 4), (1, 2, 4),
                                                                       (2, 1, 2)]


def test_skip_bad_lines_reports_them(write):
    path = write("m.csv", b"1,1,5\n1,2,abc\n2,1,3\n2,2\n3,3,nan\n3,1,4\n")
    report = BadLines()
    ratings = read_ratings(path, skip_bad_lines=True, report=report)
    assert len(ratings) == 3
    assert report.count == 3
    assert ":2:" in report.examples[0] and ":4:" in report.examples[1]


def test_declared_scale_and_no_scale(write):
    path = write("s.csv", b"1,1,7\n1,2,10\n")
    with pytest.raises(DataError, match="outside the scale"):
        read_ratings(path)
    assert read_ratings(path, scale=(1, 10)).values.tolist() == [7, 10]
    assert read_ratings(path, scale=None).values.max() == 10


def test_fast_and_line_by_line_passes_agree(write, monkeypatch):
    """The vectorized pass is an optimization: the exact pass must read the same values."""
    from recsys.data.readers import chunked

    rng = np.random.default_rng(1)
    rows = [f"{u}::{i}::{r}::{t}" for u, i, r, t in zip(rng.integers(1, 50, 300),
                                                       rng.integers(1, 80, 300),
                                                       rng.integers(1, 6, 300),
                                                       rng.integers(0, 10**9, 300))]
    path = write("r.dat", "\n".join(rows) + "\n")
    fast = read_ratings(path, duplicates="last")
    monkeypatch.setattr(chunked, "_fast_read", lambda *a, **k: None)
    slow = read_ratings(path, duplicates="last")
    for name in ("users", "items", "values", "timestamps"):
        np.testing.assert_array_equal(getattr(fast, name), getattr(slow, name))
    assert fast.user_map == slow.user_map and fast.item_map == slow.item_map


@pytest.fixture(scope="module")
def model_file(tmp_path_factory, small_ratings):
    from recsys.models.funksvd import FunkSVD
    from recsys.models.registry import save

    path = tmp_path_factory.mktemp("m") / "m.npz"
    save(FunkSVD(n_factors=2, n_epochs=1).fit(small_ratings), path)
    return path


PREDICT_FAULTS = [f for f in FAULTS if f[0] != "duplicate.csv"]  # repeated pairs are fine


@pytest.mark.parametrize("command", ["evaluate", "predict"])
@pytest.mark.parametrize("name,content,expect", PREDICT_FAULTS, ids=[f[0] for f in PREDICT_FAULTS])
def test_cli_evaluate_and_predict_reject_the_same_files(tmp_path, write, model_file, command,
                                                       name, content, expect):
    path = write(name, content)
    out = tmp_path / "out.csv"
    args = ([command, str(model_file), str(path)] if command == "evaluate"
            else [command, str(model_file), "--input", str(path), "--output", str(out)])
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("recsys: error:") and name in lines[0]
    line = expect[0]
    if line is not None:
        assert f"{name}:{line}:" in lines[0]
    assert not out.exists()


def test_quoted_fields_are_unwrapped(write, monkeypatch):
    from recsys.data.readers import chunked

    path = write("q.csv", b'"user","item","rating"\n"1","2","5"\n"1","3","4.5"\n"a b","2","1"\n')
    with pytest.raises(DataError, match=r"q.csv:4: user id 'a b' is not an integer"):
        read_ratings(path)
    path = write("q.csv", b'"user","item","rating"\n"1","2","5"\n"1","3","4.5"\n')
    fast = read_ratings(path)
    monkeypatch.setattr(chunked, "_fast_read", lambda *a, **k: None)
    slow = read_ratings(path)
    for ratings in (fast, slow):
        assert ratings.raw_users.tolist() == [1, 1] and ratings.values.tolist() == [5, 4.5]
