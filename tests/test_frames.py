"""DataFrames (and Parquet files) get every check a ratings file gets, rows in place of lines."""

import re

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recsys.data.readers import BadLines, read_pairs, read_ratings
from recsys.errors import DataError

NAN, INF = float("nan"), float("inf")


def _csv(tmp_path, frame, name="r.csv", **options):
    """The same ratings as a CSV file (header line 1, so row k is line k + 1)."""
    path = tmp_path / name
    frame.to_csv(path, index=False, **options)
    return path


def _error(source, **options) -> DataError:
    with pytest.raises(DataError) as info:
        read_ratings(source, **options)
    return info.value


def _same(a, b):
    for name in ("users", "items", "values", "timestamps"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert a.user_map == b.user_map and a.item_map == b.item_map
    assert a.user_map.is_integer == b.user_map.is_integer
    assert a.item_map.is_integer == b.item_map.is_integer


def _frame(**columns):
    base = {"user": [1, 2, 3, 4], "item": [10, 10, 11, 12], "rating": [4.0, 3.5, 5.0, 1.0]}
    base.update(columns)
    return pd.DataFrame(base)


# ----------------------------------------------------------------------------- each check

CHECKS = [  # (columns replaced, options, the row that fails, its reason, CSV na_rep)
    (dict(rating=[4.0, NAN, 5.0, 1.0]), {}, 2, "rating 'nan' is not a finite number", "nan"),
    (dict(rating=[4.0, 3.0, INF, 1.0]), {}, 3, "rating 'inf' is not a finite number", ""),
    (dict(rating=[4.0, 3.0, -INF, 1.0]), {}, 3, "rating '-inf' is not a finite number", ""),
    (dict(rating=[4, 3, 99, 1]), {}, 3,
     "rating 99 is outside the scale 0.5..5 (set the scale with --scale MIN,MAX)", ""),
    (dict(rating=[4.0, 0.0, 5.0, 1.0]), {}, 2,
     "rating 0.0 is outside the scale 0.5..5 (set the scale with --scale MIN,MAX)", ""),
    (dict(rating=[4.0, 3.0, 5.0, -2.5]), {"scale": (-1, 10)}, 4,
     "rating -2.5 is outside the scale -1..10 (set the scale with --scale MIN,MAX)", ""),
    (dict(rating=["4", "four", "5", "1"]), {}, 2, "rating 'four' is not a number", ""),
    (dict(rating=pd.Series([4.0, "x", 5.0, 1.0], dtype=object)), {}, 2,
     "rating 'x' is not a number", ""),
    (dict(rating=pd.Series([4.0, 3.0, None, 1.0], dtype=object)), {}, 3,
     "rating '' is not a number", ""),
    (dict(user=[12.0, 12.5, 13.0, 14.0]), {}, 2,
     "user id '12.5' is not an integer like the ids before it (use --id-type str for text ids)",
     ""),
    (dict(user=[12.0, 13.0, INF, 14.0]), {}, 3,
     "user id 'inf' is not an integer like the ids before it (use --id-type str for text ids)",
     ""),
    (dict(item=[10.0, 11.0, NAN, 12.0]), {}, 3, "empty item id", ""),
    (dict(user=["a", "b", "", "d"]), {}, 3, "empty user id", ""),
    (dict(user=["a", "b", " ", "d"]), {}, 3, "empty user id", ""),
    (dict(user=["a", None, "c", "d"]), {}, 2, "empty user id", ""),
    (dict(user=["1", "2", "x", "4"]), {"id_type": "int"}, 3,
     "user id 'x' is not an integer like the ids before it (use --id-type str for text ids)",
     ""),
    (dict(user=np.array([1, 2, 2**63, 4], dtype=np.uint64)), {}, 3,
     "user id 9223372036854775808 does not fit in a 64-bit integer", ""),
    (dict(item=["1", "2", "3", "9" * 25]), {"id_type": "int"}, 4,
     f"item id {'9' * 25} does not fit in a 64-bit integer", ""),
    (dict(user=[1.0, 2.0, 1e20, 4.0]), {}, 3, "user id 1e+20 does not fit in a 64-bit integer",
     ""),
    (dict(timestamp=[1.0, 1.5, 3.0, 4.0]), {}, 2, "timestamp '1.5' is not an integer", ""),
    (dict(timestamp=[1.0, 2.0, NAN, 4.0]), {}, 3, "timestamp 'nan' is not an integer", "nan"),
    (dict(timestamp=["1", "2", "3", "soon"]), {}, 4, "timestamp 'soon' is not an integer", ""),
    (dict(user=[1, 2, 3, 4], item=[10, 11, 12, 13], rating=[4.0, 3.0, NAN, 9.0]), {}, 3,
     "rating 'nan' is not a finite number", "nan"),  # the first bad row, its first reason
    (dict(user=[1, 2, 3, 4], item=[10, 11, 12, 13], rating=[4.0, 3.0, 5.0, 9.0],
          timestamp=[1, 2, 3, "x"]), {}, 4,
     "rating 9.0 is outside the scale 0.5..5 (set the scale with --scale MIN,MAX)", ""),
]


@pytest.mark.parametrize("columns, options, row, reason, na_rep", CHECKS,
                         ids=[c[3][:40] for c in CHECKS])
def test_a_frame_fails_like_its_csv(tmp_path, columns, options, row, reason, na_rep):
    frame = _frame(**columns)
    by_file = _error(_csv(tmp_path, frame, na_rep=na_rep), **options)
    by_frame = _error(frame, **options)
    assert by_file.line == row + 1 and by_file.reason == reason
    assert by_frame.reason == reason and by_frame.row == row and by_frame.line is None
    assert str(by_frame) == f"DataFrame: row {row}: {reason}"
    assert by_frame.path == "DataFrame"


def test_rows_are_counted_by_position_whatever_the_index():
    frame = _frame(rating=[4.0, 3.0, 9.0, 1.0])
    frame.index = [40, 30, 20, 10]
    assert _error(frame).row == 3
    assert _error(frame.iloc[1:]).row == 2
    r = read_ratings(frame.iloc[[0, 1, 3]])
    assert r.raw_users.tolist() == [1, 2, 4] and r.values.tolist() == [4.0, 3.0, 1.0]


def test_scale_none_takes_any_finite_number(tmp_path):
    frame = _frame(rating=[7, -3, 0, 100])
    _same(read_ratings(frame, scale=None), read_ratings(_csv(tmp_path, frame), scale=None))
    assert read_ratings(frame, scale=(-5, 100)).values.tolist() == [7, -3, 0, 100]
    with pytest.raises(DataError, match="rating 'nan' is not a finite number"):
        read_ratings(_frame(rating=[1.0, NAN, 2.0, 3.0]), scale=None)


def test_an_empty_frame_and_one_with_only_bad_rows():
    with pytest.raises(DataError, match="^DataFrame: frame is empty: no ratings found$"):
        read_ratings(_frame().iloc[:0])
    frame = _frame(rating=[9.0, 9.0, NAN, 0.0])
    with pytest.raises(DataError, match=r"no valid ratings found \(4 bad rows skipped\)"):
        read_ratings(frame, skip_bad_lines=True)


# ----------------------------------------------------------------------------- duplicates

DUPS = pd.DataFrame({"user": [1, 2, 3, 1, 4, 2, 2], "item": [5, 6, 5, 6, 5, 6, 5],
                     "rating": [1.0, 2.0, 3.0, 4.0, 5.0, 3.0, 4.5],
                     "timestamp": [10, 20, 30, 40, 50, 60, 70]})


def test_duplicates_are_an_error_naming_both_rows(tmp_path):
    by_frame = _error(DUPS)
    by_file = _error(_csv(tmp_path, DUPS))
    assert str(by_frame) == ("DataFrame: row 6: duplicate rating for the same user and item "
                             "(first on row 2; use --duplicates last, mean or sum to allow them)")
    assert by_file.line == 7 and by_file.reason == by_frame.reason.replace(
        "first on row 2", "first on line 3")


@pytest.mark.parametrize("policy", ["last", "mean"])
def test_duplicate_policies_give_what_the_file_gives(tmp_path, policy):
    by_frame = read_ratings(DUPS, duplicates=policy)
    _same(by_frame, read_ratings(_csv(tmp_path, DUPS), duplicates=policy))
    expected = {"last": [1.0, 3.0, 4.0, 5.0, 3.0, 4.5], "mean": [1.0, 3.0, 4.0, 5.0, 2.5, 4.5]}
    assert by_frame.values.tolist() == expected[policy]


def test_read_pairs_allows_repeated_pairs(tmp_path):
    pairs = read_pairs(DUPS[["user", "item"]])
    expected = read_pairs(_csv(tmp_path, DUPS[["user", "item"]]))
    pd.testing.assert_frame_equal(pairs, expected)
    assert pairs["user"].tolist() == DUPS["user"].tolist()


# ----------------------------------------------------------------------------- skipping


def test_skip_bad_lines_reports_rows_like_a_file_reports_lines(tmp_path):
    frame = pd.DataFrame({"user": [1, 2, 3, 4, 5, 6, 7, 8],
                          "item": [1.0, 1.0, 2.0, NAN, 2.0, 3.0, 3.0, 4.5],
                          "rating": [4.0, 99.0, 3.0, 3.0, NAN, 2.0, 0.0, 2.0]})
    report, file_report = BadLines(), BadLines()
    r = read_ratings(frame, skip_bad_lines=True, report=report)
    path = _csv(tmp_path, frame, na_rep="nan")
    expected = read_ratings(path, skip_bad_lines=True, report=file_report)
    assert r.raw_users.tolist() == [1, 3, 6] == expected.raw_users.tolist()
    assert r.values.tolist() == expected.values.tolist()
    assert report.count == file_report.count == 5
    assert report.examples[0] == ("DataFrame: row 2: rating 99.0 is outside the scale 0.5..5 "
                                  "(set the scale with --scale MIN,MAX)")
    assert report.examples[1] == "DataFrame: row 4: empty item id"
    for ours, theirs in zip(report.examples[2:], file_report.examples[2:], strict=True):
        row = int(ours.split("row ")[1].split(":")[0])
        assert theirs.startswith(f"{path}:{row + 1}: " + ours.split(": ", 2)[2])


# ----------------------------------------------------------------------------- columns


@pytest.mark.parametrize("names", [("userId", "movieId", "rating", "timestamp"),
                                   ("USER_ID", "Item_Id", "Score", "TS"),
                                   ("customer", "product", "stars", "time")])
def test_columns_found_by_name_in_any_order(names):
    frame = pd.DataFrame({names[3]: [7, 8], names[2]: [4.0, 3.0], "title": ["x", "y"],
                          names[1]: [20, 21], names[0]: [1, 2]})
    r = read_ratings(frame)
    assert r.raw_users.tolist() == [1, 2] and r.raw_items.tolist() == [20, 21]
    assert r.values.tolist() == [4.0, 3.0] and r.timestamps.tolist() == [7, 8]


@pytest.mark.parametrize("names", [[0, 1, 2, 3, 4], ["a", "b", "c", "d", "e"]])
def test_columns_by_position_when_no_names_fit(names):
    frame = pd.DataFrame([[1, 20, 4.0, 7, "x"], [2, 21, 3.0, 8, "y"]], columns=names)
    r = read_ratings(frame)
    assert r.raw_users.tolist() == [1, 2] and r.raw_items.tolist() == [20, 21]
    assert r.values.tolist() == [4.0, 3.0] and r.timestamps.tolist() == [7, 8]


def test_columns_named_by_the_caller():
    frame = pd.DataFrame({"who": ["a", "b"], "what": [20, 21], "stars_given": [4.0, 3.0],
                          "when": [7, 8], "rating": [1.0, 1.0]})
    r = read_ratings(frame, user_col="who", item_col="what", rating_col="stars_given",
                     timestamp_col="when")
    assert r.raw_users.tolist() == ["a", "b"] and r.values.tolist() == [4.0, 3.0]
    assert r.timestamps.tolist() == [7, 8]
    r = read_ratings(frame, user_col="who", item_col="what")  # the rest by name
    assert r.values.tolist() == [1.0, 1.0] and r.timestamps is None
    with pytest.raises(DataError) as info:
        read_ratings(frame, user_col="uid", item_col="what")
    assert str(info.value) == ("DataFrame: no column 'uid' among "
                               "['who', 'what', 'stars_given', 'when', 'rating']")


def test_columns_given_as_roles_and_missing_roles():
    frame = pd.DataFrame({"a": [1], "b": [2], "c": ["x"], "d": [4.5]})
    r = read_ratings(frame, columns="user,item,-,rating")
    assert r.raw_items.tolist() == [2] and r.values.tolist() == [4.5]
    with pytest.raises(DataError, match=r"DataFrame: no rating column found among \['user', "):
        read_ratings(pd.DataFrame({"user": [1], "item": [2], "title": ["x"]}))
    assert read_pairs(pd.DataFrame({"user": [1], "item": [2]}))["item"].tolist() == [2]


def test_options_for_files_only_and_for_tables_only(write):
    with pytest.raises(ValueError, match="sep and header"):
        read_ratings(_frame(), sep=",")
    with pytest.raises(ValueError, match="user_col"):
        read_ratings(write("r.csv", "1,2,3\n"), user_col="user")


# ----------------------------------------------------------------------------- id types


def test_id_types():
    r = read_ratings(_frame(user=[12.0, 13.0, 12.0, 14.0], item=["a", "b", "c", "a"]))
    assert r.raw_users.tolist() == [12, 13, 12, 14] and r.user_map.is_integer
    assert r.raw_items.tolist() == ["a", "b", "c", "a"] and not r.item_map.is_integer
    r = read_ratings(_frame(), id_type="str")
    assert r.raw_users.tolist() == ["1", "2", "3", "4"] and not r.user_map.is_integer
    r = read_ratings(_frame(user=["12", "+13", " 14 ", "1.0e1"]), id_type="int")
    assert r.raw_users.tolist() == [12, 13, 14, 10] and r.user_map.is_integer
    r = read_ratings(_frame(user=["1", "2", "3", "4"]))  # text stays text
    assert r.raw_users.tolist() == ["1", "2", "3", "4"]
    big = [2**62, -(2**63), 2**63 - 1, 5]
    assert read_ratings(_frame(user=big)).raw_users.tolist() == big


def test_nullable_and_categorical_columns():
    r = read_ratings(_frame(user=pd.array([1, 2, 3, 4], dtype="Int64"),
                            item=pd.Categorical(["x", "y", "x", "z"]),
                            rating=pd.array([4.0, 3.5, 5.0, 1.0], dtype="Float64")))
    assert r.raw_users.tolist() == [1, 2, 3, 4] and r.user_map.is_integer
    assert r.raw_items.tolist() == ["x", "y", "x", "z"] and r.values.tolist()[1] == 3.5
    with pytest.raises(DataError, match="^DataFrame: row 2: empty user id$"):
        read_ratings(_frame(user=pd.array([1, None, 3, 4], dtype="Int64")))
    with pytest.raises(DataError, match="^DataFrame: row 3: rating '' is not a number$"):
        read_ratings(_frame(rating=pd.array([1.0, 2.0, None, 4.0], dtype="Float64")))


def test_datetime_timestamps_are_unix_seconds():
    when = pd.to_datetime(["1970-01-01 00:00:10", "2001-09-09 01:46:40", "2020-01-01",
                           "2020-01-01 00:00:01.9"], format="ISO8601")
    r = read_ratings(_frame(timestamp=when))
    assert r.timestamps.tolist() == [10, 10**9, 1577836800, 1577836801]
    r = read_ratings(_frame(timestamp=when.tz_localize("UTC").tz_convert("Asia/Tokyo")))
    assert r.timestamps.tolist() == [10, 10**9, 1577836800, 1577836801]
    with pytest.raises(DataError, match="^DataFrame: row 2: timestamp '' is not an integer$"):
        read_ratings(_frame(timestamp=pd.to_datetime(["2020-01-01", None, "2020-01-02",
                                                      "2020-01-03"])))


# ----------------------------------------------------------------------------- same result


def test_a_valid_frame_reads_like_its_csv(tmp_path, small_ratings):
    frame = small_ratings.to_dataframe()
    frame["timestamp"] = np.arange(len(frame)) * 1000
    frame["user"] = "u" + frame["user"].astype(str)
    by_frame = read_ratings(frame.astype({"rating": np.float64}))
    by_file = read_ratings(_csv(tmp_path, frame))
    _same(by_frame, by_file)
    assert by_frame.source == "DataFrame" and by_frame.item_titles == {}
    pd.testing.assert_frame_equal(read_pairs(frame), read_pairs(_csv(tmp_path, frame)))


_RATING = st.sampled_from([0.5, 1.0, 2.5, 3.0, 4.0, 5.0] * 3 + [0.0, 7.0, NAN, INF, -1.5])


@settings(max_examples=120, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 6), st.integers(-3, 5), _RATING,
                          st.integers(0, 10**10)), min_size=1, max_size=25),
       st.sampled_from(["error", "last", "mean"]), st.booleans(), st.booleans(),
       st.booleans())
