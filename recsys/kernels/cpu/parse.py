"""Parse kernel: plain delimited ratings lines straight from bytes into coded arrays.

One pass over the bytes parses each line, checks it and codes its ids through dense
lookup tables (raw id -> index, in first-seen order), with no intermediate strings or
columns. It takes only the plainest form of a line: unsigned decimal ids and timestamps
(at most 18 digits), ratings as ``digits[.digits]`` (at most 15 digits in all, so the
value is the correctly rounded one Python's ``float`` gives), other fields printable
ASCII without quotes or spaces, ``\\n`` or ``\\r\\n`` line ends, at most ``max_line`` bytes
a line; empty lines are skipped (their places kept for error messages). Anything else
stops the kernel and the caller hands the file to a reader that takes every form.
"""

import numba
import numpy as np

#: Statuses ``parse_lines`` returns.
DONE = 0  # every line of the block was taken
FULL = 1  # the output arrays are full: grow them and call again from ``consumed``
USER_TABLE = 2  # a user id is past the end of the user table (``detail``): grow it
ITEM_TABLE = 3  # the same for an item id
ODD = 4  # a line not in the plain form: another reader must decide
BAD = 5  # a plain line the rules reject (a rating outside the scale)
BLANKS = 6  # the array of empty lines' places is full: grow it

_POW10 = np.array([10.0 ** k for k in range(16)])
_MAX_INT_DIGITS = 18
_MAX_DECIMAL_DIGITS = 15


@numba.njit(cache=True, nogil=True)
def parse_lines(buf, start, n, sep0, sep1, n_fields, pos_user, pos_item, pos_rating, pos_ts,
                lo, hi, check_scale, user_table, item_table, seen, blanks, out_u, out_i,
                out_r, out_t, row, max_line):
    """Parse the lines in ``buf[start:n]`` into the outputs from index ``row``.

    ``buf[n - 1]`` must end a line (``\\n``): it stops every scan, so none checks ``n``.
    ``sep1`` is the second byte of a two-byte separator (``::``), else -1; a ``pos_*`` of
    -1 means the file has no such field; a line longer than ``max_line`` bytes (without
    its end) is not taken. ``seen`` holds the number of distinct users and
    items coded so far and of empty lines met; ``blanks`` the output row each empty line
    came before (empty lines are skipped, as the line-by-line pass does). Returns
    (consumed, row, status, detail): the position and output row after the last line
    taken, why it stopped and, for a table status, the id that did not fit. A line is only
    taken whole, so a call can resume at ``consumed``.
    """
    if n <= start:
        return start, row, DONE, 0
    if buf[n - 1] != 10:
        return start, row, ODD, 0
    pow10 = _POW10
    p = start
    while p < n:
        line_start = p
        c = buf[p]
        if c == 10 or (c == 13 and buf[p + 1] == 10):
            if seen[2] >= len(blanks):
                return line_start, row, BLANKS, 0
            blanks[seen[2]] = row
            seen[2] += 1
            p += 1 if c == 10 else 2
            continue
        user = item = ts = np.int64(0)
        rating = 0.0
        field = 0
        while True:
            if field == pos_user or field == pos_item or field == pos_ts:
                value = np.int64(0)
                digits = 0
                while 48 <= buf[p] <= 57:  # the line end stops every scan
                    value = value * 10 + (buf[p] - 48)
                    digits += 1
                    p += 1
                if digits == 0 or digits > _MAX_INT_DIGITS:
                    return line_start, row, ODD, 0
                if field == pos_user:
                    user = value
                elif field == pos_item:
                    item = value
                else:
                    ts = value
            elif field == pos_rating:
                mantissa = np.int64(0)
                digits = 0
                while 48 <= buf[p] <= 57:
                    mantissa = mantissa * 10 + (buf[p] - 48)
                    digits += 1
                    p += 1
                if digits == 0:
                    return line_start, row, ODD, 0
                places = 0
                if buf[p] == 46:  # '.'
                    p += 1
                    while 48 <= buf[p] <= 57:
                        mantissa = mantissa * 10 + (buf[p] - 48)
                        places += 1
                        p += 1
                    if places == 0:
                        return line_start, row, ODD, 0
                if digits + places > _MAX_DECIMAL_DIGITS:
                    return line_start, row, ODD, 0
                rating = mantissa / pow10[places]  # both exact: one correct rounding
            else:  # a field no role reads: anything printable but quotes and separators
                begin = p
                while True:
                    c = buf[p]
                    if c < 33 or c > 126 or c == 34 or c == sep0 or c == sep1:
                        break
                    p += 1
                if p == begin:
                    return line_start, row, ODD, 0
            c = buf[p]
            if c == sep0:
                if sep1 >= 0:
                    if buf[p + 1] != sep1:
                        return line_start, row, ODD, 0
                    p += 1
                p += 1
                field += 1
                if field >= n_fields:
                    return line_start, row, ODD, 0
                continue
            if p - line_start > max_line:  # p is at the line's end
                return line_start, row, ODD, 0
            if c == 13:  # '\r' must start '\r\n'
                if buf[p + 1] != 10:
                    return line_start, row, ODD, 0
                p += 1
            elif c != 10:
                return line_start, row, ODD, 0
            p += 1
            break
        if field != n_fields - 1:
            return line_start, row, ODD, 0
        if check_scale and not (lo <= rating <= hi):
            return line_start, row, BAD, 0
        if user >= len(user_table):
            return line_start, row, USER_TABLE, user
        if item >= len(item_table):
            return line_start, row, ITEM_TABLE, item
        if row >= len(out_u):
            return line_start, row, FULL, 0
        code = user_table[user]
        if code < 0:
            code = seen[0]
            user_table[user] = code
            seen[0] += 1
        out_u[row] = code
        code = item_table[item]
        if code < 0:
            code = seen[1]
            item_table[item] = code
            seen[1] += 1
        out_i[row] = code
        if pos_rating >= 0:
            out_r[row] = rating
        if pos_ts >= 0:
            out_t[row] = ts
        row += 1
    return p, row, DONE, 0
