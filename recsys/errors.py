"""One small error hierarchy: the CLI turns each into one line on stderr and exit code 2."""

from __future__ import annotations

#: Longest a value quoted inside an error message may be (``shorten``), and the message's
#: reason and the offending text as a whole.
_VALUE_CHARS = 60
_REASON_CHARS = 400
_TEXT_CHARS = 120


def shorten(value, limit: int = _VALUE_CHARS) -> str:
    """``str(value)``, cut to ``limit`` characters ('...' marks the cut): how any value from
    the input is put into a message, so that a 10 MB field never makes a 10 MB message."""
    text = str(value)
    return text if len(text) <= limit else text[: max(limit - 3, 0)] + "..."


class RecsysError(Exception):
    """Base class for every error recsys raises on purpose."""


class DataError(RecsysError, ValueError):
    """Ratings (or pairs) that cannot be read as they are: a file, or a table in memory.

    Carries the file (or ``DataFrame``), the 1-based line number (or, for a table, the
    1-based ``row``) and the offending text where there is one, so that the message points
    the user at the exact place to fix. The reason and the text are shortened (``shorten``)
    whatever the caller put in them.
    """

    def __init__(self, message: str, path=None, line: int | None = None, text: str | None = None,
                 *, row: int | None = None):
        self.reason = shorten(message, _REASON_CHARS)
        self.path = None if path is None else str(path)
        self.line = line
        self.text = text
        self.row = row
        super().__init__(self._format())

    def _format(self) -> str:
        where = ""
        if self.path is not None:
            where = self.path
            if self.line is not None:
                where += f":{self.line}"
            where += ": "
        if self.row is not None:
            where += f"row {self.row}: "
        shown = ""
        if self.text is not None:
            shown = f": {shorten(self.text, _TEXT_CHARS)!r}"
        return f"{where}{self.reason}{shown}"

    def renamed(self, path) -> DataError:
        """The same error about the same place, naming the input ``path`` (a copy of
        standard input is read under another name)."""
        return DataError(self.reason, path, self.line, self.text, row=self.row)


class ModelError(RecsysError):
    """A model file that is missing, damaged, of another kind or of a newer format."""


class NotFittedError(RecsysError, ValueError, AttributeError):
    """A model asked for predictions (or its learned state) before ``fit``.

    Also a ValueError and an AttributeError, as scikit-learn's is, so ``hasattr(model,
    "user_factors_")`` is False before fitting.
    """


class TrainingError(RecsysError):
    """Training could not produce a usable model (divergence, bad parameters)."""


class DeviceError(RecsysError):
    """The device asked for cannot be used here: no GPU or driver, or its package missing."""


class ClusterError(RecsysError):
    """A Dask cluster that cannot be used: the ``dask`` extra missing, a scheduler out of
    reach, a worker lost for good."""


class ResourceError(RecsysError):
    """The work would need more memory (or disk) than the machine has."""


class UnknownIdError(RecsysError, KeyError):
    """A user or item id that the model has never seen, where a fallback was not allowed."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ""