def test_random_frames_read_like_their_csv(tmp_path_factory, rows, duplicates, stamps,
                                           text_users, skip):
    frame = pd.DataFrame(rows, columns=["user", "item", "rating", "timestamp"])
    if not stamps:
        frame = frame.drop(columns="timestamp")
    if text_users:
        frame["user"] = "u" + frame["user"].astype(str)
    path = _csv(tmp_path_factory.mktemp("frames"), frame, na_rep="nan")
    results = []
    for source in (frame, path):
        report = BadLines()
        try:
            results.append((read_ratings(source, duplicates=duplicates, skip_bad_lines=skip,
                                         report=report), report))
        except DataError as exc:
            results.append((exc, report))
    (ours, our_report), (theirs, their_report) = results
    assert type(ours) is type(theirs)
    assert our_report.count == their_report.count
    if isinstance(ours, DataError):
        if ours.row is not None:
            assert theirs.line == ours.row + 1
            assert theirs.reason == re.sub(r"first on row (\d+)",
                                           lambda m: f"first on line {int(m[1]) + 1}",
                                           ours.reason)
        else:
            assert "no valid ratings" in ours.reason and "no valid ratings" in theirs.reason
    else:
        _same(ours, theirs)


# ----------------------------------------------------------------------------- Parquet


def test_parquet_goes_through_the_same_checks(tmp_path):
    pytest.importorskip("pyarrow")
    path = tmp_path / "r.parquet"
    frame = _frame(rating=[4.0, 3.0, 99.0, 1.0])
    frame.to_parquet(path)
    by_file, by_frame = _error(path), _error(frame)
    assert str(by_file) == f"{path}: row 3: {by_frame.reason}"
    DUPS.to_parquet(path)
    assert str(_error(path)) == f"{path}: row 6: " + _error(DUPS).reason
    _same(read_ratings(path, duplicates="mean"), read_ratings(DUPS, duplicates="mean"))
    named = DUPS.rename(columns={"user": "who", "item": "what"})
    named.to_parquet(path)
    _same(read_ratings(path, user_col="who", item_col="what", duplicates="last"),
          read_ratings(DUPS, duplicates="last"))
