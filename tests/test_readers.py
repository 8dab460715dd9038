"""Readers: each MovieLens release's exact format, item metadata, generic files, Parquet."""

import gzip

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recsys.data.movielens import read_item_metadata, read_item_titles
from recsys.data.ratings import IdMap, IdMapBuilder
from recsys.data.readers import (
    DEFAULT_SCALE,
    BadLines,
    chunked,
    lines,
    read_pairs,
    read_ratings,
    sniff,
)
from recsys.errors import DataError

# ----------------------------------------------------------------------------- releases


@pytest.fixture()
def fast_only(monkeypatch):
    """Clean files must be read by the vectorized pass alone."""

    def fail(*args, **kwargs):
        raise AssertionError("the line-by-line pass ran on a clean file")

    monkeypatch.setattr(lines, "_slow_read", fail)


def test_ml100k_u_data_and_u_item(tmp_path, fast_only):
    (tmp_path / "u.data").write_text("196\t242\t3\t881250949\n186\t302\t3\t891717742\n"
                                     "22\t377\t1\t878887116\n196\t302\t5\t881251000\n")
    item = ("242|Kolya (1996)|24-Jan-1997||http://us.imdb.com/M/title-exact?Kolya%20(1996)"
            "|0|0|0|0|0|1|0|0|0|0|0|0|0|0|0|0|0|0|0\n"
            "302|L.A. Confidential (1997)|01-Jan-1997||http://x|0|0|0|0|0|0|1|0|0|0|1|0|0"
            "|1|0|0|1|0|0\n"
            "377|Heavyweights (1994)|01-Jan-1994||http://x|0|0|0|0|1|1|0|0|0|0|0|0|0|0|0"
            "|0|0|0|0\n"
            "1000|Caf\xe9 au lait (1994)|01-Jan-1994||x|0|0|0|0|0|1|0|0|0|0|0|0|0|0|0|0|0"
            "|0|0\n")
    (tmp_path / "u.item").write_bytes(item.encode("latin-1"))
    r = read_ratings(tmp_path / "u.data")
    assert (len(r), r.n_users, r.n_items) == (4, 3, 3)
    assert r.raw_users.tolist() == [196, 186, 22, 196]
    assert r.raw_items.tolist() == [242, 302, 377, 302]
    assert r.values.tolist() == [3.0, 3.0, 1.0, 5.0]
    assert r.timestamps.tolist() == [881250949, 891717742, 878887116, 881251000]
    assert r.item_titles == {242: "Kolya (1996)", 302: "L.A. Confidential (1997)",
                             377: "Heavyweights (1994)"}
    meta = read_item_metadata(tmp_path).set_index("item")
    assert meta.loc[1000, "title"] == "Café au lait (1994)"  # Latin-1 decoded
    assert meta.loc[302, "genres"] == "Crime|Film-Noir|Mystery|Thriller"
    assert meta.loc[377, "genres"] == "Children's|Comedy"


def test_ml1m_ratings_dat_and_latin1_movies(tmp_path, fast_only):
    (tmp_path / "ratings.dat").write_text("1::1193::5::978300760\n1::661::3::978302109\n"
                                          "2::1193::4::978298413\n")
    (tmp_path / "movies.dat").write_bytes(
        "1193::One Flew Over the Cuckoo's Nest (1975)::Drama\n"
        "661::James and the Giant Peach (1996)::Animation|Children's|Musical\n"
        "2::Jumanji (1995)::Adventure|Children's|Fantasy\n"
        "3::Misérables, Les (1995)::Drama|Musical\n".encode("latin-1"))
    r = read_ratings(tmp_path / "ratings.dat")
    assert (len(r), r.n_users, r.n_items) == (3, 2, 2)
    assert r.raw_items.tolist() == [1193, 661, 1193]
    assert r.values.tolist() == [5.0, 3.0, 4.0]
    assert r.timestamps.tolist() == [978300760, 978302109, 978298413]
    assert r.item_titles == {1193: "One Flew Over the Cuckoo's Nest (1975)",
                             661: "James and the Giant Peach (1996)"}
    meta = read_item_metadata(tmp_path).set_index("item")
    assert meta.loc[3, "title"] == "Misérables, Les (1995)"
    assert meta.loc[661, "genres"] == "Animation|Children's|Musical"


