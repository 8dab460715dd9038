"""The compiled reader (kernels/parse.py) for big files: same lines taken, same values, same
errors as the line-by-line pass; anything not plain goes on to the other passes."""

import gzip

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recsys.data.ratings import IdMap
from recsys.data.readers import (
    DEFAULT_SCALE,
    chunked,
    compiled,
    lines,
    read_pairs,
    read_ratings,
    sniff,
)
from recsys.errors import DataError
from recsys.kernels.cpu import parse as kp


@pytest.fixture(params=["one thread", "two halves"])
def kernel(monkeypatch, request):
    """Files of any size go to the kernel (in one piece, or cut in two halves parsed at
    once); records what each kernel read returned."""
    if request.param == "two halves":
        monkeypatch.setattr(compiled, "_SPLIT_BYTES", 0)
    results = []
    original = compiled._kernel_read

    def recorded(*args, **kwargs):
        out = original(*args, **kwargs)
        results.append("odd" if out is compiled._ODD else "bad" if out is None else "frame")
        return out

    monkeypatch.setattr(compiled, "_KERNEL_BYTES", 0)
    monkeypatch.setattr(compiled, "_kernel_read", recorded)
    return results


@pytest.fixture()
def kernel_only(kernel, monkeypatch):
    """Clean plain files must be taken by the kernel alone."""

    def fail(*args, **kwargs):
        raise AssertionError("another pass ran on a clean plain file")

    monkeypatch.setattr(lines, "_slow_read", fail)
    monkeypatch.setattr(chunked, "_take_chunk", fail)
    return kernel


def _frame_of(path, sep=",", n=5_000, seed=3, header=True, line_end="\n", final_end=True,
              users=None):
    rng = np.random.default_rng(seed)
    n = n if users is None else len(users)
    u = rng.integers(1, 300, n) if users is None else users
    i = rng.integers(1, 200, n)
    halves = rng.integers(1, 11, n)
    t = rng.integers(0, 2**40, n)
    text_lines = [f"{a}{sep}{b}{sep}{h / 2:g}{sep}{c}" for a, b, h, c in zip(u, i, halves, t)]
    text = (f"user{sep}item{sep}rating{sep}timestamp{line_end}" if header else "") + \
        line_end.join(text_lines) + (line_end if final_end else "")
    path.write_bytes(text.encode())
    return u, i, (halves / 2).astype(np.float32), t


@pytest.mark.parametrize("sep", [",", "\t", "::", ";", "|"])
@pytest.mark.parametrize("line_end", ["\n", "\r\n"])
def test_plain_files_are_read_by_the_kernel(tmp_path, kernel_only, monkeypatch, sep,
                                            line_end):
    monkeypatch.setattr(compiled, "_KERNEL_BLOCK", 4096)  # many blocks, lines cut at the ends
    path = tmp_path / "r.txt"
    u, i, v, t = _frame_of(path, sep=sep, line_end=line_end, final_end=sep != ";")
    r = read_ratings(path, duplicates="allow")
    assert kernel_only == ["frame"]
    assert r.raw_users.tolist() == u.tolist() and r.raw_items.tolist() == i.tolist()
    assert r.values.tolist() == v.tolist() and r.timestamps.tolist() == t.tolist()
    assert r.user_map == IdMap.from_values(u)[0]
    assert r.item_map == IdMap.from_values(i)[0]


@pytest.mark.parametrize("split", [0, 1 << 60])
def test_kernel_matches_the_pandas_pass_and_the_line_pass(tmp_path, monkeypatch, split):
    path = tmp_path / "r.csv"
    _frame_of(path, n=3_000, seed=5)
    monkeypatch.setattr(compiled, "_KERNEL_BYTES", 0)
    monkeypatch.setattr(compiled, "_SPLIT_BYTES", split)
    by_kernel = read_ratings(path, duplicates="last")
    monkeypatch.setattr(compiled, "_KERNEL_BYTES", 1 << 60)
    by_pandas = read_ratings(path, duplicates="last")
    monkeypatch.setattr(chunked, "_fast_read", lambda *a, **k: None)
    by_lines = read_ratings(path, duplicates="last")
    for other in (by_pandas, by_lines):
        for name in ("users", "items", "values", "timestamps"):
            np.testing.assert_array_equal(getattr(by_kernel, name), getattr(other, name))
        assert by_kernel.user_map == other.user_map and by_kernel.item_map == other.item_map


