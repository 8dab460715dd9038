"""Strict validation: every kind of bad input names the file, the line and the value."""

import gzip

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from recsys.cli import main
from recsys.data import duplicates
from recsys.data.readers import BadLines, chunked, read_ratings
from recsys.errors import DataError

GOOD = "1,10,4\n2,10,3\n"


@pytest.mark.parametrize("bad, line, reason", [
    ("3,11,nan", 3, "'nan' is not a finite number"),
    ("3,11,inf", 3, "'inf' is not a finite number"),
    ("3,11,-inf", 3, "'-inf' is not a finite number"),
    ("3,11,", 3, "rating '' is not a number"),
    ("3,11,four", 3, "rating 'four' is not a number"),
    ("3,11,7", 3, "rating 7 is outside the scale 0.5..5"),
    ("3,11,0", 3, "rating 0 is outside the scale 0.5..5"),
    ("3,eleven,4", 3, "item id 'eleven' is not an integer"),
    ("x3,11,4", 3, "user id 'x3' is not an integer"),
    ("3,11,4,5", 3, "expected 3 fields separated by ',', found 4"),
    ("3,11", 3, "expected 3 fields separated by ',', found 2"),
    ("3,,4", 3, "empty item id"),
    (f"{2**70},11,4", 3, "does not fit in a 64-bit integer"),
])
def test_bad_line_is_named(write, bad, line, reason):
    path = write("r.csv", GOOD + bad + "\n4,12,5\n")
    with pytest.raises(DataError) as info:
        read_ratings(path)
    err = info.value
    assert err.line == line
    assert reason in err.reason
    assert str(err).startswith(f"{path}:{line}: ")
    assert err.text == bad


def test_scale_none_and_custom_scale(write):
    path = write("r.csv", "1,1,7\n2,1,-3\n")
    assert read_ratings(path, scale=None).values.tolist() == [7.0, -3.0]
    assert read_ratings(path, scale=(-5, 10)).values.tolist() == [7.0, -3.0]
    with pytest.raises(DataError, match=r"r.csv:2: rating -3 is outside the scale -1..10"):
        read_ratings(path, scale=(-1, 10))


def test_error_line_is_exact_after_blank_lines_and_in_late_chunks(write, monkeypatch):
    monkeypatch.setattr(chunked, "_CHUNK_ROWS", 7)
    rows = [f"{u},{u % 5},3" for u in range(1, 60)]
    rows[20] = ""  # a blank line is allowed and still counts as a line
    rows[44] = "45,1,9"
    path = write("r.csv", "\n".join(rows) + "\n")
    with pytest.raises(DataError) as info:
        read_ratings(path)
    assert info.value.line == 45
    assert info.value.text == "45,1,9"
    rows[44] = "45,1,5"
    r = read_ratings(write("ok.csv", "\n".join(rows) + "\n"))
    assert len(r) == 58


def test_header_line_counts(write):
    path = write("r.csv", "userId,movieId,rating\n1,1,4\n1,2,x\n")
    with pytest.raises(DataError) as info:
        read_ratings(path)
    assert info.value.line == 3


@pytest.mark.parametrize("content, reason", [
    ("", "file is empty"),
    ("\n\n  \n", "file is empty"),
    ("userId,movieId,rating\n", "header but no ratings"),
])
def test_empty_files(write, content, reason):
    with pytest.raises(DataError, match=reason):
        read_ratings(write("r.csv", content))


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        read_ratings(tmp_path / "nope.csv")
    with pytest.raises(DataError, match="is a directory"):
        read_ratings(tmp_path)


def test_truncated_gzip(tmp_path):
    path = tmp_path / "r.csv.gz"
    data = gzip.compress(("1,1,4\n" * 5000).encode())
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="damaged or truncated|cannot read compressed"):
        read_ratings(path)


def test_skip_bad_lines_reports_count_and_first_examples(write):
    lines = ["1,1,4", "1,2,nan", "2,1,3", "x,1,3", "2,2,9", "3,3", "3,1,2", "4,1,inf",
             "4,2,0", "5,5,5,5"]
    path = write("r.csv", "\n".join(lines) + "\n")
    report = BadLines()
    r = read_ratings(path, skip_bad_lines=True, report=report)
    assert r.raw_users.tolist() == [1, 2, 3]
    assert r.values.tolist() == [4.0, 3.0, 2.0]
    assert report.count == 7
    assert len(report.examples) == 5
    assert report.examples[0].startswith(f"{path}:2: ")
    assert f"{path}:4: " in report.examples[1]


def test_skip_bad_lines_everything_bad(write):
    with pytest.raises(DataError, match=r"no valid ratings found \(2 bad lines skipped\)"):
        read_ratings(write("r.csv", "1,1,9\n2,2,9\n"), skip_bad_lines=True)


def test_skip_bad_lines_out_of_scale_only(write):
    """A file whose only problem is the scale is skipped line by line, not rejected."""
    report = BadLines()
    r = read_ratings(write("r.csv", "1,1,4\n1,2,6\n2,1,3\n"), skip_bad_lines=True,
                     report=report)
    assert r.values.tolist() == [4.0, 3.0] and report.count == 1


