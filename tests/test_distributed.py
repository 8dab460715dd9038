"""Blocked SGD on a Dask cluster (recsys.distributed): the in-process model, bit for bit,
whatever the number of worker processes. One LocalCluster of worker processes for the
module; every wait has a timeout."""

import numpy as np
import pytest

from recsys import FunkSVD
from recsys.data.split import split_off
from recsys.data.synth import SynthSpec, generate
from recsys.distributed.layout import Layout, bounds, meets, partner
from recsys.training.strata import contiguous_blocks, draw_order

WAIT = 60  # seconds for any one wait on the cluster
# a fit on a cluster has no warm-up (recsys.models.factorization._check_distributed)
PARAMS = dict(n_factors=8, n_epochs=4, reg=0.05, grid=6, seed=3, n_jobs=2, warmup_epochs=0)


@pytest.fixture(scope="module")
def ratings():
    data, _ = generate(SynthSpec(n_users=300, n_items=200, n_ratings=6_000, rank=3,
                                 noise=0.3, seed=5))
    return data


@pytest.fixture(scope="module")
def client():
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(n_workers=3, threads_per_worker=2, processes=True,
                                       dashboard_address=":0", worker_dashboard_address=":0")
    client = distributed.Client(cluster, timeout=WAIT)
    client.wait_for_workers(3, timeout=WAIT)
    yield client
    client.close(timeout=WAIT)
    cluster.close(timeout=WAIT)


def backend(client, n_workers):
    from recsys.distributed.backend import DaskBackend

    return DaskBackend(client, timeout=WAIT, n_workers=n_workers)


def same_arrays(a, b):
    fa, fb = a.state_.factors, b.state_.factors
    return [np.array_equal(x, y) for x, y in zip(fa.arrays(), fb.arrays())]


def without_seconds(history):
    return [{k: v for k, v in h.items() if k != "seconds"} for h in history]


# ------------------------------------------------------------------- the layout alone


def test_layout_splits_user_blocks_into_contiguous_ranges():
    counts = np.array([5, 0, 3, 9, 1, 1, 7, 2, 0, 4])
    block = contiguous_blocks(counts, 4)
    edges = bounds(block, 4)
    assert edges[0] == 0 and edges[-1] == len(counts)
    for a in range(4):
        assert (block[edges[a]:edges[a + 1]] == a).all()
    layout = Layout.build(block, block, 4, 3)
    assert [layout.user_blocks(w) for w in range(3)] == [(0, 2), (2, 3), (3, 4)]
    assert list(layout.owner) == [0, 0, 1, 2]
    assert Layout.build(block, block, 4, 9).n_workers == 4  # never more workers than blocks


def test_meets_inverts_partner():
    shifts, cols = draw_order(np.random.default_rng(1), 7)
    for s in range(7):
        assert sorted(partner(cols, shifts, a, s) for a in range(7)) == list(range(7))
        for a in range(7):
            assert meets(cols, shifts, partner(cols, shifts, a, s), s) == a


def test_bounds_refuse_blocks_that_are_not_ranges():
    with pytest.raises(ValueError, match="contiguous"):
        bounds(np.array([0, 1, 0]), 2)


# --------------------------------------------------------------------- on the cluster


@pytest.mark.parametrize("schedule", ["constant", "adagrad", "bold"])
def test_one_two_and_three_workers_give_the_in_process_model(client, ratings, schedule):
    params = {**PARAMS, "lr_schedule": schedule}
    local = FunkSVD(**params).fit(ratings)
    for n in (1, 2, 3):
        fit = backend(client, n)
        remote = FunkSVD(**params).fit(ratings, client=fit)
        assert same_arrays(local, remote) == [True] * 4, (schedule, n)
        assert local.state_.factors.mu == remote.state_.factors.mu
        assert without_seconds(remote.history_) == without_seconds(local.history_)
        # item blocks moved between processes exactly when there was more than one
        assert (sum(fit.bytes_sent) > 0) == (n > 1)
        # and as many bytes as the stratum order sends to another worker
        assert fit.bytes_sent == fit.bytes_predicted and len(fit.bytes_sent) == 4
        if schedule == "constant":  # what bench_dask reads off the workers
            stats = fit.worker_stats
            assert len(stats) == n and all(st["peak_rss"] > 20 * 2**20 for st in stats)
            # a lone worker runs whole epochs; the others' blocks take part of their epochs
            for st in stats:
                if n == 1:
                    assert st["epoch_seconds"] == st["kernel_seconds"] == 0.0
                else:
                    assert 0 < st["kernel_seconds"] < st["epoch_seconds"] * st["threads"]


