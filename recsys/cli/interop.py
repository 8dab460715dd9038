"""``recsys export`` and ``recsys import``: models to and from other tools' formats."""

from __future__ import annotations

import click

from recsys.cli.common import _load_model
from recsys.cli.options import _scale


@click.command("export")
@click.argument("model_path", metavar="MODEL")
@click.option("--format", "fmt", type=click.Choice(["libmf", "npz"]), required=True,
              help="libmf: LIBMF's text model (cuMF_SGD reads it too), biases folded into "
                   "two more factors, ids in OUT.user-ids and OUT.item-ids; npz: the plain "
                   "arrays (mu, user_bias, item_bias, user_factors, item_factors, user_ids, "
                   "item_ids) for numpy.load. A hybrid model's predictions use only its first "
                   "rating_factors columns: libmf writes those, npz all and rating_factors.")
@click.option("-o", "--output", required=True, metavar="OUT", help="File to write.")
def export_cmd(model_path, fmt, output):
    """Write MODEL in another tool's format."""
    from recsys.atomic import atomic_write, check_writable

    check_writable(output, inputs=[model_path])
    state = _load_model(model_path).state_
    if fmt == "libmf":
        from recsys.persist.libmf import write_libmf

        written = write_libmf(state, output)
        click.echo(f"wrote {', '.join(str(p) for p in written)}", err=True)
        return
    import numpy as np

    f = state.factors
    with atomic_write(output, "wb") as fh:
        np.savez(fh, mu=np.asarray(f.mu), user_bias=f.user_bias, item_bias=f.item_bias,
                 user_factors=f.user_factors, item_factors=f.item_factors,
                 user_ids=np.asarray(state.user_map.to_list()),
                 item_ids=np.asarray(state.item_map.to_list()),
                 **({} if state.rating_factors is None
                    else {"rating_factors": np.asarray(state.rating_factors)}))
    click.echo(f"wrote {output}", err=True)


@click.command("import")
@click.argument("source", metavar="LIBMF_MODEL")
@click.option("-o", "--output", required=True, metavar="MODEL", help="Model file to write.")
@click.option("--scale", default="0.5,5", show_default=True, metavar="MIN,MAX",
              help="Rating range predictions are clipped to ('none': no clipping).")
def import_cmd(source, output, scale):
    """Read a LIBMF text model (and the id files beside it, if any) into a recsys model
    file that predicts, recommends and serves like any other (as FunkSVD)."""
    from recsys.atomic import check_writable
    from recsys.models.funksvd import FunkSVD
    from recsys.persist.libmf import read_libmf
    from recsys.state import FitReport

    check_writable(output, inputs=[source])
    bounds = _scale(scale)
    bounds = (float("-inf"), float("inf")) if bounds == "any" else bounds
    state = read_libmf(source, bounds)
    model = FunkSVD(n_factors=state.n_factors, reg=0.0)
    model._set_fitted(state, FitReport(reg=0.0))
    model.save(output)
    click.echo(f"{state.n_users:,} users, {state.n_items:,} items, k={state.n_factors}; "
               f"model written to {output}", err=True)
