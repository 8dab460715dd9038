"""Commands about data: download, datasets, info, split, synth, partition."""

from __future__ import annotations

import click

from recsys.cli.common import _input_path, _load_ratings
from recsys.cli.options import deprecated_alias, reader_options


@click.command()
@click.argument("name")
@click.option("--force", is_flag=True, help="Download again even if it is already there.")
@click.option("--mirror", default=None, metavar="URL",
              help="Base URL to fetch from instead of GroupLens (or set RECSYS_MIRROR).")
def download(name, force, mirror):
    """Download, verify and unpack the MovieLens release NAME (see `recsys datasets`)."""
    from recsys.data.movielens import download as fetch
    from recsys.data.movielens import get, is_downloaded

    dataset = get(name)
    if is_downloaded(dataset) and not force:
        click.echo(f"{name} is already downloaded", err=True)
    path = fetch(dataset, force=force, mirror=mirror)
    click.echo(str(path))


@click.command("datasets")
def datasets_cmd():
    """List the MovieLens releases, their size and whether they are downloaded."""
    from recsys.data.movielens import cache_dir, describe

    click.echo("name             size        ratings     users    movies  check  downloaded")
    for row in describe():
        click.echo(f"{row['name']:<16} {row['size']:>9}  {row['ratings']:>11,}  "
                   f"{row['users']:>8,}  {row['movies']:>8,}  {row['check']:<5}  "
                   f"{row['downloaded']}")
    click.echo(f"cache: {cache_dir()} (set RECSYS_DATA to change)", err=True)


@click.command()
@click.argument("data")
@reader_options
def info(data, **opts):
    """Print users, items, ratings, density, histogram, activity and time span of DATA;
    for a model file, what it is and where it comes from (its lineage)."""
    import zipfile

    from recsys.data.info import format_summary, summarize

    if zipfile.is_zipfile(data):
        from recsys.cli.common import _print_model_info

        _print_model_info(data)
        return
    ratings = _load_ratings(data, opts)
    click.echo(format_summary(summarize(ratings), ratings.source))


_SPLIT_METHODS = ("holdout", "kfold", "user", "user-last", "temporal", "ml100k")


@click.command()
@click.argument("data")
@click.option("-m", "--method", type=click.Choice(_SPLIT_METHODS), default="holdout",
              show_default=True,
              help="holdout: random ratings; kfold: k disjoint test folds; user: a fraction "
                   "of each user's ratings; user-last: each user's latest N; temporal: the "
                   "latest ratings overall (or from --at on); ml100k: the official folds.")
@click.option("-o", "--output", "prefix", required=True, metavar="PREFIX",
              help="Files are written as PREFIX.train.csv and PREFIX.test.csv "
                   "(PREFIX.NAME.train.csv per fold).")
@click.option("--fraction", type=click.FloatRange(0, 1, min_open=True, max_open=True),
              default=0.2, show_default=True, help="Test fraction.")
@click.option("--folds", type=click.IntRange(min=2), default=5, show_default=True,
              help="Number of folds (kfold).")
@deprecated_alias("-k", "folds", "--folds", type=click.IntRange(min=2))
@click.option("--last-n", type=click.IntRange(min=1), default=1, show_default=True,
              help="Latest ratings per user in the test set (user-last).")
@click.option("--at", type=int, default=None, metavar="UNIXTIME",
              help="Cut time: ratings from then on are the test set (temporal).")
@click.option("--fold", "fold_names", multiple=True, metavar="NAME",
              help="Official ml-100k folds to write (u1..u5, ua, ub; default: all).")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True)
@click.option("--known-only", is_flag=True,
              help="Drop test ratings whose user or item is not in training, and say how many.")
