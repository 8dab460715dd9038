"""Where training runs. A backend runs the block kernel of blocked SGD over the schedule of
``recsys.training.strata`` and owns its workers; trainers find it by name."""

from __future__ import annotations

BACKENDS = ("cpu",)


def get(name: str):
    """The backend called ``name``."""
    if name == "cpu":
        from recsys.training.backends.cpu import CpuBackend

        return CpuBackend()
    raise ValueError(f"unknown backend {name!r}; known: {', '.join(BACKENDS)}")
