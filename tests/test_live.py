"""Live updates without the web layer: the row solve, the ratings log, replay and folding.

The solve is checked against its closed form (recursive least squares: the update of a
row that is the fold-in of old ratings equals the fold-in of old and new together), new
users against the fold-in itself, and replays against batching. The log is checked for
durability's contract: sequence numbers, a torn tail set aside, rewrites that keep
counting, concurrent writers, and a clear error naming a bad line.
"""

import json
import multiprocessing
import tempfile
from pathlib import Path

import numpy as np
import pytest

from recsys import FunkSVD, RankingMF
from recsys.errors import DataError
from recsys.models.foldin import fold_in
from recsys.models.live import LiveRows, fold_log, live_solve
from recsys.models.registry import load, save
from recsys.persist.ratings_log import Entry, RatingsLog, covered_through


@pytest.fixture(scope="module")
def model(small_ratings):
    return FunkSVD(n_factors=6, n_epochs=25, reg=0.05, seed=3).fit(small_ratings)


def _entries(rows, start=1):
    return [Entry(n, u, i, float(r)) for n, (u, i, r) in enumerate(rows, start)]


# ----------------------------------------------------------------------------- the solve

@pytest.mark.parametrize("penalty", ["per rating", "constant"])
def test_updating_a_fold_in_row_equals_the_fold_in_of_all_ratings(penalty):
    rng = np.random.default_rng(0)
    Q, bi, mu = rng.normal(size=(40, 5)), rng.normal(0, 0.3, 40), 3.5
    old, new = rng.choice(40, 12, replace=False), rng.choice(40, 4, replace=False)
    y_old, y_new = rng.uniform(1, 5, 12), rng.uniform(1, 5, 4)

    def penalties(m):
        return (0.05 * m, 0.02 * m) if penalty == "per rating" else (0.7, 15.0)

    x0, b0 = fold_in(Q, bi, mu, old, y_old, *penalties(12))
    p, b = live_solve(Q, bi, mu, old, x0, b0, penalties, new, y_new)
    p_all, b_all = fold_in(Q, bi, mu, np.r_[old, new], np.r_[y_old, y_new], *penalties(16))
    np.testing.assert_allclose(p, p_all, rtol=1e-10, atol=1e-12)
    assert b == pytest.approx(b_all, rel=1e-10, abs=1e-12)


def test_a_new_users_live_row_is_the_fold_in(model):
    live = LiveRows(model)
    items = model.state_.item_map.ids[[0, 3, 5]].tolist()
    live.apply(_entries([(10**6, i, r) for i, r in zip(items, [5, 4, 2], strict=True)]))
    u = live.user_index(10**6)
    p, b = model.fold_in((items, [5.0, 4.0, 2.0]))
    np.testing.assert_array_equal(live.P[u], p)
    assert live.user_bias[u] == b
    assert u == model.state_.n_users and live.new_users == [10**6]


def test_a_known_users_row_moves_toward_the_new_rating_and_the_model_is_untouched(model):
    state = model.state_
    before = state.factors.user_factors.copy()
    user = state.user_map.ids[2].item()
    item = state.item_map.ids[7].item()
    old = float(model.predict([user], [item])[0])
    live = LiveRows(model)
    live.apply(_entries([(user, item, 5.0)]))
    u = live.user_index(user)
    moved = (state.factors.mu + live.user_bias[u] + state.factors.item_bias[7]
             + live.P[u] @ state.factors.item_factors[7])
    assert moved > old
    np.testing.assert_array_equal(state.factors.user_factors, before)
    assert live.changed == {u}


def test_the_rows_do_not_depend_on_how_the_ratings_were_batched(model):
    ids = model.state_.item_map.ids
    users = model.state_.user_map.ids
    rows = [(users[n % 5].item(), ids[(7 * n) % len(ids)].item(), 1 + n % 5)
            for n in range(30)] + [(10**6 + 1, ids[1].item(), 4), (10**6 + 1, ids[1].item(), 2)]
    entries = _entries(rows)
    one = LiveRows(model)
    one.apply(entries)
    many = LiveRows(model)
    for e in entries:
        many.apply([e])
    np.testing.assert_array_equal(one.P, many.P)
    np.testing.assert_array_equal(one.user_bias, many.user_bias)
    again = LiveRows(model)
    again.apply(entries)
    again.apply(entries)  # entries already applied (seq <= through) are skipped
    np.testing.assert_array_equal(again.P, one.P)
    assert again.count == len(entries)


def test_checks_name_the_row_and_refuse_unknown_items_and_bad_values(model):
    live = LiveRows(model)
    lookup = lambda raw: int(model.state_.item_map.indices([raw])[0])  # noqa: E731
    item = model.state_.item_map.ids[0].item()
    user = model.state_.user_map.ids[0].item()
    checked = live.check([(user, item, 4.0, None), ("7", item, 3.0, 12)], lookup)
    assert checked[1][0] == 7  # the model's user ids are integers
    with pytest.raises(ValueError, match=r"ratings\.1: unknown item 'nope'"):
        live.check([(user, item, 4.0, None), (user, "nope", 4.0, None)], lookup)
    with pytest.raises(ValueError, match=r"ratings\.0: .*rating 11 is outside"):
        live.check([(user, item, 11.0, None)], lookup)
    with pytest.raises(ValueError, match="integers, not 'abc'"):
        live.check([("abc", item, 3.0, None)], lookup)


