"""Hostile and unlucky input files: each gives a DataError naming the file (and the line
where there is one), exit code 2 with one ``recsys: error:`` line from the command line,
memory in proportion to the file, and nothing left behind.

Memory is checked without timing anything: the bombs below expand to gigabytes, so a read
that held them would not stay under the peak asserted (measured in a subprocess with
``getrusage``); the decompressed bytes are counted where that is the point.
"""

import gzip
import json
import os
import subprocess
import sys
import threading

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from recsys.cli import main
from recsys.data.readers import (
    DEFAULT_SCALE,
    chunked,
    compiled,
    lines,
    read_pairs,
    read_ratings,
    sniff,
    source,
)
from recsys.data.readers.layout import FieldError, _split
from recsys.data.readers.user_ratings import read_user_ratings
from recsys.errors import DataError, shorten

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MIB = 1 << 20
#: Peak memory of a command that meets a bomb: imports take some 90 MiB; the reads stop
#: long before a bomb could cost gigabytes.
PEAK_MIB = 320


def _bomb(path, first: bytes, unit: bytes, gib: float) -> None:
    """A gzip file of ``first`` then ``unit`` repeated to ``gib`` GiB: one member of 64 MiB
    compressed once and written again and again (gzip members may follow each other)."""
    member = gzip.compress(unit * ((64 * MIB) // len(unit)), 6)
    with open(path, "wb") as fh:
        fh.write(gzip.compress(first))
        for _ in range(int(gib * 16)):
            fh.write(member)


_MEASURED = r"""
import json, resource, subprocess, sys
done = subprocess.run(sys.argv[1:], capture_output=True)
print(json.dumps({"rc": done.returncode, "stderr": done.stderr.decode("utf-8", "replace"),
                  "peak_kib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))
"""


def _cli(args, tmp_path, stdin=None) -> dict:
    """Run ``recsys ARGS`` in a subprocess (standard input from ``stdin``, a file or bytes):
    its exit code, stderr and peak resident memory in MiB."""
    env = dict(os.environ, PYTHONPATH=ROOT, TMPDIR=str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir(exist_ok=True)
    command = [sys.executable, "-c", _MEASURED, sys.executable, "-m", "recsys", *map(str, args)]
    if isinstance(stdin, bytes):
        done = subprocess.run(command, input=stdin, capture_output=True, env=env, check=True)
    else:
        with open(stdin or os.devnull, "rb") as fh:
            done = subprocess.run(command, stdin=fh, capture_output=True, env=env, check=True)
    out = json.loads(done.stdout.decode().strip().splitlines()[-1])
    out["peak_mib"] = out.pop("peak_kib") / 1024
    out["lines"] = [ln for ln in out["stderr"].splitlines() if ln.strip()]
    out["left_in_tmp"] = os.listdir(tmp_path / "tmp")
    return out


def _one_error_line(result: dict, *parts: str) -> str:
    assert result["rc"] == 2, result
    assert len(result["lines"]) == 1, result["lines"]
    line = result["lines"][0]
    assert line.startswith("recsys: error:"), line
    for part in parts:
        assert part in line, line
    assert len(line) < 600, len(line)
    return line


def _cli_runner(args, input=None):
    result = CliRunner().invoke(main, [str(a) for a in args], input=input)
    lines_ = [ln for ln in result.stderr.splitlines() if ln.strip()]
    return result.exit_code, lines_


# ------------------------------------------------------------------ 1. bounded memory


def test_endless_line_gzip_bomb_stops_at_the_line_limit(tmp_path):
    bomb = tmp_path / "endless.csv.gz"
    _bomb(bomb, b"1,1,5\n1,", b"a", 4)  # 4 MiB of gzip, 4 GiB of one line
    assert bomb.stat().st_size < 8 * MIB
    result = _cli(["train", bomb, "-o", tmp_path / "m.npz"], tmp_path)
    _one_error_line(result, "endless.csv.gz:2:", "longer than 1 MiB", "'1,aaaa")
    assert result["peak_mib"] < PEAK_MIB, result
    assert not (tmp_path / "m.npz").exists()


def test_identical_lines_gzip_bomb_stops_at_the_first_duplicates(tmp_path):
    bomb = tmp_path / "same.csv.gz"
    _bomb(bomb, b"user,item,rating\n", b"1,1,5\n", 4)  # 4 GiB: 700 million copies
    result = _cli(["train", bomb, "-o", tmp_path / "m.npz"], tmp_path)
    _one_error_line(result, "same.csv.gz:3:", "duplicate rating", "first on line 2")
    assert result["peak_mib"] < PEAK_MIB, result


def test_identical_lines_allowed_stop_at_the_ratio_bound(tmp_path):
    """With duplicates allowed, the copies are taken until gzip has expanded past its
    bound: the memory held is in proportion to the compressed file."""
    bomb = tmp_path / "same.csv.gz"
    _bomb(bomb, b"", b"1,1,5\n", 1 / 8)  # 190 KiB of gzip, 128 MiB of lines
    assert bomb.stat().st_size * source.MAX_RATIO < 32 * MIB
    result = _cli(["train", bomb, "-o", tmp_path / "m.npz", "--duplicates", "last"],
                  tmp_path)
    _one_error_line(result, "same.csv.gz:", "expands more than 100 times",
                    "decompression bomb")
    assert result["peak_mib"] < PEAK_MIB, result
    with pytest.raises(DataError, match="decompression bomb"):
        read_pairs(bomb)  # repeated pairs are fine there: the bound still holds


def test_huge_field_is_refused_with_a_short_message(tmp_path):
    path = tmp_path / "field.csv"
    path.write_bytes(b"1,1,5\n2,1," + b"7" * (10 * MIB) + b"\n3,1,4\n")
    result = _cli(["train", path, "-o", tmp_path / "m.npz"], tmp_path)
    line = _one_error_line(result, "field.csv:2:", "longer than 1 MiB", "'2,1,777")
    assert line.endswith("...'")
    assert result["peak_mib"] < PEAK_MIB, result


@pytest.fixture()
def passes(monkeypatch):
    """Which pass decides: 'compiled' (files of any size go to the kernel, which hands
    what it does not take on), 'pandas', or 'lines' alone."""

    def use(which):
        if which == "compiled":
            monkeypatch.setattr(compiled, "_KERNEL_BYTES", 0)
        else:
            monkeypatch.setattr(compiled, "_KERNEL_BYTES", 1 << 62)
        if which == "lines":
            monkeypatch.setattr(chunked, "_fast_read", lambda *a, **k: None)

    return use


@pytest.mark.parametrize("which", ["compiled", "pandas", "lines"])
def test_every_pass_takes_a_line_of_the_limit_and_refuses_one_past_it(write, passes, which):
    passes(which)
    head = b"1,2,3,0,"
    longest = head + b"x" * (source.MAX_LINE_BYTES - len(head))
    ratings = read_ratings(write("ok.csv", b"1,1,5,0,a\n" + longest + b"\n3,1,4,0,b\n"))
    assert ratings.raw_users.tolist() == [1, 1, 3]
    for end in (b"\n", b"\r\n"):
        with pytest.raises(DataError) as info:
            read_ratings(write("long.csv", b"1,1,5,0,a\n" + longest + b"x" + end + b"3,1,4,0,b\n"))
        assert info.value.line == 2 and "longer than 1 MiB" in info.value.reason
        assert len(str(info.value)) < 400
    with pytest.raises(DataError, match="longer than 1 MiB"):  # even when skipping bad lines
        read_ratings(write("long.csv", b"1,1,5,0,a\n" + longest + b"x\n"), skip_bad_lines=True)


def test_a_lone_carriage_return_ends_a_line_for_the_bound(write):
    """Old Mac files end lines with '\\r' alone: lines, not one long line."""
    text = b"".join(b"%d,%d,4,0,%s\r" % (u, u % 7, b"t" * 100) for u in range(12_000))
    assert len(text) > 1 * MIB
    assert len(read_ratings(write("mac.csv", text))) == 12_000


def test_gzip_expansion_bound_counts_decompressed_bytes(write):
    """Up to the floor any ratio is fine; past it the data may expand at most MAX_RATIO
    times the compressed size: the stream stops there, having held one piece at a time."""
    small = write("small.gz", gzip.compress(b"\0" * (source.RATIO_FLOOR - 1)))
    with source._open_binary(small, lines=False) as fh:
        assert sum(len(piece) for piece in iter(lambda: fh.read(MIB), b"")) == \
            source.RATIO_FLOOR - 1
    big = write("big.gz", gzip.compress(b"\0" * (source.RATIO_FLOOR * 4)))
    read = 0
    with pytest.raises(DataError, match="expands more than 100 times"):  # noqa: PT012
        with source._open_binary(big, lines=False) as fh:
            while piece := fh.read(MIB):
                read += len(piece)
    assert read <= source.RATIO_FLOOR


@pytest.mark.parametrize("which", ["compiled", "pandas", "lines"])
def test_reads_stop_once_a_duplicate_is_certain(write, passes, monkeypatch, which):
    """More ratings than users times items hold a duplicate: with duplicates an error,
    each pass stops there, and the error is the one a whole read gives."""
    passes(which)
    monkeypatch.setattr(lines, "_DUPLICATE_CHECK", 1000)
    monkeypatch.setattr(compiled, "_KERNEL_BLOCK", 4096)
    monkeypatch.setattr(chunked, "_CHUNK_ROWS", 1000)
    taken = []
    original = lines._LineParser.parse

    def counted(self, line, line_no):
        taken.append(line_no)
        return original(self, line, line_no)

    monkeypatch.setattr(lines._LineParser, "parse", counted)
    text = "user,item,rating\n1,7,3\n2,8,4\n" + "3,9,5\n" * 200_000 + "x,y,z\n"
    with pytest.raises(DataError) as info:
        read_ratings(write("r.csv", text))
    assert info.value.line == 5 and "first on line 4" in info.value.reason
    if which == "lines":
        assert len(taken) <= 1000
    with pytest.raises(DataError) as later:  # allowed, the bad line at the end is found
        read_ratings(write("r.csv", text), duplicates="last")
    assert later.value.line == 200_004


# ------------------------------------------------------------------ 2. inputs read once


def _fifo_with(tmp_path, data: bytes, name="ratings.fifo"):
    path = tmp_path / name
    os.mkfifo(path)

    def feed():
        with open(path, "wb") as fh:
            fh.write(data)

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    return path, writer


@pytest.mark.parametrize("compress", [False, True])
def test_named_pipe_is_read_once(tmp_path, monkeypatch, compress):
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    text = b"user,item,rating\n" + b"".join(b"%d,%d,%d\n" % (u, u % 13, u % 5 + 1)
                                            for u in range(5000))
    path, writer = _fifo_with(tmp_path, gzip.compress(text) if compress else text)
    ratings = read_ratings(path)
    writer.join(10)
    plain = tmp_path / "plain.csv"
    plain.write_bytes(text)
    expected = read_ratings(plain)
    assert ratings.raw_users.tolist() == expected.raw_users.tolist()
    assert ratings.values.tolist() == expected.values.tolist()
    assert ratings.source == str(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plain.csv", path.name]  # no copy


def test_named_pipe_errors_name_the_pipe_and_the_line(tmp_path, monkeypatch):
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    path, writer = _fifo_with(tmp_path, b"1,1,5\n1,2,0_4\n")
    with pytest.raises(DataError) as info:
        read_ratings(path)
    writer.join(10)
    assert info.value.path == str(path) and info.value.line == 2
    assert str(info.value).startswith(f"{path}:2: rating '0_4' is not a number")
    path, writer = _fifo_with(tmp_path, b"1,1,5\n1,2,x\n2,2,4\n", "second.fifo")
    report = lines.BadLines()
    read_ratings(path, skip_bad_lines=True, report=report)
    writer.join(10)
    assert report.count == 1 and report.examples[0].startswith(f"{path}:2:")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ratings.fifo", "second.fifo"]


def test_stdin_dash_trains_and_errors_name_stdin(tmp_path):
    data = b"".join(b"%d,%d,%d\n" % (u % 40, u % 17, u % 5 + 1) for u in range(680))
    model = tmp_path / "m.npz"
    result = _cli(["train", "-", "-o", model, "--epochs", "2"], tmp_path, stdin=data)
    assert result["rc"] == 0, result
    assert model.is_file() and result["left_in_tmp"] == []
    bad = tmp_path / "bad.npz"
    result = _cli(["train", "-", "-o", bad], tmp_path, stdin=b"1,1,5\n1,2,x\n")
    _one_error_line(result, "<stdin>:2:", "rating 'x' is not a number")
    assert not bad.exists() and result["left_in_tmp"] == []


def test_dev_stdin_pipe_and_gzip_stream(tmp_path):
    data = b"1\t1\t5\n1\t2\t3\n2\t1\t4\n"
    result = _cli(["info", "/dev/stdin"], tmp_path, stdin=gzip.compress(data))
    assert result["rc"] == 0 and result["left_in_tmp"] == [], result
    stdin = tmp_path / "redirected.tsv"  # a file given as standard input is read in place
    stdin.write_bytes(data)
    assert _cli(["info", "/dev/stdin"], tmp_path, stdin=stdin)["rc"] == 0


def test_stdin_bombs_stop_while_copying(tmp_path):
    bomb = tmp_path / "endless.gz"
    _bomb(bomb, b"1,1,5\n2,2,4\n3,", b"z", 1)
    result = _cli(["train", "-", "-o", tmp_path / "m.npz"], tmp_path, stdin=bomb)
    _one_error_line(result, "<stdin>:3:", "longer than 1 MiB")
    assert result["peak_mib"] < PEAK_MIB and result["left_in_tmp"] == []
    same = tmp_path / "same.gz"
    _bomb(same, b"", b"4,4,4\n", 1 / 8)
    result = _cli(["train", "-", "-o", tmp_path / "m.npz", "--duplicates", "mean"], tmp_path,
                  stdin=same)
    _one_error_line(result, "<stdin>:", "decompression bomb")
    assert result["peak_mib"] < PEAK_MIB and result["left_in_tmp"] == []


def test_predict_input_dash_reads_pairs_from_stdin(tmp_path, small_ratings):
    from recsys.models.funksvd import FunkSVD
    from recsys.models.registry import save

    model = tmp_path / "m.npz"
    save(FunkSVD(n_factors=2, n_epochs=1).fit(small_ratings), model)
    users, items = small_ratings.raw_users[:3], small_ratings.raw_items[:3]
    pairs = "".join(f"{u},{i}\n" for u, i in zip(users, items, strict=True))
    result = CliRunner().invoke(main, ["predict", str(model), "--input", "-"], input=pairs)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == "user,item,prediction"
    assert len(result.stdout.splitlines()) == 4
    code, errors = _cli_runner(["predict", model, "--input", "-"], input="1,2\n1_0,2\n")
    assert code == 2 and len(errors) == 1
    assert errors[0].startswith("recsys: error: <stdin>:2: user id '1_0' is not an integer")


# ------------------------------------------------------------------ 3. RFC 4180 quoting

QUOTED = (b'user,item,rating\n"u,1",item,5\n"u ""2""",item,4\nu3,"it,em",3\n'
          b'"u4","item","2.5"\n')


@pytest.mark.parametrize("which", ["compiled", "pandas", "lines"])
def test_separators_and_doubled_quotes_inside_quoted_fields(write, passes, which):
    passes(which)
    ratings = read_ratings(write("q.csv", QUOTED))
    assert ratings.raw_users.tolist() == ["u,1", 'u "2"', "u3", "u4"]
    assert ratings.raw_items.tolist() == ["item", "item", "it,em", "item"]
    assert ratings.values.tolist() == [5, 4, 3, 2.5]


def test_quoted_file_goes_through_the_pandas_pass(write, monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("the line-by-line pass ran on a well-quoted file")

    monkeypatch.setattr(lines, "_slow_read", fail)
    assert len(read_ratings(write("q.csv", QUOTED))) == 4
    # quotes only where a field needs them, after a first line without any
    text = b"1,2,5,0,Heat\n1,3,4,0,\"Heat, The\"\n2,2,3,0,\"Say \"\"hi\"\"\"\n"
    assert read_ratings(write("m.csv", text)).raw_items.tolist() == [2, 3, 2]


@pytest.mark.parametrize("bad, reason", [
    (b'1,"x"y,5', "text after the closing quote of field 2"),
    (b'1,x"y,5', "double quote inside field 2"),
    (b'1,"xy,5', "field 2 opens a double quote that is not closed"),
    (b'1,"x""y,5', "field 2 opens a double quote that is not closed"),
    (b'1,""y,5', "text after the closing quote of field 2"),
])
@pytest.mark.parametrize("which", ["compiled", "pandas", "lines"])
def test_broken_quoting_is_named_by_every_pass(write, passes, which, bad, reason):
    passes(which)
    with pytest.raises(DataError) as info:
        read_ratings(write("q.csv", b'a,"b",3\n' + bad + b'\nc,"d",4\n'))
    assert info.value.line == 2 and reason in info.value.reason


def test_quoted_fields_in_other_layouts(write):
    assert read_ratings(write("q.dat", b'"a::b"::1::5\nc::2::4\n')).raw_users.tolist() == \
        ["a::b", "c"]
    assert read_ratings(write("q.txt", b'"a b" 1 5\nc  2 4\n')).raw_users.tolist() == \
        ["a b", "c"]
    layout = sniff(write("s.csv", b'"a,b";c;5\n"d";e;4\n'))  # a separator in quotes
    assert layout.sep == ";" and layout.quoted


def test_split_is_the_reference():
    assert _split('"u,1",item,5', ",") == ["u,1", "item", "5"]
    assert _split(' "a""b" ,"",c', ",") == ['a"b', "", "c"]
    assert _split('"a\tb"\tc', "\t") == ["a\tb", "c"]
    assert _split('  "a b"  c ', None) == ["a b", "c"]
    for bad in ('"a"b,c', 'a"b,c', '"ab,c', '"a"""b,c'):
        with pytest.raises(FieldError):
            _split(bad, ",")


_QUOTED_FIELD = st.sampled_from([
    "a", "b", "c d", '"a"', '"b"', '"a,b"', '"a;b"', '"a\tb"', '"a|b"', '"x""y"', '""""',
    '"  e"', '" a"', ' "a"', '"a" ', '"a', 'a"', '"a"b', '""a', '""', "", '"1"', "7",
    "\xa0a", '"a""', '"\xe9"'])


@settings(max_examples=150, deadline=None)
@given(st.sampled_from([",", "\t", ";", "|", "::", " "]),
       st.lists(st.tuples(_QUOTED_FIELD, _QUOTED_FIELD,
                          st.sampled_from(["3", '"4"', "4.5", '"2.5"', "0_4", '"5" ', "1e39"])),
                min_size=1, max_size=10),
       st.sampled_from(["\n", "\r\n"]))
def test_pandas_and_line_passes_agree_on_quoting(tmp_path_factory, sep, rows, end):
    """Whatever the pandas pass takes, the line-by-line pass takes with the same fields."""
    text = sep.join(['"a"', '"b"', "3"]) + end + "".join(sep.join(r) + end for r in rows)
    path = tmp_path_factory.mktemp("quoted") / "r.txt"
    path.write_bytes(text.encode())
    try:
        layout = sniff(path)
    except DataError:
        return
    fast = chunked._fast_read(path, layout, DEFAULT_SCALE)
    raw, _, bad = lines._slow_read(path, layout, DEFAULT_SCALE, True)
    if fast is None:
        return
    assert bad.count == 0, bad.examples
    assert fast["user_map"].ids[fast["user"]].tolist() == raw["user"].tolist()
    assert fast["item_map"].ids[fast["item"]].tolist() == raw["item"].tolist()
    assert fast["rating"].tolist() == raw["rating"].astype("float32").tolist()


# ------------------------------------------------------------------ 4. one number grammar


@pytest.mark.parametrize("which", ["compiled", "pandas", "lines"])
@pytest.mark.parametrize("text, reason", [
    ("1,1,5\n1,2,0_4\n", "rating '0_4' is not a number"),
    ("1,1,5\n1,2,0x10\n", "rating '0x10' is not a number"),
    ("1,1,5\n1,2,\u0663\n", "rating '\u0663' is not a number"),
    ("1,1,5\n1,2,Infinity\n", "rating 'Infinity' is not a finite number"),
    ("1,1,5\n1,2,1e39\n", "rating 1e39 does not fit in float32"),
    ("1,1,5\n1,2,-3.5e38\n", "rating -3.5e38 does not fit in float32"),
    ("1,1,5\n1,2,1e400\n", "rating 1e400 does not fit in float32"),
    ("1,1,5\n1_0,2,4\n", "user id '1_0' is not an integer"),
    ("1,1,5\n\u0663,2,4\n", "user id '\u0663' is not an integer"),
    ("1,1,5,7\n1,2,4,1_000\n", "timestamp '1_000' is not an integer"),
])
def test_numbers_follow_one_grammar_in_every_pass(write, passes, which, text, reason):
    passes(which)
    with pytest.raises(DataError) as info:
        read_ratings(write("n.csv", text), scale=None)
    assert info.value.line == 2 and reason in info.value.reason


def test_float32_edge_and_spellings_that_are_numbers(write):
    edge = "3.4028234e38"  # float32's largest, written short: fits
    ratings = read_ratings(write("e.csv", f"1,1,{edge}\n1,2,+.5e1\n1,3,3.\n1,4,1e-50\n"),
                           scale=None)
    assert ratings.values.tolist() == [np.float32(3.4028234e38), 5, 3, 0]
    assert np.isfinite(ratings.values).all()


def test_dataframes_and_fold_in_files_follow_the_grammar(write):
    frame = pd.DataFrame({"user": [1, 2, 3], "item": [1, 1, 1], "rating": [5.0, 1e39, 4.0]})
    with pytest.raises(DataError, match="row 2: rating 1e[+]39 does not fit in float32"):
        read_ratings(frame, scale=None)
    text = pd.DataFrame({"user": [1, 2], "item": [1, 1], "rating": ["5", "0_4"]})
    with pytest.raises(DataError, match="row 2: rating '0_4' is not a number"):
        read_ratings(text)
    ids = pd.DataFrame({"user": ["1", "1_0"], "item": [1, 1], "rating": [5, 4]})
    with pytest.raises(DataError, match="row 2: user id '1_0' is not an integer"):
        read_ratings(ids, id_type="int")
    for body, reason in [("1,5\n2,0_4\n", "rating is not a number"),
                         ("1,5\n2,1e39\n", "rating does not fit in float32"),
                         ("1,5\n2,nan\n", "rating is not a finite number")]:
        with pytest.raises(DataError, match=f"r.csv:2: {reason}"):
            read_user_ratings(write("r.csv", body))


# ------------------------------------------------------------------ 5. short messages


def test_shorten():
    assert shorten("abc") == "abc"
    assert shorten("x" * 1000) == "x" * 57 + "..."
    assert len(shorten(list(range(10_000)), 200)) == 200


@pytest.mark.parametrize("which", ["compiled", "pandas", "lines"])
def test_long_values_are_shortened_in_messages(write, passes, which):
    passes(which)
    big = "9" * 500_000  # under the line bound: a field read and judged
    for text in (f"1,1,5\n1,2,{big}x\n", f"1,1,5\n{big}x,2,4\n", f"1,1,5\n{big},2,4\n",
                 f"1,1,5,0\n1,2,4,{big}x\n", f'1,1,5\n1,2,"{big}\n'):
        with pytest.raises(DataError) as info:
            read_ratings(write("r.csv", text))
        assert info.value.line == 2 and len(str(info.value)) < 500, str(info.value)[:300]


def test_long_values_are_shortened_for_tables_and_fold_in(write):
    big = "z" * 1_000_000
    for frame in (pd.DataFrame({"user": [1, 2], "item": [1, 1], "rating": [5, big]}),
                  pd.DataFrame({"user": [1, big], "item": [1, 1], "rating": [5, 4]}),
                  pd.DataFrame({"user": [1, 2], "item": [1, 1], big: [5, 4]})):
        with pytest.raises(DataError) as info:
            read_ratings(frame, id_type="int")
        assert len(str(info.value)) < 500
    with pytest.raises(DataError) as info:
        read_ratings(pd.DataFrame({"user": [1], "item": [1], "rating": [5]}),
                     user_col=big)
    assert len(str(info.value)) < 500
    for body in (f"{big},5\n{big},4\n", f"1,5\n2,{big}\n", f"1,5\n{big}x,4,3\n"):
        with pytest.raises(DataError) as info:
            read_user_ratings(write("r.csv", body))
        assert len(str(info.value)) < 500
    with pytest.raises(DataError, match="longer than 1 MiB"):
        read_user_ratings(write("r.csv", "1," + "5" * (2 * source.MAX_LINE_BYTES) + "\n"))


def test_data_error_shortens_whatever_it_is_given():
    error = DataError("rating " + "x" * 100_000 + " is bad", "f.csv", 3, "y" * 100_000)
    assert len(str(error)) < 600 and str(error).startswith("f.csv:3: rating xxx")


# ------------------------------------------------------------------ through the CLI

CLI_CASES = [
    ("quote.csv", b'1,1,5\n1,"2"x,4\n', "quote.csv:2: text after the closing quote"),
    ("underscore.csv", b"1,1,5\n1,2,0_4\n", "underscore.csv:2: rating '0_4'"),
    ("big.csv", b"1,1,5\n1,2,1e39\n", "big.csv:2: rating 1e39 does not fit in float32"),
    ("long.csv", b"1,1,5\n1,2," + b"5" * (2 * MIB) + b"\n", "long.csv:2: line is longer"),
    ("wide.csv", b"1,1,5\n1,2,x" + b"5" * (MIB // 2) + b"\n", "wide.csv:2: rating 'x555"),
]


@pytest.mark.parametrize("name, content, message", CLI_CASES, ids=[c[0] for c in CLI_CASES])
def test_cli_exit_2_with_one_short_line(tmp_path, write, name, content, message):
    path = write(name, content)
    out = tmp_path / "m.npz"
    code, errors = _cli_runner(["train", path, "-o", out, "--scale", "none"])
    assert code == 2 and len(errors) == 1, errors
    assert errors[0].startswith(f"recsys: error: {path.parent}/{message}") or \
        message in errors[0], errors[0][:300]
    assert len(errors[0]) < 600 and not out.exists()
    code, errors = _cli_runner(["train", "-", "-o", out, "--scale", "none"], input=content)
    assert code == 2 and len(errors) == 1 and not out.exists()
    assert errors[0].startswith("recsys: error: <stdin>:2:"), errors[0][:300]