def test_validation_and_early_stopping_match_the_in_process_fit(client, ratings):
    train, valid = split_off(ratings, 0.2, 1)
    params = {**PARAMS, "n_epochs": 30, "lr": 0.02, "early_stopping": 2}
    seen_local, seen_remote = [], []
    local = FunkSVD(**params).fit(train, validation=valid, callback=seen_local.append)
    remote = FunkSVD(**params).fit(train, validation=valid, callback=seen_remote.append,
                                   client=backend(client, 3))
    assert len(seen_local) < 30  # it did stop early
    assert [i.valid_rmse for i in seen_remote] == [i.valid_rmse for i in seen_local]
    assert [i.train_rmse for i in seen_remote] == [i.train_rmse for i in seen_local]
    assert remote.best_epoch_ == local.best_epoch_
    assert same_arrays(local, remote) == [True] * 4


def test_the_saved_model_files_are_the_same(client, ratings, tmp_path):
    local = FunkSVD(**PARAMS).fit(ratings)
    remote = FunkSVD(**PARAMS).fit(ratings, client=backend(client, 2))
    local.save(tmp_path / "local.npz")
    remote.save(tmp_path / "remote.npz")
    loaded = FunkSVD.load(tmp_path / "remote.npz")
    assert same_arrays(local, loaded) == [True] * 4
    assert loaded.state_.digest() == FunkSVD.load(tmp_path / "local.npz").state_.digest()


def test_a_client_trains_sgd_on_the_cpu_only(client, ratings):
    with pytest.raises(ValueError, match="method 'sgd'"):
        FunkSVD(**{**PARAMS, "method": "gd"}).fit(ratings, client=backend(client, 1))


# ------------------------------------------------------------------ the command line


def recsys(*args, timeout=120, prelude=""):
    import subprocess
    import sys

    code = f"{prelude}from recsys.cli import main; main({list(args)!r})"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=timeout)


CLI_PARAMS = ["--factors", "8", "--epochs", "3", "--reg", "0.05", "--seed", "2",
              "--warmup-epochs", "0"]


def write_csv(ratings, path):
    from recsys.data.synth import write_csv

    write_csv(ratings, path)
    return str(path)


@pytest.fixture(scope="module")
def cli_case(tmp_path_factory):
    """A ratings file big enough for a grid of 3 blocks a side (chosen from the sizes),
    and the model an in-process fit of CLI_PARAMS makes of it."""
    from recsys.data.readers import read_ratings

    folder = tmp_path_factory.mktemp("cli")
    ratings, _ = generate(SynthSpec(n_users=400, n_items=300, n_ratings=20_000, rank=3,
                                    seed=6))
    data = write_csv(ratings, folder / "r.csv")
    model = FunkSVD(n_factors=8, n_epochs=3, reg=0.05, seed=2, warmup_epochs=0).fit(
        read_ratings(data))
    return data, model


