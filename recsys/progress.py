"""Progress bars with an ETA for long work of many parts: the folds of ``cv``, the trials of
``tune`` and of ``reg auto``, downloads.

``bar(total, desc, unit)`` is a tqdm bar on stderr when tqdm is installed (the
``progress`` extra) and stderr is a terminal; otherwise a ``Silent`` one whose methods do
nothing, so callers need no branches and logs and pipes get no carriage returns. The
environment variable ``RECSYS_PROGRESS`` overrides the choice: ``0`` never, ``1`` even when
stderr is not a terminal. Lines printed while a bar is shown go through ``bar.echo`` (tqdm
keeps the bar below them); the per-epoch tables and per-fold lines stay as they are.
"""

from __future__ import annotations

import os
import sys

ENV = "RECSYS_PROGRESS"


class Silent:
    """A bar that shows nothing; ``echo`` prints the line as usual."""

    def update(self, n: int = 1) -> None:
        pass

    def set_postfix_str(self, text: str) -> None:
        pass

    def echo(self, line: str, err: bool = True) -> None:
        print(line, file=sys.stderr if err else sys.stdout, flush=True)

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _Shown(Silent):
    def __init__(self, tqdm, total, desc, unit, **options):
        self._tqdm = tqdm
        self._bar = tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, leave=False,
                         dynamic_ncols=True, **options)

    def update(self, n: int = 1) -> None:
        self._bar.update(n)

    def set_postfix_str(self, text: str) -> None:
        self._bar.set_postfix_str(text, refresh=False)

    def echo(self, line: str, err: bool = True) -> None:
        self._tqdm.write(line, file=sys.stderr if err else sys.stdout)

    def close(self) -> None:
        self._bar.close()


def enabled() -> bool:
    """Whether bars are shown: tqdm importable, and RECSYS_PROGRESS=1 or a terminal."""
    setting = os.environ.get(ENV, "").strip()
    if setting == "0":
        return False
    try:
        import tqdm  # noqa: F401
    except ImportError:
        return False
    return setting == "1" or sys.stderr.isatty()


def bar(total: int | None, desc: str, unit: str = "it", **options) -> Silent:
    """A progress bar of ``total`` parts (None: unknown), or a Silent one (see module)."""
    if not enabled():
        return Silent()
    from tqdm import tqdm

    return _Shown(tqdm, total, desc, unit, **options)