def test_ml10m_half_stars_and_utf8_movies(tmp_path, fast_only):
    (tmp_path / "ratings.dat").write_text("1::122::5::838985046\n1::185::4.5::838983525\n"
                                          "7::231::0.5::838983392\n7::292::3.5::838983421\n")
    (tmp_path / "movies.dat").write_text("122::Boomerang (1992)::Comedy|Romance\n"
                                         "185::Net, The (1995)::Action|Crime|Thriller\n"
                                         "231::Dumb & Dumber (1994)::Comedy\n"
                                         "292::Outbreak (1995)::Action|Drama|Sci-Fi|Thriller\n"
                                         "5::Père Noël (1982)::Comedy\n", encoding="utf-8")
    r = read_ratings(tmp_path / "ratings.dat")
    assert r.values.tolist() == [5.0, 4.5, 0.5, 3.5]
    assert (r.n_users, r.n_items) == (2, 4)
    assert r.item_titles[185] == "Net, The (1995)"
    assert read_item_metadata(tmp_path).set_index("item").loc[5, "title"] == "Père Noël (1982)"


def test_ml20m_and_later_ratings_csv_and_quoted_movies_csv(tmp_path, fast_only):
    (tmp_path / "ratings.csv").write_text("userId,movieId,rating,timestamp\n"
                                          "1,2,3.5,1112486027\n1,29,3.5,1112484676\n"
                                          "2,11,4.0,974820889\n3,29,0.5,1112484580\n")
    (tmp_path / "movies.csv").write_text(
        "movieId,title,genres\n2,Jumanji (1995),Adventure|Children|Fantasy\n"
        '11,"American President, The (1995)",Comedy|Drama|Romance\n'
        '29,"City of Lost Children, The (Cité des enfants perdus, La) (1995)",'
        "Adventure|Drama|Fantasy|Mystery|Sci-Fi\n", encoding="utf-8")
    r = read_ratings(tmp_path / "ratings.csv")
    assert (len(r), r.n_users, r.n_items) == (4, 3, 3)
    assert r.raw_items.tolist() == [2, 29, 11, 29]
    assert r.values.tolist() == [3.5, 3.5, 4.0, 0.5]
    assert r.timestamps[2] == 974820889
    assert r.item_titles[11] == "American President, The (1995)"
    assert r.item_titles[29] == "City of Lost Children, The (Cité des enfants perdus, La) (1995)"
    meta = read_item_metadata(tmp_path).set_index("item")
    assert meta.loc[29, "genres"] == "Adventure|Drama|Fantasy|Mystery|Sci-Fi"


def test_real_ml100k(ml100k, fast_only):
    r = read_ratings(ml100k / "u.data")
    assert (len(r), r.n_users, r.n_items) == (100_000, 943, 1_682)
    assert r.values.min() == 1 and r.values.max() == 5
    assert r.raw_users[0] == 196 and r.raw_items[0] == 242 and r.values[0] == 3
    assert len(r.item_titles) == 1_682
    assert r.item_titles[1] == "Toy Story (1995)"
    frame = pd.read_csv(ml100k / "u.data", sep="\t", header=None)
    assert (r.raw_users == frame[0].to_numpy()).all()
    assert (r.raw_items == frame[1].to_numpy()).all()
    assert (r.values == frame[2].to_numpy()).all()
    assert (r.timestamps == frame[3].to_numpy()).all()
    titles = read_item_titles(ml100k / "u.data")
    assert titles[1682] == "Scream of Stone (Schrei aus Stein) (1991)"


# ----------------------------------------------------------------------------- generic files


def test_generic_sep_columns_no_header(write, fast_only):
    path = write("r.txt", "5;apple;x;4\n6;pear;y;2\n5;pear;z;1\n")
    r = read_ratings(path, sep=";", columns="user,item,-,rating", header=False)
    assert r.raw_users.tolist() == [5, 6, 5]
    assert r.raw_items.tolist() == ["apple", "pear", "pear"]
    assert r.values.tolist() == [4.0, 2.0, 1.0]
    assert r.timestamps is None


def test_string_ids_and_header_detection(write, fast_only):
    path = write("r.csv", "user,item,rating\nalice,m1,4\nbob,m2,5\nalice,m2,2\n")
    r = read_ratings(path)
    assert r.user_map.to_list() == ["alice", "bob"]
    assert r.item_map.to_list() == ["m1", "m2"]
    assert r.users.tolist() == [0, 1, 0]