@pytest.mark.parametrize("where", ["scheduler", "local"])
def test_train_on_a_cluster_writes_the_in_process_model(client, cli_case, tmp_path, where):
    data, here = cli_case
    cluster = (["--scheduler", client.scheduler.address] if where == "scheduler"
               else ["--dask-workers", "2", "--worker-memory", "1GiB", "--checkpoint",
                     str(tmp_path / "ckpt")])
    there = recsys("train", data, "-o", str(tmp_path / "there.npz"), *CLI_PARAMS, *cluster,
                   "--dask-timeout", str(WAIT))
    assert there.returncode == 0, there.stderr
    lines = there.stdout.splitlines()
    assert lines[0].split() == ["epoch", "train_rmse", "seconds"]
    # the same training RMSE, epoch by epoch, as printed
    assert [ln.split()[:2] for ln in lines[1:]] == [
        [str(h["epoch"]), f"{h['train_rmse']:.4f}"] for h in here.history_]
    b = FunkSVD.load(tmp_path / "there.npz")
    assert b.state_.digest() == here.state_.digest()
    if where == "local":  # the checkpoint of the last epoch
        assert (tmp_path / "ckpt" / "epoch-00003").is_dir()
    assert same_arrays(here, b) == [True] * 4


def test_an_unreachable_scheduler_is_one_line_and_exit_2(tmp_path, small_ratings):
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data = write_csv(small_ratings, tmp_path / "r.csv")
    out = recsys("train", data, "-o", str(tmp_path / "m.npz"), "--scheduler",
                 f"tcp://127.0.0.1:{port}", "--dask-timeout", "1", timeout=WAIT)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [out.stderr.strip()]
    assert f"cannot reach the Dask scheduler at tcp://127.0.0.1:{port} within 1 s" in out.stderr
    assert not (tmp_path / "m.npz").exists()


def test_without_the_extra_train_says_how_to_install_it(tmp_path, small_ratings):
    data = write_csv(small_ratings, tmp_path / "r.csv")
    out = recsys("train", data, "-o", str(tmp_path / "m.npz"), "--dask-workers", "2",
                 prelude="import sys; sys.modules['distributed'] = None; ", timeout=WAIT)
    assert out.returncode == 2
    assert "needs the dask extra" in out.stderr and "recsys-mf[dask]" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_cluster_options_are_checked(tmp_path, small_ratings):
    data = write_csv(small_ratings, tmp_path / "r.csv")
    both = recsys("train", data, "-o", str(tmp_path / "m.npz"), "--dask-workers", "2",
                  "--scheduler", "tcp://127.0.0.1:1", timeout=WAIT)
    assert both.returncode == 2 and "not both" in both.stderr
    size = recsys("train", data, "-o", str(tmp_path / "m.npz"), "--dask-workers", "1",
                  "--worker-memory", "lots", timeout=WAIT)
    assert size.returncode == 2 and "'lots' is not a size" in size.stderr


# ------------------------------------------------------------------------ partitions


@pytest.fixture(scope="module")
def partitioned(ratings, tmp_path_factory):
    from recsys.distributed.partition import write_partition

    folder = tmp_path_factory.mktemp("part") / "p"
    write_partition(ratings, folder, 6)
    return folder


def test_a_partition_holds_every_rating_once_in_its_blocks(ratings, partitioned):
    import json

    from recsys.distributed.partition import Partition, read_blocks

    part = Partition.open(partitioned)
    manifest = json.loads((partitioned / "manifest.json").read_text())
    assert part.grid == 6 and len(part) == len(ratings) == sum(manifest["counts"])
    assert manifest["lineage"]["sha256"] == ratings.digest()
    assert list(part.user_map.ids) == list(ratings.user_map.ids)
    users, items, values, ptr = read_blocks(partitioned, manifest, 0, 6)
    pairs = sorted(zip(users.tolist(), items.tolist(), values.tolist()))
    assert pairs == sorted(zip(ratings.users.tolist(), ratings.items.tolist(),
                               ratings.values.tolist()))
    assert not [p for p in partitioned.parent.iterdir() if p.name.startswith(".")]


