"""Learning curves on MovieLens 100k u1: training and validation (u1.test) RMSE per epoch.

Three panels: SGD settings (the defaults, their schedule pinned at γ 0.065 for 150 epochs
and with a large initial std, the previous constant-step defaults and the first
defaults); full-batch GD against SGD; and Funk's one-feature-at-a-time training, per
feature. The defaults' first three epochs are ``reg auto``'s shared warm-up, trained on
the trials' 90% of u1.base (their training RMSE is of that share). Needs matplotlib (the
``plot`` extra).

    python scripts/learning_curves.py [--data-dir DIR] [--output docs/learning-curves.png]
"""

from __future__ import annotations

import argparse
import sys

import _accuracy as acc

from recsys.data.readers import read_ratings
from recsys.models.funksvd import FunkSVD
from recsys.models.params import REG_REFERENCE

ONE = {"n_jobs": 1}
# reg 'auto' chooses the reference on u1; the variants below are pinned to it
TUNED = {"reg": REG_REFERENCE, **ONE}
PANELS = {
    "SGD settings": {
        "defaults": dict(**ONE),
        "defaults, init_std 0.1, 150 epochs": dict(init_std=0.1, n_epochs=150, **TUNED),
        "defaults, 150 epochs": dict(n_epochs=150, **TUNED),
        "previous defaults, constant lr 0.005, 150 epochs": dict(
            n_factors=200, n_epochs=150, lr=0.005, lr_schedule="constant", reg_bias=0.01,
            **TUNED),
        "first defaults": dict(n_factors=100, n_epochs=40, lr=0.01, reg=0.08,
                               reg_bias=None, init_std=0.1, lr_schedule="constant", **ONE),
    },
    "full-batch GD vs SGD": {
        "SGD (previous defaults, constant lr 0.005)": dict(
            n_factors=200, n_epochs=150, lr=0.005, lr_schedule="constant", reg_bias=0.01,
            **TUNED),
        "GD, bold driver": dict(method="gd", lr=0.002, lr_schedule="bold", n_epochs=150,
                                **TUNED),
        "GD, constant lr 0.002": dict(method="gd", lr=0.002, lr_schedule="constant",
                                      n_epochs=150, **TUNED),
    },
    "Funk's training (x: features)": {
        "funk, lr 0.001, reg 0.015, 120 passes": dict(
            method="funk", n_factors=40, n_epochs=120, lr=0.001, reg=0.015, reg_bias=0.015,
            init_std=0.1, lr_schedule="constant", **ONE),
    },
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--output", default=str(acc.ROOT / "docs" / "learning-curves.png"))
    args = parser.parse_args()
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        sys.exit("matplotlib is needed: pip install -e '.[plot]'")
    path = acc.find("ml-100k", args.data_dir)
    if path is None:
        sys.exit("MovieLens 100k not found; skipping")
    train = read_ratings(path.parent / "u1.base")
    test = read_ratings(path.parent / "u1.test")

    fig, axes = plt.subplots(2, len(PANELS), figsize=(6 * len(PANELS), 8), sharex="col")
    print(f"Measured {acc.stamp()}.\n")
    print("| panel | run | epochs | best valid RMSE (epoch) | last valid RMSE |")
    print("|---|---|---:|---:|---:|")
    for top, bottom, (title, runs) in zip(axes[0], axes[1], PANELS.items(), strict=True):
        for label, params in runs.items():
            model = FunkSVD(**params).fit(train, validation=test)
            h = model.history_
            x = [e["epoch"] for e in h]
            valid = [e["valid_rmse"] for e in h]
            top.plot(x, valid, label=label)
            bottom.plot(x, [e["train_rmse"] for e in h], label=label)
            best = min(range(len(valid)), key=lambda n: (valid[n] is None, valid[n] or 0.0))
            print(f"| {title} | {label} | {len(h)} | {valid[best]:.4f} ({x[best]}) | "
                  f"{valid[-1]:.4f} |", flush=True)
        top.set_title(title)
        top.set_ylabel("validation RMSE (u1.test)")
        top.set_ylim(0.9, 0.98)
        bottom.set_ylabel("training RMSE (u1.base)")
        bottom.set_xlabel("feature" if "Funk" in title else "epoch")
        for ax in (top, bottom):
            ax.grid(alpha=0.3)
        top.legend(fontsize=7)
    fig.suptitle("MovieLens 100k u1: validation (top) and training (bottom) RMSE")
    fig.tight_layout()
    fig.savefig(args.output, dpi=110)
    print(f"\nwritten {args.output}", file=sys.stderr)


if __name__ == "__main__":
    main()