def test_gzip(tmp_path, fast_only):
    path = tmp_path / "ratings.csv.gz"
    with gzip.open(path, "wt") as fh:
        fh.write("userId,movieId,rating,timestamp\n1,2,3.5,10\n4,2,5,11\n")
    r = read_ratings(path)
    assert r.raw_users.tolist() == [1, 4] and r.values.tolist() == [3.5, 5.0]


@pytest.mark.parametrize("text", ["\ufeffuserId,movieId,rating\n1,2,3\n4,2,5\n",
                                  "\ufeff1,2,3\n4,2,5\n"])
def test_utf8_bom(write, fast_only, text):
    r = read_ratings(write("r.csv", text))
    assert r.raw_users.tolist() == [1, 4] and r.values.tolist() == [3.0, 5.0]


def test_latin1_text_ids(write):
    r = read_ratings(write("r.csv", "Jos\xe9,Caf\xe9,4\nAna,Caf\xe9,3\n", encoding="latin-1"))
    assert r.user_map.to_list() == ["José", "Ana"] and r.item_map.to_list() == ["Café"]


def test_latin1_byte_past_the_sniffed_head_reads_each_line_once(write):
    """UTF-8 was sniffed from the head; a Latin-1 byte far below switches the decoding
    without giving the lines before it twice."""
    rows = [f"{u},{u},3,ok" for u in range(1, 20_000)]
    rows[15_000] = "15001,15001,3,caf\xe9"
    r = read_ratings(write("r.csv", "user,item,rating,note\n" + "\n".join(rows) + "\n",
                           encoding="latin-1"))
    assert r.raw_users.tolist() == list(range(1, 20_000))


def test_negative_and_huge_integer_ids(write, fast_only):
    path = write("r.csv", f"-5,{2**62},3\n7,{2**62},4\n-5,1,1\n")
    r = read_ratings(path)
    assert r.user_map.to_list() == [-5, 7]
    assert r.item_map.to_list() == [2**62, 1]


def test_read_pairs_keeps_raw_ids(write):
    path = write("p.csv", "user,item\n3,9\n1,9\n")
    frame = read_pairs(path)
    assert frame["user"].tolist() == [3, 1] and frame["item"].tolist() == [9, 9]


@pytest.mark.parametrize("ids", ["int", "sparse", "str"])
def test_many_chunks_match_one_pass(tmp_path, monkeypatch, fast_only, ids):
    """Reading in many small chunks gives exactly what pandas reads in one go."""
    rng = np.random.default_rng(3)
    n = 5_000
    users = rng.integers(1, 300, n)
    items = rng.integers(1, 200, n)
    if ids == "sparse":  # the dense table gives way to the hash midway
        users = np.where(np.arange(n) > 2_500, users * 10**12, users)
    frame = pd.DataFrame({"user": users, "item": items,
                          "rating": rng.integers(1, 6, n), "timestamp": np.arange(n)})
    if ids == "str":
        frame["user"] = "u" + frame["user"].astype(str)
    path = tmp_path / "r.csv"
    frame.to_csv(path, index=False)
    monkeypatch.setattr(chunked, "_CHUNK_ROWS", 333)
    r = read_ratings(path, duplicates="allow")
    assert r.raw_users.tolist() == frame["user"].tolist()
    assert r.raw_items.tolist() == frame["item"].tolist()
    assert r.values.tolist() == frame["rating"].astype(float).tolist()
    assert r.timestamps.tolist() == list(range(n))
    expected, _ = IdMap.from_values(frame["user"].to_numpy())
    assert r.user_map == expected


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.integers(-3, 40), max_size=30), max_size=6))
def test_id_map_builder_equals_factorize(chunks):
    builder = IdMapBuilder()
    codes = [builder.codes(np.array(c, dtype=np.int64)) for c in chunks]
    flat = np.array([x for c in chunks for x in c], dtype=np.int64)
    expected_map, expected_codes = IdMap.from_values(flat)
    assert builder.build() == expected_map
    got = np.concatenate(codes) if codes else np.empty(0, np.int32)
    assert got.tolist() == expected_codes.tolist()


# ----------------------------------------------------------------------------- Parquet