def test_a_partition_trains_the_in_process_model_reading_only_each_workers_blocks(
        client, ratings, partitioned):
    local = FunkSVD(**PARAMS).fit(ratings)
    for n in (2, 3):
        fit = backend(client, n)
        remote = FunkSVD(**PARAMS).fit(str(partitioned), client=fit)
        assert same_arrays(local, remote) == [True] * 4
        assert remote.state_.digest() == local.state_.digest()
        assert [np.array_equal(a, b) for a, b in zip(remote.state_.seen, local.state_.seen)] \
            == [True, True]
        assert sum(fit.ratings_held) == len(ratings)
        assert len(fit.ratings_held) == n and max(fit.ratings_held) < len(ratings)


def test_a_damaged_block_is_named(client, ratings, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from recsys.distributed.partition import write_partition
    from recsys.errors import DataError

    folder = tmp_path / "p"
    write_partition(ratings, folder, 6)
    pq.write_table(pa.table({"user": np.array([0], np.int32), "item": np.array([0], np.int32),
                             "rating": np.array([3], np.float32)}), folder / "blocks/00007.parquet")
    with pytest.raises(DataError, match="00007.parquet: block 7 holds 1 ratings"):
        FunkSVD(**PARAMS).fit(str(folder), client=backend(client, 2))


def test_partition_and_train_on_the_command_line(client, cli_case, tmp_path):
    data, here = cli_case
    folder = tmp_path / "blocks"
    made = recsys("partition", data, "-o", str(folder), "--grid", "3")
    assert made.returncode == 0, made.stderr
    assert len(list((folder / "blocks").iterdir())) == 9
    there = recsys("train", str(folder), "-o", str(tmp_path / "m.npz"), *CLI_PARAMS,
                   "--scheduler", client.scheduler.address, "--dask-timeout", str(WAIT))
    assert there.returncode == 0, there.stderr
    # the grid chosen for cli_case's in-process fit is 3 too
    assert FunkSVD.load(tmp_path / "m.npz").state_.digest() == here.state_.digest()
    alone = recsys("train", str(folder), "-o", str(tmp_path / "x.npz"), "--reg", "0.05")
    assert alone.returncode == 2 and "is a partition" in alone.stderr


def test_a_worker_that_cannot_hold_its_share_fails_before_any_data_moves(tmp_path):
    distributed = pytest.importorskip("distributed")
    from recsys.errors import ResourceError

    tiny, _ = generate(SynthSpec(n_users=40, n_items=30, n_ratings=600, rank=2, seed=1))
    # 40 users x 400,000 factors: 64 MB of P rows on the one worker (and its Q), over a
    # limit of 160 MiB with what the worker already uses and the margin for a snapshot
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                                  memory_limit="160MiB", dashboard_address=":0",
                                  worker_dashboard_address=":0") as cluster, \
            distributed.Client(cluster, timeout=WAIT) as c:
        c.wait_for_workers(1, timeout=WAIT)
        with pytest.raises(ResourceError, match=r"needs about .* memory limit is 160\.0 MiB"):
            FunkSVD(n_factors=400_000, n_epochs=1, reg=0.05, grid=1, warmup_epochs=0).fit(
                tiny, client=backend(c, None))


# ---------------------------------------------------------------------------- faults


def test_a_worker_killed_during_a_fit_is_recovered_from_the_checkpoint(client, ratings,
                                                                       tmp_path, caplog):
    import logging
    import os
    import signal

    params = {**PARAMS, "n_epochs": 5, "lr_schedule": "adagrad"}
    local = FunkSVD(**params).fit(ratings)
    pids = client.run(os.getpid)  # address -> pid of each worker process
    victim = sorted(pids)[1]

    def kill_after_epoch_2(info):
        if info.epoch == 2:
            os.kill(pids[victim], signal.SIGKILL)

    fit = backend(client, None)
    fit.checkpoint = str(tmp_path / "ckpt")
    (tmp_path / "ckpt" / "epoch-00009").mkdir(parents=True)  # of an earlier, longer fit
    (tmp_path / "ckpt" / "notes.txt").write_text("kept")
    with caplog.at_level(logging.WARNING, logger="recsys.distributed.backend"):
        remote = FunkSVD(**params).fit(ratings, client=fit, callback=kill_after_epoch_2)
    reruns = [r.getMessage() for r in caplog.records if "runs again" in r.getMessage()]
    assert len(reruns) == 1
    assert "lost in epoch 3" in reruns[0] and "checkpoint of epoch 2" in reruns[0]
    assert same_arrays(local, remote) == [True] * 4
    assert without_seconds(remote.history_) == without_seconds(local.history_)
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == [
        "epoch-00005", "latest.json", "notes.txt"]
    client.wait_for_workers(3, timeout=WAIT)  # the nanny starts the lost one again