def test_outputs_and_id_tables_grow(tmp_path, kernel_only, monkeypatch):
    """Row estimates far too low and ids far past the first table both resume exactly (two
    halves whose rows do not fit their estimate are parsed again in one)."""
    monkeypatch.setattr(compiled, "_estimate_rows", lambda path: 1)
    monkeypatch.setattr(compiled, "_KERNEL_BLOCK", 1024)
    path = tmp_path / "r.csv"
    users = np.random.default_rng(0).integers(1, 900_000, 4_000)
    u, i, v, t = _frame_of(path, users=users)
    r = read_ratings(path, duplicates="allow")
    assert r.raw_users.tolist() == u.tolist() and r.raw_items.tolist() == i.tolist()
    assert r.values.tolist() == v.tolist() and r.timestamps.tolist() == t.tolist()


def test_gzip_and_no_timestamp_and_read_pairs(tmp_path, kernel_only):
    path = tmp_path / "r.csv.gz"
    with gzip.open(path, "wt") as fh:
        fh.write("7,3,4.5\n2,3,1\n7,9,2.25\n")
    r = read_ratings(path)
    assert r.raw_users.tolist() == [7, 2, 7] and r.values.tolist() == [4.5, 1, 2.25]
    assert r.timestamps is None
    pairs = tmp_path / "p.tsv"
    pairs.write_text("u\titem\n5\t6\n5\t6\n")
    frame = read_pairs(pairs)
    assert frame["user"].tolist() == [5, 5] and frame["item"].tolist() == [6, 6]
    assert kernel_only == ["frame", "frame"]


@pytest.mark.parametrize("text, line, reason", [
    ("user,item,rating\n1,2,3\n1,3,7\n", 3, "outside the scale"),
    ("user,item,rating\r\n1,2,3\r\n1,3,3\r\n\r\n1,2,4\r\n", 5, "duplicate rating"),
    ("1,2,3\n1,3,x\n", 2, "rating 'x' is not a number"),
    ("1,2,3\n1,3\n", 2, "expected 3 fields"),
    ("1,2,3\n1,3,3,\n", 2, "expected 3 fields"),
    ("1::2::3\n1::3:::3\n", 2, "is not a number"),
])
def test_errors_name_the_same_line(write, kernel, text, line, reason):
    with pytest.raises(DataError) as info:
        read_ratings(write("r.txt", text))
    assert info.value.line == line and reason in info.value.reason


@pytest.mark.parametrize("text", [
    "1,2,3\r4,5,3\n",  # a lone carriage return ends a line
    "user,item,rating\r\r\n1,2,3\n",  # one in the header
    " 1,2,3\n4,5,3\n",  # spaces around a field
    "1,2,3.\n4,5,+3\n",  # numbers in other spellings
    "1,2,3\n4,5,1e0\n",
    "1,2,3\n4,5,.5\n",
    "1,2,3\n4,5,3.0000000000000001\n",  # more digits than the exact fast path takes
    f"1,2,3\n{10**15},5,3\n",  # an id past the dense tables
    "1,2,3\n4,5,3\n" + "9" * 30 + ",1,2\n",  # an id past 64 bits (an error)
    "\ufeff1,2,3\n4,5,3\n",  # a byte order mark before the first data line
    "1,2,3,4,x y\n4,5,3,4,z\n",  # a space in an unused field
])
def test_lines_not_plain_go_to_the_other_passes(write, kernel, monkeypatch, text):
    path = write("r.csv", text)
    monkeypatch.setattr(compiled, "_KERNEL_BYTES", 1 << 60)
    try:
        expected = read_ratings(path, scale=None)
    except DataError as exc:
        expected = str(exc)
    monkeypatch.setattr(compiled, "_KERNEL_BYTES", 0)
    try:
        got = read_ratings(path, scale=None)
    except DataError as exc:
        got = str(exc)
    assert kernel == ["odd"]
    if isinstance(expected, str):
        assert got == expected
    else:
        assert got.raw_users.tolist() == expected.raw_users.tolist()
        assert got.values.tolist() == expected.values.tolist()


def test_empty_lines_are_skipped_and_counted(write, kernel_only, monkeypatch):
    monkeypatch.setattr(compiled, "_KERNEL_BLOCK", 32)
    text = "user,item,rating\n\n1,2,3\r\n\r\n1,3,3\n" + "\n" * 102 + "".join(
        f"{u},9,4\n" for u in range(2, 300)) + "\n\n1,2,4\n\n"
    with pytest.raises(DataError) as info:  # the duplicate found after reading names lines
        read_ratings(write("r.csv", text))
    assert "first on line 3" in info.value.reason and info.value.line == 408
    r = read_ratings(write("r.csv", text), duplicates="last")
    assert r.raw_users.tolist() == [1] + list(range(2, 300)) + [1]
    assert kernel_only == ["frame", "frame"]


