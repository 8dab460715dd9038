"""Commands that answer from a model: predict, recommend, similar, fold-in."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from recsys.cli.common import _load_model, _print_ranked, _report_bad
from recsys.cli.options import _read_kwargs, reader_options


@click.command()
@click.argument("model_path", metavar="MODEL")
@click.argument("user", required=False)
@click.argument("item", required=False)
@click.option("-i", "--input", "input_path", default=None, metavar="PAIRS",
              help="File of user,item pairs (any format the loader reads).")
@click.option("-o", "--output", default=None, metavar="OUT",
              help="CSV to write user,item,prediction to (default: standard output).")
@click.option("--strict", is_flag=True,
              help="Unknown users or items are an error instead of falling back to biases.")
@reader_options
def predict(model_path, user, item, input_path, output, strict, **opts):
    """Predict the rating of USER for ITEM, or of every pair in --input."""
    from recsys.atomic import atomic_write, check_writable

    if input_path is None and (user is None or item is None):
        raise click.UsageError("give USER and ITEM, or --input PAIRS")
    if input_path is not None and (user is not None or item is not None):
        raise click.UsageError("give either USER and ITEM or --input, not both")
    if output:
        check_writable(output, inputs=[model_path, input_path])
    model = _load_model(model_path)
    if input_path is None:
        value = model.predict([user], [item], strict=strict)[0]
        click.echo(f"{value:.4f}")
        return
    from recsys.data.readers import BadLines, read_pairs

    report = BadLines()
    kwargs = _read_kwargs(opts)
    kwargs.pop("duplicates")
    pairs = read_pairs(input_path, report=report, **kwargs)
    _report_bad(report)
    preds = model.predict(pairs["user"].to_numpy(), pairs["item"].to_numpy(), strict=strict)
    frame = pairs[["user", "item"]].assign(prediction=preds.astype("float64").round(6))
    if output:
        with atomic_write(output, "w", encoding="utf-8", newline="") as fh:
            frame.to_csv(fh, index=False)
    else:
        frame.to_csv(sys.stdout, index=False)


@click.command()
@click.argument("model_path", metavar="MODEL")
@click.argument("user", required=False)
@click.option("-n", "n", type=click.IntRange(1, 10_000), default=10, show_default=True,
              help="How many items.")
@click.option("--include-seen", is_flag=True, help="Also recommend items the user has rated.")
@click.option("--strict", is_flag=True,
              help="An unknown user is an error (default: popular items).")
@click.option("--users", "users_path", default=None, metavar="FILE",
              help="Recommend for every user id in FILE (one a line; '#' lines skipped).")
@click.option("--all", "all_users", is_flag=True, help="Recommend for every user of MODEL.")
@click.option("-o", "--output", default=None, metavar="OUT",
              help="Write the lists of --users/--all here (.csv, .json lines or .parquet).")
@click.option("--format", "fmt", type=click.Choice(["csv", "json", "parquet"]), default=None,
              help="Format of --output (default: from its suffix, else csv).")
def recommend(model_path, user, n, include_seen, strict, users_path, all_users, output, fmt):
    """Print the top N items for USER with their scores (and titles where known); with
    --users FILE or --all, the lists of many users at once (one process, batched), as a
    long table: user, rank, item, score[, title]."""
    batch = users_path is not None or all_users
    if batch == (user is not None) or (users_path is not None and all_users):
        raise click.UsageError("give USER, or one of --users FILE and --all")
    if output is not None and not batch:
        raise click.UsageError("--output is for --users or --all")
    if batch:
        from recsys.atomic import check_writable

        if output:
            check_writable(output, inputs=[model_path, users_path])
        model = _load_model(model_path)
        users = model.user_map_.ids if all_users else _read_users(users_path)
        _write_lists(model, users, n, not include_seen, strict, output, fmt)
        return
    model = _load_model(model_path)
    items, scores = model.recommend(user, n=n, exclude_seen=not include_seen, strict=strict)
    if model.user_map_.index_of(user) < 0:
        click.echo(f"unknown user {user}: showing the best-rated popular items", err=True)
    _print_ranked(model, items, scores, "score")


def _read_users(path) -> list:
    from recsys.errors import DataError

    users = []
    try:
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                text = line.strip()
                if text and not text.startswith("#"):
                    users.append(text)
    except UnicodeDecodeError:
        raise DataError("not a UTF-8 text file", path) from None
    if not users:
        raise DataError("no user ids found", path)
    return users


def _write_lists(model, users, n, exclude_seen, strict, output, fmt) -> None:
    import numpy as np

    from recsys.atomic import atomic_write

    users = np.asarray(users)
    if users.dtype.kind in "US" and model.user_map_.is_integer:
        users = model.user_map_.coerce(users)
    if strict:
        model.recommend_many(users[:0], n=n)  # parameters checked
        from recsys.models.base import raise_unknown

        raise_unknown(users[model.user_map_.indices(users) < 0], "user")
    frame = model.recommend_frame(users, n=n, exclude_seen=exclude_seen)
    if fmt is None:
        suffix = Path(output).suffix.lower() if output else ""
        fmt = {".parquet": "parquet", ".pq": "parquet", ".json": "json",
               ".jsonl": "json"}.get(suffix, "csv")
    if output is None:
        if fmt == "parquet":
            raise click.UsageError("--format parquet needs --output")
        _emit(frame, fmt, sys.stdout)
        return
    if fmt == "parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            from recsys.errors import RecsysError

            raise RecsysError("writing Parquet needs pyarrow: pip install pyarrow") from None
        with atomic_write(output, "wb") as fh:
            frame.to_parquet(fh, index=False)
    else:
        with atomic_write(output, "w", encoding="utf-8", newline="") as fh:
            _emit(frame, fmt, fh)
    click.echo(f"{len(frame):,} recommendations for {len(users):,} users written to {output}",
               err=True)


def _emit(frame, fmt, fh) -> None:
    if fmt == "csv":
        frame.to_csv(fh, index=False, float_format="%.6g")
        return
    import json

    columns = [c for c in ("item", "score", "title") if c in frame.columns]
    for user, group in frame.groupby("user", sort=False):
        items = [{c: (v.item() if hasattr(v, "item") else v) for c, v in zip(columns, row,
                                                                              strict=True)}
                 for row in group[columns].itertuples(index=False, name=None)]
        user = user.item() if hasattr(user, "item") else user
        fh.write(json.dumps({"user": user, "items": items}) + "\n")


@click.command()
@click.argument("model_path", metavar="MODEL")
@click.argument("item")
@click.option("-n", "n", type=click.IntRange(1, 10_000), default=10, show_default=True)
def similar(model_path, item, n):
    """Print the N items most similar to ITEM (cosine of the item factors)."""
    model = _load_model(model_path)
    items, sims = model.similar_items(item, n=n)
    _print_ranked(model, items, sims, "similarity")


@click.command("fold-in")
@click.argument("model_path", metavar="MODEL")
@click.argument("ratings_path", metavar="RATINGS")
@click.option("-n", "n", type=click.IntRange(1, 10_000), default=10, show_default=True,
              help="How many items.")
@click.option("--include-rated", is_flag=True, help="Also recommend the items in RATINGS.")
@click.option("--strict", is_flag=True, help="Items unknown to the model are an error.")
def fold_in(model_path, ratings_path, n, include_rated, strict):
    """Recommend for a new user from their RATINGS file (item,rating lines), no retraining."""
    from recsys.data.readers.user_ratings import read_user_ratings

    model = _load_model(model_path)
    ratings = read_user_ratings(ratings_path)
    unknown = int((model.item_map_.indices(ratings[0]) < 0).sum())
    if unknown:
        if strict:
            model.fold_in(ratings, strict=True)  # raises, naming the items
        click.echo(f"{unknown} of {len(ratings[0])} rated items are not in the model; "
                   "ignored", err=True)
    _, bias = model.fold_in(ratings)
    items, scores = model.recommend_for_ratings(ratings, n=n, exclude_rated=not include_rated)
    click.echo(f"folded in {len(ratings[0]) - unknown} ratings; user bias {bias:+.4f}", err=True)
    _print_ranked(model, items, scores, "score")