def test_a_worker_killed_in_the_middle_of_an_epoch_is_replaced_and_the_epoch_runs_again(
        client, ratings, tmp_path, caplog):
    import logging

    params = {**PARAMS, "n_epochs": 4}
    local = FunkSVD(**params).fit(ratings)
    fit = backend(client, 3)
    fit.checkpoint = str(tmp_path / "ckpt")
    armed = []

    def arm(info):  # between epochs 2 and 3: worker 1 dies after 5 of its 12 blocks
        if info.epoch == 2:
            armed.append(fit.actors[1].fail_after(3, 5).result(timeout=WAIT))

    with caplog.at_level(logging.WARNING, logger="recsys.distributed.backend"):
        remote = FunkSVD(**params).fit(ratings, client=fit, callback=arm)
    assert armed == [5]
    reruns = [r.getMessage() for r in caplog.records if "runs again" in r.getMessage()]
    assert len(reruns) == 1
    assert "lost in epoch 3" in reruns[0] and "checkpoint of epoch 2" in reruns[0]
    assert same_arrays(local, remote) == [True] * 4
    assert without_seconds(remote.history_) == without_seconds(local.history_)
    assert fit.bytes_sent == fit.bytes_predicted  # the re-run epoch's too
    client.wait_for_workers(3, timeout=WAIT)  # the nanny starts the lost one again


def test_without_a_checkpoint_a_lost_worker_is_one_clear_error(client, ratings):
    import os
    import signal

    from recsys.errors import ClusterError

    pids = client.run(os.getpid)
    victim = sorted(pids)[0]

    def kill(info):
        if info.epoch == 1:
            os.kill(pids[victim], signal.SIGKILL)

    with pytest.raises(ClusterError, match="lost in epoch 2.*--checkpoint DIR"):
        FunkSVD(**PARAMS).fit(ratings, client=backend(client, None), callback=kill)
    client.wait_for_workers(3, timeout=WAIT)


def test_resume_continues_a_fit_whose_client_died(client, ratings, tmp_path):
    import subprocess
    import sys

    from recsys.distributed.backend import DaskBackend

    data = write_csv(ratings, tmp_path / "r.csv")
    params = {**PARAMS, "n_epochs": 5, "lr_schedule": "decay"}
    ckpt = tmp_path / "ckpt"
    # a client that dies (no clean-up at all) after its third epoch
    code = (
        "import os, sys\n"
        "from distributed import Client\n"
        "from recsys import FunkSVD\n"
        "from recsys.distributed.backend import DaskBackend\n"
        f"c = Client({client.scheduler.address!r}, timeout={WAIT})\n"
        "def die(info):\n"
        "    if info.epoch == 3:\n"
        "        os._exit(17)\n"
        f"FunkSVD(**{params!r}).fit({data!r}, callback=die,\n"
        f"    client=DaskBackend(c, timeout={WAIT}, checkpoint={str(ckpt)!r}))\n")
    died = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=2 * WAIT)
    assert died.returncode == 17, died.stderr
    local = FunkSVD(**params).fit(data)
    seen = []
    resumed = FunkSVD(**params).fit(
        data, callback=seen.append,
        client=DaskBackend(client, timeout=WAIT, checkpoint=ckpt, resume=True))
    assert [i.epoch for i in seen] == [4, 5]
    assert same_arrays(local, resumed) == [True] * 4
    assert [h["train_rmse"] for h in resumed.history_] == \
        [h["train_rmse"] for h in local.history_]
    with pytest.raises(Exception, match="other parameters or data"):
        FunkSVD(**{**params, "seed": 4}).fit(
            data, client=DaskBackend(client, timeout=WAIT, checkpoint=ckpt, resume=True))


