"""Readers of ratings: MovieLens formats, delimited text of any kind, gzip, Parquet, DataFrames.

The format of a file is detected from its content (``layout.sniff``): the separator
(``::``, tab, comma, semicolon, ``|`` or white space), whether the first line is a header,
and whether ids are integers or strings. Then one of three passes reads it, all with the
same rules (property tests hold them to it):

- ``compiled``: big files with integer ids in plain form (digits, ``digits.digits``
  ratings, no quotes or spaces) are parsed, checked and coded straight from their bytes by
  a compiled kernel (``kernels/cpu/parse.py``), block by block;
- ``chunked``: other files, and any file where the kernel meets a line not in that form,
  are read by pandas' C parser in one vectorized pass, a million lines at a time: each
  chunk is checked, its ids coded into int32 indices at once (``IdMapBuilder``) and its
  ratings stored as float32. Either way memory stays near the final arrays;
- ``lines``: when a vectorized pass meets a line it cannot take as it is, the line-by-line
  pass finds the exact line and says what is wrong with it (or, with ``skip_bad_lines``,
  drops the bad lines and reports them in ``BadLines``).

Every pass reads through ``source``, which keeps two bounds whatever a file holds: a line
of at most ``MAX_LINE_BYTES`` (1 MiB), and gzip that expands at most ``MAX_RATIO`` (100)
times; an input that can be read only once (``-`` for standard input, a named pipe) is
copied once to a temporary file within the same bounds. Quoting follows RFC 4180 and
numbers one grammar (``layout._split``, ``layout._number``) in every pass.

Tables in memory get the same checks with rows in place of lines (``frames``): a pandas
DataFrame handed to ``read_ratings``, and a Parquet file once pandas (pyarrow) has read it
(``parquet``). Files opened here go through ``source``. Duplicate (user, item) ratings are
resolved by one policy for all (``recsys.data.duplicates``); the titles of MovieLens items
come from ``recsys.data.movielens``. ``read`` holds the entry points.
"""

from recsys.data.duplicates import DUPLICATE_POLICIES
from recsys.data.readers.layout import Layout, parse_columns, sniff
from recsys.data.readers.lines import BadLines
from recsys.data.readers.read import DEFAULT_SCALE, read_events, read_pairs, read_ratings

__all__ = ["DEFAULT_SCALE", "DUPLICATE_POLICIES", "BadLines", "Layout", "parse_columns",
           "read_events", "read_pairs", "read_ratings", "sniff"]