def test_parquet(tmp_path):
    pytest.importorskip("pyarrow")
    frame = pd.DataFrame({"userId": ["a", "b", "a"], "movieId": [10, 20, 20],
                          "rating": [4.0, 3.5, 5.0], "timestamp": [1, 2, 3]})
    path = tmp_path / "r.parquet"
    frame.to_parquet(path)
    r = read_ratings(path)
    assert r.raw_users.tolist() == ["a", "b", "a"]
    assert r.raw_items.tolist() == [10, 20, 20]
    assert r.values.tolist() == [4.0, 3.5, 5.0]
    assert r.timestamps.tolist() == [1, 2, 3]


def test_parquet_bad_rows(tmp_path):
    pytest.importorskip("pyarrow")
    frame = pd.DataFrame({"user": [1, 2, 3, 4], "item": [1, 1, 1, 1],
                          "rating": [4.0, np.nan, 9.0, 2.0]})
    path = tmp_path / "r.parquet"
    frame.to_parquet(path)
    with pytest.raises(DataError, match=r"r.parquet: row 2: rating 'nan' is not a finite number"):
        read_ratings(path)
    report = BadLines()
    r = read_ratings(path, skip_bad_lines=True, report=report)
    assert r.raw_users.tolist() == [1, 4]
    assert report.count == 2
    assert report.examples[1].endswith("r.parquet: row 3: rating 9.0 is outside the scale 0.5..5 "
                                       "(set the scale with --scale MIN,MAX)")


# ----------------------------------------------------------------------------- both passes

_FIELDS = st.sampled_from(["1", "2", "17", "9", "5", "3.0", "4.5", "0.5"] * 4 + [
    "-3", "x", "", " 4", "nan", "inf", "1e0", "+2", '"2"', "6", "0", "2.25",
    # quoting (RFC 4180) and the number grammar
    '"1"', '"4.5"', '" 3"', ' "3"', '"3" ', '"3', '3"', '"3"x', '""', '"""3"', '"1,2"',
    '"\t"', '"a""b"', "0_4", "1_0", "1e39", "-1e39", "0x10", "Infinity", "\u0663", "1e-400",
    "3.", ".5", "1e", "4e-1"])


@settings(max_examples=150, deadline=None)
@given(st.sampled_from([",", "\t", "::", ";"]),
       st.lists(st.lists(_FIELDS, min_size=3, max_size=4), min_size=1, max_size=12))
def test_fast_and_slow_passes_agree(tmp_path_factory, sep, rows):
    """Whatever the vectorized pass accepts, the line-by-line pass accepts the same way."""
    rows = [["1", "1", "3", "7"][: len(rows[0])]] + rows  # a clean first line: the layout
    path = tmp_path_factory.mktemp("agree") / "r.txt"
    path.write_text("".join(sep.join(r) + "\n" for r in rows))
    layout = sniff(path)
    fast = chunked._fast_read(path, layout, DEFAULT_SCALE)
    raw, _, bad = lines._slow_read(path, layout, DEFAULT_SCALE, True)
    if fast is None:
        return
    assert bad.count == 0, bad.examples
    assert fast["user_map"].ids[fast["user"]].tolist() == raw["user"].tolist()
    assert fast["item_map"].ids[fast["item"]].tolist() == raw["item"].tolist()
    assert fast["rating"].tolist() == raw["rating"].astype("float32").tolist()
    if "timestamp" in raw:
        assert fast["timestamp"].tolist() == raw["timestamp"].tolist()


def test_integral_float_ids_read_the_same_in_both_passes(write, monkeypatch):
    """'12.0' is id 12 (as written by tools that store ids as floats), fast or slow."""
    text = "12.0,7,4,1.0e9\n13,7.0,3,1000000000\n"
    fast = read_ratings(write("a.csv", text))
    monkeypatch.setattr(chunked, "_fast_read", lambda *a, **k: None)
    slow = read_ratings(write("b.csv", text))
    for r in (fast, slow):
        assert r.raw_users.tolist() == [12, 13] and r.raw_items.tolist() == [7, 7]
        assert r.timestamps.tolist() == [10**9, 10**9]
    with pytest.raises(DataError, match="user id '12.5' is not an integer"):
        read_ratings(write("c.csv", "12,7,4\n12.5,7,4\n"))