def test_a_partition_with_validation_and_early_stopping_matches_the_in_process_fit(
        client, ratings, tmp_path):
    from recsys.distributed.partition import write_partition

    train, valid = split_off(ratings, 0.2, 1)
    write_partition(train, tmp_path / "p", 6)
    params = {**PARAMS, "n_epochs": 30, "lr": 0.02, "early_stopping": 2}
    local = FunkSVD(**params).fit(train, validation=valid)
    remote = FunkSVD(**params).fit(str(tmp_path / "p"), validation=valid,
                                   client=backend(client, 2))
    assert without_seconds(remote.history_) == without_seconds(local.history_)
    assert remote.best_epoch_ == local.best_epoch_ < 30
    assert remote.state_.digest() == local.state_.digest()
    with pytest.raises(ValueError, match="needs a validation set"):
        FunkSVD(**params).fit(str(tmp_path / "p"), client=backend(client, 2))
    with pytest.raises(ValueError, match="reg 'auto'"):
        FunkSVD(**{**params, "reg": "auto"}).fit(str(tmp_path / "p"), validation=valid,
                                                  client=backend(client, 2))


def test_the_bytes_predicted_count_the_hand_offs_to_another_worker():
    from recsys.distributed.traffic import block_bytes, moves

    # 4 user blocks on 2 workers (0, 0, 1, 1); strata in order 0..3, cols the identity:
    # item block c meets user block (c - s) % 4 in stratum s
    layout = Layout(4, 2, np.array([0, 1, 2, 3, 4]), np.array([0, 2, 3, 6, 10]))
    shifts, cols = np.arange(4), np.arange(4)
    held = {0: 0, 1: 0, 2: 1, 3: 1}
    # item block 0 meets user blocks 0, 3, 2, 1 (workers 0, 1, 1, 0): held by 0, 2 moves;
    # item block 1 meets 1, 0, 3, 2 (workers 0, 0, 1, 1): 1 move
    assert list(moves(layout, shifts, cols, held)) == [2, 1, 2, 1]
    assert list(moves(layout, shifts, cols, {0: 1, 1: 0, 2: 1, 3: 1})) == [3, 1, 2, 1]
    assert list(block_bytes(layout, 3, 4, False)) == [32, 16, 48, 64]
    assert list(block_bytes(layout, 3, 4, True)) == [48, 24, 72, 96]


def test_a_worker_waits_for_an_item_block_no_longer_than_its_limit(monkeypatch):
    import asyncio

    from recsys.distributed import actor

    layout = Layout(2, 2, np.array([0, 1, 2]), np.array([0, 1, 2]))
    worker = actor.BlockWorker(0, layout, np.float32(3), 1, False)
    monkeypatch.setattr(actor, "BLOCK_WAIT", 0.01)
    with pytest.raises(TimeoutError, match="no item block 1 for stratum 0 of epoch 4"):
        asyncio.run(worker._wait_for((4, 0, 1)))
    assert worker.waiting == {}
    asyncio.run(worker.receive((4, 0, 1), "late"))  # kept, not set on the ended wait
    assert asyncio.run(worker._wait_for((4, 0, 1))) == "late"


def test_a_warm_up_on_a_cluster_is_refused_before_it_starts(client, ratings):
    with pytest.raises(ValueError, match="no warm-up.*warmup_epochs=0"):
        FunkSVD(**{**PARAMS, "warmup_epochs": 3}).fit(ratings, client=backend(client, 2))