# ----------------------------------------------------------------------------- duplicates

DUPS = "1,10,4,100\n2,10,3,101\n1,10,2,102\n1,11,5,103\n1,10,5,104\n"


def test_duplicates_error_names_both_lines(write):
    path = write("r.csv", DUPS)
    with pytest.raises(DataError) as info:
        read_ratings(path)
    assert info.value.line == 3
    assert "first on line 1" in info.value.reason


def test_duplicates_last(write):
    r = read_ratings(write("r.csv", DUPS), duplicates="last")
    assert list(zip(r.raw_users.tolist(), r.raw_items.tolist(), r.values.tolist(),
                    r.timestamps.tolist(), strict=True)) == [
        (2, 10, 3.0, 101), (1, 11, 5.0, 103), (1, 10, 5.0, 104)]


def test_duplicates_mean(write):
    r = read_ratings(write("r.csv", DUPS), duplicates="mean")
    got = dict(zip(zip(r.raw_users.tolist(), r.raw_items.tolist(), strict=True),
                   r.values.tolist(), strict=True))
    assert got == {(2, 10): 3.0, (1, 11): 5.0, (1, 10): pytest.approx(11 / 3)}


def test_duplicates_removed_compacts_maps(write):
    r = read_ratings(write("r.csv", "1,1,4\n1,1,5\n"), duplicates="last")
    assert (len(r), r.n_users, r.n_items) == (1, 1, 1)


def test_no_false_duplicates_in_large_random_file(tmp_path):
    rng = np.random.default_rng(0)
    keys = rng.choice(500 * 400, 20_000, replace=False)
    path = tmp_path / "r.csv"
    path.write_text("".join(f"{k // 400},{k % 400},3\n" for k in keys.tolist()))
    assert len(read_ratings(path)) == 20_000


# ----------------------------------------------------------------------------- CLI


def test_cli_bad_file_exits_2_with_one_line(write, tmp_path):
    path = write("r.csv", GOOD + "3,11,nan\n")
    result = CliRunner().invoke(main, ["train", str(path), "-o", str(tmp_path / "m.npz")])
    assert result.exit_code == 2
    assert f"{path}:3: rating 'nan' is not a finite number" in result.output
    assert not (tmp_path / "m.npz").exists()


def test_cli_skip_bad_lines_reports(write, tmp_path):
    path = write("r.csv", GOOD + "3,11,nan\n3,12,4\n")
    result = CliRunner().invoke(main, ["info", str(path), "--skip-bad-lines"])
    assert result.exit_code == 0, result.output
    assert "skipped 1 bad line; first:" in result.output
    assert f"{path}:3:" in result.output


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 6), st.integers(0, 5)), min_size=0, max_size=40))
def test_duplicate_checks_agree(pairs):
    from recsys.kernels.cpu.pairs import has_duplicate_pairs

    users = np.array([u for u, _ in pairs], dtype=np.int32)
    items = np.array([i for _, i in pairs], dtype=np.int32)
    truth = len(set(pairs)) < len(pairs)
    assert bool(has_duplicate_pairs(users, items, 7, 6)) == truth
    assert duplicates.has_duplicates(users, items, 7, 6) == truth
    order = np.argsort(users, kind="stable")  # grouped by user: checked slice by slice
    assert bool(has_duplicate_pairs(users[order], items[order], 7, 6)) == truth
    chunk = duplicates._CHUNK_ROWS
    try:
        duplicates._CHUNK_ROWS = 3
        assert duplicates.has_duplicates(users[order], items[order], 7, 6) == truth
        assert duplicates.has_duplicates(users, items, 7, 6) == truth
    finally:
        duplicates._CHUNK_ROWS = chunk


def test_duplicates_found_by_the_compiled_check(write, monkeypatch):
    import numba  # noqa: F401 - the compiled check runs when numba is loaded

    monkeypatch.setattr(duplicates, "_KERNEL_ROWS", 2)
    with pytest.raises(DataError, match="first on line 1"):
        read_ratings(write("r.csv", DUPS))
    assert len(read_ratings(write("ok.csv", GOOD))) == 2


@pytest.mark.parametrize("bad, reason", [
    ("3::11:4::5", "expected 4 fields separated by '::', found 3"),
    ("3::11::4", "expected 4 fields separated by '::', found 3"),
    ("3::11::4::5::6", "expected 4 fields separated by '::', found 5"),
    ("3::11::::5", "rating '' is not a number"),
])
def test_double_colon_format_errors(write, bad, reason):
    path = write("ratings.dat", "1::10::4::1\n2::10::3::2\n" + bad + "\n")
    with pytest.raises(DataError) as info:
        read_ratings(path)
    assert info.value.line == 3 and reason in info.value.reason


def test_skipped_field_must_be_present(write):
    path = write("r.txt", "1;a;4;x\n2;b;3;\n3;c;4\n")  # an empty field is present
    with pytest.raises(DataError, match="expected 4 fields") as info:
        read_ratings(path, columns="user,item,rating,-")
    assert info.value.line == 3
