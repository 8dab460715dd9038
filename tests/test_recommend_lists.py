"""Top-N lists as users ask for them: candidates and exclusions, short lists never padded
with a real id, a long DataFrame, and the batch command."""

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from recsys.cli import main
from recsys.data.ratings import IdMap, Ratings
from recsys.models.funksvd import FunkSVD


@pytest.fixture(scope="module")
def model(small_ratings):
    return FunkSVD(n_factors=4, n_epochs=5, reg=0.05, seed=2).fit(small_ratings)


def test_candidates_and_exclusions(model, small_ratings):
    user = small_ratings.user_map.id_of(4)
    ids = small_ratings.item_map.ids
    candidates = ids[:10].tolist() + [10 ** 9]  # an unknown candidate is ignored
    items, scores = model.recommend(user, n=5, items=candidates)
    seen = set(small_ratings.raw_items[small_ratings.users == 4].tolist())
    assert set(items.tolist()) <= set(candidates) - seen
    everything, _ = model.recommend(user, n=len(ids), exclude_seen=True)
    best = [i for i in everything.tolist() if i in set(candidates)][:5]
    assert items.tolist() == best
    excluded = everything[:3].tolist()
    rest, _ = model.recommend(user, n=5, exclude=excluded)
    assert rest.tolist() == everything[3:8].tolist()
    from recsys.errors import UnknownIdError

    with pytest.raises(UnknownIdError):
        model.recommend(user, n=5, items=candidates, strict=True)


def test_short_lists_are_padded_with_an_id_the_model_does_not_have(model, small_ratings):
    user = small_ratings.user_map.id_of(0)
    ids, scores = model.recommend_many([user], n=50, items=small_ratings.item_map.ids[:6])
    pad = model.item_map_.absent_id()
    filled = np.isfinite(scores[0])
    assert not (ids[0][~filled] == small_ratings.item_map.ids[:, None]).any()
    assert (ids[0][~filled] == pad).all() and pad not in model.item_map_
    assert filled.sum() <= 6


def test_absent_ids_of_maps_that_hold_the_usual_sentinels():
    low = np.iinfo(np.int64).min
    assert IdMap(np.array([low, low + 1, 5])).absent_id() == low + 2
    assert IdMap(np.array(["", "a"])).absent_id() == "\ufffd0"


def test_recommend_frame_is_long_and_short_lists_stay_short(small_ratings):
    ratings = Ratings.from_raw([1, 1, 1, 2], [10, 20, 30, 10], [4.0, 3.0, 5.0, 2.0])
    model = FunkSVD(n_factors=2, n_epochs=3, reg=0.05).fit(ratings)
    frame = model.recommend_frame([1, 2], n=3)
    assert list(frame.columns) == ["user", "rank", "item", "score"]
    assert frame[frame.user == 1].empty  # user 1 has seen every item
    assert frame[frame.user == 2]["rank"].tolist() == [1, 2]
    assert set(frame[frame.user == 2]["item"]) == {20, 30}


def test_batch_command_writes_every_users_list(tmp_path, model, small_ratings):
    path = tmp_path / "m.npz"
    model.save(path)
    out = tmp_path / "all.csv"
    result = CliRunner().invoke(main, ["recommend", str(path), "--all", "-n", "3", "-o",
                                       str(out)])
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(out)
    assert len(frame) == 3 * small_ratings.n_users
    want = model.recommend_frame(small_ratings.user_map.ids, n=3)
    np.testing.assert_array_equal(frame["item"].to_numpy(), want["item"].to_numpy())
    users = tmp_path / "users.txt"
    users.write_text("# some users\n" + "\n".join(str(u) for u in small_ratings.user_map.ids[:4]))
    result = CliRunner().invoke(main, ["recommend", str(path), "--users", str(users), "-n", "2",
                                       "--format", "json"])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.output.splitlines() if line.startswith("{")]
    assert [d["user"] for d in lines] == small_ratings.user_map.ids[:4].tolist()
    assert all(len(d["items"]) == 2 for d in lines)
    for args in (["recommend", str(path)], ["recommend", str(path), "1", "--all"]):
        assert CliRunner().invoke(main, args).exit_code == 2
