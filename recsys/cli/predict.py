"""Commands that answer from a model: predict, recommend, similar, fold-in."""

from __future__ import annotations

import sys

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
@click.argument("user")
@click.option("-n", "n", type=click.IntRange(1, 10_000), default=10, show_default=True,
              help="How many items.")
@click.option("--include-seen", is_flag=True, help="Also recommend items the user has rated.")
@click.option("--strict", is_flag=True,
              help="An unknown user is an error (default: popular items).")
def recommend(model_path, user, n, include_seen, strict):
    """Print the top N items for USER with their scores (and titles where known)."""
    model = _load_model(model_path)
    items, scores = model.recommend(user, n=n, exclude_seen=not include_seen, strict=strict)
    if model.user_map_.index_of(user) < 0:
        click.echo(f"unknown user {user}: showing the best-rated popular items", err=True)
    _print_ranked(model, items, scores, "score")


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