def test_models_without_a_least_squares_row_refuse_live_updates(small_ratings):
    ranking = RankingMF(n_factors=4, n_epochs=2).fit(small_ratings)
    with pytest.raises(TypeError, match="RankingMF models take no live updates"):
        LiveRows(ranking)


def test_folding_a_log_gives_the_live_rows_and_records_what_it_covers(model, tmp_path):
    ids = model.state_.item_map.ids
    entries = _entries([(1, ids[0].item(), 5), (10**6, ids[2].item(), 1)])
    live = LiveRows(model)
    live.apply(entries)
    child = fold_log(_copy(model), entries, tmp_path / "r.log")
    u = child.state_.user_map.indices([10**6])[0]
    np.testing.assert_array_equal(child.state_.factors.user_factors, live.P)
    assert u == live.user_index(10**6)
    assert covered_through(child.state_.lineage) == 2
    assert child.state_.lineage.parent == model.state_.digest()
    ptr, idx = child.state_.seen
    assert idx[ptr[u]:ptr[u + 1]].tolist() == [2]
    child.state_.check()


def _copy(model):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "m.npz"
        save(model, path)
        return load(path)


# ----------------------------------------------------------------------------- the log

def test_the_log_numbers_entries_and_reads_them_back(tmp_path):
    log = RatingsLog(tmp_path / "r.log")
    first = log.append([(1, 2, 4.0, None), ("u", "i", 3.5, 99)])
    second = log.append([(3, 4, 1.0, None)])
    assert [e.seq for e in first + second] == [1, 2, 3]
    assert log.read() == first + second
    assert log.read(after=2) == second
    assert RatingsLog(tmp_path / "r.log").last_seq() == 3


def test_a_torn_tail_is_set_aside_and_the_complete_lines_replay(tmp_path):
    path = tmp_path / "r.log"
    log = RatingsLog(path)
    log.append([(1, 2, 4.0, None), (1, 3, 5.0, None)])
    with open(path, "ab") as fh:
        fh.write(b'{"seq": 3, "user": 1, "ite')  # a crash in the middle of a write
    assert [e.seq for e in RatingsLog(path).read()] == [1, 2]
    assert (tmp_path / "r.log.torn").read_bytes() == b'{"seq": 3, "user": 1, "ite\n'
    assert path.read_bytes().endswith(b"\n")
    again = RatingsLog(path).append([(9, 9, 1.0, None)])
    assert again[0].seq == 3


def test_retiring_rewrites_the_log_and_numbers_keep_counting(tmp_path):
    path = tmp_path / "r.log"
    log = RatingsLog(path)
    log.append([(n, n, 3.0, None) for n in range(1, 6)])
    follower = RatingsLog(path)
    assert [e.seq for e in follower.follow(0)] == [1, 2, 3, 4, 5]
    assert log.retire(3) == 3
    assert [e.seq for e in log.read()] == [4, 5] and log.retired_through() == 3
    log.append([(7, 7, 2.0, None)])
    assert follower.changed()
    assert [e.seq for e in follower.follow(5)] == [6]
    assert not follower.changed()
    log.retire(6)
    assert log.read() == [] and log.append([(1, 1, 1.0, None)])[0].seq == 7


def test_a_bad_line_is_an_error_naming_the_file_and_line(tmp_path):
    path = tmp_path / "r.log"
    path.write_text('{"seq": 1, "user": 1, "item": 2, "rating": 4}\n{"seq": 2, "user": 1}\n')
    with pytest.raises(DataError, match=r"r\.log:2: not a ratings log entry"):
        RatingsLog(path).read()
    path.write_text('{"seq": 2, "user": 1, "item": 2, "rating": 4}\n'
                    '{"seq": 1, "user": 1, "item": 3, "rating": 4}\n')
    with pytest.raises(DataError, match=r"r\.log:2: sequence number 1 does not follow 2"):
        RatingsLog(path).read()
    path.write_text('{"seq": 1, "user": 1, "item": 2, "rating": NaN}\n')
    with pytest.raises(DataError, match=r"r\.log:1: "):
        RatingsLog(path).read()


def _append_many(path, tag, n):
    log = RatingsLog(path)
    for k in range(n):
        log.append([(f"{tag}-{k}", 1, 3.0, None)])


def test_writers_in_several_processes_get_distinct_numbers(tmp_path):
    path = tmp_path / "r.log"
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_append_many, args=(path, tag, 60)) for tag in "ab"]
    for w in workers:
        w.start()
    for w in workers:
        w.join(120)
        assert w.exitcode == 0
    entries = RatingsLog(path).read()
    assert [e.seq for e in entries] == list(range(1, 121))
    assert sorted(e.user for e in entries) == sorted(f"{t}-{k}" for t in "ab" for k in range(60))
    assert all(json.loads(line) for line in path.read_text().splitlines())