@reader_options
def split(data, method, prefix, fraction, folds, last_n, at, fold_names, seed, known_only,
          **opts):
    """Split the ratings in DATA into training and test files."""
    from recsys.atomic import check_writable
    from recsys.data import split as sp

    if method == "ml100k":
        from recsys.data.movielens import resolve_data

        pairs = sp.ml100k_folds(resolve_data(data), fold_names or sp.ML100K_FOLDS)
    else:
        ratings = _load_ratings(data, opts)
        if method == "holdout":
            pairs = {"": sp.holdout(ratings, fraction, seed)}
        elif method == "kfold":
            pairs = {str(f + 1): pair for f, pair in enumerate(sp.kfold(ratings, folds, seed))}
        elif method == "user":
            pairs = {"": sp.per_user(ratings, fraction=fraction, seed=seed)}
        elif method == "user-last":
            pairs = {"": sp.per_user(ratings, last_n=last_n)}
        else:
            pairs = {"": sp.temporal(ratings, fraction=None if at is not None else fraction,
                                     at=at)}
    outputs = []
    for name, (train, test) in pairs.items():
        stem = f"{prefix}.{name}" if name else prefix
        if known_only:
            test, dropped = sp.keep_known(train, test)
            click.echo(f"{name or 'split'}: {dropped}", err=True)
        outputs.append((f"{stem}.train.csv", train, f"{stem}.test.csv", test))
    for train_path, _, test_path, _ in outputs:
        check_writable(train_path, inputs=[_input_path(data)])
        check_writable(test_path, inputs=[_input_path(data)])
    sp.write_splits([(part, path) for train_path, train, test_path, test in outputs
                     for part, path in ((train, train_path), (test, test_path))])
    for train_path, train, test_path, test in outputs:
        click.echo(f"{train_path}\t{len(train):,} ratings")
        click.echo(f"{test_path}\t{len(test):,} ratings")


@click.command()
@click.option("-o", "--output", required=True, metavar="FILE", help="CSV file to write.")
@click.option("--shape", type=click.Choice(["ml-100k", "ml-1m", "ml-10m", "ml-20m", "ml-25m",
                                            "netflix"]),
              default=None, help="Users, items and ratings of a known data set.")
@click.option("--users", type=click.IntRange(min=1), default=None,
              help="Number of users.  [default: 6040, or the shape's]")
@click.option("--items", type=click.IntRange(min=1), default=None,
              help="Number of items.  [default: 3706, or the shape's]")
@click.option("--ratings", type=click.IntRange(min=1), default=None,
              help="Number of ratings.  [default: 1000000, or the shape's]")
@click.option("--rank", type=click.IntRange(min=1), default=10, show_default=True,
              help="Rank of the true model.")
@click.option("--noise", type=click.FloatRange(min=0), default=0.5, show_default=True,
              help="Std of the Gaussian noise on each rating.")
@click.option("--scale", type=click.Choice(["1-5", "half", "none"]), default="1-5",
              show_default=True,
              help="Whole stars, half stars, or continuous (read back with --scale none).")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True)
def synth(output, shape, users, items, ratings, rank, noise, scale, seed):
    """Write synthetic MovieLens-shaped ratings from a known low-rank model to FILE."""
    from recsys.atomic import check_writable
    from recsys.data.synth import SHAPES, SynthSpec, generate, write_csv

    check_writable(output)
    spec = SynthSpec(rank=rank, noise=noise, scale=scale, seed=seed)
    if shape is not None:
        spec.n_users, spec.n_items, spec.n_ratings = SHAPES[shape]
    for name, value in (("n_users", users), ("n_items", items), ("n_ratings", ratings)):
        if value is not None:
            setattr(spec, name, value)
    generated, _ = generate(spec)
    write_csv(generated, output)
    click.echo(f"{output}\t{len(generated):,} ratings, {generated.n_users:,} users, "
               f"{generated.n_items:,} items", err=True)


@click.command()
@click.argument("data")
@click.option("-o", "--output", required=True, metavar="DIR",
              help="The partition folder to write (new, or a partition to replace).")
@click.option("--grid", type=click.IntRange(min=1), required=True, metavar="G",
              help="Blocks per side: the grid of the fits that train on it.")
@reader_options
def partition(data, output, grid, **opts):
    """Cut the ratings in DATA into GRID x GRID Parquet blocks and a manifest, for
    `recsys train DIR --dask-workers N`: each worker reads only its own blocks."""
    import os

    from recsys.distributed.partition import write_partition

    source = _input_path(data)
    if os.path.abspath(str(output)) == os.path.abspath(str(source)):
        raise click.UsageError("the partition would replace its input")
    ratings = _load_ratings(data, opts)
    manifest = write_partition(ratings, output, grid)
    counts = manifest["counts"]
    click.echo(f"{len(ratings):,} ratings in {grid * grid} blocks ({min(counts):,} to "
               f"{max(counts):,} each) written to {output}", err=True)