def test_line_longer_than_a_block_and_file_ending_at_a_block_end(tmp_path, kernel,
                                                                 monkeypatch):
    path = tmp_path / "r.csv"
    path.write_text("1,2,3,4,abc\n4,5,3,4,abcdefghijklmnop\n")
    monkeypatch.setattr(compiled, "_KERNEL_BLOCK", 16)
    assert read_ratings(path).raw_users.tolist() == [1, 4]
    assert kernel == ["odd"]
    path.write_text("1,2,3,4,a\n4,5,3,4,a\n")  # 20 bytes: two blocks of 10, nothing left
    monkeypatch.setattr(compiled, "_KERNEL_BLOCK", 10)
    assert read_ratings(path).raw_users.tolist() == [1, 4]
    assert kernel == ["odd", "frame"]


_FIELD = st.sampled_from(["1", "2", "17", "9", "5", "3.0", "4.5", "0.5", "10", "007"] * 4 + [
    "-3", "x", "", " 4", "nan", "inf", "1e0", "+2", '"2"', "6", "0", "2.25", "3.", ".5",
    "0000000000000000004", "1234567890123456789", '"3"', '"1,2"', "0_4", "1e39", "\u0663"])
_END = st.sampled_from(["\n"] * 8 + ["\r\n", "\r", "\n\n"])


@settings(max_examples=150, deadline=None)
@given(st.sampled_from([",", "\t", "::", ";", "|"]),
       st.lists(st.tuples(st.lists(_FIELD, min_size=3, max_size=5), _END), min_size=1,
                max_size=12),
       st.booleans(), st.booleans())
def test_kernel_and_line_pass_agree(tmp_path_factory, sep, rows, header, halves):
    """Whatever the kernel takes, the line-by-line pass takes the same way; whatever it
    rejects as bad, the line-by-line pass rejects too."""
    width = len(rows[0][0])
    first = ["1", "1", "3", "7", "a"][:width]
    head = sep.join(["user", "item", "rating", "timestamp", "x"][:width]) + "\n" \
        if header else ""
    text = head + sep.join(first) + "\n" + "".join(sep.join(f) + end for f, end in rows)
    path = tmp_path_factory.mktemp("agree") / "r.txt"
    path.write_bytes(text.encode())
    layout = sniff(path)
    split = compiled._SPLIT_BYTES
    try:
        compiled._SPLIT_BYTES = 0 if halves else 1 << 60
        got = compiled._kernel_read(path, layout, DEFAULT_SCALE)
    finally:
        compiled._SPLIT_BYTES = split
    raw, line_nos, bad = lines._slow_read(path, layout, DEFAULT_SCALE, True)
    if got is compiled._ODD:
        return
    if got is None:
        assert bad.count > 0
        return
    assert bad.count == 0, bad.examples
    rows = np.arange(len(got["user"]))
    blank = got.get("blank_rows", np.empty(0, dtype=np.int64))
    expected = layout.header_lines + rows + 1 + np.searchsorted(blank, rows, side="right")
    assert expected.tolist() == line_nos.tolist()
    assert got["user_map"].ids[got["user"]].tolist() == raw["user"].tolist()
    assert got["item_map"].ids[got["item"]].tolist() == raw["item"].tolist()
    assert got["rating"].tolist() == raw["rating"].astype("float32").tolist()
    if "timestamp" in raw:
        assert got["timestamp"].tolist() == raw["timestamp"].tolist()


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 10**15 - 1), st.integers(0, 14))
def test_ratings_are_the_correctly_rounded_value(mantissa, places):
    text = str(mantissa).rjust(places + 1, "0")
    text = text[: len(text) - places] + ("." + text[len(text) - places:] if places else "")
    line = f"1,2,{text}\n".encode()
    buf = np.frombuffer(line, dtype=np.uint8).copy()
    out_r = np.zeros(1, dtype=np.float32)
    table = np.full(4, -1, dtype=np.int32)
    consumed, rows, status, _ = kp.parse_lines(
        buf, 0, len(buf), 44, -1, 3, 0, 1, 2, -1, 0.0, 0.0, False, table, table.copy(),
        np.zeros(3, dtype=np.int64), np.zeros(1, np.int64), np.zeros(1, np.int32),
        np.zeros(1, np.int32), out_r, np.zeros(1, np.int64), 0, 1 << 20)
    assert (consumed, rows, status) == (len(buf), 1, kp.DONE)
    assert out_r[0] == np.float32(float(text))
