"""The ``recsys`` command line: a thin layer over the library.

Nothing heavy (numpy, pandas, numba) is imported at module level, so ``recsys --help``
starts instantly. Every ``RecsysError`` (and OS error) becomes one line on stderr and
exit code 2; ``--debug`` shows the traceback instead.

``group`` holds the ``recsys`` group and its error handling, ``options`` the options
shared by several commands, ``common`` what several commands do; the commands are in
``train``, ``predict``, ``evaluate``, ``data`` and ``serve``, registered here.
"""

from __future__ import annotations

from recsys.cli import data, evaluate, interop, predict, serve, train, update
from recsys.cli.group import main, run

__all__ = ["main", "run"]

for _command in (train.train, predict.predict, predict.recommend, predict.similar,
                 evaluate.evaluate, predict.fold_in, serve.serve, data.download,
                 data.datasets_cmd, data.info, data.split, data.synth, evaluate.cv,
                 evaluate.tune, update.update, interop.export_cmd, interop.import_cmd,
                 data.partition):
    main.add_command(_command)
del _command

if __name__ == "__main__":  # pragma: no cover
    main()
