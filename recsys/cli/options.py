"""Options shared by several commands, and the parsing of their values.

Only click and ``recsys.models.defaults`` are imported here, so ``recsys --help`` stays
fast; what reads data or builds models is imported inside the functions that need it.
"""

from __future__ import annotations

import click

from recsys.models import defaults

# ----------------------------------------------------------------------------- reader


def _scale(value):
    if value is None:
        return None
    if value.lower() in ("none", "any"):
        return "any"
    try:
        lo, hi = (float(x) for x in value.split(","))
    except ValueError:
        raise click.BadParameter(f"expected MIN,MAX (for example 1,5), not {value!r}") \
            from None
    if not lo < hi:
        raise click.BadParameter(f"MIN must be below MAX, not {value!r}")
    return (lo, hi)


def reader_options(func):
    """Options shared by every command that reads a ratings or pairs file."""
    options = [
        click.option("--sep", default=None, metavar="SEP",
                     help="Field separator (default: detected: '::', tab, ',', ';', '|', spaces)."),
        click.option("--columns", default=None, metavar="NAMES",
                     help="Field roles in order, e.g. user,item,rating,timestamp ('-' skips)."),
        click.option("--header/--no-header", default=None,
                     help="Whether the first line names the columns (default: detected)."),
        click.option("--id-type", type=click.Choice(["int", "str"]), default=None,
                     help="Read ids as integers or text (default: detected from the first line)."),
        click.option("--scale", default=None, metavar="MIN,MAX",
                     help="Valid rating range; others are errors (default 0.5,5; 'none': any)."),
        click.option("--skip-bad-lines", is_flag=True,
                     help="Skip malformed lines and report them instead of stopping."),
        click.option("--duplicates", type=click.Choice(["error", "last", "mean"]),
                     default="error", show_default=True,
                     help="What to do with a second rating of the same user and item."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _read_kwargs(opts: dict) -> dict:
    from recsys.data.readers import DEFAULT_SCALE

    scale = _scale(opts.get("scale"))
    return {
        "sep": opts.get("sep"),
        "columns": opts.get("columns"),
        "header": opts.get("header"),
        "id_type": opts.get("id_type"),
        "scale": DEFAULT_SCALE if scale is None else (None if scale == "any" else scale),
        "skip_bad_lines": opts.get("skip_bad_lines", False),
        "duplicates": opts.get("duplicates", "error"),
    }


# ----------------------------------------------------------------------------- model


def _reg_value(text: str):
    """'auto' or a finite number >= 0 (a factor regularization)."""
    if text.strip().lower() == "auto":
        return "auto"
    try:
        value = float(text)
    except ValueError:
        value = None
    if value is None or not 0 <= value < float("inf"):
        raise click.BadParameter(f"expected 'auto' or a number >= 0, not {text!r}")
    return value


class _Reg(click.ParamType):
    """The value of --reg: 'auto' or a finite number >= 0."""

    name = "reg"

    def get_metavar(self, param, ctx=None):
        return "auto|FLOAT"

    def convert(self, value, param, ctx):
        try:
            return _reg_value(click.STRING.convert(value, param, ctx))
        except click.BadParameter as exc:
            self.fail(exc.message, param, ctx)


#: The FunkSVD options of ``train``, in the order of its help: (flags, parameter name,
#: click type, help). Every one defaults to None: the estimator's default (or --config's).
MODEL_OPTIONS = [
    (("-k", "--factors"), "n_factors", click.IntRange(min=1),
     f"Latent features k.  [default: {defaults.N_FACTORS}]"),
    (("-t", "--epochs"), "n_epochs", click.IntRange(min=0),
     f"Passes over the ratings.  [default: {defaults.N_EPOCHS}]"),
    (("--lr",), "lr", click.FloatRange(min=0),
     f"Learning rate.  [default: {defaults.LR}]"),
    (("--reg",), "reg", _Reg(),
     "Regularization of the factors; auto: chosen on 10% of the training ratings held out, "
     f"from a ladder around {defaults.REG_REFERENCE} (about 3.7 fits).  "
     f"[default: {defaults.REG}]"),
    (("--reg-bias",), "reg_bias", click.FloatRange(min=0),
     f"Regularization of the biases.  [default: {defaults.REG_BIAS}]"),
    (("--init-std",), "init_std", click.FloatRange(min=0),
     f"Std of the initial factors.  [default: {defaults.INIT_STD}]"),
    (("--seed",), "seed", click.IntRange(min=0),
     f"Random seed.  [default: {defaults.SEED}]"),
    (("--dtype",), "dtype", click.Choice(["float32", "float64"]),
     f"Factor precision.  [default: {defaults.DTYPE}]"),
    (("-j", "--jobs"), "n_jobs", click.IntRange(min=1),
     "Threads (the model does not depend on it).  [default: all cores]"),
]


def model_options(skip=(), helps=None):
    """A decorator adding the MODEL_OPTIONS but those named in ``skip``, in table order,
    with the help of those named in ``helps`` replaced."""
    helps = helps or {}

    def decorate(func):
        for flags, name, param_type, text in reversed(MODEL_OPTIONS):
            if name not in skip:
                func = click.option(*flags, name, type=param_type, default=None,
                                    help=helps.get(name, text))(func)
        return func

    return decorate


def variant_options(func):
    """FunkSVD's training-variant options (method, schedule, early stopping), and --config."""
    options = [
        click.option("--method", type=click.Choice(defaults.METHODS), default=None,
                     help="sgd: blocked SGD; funk: one feature at a time (n_epochs passes "
                          "each); gd: full-batch gradient descent; svdpp: SVD++ (implicit "
                          "feedback folded into the user factors).  "
                          f"[default: {defaults.METHOD}]"),
        click.option("--reg-implicit", type=click.FloatRange(min=0), default=None,
                     help="Regularization of the implicit item factors of --method svdpp.  "
                          f"[default: {defaults.REG_IMPLICIT}]"),
        click.option("--lr-schedule", type=click.Choice(["constant", "decay", "bold"]),
                     default=None, help="Learning-rate schedule (bold: bold driver).  "
                                        f"[default: {defaults.LR_SCHEDULE}]"),
        click.option("--lr-decay", type=click.FloatRange(0, 1, min_open=True), default=None,
                     help=f"Rate factor per epoch of --lr-schedule decay.  "
                          f"[default: {defaults.LR_DECAY}]"),
        click.option("--early-stopping", type=click.IntRange(min=0), default=None,
                     metavar="PATIENCE", help="Stop after PATIENCE epochs without a better "
                     "validation RMSE and keep the best epoch (uses -p, else holds out 5%).  "
                     f"[default: {defaults.EARLY_STOPPING}: off]"),
        click.option("--config", "config_path", default=None, metavar="CONFIG.json",
                     help="Parameters saved by `recsys tune --save-best`; options given "
                          "here override them."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _model_params(opts: dict) -> dict:
    """Pop the FunkSVD parameters from ``opts``: --config first, explicit options over it."""
    from recsys.models.funksvd import FunkSVD

    config_path = opts.pop("config_path", None)
    params = {}
    if config_path:
        from recsys.evaluation.tune import load_config

        params.update(load_config(config_path))
    for name in list(opts):
        if name in FunkSVD._PARAMS:
            value = opts.pop(name)
            if value is not None:
                params[name] = value
    return params


# ----------------------------------------------------------------------------- lists


def _floats(text):
    try:
        return [float(x) for x in text.split(",")] if text else None
    except ValueError:
        raise click.BadParameter(f"expected numbers separated by commas, not {text!r}") \
            from None


def _regs(text):
    return [_reg_value(x) for x in text.split(",")] if text else None


def _ints(text):
    values = _floats(text)
    if values is not None and any(v != int(v) or v < 0 for v in values):
        raise click.BadParameter(f"expected whole numbers separated by commas, not {text!r}")
    return None if values is None else [int(v) for v in values]
